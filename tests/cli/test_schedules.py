"""``lrlab schedules``: every family drawn, the folder holding one run, one-line errors."""

import json
import os
import subprocess
import sys

import pytest

from lrlab.cli import schedules

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_draws_every_family_and_replaces_an_earlier_run(tmp_path, capsys):
  (tmp_path / "decays.png").write_text("an earlier run's figure")
  assert schedules.main(["--steps", "40", "--lr", "0.5", "--out", str(tmp_path)]) == 0
  printed = capsys.readouterr().out
  assert "one_cycle" in printed and "t=39" in printed
  for family in schedules.FAMILIES:
    assert (tmp_path / f"{family}.png").read_bytes().startswith(b"\x89PNG")
  claim = json.loads((tmp_path / "settings.json").read_text())
  assert claim["settings"] == {"steps": 40, "lr": 0.5}


@pytest.mark.parametrize(
  ("args", "message"),
  [
    (["--lr", "-1"], "lrlab schedules: error: argument --lr: must be a positive number; got '-1'"),
    (["--steps", "10"], "lrlab schedules: error: --steps must be in [20, 2**31 - 1]; got 10."),
    # The step counter is int32: 3e9 steps overflowed while drawing, with a traceback.
    (
      ["--steps", "3000000000"],
      "lrlab schedules: error: --steps must be in [20, 2**31 - 1]; got 3000000000.",
    ),
  ],
)
def test_bad_flags_are_one_line(tmp_path, args, message):
  script = os.path.join(ROOT, "scripts", "schedule_demo.py")  # the wrapper runs the subcommand
  done = subprocess.run(
    [sys.executable, script, *args, "--out", str(tmp_path / "x")],
    capture_output=True, text=True, timeout=60,
  )  # fmt: skip
  assert done.returncode == 2 and done.stdout == ""
  (line,) = done.stderr.strip().splitlines()
  assert line.startswith(message)
  assert not (tmp_path / "x").exists()
