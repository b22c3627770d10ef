"""The answers a sweep is run for, read off a :class:`~lrlab.sweep.SweepResult`.

The best member by a seed-mean metric, and three answers read along the
:meth:`~lrlab.sweep.SweepResult.line` through it: the usable range around it,
where training diverges, and whether the best sits on the edge of the grid
(Google's tuning playbook: then widen the grid). Each function takes the
result first; :class:`~lrlab.sweep.SweepResult` offers them as methods.
"""

import warnings
from typing import Any

import numpy as np

from lrlab.sweep import lines
from lrlab.sweep.metrics import higher_is_better


class GridEdgeWarning(UserWarning):
  """The best setting lies on the edge of the grid: the optimum may lie outside it."""


def best_member(result: Any, metric: str) -> tuple[int, float]:
  """``(index, seed-mean value)`` of the best member by ``metric`` (the first one on ties).

  NaN means never win. A member NaN in some seed without having diverged there, as a
  search's member stopped early is, has no seed mean (a loss's would be ``inf``, a diverged
  run's). ``metric`` must already be a resolved name.

  Raises:
    ValueError: no member has a seed mean (a task without accuracy), or only members that
      diverged in every seed do while others have none (a search's curves over several seeds).
  """
  raw, diverged = result.metric(metric, diverged_as_worst=False), result.history.diverged
  unmeasured = np.any(np.isnan(raw) & ~diverged, axis=0)
  means = np.where(unmeasured, np.nan, result.seed_mean(metric))
  if np.all(np.isnan(means)) and higher_is_better(metric) and not result.has_accuracy:
    raise ValueError(
      f"metric {metric!r} is NaN for every member (a task without accuracy?); "
      f"use a loss metric such as 'final_val_loss'."
    )
  if np.all(unmeasured | np.all(diverged, axis=0) | np.isnan(means)) and np.any(unmeasured):
    raise ValueError(
      f"metric {metric!r} has no seed mean for any member that trained: each stopped before "
      f"the budget in some seed (a search's curves? lrlab.search.SearchResult.best answers)."
    )
  score = np.where(np.isnan(means), np.inf, -means if higher_is_better(metric) else means)
  index = int(np.lexsort((score, np.isnan(means)))[0])  # NaN after inf; the first on ties
  return index, float(means[index])


def best(result: Any, metric: str | None = None, *, warn: bool = True) -> dict[str, Any]:
  """The member with the best seed-mean ``metric``; see :meth:`lrlab.sweep.SweepResult.best`.

  Warns with :class:`GridEdgeWarning` for every axis along which the best
  member sits on the edge of the grid (see :func:`edge_warning`).
  """
  metric = result._metric_name(metric)
  index, value = best_member(result, metric)
  if warn:
    for axis in result.grid:
      message = edge_warning(result, metric, axis)
      if message is not None:
        warnings.warn(message, GridEdgeWarning, stacklevel=3)
  return {
    "index": index,
    "metric": metric,
    "value": value,
    "std": float(result.seed_std(metric)[index]),
    "hyperparameters": result.hyperparameters(index),
  }


def edge_warning(result: Any, metric: str | None = None, axis: str | None = None) -> str | None:
  """A message if the best member is at the lowest or highest ``axis`` value of its line.

  The line is :meth:`~lrlab.sweep.SweepResult.line` through the best member:
  on a product grid, the members whose other hyperparameters equal the best
  member's; along axes that are zipped or drawn at random together (not a
  product), every such member, so the edge is the axis's own extreme over
  them. Following Google's tuning playbook, a best value on the edge of the
  searched range means the grid should be widened beyond that edge. An exact
  tie does not hide the edge: a quantised metric (an accuracy over a few
  hundred examples) often ties an inner member by chance; whichever of the tied
  members comes first in the grid, an edge member of the line that ties the best
  value is reported. Only a line along which every member ties (``axis`` changes
  nothing there) has no edge.

  The message says what to add (:func:`~lrlab.sweep.lines.widening_advice`):
  values beyond the edge, values closer to 1 for a fraction bounded by 1, or
  values between 0 and the next one for a lowest value of 0.

  Returns:
    The message, or ``None`` when the best is inside the grid, the metric is
    the same for every member of the line, the line has a single value of
    ``axis``, or ``axis`` is ``"fold"`` (cross-validation folds are
    replicates, not a range).
  """
  metric, axis = result._metric_name(metric), result._axis_name(axis)
  if axis == "fold":  # cross-validation folds are replicates, not a range to widen
    return None
  index, value = best_member(result, metric)
  members = result.line(index, axis)
  values = np.unique(result.grid[axis][members])
  means = result.seed_mean(metric)[members]
  if len(values) < 2 or np.all(means == value):
    return None
  where, tie = result.grid[axis][index], ""
  if values[0] < where < values[-1]:  # an edge member that ties the best is on the edge too
    tied = result.grid[axis][members][means == value]
    edges = [v for v in (values[0], values[-1]) if np.any(tied == v)]
    if not edges:
      return None
    tie = f" is reached at {axis}={lines.format_value(where)} and, tied,"
    where = edges[0]
  side = "lowest" if where == values[0] else "highest"
  advice = lines.widening_advice(axis, values, where)
  at, low, high = (lines.format_value(v) for v in (where, values[0], values[-1]))
  return (
    f"The best {metric} ({value:.4g}){tie or ' is'} at the {side} value of {axis!r} in the grid "
    f"({axis}={at}; the grid spans {low} to {high}): the optimum may lie outside it. "
    f"{advice} (Google's tuning playbook)."
  )


