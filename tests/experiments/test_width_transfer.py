"""Width transfer (muP), issue 19: the committed default-size results and a tiny run."""

import json
import math
import shutil

import numpy as np
import pytest

from experiments import common, width_transfer
from lrlab import sweep
from tests.experiments.reference import holm, rounding_sd
from tests.experiments.reference import vertex as _vertex

OUT = common.RESULTS / "width_transfer"


def _grid_best_log_lr(result: sweep.SweepResult) -> float:
  """log10 of the grid rate with the lowest seed-mean final val loss (diverged runs: worst)."""
  final = result.history.val_loss[:, :, -1].astype(float)  # (seeds, lrs)
  final = np.where(result.history.diverged | ~np.isfinite(final), np.inf, final)
  return float(np.log10(result.grid["lr"][int(np.argmin(final.mean(axis=0)))]))


def _check_model(folder, numbers: dict, widths: list[int], p_holm: float) -> str:
  """The best rates, drifts and gap of one model recomputed from its saved sweeps; its verdict
  with ``p_holm``, the gap's p-value Holm-adjusted over the models compared."""
  step = numbers["grid_step_decades"]
  assert numbers["widths"] == widths
  for p in width_transfer.PARAMETRIZATIONS:
    # Each reported best rate is the grid's best (recomputed here from the raw curves) moved
    # by at most half a grid step.
    grid_best = np.array(
      [_grid_best_log_lr(sweep.SweepResult.load(folder / f"{p}-{w}")) for w in widths]
    )
    refined = np.log10(numbers[p]["best_lr"])
    assert np.all(np.abs(refined - grid_best) <= step / 2 + 1e-9), (p, refined, grid_best)
    assert numbers[p]["spread_decades"] == pytest.approx(np.ptp(refined))
    octaves = np.log2(widths)
    drift = np.polyfit(octaves, refined, 1)[0] * np.ptp(octaves)
    assert numbers[p]["drift_decades"] == pytest.approx(drift)
  # The verdict is the rule of the module's docstring applied to these numbers.
  gap, gap_se = numbers["drift_gap_decades"], numbers["drift_gap_se_decades"]
  assert gap == pytest.approx(
    abs(numbers["sp"]["drift_decades"]) - abs(numbers["mup"]["drift_decades"])
  )
  assert numbers["drift_gap_p"] == pytest.approx(math.erfc(gap / gap_se / math.sqrt(2)))
  assert numbers["drift_gap_p_holm"] == pytest.approx(p_holm)
  beyond = p_holm <= math.erfc(math.sqrt(2)) and gap > 0  # 2 SE, two-sided
  if (
    numbers["mup"]["spread_decades"] <= step + 1e-9
    and abs(numbers["sp"]["drift_decades"]) > step
    and beyond
  ):
    return "supported"
  if not beyond and abs(numbers["mup"]["drift_decades"]) > step:
    return "refuted"
  return "inconclusive"


def test_committed_summary_follows_from_the_saved_sweeps():
  summary = common.read_summary(OUT)
  numbers = summary["numbers"]
  assert summary["size"] == "default"
  assert numbers["seeds"] >= 5
  listing = json.loads((OUT / "widths.json").read_text())
  widths = listing["widths"]
  assert widths[0] <= 32 and widths[-1] >= 1024
  # The transformer (widths 32 to 256) and the ResNet (channels (w, 2w), w from 8 to 64), where
  # run, under the same rule; Holm over every model; the overall verdict names each.
  others = {k: v for k, v in width_transfer.OTHER_MODELS.items() if k in listing}
  models = [numbers] + [numbers[folder] for folder, _, _ in others.values()]
  assert numbers["comparisons"] == len(models)
  adjusted = holm([m["drift_gap_p"] for m in models])
  verdict = _check_model(OUT, numbers, widths, adjusted[0])
  assert (OUT / "width_transfer.png").stat().st_size > 1000
  verdicts = {verdict}
  spans = {"lm": (32, 256), "resnet": (8, 64)}
  for (key, (folder, _, figure)), p_holm in zip(others.items(), adjusted[1:], strict=True):
    entry, other_widths = numbers[folder], listing[key]["widths"]
    assert other_widths[0] <= spans[key][0] and other_widths[-1] >= spans[key][1]
    other_verdict = _check_model(OUT / folder, entry, other_widths, p_holm)
    assert entry["verdict"] == other_verdict and numbers["mlp_verdict"] == verdict
    assert (OUT / figure).stat().st_size > 1000
    verdicts.add(other_verdict)
  expected = verdict if len(verdicts) == 1 else "depends on the model"
  assert summary["verdict"].startswith(expected)


def test_report_redraws_the_committed_numbers_from_the_saved_sweeps(tmp_path):
  # The report's other models' branch, on a copy of the committed results (no training).
  shutil.copytree(OUT, tmp_path / "out")
  numbers, verdict, figures = width_transfer.report(tmp_path / "out")
  summary = common.read_summary(OUT)
  assert json.loads(json.dumps(numbers)) == summary["numbers"]
  assert verdict == summary["verdict"]
  assert [f.name for f in figures] == summary["figures"]


def test_the_mlps_drift_gap_se_adds_both_drifts_grid_rounding_to_the_bootstrap():
  # Recomputed from the saved sweeps: the paired seed bootstrap of |SP drift| - |muP drift|
  # (best rates by tests/experiments/reference.vertex on the seed-mean final val loss, diverged
  # runs worst), and each drift's rounding (every best rate uniform over one half-decade step,
  # through the fit, times the octaves), SP's and muP's independent: all in quadrature.
  numbers = common.read_summary(OUT)["numbers"]
  widths = np.asarray(numbers["widths"], float)
  octaves = np.log2(widths)
  runs = {}
  for p in ("sp", "mup"):
    for w in widths:
      result = sweep.SweepResult.load(OUT / f"{p}-{int(w)}")
      loss = result.history.val_loss[:, :, -1].astype(float)
      runs[p, w] = np.where(result.history.diverged, np.inf, loss)
  log_lrs = np.log10(result.grid["lr"])
  seeds = runs["sp", widths[0]].shape[0]
  draws = np.random.default_rng(0).integers(0, seeds, size=(width_transfer.BOOTSTRAP, seeds))

  def drift(p, d) -> float:
    best = [_vertex(log_lrs, runs[p, w][d].mean(0), larger_is_better=False) for w in widths]
    return np.polyfit(octaves, best, 1)[0] * np.ptp(octaves)

  gaps = [abs(drift("sp", d)) - abs(drift("mup", d)) for d in draws]
  grid = rounding_sd(octaves, 0.5) * np.ptp(octaves)
  expected = math.sqrt(np.var(gaps, ddof=1) + 2 * grid**2)
  assert numbers["drift_gap_se_decades"] == pytest.approx(expected, rel=1e-6)
  assert expected > 2.5 * np.std(gaps, ddof=1)  # the grid's term dominates: 0.26 against 0.10
