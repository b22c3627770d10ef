"""BENCHMARKS.md's tables of the shared minibatch indices and of the breakdown by chunk width
quote the committed reports, figure for figure."""

import json
import pathlib
import re

ROOT = pathlib.Path(__file__).resolve().parents[2]
REPORTS = ROOT / "benchmarks" / "cpu-2core"


def _text() -> str:
  return (ROOT / "BENCHMARKS.md").read_text("utf-8")


def _report(name: str) -> dict:
  return json.loads((REPORTS / name).read_text("utf-8"))


def test_the_shared_rows_table_is_the_committed_ab():
  report = _report("shared_rows_ab.json")
  rows = re.findall(r"^\| (\d+) \| ([\d,]+) \| ([\d,]+) \| ([\d.]+)x \|$", _text(), re.MULTILINE)
  assert {r[0] for r in rows} == set(report["shared_over_per_chunk"])
  for size, shared, per_chunk, ratio in rows:
    rates = report["model_steps_per_s"]
    assert shared == f"{rates['shared'][size]:,.0f}"
    assert per_chunk == f"{rates['per_chunk'][size]:,.0f}"
    assert ratio == f"{report['shared_over_per_chunk'][size]:.2f}"
    assert rates["shared"][size] / rates["per_chunk"][size] == report["shared_over_per_chunk"][size]
  assert report["draw_seconds"] == min(report["draw_seconds_all"])
  text = " ".join(_text().split())
  assert f"epochs for a 200-step segment) took {1000 * report['draw_seconds']:.1f} ms" in text


RUNGS = ("matmuls", "loss_sgd", "loss_momentum", "trainer")


def test_the_breakdown_by_width_table_is_the_committed_report():
  report = _report("breakdown_by_width.json")
  pattern = r"^\| (\d+) \| " + r" \| ".join([r"([\d.]+)%"] * 4) + r" \|$"
  rows = re.findall(pattern, _text(), re.MULTILINE)
  assert [r[0] for r in rows] == list(report["widths"])
  for width, *cells in rows:
    run = report["widths"][width]
    for rung, cell in zip(RUNGS, cells, strict=True):
      assert cell == f"{100 * run['fraction'][rung]:.1f}"
      # each round's fraction is its GFLOP/s over the lower ceiling next to it; the best counts
      fractions = [r["gflops"][rung] / min(r["ceilings"]) for r in run["rounds"]]
      assert run["fraction"][rung] == max(fractions)


def test_the_quoted_reach_of_the_products_follows_from_the_reports():
  """The step at the products' best width, with nothing else, against the compiled ensemble of
  this run and of its fastest run on this VM (16.1k model-steps/s), as BENCHMARKS.md quotes it."""
  widths = _report("breakdown_by_width.json")
  best = widths["best"]["matmuls"]
  run = widths["widths"][str(best["per_device"])]
  round_ = max(run["rounds"], key=lambda r: r["gflops"]["matmuls"] / min(r["ceilings"]))
  ceiling = min(round_["ceilings"]) * 1e9
  report = _report("report.json")
  flops, steps = report["flops"], report["config"]["steps"]
  evaluation = flops["evaluation_per_run"] / steps
  rate = 1 / (flops["train_step"] / (best["fraction"] * ceiling) + evaluation / ceiling)
  ensemble = max(
    (r for r in report["rows"] if r["leg"].startswith("torch") and r["k"] == 512),
    key=lambda r: r["model_steps_per_s"],
  )["model_steps_per_s"]
  text = " ".join(_text().split())
  times = "\N{MULTIPLICATION SIGN}"
  this, fastest = rate / ensemble, rate / 16058  # the ensemble's fastest run on this VM
  quote = (
    f"the sweep would train about {rate / 1000:.0f}k model-steps/s, {this:.1f}{times} this "
    f"run's compiled ensemble and {fastest:.1f}{times} its fastest run here (16.1k)"
  )
  assert quote in text, quote
  per_device = best["per_device"]
  assert f"The products alone reach {100 * best['fraction']:.0f}% at {per_device} members" in text
  trainer = [widths["widths"][w]["fraction"]["trainer"] for w in ("2", "4")]
  at_32 = widths["widths"]["32"]["fraction"]["trainer"]
  quote = f"reaches {100 * min(trainer):.0f}% to {100 * max(trainer):.0f}% of the ceiling, against"
  assert f"{quote} {100 * at_32:.0f}% at 32" in text


def test_the_targets_row_and_the_sweep_only_run_are_the_committed_reports():
  """The targets table's first column and the sweep-only run's share, as BENCHMARKS.md quotes
  them; issue 16's 55% of the ceiling next to the leg is met in the full run."""
  report = _report("report.json")
  sweep = next(r for r in report["rows"] if r["leg"] == "sweep" and r["k"] == 512)
  ratios = next(r for r in report["ratios"] if r["k"] == 512)
  times = "\N{MULTIPLICATION SIGN}"
  share = f"{100 * sweep['fraction_of_ceiling']:.0f}% ({sweep['gflops_per_s']:.0f} of "
  share += f"{report['ceiling']['ceiling']:.0f}; **{100 * sweep['fraction_of_ceiling_next']:.0f}%**"
  text = _text()
  assert share in text
  for key in ("sweep_over_sequential", "sweep_over_torch", "sweep_over_best_torch"):
    assert f"| {ratios[key]:.2f}{times} |" in text
  assert sweep["fraction_of_ceiling_next"] >= 0.55
  only = next(r for r in _report("sweep_k512/report.json")["rows"] if r["leg"] == "sweep")
  assert f"`--ks 512 --legs sweep`, gave {100 * only['fraction_of_ceiling_next']:.0f}%" in text
