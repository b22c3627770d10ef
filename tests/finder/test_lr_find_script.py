"""``scripts/lr_find.py`` (``lrlab find``) end to end at a tiny size, and its errors."""

import json
import os
import subprocess
import sys

from tests.workers import subprocess_env

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SCRIPT = os.path.join(ROOT, "scripts", "lr_find.py")


def _run(*args):
  env = subprocess_env(PYTHONPATH=ROOT)
  return subprocess.run(
    [sys.executable, SCRIPT, *args], capture_output=True, text=True, cwd=ROOT, env=env, timeout=300
  )


def test_both_finders_side_by_side(tmp_path):
  done = _run(
    "--task", "quadratic", "--optimizer", "sgd", "--batch-size", "full", "--steps", "40",
    "--parallel-lrs", "0.1:3:4", "--parallel-steps", "20", "--out", str(tmp_path),
  )  # fmt: skip
  assert done.returncode == 0, done.stderr
  for rule in ("steep", "valley", "minimum", "slide", "lightning", "parallel"):
    assert rule in done.stdout
  assert "/ parallel" in done.stdout and "usable range" in done.stdout
  saved = json.loads((tmp_path / "parallel.json").read_text())
  assert saved["candidates"][0] == 0.1 and saved["steps"] == 20
  assert (tmp_path / "lr_find.png").stat().st_size > 0
  assert json.loads((tmp_path / "range_test.json").read_text())["config"]["steps"] == 40


def test_errors_are_reported_without_a_traceback(tmp_path):
  done = _run("--optimizer", "sgdd", "--out", str(tmp_path))
  assert done.returncode == 2 and "--optimizer must be one of" in done.stderr
  done = _run("--task", "quadratic", "--steps", "10", "--batch-size", "full")
  assert done.returncode == 2 and "--steps must be at least 23" in done.stderr


def test_bad_flags_and_outputs_stop_before_any_compute(tmp_path):
  done = _run("--parallel-steps", "-1")
  assert done.returncode == 2 and done.stdout == ""
  assert done.stderr.strip().splitlines() == [
    "lrlab find: error: argument --parallel-steps: must be a positive integer; got '-1' "
    "(see lrlab find --help)"
  ]
  (tmp_path / "taken").write_text("a file")
  done = _run("--task", "quadratic", "--out", str(tmp_path / "taken"))
  assert done.returncode == 2 and done.stdout == ""  # nothing trained, nothing lost
  assert done.stderr.strip().splitlines() == [
    f"lrlab find: error: --out must be a folder to create or reuse; got "
    f"{str(tmp_path / 'taken')!r}, which is a file."
  ]


def test_another_run_in_the_folder_needs_overwrite(tmp_path):
  (tmp_path / "range_test.json").write_text("{}")  # a run that left no settings.json
  args = (
    "--task", "quadratic", "--optimizer", "sgd", "--batch-size", "full", "--steps", "30",
    "--parallel-lrs", "0.1:3:2", "--parallel-steps", "10", "--out", str(tmp_path),
  )  # fmt: skip
  done = _run(*args)
  assert done.returncode == 2 and "--overwrite" in done.stderr and done.stdout == ""
  done = _run(*args, "--overwrite")
  assert done.returncode == 0, done.stderr
  assert json.loads((tmp_path / "range_test.json").read_text())["config"]["steps"] == 30
  assert json.loads((tmp_path / "settings.json").read_text())["command"] == "find"
