"""BENCHMARKS.md's paragraph on the benchmark's run on a 2-core AMD EPYC quotes its report."""

import json
import pathlib

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
  targets = amd["targets"]
  assert all(t["met"] for t in targets.values() if isinstance(t, dict))
  quote = (
    f"sweep (chunks of {sweep['chunk_size']}, the probe's choice) trained "
    f"{sweep['model_steps_per_s'] / 1000:.1f}k model-steps/s, "
    f"**{100 * targets['fraction_of_ceiling']['measured']:.0f}% of the run's ceiling and "
    f"{100 * targets['fraction_of_ceiling_next']['measured']:.0f}% of the ceiling next to its "
    f"leg; {targets['sweep_over_sequential']['measured']:.2f}{TIMES} the lrlab loop, "
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
  targets = amd["targets"]
  text = " ".join((ROOT / "README.md").read_text("utf-8").split())
  quote = (
    f"the same benchmark gave {targets['sweep_over_best_torch']['measured']:.1f}{TIMES} the "
    f"best PyTorch leg at {100 * targets['fraction_of_ceiling']['measured']:.0f}% of the peak "
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
  sweep = next(r for r in tasks["rows"] if r["task"] == "lm-transformer" and r["leg"] == "sweep")
  assert tasks["environment"]["cpu"] == "AMD EPYC" and sweep["chunk_size"] == 2
  assert f"ceiling {tasks['ceiling']['ceiling']:.0f} GFLOP/s" in text
  quote = (
    f"ran at **{lm['sweep_over_sequential']:.2f}{TIMES} the loop and "
    f"{100 * lm['fraction_of_ceiling']:.0f}% of the ceiling**, the MLP's at "
    f"{mlp['sweep_over_sequential']:.2f}{TIMES} and {100 * mlp['fraction_of_ceiling']:.0f}%"
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
