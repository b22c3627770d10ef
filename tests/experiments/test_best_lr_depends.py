"""Best rate against the problem (claim 7), issue 19: the committed default-size results."""

import json
import math

import numpy as np
import pytest

from experiments import best_lr_depends, common
from lrlab import sweep
from tests.experiments import reference

OUT = common.RESULTS / "best_lr_depends"


@pytest.fixture(scope="module")
def summary():
  return common.read_summary(OUT)


def test_epoch_steps_hold_the_epochs():
  # n examples get the epochs `steps` updates give the full set: steps * n / full, to tens.
  assert best_lr_depends.epoch_steps(1000, 900, 7200) == 120  # 125 rounds to 120 (banker's)
  assert best_lr_depends.epoch_steps(1000, 3600, 7200) == 500
  assert best_lr_depends.epoch_steps(30, 450, 3600) == 10  # at least 10


def test_the_committed_design_meets_the_standard(summary):
  numbers = summary["numbers"]
  assert summary["size"] == "default" and numbers["seeds"] >= 5
  spec = json.loads((OUT / "conditions.json").read_text())
  tasks = spec["tasks"]
  steps_fixed = [tasks[n]["steps"] for n, _ in spec["series"]["data_size_steps"]]
  epochs_fixed = [tasks[n]["epochs"] for n, _ in spec["series"]["data_size_epochs"]]
  assert len(set(steps_fixed)) == 1  # the same updates for every data size
  assert np.ptp(epochs_fixed) / np.mean(epochs_fixed) < 0.05  # the same epochs (to rounding)
  sizes = [f for _, f in spec["series"]["data_size_epochs"]]
  assert sizes == [f for _, f in spec["series"]["data_size_steps"]] and len(sizes) >= 4


def test_best_rates_and_trends_follow_from_the_saved_sweeps(summary):
  numbers = summary["numbers"]
  conditions, trends = numbers["conditions"], numbers["trends"]
  for name in ("base", "epochs-900", "width-400", "digits"):
    result = sweep.SweepResult.load(OUT / name)
    accuracy = result.history.val_accuracy[:, :, -1].astype(float)
    accuracy = np.where(result.history.diverged, 0.0, accuracy).mean(axis=0)  # diverged: 0
    log_lrs = np.log10(result.grid["lr"])
    expected = reference.vertex(log_lrs, accuracy, larger_is_better=True)
    assert math.log10(conditions[name]["best_lr"]) == pytest.approx(expected, abs=1e-9)
  p = []
  for trend in trends.values():
    x, y = np.log2(trend["factor"]), np.log10(trend["best_lr"])
    # Least squares written out: cov(x, y) / var(x).
    slope = np.sum((x - x.mean()) * (y - y.mean())) / np.sum((x - x.mean()) ** 2)
    assert trend["decades_per_doubling"] == pytest.approx(slope, rel=1e-9, abs=1e-12)
    z = slope / trend["decades_per_doubling_se"]
    assert trend["p"] == pytest.approx(math.erfc(abs(z) / math.sqrt(2)))
    p.append(trend["p"])
  assert numbers["comparisons"] == len(trends) == 5
  for trend, adjusted in zip(trends.values(), reference.holm(p), strict=True):
    assert trend["p_holm"] == pytest.approx(adjusted)
    significant = adjusted < numbers["alpha"] and trend["fitted_shift_exceeds_grid_step"]
    expected = "inconclusive"
    if significant:
      agree = np.sign(trend["decades_per_doubling"]) == trend["expected_sign"]
      expected = "supported" if agree else "refuted"
    assert trend["verdict"] == expected
  for figure in summary["figures"]:
    assert (OUT / figure).stat().st_size > 1000


def test_the_depth_slopes_se_adds_the_grids_rounding_to_the_bootstrap(summary):
  # Recomputed from the saved sweeps: the seed bootstrap of the least-squares slope (the
  # experiment's draws, best rates by tests/experiments/reference.vertex), and the rounding of
  # each best rate over one 0.25-decade step through the fit, added in quadrature.
  trend = summary["numbers"]["trends"]["depth"]
  x = np.log2(trend["factor"])
  runs = []
  for name in trend["conditions"]:
    result = sweep.SweepResult.load(OUT / name)
    accuracy = result.history.val_accuracy[:, :, -1].astype(float)
    runs.append(np.where(result.history.diverged, 0.0, accuracy))  # as the package
  log_lrs = np.log10(result.grid["lr"])
  seeds = runs[0].shape[0]
  draws = np.random.default_rng(0).integers(0, seeds, size=(best_lr_depends.BOOTSTRAP, seeds))
  slopes = []
  for d in draws:
    best = [reference.vertex(log_lrs, r[d].mean(0), larger_is_better=True) for r in runs]
    slopes.append(np.polyfit(x, best, 1)[0])
  bootstrap = np.std(slopes, ddof=1)
  grid = reference.rounding_sd(x, 0.25)
  assert grid == pytest.approx(0.048, abs=5e-4)
  assert trend["decades_per_doubling_se"] == pytest.approx(math.hypot(bootstrap, grid), rel=1e-6)
