"""``lrlab sweep``: nothing lost on a re-run, one sweep per folder, Ctrl-C, one-line errors."""

import errno
import json
import os
import signal
import subprocess
import sys
import types

import pytest

from lrlab.cli import common
from lrlab.cli import sweep as command
from tests.workers import subprocess_env

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TINY = ["--task", "quadratic", "--optimizer", "sgd", "--steps", "20", "--eval-every", "10",
        "--batch-size", "50", "--seeds", "1", "--no-progress"]  # fmt: skip


@pytest.fixture
def run(cli):
  """``lrlab sweep ARGS`` in this process, from ``tmp_path``: ``(code, stdout, stderr)``."""
  return cli(command.main, *TINY)


def _summary(folder):
  return json.loads((folder / "sweep.json").read_text())


def test_default_folders_differ_by_settings_and_hold_one_sweep_each(run, tmp_path):
  assert run("--grid", "lr=0.1,0.5")[0] == 0
  assert run("--grid", "lr=0.1,0.5", "--schedule", "cosine")[0] == 0
  folders = sorted((tmp_path / "results").iterdir())
  assert [f.name[: -len("-12345678")] for f in folders] == ["sweep-quadratic-sgd"] * 2
  schedules = {_summary(f)["config"]["tx"]["schedule"]["name"] for f in folders}
  assert schedules == {"constant", "cosine"}
  for folder in folders:
    claim = json.loads((folder / "settings.json").read_text())
    assert folder.name.endswith(claim["hash"]) and claim["command"] == "sweep"
    assert not (folder / "checkpoint").exists()


def test_the_same_command_again_reads_the_finished_sweep(run, tmp_path):
  out = str(tmp_path / "s")
  code, first, _ = run("--grid", "lr=0.1,0.5", "--out", out)
  assert code == 0 and "model-steps/s" in first
  trained = _summary(tmp_path / "s")["metadata"]["wall_seconds"]
  code, again, _ = run("--grid", "lr=0.1,0.5", "--out", out, "--tolerance", "0.3")
  assert code == 0 and "finished" in again and "model-steps/s" not in again  # nothing trained
  assert "within 0.3 of the best" in again
  saved = _summary(tmp_path / "s")
  assert saved["metadata"]["wall_seconds"] == trained
  assert saved["summary"]["tolerance"] == 0.3  # the stored summary follows the printed one
  code, fresh, _ = run("--grid", "lr=0.1,0.5", "--out", out, "--fresh")
  assert code == 0 and "model-steps/s" in fresh
  assert _summary(tmp_path / "s")["metadata"]["wall_seconds"] != trained


def test_a_sweep_killed_writing_its_first_checkpoint_trains_again(run, tmp_path, monkeypatch):
  """SIGKILL inside the first checkpoint's write leaves checkpoint/ with a temporary file and no
  results: the same command trains (it said "finished" and failed, asking for --fresh)."""
  from lrlab.sweep import checkpoint

  def killed(directory, *args, **kwargs):
    os.makedirs(directory, exist_ok=True)  # as checkpoint.save makes it, then dies mid-write
    (tmp_path / "s" / "checkpoint" / f".tmp-x{checkpoint.FILENAME}").write_bytes(b"PK\x03")
    raise KeyboardInterrupt

  with monkeypatch.context() as patch:
    patch.setattr(checkpoint, "save", killed)
    with pytest.raises(KeyboardInterrupt):
      run("--grid", "lr=0.1,0.5", "--out", "s")
  assert os.listdir(tmp_path / "s" / "checkpoint") == [f".tmp-x{checkpoint.FILENAME}"]
  code, printed, err = run("--grid", "lr=0.1,0.5", "--out", "s")
  assert (code, err) == (0, "") and "model-steps/s" in printed and "finished" not in printed
  assert (tmp_path / "s" / "sweep.json").is_file()
  assert not (tmp_path / "s" / "checkpoint").exists()  # the temporary file is gone with it


