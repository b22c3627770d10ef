"""BENCHMARKS.md's paragraph on the benchmark's run on a 2-core AMD EPYC quotes its report."""

import json
import pathlib

from lrlab.benchmark.workload import executed_scale

ROOT = pathlib.Path(__file__).resolve().parents[2]
AMD = ROOT / "benchmarks" / "cpu-2core-amd" / "report.json"
XEON = ROOT / "benchmarks" / "cpu-2core" / "report.json"
TIMES = "\N{MULTIPLICATION SIGN}"


def _row(report: dict, leg: str, k: int = 512) -> dict:
  return next(r for r in report["rows"] if r["leg"] == leg and r["k"] == k)


def _best_torch(report: dict, k: int = 512) -> dict:
  legs = [r for r in report["rows"] if r["leg"].startswith("torch") and r["k"] == k]
  return max(legs, key=lambda r: r["model_steps_per_s"])


def test_the_amd_paragraph_quotes_its_report():
  amd, xeon = json.loads(AMD.read_text("utf-8")), json.loads(XEON.read_text("utf-8"))
  text = " ".join((ROOT / "BENCHMARKS.md").read_text("utf-8").split())
  assert amd["environment"]["cpu"] == "AMD EPYC" and amd["environment"]["cores"] == 2
  assert f"caches {amd['environment']['caches'].replace(' (shared by 0-1)', '')} shared" in text
  assert f"Its matmul ceiling is half the Xeon's, {amd['ceiling']['ceiling']:.0f} GFLOP/s" in text
  sweep, best = _row(amd, "sweep"), _best_torch(amd)
  targets, scale = amd["targets"], executed_scale(amd, sweep)  # the FLOPs the sweep executes
  assert all(t["met"] for t in targets.values() if isinstance(t, dict))
  assert (
    targets["fraction_of_ceiling"]["measured"] * scale >= targets["fraction_of_ceiling"]["target"]
  )
  quote = (
    f"sweep (chunks of {sweep['chunk_size']}, the probe's choice) trained "
    f"{sweep['model_steps_per_s'] / 1000:.1f}k model-steps/s, "
    f"**{100 * scale * targets['fraction_of_ceiling']['measured']:.0f}% of the run's ceiling and "
    f"{100 * scale * targets['fraction_of_ceiling_next']['measured']:.0f}% of the ceiling next "
    f"to its leg (counting the FLOPs it executes: see the correction below); "
    f"{targets['sweep_over_sequential']['measured']:.2f}{TIMES} the lrlab loop, "
    f"{targets['sweep_over_torch']['measured']:.2f}{TIMES} the PyTorch loop and "
    f"{targets['sweep_over_best_torch']['measured']:.2f}{TIMES} the best PyTorch leg** "
    f"(the compiled torch.func ensemble, {best['model_steps_per_s'] / 1000:.1f}k model-steps/s)"
  )
  assert best["leg"] == "torch_compiled" and quote in text, quote
  # The cross-machine ratios: each leg's speed on the AMD over its speed on the Xeon.
  across = {
    leg: _row(amd, leg)["model_steps_per_s"] / _row(xeon, leg)["model_steps_per_s"]
    for leg in ("torch_compiled", "sweep", "sequential", "torch")
  }
  quote = (
    f"the ensemble ran at {across['torch_compiled']:.2f}{TIMES} its speed on the Xeon, the "
    f"sweep at {across['sweep']:.2f}{TIMES} (the lrlab loop {across['sequential']:.2f}{TIMES}, "
    f"the PyTorch loop {across['torch']:.2f}{TIMES})"
  )
  assert quote in text, quote
  on_xeon = xeon["targets"]["sweep_over_best_torch"]["measured"]
  on_amd = targets["sweep_over_best_torch"]["measured"]
  assert f"{on_xeon:.2f}{TIMES} the ensemble on the Xeon and {on_amd:.2f}{TIMES} on the AMD" in text


def test_the_readme_quotes_the_amd_run():
  amd = json.loads(AMD.read_text("utf-8"))
  targets, scale = amd["targets"], executed_scale(amd, _row(amd, "sweep"))
  text = " ".join((ROOT / "README.md").read_text("utf-8").split())
  quote = (
    f"the same benchmark gave {targets['sweep_over_best_torch']['measured']:.1f}{TIMES} the "
    f"best PyTorch leg at {100 * scale * targets['fraction_of_ceiling']['measured']:.0f}% of "
    "the peak "
    "(`benchmarks/cpu-2core-amd/`)"
  )
  assert quote in text, quote


