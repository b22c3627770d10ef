"""Learning curves of a sweep, one line per member, coloured by one axis."""

import os

import numpy as np
from matplotlib import cm, colors
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from lrlab import _checks, train
from lrlab.sweep.plots import common
from lrlab.sweep.result import SweepResult

CURVE_METRICS = (*train.METRICS, "learning_rate")
"""Per-step or per-evaluation fields that :func:`plot_curves` can draw."""


def plot_curves(
  result: SweepResult,
  path: str | os.PathLike,
  metric: str = "val_loss",
  axis: str | None = None,
  *,
  cmap: str = "viridis",
  log_y: bool | None = None,
  title: str | None = None,
  best_by: str | None = None,
  index: int | None = None,
) -> Figure:
  """Learning curves, one line per member, coloured by its ``axis`` value.

  Each line is the mean over seeds of ``metric`` at every evaluation (or, for
  ``"learning_rate"``, at every step). A member that diverged in some seed is
  dashed and stops at the last point at or before its (earliest) divergence
  step, marked with an ``x``: a diverged run is frozen, so the points after
  it repeat a value that means nothing. The y limits hold the members that
  never diverged (all members when every one did), so a loss that blew up
  does not squash the others. The colour scale is logarithmic for positive
  values spanning a factor of 10 or more, and shown as a colorbar. For a grid
  with more axes, the members on the
  :meth:`~lrlab.sweep.SweepResult.line` through the best member are drawn.

  Args:
    result: the sweep.
    path: where to write the PNG; parent folders are created.
    metric: one of :data:`CURVE_METRICS`.
    axis: the grid axis that colours the lines (default ``"lr"`` if present,
      else the first axis).
    cmap: a matplotlib colormap name.
    log_y: a log y axis; default: for positive losses and learning rates.
    title: the figure title (default: task and metric, and the training as
      in :func:`~lrlab.sweep.plot_sensitivity`).
    best_by: the summary metric that picks the best member, whose line is
      drawn on a grid with more axes (default as in
      :meth:`~lrlab.sweep.SweepResult.best`).
    index: the member whose line is drawn instead of the best one (a search's
      answer, :meth:`lrlab.search.SearchResult.best`, whose stopped members have no
      seed-mean summary); not with ``best_by``.

  Returns:
    The saved ``Figure``.

  Example:
    >>> result = lrlab.sweep.result._example()
    >>> figure = lrlab.sweep.plot_curves(result, "/tmp/curves.png", "val_accuracy")
    >>> len(figure.axes[0].get_lines()), len(figure.axes)
    (4, 2)
  """
  common.check_result(result)
  _checks.check_choice("metric", metric, CURVE_METRICS)
  axis = result._axis_name(axis)
  if "accuracy" in metric and not result.has_accuracy:
    raise ValueError(f"metric {metric!r} is NaN throughout: the task has no accuracy.")
  if index is not None and best_by is not None:
    raise ValueError(f"give best_by or index, not both; got {best_by!r} and {index!r}.")
  if index is None:
    index = result.best(best_by, warn=False)["index"]
  members = result.line(index, axis)
  values = getattr(result.history, metric)
  per_step = metric == "learning_rate"
  steps = np.arange(values.shape[-1]) if per_step else result.history.step[0, 0]
  curves = values[:, members].mean(axis=0)
  hp = result.grid[axis][members]
  low, high = float(hp.min()), float(hp.max())
  if common.log_axis(hp):
    norm = colors.LogNorm(low, high)
  else:
    norm = colors.Normalize(low, high if high > low else low + 1)
  mappable = cm.ScalarMappable(norm=norm, cmap=cmap)
  history = result.history
  diverged = np.any(history.diverged[:, members], axis=0)
  never = np.iinfo(np.int64).max
  first_bad = np.where(history.diverged, history.diverged_step, never).min(axis=0)[members]
  figure = Figure(figsize=(8, 4.5), layout="constrained")
  axes = figure.add_subplot()
  kept = []
  for curve, value, bad, stop in zip(curves, hp, diverged, first_bad, strict=True):
    color = mappable.to_rgba(value)
    keep = steps <= stop if bad else np.ones(len(steps), bool)
    x, y = steps[keep], common.finite(curve[keep])
    axes.plot(x, y, color=color, linewidth=1.5, linestyle="--" if bad else "-",
              label=f"{axis}={common.number(value.item())}")  # fmt: skip
    if bad and len(x):
      axes.plot(x[-1:], y[-1:], "x", color=color, markersize=9, markeredgewidth=2,
                label="_diverged")  # fmt: skip
    kept.append(y)
  drawn = np.concatenate(kept) if kept else np.zeros(0)
  finite = drawn[np.isfinite(drawn)]
  if log_y is None:
    log_y = ("loss" in metric or metric == "learning_rate") and finite.size > 0
    log_y = log_y and bool(np.all(finite > 0))
  if log_y:
    axes.set_yscale("log")
  healthy = [y for y, bad in zip(kept, diverged, strict=True) if not bad] or kept
  limits = common.limits(np.concatenate(healthy), bool(log_y)) if healthy else None
  if limits is not None:
    axes.set_ylim(*limits)
  figure.colorbar(mappable, ax=axes, label=axis)
  if np.any(diverged):
    handle = Line2D([0, 1], [0, 0], color="gray", linestyle="--", marker="x", markevery=[1],
                    label="diverged (any seed): stops there")  # fmt: skip
    axes.legend(handles=[handle], fontsize="small")
  axes.set_xlabel("step")
  axes.set_ylabel(f"{metric} (seed mean)")
  axes.set_title(title or common.title_of(result, metric))
  axes.grid(alpha=0.3)
  return common.save(figure, path)
