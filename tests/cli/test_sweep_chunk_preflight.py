"""``lrlab sweep --chunk-size``: a size the devices cannot share is refused before the folder is
claimed, so ``--overwrite`` keeps the old results (a fresh process, which exposes two devices)."""

import os
import subprocess
import sys

import pytest

from tests.workers import subprocess_env

TINY = ["--task", "quadratic", "--optimizer", "sgd", "--steps", "36", "--eval-every", "4",
        "--batch-size", "50", "--seeds", "1", "--no-progress", "--devices", "2"]  # fmt: skip


def _sweep(tmp_path, *args):
  return subprocess.run(
    [sys.executable, "-m", "lrlab", "sweep", *TINY, *args], capture_output=True, text=True,
    timeout=300, cwd=tmp_path, env=subprocess_env(),
  )  # fmt: skip


@pytest.mark.parametrize("search", [(), ("--search", "halving", "--min-steps", "4")])
def test_a_chunk_size_the_devices_cannot_share_stops_before_the_overwrite(tmp_path, search):
  # It used to claim the folder (removing the old sweep under --overwrite), print the header
  # and fail in lrlab.sweep.run / lrlab.search naming chunk_size.
  assert _sweep(tmp_path, "--grid", "lr=0.1,0.2", "--out", "r").returncode == 0
  before = sorted(os.listdir(tmp_path / "r"))
  done = _sweep(tmp_path, "--grid", "lr=0.01:1:9:log", "--out", "r", "--overwrite",
                "--chunk-size", "3", *search)  # fmt: skip
  assert (done.returncode, done.stdout) == (2, "")
  assert done.stderr.strip().splitlines() == [
    "lrlab sweep: error: --chunk-size must be a multiple of the number of devices (2, see "
    "--devices) or 'auto'; got 3."
  ]
  assert sorted(os.listdir(tmp_path / "r")) == before
