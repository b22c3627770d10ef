"""Statistics the experiments share: seed bands, usable-range widths, trends and verdicts.

Every experiment ends in a verdict on a claim. The rules here make those
verdicts mechanical and reproducible: an effect counts only when it exceeds the
noise measured across seeds.
"""

import math
from collections.abc import Sequence

import numpy as np
from jax.typing import ArrayLike

from lrlab import _checks

VERDICTS = ("supported", "refuted", "inconclusive")


def seed_band(values: ArrayLike, axis: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
  """Mean and min-max band over seeds (the leading axis by default); NaNs are ignored.

  Returns:
    ``(mean, low, high)``, each with ``axis`` removed.

  Example:
    >>> mean, low, high = lrlab.analysis.seed_band([[1.0, 2.0], [3.0, 6.0]])
    >>> mean.tolist(), low.tolist(), high.tolist()
    ([2.0, 4.0], [1.0, 2.0], [3.0, 6.0])
  """
  values = np.asarray(values, np.float64)
  return np.nanmean(values, axis), np.nanmin(values, axis), np.nanmax(values, axis)


def decades(interval: Sequence[float]) -> float:
  """Width of a positive interval ``(lo, hi)`` in decades, ``log10(hi / lo)``; NaN if undefined.

  Example:
    >>> lrlab.analysis.decades((1e-3, 1e-1))
    2.0
  """
  lo, hi = (float(v) for v in interval)
  if not (np.isfinite(lo) and np.isfinite(hi)) or lo <= 0 or hi < lo:
    return math.nan
  return math.log10(hi / lo)


def spearman(x: ArrayLike, y: ArrayLike) -> float:
  """Spearman's rank correlation of two equal-length samples (average ranks for ties).

  ``+1`` when ``y`` rises with ``x`` in every pair, ``-1`` when it always falls;
  NaN for fewer than two points or a constant sample.

  Example:
    >>> lrlab.analysis.spearman([1, 2, 3, 4], [10, 9, 7, 1])
    -1.0
  """
  x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
  if x.shape != y.shape or x.ndim != 1:
    raise ValueError(f"x and y must be 1-D of equal length; got shapes {x.shape} and {y.shape}.")
  if x.size < 2:
    return math.nan

  def ranks(v: np.ndarray) -> np.ndarray:
    order = np.argsort(v, kind="stable")
    r = np.empty(v.size)
    r[order] = np.arange(v.size, dtype=np.float64)
    for value in np.unique(v):  # ties share their average rank
      tied = v == value
      r[tied] = r[tied].mean()
    return r

  rx, ry = ranks(x), ranks(y)
  if np.std(rx) == 0 or np.std(ry) == 0:
    return math.nan
  return float(np.corrcoef(rx, ry)[0, 1])


def verdict(effect: float, noise: float, *, expected_sign: int = 1, margin: float = 2.0) -> str:
  """Judge a claimed effect against its noise.

  - ``"supported"``: the effect has the claimed sign and exceeds ``margin`` times the noise;
  - ``"refuted"``: it has the opposite sign and exceeds ``margin`` times the noise;
  - ``"inconclusive"``: otherwise (or if either number is not finite).

  The noise is the spread that would arise without an effect, e.g. the standard
  deviation over seeds of the quantity compared (0 for a deterministic one).

  Args:
    effect: the measured effect, signed so that the claim predicts ``expected_sign``.
    noise: its noise scale, >= 0.
    expected_sign: +1 or -1, the sign the claim predicts.
    margin: how many noise scales make an effect real, >= 0.

  Returns:
    One of :data:`VERDICTS`.

  Example:
    >>> lrlab.analysis.verdict(0.3, 0.05), lrlab.analysis.verdict(-0.3, 0.05)
    ('supported', 'refuted')
    >>> lrlab.analysis.verdict(0.05, 0.05)
    'inconclusive'
  """
  _checks.check_choice("expected_sign", expected_sign, (1, -1))
  _checks.check_nonnegative("margin", margin)
  if not (np.isfinite(effect) and np.isfinite(noise)) or noise < 0:
    return "inconclusive"
  if abs(effect) <= margin * noise or effect == 0:
    return "inconclusive"
  return "supported" if np.sign(effect) == expected_sign else "refuted"
