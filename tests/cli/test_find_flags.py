"""``lrlab find``: a range test too short or a batch too large is one line naming the flag,
before the run is announced."""

import importlib.metadata
import os
import subprocess
import sys

import pytest

from lrlab.cli import find as command

TINY = ["--task", "quadratic", "--optimizer", "sgd", "--steps", "30", "--parallel-lrs",
        "1e-3:1:4", "--parallel-steps", "20"]  # fmt: skip


@pytest.fixture
def run(cli):
  """``lrlab find ARGS`` in this process, from ``tmp_path``: ``(code, stdout, stderr)``."""
  return cli(command.main, *TINY)


@pytest.mark.parametrize(
  ("args", "message"),
  [
    # It used to print the header, then "steps must be an integer >= 23: ..." (which steps?).
    (("--steps", "20"), "error: --steps must be at least 23 (fastai's rules read that many "
     "points of the range test); got 20."),
    # It used to print the header, then "batch_size must be None (full batch) or ...".
    (("--batch-size", "5000"), "error: --batch-size must be 'full' or at most the 1000 "
     "training examples of task 'quadratic'; got 5000."),
    # It used to train the range test, then blame a make_tx the user never wrote.
    (("--optimizer", "prodigy"), "error: --optimizer must be an optimizer whose learning rate "
     "the range test can scan; 'prodigy' is learning-rate-free (its learning_rate multiplies the "
     "step size it chooses): sweep that multiplier instead (find_lr_parallel, lrlab sweep)."),
    # It used to print the header and a TypeError's traceback ("unexpected keyword argument").
    (("--opt", "foo=1"), "error: --opt (arguments of sgd) must be among dampening, l1, "
     "momentum, nesterov, weight_decay; got foo."),
    # It used to name momentum but not the flag.
    (("--opt", "momentum=2"), "error: --opt momentum=2: momentum must be in [0.0, 1.0); got 2."),
  ],
)  # fmt: skip
def test_a_bad_flag_is_one_line_naming_it_before_the_header(run, tmp_path, args, message):
  code, out, err = run(*args, "--out", "f")
  assert (code, out) == (2, "") and err.strip().splitlines() == [f"lrlab find: {message}"]
  assert not (tmp_path / "f").exists()


def test_the_help_states_the_range_tests_least_steps():
  from lrlab.cli import common
  from lrlab.finder import suggestions

  parser = common.Parser(prog="lrlab find")
  command.add_arguments(parser)
  (steps,) = [a for a in parser._actions if a.dest == "steps"]
  assert f"at least {suggestions.min_steps()}" in steps.help


def test_the_least_steps_and_the_largest_batch_still_run(run):
  code, out, _ = run("--steps", "23", "--batch-size", "1000", "--out", "ok")
  assert code == 0 and "Results: ok/" in out
  assert out.startswith("quadratic | sgd | range test: 23 steps")  # was "sgd  |" without --opt


@pytest.mark.parametrize("name", ["sweep", "find", "schedules"])
def test_an_unknown_flag_of_a_subcommand_points_to_its_own_help(name, capsys):
  """``lrlab sweep --stepz 3`` named ``lrlab`` and sent the user to ``lrlab --help``, which
  lists no subcommand's flags; the scripts' wrappers already named the subcommand."""
  from lrlab import cli

  with pytest.raises(SystemExit) as stopped:
    cli.main([name, "--stepz", "3"])
  expected = f"lrlab {name}: error: unrecognized arguments: --stepz 3 (see lrlab {name} --help)"
  assert (stopped.value.code, capsys.readouterr().err) == (2, expected + "\n")


def test_a_flag_before_the_command_says_the_command_comes_first(capsys):
  """``lrlab --stepz 3`` took 3 for the command ("invalid choice: '3'")."""
  from lrlab import cli

  with pytest.raises(SystemExit) as stopped:
    cli.main(["--steps", "3", "sweep"])
  expected = ("lrlab: error: the command comes first (lrlab COMMAND [flags], COMMAND one of "
              "sweep, find, schedules, bench); got '--steps' (see lrlab --help)\n")  # fmt: skip
  assert (stopped.value.code, capsys.readouterr().err) == (2, expected)


def test_a_folder_another_command_is_writing_is_refused_before_the_range_test(run, tmp_path):
  # lrlab find checked --out, trained both finders, then met the other command's hold (or its
  # files) and ended in a UsageError's traceback, its results unsaved.
  (tmp_path / "f").mkdir()
  holder = subprocess.Popen(
    [sys.executable, "-c", "import fcntl, os, sys; d = os.open(sys.argv[1], os.O_RDONLY); "
     "fcntl.flock(d, fcntl.LOCK_EX); print('held', flush=True); sys.stdin.read()",
     str(tmp_path / "f")],
    stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
  )  # fmt: skip
  try:
    assert holder.stdout.readline().strip() == "held"
    code, out, err = run("--out", "f")
  finally:
    holder.communicate("", timeout=30)
  assert (code, out) == (2, "")
  assert err.splitlines() == [
    "lrlab find: error: --out 'f' is being written by another lrlab command running now; wait "
    "for it to finish, or give another --out."
  ]
  assert os.listdir(tmp_path / "f") == []


def test_version_prints_the_installed_version(capsys):
  """``lrlab --version`` was refused: 'the command comes first ...; got '--version''."""
  import lrlab
  from lrlab import cli

  with pytest.raises(SystemExit) as stopped:
    cli.main(["--version"])
  assert (stopped.value.code, capsys.readouterr().out) == (0, f"lrlab {lrlab.__version__}\n")
  assert lrlab.__version__ == importlib.metadata.version("lrlab")


def test_parallel_candidates_that_all_diverge_are_reported_so(run):
  # Gradient descent on the quadratic diverges above 2 / L = 2. The warning said the best was
  # "on the edge of its candidates", beside a best lr of 3 with a loss of inf.
  code, out, _ = run("--parallel-lrs", "3:5:3", "--out", "div")
  assert code == 0
  assert out.count("Warning:") == 1
  assert ("Warning: every candidate diverged, the smallest (3) too: widen the candidates below "
          "it.") in out  # fmt: skip
