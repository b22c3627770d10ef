"""Schedules (claim 4), issue 19: the committed default-size summary follows from the saved sweep.

The best peaks, the paired gaps to the fixed rate and their Holm-adjusted p-values are
recomputed here with NumPy and SciPy from the raw curves, not with the module's helpers.
"""

import math

import numpy as np
import pytest
from scipy import stats

from experiments import common, schedules
from lrlab import sweep
from lrlab.analysis import ALPHA
from tests.experiments import reference

OUT = common.RESULTS / "schedules"


def _final(result: sweep.SweepResult, field: str, worst: float) -> np.ndarray:
  """``(S, K)`` the last evaluation of ``field``; a diverged run counts as ``worst``."""
  values = getattr(result.history, field)[:, :, -1].astype(float)
  return np.where(result.history.diverged | ~np.isfinite(values), worst, values)


@pytest.fixture(scope="module")
def committed():
  summary = common.read_summary(OUT)
  return summary, sweep.SweepResult.load(OUT / "sgd")


def test_committed_summary_follows_from_the_saved_sweep(committed):
  summary, result = committed
  numbers = summary["numbers"]
  assert summary["size"] == "default" and result.num_seeds >= 5
  n_test = numbers["test_examples"][result.config["task"]]
  val_acc, test_acc = _final(result, "val_accuracy", 0.0), _final(result, "test_accuracy", 0.0)
  val_loss, test_loss = _final(result, "val_loss", np.inf), _final(result, "test_loss", np.inf)
  picked = {}
  for i, name in enumerate(schedules.SCHEDULES):
    members = np.flatnonzero(result.grid["schedule"] == i)
    k = members[np.argmax(val_acc[:, members].mean(0))]
    k_loss = members[np.argmin(val_loss[:, members].mean(0))]
    entry = numbers["sgd"]["schedules"][name]
    assert entry["best_peak"] == pytest.approx(result.grid["lr"][k])
    assert entry["best_peak_by_val_loss"] == pytest.approx(result.grid["lr"][k_loss])
    assert entry["test_accuracy_per_seed"] == pytest.approx(test_acc[:, k].tolist())
    assert entry["test_loss"] == pytest.approx(test_loss[:, k_loss].mean())
    picked[name] = (k, k_loss)
  family, p_values = [], []
  fixed, fixed_loss = picked["fixed"]
  for name in schedules.SCHEDULES[1:]:
    k, k_loss = picked[name]
    entry = numbers["sgd"]["schedules"][name]
    a, b = test_acc[:, k], test_acc[:, fixed]
    binomial = math.sqrt((a.mean() * (1 - a.mean()) + b.mean() * (1 - b.mean())) / n_test)
    se = math.hypot(stats.sem(a - b), binomial)
    assert entry["vs_fixed"]["gap"] == pytest.approx((a - b).mean())
    assert entry["vs_fixed"]["se"] == pytest.approx(se)
    loss_gap = test_loss[:, fixed_loss] - test_loss[:, k_loss]  # positive: the schedule is lower
    assert entry["vs_fixed_loss"]["gap"] == pytest.approx(loss_gap.mean())
    assert entry["vs_fixed_loss"]["se"] == pytest.approx(stats.sem(loss_gap))
    loss_se = stats.sem(loss_gap)
    tests = (("vs_fixed", (a - b).mean(), se), ("vs_fixed_loss", loss_gap.mean(), loss_se))
    for key, gap, err in tests:  # p from the normal law, as the module reads its z
      family.append(entry[key])
      p_values.append(2 * stats.norm.sf(abs(gap / err)))
  assert numbers["comparisons"] == len(family) == 14
  reference.check_verdicts(family, p_values, ALPHA)
  for figure in summary["figures"]:
    assert (OUT / figure).stat().st_size > 1000
