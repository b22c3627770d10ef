"""Normalization (claim 8), issue 19: the committed widths and verdicts recomputed with NumPy."""

import json
import math

import numpy as np
import pytest
import scipy.stats

from experiments import common, normalization
from lrlab import analysis, sweep

OUT = common.RESULTS / "normalization"
SUMMARY = common.read_summary(OUT)
TASKS = [t for t in SUMMARY["numbers"] if t != "comparisons"]


def _widths(folder) -> np.ndarray:
  """Each seed's usable width in decades, by the rule written out: the dead-network guard,
  then the run of rates next to the seed's best within 0.05 accuracy (5% loss)."""
  result = sweep.SweepResult.load(folder)
  chance = json.loads((folder / "curvature.json").read_text())["chance_loss"]
  lrs = result.grid["lr"]
  accuracy = result.has_accuracy
  metric = "final_val_accuracy" if accuracy else "final_val_loss"
  values = result.metric(metric, diverged_as_worst=False)
  failed = result.history.diverged.copy()
  worst = -np.inf if accuracy else np.inf
  sign = 1.0 if accuracy else -1.0
  mean = np.where(failed, worst, values).mean(0)
  best = int(np.argmax(sign * mean))
  train = result.metric("final_train_loss", diverged_as_worst=False)
  failed |= ~failed & (train >= 0.95 * chance) & (lrs > lrs[best])[None, :]
  widths = []
  for s in range(len(values)):
    v = sign * np.where(failed[s], worst, values[s])
    b = int(np.argmax(v))
    ok = v >= v[b] - 0.05 if accuracy else v >= v[b] - 0.05 * abs(v[b])
    lo = hi = b
    while lo > 0 and ok[lo - 1]:
      lo -= 1
    while hi < len(v) - 1 and ok[hi + 1]:
      hi += 1
    widths.append(math.log10(lrs[hi] / lrs[lo]))
  return np.array(widths)


@pytest.mark.parametrize("name", TASKS)
def test_committed_width_gain_follows_from_the_saved_sweeps(name):
  found = SUMMARY["numbers"][name]
  assert SUMMARY["size"] == "default" and found["raw"]["seeds"] >= 5
  raw, std = _widths(OUT / name / "raw"), _widths(OUT / name / "standardized")
  np.testing.assert_allclose(found["raw"]["usable_decades_per_seed"], raw, atol=1e-9)
  np.testing.assert_allclose(found["standardized"]["usable_decades_per_seed"], std, atol=1e-9)
  d = std - raw
  se = math.hypot(d.std(ddof=1) / math.sqrt(d.size), found["grid_step_decades"] / math.sqrt(3))
  gain = found["width_gain_per_seed"]
  assert gain["gap"] == pytest.approx(d.mean(), abs=1e-9)
  assert gain["se"] == pytest.approx(se, rel=1e-9)
  assert gain["p"] == pytest.approx(math.erfc(abs(d.mean() / se) / math.sqrt(2)), abs=1e-12)


def test_holm_over_the_tasks_and_the_verdicts():
  numbers = SUMMARY["numbers"]
  p = np.array([numbers[t]["width_gain_per_seed"]["p"] for t in TASKS])
  assert numbers["comparisons"]["tests"] == len(TASKS)
  np.testing.assert_allclose([numbers[t]["width_gain_per_seed"]["p_holm"] for t in TASKS],
                             analysis.holm(p))  # fmt: skip
  for t in TASKS:
    gain = numbers[t]["width_gain_per_seed"]
    significant = gain["p_holm"] < analysis.ALPHA
    expected = ("supported" if gain["gap"] > 0 else "refuted") if significant else "inconclusive"
    assert numbers[t]["verdict"] == expected
  assert numbers["digits-logreg"]["verdict"] == "supported"  # kappa falls 37,000x there
  for figure in SUMMARY["figures"]:
    assert (OUT / figure).stat().st_size > 1000


def test_the_width_gains_p_t_uses_the_same_se_as_its_z():
  raw = {"usable_decades_per_seed": [2.0, 2.25, 2.0, 2.0, 2.25], "usable_decades": 2.25}
  std = {"usable_decades_per_seed": [4.0, 4.25, 4.0, 4.25, 4.0], "usable_decades": 4.0}
  for arm, kappa in ((raw, 5e6), (std, 143.0)):
    arm["condition_number"] = kappa
  gain = normalization._judge("x", raw, std, 0.25)["width_gain_per_seed"]
  d = np.subtract(std["usable_decades_per_seed"], raw["usable_decades_per_seed"])
  seeds_se = d.std(ddof=1) / math.sqrt(d.size)
  se = math.hypot(seeds_se, 0.25 / math.sqrt(3))
  df = se**4 / (seeds_se**4 / (d.size - 1))  # Welch-Satterthwaite, the grid's term exact
  assert gain["z"] == pytest.approx(d.mean() / se, rel=1e-12)
  assert gain["df"] == pytest.approx(df, rel=1e-12)
  assert gain["p_t"] == pytest.approx(2 * scipy.stats.t.sf(d.mean() / se, df), rel=1e-9)