def check_tolerance(tolerance: Any) -> float:
  """``tolerance`` as a ``float``: a finite number >= 0, a Python or NumPy scalar (not a bool,
  ``None``, a string or an array); a one-line ``ValueError`` naming it otherwise, raised before
  any answer is computed (and so the stored summary holds a plain, JSON-ready float)."""
  try:
    array = np.asarray(tolerance)
  except (TypeError, ValueError):
    array = np.asarray(None)
  if array.ndim != 0 or array.dtype.kind not in "iuf" or not (np.isfinite(array) and array >= 0):
    raise ValueError(f"tolerance must be a finite number >= 0; got {tolerance!r}.")
  return float(array)


def usable_range(
  result: Any, metric: str | None = None, tolerance: float = 0.05, axis: str | None = None
) -> tuple[float, float]:
  """The contiguous interval of ``axis`` around the best member that is within ``tolerance``.

  Along the line through the best member, sorted by ``axis`` (on a product
  grid: the slice with the other axes fixed at the best member's values), the
  interval extends from the best member in both directions while the
  seed-mean ``metric`` stays acceptable:

  - accuracy (higher is better), absolute: ``value >= best - tolerance``;
  - loss or steps (lower is better), relative: ``value <= best + tolerance * |best|``
    (``best * (1 + tolerance)`` for a positive best).

  A member that diverged in every seed ends the interval (even where its
  accuracy of 0 is within ``tolerance`` of a low best); one that diverged in
  some seeds counts as the worst value there (a loss of ``inf`` ends it). On a
  grid that is not a product along ``axis`` (zipped or random-search axes),
  the line holds members whose other hyperparameters differ, and the interval
  is the run of acceptable members next to the best in order of ``axis``,
  whatever their other values: a range of ``axis`` that worked with the
  values it was paired with.

  Returns:
    ``(lo, hi)`` values of ``axis``; ``(nan, nan)`` if the best member
    diverged in every seed or its value is not finite.
  """
  metric, axis = result._metric_name(metric), result._axis_name(axis)
  tolerance = check_tolerance(tolerance)
  index, value = best_member(result, metric)
  if not np.isfinite(value) or np.all(result.history.diverged[:, index]):
    return (np.nan, np.nan)
  members = result.line(index, axis)
  means = result.seed_mean(metric)[members]
  if higher_is_better(metric):
    ok = means >= value - tolerance
  else:
    ok = means <= value + tolerance * abs(value)
  ok &= ~np.all(result.history.diverged[:, members], axis=0)  # never a member that always diverged
  position = int(np.flatnonzero(members == index)[0])
  lo = hi = position
  while lo > 0 and ok[lo - 1]:
    lo -= 1
  while hi < len(members) - 1 and ok[hi + 1]:
    hi += 1
  values = result.grid[axis][members]
  return (values[lo].item(), values[hi].item())


def divergence_threshold(
  result: Any, axis: str | None = None, metric: str | None = None
) -> float | int | None:
  """The smallest ``axis`` value at which a member of the best member's line diverged in any seed.

  Returns:
    The value, or ``None`` if no member of the line diverged.
  """
  metric, axis = result._metric_name(metric), result._axis_name(axis)
  members = result.line(best_member(result, metric)[0], axis)
  diverged = np.any(result.history.diverged[:, members], axis=0)
  if not np.any(diverged):
    return None
  return result.grid[axis][members][diverged].min().item()