def test_another_sweep_into_a_used_folder_needs_overwrite(run, tmp_path):
  out = tmp_path / "s"
  assert run("--grid", "lr=0.1,0.5,1.0", "--grid", "momentum=0.0,0.9", "--out", str(out))[0] == 0
  assert (out / "heatmap_lr_momentum.png").exists()
  code, stdout, stderr = run("--grid", "lr=0.1,0.5", "--out", str(out))
  assert code == 2 and stdout == ""
  assert len(stderr.strip().splitlines()) == 1
  assert "--out" in stderr and "holds another run" in stderr and "--overwrite" in stderr
  # it names what changed (the grid's columns; a value over 40 characters is cut)
  assert ': grid {"lr": [0.1, 0.1, 0.5, 0.5, 1.0, 1.0], … there, {"lr": [0.1, 0.5]} here;' in stderr
  code, stdout, stderr = run("--grid", "lr=0.1,0.5", "--out", str(out), "--fresh")
  assert code == 2 and "--overwrite" in stderr  # --fresh restarts this sweep, not another
  assert run("--grid", "lr=0.1,0.5", "--out", str(out), "--overwrite")[0] == 0
  assert not (out / "heatmap_lr_momentum.png").exists()  # the old sweep's files are gone
  assert list(_summary(out)["grid"]) == ["lr"]


@pytest.mark.parametrize(
  ("args", "message"),
  [
    (["--tolerance", "-1"], "argument --tolerance: must be a number >= 0; got '-1'"),
    (["--steps", "0"], "argument --steps: must be a positive integer; got '0'"),
    (["--lr", "nan"], "argument --lr: must be a positive number; got 'nan'"),
    (["--folds", "1"], "argument --folds: must be an integer >= 2; got '1'"),
    (["--chunk-size", "big"], "argument --chunk-size: must be 'auto' or a positive integer"),
    (["--metric", "accuracy"], "argument --metric: invalid choice: 'accuracy'"),
    (["--fresh", "--overwrite"], "not allowed with argument"),
  ],
)
def test_bad_flags_are_one_line_naming_the_flag(run, capsys, args, message):
  with pytest.raises(SystemExit) as exit_:
    run(*args)
  assert exit_.value.code == 2
  out, err = capsys.readouterr()
  assert out == "" and len(err.strip().splitlines()) == 1
  assert err.startswith("lrlab sweep: error: ") and message in err


def test_bad_flags_print_one_line(args=("--tolerance", "-1")):
  done = subprocess.run(
    [sys.executable, "-m", "lrlab", "sweep", *args], capture_output=True, text=True, timeout=60,
    env=subprocess_env(),
  )  # fmt: skip
  assert done.returncode == 2 and done.stdout == ""
  assert done.stderr.strip().splitlines() == [
    "lrlab sweep: error: argument --tolerance: must be a number >= 0; got '-1' "
    "(see lrlab sweep --help)"
  ]


@pytest.mark.parametrize(
  "flag", [["--metric", "final_val_accuracy"], ["--target", "val_accuracy=0.9"]]
)
def test_an_accuracy_the_task_lacks_stops_before_any_compute(run, tmp_path, flag):
  # It used to train the whole sweep and fail when saving the summary.
  code, stdout, stderr = run("--grid", "lr=0.1,0.5", "--out", str(tmp_path / "s"), *flag)
  assert code == 2 and stdout == "" and not (tmp_path / "s").exists()
  assert stderr.strip().splitlines() == [
    f"lrlab sweep: error: {flag[0]} must name a metric task 'quadratic' reports; it has no "
    f"accuracy, so '{flag[1].partition('=')[0]}' does not exist."
  ]


@pytest.mark.parametrize("where", ["file", "inside a file"])
def test_an_out_that_cannot_be_written_stops_before_any_compute(run, tmp_path, where):
  (tmp_path / "taken").write_text("a file")
  out = tmp_path / "taken" if where == "file" else tmp_path / "taken" / "sub"
  code, stdout, stderr = run("--grid", "lr=0.1,0.5", "--out", str(out))
  assert code == 2 and stdout == ""  # nothing announced, nothing trained
  assert stderr.strip().splitlines() == [
    f"lrlab sweep: error: --out must be a folder to create or reuse; got {str(out)!r}, which is "
    "a file."
    if where == "file"
    else f"lrlab sweep: error: --out must be a folder to create or reuse; got {str(out)!r}, "
    "inside a file."
  ]


