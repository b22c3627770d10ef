"""The ridge analysis of ``experiments/wd_vs_lr.py`` against landscapes with a known ridge, and the
committed summary against its own ridge points."""

import json
import math
import pathlib
from types import SimpleNamespace

import numpy as np
import pytest

from experiments import wd_vs_lr
from lrlab import sweep
from tests.experiments import reference

ROOT = pathlib.Path(__file__).resolve().parents[2]
SUMMARY = ROOT / "experiments" / "results" / "wd_vs_lr" / "summary.json"
LOG_LR = np.arange(-3.0, -0.99, 0.25)  # 9 rates, a quarter decade apart
LOG_WD = np.arange(-1.0, 0.01, 0.25)  # 5 decays


def landscape(slope: float, intercept: float) -> np.ndarray:
  """Score (rows wd, columns lr) peaking at log lr = intercept + slope * log wd, quadratic in
  log lr, so the parabola through the grid's best and its neighbours finds the peak exactly."""
  return -((LOG_LR[None, :] - intercept - slope * LOG_WD[:, None]) ** 2)


@pytest.mark.parametrize("slope", [-1.0, -0.5, 0.0, 0.5])
def test_ridge_slope_recovers_a_known_ridge(slope):
  score = landscape(slope, -2.25)
  best, interior = wd_vs_lr.ridge(LOG_LR, score, larger_is_better=True)
  np.testing.assert_allclose(best, -2.25 + slope * LOG_WD, atol=1e-12)
  assert interior.all()
  assert wd_vs_lr.ridge_slope(LOG_WD, best, interior) == pytest.approx(slope, abs=1e-12)


def test_a_smaller_is_better_score_gives_the_same_ridge():
  best, _ = wd_vs_lr.ridge(LOG_LR, -landscape(-1.0, -2.0), larger_is_better=False)
  np.testing.assert_allclose(best, -2.0 - LOG_WD, atol=1e-12)


def test_ridge_points_on_the_grid_edge_are_left_out_of_the_fit():
  # log lr* = -3.3 - log wd leaves the grid (below -3) for log wd >= -0.25: two edge rows.
  best, interior = wd_vs_lr.ridge(LOG_LR, landscape(-1.0, -3.3), larger_is_better=True)
  expected = -3.3 - LOG_WD
  assert interior.tolist() == (expected > LOG_LR[0] + 0.125).tolist()
  assert wd_vs_lr.ridge_slope(LOG_WD, best, interior) == pytest.approx(-1.0, abs=1e-12)


def test_invalid_rows_have_no_ridge_point_and_too_few_points_no_slope():
  valid = np.array([True, True, False, False, False])
  best, interior = wd_vs_lr.ridge(LOG_LR, landscape(-1.0, -2.0), larger_is_better=True, valid=valid)
  assert np.isfinite(best).tolist() == valid.tolist()
  assert math.isnan(wd_vs_lr.ridge_slope(LOG_WD, best, interior))  # 2 points < MIN_POINTS


def test_cells_lays_a_product_grid_out_as_rows_of_decay_and_columns_of_rate():
  grid = sweep.product(lr=[0.01, 0.1, 1.0], weight_decay=[1e-3, 1e-2])
  values = grid["lr"] * 1000 + grid["weight_decay"]
  lrs, wds, table = wd_vs_lr.cells(SimpleNamespace(grid=grid), values[None])
  assert lrs.tolist() == [0.01, 0.1, 1.0] and wds.tolist() == [1e-3, 1e-2]
  np.testing.assert_allclose(table[0], lrs[None, :] * 1000 + wds[:, None])


def test_judge_needs_the_slope_away_from_zero_and_not_away_from_minus_one():
  p = lambda z: math.erfc(abs(z) / math.sqrt(2))
  assert wd_vs_lr.judge(-1.1, 0.1, p(-1), p(-11)) == "supported"
  assert wd_vs_lr.judge(-0.3, 0.1, p(7), p(-3)) == "refuted"
  assert wd_vs_lr.judge(-0.6, 0.4, p(1), p(-1.5)) == "inconclusive"
  assert wd_vs_lr.judge(math.nan, 0.1, math.nan, math.nan) == "inconclusive"


@pytest.mark.skipif(not SUMMARY.exists(), reason="the default results are not committed yet")
def test_committed_slopes_are_the_fits_of_their_ridge_points():
  numbers = json.loads(SUMMARY.read_text())["numbers"]
  cases = [k for k, v in numbers.items() if isinstance(v, dict) and "primary" in v]
  assert len(cases) == numbers["comparisons"] == 4
  for case in cases:
    entry = numbers[case]["primary"]
    ridge = np.array([np.nan if v is None else v for v in entry["ridge_lr"]], float)
    use = np.asarray(entry["ridge_interior"]) & np.isfinite(ridge)
    if use.sum() >= wd_vs_lr.MIN_POINTS:
      x, y = np.log10(np.asarray(entry["weight_decay"])[use]), np.log10(ridge[use])
      fitted = np.sum((x - x.mean()) * (y - y.mean())) / np.sum((x - x.mean()) ** 2)
      assert entry["slope"] == pytest.approx(fitted, rel=1e-9)
    else:
      assert entry["slope"] is None
    if entry["slope_se"]:
      assert entry["z_vs_minus_one"] == pytest.approx((entry["slope"] + 1) / entry["slope_se"])


