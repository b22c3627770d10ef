"""Statistics the experiments share: seed bands, usable-range widths, trends, paired
differences, multiple comparisons and verdicts.

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

ALPHA = math.erfc(math.sqrt(2.0))
"""0.0455: the two-sided level of a 2-standard-error test, ``erfc(sqrt(2))``, the level
at which the experiments compare Holm-adjusted p-values (:func:`holm`)."""


def seed_band(values: ArrayLike, axis: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
  """Mean and min-max band over seeds (the leading axis by default); NaNs are ignored.

  A point where every seed is NaN (every run diverged) is NaN in all three; no seed at all is
  refused.

  Returns:
    ``(mean, low, high)``, each with ``axis`` removed.

  Example:
    >>> mean, low, high = lrlab.analysis.seed_band([[1.0, 2.0], [3.0, 6.0]])
    >>> mean.tolist(), low.tolist(), high.tolist()
    ([2.0, 4.0], [1.0, 2.0], [3.0, 6.0])
  """
  values = np.asarray(values, np.float64)
  if values.ndim == 0 or values.shape[axis] == 0:
    raise ValueError(
      f"values must hold at least one seed along axis {axis}; got shape {values.shape}."
    )
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

  Pearson's correlation of the ranks: ``+1`` when ``y`` rises with ``x`` in every
  pair, ``-1`` when it always falls; NaN for fewer than two points or a constant
  sample. A NaN (a diverged run's metric) ranks above every number, and NaNs tie
  with each other.

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
    r = np.empty(v.size)
    r[np.argsort(v, kind="stable")] = np.arange(v.size, dtype=np.float64)  # NaNs sort last
    _, tie = np.unique(v, return_inverse=True, equal_nan=True)
    return (np.bincount(tie, r) / np.bincount(tie))[tie]  # ties share their average rank

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
  _checks.check("noise", noise, lambda v: np.isnan(v) | (v >= 0), "a number >= 0 (or NaN)")
  if not (np.isfinite(effect) and np.isfinite(noise)):
    return "inconclusive"
  if abs(effect) <= margin * noise or effect == 0:
    return "inconclusive"
  return "supported" if np.sign(effect) == expected_sign else "refuted"


def holm(p_values: ArrayLike) -> np.ndarray:
  r"""Holm's step-down adjusted p-values for ``m`` simultaneous tests.

  With the p-values sorted, :math:`p_{(1)} \le \dots \le p_{(m)}`, the adjusted
  value of the ``i``-th is :math:`\max_{j \le i} \min(1, (m - j + 1)\, p_{(j)})`.
  Rejecting every test whose adjusted p-value is below :math:`\alpha` keeps the
  family-wise error rate at most :math:`\alpha` under any dependence between the
  tests, given valid p-values (for :func:`paired_difference` at few seeds, its ``p_t``,
  not the 2-SE rule's normal ``p``), and rejects at least as many as Bonferroni's
  :math:`m p`.

  Args:
    p_values: a 1-D array of p-values, each in ``[0, 1]`` (NaN stays NaN and is
      left out of ``m``).

  Returns:
    The adjusted p-values in the input's order, float64.

  Example:
    >>> lrlab.analysis.holm([0.01, 0.04, 0.03, 0.005]).round(3).tolist()
    [0.03, 0.06, 0.06, 0.02]

  References:
    Holm, `A Simple Sequentially Rejective Multiple Test Procedure
    <https://www.jstor.org/stable/4615733>`_, Scandinavian Journal of
    Statistics 6(2), 1979.
  """
  p = np.asarray(p_values, np.float64)
  if p.ndim != 1:
    raise ValueError(f"p_values must be 1-D, got shape {p.shape}")
  finite = ~np.isnan(p)
  if np.any((p[finite] < 0) | (p[finite] > 1)):
    raise ValueError(f"p_values must lie in [0, 1], got {p[finite].min()} to {p[finite].max()}")
  out = np.full_like(p, np.nan)
  index = np.flatnonzero(finite)
  order = index[np.argsort(p[index], kind="stable")]
  m = order.size
  scaled = np.minimum(1.0, (m - np.arange(m)) * p[order])
  out[order] = np.maximum.accumulate(scaled)
  return out


def paired_difference(
  a: ArrayLike, b: ArrayLike, *, test_examples: int | None = None, extra_se: float = 0.0
) -> dict:
  r"""The mean of ``a - b`` over seeds, paired, with its standard error and p-value.

  With :math:`d_s = a_s - b_s` over ``S`` seeds, the standard error is
  :math:`\sqrt{\mathrm{SE}_\text{seeds}^2 + \mathrm{SE}_\text{test}^2}`, where
  :math:`\mathrm{SE}_\text{seeds} = \mathrm{std}(d, \text{ddof}=1)/\sqrt{S}` and, when ``a`` and
  ``b`` are accuracies on a test set of ``n = test_examples`` examples, the test set's
  binomial error of a difference of two means
  :math:`\mathrm{SE}_\text{test} = \sqrt{(\bar a(1-\bar a) + \bar b(1-\bar b))/n}`
  (0 without ``test_examples``); ``extra_se``, any other error independent of the seeds
  (a grid's rounding), adds in quadrature too. It treats the two accuracies as independent, which
  overstates the error of models scored on the same examples: a conservative test.
  ``z = mean / SE`` and ``p = erfc(|z| / sqrt 2)``, two-sided under a normal law:
  ``p < ALPHA`` exactly when ``|z| > 2``, the 2-standard-error rule the experiments'
  verdicts follow. At few seeds it is not an exact-size test: ``p_t`` is the two-sided
  Student-t p-value of the same ``z`` with ``df`` degrees of freedom (``S - 1``, or
  Welch-Satterthwaite's ``(S - 1) (SE / SE_seeds)^4`` with a test-set or extra term; the paired
  t-test's p without one), larger at few seeds: ``|z| = 2`` at 5 seeds gives ``p = 0.0455``
  and ``p_t = 0.116``, and a true null passes the 2-SE rule 11% of the time, not 4.6%.

  Args:
    a, b: ``(S,)`` the two arms' values, seed by seed, ``S >= 1``.
    test_examples: the test set's size, an integer >= 1, where ``a`` and ``b`` are
      accuracies (fractions in ``[0, 1]``) on it.
    extra_se: a further standard error, >= 0, independent of the seeds' (infinite df).

  Returns:
    ``{"gap", "se", "se_seeds", "se_test_set", "z", "p", "df", "p_t"}``; SE, z, p and p_t are
    NaN with one seed; a nonzero gap with no spread at all (the same difference in every
    seed, no test-set term) has ``z = +-inf`` and ``p = p_t = 0``, as ``scipy.stats.ttest_rel``.

  Example:
    >>> d = lrlab.analysis.paired_difference([0.9, 0.8, 0.7], [0.8, 0.8, 0.6])
    >>> round(d["gap"], 4), round(d["se"], 4)
    (0.0667, 0.0333)
  """
  a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
  if a.shape != b.shape or a.ndim != 1:
    raise ValueError(f"a and b must be 1-D of one shape (seeds); got {a.shape} and {b.shape}.")
  if a.size == 0:
    raise ValueError("a and b must hold at least one seed each; got 0.")
  if test_examples is not None:
    _checks.check(
      "test_examples", test_examples, lambda v: (v >= 1) & (v == np.floor(v)), "an integer >= 1"
    )
    values = np.concatenate([a, b])
    if np.any((values < 0) | (values > 1)):  # NaN (a diverged run) passes, and stays NaN
      raise ValueError(
        "a and b must be accuracies in [0, 1] with test_examples (fractions, not percent); "
        f"got values from {np.nanmin(values)} to {np.nanmax(values)}."
      )
  _checks.check_nonnegative("extra_se", extra_se)
  d = a - b
  seeds_se = float(d.std(ddof=1) / math.sqrt(d.size)) if d.size > 1 else math.nan
  test_se = 0.0
  if test_examples is not None:
    p1, p2 = float(a.mean()), float(b.mean())
    test_se = math.sqrt(max(p1 * (1 - p1) + p2 * (1 - p2), 0.0) / test_examples)
  independent_se = math.hypot(test_se, float(extra_se))  # no seed spread in it: infinite df
  se = math.hypot(seeds_se, independent_se)
  gap = float(d.mean())
  if se > 0:
    z = gap / se
  elif se == 0 and gap != 0:  # the same nonzero difference in every seed: t = +-inf, p = 0
    z = math.copysign(math.inf, gap)
  else:
    z = math.nan  # one seed, or no difference in any seed (0 / 0)
  if seeds_se > 0:
    df = (d.size - 1) * (se / seeds_se) ** 4
  else:  # Welch-Satterthwaite's limit: the test set's term alone, or the paired t-test's S - 1
    df = math.inf if independent_se > 0 or d.size < 2 else d.size - 1
  return {
    "gap": gap,
    "se": se,
    "se_seeds": seeds_se,
    "se_test_set": test_se,
    "z": z,
    "p": math.erfc(abs(z) / math.sqrt(2.0)) if not math.isnan(z) else math.nan,
    "df": df,
    "p_t": 0.0 if math.isinf(z) else _two_sided_t(z, df),
  }


def _two_sided_t(t: float, df: float) -> float:
  """``P(|T| >= |t|)`` for Student's ``T`` with ``df`` degrees of freedom (the normal law above
  ``df = 1e7``): the regularized incomplete beta ``I_x(df / 2, 1 / 2)``, ``x = df / (df + t^2)``."""
  if not math.isfinite(t):
    return math.nan
  if not math.isfinite(df) or df > 1e7:
    # The continued fraction needs about sqrt(df) terms and lgamma(df / 2) cancels: past 1e7
    # take the normal law, whose relative error there is about (t^2 + 1)^2 / (4 df).
    return math.erfc(abs(t) / math.sqrt(2.0))
  return _incomplete_beta(df / 2, 0.5, df / (df + t * t), t * t / (df + t * t))


def _incomplete_beta(a: float, b: float, x: float, y: float) -> float:
  """The regularized incomplete beta ``I_x(a, b)``, ``y = 1 - x`` (given apart, as it may be
  known more exactly), in float64 by its continued fraction (modified Lentz), from ``x`` or,
  where that converges faster, as ``1 - I_y(b, a)``."""
  if x <= 0.0 or y <= 0.0:
    return 0.0 if x <= 0.0 else 1.0
  if x > (a + 1) / (a + b + 2):
    return 1.0 - _incomplete_beta(b, a, y, x)
  front = math.exp(a * math.log(x) + b * math.log(y) - math.log(a) - _log_beta(a, b))
  tiny, c, d = 1e-300, 1.0, 1.0 - (a + b) * x / (a + 1)
  d = 1.0 / (d if abs(d) > tiny else tiny)
  value = d
  for m in range(1, 500):
    for numerator in (
      m * (b - m) * x / ((a + 2 * m - 1) * (a + 2 * m)),
      -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 2 * m + 1)),
    ):
      d = 1.0 + numerator * d
      d = 1.0 / (d if abs(d) > tiny else tiny)
      c = 1.0 + numerator / c
      c = c if abs(c) > tiny else tiny
      value *= c * d
    if abs(c * d - 1.0) < 1e-15:
      break
  return front * value


def _log_beta(a: float, b: float) -> float:
  """``log B(a, b)``."""
  return math.lgamma(a) + math.lgamma(b) - math.lgamma(a + b)


def refine_best(x: ArrayLike, scores: ArrayLike, *, larger_is_better: bool) -> float:
  """The best point of a grid, moved to the vertex of the parabola through it and its neighbours.

  With ``k`` the grid's best index (non-finite scores count as worst) and ``s`` the
  scores oriented so larger is better, the parabola through ``(x[k-1..k+1], s[k-1..k+1])``
  has its vertex at ``x[k] - (d0^2 (s[k] - s[k+1]) - d2^2 (s[k] - s[k-1])) / (2 (d0 (s[k] -
  s[k+1]) - d2 (s[k] - s[k-1])))`` with ``d0 = x[k] - x[k-1]`` and ``d2 = x[k] - x[k+1]``;
  on an evenly spaced grid of step ``h``, ``x[k] + h (s[k-1] - s[k+1]) / (2 (s[k-1] -
  2 s[k] + s[k+1]))``. The vertex is clipped to half-way to either neighbour; it is
  ``x[k]`` where the parabola has no maximum, at the grid's edge or next to a non-finite
  score. Pass ``x`` on the scale the scores are smooth in (``log10`` of the rates).

  Args:
    x: ``(K,)`` the grid, increasing (evenly spaced or not).
    scores: ``(K,)`` the score at each point (e.g. a seed mean).
    larger_is_better: whether a larger score is better (an accuracy) or worse (a loss).

  Example:
    >>> lrlab.analysis.refine_best([0.0, 1.0, 2.0], [1.0, 3.0, 2.0], larger_is_better=True)
    1.1666666666666667
  """
  x, scores = np.asarray(x, np.float64), np.asarray(scores, np.float64)
  if x.ndim != 1 or x.shape != scores.shape or x.size == 0:
    raise ValueError(f"x and scores must be 1-D of one shape; got {x.shape} and {scores.shape}.")
  score = scores if larger_is_better else -scores
  score = np.where(np.isfinite(score), score, -np.inf)
  k = int(np.argmax(score))
  if k == 0 or k == len(score) - 1 or not np.all(np.isfinite(score[k - 1 : k + 2])):
    return float(x[k])
  (x0, x1, x2), (a, b, c) = x[k - 1 : k + 2], score[k - 1 : k + 2]
  # The parabola's second divided difference: negative where it has a maximum.
  curvature = ((c - b) / (x2 - x1) - (b - a) / (x1 - x0)) / (x2 - x0)
  if not curvature < 0:
    return float(x1)
  d0, d2 = x1 - x0, x1 - x2
  vertex = x1 - 0.5 * (d0**2 * (b - c) - d2**2 * (b - a)) / (d0 * (b - c) - d2 * (b - a))
  return float(np.clip(vertex, *sorted(((x0 + x1) / 2, (x1 + x2) / 2))))