def test_every_flag_says_its_default():
  from lrlab import cli

  parser = cli.parser()
  (commands,) = [a for a in parser._actions if a.dest == "command"]
  for name, sub in commands.choices.items():
    if name == "bench":  # the benchmark's own flags
      continue
    for action in sub._actions:
      if action.dest != "help":
        assert "default" in sub.formatter_class("x")._get_help_string(action), (name, action)


def test_throughput_counts_only_the_steps_run_in_this_process():
  # 5 members in chunks of 2 (3 chunks, the last half padding), 2 seeds, 100 steps in
  # segments of 20: resumed in seed 1, chunk 1, after 2 segments.
  config = {"steps": 100, "chunk_size": 2, "windows_per_segment": 2, "eval_every": 10}
  result = types.SimpleNamespace(
    config=config, num_members=5, num_seeds=2,
    metadata={"resumed_from": {"seed": 1, "chunk": 1, "segment": 2}},
  )  # fmt: skip
  before = 5 * 100 + 2 * 100 + 2 * 2 * 20  # seed 0; chunk 0 of seed 1; 2 segments of chunk 1
  assert command.steps_run_here(result) == 2 * 5 * 100 - before
  result.metadata["resumed_from"] = None
  assert command.steps_run_here(result) == 2 * 5 * 100


def test_sigint_saves_a_checkpoint_and_the_same_command_continues(tmp_path):
  out = tmp_path / "s"
  args = [sys.executable, "-m", "lrlab", "sweep", "--task", "digits-logreg", "--grid",
          "lr=1e-3:1:8:log", "--steps", "2000", "--eval-every", "20", "--batch-size", "32",
          "--seeds", "1", "--devices", "1", "--no-progress", "--out", str(out)]  # fmt: skip
  env = subprocess_env()
  with subprocess.Popen(
    args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=tmp_path
  ) as process:
    header = process.stdout.readline()  # printed just before training starts
    assert header.startswith("digits-logreg | adam"), header
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=120)
  assert process.returncode == 130, stderr
  assert "Traceback" not in stderr
  last = stderr.strip().splitlines()[-1]
  assert last.startswith("Stopped (SIGINT): checkpoint saved in") and "same command" in last
  assert (out / "checkpoint").is_dir() and not (out / "sweep.json").exists()

  done = subprocess.run(args, capture_output=True, text=True, env=env, cwd=tmp_path, timeout=180)
  assert done.returncode == 0, done.stderr
  assert "| resuming" in done.stdout.splitlines()[0]
  assert "resumed: counts only the steps run now" in done.stdout
  assert _summary(out)["metadata"]["resumed_from"]["segment"] >= 1
  assert not (out / "checkpoint").exists()


@pytest.mark.parametrize("name", ["SIGINT", "SIGTERM"])
def test_a_signal_asks_to_stop_and_the_handler_is_restored(name):
  number = getattr(signal, name)
  before = signal.getsignal(number)
  with common.StopRequest() as stop:
    assert not stop()
    os.kill(os.getpid(), number)
    assert stop() and stop.received == name
  assert signal.getsignal(number) is before


def test_folds_save_and_print_the_cross_validated_sweep(run, tmp_path):
  out = tmp_path / "cv"
  code, printed, _ = run("--grid", "lr=0.1,0.5", "--folds", "2", "--out", str(out))
  assert code == 0 and "Cross-validated over 2 folds" in printed
  saved = _summary(out)
  assert saved["config"]["cross_validated"] == 2 and "fold" not in saved["grid"]
  assert len(saved["seeds"]) == 2  # 1 seed x 2 folds, as replicates
  code, again, _ = run("--grid", "lr=0.1,0.5", "--folds", "2", "--out", str(out))
  assert code == 0 and "finished" in again and "Cross-validated over 2 folds" in again
  best = lambda text: next(line for line in text.splitlines() if line.startswith("Best"))
  assert best(again) == best(printed)


