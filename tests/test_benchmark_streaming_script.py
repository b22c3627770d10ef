"""``scripts/benchmark_streaming.py --quick`` end to end: the report's shape, its arithmetic and
the streamed == resident check, never its timings."""

import json
import math
import os
import pathlib
import subprocess
import sys

import pytest

from tests.workers import subprocess_env

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPT = os.path.join(ROOT, "scripts", "benchmark_streaming.py")


@pytest.fixture(scope="module")
def quick(tmp_path_factory):
  out = tmp_path_factory.mktemp("streaming")
  env = subprocess_env(PYTHONPATH=ROOT)  # the script exposes one host device per core itself
  done = subprocess.run(
    [sys.executable, SCRIPT, "--quick", "--out", str(out)],
    capture_output=True,
    text=True,
    cwd=ROOT,
    env=env,
    timeout=300,
  )
  assert done.returncode == 0, done.stderr[-3000:]
  with open(out / "streaming.json") as f:
    report = json.load(f)
  return report, (out / "streaming.md").read_text(), done.stdout


def test_report_has_every_size_and_leg(quick):
  report, _, _ = quick
  assert set(report) >= {"config", "environment", "sizes", "goal", "goal_met", "bit_identical"}
  config, env = report["config"], report["environment"]
  assert config["k"] == 8 and config["steps"] == 20 and config["repeats"] == 2
  assert env["cores"] >= 1 and env["jax"] and env["cpu"] and isinstance(env["caches"], list)
  assert len(env["devices"]) == config["devices"]
  assert [s["num_samples"] for s in report["sizes"]] == [500, 5000]
  legs = [[r["leg"] for r in s["rows"]] for s in report["sizes"]]
  assert legs == [["resident", "streamed"], ["resident", "streamed", "memmap"]]
  for size in report["sizes"]:
    assert sum(size["split_sizes"].values()) == size["num_samples"]
    assert set(size["identity"]) == {r["leg"] for r in size["rows"]} - {"resident"}


def test_rates_ratios_and_costs_are_consistent(quick):
  report, _, _ = quick
  config = report["config"]
  for size in report["sizes"]:
    rows = {r["leg"]: r for r in size["rows"]}
    for row in rows.values():
      assert len(row["walls"]) == config["repeats"] and row["steady_s"] == min(row["walls"])
      assert math.isclose(row["model_steps_per_s"], config["k"] * config["steps"] / row["steady_s"])
      assert row["first_call_s"] > 0 and row["recompiles"] == 0  # the timed calls reuse programs
    for leg, row in rows.items():
      if leg == "resident":
        assert "ratio" not in row
        continue
      assert row["streamed"] and not rows["resident"]["streamed"]
      ratio = row["model_steps_per_s"] / rows["resident"]["model_steps_per_s"]
      assert math.isclose(row["ratio"], ratio) and math.isclose(row["cost"], 1 - ratio)
      assert row["goal_met"] == (ratio >= report["goal"]["ratio_at_least"])
  streamed = [r for s in report["sizes"] for r in s["rows"] if r["leg"] != "resident"]
  assert report["goal_met"] == all(r["goal_met"] for r in streamed)


def test_streamed_histories_equal_resident_bit_for_bit(quick):
  report, _, _ = quick
  for size in report["sizes"]:
    for leg, comparison in size["identity"].items():
      differ = {n: f for n, f in comparison["fields"].items() if not f["identical"]}
      assert comparison["identical"], f"{size['num_samples']} samples, {leg}: {differ}"
      assert {"train_loss", "val_loss", "learning_rate", "diverged"} <= set(comparison["fields"])
  assert report["bit_identical"]


def test_markdown_has_a_row_per_leg_and_the_verdict(quick):
  report, text, stdout = quick
  streamed = [r for s in report["sizes"] for r in s["rows"] if r["leg"] != "resident"]
  rows = [line for line in text.splitlines() if line.startswith("| ") and "streamed (" in line]
  assert len(rows) == 2 * len(streamed)  # the throughput table and the identity table
  assert "Machine:" in text and "Goal (streaming costs at most 10% of throughput)" in text
  assert "wrote " in stdout


def test_benchmarks_md_quotes_the_committed_report():
  from lrlab.benchmark import streaming_report as script

  committed = os.path.join(ROOT, "benchmarks", "cpu-2core")
  with open(os.path.join(committed, "streaming.json")) as f:
    report = json.load(f)
  with open(os.path.join(committed, "streaming.md")) as f:
    text = f.read()
  assert script.markdown(report) == text  # the Markdown is the JSON's
  with open(os.path.join(ROOT, "BENCHMARKS.md")) as f:
    benchmarks = f.read()
  section = benchmarks[benchmarks.index("## Streaming data from the host") :]
  for line in text.splitlines():
    if line.startswith("|"):
      assert line in section, line


@pytest.mark.parametrize(
  ("args", "message"),
  [
    (["--devices", "0"], "argument --devices: must be a positive integer; got '0'"),
    (["--k", "0"], "argument --k: must be a positive integer; got '0'"),
    (["--steps", "-5"], "argument --steps: must be a positive integer; got '-5'"),
    (["--sizes", "500,x"], "argument --sizes: must be comma-separated positive integers"),
  ],
)
def test_bad_flags_are_one_line_before_anything_runs(capsys, args, message):
  """``--devices 0`` was read as "every core" and ``--k 0`` as a sweep of no members."""
  from lrlab.benchmark import streaming

  with pytest.raises(SystemExit) as exit_:
    streaming.parse_args(args)
  assert exit_.value.code == 2
  (line,) = capsys.readouterr().err.strip().splitlines()
  assert message in line


@pytest.mark.parametrize(
  ("args", "message"),
  [
    (["--quick", "--steps", "25"], "--steps must be a multiple of --eval-every; got 25 and 10"),
    (["--eval-every", "120"], "--steps must be a multiple of --eval-every; got 300 and 120"),
  ],
)
def test_steps_that_split_into_no_whole_windows_are_one_line_before_any_compute(
  monkeypatch, capsys, tmp_path, args, message
):
  from lrlab.benchmark import streaming

  ran = []
  monkeypatch.setattr(streaming, "run_benchmark", lambda *a, **kw: ran.append(a))
  monkeypatch.setattr(streaming, "set_host_devices", lambda count: None)
  with pytest.raises(SystemExit) as exit_:
    streaming.main([*args, "--out", str(tmp_path)])
  assert exit_.value.code == 2 and ran == []
  (line,) = capsys.readouterr().err.strip().splitlines()
  assert message in line


def test_default_out_is_not_the_committed_report():
  """BENCHMARKS.md's smoke run (``--quick``, no ``--out``) replaced the committed
  benchmarks/cpu-2core/streaming.json and .md with its K = 8, 20-step numbers."""
  from lrlab.benchmark import streaming

  out = streaming.parse_args(["--quick"]).out
  committed = os.path.join(ROOT, "benchmarks", "cpu-2core")
  for name in ("streaming.json", "streaming.md"):
    assert os.path.exists(os.path.join(committed, name))  # the report a default run replaced
    assert os.path.abspath(os.path.join(ROOT, out, name)) != os.path.join(committed, name)
  assert pathlib.PurePath(out).parts[0] == "results"  # .gitignore's /results/