@pytest.mark.parametrize("optimizer", ["adamw", "sgd"])
def test_the_resnets_best_cell_and_its_gain_over_the_lowest_decay(optimizer):
  """The ResNet's best (lr, wd) cell by seed-mean final val accuracy, recomputed from the saved
  sweep, and the paired gain (ddof 1) of its decay over the grid's lowest at the same rate."""
  entry = json.loads(SUMMARY.read_text())["numbers"][f"mnist1d-resnet/{optimizer}"]["primary"]
  result = sweep.SweepResult.load(SUMMARY.parent / f"mnist1d-resnet-{optimizer}")
  assert result.num_seeds >= 5
  lrs, wds = np.unique(result.grid["lr"]), np.unique(result.grid["weight_decay"])
  final = np.where(result.history.diverged, 0.0, result.history.val_accuracy[..., -1])
  table = np.zeros((result.num_seeds, len(wds), len(lrs)))
  for k, (lr, wd) in enumerate(zip(result.grid["lr"], result.grid["weight_decay"], strict=True)):
    table[:, np.searchsorted(wds, wd), np.searchsorted(lrs, lr)] = final[:, k]
  i, j = np.unravel_index(np.argmax(table.mean(axis=0)), table.shape[1:])
  best = entry["best"]
  assert (best["lr"], best["weight_decay"]) == pytest.approx((lrs[j], wds[i]))
  assert best["on_lowest_decay"] == (i == 0)
  if i == 0:
    assert best["vs_lowest_decay"] is None
    return
  d = table[:, i, j] - table[:, 0, j]
  assert best["vs_lowest_decay"]["gap"] == pytest.approx(d.mean(), abs=1e-6)
  assert best["vs_lowest_decay"]["se"] == pytest.approx(d.std(ddof=1) / math.sqrt(d.size))


@pytest.mark.skipif(not SUMMARY.exists(), reason="the default results are not committed yet")
def test_the_resnet_sgd_ridge_slopes_se_adds_the_grids_rounding_to_the_bootstrap():
  # Recomputed from the saved sweep: the seed bootstrap of the ridge's least-squares slope (per
  # weight decay the best lr by tests/experiments/reference.vertex on the seed-mean final val
  # accuracy, diverged runs 0 as the package counts them; a best on the grid's edge left out;
  # a slope needs 3 points) and each used ridge point's rounding over one lr step, in quadrature.
  entry = json.loads(SUMMARY.read_text())["numbers"]["mnist1d-resnet/sgd"]["primary"]
  result = sweep.SweepResult.load(SUMMARY.parent / "mnist1d-resnet-sgd")
  accuracy = result.history.val_accuracy[:, :, -1].astype(float)
  accuracy = np.where(result.history.diverged, 0.0, accuracy)
  lrs, wds = np.unique(result.grid["lr"]), np.unique(result.grid["weight_decay"])
  table = np.empty((accuracy.shape[0], len(wds), len(lrs)))
  for k, (lr, wd) in enumerate(zip(result.grid["lr"], result.grid["weight_decay"], strict=True)):
    table[:, np.searchsorted(wds, wd), np.searchsorted(lrs, lr)] = accuracy[:, k]
  log_lr, log_wd = np.log10(lrs), np.log10(wds)

  def ridge(sample):
    mean = sample.mean(0)
    best = np.array([reference.vertex(log_lr, row, larger_is_better=True) for row in mean])
    interior = np.array([0 < np.argmax(row) < len(row) - 1 for row in mean])
    return best, interior

  def slope(sample) -> float:
    best, interior = ridge(sample)
    return np.polyfit(log_wd[interior], best[interior], 1)[0] if interior.sum() >= 3 else np.nan

  seeds = table.shape[0]
  draws = np.random.default_rng(0).integers(0, seeds, size=(wd_vs_lr.BOOTSTRAP, seeds))
  slopes = np.array([slope(table[d]) for d in draws])
  bootstrap = np.std(slopes[np.isfinite(slopes)], ddof=1)
  interior = ridge(table)[1]
  grid = reference.rounding_sd(log_wd[interior], 0.5)  # a half-decade lr step
  assert entry["slope_se"] == pytest.approx(math.hypot(bootstrap, grid), rel=1e-6)
  assert entry["slope_se"] > 2 * bootstrap  # 0.051 against 0.022: the grid's term dominates
