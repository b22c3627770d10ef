"""The README's throughput sentence quotes the committed benchmark report, number for number."""

import json
import pathlib
import re

import pytest

from lrlab.benchmark.report import markdown
from lrlab.benchmark.workload import executed_scale

ROOT = pathlib.Path(__file__).resolve().parents[2]
TIMES = "\N{MULTIPLICATION SIGN}"
REPORT = ROOT / "benchmarks" / "cpu-2core" / "report.json"
SENTENCE = re.compile(  # the README writes ratios with a multiplication sign
  r"(?P<k>\d+) learning rates of the MNIST-1D MLP train at (?P<rate>[\d.]+)k model-steps/s: "
  rf"(?P<sequential>[\d.]+){TIMES} a loop of jitted runs, "
  rf"(?P<torch>[\d.]+){TIMES} a PyTorch loop and "
  rf"(?P<best>[\d.]+){TIMES} the best PyTorch leg \((?P<leg>[^)]*)\), at (?P<peak>\d+)% of the "
  r"machine's float32 matmul peak \(counting the FLOPs it executes\)"
)


def _quoted() -> dict[str, str]:
  text = " ".join((ROOT / "README.md").read_text(encoding="utf-8").split())  # one line
  match = SENTENCE.search(text)
  assert match, "README.md no longer has the benchmark sentence this test reads"
  return match.groupdict()


def test_the_readme_quotes_the_committed_report():
  quoted, report = _quoted(), json.loads(REPORT.read_text(encoding="utf-8"))
  k = int(quoted["k"])
  sweep = next(r for r in report["rows"] if r["leg"] == "sweep" and r["k"] == k)
  ratios = next(r for r in report["ratios"] if r["k"] == k)
  assert f"{sweep['model_steps_per_s'] / 1000:.0f}" == quoted["rate"]
  assert f"{ratios['sweep_over_sequential']:.1f}" == quoted["sequential"]
  assert f"{ratios['sweep_over_torch']:.1f}" == quoted["torch"]
  assert f"{ratios['sweep_over_best_torch']:.1f}" == quoted["best"]
  # Counted on the FLOPs the sweep executes (a report of before the correction counted more).
  executed = sweep["fraction_of_ceiling"] * executed_scale(report, sweep)
  assert f"{100 * executed:.0f}" == quoted["peak"]
  torch_rows = [r for r in report["rows"] if r["leg"].startswith("torch") and r["k"] == k]
  best = max(torch_rows, key=lambda r: r["model_steps_per_s"])
  assert ratios["best_torch"] == best["leg"]
  assert sweep["model_steps_per_s"] / best["model_steps_per_s"] == pytest.approx(
    ratios["sweep_over_best_torch"], rel=1e-9
  )
  names = {"torch": "the eager loop", "torch_func": "a torch.func ensemble"}
  names["torch_compiled"] = "a torch.func ensemble under torch.compile"
  assert quoted["leg"] == names[best["leg"]]


def test_benchmarks_md_pastes_the_committed_reports_markdown():
  """The Results section (machine, ceiling, breakdown, every row, ratio and target) is the
  committed report as :func:`lrlab.benchmark.markdown` writes it, line for line."""
  text = (ROOT / "BENCHMARKS.md").read_text(encoding="utf-8").splitlines()
  report = json.loads(REPORT.read_text(encoding="utf-8"))
  lines = [line for line in markdown(report).splitlines() if line]
  start = text.index(lines[0])  # "Machine: ...": the report's first line
  block = [line for line in text[start:] if line][: len(lines)]
  assert block == lines
