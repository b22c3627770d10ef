"""``--task-arg NAME=VALUE``: a registered task's options from the command line, as
``lrlab.tasks.get`` takes them, for ``lrlab sweep`` and ``lrlab find``."""

import json
import os

import jax
import numpy as np
import pytest

import lrlab
from lrlab.cli import find as find_command
from lrlab.cli import sweep as sweep_command
from lrlab.cli import task_flag

TINY = ["--optimizer", "sgd", "--steps", "20", "--eval-every", "10", "--batch-size", "50",
        "--seeds", "1", "--no-progress", "--grid", "lr=0.1,0.5"]  # fmt: skip


@pytest.fixture
def sweep(cli):
  """``lrlab sweep ARGS`` in this process, from ``tmp_path``: ``(code, stdout, stderr)``."""
  return cli(sweep_command.main, *TINY)


@pytest.mark.parametrize(
  ("text", "value"),
  [
    ("128", 128),
    ("0.5", 0.5),
    ("1e-3", 1e-3),
    ("true", True),
    ("8,16", (8, 16)),
    ("32,", (32,)),  # a sequence of one
    ("mup", "mup"),
    ("relu,gelu", ("relu", "gelu")),
  ],
)
def test_a_value_reads_as_a_number_a_tuple_or_a_word(text, value):
  parsed = task_flag.task_options([f"name={text}"])["name"]
  assert parsed == value and type(parsed) is type(value)


def test_the_sweep_trains_the_task_built_with_the_options(sweep, tmp_path):
  code, _, err = sweep("--task", "quadratic", "--task-arg", "dim=7", "--out", "with")
  assert code == 0, err
  saved = lrlab.sweep.SweepResult.load(tmp_path / "with")
  # The same sweep through the Python API on lrlab.tasks.get("quadratic", dim=7): without the
  # option the quadratic has 100 dimensions and every loss differs.
  reference = lrlab.sweep.run(
    lrlab.tasks.get("quadratic", dim=7), lambda hp: lrlab.optimizers.sgd(hp["lr"]),
    {"lr": np.array([0.1, 0.5])}, steps=20, eval_every=10, batch_size=50,
    key=jax.random.key(0), progress=False,
  )  # fmt: skip
  np.testing.assert_allclose(saved.history.val_loss, reference.history.val_loss, rtol=1e-6)
  claim = json.loads((tmp_path / "with" / "settings.json").read_text())
  assert claim["settings"]["task_args"] == {"dim": 7}


def test_options_name_their_own_folder_and_none_leave_the_old_name(sweep, tmp_path):
  assert sweep("--task", "quadratic")[0] == 0
  assert sweep("--task", "quadratic", "--task-arg", "dim=7")[0] == 0
  folders = sorted((tmp_path / "results").iterdir())
  assert len(folders) == 2
  settings = [json.loads((f / "settings.json").read_text())["settings"] for f in folders]
  # Without --task-arg the settings (so the folder's hash) are what they were before the flag.
  assert sorted("task_args" in s for s in settings) == [False, True]


@pytest.mark.parametrize(
  ("args", "message"),
  [
    (["--task-arg", "dimm=7"], "error: --task-arg dimm=7 refused by task 'quadratic': "
     "ValueError: unknown option(s) ['dimm'] for task 'quadratic'; allowed: "),
    (["--task-arg", "dim"], "error: --task-arg takes NAME=VALUE, e.g. --task-arg width=128; "
     "got 'dim'."),
    (["--task", "my_package.tasks:make_task", "--task-arg", "width=3"], "error: --task-arg "
     "takes the options of a registered task; 'my_package.tasks:make_task' is not one"),
    (["--task", "mnist1d-resnet", "--task-arg", "channels=8"], "(a value of the wrong kind? "
     "several values go comma-separated: channels=8,16)."),
  ],
)  # fmt: skip
def test_a_bad_option_is_one_line_before_any_compute(sweep, tmp_path, args, message):
  code, out, err = sweep("--task", "quadratic", *args)
  assert code == 2 and out == ""  # nothing announced, nothing trained
  assert len(err.strip().splitlines()) == 1 and message in err, err
  assert not (tmp_path / "results").exists()


def test_the_finder_takes_the_options_too(monkeypatch, tmp_path, capsys):
  monkeypatch.chdir(tmp_path)
  monkeypatch.setenv("XLA_FLAGS", os.environ.get("XLA_FLAGS", ""))
  args = ["--task", "quadratic", "--optimizer", "sgd", "--steps", "30", "--parallel-steps",
          "10", "--parallel-lrs", "1e-3:1:4", "--seeds", "1", "--out", "found"]  # fmt: skip
  assert find_command.main([*args, "--task-arg", "dim=7"]) == 0, capsys.readouterr().err
  claim = json.loads((tmp_path / "found" / "settings.json").read_text())
  assert claim["settings"]["task_args"] == {"dim": 7}
  assert find_command.main([*args, "--task-arg", "dimm=7"]) == 2
  assert "--task-arg dimm=7 refused by task 'quadratic'" in capsys.readouterr().err
