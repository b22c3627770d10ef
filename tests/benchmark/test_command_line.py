"""The benchmark's command line: its defaults, its entry points, and its one-line errors for
bad flags, raised before anything is measured."""

import pathlib
import subprocess
import sys

import pytest

from lrlab import benchmark

ROOT = pathlib.Path(__file__).resolve().parents[2]


def test_command_line_defaults():
  config = benchmark.config_from_args(benchmark.parse_args(["--quick", "--devices", "3"]))
  assert config.ks == (1, 8) and config.devices == 3 and config.legs == benchmark.LEGS
  full = benchmark.config_from_args(benchmark.parse_args([]))
  assert full.ks == (1, 8, 64, 512) and full.steps == 200 and full.batch_size == 100
  assert benchmark.xla_flags(4, "--foo --xla_force_host_platform_device_count=2") == (
    "--foo --xla_force_host_platform_device_count=4"
  )


@pytest.mark.parametrize(
  ("flags", "rounds", "leg_repeats"),
  [
    ([], 3, 5),
    (["--repeats", "5"], 5, 5),
    (["--repeats", "1"], 1, 1),
    (["--quick"], 2, 2),
    (["--quick", "--repeats", "4"], 4, 4),  # --quick keeps an explicit --repeats
  ],
)
def test_the_chunk_benchmark_takes_the_rounds_asked_for(
  monkeypatch, tmp_path, flags, rounds, leg_repeats
):
  """--chunks times 3 rounds by default, and exactly --repeats where given (it used to cap
  them at 3 without a word); the legs' benchmark keeps its default of 5."""
  from lrlab.benchmark import command

  asked = {}
  monkeypatch.setattr(command, "set_host_devices", lambda count: None)
  monkeypatch.setattr(command.chunks, "run_chunks", lambda out, **kw: asked.update(kw) or {})
  monkeypatch.setattr(command.chunks, "markdown", lambda report: "")
  assert command.main(["--chunks", "--out", str(tmp_path), *flags]) == 0
  assert asked["repeats"] == rounds
  assert command.config_from_args(command.parse_args(flags)).repeats == leg_repeats


@pytest.mark.parametrize("command", [["scripts/benchmark.py"], ["-m", "lrlab.benchmark"]])
def test_the_script_and_the_module_run_the_same_command_line(command):
  done = subprocess.run(
    [sys.executable, *command, "--help"], cwd=ROOT, capture_output=True, text=True, timeout=120
  )
  assert done.returncode == 0, done.stderr
  assert "--quick" in done.stdout and benchmark.command.DESCRIPTION[:40] in done.stdout


@pytest.mark.parametrize(
  "command", [["scripts/benchmark.py"], ["-m", "lrlab.benchmark"], ["-m", "lrlab", "bench"]]
)
def test_every_entry_point_routes_search_to_the_search_benchmark(command):
  done = subprocess.run([sys.executable, *command, "--search", "--help"], cwd=ROOT,
                        capture_output=True, text=True, timeout=120)  # fmt: skip
  assert done.returncode == 0, done.stderr
  assert "Time to the answer of lrlab.search's methods." in done.stdout
  assert "--retrain-seeds" in done.stdout and "--quick" not in done.stdout


@pytest.mark.parametrize(
  ("args", "message"),
  [
    (["--ks", "x"], "argument --ks: must be comma-separated positive integers; got 'x'"),
    (["--ks", "64,0"], "argument --ks: must be comma-separated positive integers; got '64,0'"),
    (["--steps", "-1"], "argument --steps: must be a positive integer; got '-1'"),
    (["--chunk-size", "big"], "argument --chunk-size: must be 'auto' or a positive integer"),
  ],
)
def test_bad_flags_are_one_line_naming_the_flag(capsys, args, message):
  with pytest.raises(SystemExit) as exit_:
    benchmark.parse_args(args)
  assert exit_.value.code == 2
  err = capsys.readouterr().err.strip().splitlines()
  assert message in err[-1]


@pytest.mark.parametrize("args", [["--ks", "x"], ["--legs", ""], ["--legs", "sweep,torhc"]])
def test_every_bad_flag_is_one_line_on_stderr(capsys, args):
  """As every lrlab subcommand's errors (lrlab.cli.common.Parser), not argparse's usage block."""
  with pytest.raises(SystemExit) as exit_:
    benchmark.parse_args(args)
  assert exit_.value.code == 2
  (line,) = capsys.readouterr().err.strip().splitlines()
  assert "error: argument --ks" in line or "error: --legs must be taken from" in line


def test_a_batch_above_the_training_set_is_refused_before_the_ceiling(monkeypatch, capsys):
  from lrlab.benchmark import runner

  def measured(config):
    raise AssertionError("the ceiling was measured")

  # main sets a host device count before JAX starts: in a process where JAX had not started,
  # every later test would see two devices.
  monkeypatch.setattr(benchmark.command, "set_host_devices", lambda count: None)
  monkeypatch.setattr(runner, "measure_machine", measured)
  with pytest.raises(SystemExit) as exit_:
    benchmark.main(["--quick", "--in-process", "--legs", "sequential", "--batch-size", "5000"])
  assert exit_.value.code == 2
  (line,) = capsys.readouterr().err.strip().splitlines()
  assert "--batch-size" in line and "[1, 3600]" in line and "got 5000" in line
  with pytest.raises(ValueError, match=r"batch_size .* got 5000\.$"):
    benchmark.run_benchmark(benchmark.Config(batch_size=5000), isolate=False)