def test_chunk_size_auto_is_measured_and_recorded(run, tmp_path, monkeypatch):
  monkeypatch.setenv("LRLAB_CACHE_DIR", str(tmp_path / "cache"))
  code, printed, _ = run("--grid", "lr=0.1,0.2,0.3,0.5", "--chunk-size", "auto", "--out", "a")
  assert code == 0 and "Best lr" in printed
  choice = _summary(tmp_path / "a")["metadata"]["chunk_choice"]
  assert choice["chunk_size"] == _summary(tmp_path / "a")["config"]["chunk_size"]
  assert (tmp_path / "cache" / "chunk_sizes.json").exists()


@pytest.mark.parametrize(
  ("args", "message"),
  [
    (("--steps", "25"), "error: --eval-every must divide --steps (25); got 10."),
    (("--batch-size", "5000"), "error: --batch-size must be at most the 1000 training examples"),
    (("--target", "foo=0.5"), "error: --target 'foo=0.5': target metric must be one of"),
    (("--opt", "momentum=2"), "error: --opt momentum=2: momentum must be in"),
    (("--search", "halving", "--folds", "2"), "error: --search takes neither --folds nor --target"),
  ],
)
def test_a_bad_flag_with_overwrite_keeps_the_old_results(run, tmp_path, args, message):
  assert run("--grid", "lr=0.1,0.2", "--out", "r")[0] == 0
  before = sorted(os.listdir(tmp_path / "r"))
  code, out, err = run("--grid", "lr=0.1,0.3", "--out", "r", "--overwrite", *args)
  assert (code, out, err.count("\n")) == (2, "", 1) and err.startswith(f"lrlab sweep: {message}")
  assert sorted(os.listdir(tmp_path / "r")) == before


# --folds: a batch or a fold count the folds cannot hold is refused before the folder is
# claimed, so --overwrite keeps the old results.
@pytest.mark.parametrize(
  ("args", "message"),
  [
    # quadratic: 1000 train + 250 val examples; 2 folds of 625, each trains on 625.
    (("--folds", "2", "--batch-size", "900"),
     "error: --batch-size must be at most the 625 examples each fold trains on with --folds 2 "
     "of task 'quadratic'; got 900."),
    (("--folds", "2000", "--batch-size", "1"),
     "error: --folds must be at most the 1250 training and validation examples of task "
     "'quadratic'; got 2000."),
  ],
)  # fmt: skip
def test_folds_that_do_not_fit_stop_before_the_overwrite(run, tmp_path, args, message):
  # These used to claim the folder (removing the old sweep under --overwrite), print the
  # header and fail in lrlab.train.Trainer naming batch_size or folds.
  assert run("--grid", "lr=0.1,0.2", "--out", "r")[0] == 0
  before = sorted(os.listdir(tmp_path / "r"))
  code, out, err = run("--grid", "lr=0.1,0.3", "--out", "r", "--overwrite", *args)
  assert (code, out) == (2, "") and err.strip().splitlines() == [f"lrlab sweep: {message}"]
  assert sorted(os.listdir(tmp_path / "r")) == before


def test_the_largest_batch_a_fold_holds_still_runs(run):
  code, out, _ = run("--grid", "lr=0.1", "--folds", "2", "--batch-size", "625")
  assert code == 0 and "Cross-validated over 2 folds" in out


