"""Restarts (claim 5), issue 19: the matched design, its statistics and the committed results."""

import math

import jax.numpy as jnp
import numpy as np
import pytest

from experiments import common, restarts_escape
from lrlab import analysis

OUT = common.RESULTS / "restarts_escape"
T = 400


def _rates(name: str, peak: float = 0.1) -> np.ndarray:
  index = restarts_escape.SCHEDULES.index(name)
  return np.asarray(restarts_escape.make_schedule(index, peak, T)(jnp.arange(T)), np.float64)


@pytest.mark.parametrize(("raising", "monotone"), restarts_escape.PAIRS)
def test_each_pair_ends_on_the_same_anneal_and_only_one_raises_the_rate(raising, monotone):
  peak, length = 0.1, T // int(raising.split("T/")[1])
  t = np.arange(T - length, T) - (T - length)
  if "cosine" in monotone:  # closed forms of the final anneal: half a cosine, or a line to peak/10
    tail = peak * (1 + np.cos(np.pi * t / length)) / 2
  else:
    tail = peak - (peak - peak / 10) * t / length
  a, b = _rates(raising, peak), _rates(monotone, peak)
  np.testing.assert_allclose(a[-length:], tail, rtol=1e-5, atol=1e-7)
  np.testing.assert_allclose(b[-length:], tail, rtol=1e-5, atol=1e-7)
  np.testing.assert_allclose(b[: T - length], peak, rtol=1e-6)  # held at the peak before it
  assert np.diff(a).max() > 1e-3 * peak and np.diff(b).max() <= 1e-7  # only one raises


def test_paired_escapes_against_the_counts():
  rng = np.random.default_rng(0)
  a, b = rng.random(200) < 0.6, rng.random(200) < 0.4
  entry = restarts_escape.paired_escapes(a, b)
  n, p1, p2 = a.size, np.mean(a & ~b), np.mean(~a & b)
  assert entry["only_first"] == round(p1 * n) and entry["only_second"] == round(p2 * n)
  assert entry["gap"] == pytest.approx(p1 - p2)
  # The difference takes values -1, 0, 1: its variance is p1 + p2 - (p1 - p2)^2 (ddof=0).
  se = math.sqrt((p1 + p2 - (p1 - p2) ** 2) * n / (n - 1) / n)
  assert entry["se_inits"] == pytest.approx(se)
  assert entry["se"] == max(entry["se_inits"], entry["se_init_sets"])
  assert entry["p"] == pytest.approx(math.erfc(abs(p1 - p2) / entry["se"] / math.sqrt(2)))
  same = restarts_escape.paired_escapes(a, a)
  assert same["gap"] == 0 and same["p"] == 1.0


def test_cross_fitting_never_chooses_a_peak_on_the_inits_it_scores():
  """Peak A escapes on exactly the inits of set 0, peak B on none but with the lower loss.

  Chosen on all inits, A would score 0.2; cross-fitted, set 0 gets B (chosen on the other
  sets, where A never escapes) and the other sets get A, which escapes on none of theirs.
  """
  folds, n = restarts_escape.FOLDS, 50
  sets = np.arange(n) % folds
  members = len(restarts_escape.SCHEDULES) * 2
  final = np.full((n, members), 5.0, np.float32)
  final[:, 1::2] = 1.0  # peak B: never escapes, lower loss than A's failures
  final[sets == 0, 0::2] = 0.0  # peak A escapes on set 0 only
  runs = {
    "schedule": np.repeat(np.arange(len(restarts_escape.SCHEDULES)), 2),
    "lr": np.tile([0.1, 0.2], len(restarts_escape.SCHEDULES)),
    "final_loss": final,
    "diverged": np.zeros((n, members), bool),
  }
  scored, peaks = restarts_escape.cross_fit(runs)
  for name in restarts_escape.SCHEDULES:
    assert not scored[name].any()
    assert peaks[name] == [0.2] + [0.1] * (folds - 1)


def test_committed_summary_follows_from_the_saved_runs():
  summary = common.read_summary(OUT)
  numbers = summary["numbers"]
  assert summary["size"] == "default"
  landscapes = [p for p in sorted(OUT.iterdir()) if (p / "runs.npz").exists()]
  assert len(landscapes) == len(summary["settings"]["landscapes"]) >= 4
  assert numbers["comparisons"] == len(landscapes) * len(restarts_escape.PAIRS)
  p_values, adjusted = [], []
  for folder in landscapes:
    runs, _ = restarts_escape._load(folder)
    entry = numbers[folder.name]
    n = entry["inits"]
    assert n == len(runs["final_loss"]) and n >= 100 * restarts_escape.FOLDS
    final = np.where(runs["diverged"], np.inf, runs["final_loss"])
    for i, name in enumerate(restarts_escape.SCHEDULES):
      best = (final[:, runs["schedule"] == i] < 0.5).mean(0).max()
      assert entry["schedules"][name]["escaped_all_inits_best_over_peaks"] == pytest.approx(best)
      assert entry["schedules"][name]["escaped"] <= best + 3 * math.sqrt(0.25 / n)
    for pair in entry["matched"].values():
      assert pair["gap"] == pytest.approx((pair["only_first"] - pair["only_second"]) / n)
      p_values.append(pair["p"])
      adjusted.append(pair["p_holm"])
      expected = "inconclusive"
      if pair["p_holm"] <= restarts_escape.ALPHA:
        expected = "supported" if pair["gap"] > 0 else "refuted"
        assert abs(pair["gap"]) > 2 * pair["se"]
      assert pair["verdict"] == expected
  np.testing.assert_allclose(analysis.holm(p_values), adjusted)
  verdicts = {
    p["verdict"]
    for name in numbers
    if name.startswith("d")
    for p in numbers[name]["matched"].values()
  }
  if {"supported", "refuted"} <= verdicts:
    assert summary["verdict"].startswith("depends on")
  else:
    assert summary["verdict"] == next(
      (v for v in ("supported", "refuted") if v in verdicts), "inconclusive"
    )
  for figure in summary["figures"]:
    assert (OUT / figure).stat().st_size > 1000
