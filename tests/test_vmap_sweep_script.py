"""``scripts/vmap_sweep.py`` end to end at a tiny size, and its errors."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from tests.workers import subprocess_env

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPT = os.path.join(ROOT, "scripts", "vmap_sweep.py")


def _run(*args):
  env = subprocess_env(PYTHONPATH=ROOT)
  return subprocess.run(
    [sys.executable, SCRIPT, "--no-progress", *args],
    capture_output=True,
    text=True,
    cwd=ROOT,
    env=env,
    timeout=300,
  )


def test_default_run_at_a_tiny_size(tmp_path):
  out = tmp_path / "sweep"
  done = _run(
    "--task",
    "digits-logreg",
    "--grid",
    "lr=1e-3:30:6:log",
    "--steps",
    "40",
    "--eval-every",
    "10",
    "--batch-size",
    "32",
    "--seeds",
    "2",
    "--out",
    str(out),
  )
  assert done.returncode == 0, done.stderr
  assert "Best lr =" in done.stdout and "Usable range" in done.stdout
  assert f"{os.cpu_count()} cpu device(s)" in done.stdout  # one device per core
  saved = json.loads((out / "sweep.json").read_text())
  assert saved["config"]["task"] == "digits-logreg"
  assert saved["config"]["tx"] == {"optimizer": "adam", "schedule": {"name": "constant"}}
  assert "lr=1e-3:30:6:log" in saved["metadata"]["command"]  # the command that made it
  with np.load(out / "curves.npz") as curves:
    assert curves["val_loss"].shape == (2, 6, 5)
  assert (out / "sensitivity.png").exists() and (out / "results.csv").exists()
  assert not (out / "checkpoint").exists()


def test_schedule_and_momentum_axes_are_routed(tmp_path):
  done = _run(
    "--task",
    "quadratic",
    "--optimizer",
    "sgd",
    "--schedule",
    "one-cycle",
    "--grid",
    "lr=0.1,0.5",
    "--grid",
    "momentum=0.0,0.9",
    "--grid",
    "pct_start=0.2,0.4",
    "--steps",
    "20",
    "--eval-every",
    "10",
    "--batch-size",
    "50",
    "--seeds",
    "1",
    "--out",
    str(tmp_path / "s"),
  )
  assert done.returncode == 0, done.stderr
  assert "8 members" in done.stdout
  # What make_tx built is recorded: the fixed schedule arguments, not the grid's axes.
  config = json.loads((tmp_path / "s" / "sweep.json").read_text())["config"]
  assert config["tx"] == {
    "optimizer": "sgd",
    "schedule": {"name": "one-cycle", "total_steps": 20},
  }


@pytest.mark.parametrize(
  ("args", "message"),
  [
    (["--task", "cifar"], "name must be one of"),
    (["--optimizer", "lion"], "--optimizer must be one of"),
    (["--grid", "lr=1e-3:1"], "NAME=LO:HI:N:log"),
    (["--grid", "gamma=0.1,0.2"], "a --grid axis must be among"),
    (["--opt", "momentum"], "--opt takes NAME=VALUE"),
    (["--target", "val_accuracy"], "--target takes METRIC=VALUE"),
  ],
)
def test_bad_arguments_say_what_is_allowed(args, message, tmp_path):
  done = _run(*args, "--steps", "10", "--eval-every", "5", "--out", str(tmp_path / "x"))
  assert done.returncode == 2
  assert message in done.stderr, done.stderr
