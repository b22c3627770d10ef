"""k-fold CV (claim 11), issue 19: the committed gain recomputed from the saved sweeps."""

import math

import numpy as np
import pytest

from experiments import common
from lrlab import analysis, sweep, tasks

OUT = common.RESULTS / "kfold_cv"
SUMMARY = common.read_summary(OUT)


@pytest.fixture(scope="module")
def sweeps():
  return sweep.SweepResult.load(OUT / "single"), sweep.SweepResult.load(OUT / "kfold")


def _failed(result, values, sign, chance, lrs, shape):
  """Diverged, or dead (train loss within 5% of chance) above the seed-and-fold mean's best."""
  failed = result.history.diverged.reshape(shape)
  train = result.metric("final_train_loss", diverged_as_worst=False).reshape(shape)
  mean = np.where(failed, -np.inf, sign * values).mean(axis=(0, 2))
  above = lrs > lrs[int(np.argmax(mean))]
  return failed | (~failed & (train >= 0.95 * chance) & above[None, :, None])


@pytest.mark.parametrize(
  ("metric", "key"),
  [
    ("final_val_accuracy", "test_gain_of_cv_over_single_splits"),
    ("final_val_loss", "selected_by_val_loss"),
  ],
)
def test_committed_gain_follows_from_the_saved_sweeps(sweeps, metric, key):
  single, kfold = sweeps
  numbers = SUMMARY["numbers"]
  assert SUMMARY["size"] == "default" and numbers["seeds"] >= 5
  task = tasks.get(numbers["task"])
  chance = analysis.chance_loss(task.dataset.y_train, task.num_classes)
  lrs, k, seeds = single.grid["lr"], numbers["folds"], numbers["seeds"]
  sign = 1.0 if "accuracy" in metric else -1.0
  one = single.metric(metric, diverged_as_worst=False)[:, :, None]  # (S, K, 1)
  one = np.where(_failed(single, one, sign, chance, lrs, one.shape), -np.inf, sign * one)[..., 0]
  val = kfold.metric(metric, diverged_as_worst=False).reshape(seeds, len(lrs), k)
  val = np.where(_failed(kfold, val, sign, chance, lrs, val.shape), -np.inf, sign * val)
  expected_test = single.metric("final_test_accuracy").mean(axis=0)
  a, b = [], []
  for s in range(seeds):
    singles = [int(np.argmax(one[s]))] + [int(np.argmax(val[s, :, f])) for f in range(k)]
    a.append(expected_test[int(np.argmax(val[s].mean(axis=1)))])
    b.append(expected_test[singles].mean())
  a, b = np.array(a), np.array(b)
  n = numbers["test_examples"]
  binomial = math.sqrt((a.mean() * (1 - a.mean()) + b.mean() * (1 - b.mean())) / n)
  se = math.hypot((a - b).std(ddof=1) / math.sqrt(seeds), binomial)
  gain = numbers[key] if key.startswith("test_gain") else numbers[key]["test_gain_of_cv"]
  assert gain["gap"] == pytest.approx((a - b).mean(), abs=1e-9)
  assert gain["se_test_set"] == pytest.approx(binomial, rel=1e-6)
  assert gain["se"] == pytest.approx(se, rel=1e-6)


def test_holm_over_the_two_selections_and_the_verdict():
  numbers = SUMMARY["numbers"]
  gains = [numbers["test_gain_of_cv_over_single_splits"], numbers["selected_by_val_loss"]]
  gains[1] = gains[1]["test_gain_of_cv"]
  np.testing.assert_allclose([g["p_holm"] for g in gains], analysis.holm([g["p"] for g in gains]))
  assert numbers["comparisons"]["tests"] == 2
  g = gains[0]
  significant = g["p_holm"] < analysis.ALPHA
  expected = ("supported" if g["gap"] > 0 else "refuted") if significant else "inconclusive"
  assert SUMMARY["verdict"] == expected
  for figure in SUMMARY["figures"]:
    assert (OUT / figure).stat().st_size > 1000
