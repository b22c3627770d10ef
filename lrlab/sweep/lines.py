"""Lines through a grid: which axes form a product with one axis, the members along it, and
what to add when the best member sits on the line's edge.

A sweep's one-dimensional answers (the usable range, the divergence threshold,
the edge warning, the U-curve) are read along a *line*: the members that vary
one axis while every axis forming a product with it stays fixed. On a
:func:`~lrlab.sweep.product` grid that is the slice through a member; axes
zipped with the line's axis, or drawn at random together with it, move along
with it.
"""

from collections.abc import Mapping
from typing import Any

import numpy as np


def product_axes(grid: Mapping[str, np.ndarray], axis: str) -> list[str]:
  """The axes of ``grid`` other than ``axis`` that form a Cartesian product with it.

  Axis ``b`` does when every pair of an ``axis`` value and a ``b`` value
  occurs in some member. In a :func:`~lrlab.sweep.product` grid every other
  axis does; an axis zipped with ``axis``, or drawn at random together with
  it, does not (each ``axis`` value comes with its own ``b`` value).

  Args:
    grid: a checked grid (see :func:`lrlab.sweep.check_grid`).
    axis: one of its axes.

  Returns:
    The names, in the grid's order.

  Example:
    >>> zipped = lrlab.sweep.zipped(lr=[0.1, 1.0], wd=[1e-4, 1e-5])
    >>> grid = lrlab.sweep.product(zipped, momentum=[0.0, 0.9])
    >>> product_axes(grid, "lr"), product_axes(grid, "momentum")
    (['momentum'], ['lr', 'wd'])
  """
  column = np.asarray(grid[axis])
  out = []
  for name, other in grid.items():
    if name == axis:
      continue
    pairs = np.unique(np.stack([column, np.asarray(other)], axis=1).astype(np.float64), axis=0)
    if len(pairs) == len(np.unique(column)) * len(np.unique(other)):
      out.append(name)
  return out


def members_on_line(grid: Mapping[str, np.ndarray], index: int, axis: str) -> np.ndarray:
  """Members agreeing with member ``index`` on every axis of :func:`product_axes`, sorted by
  ``axis`` (stably); see :meth:`lrlab.sweep.SweepResult.line`."""
  same = np.ones(len(grid[axis]), bool)
  for name in product_axes(grid, axis):
    same &= grid[name] == grid[name][index]
  members = np.flatnonzero(same)
  return members[np.argsort(grid[axis][members], kind="stable")]


def format_value(value: Any) -> str:
  """A grid value for a message: an integer in full (``12345``, never ``1.234e+04``, which is
  another number), a float to 4 significant digits (``0.003162``)."""
  if isinstance(value, int | np.integer) and not isinstance(value, bool | np.bool_):
    return str(int(value))
  return f"{value:.4g}"


def _is_learning_rate(axis: str) -> bool:
  """``"lr"``, ``"*_lr"`` or ``"*learning_rate*"``."""
  name = axis.lower()
  return name == "lr" or name.endswith("_lr") or "learning_rate" in name


def _bounded_by_one(axis: str, values: np.ndarray) -> bool:
  """Whether widening ``values`` (increasing, unique) above its top would leave ``[0, 1)``."""
  if _is_learning_rate(axis):
    return False
  if values[0] < 0 or values[-1] >= 1:
    return False
  top, below = float(values[-1]), float(values[-2])
  steps = [top + (top - below)]
  if below > 0:
    steps.append(top * top / below)
  return min(steps) >= 1 - 1e-9


def widening_advice(axis: str, values: np.ndarray, edge: float) -> str:
  """What to add to a grid whose best value ``edge`` is the lowest or highest of ``values``.

  Values beyond the edge, except at a lowest value of exactly 0 (momentum, a
  weight decay, a warmup length: none goes below 0), where the advice is
  values between 0 and the next value, such as a tenth of it; and except for
  a fraction bounded by 1 (momentum, a
  beta, a decay factor), which cannot be widened above 1: when ``edge`` is the
  highest value, every value is in ``[0, 1)``, the grid's own step (its last
  difference or ratio, whichever is smaller) would reach 1 from there, and
  ``axis`` is not a learning rate (``"lr"``, ``"*_lr"``, ``"*learning_rate*"``),
  the advice is values between ``edge`` and 1, such as ``1 - (1 - edge) / 10``
  (0.999 after 0.99).
  """
  if edge == values[0] == 0:
    return (
      f"A hyperparameter such as {axis!r} rarely goes below 0, so add values between 0 and "
      f"{format_value(values[1])}, such as {float(values[1]) / 10:.4g}"
    )
  if edge == values[0]:
    return f"Widen the grid below {format_value(edge)}"
  if not _bounded_by_one(axis, values):
    return f"Widen the grid above {format_value(edge)}"
  closer = 1 - (1 - float(edge)) / 10
  return (
    f"{axis!r} looks like a fraction bounded by 1, so add values between {edge:.4g} "
    f"and 1, closer to 1, such as {closer:.6g}"
  )
