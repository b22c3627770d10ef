"""Replacing a run (``--overwrite``, ``--fresh``, ``lrlab find`` again) loses nothing to a new
run that fails, is stopped or is killed: the earlier files wait in ``.replaced/``."""

import os
import shutil
import signal
import subprocess
import sys

import pytest

import lrlab
from lrlab.cli import common, output
from lrlab.cli import find as find_command
from lrlab.cli import sweep as sweep_command
from tests.workers import subprocess_env

SWEEP = ["--task", "quadratic", "--optimizer", "sgd", "--steps", "20", "--eval-every", "10",
         "--seeds", "1", "--no-progress", "--out", "o"]  # fmt: skip
OLD, NEW = {"steps": 10, "grid": {"lr": [0.1]}}, {"steps": 20, "grid": {"lr": [0.2]}}


def files_of(folder) -> dict[str, bytes]:
  """Every file under ``folder`` (hidden ones and those in sub-folders too), as bytes by path."""
  return {
    os.path.relpath(os.path.join(root, name), folder): open(os.path.join(root, name), "rb").read()
    for root, _, names in os.walk(folder)
    for name in names
  }


def crash(*args, **kwargs):
  raise RuntimeError("the machine went away")


def test_a_fresh_run_that_fails_keeps_the_results_it_would_replace(
  cli, tmp_path, monkeypatch, capsys
):
  # --fresh removed the finished sweep's files before training: a crash then left nothing.
  run = cli(sweep_command.main, *SWEEP, "--grid", "lr=0.1,0.5")
  assert run()[0] == 0
  old = files_of(tmp_path / "o")
  with monkeypatch.context() as patch:
    patch.setattr(lrlab.sweep, "run", crash)
    with pytest.raises(RuntimeError, match="went away"):
      run("--fresh")
  assert capsys.readouterr().err.splitlines() == [
    "lrlab sweep: the results this run replaces are kept in o/.replaced; run this command again "
    "to finish."
  ]
  assert files_of(tmp_path / "o" / output.REPLACED) == old
  assert sorted(os.listdir(tmp_path / "o")) == [output.REPLACED, "settings.json"]
  code, out, err = run()  # the fresh run, trained to its end: the old results go only now
  assert code == 0 and "holds this sweep" not in out and err == ""
  assert sorted(os.listdir(tmp_path / "o")) == sorted(old)


def test_the_replaced_runs_command_puts_it_back_without_training(cli, tmp_path, monkeypatch):
  run = cli(sweep_command.main, *SWEEP)
  assert run("--grid", "lr=0.1,0.5")[0] == 0
  old = files_of(tmp_path / "o")
  with monkeypatch.context() as patch:
    patch.setattr(lrlab.sweep, "run", crash)
    with pytest.raises(RuntimeError):
      run("--grid", "lr=0.2,0.3", "--overwrite")
    code, out, _ = run("--grid", "lr=0.1,0.5", "--overwrite")  # sweep.run would crash again
  assert code == 0 and "holds this sweep, finished" in out
  assert files_of(tmp_path / "o") == old  # byte for byte, settings.json included


def test_a_find_that_fails_to_write_keeps_the_range_test_it_replaces(cli, tmp_path, monkeypatch):
  # lrlab find always starts over: its claim removed the earlier results before writing anew.
  run = cli(find_command.main, "--task", "quadratic", "--optimizer", "sgd", "--steps", "30",
            "--parallel-lrs", "1e-3:1:4", "--parallel-steps", "20", "--out", "f")  # fmt: skip
  assert run()[0] == 0
  old = files_of(tmp_path / "f")
  with monkeypatch.context() as patch:
    patch.setattr(lrlab.finder, "plot_range_test", crash)  # after two of three files
    with pytest.raises(RuntimeError):
      run()
  assert files_of(tmp_path / "f" / output.REPLACED) == old
  assert run()[0] == 0
  assert sorted(os.listdir(tmp_path / "f")) == sorted(old)


def _write(out, names, text):
  for name in names:
    (out / name).write_text(text)


# The replacement, killed with SIGKILL at its N-th os.replace (moving the old files aside, the
# new settings.json, the rename that removes the old run) or inside removing .replaced.
KILLED = """
import os, shutil, signal, sys
from pathlib import Path
from lrlab.cli import output
from tests.cli.test_replace import NEW, _write
out, at = Path(sys.argv[1]), sys.argv[2]
calls, replace, rmtree = [0], os.replace, shutil.rmtree
def counted(*args):
  calls[0] += 1
  if at == str(calls[0]):
    os.kill(os.getpid(), signal.SIGKILL)
  replace(*args)
def half(path, *args, **kwargs):
  if at == "rmtree" and Path(path).name == output._REMOVING and Path(path).exists():
    os.unlink(sorted(Path(path).glob("*.csv"))[0])
    os.kill(os.getpid(), signal.SIGKILL)
  rmtree(path, *args, **kwargs)
os.replace, shutil.rmtree = counted, half
output.claim(str(out), "sweep", NEW, output.OWNED["sweep"], overwrite=True)
if at == "train":
  os.kill(os.getpid(), signal.SIGKILL)
_write(out, ["results.csv", "sweep.json"], "new")
output.finish(succeeded=True)
"""


# The old run's 5 files move aside (1-5), their folder is renamed .replaced (6), settings.json
# is written (7), the new run trains, then .replaced is renamed to be removed (8).
@pytest.mark.parametrize("at", ["1", "3", "6", "7", "train", "8", "rmtree"])
def test_a_replacement_killed_anywhere_leaves_a_folder_the_next_command_makes_whole(tmp_path, at):
  # Killed moving the old files into .replaced, a re-run found some there and some not: it kept
  # the half in .replaced and removed the rest; one killed removing .replaced left half a run
  # that the next replacement kept as if whole.
  out = tmp_path / "o"
  output.claim(str(out), "sweep", OLD, output.OWNED["sweep"])
  _write(out, ["results.csv", "sweep.json", "curves.npz"], "old")
  (out / "checkpoint").mkdir()
  output.finish(succeeded=True)
  output.release()
  old = files_of(out)
  repo = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
  killed = subprocess.run(
    [sys.executable, "-c", KILLED, str(out), at], capture_output=True, text=True, timeout=300,
    env=subprocess_env(PYTHONPATH=repo), cwd=repo,
  )  # fmt: skip
  assert killed.returncode == -signal.SIGKILL, killed.stderr
  committed = at == "rmtree"  # killed after the new run's results replaced the old
  for rerun in ("new", "old"):
    folder = tmp_path / rerun
    shutil.copytree(out, folder, symlinks=True)
    try:
      if rerun == "new":  # the killed command again, as it was typed
        if at in ("1", "3", "6"):  # killed before the old run was set aside: it is still here
          with pytest.raises(common.UsageError, match="holds another run"):
            output.claim(str(folder), "sweep", NEW, output.OWNED["sweep"])
          assert files_of(folder) == old
        output.claim(str(folder), "sweep", NEW, output.OWNED["sweep"], overwrite=True)
        _write(folder, ["results.csv", "sweep.json"], "new")
        assert output.finish(succeeded=True) == []
        assert sorted(os.listdir(folder)) == ["results.csv", "settings.json", "sweep.json"]
      else:  # the old run's command, to have it back
        done = output.claim(str(folder), "sweep", OLD, output.OWNED["sweep"], overwrite=True)
        assert done == (not committed)
        if not committed:
          assert files_of(folder) == old
          assert sorted(os.listdir(folder)) == sorted([*old, "checkpoint"])
        assert output.finish(succeeded=True) == []
    finally:
      output.release()
