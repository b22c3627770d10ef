"""The experiments' statistics on constructed data with known answers."""

import math

import numpy as np
import pytest

from lrlab.analysis import decades, holm, seed_band, spearman, verdict


def test_seed_band_ignores_nan():
  mean, low, high = seed_band(np.array([[1.0, np.nan], [3.0, 4.0], [5.0, 8.0]]))
  np.testing.assert_allclose(mean, [3.0, 6.0])
  np.testing.assert_allclose(low, [1.0, 4.0])
  np.testing.assert_allclose(high, [5.0, 8.0])


@pytest.mark.parametrize(
  ("interval", "expected"),
  [((1e-4, 1e-1), 3.0), ((0.5, 0.5), 0.0), ((0.0, 1.0), math.nan), ((math.nan, 1.0), math.nan)],
)
def test_decades(interval, expected):
  assert decades(interval) == pytest.approx(expected, nan_ok=True)


def test_spearman_matches_the_definition_with_ties():
  x = np.array([1.0, 2.0, 3.0, 4.0, 5.0])
  y = np.array([2.0, 1.0, 4.0, 4.0, 5.0])
  # Ranks: x = 0..4; y = [1, 0, 2.5, 2.5, 4]; Pearson correlation of the ranks.
  rx, ry = np.arange(5.0), np.array([1.0, 0.0, 2.5, 2.5, 4.0])
  expected = np.sum((rx - 2) * (ry - 2)) / math.sqrt(np.sum((rx - 2) ** 2) * np.sum((ry - 2) ** 2))
  assert spearman(x, y) == pytest.approx(expected)
  assert spearman(x, x**3) == pytest.approx(1.0)
  assert math.isnan(spearman(x, np.ones(5)))
  with pytest.raises(ValueError, match="equal length"):
    spearman(x, y[:3])


@pytest.mark.parametrize(
  ("effect", "noise", "sign", "expected"),
  [
    (1.0, 0.1, 1, "supported"),
    (-1.0, 0.1, 1, "refuted"),
    (-1.0, 0.1, -1, "supported"),
    (0.15, 0.1, 1, "inconclusive"),  # within 2 noise scales
    (0.25, 0.1, 1, "supported"),
    (0.0, 0.0, 1, "inconclusive"),
    (0.01, 0.0, 1, "supported"),  # deterministic: any effect is real
    (math.nan, 0.1, 1, "inconclusive"),
  ],
)
def test_verdict(effect, noise, sign, expected):
  assert verdict(effect, noise, expected_sign=sign) == expected


def test_verdict_rejects_bad_sign():
  with pytest.raises(ValueError, match="expected_sign"):
    verdict(1.0, 0.1, expected_sign=0)


def _holm_rejects(p, alpha):
  """Holm's sequentially rejective procedure as the 1979 paper states it."""
  rejected = np.zeros(len(p), bool)
  for k, i in enumerate(np.argsort(p, kind="stable")):
    if p[i] > alpha / (len(p) - k):
      break
    rejected[i] = True
  return rejected


def test_holm_rejects_as_the_sequential_procedure():
  rng = np.random.default_rng(0)
  for m in (1, 2, 5, 16):
    for _ in range(50):
      p = rng.uniform(0, 0.2, m) ** 2
      adjusted = holm(p)
      assert np.all(adjusted >= p) and np.all(adjusted <= 1)
      for alpha in (0.01, 0.0455, 0.05, 0.1):
        np.testing.assert_array_equal(adjusted <= alpha, _holm_rejects(p, alpha))


def test_holm_by_hand_and_nan():
  # sorted 0.005, 0.01, 0.03, 0.04 -> 4 x 0.005, 3 x 0.01, 2 x 0.03, max(0.06, 1 x 0.04)
  np.testing.assert_allclose(holm([0.01, 0.04, 0.03, 0.005]), [0.03, 0.06, 0.06, 0.02])
  np.testing.assert_allclose(holm([0.2, np.nan, 0.01]), [0.2, np.nan, 0.02])  # m = 2


def test_holm_rejects_bad_input():
  with pytest.raises(ValueError, match="p_values"):
    holm([0.5, 1.5])
  with pytest.raises(ValueError, match="p_values"):
    holm([[0.5]])