# Each of these used to train (or to fail after the folder was claimed): a value the optimizer
# refuses was checked for the first member only, a structural option was traced, and a fixed
# argument that an axis also gave, or one given twice, was dropped silently.
@pytest.mark.parametrize(
  ("args", "message"),
  [
    (("--grid", "lr=0.1,-0.1"),
     "error: --grid at {'lr': -0.1}: learning_rate must be a finite number "
     ">= 0; got -0.1."),
    (("--grid", "lr=0.1", "--grid", "momentum=0.5,1.5"),
     "error: --grid at {'lr': 0.1, 'momentum': 1.5}: momentum must be in "
     "[0.0, 1.0); got 1.5."),
    (("--grid", "lr=0.1", "--grid", "nesterov=0,1", "--opt", "momentum=0.9"),
     "error: --grid axes must be numeric arguments, among dampening, l1, lr, momentum, "
     "weight_decay; got nesterov, a structural option fixed for the whole sweep: give it with "
     "--opt or --schedule-arg."),
    (("--grid", "lr=0.1", "--grid", "momentum=0.0,0.5", "--opt", "momentum=0.9"),
     "error: --opt fixes an argument that a --grid axis varies; give it once; got momentum."),
    (("--grid", "lr=0.1", "--opt", "momentum=0.5", "--opt", "momentum=0.9"),
     "error: --opt gives momentum more than once; give it once; got 'momentum=0.9' again."),
    (("--grid", "lr=0:1:3:log"), "error: --grid: bad range in axis spec 'lr=0:1:3:log'"),
    (("--grid", "lr=0.1", "--grid", "foo=1,2"), "error: a --grid axis must be among dampening, "
     "l1, lr, momentum, nesterov, weight_decay; got foo."),
  ],
)  # fmt: skip
def test_flags_that_disagree_stop_before_any_compute(run, tmp_path, args, message):
  code, out, err = run(*args, "--out", "r")
  assert (code, out, err.count("\n")) == (2, "", 1) and err.startswith(f"lrlab sweep: {message}")
  assert not (tmp_path / "r").exists()


def test_warmup_cosine_trains_the_cosine_it_records(run, tmp_path):
  # It recorded total_steps=20 but trained a cosine of 19 steps after its 1-step warmup, and
  # dropped --schedule-arg total_steps and a total_steps axis.
  import jax
  import numpy as np

  from lrlab import optimizers, schedules, sweep, tasks

  task = tasks.get("quadratic")
  for extra, cosine in (((), 19), (("--schedule-arg", "total_steps=5"), 5)):
    out = tmp_path / f"w{cosine}"
    flags = ("--schedule", "warmup-cosine", "--grid", "lr=0.1,0.5", "--out", str(out), *extra)
    assert run(*flags)[0] == 0
    config = _summary(out)["config"]["tx"]["schedule"]
    assert (config["total_steps"], config["warmup_steps"]) == (cosine, 1)
    make_tx = lambda hp, n=cosine: optimizers.sgd(
      schedules.warmup(schedules.cosine_annealing(hp["lr"], n), 1)
    )
    reference = sweep.run(
      task, make_tx, {"lr": np.array([0.1, 0.5])}, steps=20, batch_size=50, eval_every=10,
      seeds=1, key=jax.random.key(0), progress=False,
    )  # fmt: skip
    trained = sweep.SweepResult.load(str(out))
    loss = lambda result: [row["final_val_loss"] for row in result.table()]
    np.testing.assert_allclose(loss(trained), loss(reference), rtol=1e-6)


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="names an open file by /proc")
def test_a_full_disk_is_one_line_and_the_same_command_resumes(run, tmp_path, monkeypatch):
  # A disk that filled while the results were saved ended the sweep in 60 lines of tracebacks
  # (exit 1), saying nothing of the checkpoint it kept.
  fsync, full = os.fsync, [True]

  def fsync_on_a_full_disk(fd):
    if full[0] and os.readlink(f"/proc/self/fd/{fd}").endswith("results.csv"):
      raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    fsync(fd)

  monkeypatch.setattr(os, "fsync", fsync_on_a_full_disk)
  code, _, err = run("--grid", "lr=0.1,0.5", "--out", "o")
  assert code == 2
  assert err.splitlines() == [
    "lrlab sweep: error: No space left on device: free some space, or give an --out on another "
    "disk, and run the same command again; the files and checkpoints saved before this point "
    "are kept."
  ]
  assert (tmp_path / "o" / "checkpoint").is_dir() and not (tmp_path / "o" / "sweep.json").exists()
  full[0] = False
  code, out, _ = run("--grid", "lr=0.1,0.5", "--out", "o")
  assert code == 0 and "| resuming" in out
  assert run("--grid", "lr=0.1,0.5", "--out", "whole")[0] == 0
  assert (tmp_path / "o" / "results.csv").read_text() == (
    tmp_path / "whole" / "results.csv"
  ).read_text()
