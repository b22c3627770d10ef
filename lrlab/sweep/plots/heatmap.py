"""A summary metric of a sweep over two axes of a product grid, one cell per member."""

import os

import numpy as np
from matplotlib.figure import Figure

from lrlab import _checks
from lrlab.sweep.lines import format_value as shown
from lrlab.sweep.metrics import higher_is_better
from lrlab.sweep.plots import common
from lrlab.sweep.result import SweepResult


def _heatmap_axes(result: SweepResult, x_axis: str | None, y_axis: str | None) -> tuple[str, str]:
  x_axis = result._axis_name(x_axis)
  if y_axis is None:
    varying = [n for n in result.grid if n != x_axis and len(np.unique(result.grid[n])) > 1]
    if not varying:
      raise ValueError(
        f"plot_heatmap needs a second axis with 2 or more values besides {x_axis!r}; "
        f"the grid has axes {list(result.grid)}."
      )
    y_axis = varying[0]
  _checks.check_choice("y_axis", y_axis, tuple(result.grid))
  if y_axis == x_axis:
    raise ValueError(f"x_axis and y_axis must differ; got {x_axis!r} twice.")
  return x_axis, y_axis


def _fixed_axes(result: SweepResult, x_axis: str, y_axis: str) -> list[str]:
  """The other axes that take several values within one ``(x, y)`` cell: those of a product
  with both, fixed at the best member's values. An axis zipped with ``x`` or ``y`` (or drawn
  at random with them) has one value per cell and moves along with them, as on a line."""
  pairs = np.stack([result.grid[x_axis], result.grid[y_axis]], axis=1).astype(np.float64)
  cells = len(np.unique(pairs, axis=0))
  return [
    name
    for name, column in result.grid.items()
    if name not in (x_axis, y_axis)
    and len(np.unique(np.column_stack([pairs, column.astype(np.float64)]), axis=0)) > cells
  ]


def plot_heatmap(
  result: SweepResult,
  path: str | os.PathLike,
  metric: str | None = None,
  x_axis: str | None = None,
  y_axis: str | None = None,
  *,
  title: str | None = None,
) -> Figure:
  """The seed-mean ``metric`` over two axes of a product grid, one cell per member.

  The other axes of a product with both are fixed at the best member's values;
  an axis zipped with ``x_axis`` or ``y_axis`` moves along with it, as on a
  :meth:`~lrlab.sweep.SweepResult.line`. Cells are coloured so
  that brighter is better, annotated with their value when the map has at
  most 12 x 12 cells; diverged members (any seed) get a red ``x``, the best
  member a star; missing combinations are left blank.

  Args:
    result: the sweep.
    path: where to write the PNG; parent folders are created.
    metric: a summary metric (default as in :meth:`~lrlab.sweep.SweepResult.best`).
    x_axis: the axis across (default ``"lr"`` if present, else the first axis).
    y_axis: the axis up (default: the first other axis with 2 or more values).
    title: the figure title.

  Returns:
    The saved ``Figure``.

  Raises:
    ValueError: if two members share a cell (the axes are not a product).
  """
  common.check_result(result)
  metric = result._metric_name(metric)
  x_axis, y_axis = _heatmap_axes(result, x_axis, y_axis)
  best = result.best(metric, warn=False)["index"]
  keep = np.ones(result.num_members, bool)
  for name in _fixed_axes(result, x_axis, y_axis):
    keep &= result.grid[name] == result.grid[name][best]
  members = np.flatnonzero(keep)
  xs, ys = np.unique(result.grid[x_axis][members]), np.unique(result.grid[y_axis][members])
  cells = np.full((len(ys), len(xs)), np.nan)
  where = {}
  means = result.seed_mean(metric)
  for k in members:
    cell = (int(np.searchsorted(ys, result.grid[y_axis][k])),
            int(np.searchsorted(xs, result.grid[x_axis][k])))  # fmt: skip
    if cell in where:
      raise ValueError(
        f"plot_heatmap needs a product grid over {x_axis!r} and {y_axis!r}; members "
        f"{where[cell]} and {k} share {x_axis}={shown(xs[cell[1]])}, {y_axis}={shown(ys[cell[0]])}."
      )
    where[cell] = int(k)
    cells[cell] = means[k]
  figure = Figure(figsize=(1.5 + 0.7 * len(xs), 1.5 + 0.5 * len(ys)), layout="constrained")
  figure.set_size_inches(max(6.0, figure.get_figwidth()), max(4.0, figure.get_figheight()))
  axes = figure.add_subplot()
  masked = np.ma.masked_invalid(cells)
  image = axes.imshow(masked, origin="lower", aspect="auto",
                      cmap="viridis" if higher_is_better(metric) else "viridis_r")  # fmt: skip
  figure.colorbar(image, ax=axes, label=f"{metric} (seed mean)")
  diverged = np.any(result.history.diverged, axis=0)
  for (i, j), k in where.items():
    if len(xs) <= 12 and len(ys) <= 12 and np.isfinite(cells[i, j]):
      shade = float(image.norm(cells[i, j]))  # where the cell sits on the colour scale
      bright = (shade if higher_is_better(metric) else 1 - shade) > 0.6
      below = 0.3 if diverged[k] or k == best else 0.0  # clear of the marker
      axes.text(j, i - below, f"{cells[i, j]:.3g}", ha="center", va="center",
                fontsize="x-small", color="black" if bright else "white")  # fmt: skip
    if diverged[k]:
      axes.plot([j], [i], "x", color="red", markersize=12, markeredgewidth=2)
    if k == best:
      axes.plot([j], [i], "*", color="gold", markeredgecolor="black", markersize=16)
  axes.set_xticks(range(len(xs)), [common.number(v.item()) for v in xs], rotation=45)
  axes.set_yticks(range(len(ys)), [common.number(v.item()) for v in ys])
  axes.set_xlabel(x_axis)
  axes.set_ylabel(y_axis)
  axes.set_title(title or f"{result.config.get('task', 'sweep')}: {metric}")
  return common.save(figure, path)
