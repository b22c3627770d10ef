"""``scripts/lr_find.py`` end to end at a tiny size, and its errors."""

import json
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SCRIPT = os.path.join(ROOT, "scripts", "lr_find.py")


def _run(*args):
  env = dict(os.environ, PYTHONPATH=ROOT)
  env.pop("XLA_FLAGS", None)
  return subprocess.run(
    [sys.executable, SCRIPT, *args], capture_output=True, text=True, cwd=ROOT, env=env, timeout=300
  )


def test_both_finders_side_by_side(tmp_path):
  done = _run(
    "--task", "quadratic", "--optimizer", "sgd", "--batch-size", "full", "--num-steps", "40",
    "--parallel-lrs", "0.1:3:4", "--parallel-steps", "20", "--out", str(tmp_path),
  )  # fmt: skip
  assert done.returncode == 0, done.stderr
  for rule in ("steep", "valley", "minimum", "slide", "lightning", "parallel"):
    assert rule in done.stdout
  assert "/ parallel" in done.stdout and "usable range" in done.stdout
  saved = json.loads((tmp_path / "parallel.json").read_text())
  assert saved["candidates"][0] == 0.1 and saved["steps"] == 20
  assert (tmp_path / "lr_find.png").stat().st_size > 0
  assert json.loads((tmp_path / "range_test.json").read_text())["config"]["num_steps"] == 40


def test_errors_are_reported_without_a_traceback(tmp_path):
  done = _run("--optimizer", "sgdd", "--out", str(tmp_path))
  assert done.returncode == 2 and "--optimizer must be one of" in done.stderr
  done = _run("--task", "quadratic", "--num-steps", "10", "--batch-size", "full")
  assert done.returncode == 2 and "num_steps must be an integer >= 23" in done.stderr
