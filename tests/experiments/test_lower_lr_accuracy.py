"""Lower rate, higher accuracy? (claim 2), issue 19: the committed summary follows from the sweeps.

The fast rate, the paired gaps (seeds' SEM with SciPy plus the test set's binomial error),
Holm's adjustment and the verdicts are recomputed here from the raw curves with NumPy.
"""

import math

import numpy as np
import pytest
from scipy import stats

from experiments import common
from experiments import lower_lr_accuracy as experiment
from lrlab import sweep
from lrlab.analysis import ALPHA
from tests.experiments import reference

OUT = common.RESULTS / "lower_lr_accuracy"


def _at(result: sweep.SweepResult, field: str, evaluation: int) -> np.ndarray:
  """``(S, K)`` ``field`` at one evaluation, float64; a run diverged before it counts as 0."""
  h = result.history
  gone = h.diverged & (h.diverged_step < h.step[0, 0, evaluation])
  return np.where(gone, 0.0, getattr(h, field)[:, :, evaluation].astype(float))


def test_committed_summary_follows_from_the_saved_sweeps():
  summary = common.read_summary(OUT)
  assert summary["size"] == "default" and summary["settings"]["seeds"] >= 5
  family, p_values = [], []
  for task, entry in summary["numbers"]["tasks"].items():
    result = sweep.SweepResult.load(OUT / task)
    lr = result.grid["lr"]
    short = _at(result, "val_accuracy", experiment.SHORT).mean(0)
    fast = int(np.argmax(short.round(6)))  # an exact tie (same correct count) goes to the lower
    assert entry["fast_lr"] == pytest.approx(lr[fast])
    low = int(np.flatnonzero(np.isclose(lr, entry["low_lr"]))[0])
    lower = int(np.flatnonzero(np.isclose(lr, entry["best_lower_lr"]))[0])
    assert low < fast and lower < fast
    test = _at(result, "test_accuracy", -1)
    n = entry["test_examples"]
    for key, k in (("higher_accuracy", low), ("best_lower_higher_accuracy", lower)):
      a, b = test[:, k], test[:, fast]
      binomial = math.sqrt((a.mean() * (1 - a.mean()) + b.mean() * (1 - b.mean())) / n)
      se = math.hypot(stats.sem(a - b), binomial)
      assert entry["tests"][key]["gap"] == pytest.approx((a - b).mean())
      assert entry["tests"][key]["se"] == pytest.approx(se)
    for key in experiment._TESTS:
      test_entry = entry["tests"][key]
      if all(test_entry != seen for seen in family):  # the steelman may be the low rate itself
        family.append(test_entry)
        p_values.append(2 * stats.norm.sf(abs(test_entry["gap"] / test_entry["se"])))
  assert summary["numbers"]["comparisons"] == len(family)
  reference.check_verdicts(family, p_values, ALPHA)
