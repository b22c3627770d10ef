"""U-curve (claim 1), issue 19: the committed numbers recomputed from the saved sweeps."""

import math

import numpy as np
import pytest

from experiments import common, u_curve
from lrlab import analysis, sweep

OUT = common.RESULTS / "u_curve"
SUMMARY = common.read_summary(OUT)
TASKS = [t for t in SUMMARY["numbers"] if t != "comparisons"]


def _paired(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
  """An independent paired gap: mean and SE (ddof=1) of a - b."""
  d = a - b
  return float(d.mean()), float(d.std(ddof=1) / math.sqrt(d.size))


@pytest.mark.parametrize("name", TASKS)
def test_committed_gaps_follow_from_the_saved_sweep(name):
  found = SUMMARY["numbers"][name]
  assert SUMMARY["size"] == "default" and found["seeds"] >= 5
  result = sweep.SweepResult.load(OUT / name)
  lrs = result.grid["lr"]
  loss = result.metric("final_val_loss", diverged_as_worst=False)  # (S, K)
  failed = result.history.diverged.copy()
  k = int(np.argmin(np.where(np.any(failed, 0), np.inf, loss.mean(0))))
  assert lrs[k] == pytest.approx(found["best_lr"])
  chance = found["chance_loss"]
  if chance is not None:  # the guard: a run above the best at chance level has failed
    train = result.metric("final_train_loss", diverged_as_worst=False)
    dead = ~failed & (train >= 0.95 * chance) & (lrs > lrs[k])[None, :]
    assert found["dead_runs"] == int(dead.sum())
    failed |= dead
  top = max(j for j in range(k, len(lrs)) if not failed[:, j].any())
  assert lrs[top] == pytest.approx(found["largest_surviving_lr"])
  for key, j in (("lowest_lr_gap", 0), ("overshoot_gap", top)):
    gap, se = _paired(loss[:, j], loss[:, k])
    assert found[key]["gap"] == pytest.approx(gap, rel=1e-6, abs=1e-30)
    assert found[key]["se"] == pytest.approx(se, rel=1e-6, abs=1e-30)
  assert found["highest_lr_diverges"] == bool(failed[:, -1].all())
  threshold = lrs[np.any(failed, 0)].min()
  assert found["divergence_threshold"] == pytest.approx(threshold)


def test_holm_over_every_test_and_the_verdicts():
  numbers = SUMMARY["numbers"]
  p = [numbers[t][g]["p"] for t in TASKS for g in ("lowest_lr_gap", "overshoot_gap")]
  p = np.array([np.nan if v is None else v for v in p], np.float64)
  assert numbers["comparisons"]["tests"] == int(np.isfinite(p).sum())
  adjusted = analysis.holm(p)
  for i, t in enumerate(TASKS):
    entry = numbers[t]
    slow = adjusted[2 * i] < analysis.ALPHA and entry["lowest_lr_gap"]["gap"] > 0
    assert entry["low_end_slow"] == slow
    high = entry["highest_lr_diverges"] or entry["overshoots"]
    against = adjusted[2 * i] < analysis.ALPHA and entry["lowest_lr_gap"]["gap"] < 0
    refuted = against and not high
    expected = "supported" if slow and high else "refuted" if refuted else "inconclusive"
    assert entry["verdict"] == expected
  assert SUMMARY["verdict"] == "supported"
  for figure in SUMMARY["figures"]:
    assert (OUT / figure).stat().st_size > 1000


def test_one_seed_never_makes_a_verdict():
  entry = {
    "seeds": 1,
    "lowest_lr_gap": {"gap": 1.0, "p": 0.0},
    "overshoot_gap": {"gap": 1.0, "p": 0.0},
    "highest_lr_diverges": True,
  }
  numbers, verdict = u_curve.judge({"task": entry})
  assert numbers["task"]["verdict"] == "inconclusive" and verdict == "inconclusive"


def test_a_best_rate_on_the_grids_lowest_point_is_not_a_refutation():
  # The best rate is the lowest (gap 0, no p) and one seed survives the highest rate: the grid
  # never reached a rate too low, which is no evidence against the claim (house rule: a
  # refutation needs an effect beyond 2 SE).
  entry = {
    "seeds": 5,
    "lowest_lr_gap": analysis.paired_difference(np.ones(5), np.ones(5)),
    "overshoot_gap": analysis.paired_difference([1.0, 1.1, 1.0, 1.2, 1.0], np.ones(5)),
    "highest_lr_diverges": False,
  }
  numbers, verdict = u_curve.judge({"task": entry})
  assert numbers["task"]["verdict"] == "inconclusive" and verdict == "inconclusive"
