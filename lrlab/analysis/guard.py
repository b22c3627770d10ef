"""The dead-network guard: a run whose loss sits at chance level counts as failed.

The training loop flags a run as diverged when its loss is not finite or
exceeds ``divergence_factor`` times its initial loss. Too high a rate can also
fail quietly: the network dies (every ReLU off, or the logits saturated and
the weights frozen) and its loss settles at the loss of a constant prediction,
chance level, without ever crossing the threshold. Counting such a run as a
success stretches the usable range and hides the divergence threshold. The
guard here counts it as diverged, so :meth:`lrlab.sweep.SweepResult.usable_range`,
:meth:`~lrlab.sweep.SweepResult.divergence_threshold` and the seed means treat
it as every other failed run.
"""

import dataclasses
from typing import Any

import numpy as np
from jax.typing import ArrayLike

from lrlab import _checks


def chance_loss(labels: ArrayLike, num_classes: int | None) -> float:
  r"""The loss of the best constant prediction: what a dead network converges to.

  - Classification (cross-entropy, ``num_classes`` given): the entropy of the
    label frequencies, :math:`-\sum_c p_c \log p_c` in nats with :math:`p_c` the
    fraction of ``labels`` equal to ``c`` (``log(num_classes)`` for balanced labels).
  - Regression (:func:`lrlab.tasks.half_squared_error`, ``num_classes=None``): half
    the variance of the targets (ddof 0), the loss of predicting their mean, summed
    over output dimensions as that loss sums them (for :func:`lrlab.tasks.mse`,
    a mean without the half, multiply by ``2 / d`` for ``d`` outputs).

  Args:
    labels: ``(n,)`` integer class labels in ``[0, num_classes)``, or ``(n, ...)``
      regression targets.
    num_classes: the number of classes (>= 1), or ``None`` for regression.

  Returns:
    The loss, a Python float >= 0.

  Example:
    >>> round(lrlab.analysis.chance_loss([0, 1, 2, 3], 4), 4)  # log 4
    1.3863
    >>> lrlab.analysis.chance_loss([1.0, 3.0], None)  # 1/2 of the variance 1
    0.5
  """
  labels = np.asarray(labels)
  if labels.ndim == 0 or labels.size == 0:
    raise ValueError(f"labels must be a non-empty array (n, ...); got shape {labels.shape}.")
  if num_classes is None:
    targets = labels.astype(np.float64).reshape(labels.shape[0], -1)
    return float(0.5 * np.sum(np.var(targets, axis=0)))
  _checks.check(
    "num_classes", num_classes, lambda v: (v >= 1) & (v == np.floor(v)), "an integer >= 1 or None"
  )
  if labels.dtype.kind not in "iu" or labels.min() < 0 or labels.max() >= num_classes:
    raise ValueError(f"labels must be integers in [0, {num_classes}); got {labels.dtype} values.")
  p = np.bincount(labels.ravel(), minlength=int(num_classes)) / labels.size
  p = p[p > 0]
  return float(-np.sum(p * np.log(p)))


def at_chance(
  result: Any, chance: float, *, rtol: float = 0.05, metric: str = "final_train_loss"
) -> np.ndarray:
  """``(S, K)`` bool: the runs that did not diverge but whose ``metric`` sits at chance level.

  A run sits at chance level when ``metric >= (1 - rtol) * chance`` (so within
  ``rtol`` of it, or above it), with ``chance`` from :func:`chance_loss`.

  Args:
    result: a :class:`lrlab.sweep.SweepResult`.
    chance: the chance-level loss, > 0.
    rtol: relative tolerance, in ``[0, 1)``.
    metric: a loss among :meth:`lrlab.sweep.SweepResult.metric`'s; the last
      window's mean minibatch loss by default.
  """
  _checks.check("chance", chance, lambda v: v > 0, "a loss > 0")
  _checks.check("rtol", rtol, lambda v: (v >= 0) & (v < 1), "in [0, 1)")
  if "loss" not in metric:
    raise ValueError(f"metric must be a loss (its name contains 'loss'); got {metric!r}.")
  values = result.metric(metric, diverged_as_worst=False)
  return ~result.history.diverged & (values >= (1 - rtol) * chance)


def fail_at_chance(
  result: Any,
  chance: float,
  *,
  rtol: float = 0.05,
  metric: str = "final_train_loss",
  select: str | None = None,
  axis: str | None = None,
) -> Any:
  """A copy of ``result`` in which dead runs above the best rate count as diverged.

  Along the line of ``axis`` through the best member by ``select`` (the line
  :meth:`~lrlab.sweep.SweepResult.usable_range` and
  :meth:`~lrlab.sweep.SweepResult.divergence_threshold` read), every run that
  sits at chance level (:func:`at_chance`) at an ``axis`` value above the best
  member's is flagged ``diverged`` (``diverged_step``: its last evaluation
  step). Runs below the best are left alone: a rate too low to have learned
  yet also sits near chance, and it is slow, not failed. So on the result
  returned, the usable range ends at the first dead rate above the best and
  the divergence threshold is the smallest rate that diverged *or died*.

  Args:
    result: a :class:`lrlab.sweep.SweepResult`.
    chance: the chance-level loss (:func:`chance_loss`), > 0.
    rtol: as in :func:`at_chance`.
    metric: the loss read by :func:`at_chance`.
    select: the metric that picks the best member (default as in
      :meth:`~lrlab.sweep.SweepResult.best`).
    axis: the grid axis (default ``"lr"`` if present, else the first axis).

  Returns:
    A new :class:`lrlab.sweep.SweepResult`; its config records
    ``dead_guard = {"chance": ..., "rtol": ..., "metric": ..., "runs": n}``.

  Example:
    >>> result = lrlab.sweep.result._example()  # no run sits at chance 10
    >>> guarded = lrlab.analysis.fail_at_chance(result, 10.0)
    >>> guarded.config["dead_guard"]["runs"]
    0
  """
  dead = at_chance(result, chance, rtol=rtol, metric=metric)
  axis = axis if axis is not None else ("lr" if "lr" in result.grid else next(iter(result.grid)))
  if axis not in result.grid:
    raise ValueError(f"axis must be one of the grid's axes {sorted(result.grid)}; got {axis!r}.")
  best = result.best(select, warn=False)["index"]
  line = result.line(best, axis)
  above = np.zeros(dead.shape[1], bool)
  above[line] = result.grid[axis][line] > result.grid[axis][best]
  flag = dead & above[None, :]
  h = result.history
  history = h._replace(
    diverged=h.diverged | flag,
    diverged_step=np.where(flag, np.asarray(h.step)[..., -1], h.diverged_step),
  )
  guard = {"chance": float(chance), "rtol": float(rtol), "metric": metric, "runs": int(flag.sum())}
  config = {**result.config, "dead_guard": guard}
  return dataclasses.replace(result, history=history, config=config)
