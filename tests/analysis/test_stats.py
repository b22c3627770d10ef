"""The experiments' statistics on constructed data with known answers."""

import math

import numpy as np
import pytest

from lrlab.analysis import decades, seed_band, spearman, verdict


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