def test_the_amd_task_paragraph_quotes_its_reports():
  folder = AMD.parent
  tasks = json.loads((folder / "tasks.json").read_text("utf-8"))
  scaling = json.loads((folder / "device_scaling.json").read_text("utf-8"))
  text = " ".join((ROOT / "BENCHMARKS.md").read_text("utf-8").split())
  summary = {s["task"]: s for s in tasks["summary"]}
  lm, mlp = summary["lm-transformer"], summary["mnist1d-mlp"]
  sweeps = {r["task"]: r for r in tasks["rows"] if r["leg"] == "sweep"}
  sweep = sweeps["lm-transformer"]
  assert tasks["environment"]["cpu"] == "AMD EPYC" and sweep["chunk_size"] == 2
  assert f"ceiling {tasks['ceiling']['ceiling']:.0f} GFLOP/s" in text
  executed = {t: s["fraction_of_ceiling"] * executed_scale(tasks, s) for t, s in sweeps.items()}
  quote = (
    f"ran at **{lm['sweep_over_sequential']:.2f}{TIMES} the loop and "
    f"{100 * executed['lm-transformer']:.0f}% of the ceiling**, the MLP's at "
    f"{mlp['sweep_over_sequential']:.2f}{TIMES} and {100 * executed['mnist1d-mlp']:.0f}% "
    f"(counting the FLOPs executed; {100 * lm['fraction_of_ceiling']:.0f}% and "
    f"{100 * mlp['fraction_of_ceiling']:.0f}% as the report counts)"
  )
  assert quote in text, quote
  assert not tasks["goals"]["sweep_over_sequential"]["met"]
  assert not tasks["goals"]["fraction_of_ceiling"]["met"]
  caps = {t["task"]: t for t in scaling["tasks"]}
  alone = caps["lm-transformer"]["ways"]["one device"]  # the best round's, as the table's
  busy = alone["cpu_over_wall"][alone["member_seconds"].index(min(alone["member_seconds"]))]
  quote = (
    f"gained {caps['lm-transformer']['two_over_one']:.2f}{TIMES} over one after the other (a "
    f"lone run keeps {busy:.2f} cores busy), the MLP's {caps['mnist1d-mlp']['two_over_one']:.2f}"
  )
  assert quote in text, quote


def test_the_amd_search_paragraph_quotes_its_reports():
  folder = AMD.parent
  study = json.loads((folder / "search_study.json").read_text("utf-8"))
  halving = json.loads((folder / "search_halving_budget.json").read_text("utf-8"))
  xeon = json.loads((XEON.parent / "search_halving_budget.json").read_text("utf-8"))
  text = " ".join((ROOT / "BENCHMARKS.md").read_text("utf-8").split())
  median, over = study["median_seconds"], study["loop_over"]
  for leg, seconds in median.items():
    walls = sorted(r["wall_seconds"] for r in study["rows"] if r["leg"] == leg)
    assert len(walls) == study["repeats"] == 3 and seconds == walls[1]
  quote = (
    f"`run_study` 9 at a time was {over['run_study_9']:.2f}{TIMES} the sequential loop, all 27 "
    f"at once {over['run_study_27']:.2f}{TIMES}, the plain sweep {over['sweep_27']:.2f}{TIMES} "
    f"(medians {median['run_study_9']:.1f}, {median['run_study_27']:.1f} and "
    f"{median['sweep_27']:.1f} s against {median['loop']:.1f} s)"
  )
  assert quote in text, quote
  compiles = sorted(r["compile_seconds"] for r in study["rows"] if r["leg"] == "sweep_27")
  quote = (
    f"the loop's {median['loop']:.1f} s is {median['loop'] / compiles[1]:.1f}{TIMES} the "
    f"sweep's median compile ({compiles[1]:.1f} s)"
  )
  assert quote in text, quote
  share = lambda report, key: f"{100 * report['halving_over_grid'][key]:.0f}%"
  keys = ("adam/1620", "sgd-momentum/1620", "adam/4860", "sgd-momentum/4860")
  here, there = [share(halving, k) for k in keys], [share(xeon, k) for k in keys]
  quote = (
    f"Successive halving took {here[0]} (Adam) and {here[1]} (SGD momentum) of the grid's "
    f"wall-clock at 1620 steps and {here[2]} and {here[3]} at 4860, against {there[0]}, "
    f"{there[1]}, {there[2]} and {there[3]} on the Xeon"
  )
  assert quote in text, quote
  assert all(halving["halving_over_grid"][k] > 0.4 for k in keys)
  seconds = lambda report: [r["compile_seconds"] for r in report["rows"]]
  quote = (
    f"each program compiles in {min(seconds(halving)):.1f} to {max(seconds(halving)):.1f} s "
    f"here ({min(seconds(xeon)):.1f} to {max(seconds(xeon)):.1f} on the Xeon)"
  )
  assert quote in text, quote
