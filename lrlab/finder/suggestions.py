"""The rules that turn a range test's loss curve into a suggested learning rate.

Each rule is a pure NumPy function of the recorded learning rates and
(smoothed) losses, written from its published definition, and returns a
:class:`Suggestion`: the rate, the index of the point it picked, or ``None``
and the reason it cannot be computed. Every rule first cuts the curve to a
window the way its source does (``skip_start`` points off the head,
``skip_end`` off the tail) and drops non-finite losses, then applies its
definition to what is left; the indices it returns refer to the arrays it was
given, before the cut.

=============  =========================================================  ==========================
rule           definition                                                 source, window
=============  =========================================================  ==========================
``steep``      steepest descent of the loss against ``log(lr)``           fastai, ``[n//10 : -5]``
``valley``     half-way down the longest valley                           fastai, ``[n//10 : -5]``
``minimum``    the rate at the minimum loss, divided by 10                fastai, ``[n//10 : -5]``
``slide``      where the gradient stops changing, sliding from the right  fastai, ``[n//10 : -5]``
``lightning``  steepest descent of the loss against ``lr`` (linear)       Lightning, ``[10 : -1]``
=============  =========================================================  ==========================

(``n`` is the number of steps the test was planned for.) :func:`suggest`
applies every rule with its source's window.

References:
  Smith, `Cyclical Learning Rates for Training Neural Networks
  <https://arxiv.org/abs/1506.01186>`_, 2017.

  fastai, `fastai.callback.schedule
  <https://docs.fast.ai/callback.schedule.html#lrfinder>`_ (``valley``,
  ``slide``, ``minimum``, ``steep``).

  Lightning, `LearningRateFinder
  <https://lightning.ai/docs/pytorch/stable/api/lightning.pytorch.tuner.tuning.Tuner.html>`_
  (``_LRFinder.suggestion``).
"""

from collections.abc import Callable
from typing import NamedTuple

import numpy as np

RULES = ("steep", "valley", "minimum", "slide", "lightning")
"""The names of the suggestion rules, in the order :func:`suggest` reports them."""

FASTAI_SKIP_END = 5
"""Points fastai's ``lr_find`` drops off the tail before its rules (and its plot)."""

LIGHTNING_SKIP = (10, 1)
"""Points Lightning's ``suggestion`` drops off the head and the tail."""


class Suggestion(NamedTuple):
  """What a rule suggests.

  Attributes:
    lr: the suggested learning rate, or ``None`` when the rule cannot be computed.
    index: the index (in the arrays given to the rule) of the point the rule
      picked, or ``None``. For ``minimum`` it is the minimum's index, whose rate
      is ten times the suggestion.
    reason: why ``lr`` is ``None``; ``None`` when it is not.
  """

  lr: float | None
  index: int | None
  reason: str | None


