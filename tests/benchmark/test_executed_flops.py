"""The sweep leg's GFLOP/s count the FLOPs it executes: its step-0 evaluation runs for one member
per seed and device (copied to the others), not for every member as the loop's runs do."""

import json
import pathlib

import jax
import pytest

import lrlab
from lrlab.benchmark import Config, measure_leg
from lrlab.benchmark.report import markdown
from lrlab.benchmark.workload import analytic_flops, executed_scale
from lrlab.sweep import programs

ROOT = pathlib.Path(__file__).resolve().parents[2]


def test_the_sweeps_gflops_count_the_step_0_evaluations_it_runs(monkeypatch):
  runs = []
  original = programs._Compiled._init

  def counting(self, hp, key):  # counts the step-0 passes actually run: one per device
    if not (self._shares_start and self._seed_start is not None and self._seed_start[0] is key):
      runs.append(len(jax.devices()))
    return original(self, hp, key)

  monkeypatch.setattr(programs._Compiled, "_init", counting)
  k, steps = 8, 4
  config = Config(ks=(k,), steps=steps, legs=("sweep",), repeats=1, chunk_size=2)
  task = lrlab.tasks.get("mnist1d-mlp")
  row = measure_leg("sweep", k, config, task)
  evaluated = sum(runs) / (1 + len(row["steady_all_s"]))  # per call: the warm-up and timed ones
  assert evaluated < k
  sizes = {s: int(task.split(s)[0].shape[0]) for s in ("train", "val", "test")}
  counted = analytic_flops(config.batch_size, steps, sizes)
  start = counted["evaluation_start_per_run"]
  assert start == 2 * sum(i * o for i, o in ((40, 100), (100, 100), (100, 10))) * sum(
    sizes.values()
  )
  executed = counted["per_model_step"] - start * (k - evaluated) / (k * steps)
  measured = row["gflops_per_s"] * 1e9 * row["steady_s"] / (k * steps)
  assert abs(measured - executed) <= 1e-9 * executed, (measured, executed)


def _report(name: str) -> dict:
  return json.loads((ROOT / "benchmarks" / name).read_text("utf-8"))


def test_the_correction_in_benchmarks_md_restates_the_committed_reports():
  text = " ".join((ROOT / "BENCHMARKS.md").read_text("utf-8").split())
  for machine, folder in (("Xeon", "cpu-2core"), ("AMD", "cpu-2core-amd")):
    report = _report(f"{folder}/report.json")
    sweep = next(r for r in report["rows"] if r["leg"] == "sweep" and r["k"] == 512)
    scale = executed_scale(report, sweep)
    # The MLP's count by hand: 30 kFLOP per example evaluated, 5,000 examples at step 0, shared
    # by the K / devices members of each device.
    start = 30_000 * 5_000 * (sweep["k"] - sweep["devices_used"]) / (sweep["k"] * sweep["steps"])
    assert scale == pytest.approx(1 - start / report["flops"]["per_model_step"], rel=1e-12)
    run, beside = sweep["fraction_of_ceiling"], sweep["fraction_of_ceiling_next"]
    quote = (
      f"{machine}, the MNIST-1D MLP at K = 512: {100 * scale * run:.0f}% of the run's ceiling, "
      f"{100 * scale * beside:.0f}% of the ceiling next to the leg (as counted: "
      f"{100 * run:.0f}%, {100 * beside:.0f}%)."
    )
    assert quote in text, quote
    tasks = _report(f"{folder}/tasks.json")
    sweeps = {r["task"]: r for r in tasks["rows"] if r["leg"] == "sweep" and r["k"] == 64}
    lm, mlp = sweeps["lm-transformer"], sweeps["mnist1d-mlp"]
    executed = {
      t: 100 * r["fraction_of_ceiling"] * executed_scale(tasks, r) for t, r in sweeps.items()
    }
    quote = (
      f"{machine}, the task benchmark at K = 64: lm-transformer "
      f"{executed['lm-transformer']:.0f}% of the ceiling, mnist1d-mlp "
      f"{executed['mnist1d-mlp']:.0f}% (as counted: "
      f"{100 * lm['fraction_of_ceiling']:.0f}%, {100 * mlp['fraction_of_ceiling']:.0f}%)."
    )
    assert quote in text, quote
  xeon = _report("cpu-2core/report.json")
  sweep = next(r for r in xeon["rows"] if r["leg"] == "sweep" and r["k"] == 512)
  assert sweep["fraction_of_ceiling_next"] * executed_scale(xeon, sweep) < 0.55  # not met


def test_the_fresh_amd_run_counts_what_the_sweep_executes_and_is_quoted():
  report = _report("cpu-2core-amd/executed-flops/report.json")
  rows = {r["leg"]: r for r in report["rows"]}
  sweep, targets = rows["sweep"], report["targets"]
  assert executed_scale(report, sweep) == 1.0  # the report counts the executed FLOPs itself
  sizes = report["flops"]["split_sizes"]
  start = 30_000 * sum(sizes.values()) * (512 - sweep["devices_used"]) / (512 * sweep["steps"])
  assert sweep["flops_per_model_step"] == pytest.approx(report["flops"]["per_model_step"] - start)
  assert rows["sequential"]["flops_per_model_step"] == report["flops"]["per_model_step"]
  text = " ".join((ROOT / "BENCHMARKS.md").read_text("utf-8").split())
  times = "\N{MULTIPLICATION SIGN}"
  quote = (
    f"gave the sweep {sweep['model_steps_per_s'] / 1000:.1f}k model-steps/s in chunks of "
    f"{sweep['chunk_size']}, {100 * targets['fraction_of_ceiling']['measured']:.0f}% of the run's "
    f"ceiling and {100 * targets['fraction_of_ceiling_next']['measured']:.0f}% of the ceiling "
    f"next to its leg, {targets['sweep_over_sequential']['measured']:.2f}{times} the lrlab loop "
    f"and {targets['sweep_over_best_torch']['measured']:.2f}{times} the compiled torch.func "
    "ensemble."
  )
  assert report["ratios"][0]["best_torch"] == "torch_compiled" and quote in text, quote
  executes = f"the sweep executes {sweep['flops_per_model_step'] / 1e6:.2f}, its step-0"
  assert executes in markdown(report)
  assert "the sweep executes" not in markdown(_report("cpu-2core-amd/report.json"))  # counted
