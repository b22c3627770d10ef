"""Plateau and feedback (claim 9), issue 19: the dead-network guard and the committed results."""

import functools
import math

import numpy as np
import pytest

from experiments import common, plateau_feedback
from lrlab import analysis, sweep

OUT = common.RESULTS / "plateau_feedback"


def _member(values: np.ndarray, grid: dict, method: str, *, lr: float) -> np.ndarray:
  """``values[:, k]`` of the member of ``method`` started at ``lr`` (to the 3 digits quoted)."""
  m = plateau_feedback.METHODS.index(method)
  k = np.flatnonzero((grid["method"] == m) & np.isclose(grid["lr"], lr, rtol=2e-3))
  assert k.size == 1, (method, lr)
  return values[:, k[0]]


def test_chance_loss_is_the_entropy_of_the_label_frequencies():
  assert plateau_feedback.chance_loss(np.arange(1000) % 10) == pytest.approx(math.log(10))
  quarter = -(0.75 * math.log(0.75) + 0.25 * math.log(0.25))
  assert plateau_feedback.chance_loss(np.array([0, 0, 0, 1])) == pytest.approx(quarter)
  assert plateau_feedback.chance_loss(np.array([3, 3])) == 0.0


def test_mean_se_is_the_standard_error_with_ddof_1():
  values = np.array([[1.0, 4.0], [3.0, 4.0], [5.0, 4.0]])
  mean, se = plateau_feedback.mean_se(values)
  np.testing.assert_allclose(mean, [3.0, 4.0])
  np.testing.assert_allclose(se, [2.0 / math.sqrt(3), 0.0])  # sample std 2 over sqrt(3)
  assert np.isnan(plateau_feedback.mean_se(values[:1])[1]).all()


def test_committed_summary_follows_from_the_saved_sweep():
  summary = common.read_summary(OUT)
  numbers = summary["numbers"]
  assert summary["size"] == "default" and numbers["seeds"] >= 5
  result = sweep.SweepResult.load(OUT / "methods")
  history, grid = result.history, result.grid
  fixed = np.flatnonzero(grid["method"] == 0)
  fixed = fixed[np.argsort(grid["lr"][fixed])]
  # lr* is the fixed rate of the best seed-mean final val accuracy (diverged runs count 0).
  val = np.where(history.diverged, 0.0, np.nan_to_num(history.val_accuracy[..., -1]))
  assert numbers["best_fixed_lr"] == pytest.approx(
    grid["lr"][fixed[np.argmax(val[:, fixed].mean(0))]]
  )
  # Failed runs: diverged, or dead: val loss at chance and val accuracy no better than chance
  # (an overfitted network has a val loss above chance at 60% accuracy: not dead).
  loss = history.val_loss[..., -1]
  at_chance = (loss >= 0.98 * numbers["chance_loss"]) & (
    np.nan_to_num(history.val_accuracy[..., -1]) <= 1.5 * numbers["chance_accuracy"]
  )
  dead = history.diverged | ~np.isfinite(loss) | at_chance
  assert numbers["chance_loss"] == pytest.approx(math.log(10), abs=0.01)  # 10 near-even classes
  assert numbers["chance_accuracy"] == pytest.approx(0.1, abs=0.01)
  for m, method in enumerate(plateau_feedback.METHODS):
    assert numbers["failed_runs_total"][method] == int(dead[:, grid["method"] == m].sum())
  test = np.where(history.diverged, 0.0, np.nan_to_num(history.test_accuracy[..., -1]))
  n = numbers["test_examples"]
  p_values, adjusted, beyond = [], [], {}
  for name, entry in numbers["tests"].items():
    rule, start = entry["rule"], entry["start"]
    assert name == f"{rule} from {start}"
    lr = float(start[1:]) * numbers["best_fixed_lr"]
    at = functools.partial(_member, test, grid, lr=lr)
    for key, other in (("vs_fixed_same_start", "fixed"), ("vs_cosine_same_start", "cosine")):
      pair, d = entry[key], at(rule) - at(other)
      assert pair["gap"] == pytest.approx(d.mean())
      seeds_se = d.std(ddof=1) / math.sqrt(d.size)
      a, b = at(rule).mean(), at(other).mean()
      test_se = math.sqrt((a * (1 - a) + b * (1 - b)) / n)
      assert pair["se"] == pytest.approx(math.hypot(seeds_se, test_se))
      p_values.append(pair["p"])
      adjusted.append(pair["p_holm"])
      expected = "inconclusive"
      if pair["p_holm"] <= plateau_feedback.ALPHA:
        expected = "supported" if pair["gap"] > 0 else "refuted"
      assert pair["verdict"] == expected
    beyond.setdefault(rule, {})[start] = entry["vs_cosine_same_start"]["verdict"]
  assert numbers["comparisons"] == len(p_values) == 12
  np.testing.assert_allclose(analysis.holm(p_values), adjusted)
  assert numbers["beyond_decay_verdicts"] == beyond
  found = {v for starts in beyond.values() for v in starts.values()}
  if len(found) == 1:
    assert summary["verdict"] == found.pop()
  else:
    assert summary["verdict"].startswith("depends on the rule and start")
  for figure in summary["figures"]:
    assert (OUT / figure).stat().st_size > 1000