def _window(
  lrs: np.ndarray, losses: np.ndarray, skip_start: int, skip_end: int, *, finite: str
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
  """The rates, losses and original indices of the window a rule looks at.

  ``finite="truncate"`` keeps the points before the first non-finite loss
  (fastai drops everything from the first NaN); ``"filter"`` drops every
  non-finite loss and keeps the rest (Lightning).
  """
  lrs = np.asarray(lrs, np.float64).reshape(-1)
  losses = np.asarray(losses, np.float64).reshape(-1)
  if lrs.shape != losses.shape:
    raise ValueError(
      f"lrs and losses must have the same length; got {lrs.shape[0]} and {losses.shape[0]}."
    )
  for name, value in (("skip_start", skip_start), ("skip_end", skip_end)):
    if not isinstance(value, int | np.integer) or value < 0:
      raise ValueError(f"{name} must be an integer >= 0; got {value!r}.")
  index = np.arange(skip_start, max(skip_start, lrs.size - skip_end))
  lrs, losses = lrs[index], losses[index]
  ok = np.isfinite(losses)
  if finite == "truncate":
    keep = np.arange(lrs.size) < (np.argmin(ok) if not ok.all() else lrs.size)
  else:
    keep = ok
  return lrs[keep], losses[keep], index[keep]


def _too_few(rule: str, have: int, need: int, skip_start: int, skip_end: int) -> Suggestion:
  reason = (
    f"{rule} needs at least {need} finite point(s) after skipping {skip_start} at the start "
    f"and {skip_end} at the end; {have} remain."
  )
  return Suggestion(None, None, reason)


def steep(
  lrs: np.ndarray, losses: np.ndarray, *, skip_start: int = 0, skip_end: int = 0
) -> Suggestion:
  r"""fastai's ``steep``: the rate where the loss falls fastest against ``log(lr)``.

  .. math::

    g_i = \frac{\ell_{i+1} - \ell_i}{\log \eta_{i+1} - \log \eta_i}, \qquad
    \text{suggestion} = \eta_{\arg\min_i g_i},

  the left end of the steepest segment. Needs two points.

  Args:
    lrs: the learning rates, increasing.
    losses: the (smoothed) losses beside them.
    skip_start, skip_end: points to drop off the head and the tail first
      (0 here; :func:`suggest` passes fastai's ``n // 10`` and 5).

  Returns:
    A :class:`Suggestion`.

  Example:
    >>> lrs = np.logspace(-4, 0, 5)
    >>> lrlab.finder.suggestions.steep(lrs, np.array([1.0, 0.9, 0.3, 0.2, 0.5])).lr
    0.001

  References:
    fastai, ``fastai.callback.schedule.steep``.
  """
  lrs, losses, index = _window(lrs, losses, skip_start, skip_end, finite="truncate")
  if lrs.size < 2:
    return _too_few("steep", lrs.size, 2, skip_start, skip_end)
  slope = np.diff(losses) / np.diff(np.log(lrs))
  i = int(np.argmin(slope))
  return Suggestion(float(lrs[i]), int(index[i]), None)


def valley(
  lrs: np.ndarray, losses: np.ndarray, *, skip_start: int = 0, skip_end: int = 0
) -> Suggestion:
  r"""fastai's ``valley``: a point about half-way along the longest valley.

  The longest valley is the longest strictly decreasing subsequence of the
  losses (not necessarily contiguous), found by dynamic programming:
  :math:`d_i = 1 + \max\{d_j : j < i,\ \ell_j > \ell_i\}` (1 if there is no such
  ``j``); its end ``e`` is the first index with the largest :math:`d`, and fastai
  puts its start at :math:`s = e - d_e`. The suggestion is the rate at index

  .. math::

    s + \lfloor (e - s) / 3 \rfloor + \lfloor (e - s) / 6 \rfloor,

  about half-way along it (a valley of 60 points gives :math:`s + 30`). Where this index is
  negative (a valley of two points that starts at the first point) fastai's
  Python indexing wraps round to the *last* point; lrlab takes the first point
  instead. A loss that never decreases has no valley: ``None``.

  Args:
    lrs: the learning rates, increasing.
    losses: the (smoothed) losses beside them.
    skip_start, skip_end: points to drop off the head and the tail first
      (0 here; :func:`suggest` passes fastai's ``n // 10`` and 5).

  Returns:
    A :class:`Suggestion`.

  Example:
    >>> lrs = np.logspace(-6, 0, 7)
    >>> losses = np.array([2.0, 1.9, 1.5, 1.0, 0.6, 0.5, 3.0])
    >>> lrlab.finder.suggestions.valley(lrs, losses).index  # s = -1, e = 5: -1 + 2 + 1
    2

  References:
    fastai, ``fastai.callback.schedule.valley`` (fastai 2.5).
  """
  lrs, losses, index = _window(lrs, losses, skip_start, skip_end, finite="truncate")
  if lrs.size < 1:
    return _too_few("valley", 0, 1, skip_start, skip_end)
  lengths = np.ones(lrs.size, np.int64)
  for i in range(1, lrs.size):
    above = losses[:i] > losses[i]
    if np.any(above):
      lengths[i] = 1 + lengths[:i][above].max()
  end = int(np.argmax(lengths))  # first index of the longest
  if lengths[end] < 2:
    reason = "valley: the loss never decreases in the window, so there is no valley."
    return Suggestion(None, None, reason)
  start = end - int(lengths[end])
  span = (end - start) / 3
  i = max(0, start + int(span) + int(span / 2))
  return Suggestion(float(lrs[i]), int(index[i]), None)


def minimum(
  lrs: np.ndarray, losses: np.ndarray, *, skip_start: int = 0, skip_end: int = 0
) -> Suggestion:
  r"""fastai's ``minimum``: the rate at the lowest loss, divided by 10.

  .. math::

    \text{suggestion} = \eta_{\arg\min_i \ell_i} / 10,

  the rule of thumb from fastai's course: the minimum sits just below where
  training blows up, so back off by an order of magnitude. Needs one point.

  Args:
    lrs: the learning rates, increasing.
    losses: the (smoothed) losses beside them.
    skip_start, skip_end: points to drop off the head and the tail first
      (0 here; :func:`suggest` passes fastai's ``n // 10`` and 5).

  Returns:
    A :class:`Suggestion` whose ``index`` is the minimum's.

  Example:
    >>> lrs = np.logspace(-4, 0, 5)
    >>> round(lrlab.finder.suggestions.minimum(lrs, np.array([1.0, 0.9, 0.3, 0.2, 0.5])).lr, 6)
    0.01

  References:
    fastai, ``fastai.callback.schedule.minimum``.
  """
  lrs, losses, index = _window(lrs, losses, skip_start, skip_end, finite="truncate")
  if lrs.size < 1:
    return _too_few("minimum", 0, 1, skip_start, skip_end)
  i = int(np.argmin(losses))
  return Suggestion(float(lrs[i] / 10), int(index[i]), None)


def slide(
  lrs: np.ndarray,
  losses: np.ndarray,
  *,
  skip_start: int = 0,
  skip_end: int = 0,
  lr_diff: int = 15,
  thresh: float = 0.005,
  adjust_value: float = 1.0,
) -> Suggestion:
  r"""fastai's ``slide``: slide a window in from the right until the gradient levels off.

  With :math:`g = ` ``np.gradient(losses)`` (central differences against the
  point index), compare the gradient at the two ends of a window of
  ``lr_diff`` points, starting with the right end on the last point. While
  :math:`|g_r - g_{r - \text{lr\_diff}}| >` ``thresh``, remember the window's
  left rate and move the window one point left. The suggestion is the last
  left rate remembered (the first window's, if the first window already
  passes; the first point's, if the window runs off the start), times
  ``adjust_value``. ``thresh`` is in loss units per point, so the rule depends
  on the loss's scale. Needs ``lr_diff + 1`` points.

  Args:
    lrs: the learning rates, increasing.
    losses: the (smoothed) losses beside them.
    skip_start, skip_end: points to drop off the head and the tail first
      (0 here; :func:`suggest` passes fastai's ``n // 10`` and 5).
    lr_diff: the window's width in points (fastai's default 15).
    thresh: the largest gradient change that counts as level (0.005).
    adjust_value: a factor applied to the rate found (1).

  Returns:
    A :class:`Suggestion`.

  Example:
    >>> lrs = np.logspace(-5, 0, 40)
    >>> losses = np.abs(np.arange(40) - 29.0)  # down, then up from index 29
    >>> lrlab.finder.suggestions.slide(lrs, losses).index  # the kink minus the window, 29 - 15
    14

  References:
    fastai, ``fastai.callback.schedule.slide`` (after Novik's interval slide rule).
  """
  if not isinstance(lr_diff, int | np.integer) or lr_diff < 1:
    raise ValueError(f"lr_diff must be an integer >= 1; got {lr_diff!r}.")
  lrs, losses, index = _window(lrs, losses, skip_start, skip_end, finite="truncate")
  n = lrs.size
  if n < max(lr_diff + 1, 2):
    return _too_few("slide", n, lr_diff + 1, skip_start, skip_end)
  gradient = np.gradient(losses)
  right = n - 1
  pick = right - lr_diff
  while right - lr_diff >= 0 and abs(gradient[right] - gradient[right - lr_diff]) > thresh:
    pick = right - lr_diff
    right -= 1
  return Suggestion(float(lrs[pick] * adjust_value), int(index[pick]), None)


def lightning(
  lrs: np.ndarray,
  losses: np.ndarray,
  *,
  skip_start: int = LIGHTNING_SKIP[0],
  skip_end: int = LIGHTNING_SKIP[1],
) -> Suggestion:
  r"""Lightning's suggestion: the steepest descent of the loss against the *linear* rate.

  After dropping ``skip_start`` points (10) off the head and ``skip_end`` (1)
  off the tail, and every non-finite loss,

  .. math::

    \text{suggestion} = \eta_{\arg\min_i \partial \ell / \partial \eta\,(\eta_i)},

  with the derivative taken by second-order central differences on the
  non-uniform grid of rates (one-sided at the ends), as ``np.gradient(losses,
  lrs)`` and ``torch.gradient(losses, spacing=[lrs])``. Needs two points.
  This is Lightning's rule since its PR #21055 (2025); before it, Lightning
  differentiated against the step index, which on a geometric grid is the
  log rate, close to fastai's ``steep``. Against the linear rate, a small
  wiggle of the loss between two tiny rates is a huge slope, so on a geometric
  grid the smallest rates after the skip tend to win (Lightning issue #21141).

  Args:
    lrs: the learning rates, increasing.
    losses: the (smoothed) losses beside them.
    skip_start, skip_end: points to drop off the head and the tail first
      (Lightning's defaults 10 and 1).

  Returns:
    A :class:`Suggestion`.

  Example:
    >>> lrs = np.logspace(-4, 0, 5)
    >>> losses = np.array([1.0, 0.9, 0.3, 0.2, 0.5])
    >>> lrlab.finder.suggestions.lightning(lrs, losses, skip_start=0, skip_end=0).lr
    0.0001

    The smallest rates win here: a drop of 0.1 over a rate step of 9e-4 is
    steeper against the linear rate than a drop of 0.6 over 9e-3.

  References:
    Lightning, ``lightning.pytorch.tuner.lr_finder._LRFinder.suggestion``
    (``torch.gradient(losses, spacing=[lrs])``, after PR #21055).
  """
  lrs, losses, index = _window(lrs, losses, skip_start, skip_end, finite="filter")
  if lrs.size < 2:
    return _too_few("lightning", lrs.size, 2, skip_start, skip_end)
  i = int(np.argmin(np.gradient(losses, lrs)))
  return Suggestion(float(lrs[i]), int(index[i]), None)


_FUNCTIONS: dict[str, Callable[..., Suggestion]] = {
  rule.__name__: rule for rule in (steep, valley, minimum, slide, lightning)
}


def windows(steps: int) -> dict[str, tuple[int, int]]:
  """``(skip_start, skip_end)`` each rule's source uses for a test planned for ``steps``.

  fastai cuts ``steps // 10`` points off the head and 5 off the tail
  (``lr_find``'s ``recorder.losses[num_it//10:-5]``); Lightning cuts 10 and 1.
  """
  fastai = (steps // 10, FASTAI_SKIP_END)
  return {name: (LIGHTNING_SKIP if name == "lightning" else fastai) for name in RULES}


_POINTS_NEEDED = {"steep": 2, "valley": 2, "minimum": 1, "slide": 16, "lightning": 2}


def min_steps() -> int:
  """The fewest steps for which a test that runs to the end gives every rule enough points.

  ``slide`` needs 16 points inside fastai's window ``[n // 10 : n - 5]``, so 23.

  Example:
    >>> lrlab.finder.suggestions.min_steps()
    23
  """
  enough = lambda n: all(n - a - b >= _POINTS_NEEDED[r] for r, (a, b) in windows(n).items())
  return next(n for n in range(1, 10_000) if enough(n))


def suggest(lrs: np.ndarray, losses: np.ndarray, *, steps: int) -> dict[str, Suggestion]:
  """Every rule of :data:`RULES` on a range test's curve, each with its source's window.

  Args:
    lrs: the rates of the recorded steps.
    losses: the smoothed losses of the recorded steps (fastai and Lightning both
      apply their rules to the smoothed loss).
    steps: the number of steps the test was planned for (fastai's window
      depends on it, not on where the test stopped).

  Returns:
    ``{rule: Suggestion}`` in the order of :data:`RULES`.

  Example:
    >>> lrs = np.logspace(-7, 1, 100)
    >>> losses = 2 - np.tanh(np.log10(lrs) + 3) + np.where(lrs > 1, 10 * (lrs - 1), 0)
    >>> out = lrlab.finder.suggestions.suggest(lrs, losses, steps=100)
    >>> sorted(out) == sorted(lrlab.finder.suggestions.RULES)
    True
  """
  return {
    name: _FUNCTIONS[name](lrs, losses, skip_start=start, skip_end=end)
    for name, (start, end) in windows(steps).items()
  }
