"""Figures of a sweep, drawn from a :class:`~lrlab.sweep.SweepResult` (never by re-training).

- :func:`plot_sensitivity`: the U-curve, a summary metric against one axis.
- :func:`plot_curves`: learning curves coloured by one axis.
- :func:`plot_heatmap`: a summary metric over two axes of a product grid.
- :func:`plot_all`: whichever of these apply, written into one folder.

Every function draws on a ``matplotlib.figure.Figure`` (no pyplot state),
writes a PNG and returns the figure. Like the result's analysis, the slice
through the best member is drawn when the grid has more axes than the figure.
"""

import os
from pathlib import Path

import numpy as np
from matplotlib import cm, colors, transforms
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from lrlab import _checks, train
from lrlab.sweep.result import SweepResult, higher_is_better

CURVE_METRICS = (*train.METRICS, "learning_rate")
"""Per-step or per-evaluation fields that :func:`plot_curves` can draw."""

_MAX_GROUPS = 8


def _check_result(result: SweepResult) -> None:
  if not isinstance(result, SweepResult):
    raise ValueError(f"result must be an lrlab.sweep.SweepResult; got {type(result)}.")


def _log_axis(values: np.ndarray) -> bool:
  """Log scale for positive values spanning at least a factor of 10."""
  values = np.asarray(values, np.float64)
  values = values[np.isfinite(values)]
  return values.size > 1 and bool(np.all(values > 0)) and values.max() >= 10 * values.min()


def _finite(values: np.ndarray) -> np.ndarray:
  return np.where(np.isfinite(values), values, np.nan)


def _save(figure: Figure, path: str | os.PathLike) -> Figure:
  path = Path(path)
  path.parent.mkdir(parents=True, exist_ok=True)
  figure.savefig(path, dpi=120)
  return figure


def _groups(result: SweepResult, axis: str) -> list[np.ndarray]:
  """Members split by the values of the other axes, each sorted by ``axis``."""
  others = [name for name in result.grid if name != axis]
  keys = list(zip(*(result.grid[name].tolist() for name in others), strict=True)) if others else []
  if not keys:
    return [result._slice(0, axis)]
  firsts = sorted({key: k for k, key in reversed(list(enumerate(keys)))}.values())
  return [result._slice(k, axis) for k in firsts]


def plot_sensitivity(
  result: SweepResult,
  path: str | os.PathLike,
  metric: str | None = None,
  axis: str | None = None,
  *,
  tolerance: float = 0.05,
  band: str = "minmax",
  title: str | None = None,
) -> Figure:
  """The sensitivity (U-) curve: the seed-mean ``metric`` against ``axis``.

  Along the slice through the best member: the seed mean (diverged runs count
  as the worst value, so a diverged loss leaves a gap), a band over seeds,
  a red ``x`` at the top for every member that diverged in some seed, a star
  at the best member, the :meth:`~lrlab.sweep.SweepResult.usable_range`
  shaded and the divergence threshold as a dashed red line. When the other
  axes form at most 8 groups of 2 or more members, each other group is drawn
  as a thin line. The x axis is logarithmic for positive values spanning a
  factor of 10 or more.

  Args:
    result: the sweep.
    path: where to write the PNG; parent folders are created.
    metric: a summary metric (default as in :meth:`~lrlab.sweep.SweepResult.best`).
    axis: the grid axis on x (default ``"lr"`` if present, else the first axis).
    tolerance: of the usable range.
    band: ``"minmax"`` (seed minimum to maximum) or ``"std"`` (mean ± std).
    title: the figure title (default: task, metric and axis).

  Returns:
    The saved ``Figure``.

  Example:
    >>> result = lrlab.sweep.result._example()
    >>> lrlab.sweep.plot_sensitivity(result, "/tmp/sensitivity.png")
    <Figure ...>
  """
  _check_result(result)
  metric, axis = result._metric_name(metric), result._axis_name(axis)
  _checks.check_choice("band", band, ("minmax", "std"))
  best = result.best(metric, warn=False)
  members = result._slice(best["index"], axis)
  runs = result.metric(metric)
  means = result.seed_mean(metric)
  figure = Figure(figsize=(8, 4.5), layout="constrained")
  axes = figure.add_subplot()
  groups = _groups(result, axis)
  if 1 < len(groups) <= _MAX_GROUPS and all(len(g) > 1 for g in groups):
    others_drawn = 0
    for group in groups:
      if best["index"] not in group:
        others_drawn += 1
        label = ", ".join(
          f"{n}={v:.3g}" for n, v in result.hyperparameters(int(group[0])).items() if n != axis
        )
        x = result.grid[axis][group]
        axes.plot(x, _finite(means[group]), ".-", color=f"C{others_drawn}", linewidth=1,
                  alpha=0.6, label=label)  # fmt: skip
  x = result.grid[axis][members]
  if result.num_seeds > 1:
    values = _finite(runs[:, members])
    with np.errstate(invalid="ignore"):
      if band == "minmax":
        low, high = np.nanmin(values, 0, initial=np.inf), np.nanmax(values, 0, initial=-np.inf)
      else:
        low, high = _finite(means[members] - values.std(0)), _finite(means[members] + values.std(0))
    ok = np.isfinite(low) & np.isfinite(high)
    band_label = "seed min to max" if band == "minmax" else "seed mean ± std"
    axes.fill_between(
      x, np.where(ok, low, 0), np.where(ok, high, 0), where=ok, alpha=0.2, label=band_label
    )
  others = {n: v for n, v in best["hyperparameters"].items() if n != axis}
  fixed = f" ({', '.join(f'{n}={v:.3g}' for n, v in others.items())})" if others else ""
  seeds = f"{result.num_seeds} seed{'s' * (result.num_seeds > 1)}"
  axes.plot(x, _finite(means[members]), "o-", color="C0", label=f"seed mean, {seeds}{fixed}")
  diverged = np.any(result.history.diverged[:, members], axis=0)
  if np.any(diverged):
    top = transforms.blended_transform_factory(axes.transData, axes.transAxes)
    axes.plot(x[diverged], np.full(int(diverged.sum()), 0.96), "x", color="red", markersize=9,
              transform=top, clip_on=False, label="diverged (any seed)")  # fmt: skip
  lo, hi = result.usable_range(metric, tolerance, axis)
  if np.isfinite(lo):
    axes.axvspan(lo, hi, color="green", alpha=0.12, label=f"usable range (tol {tolerance:g})")
  threshold = result.divergence_threshold(axis, metric)
  if threshold is not None:
    axes.axvline(threshold, color="red", linestyle="--", linewidth=1, label="diverges from")
  if np.isfinite(best["value"]):
    best_x = best["hyperparameters"][axis]
    axes.plot([best_x], [best["value"]], "*", color="gold", markeredgecolor="black",
              markersize=15, label=f"best {axis}={best_x:.3g}")  # fmt: skip
  if _log_axis(result.grid[axis]):
    axes.set_xscale("log")
  axes.set_xlabel(axis)
  direction = "higher" if higher_is_better(metric) else "lower"
  axes.set_ylabel(f"{metric} ({direction} is better)")
  axes.set_title(title or f"{result.config.get('task', 'sweep')}: {metric} vs {axis}")
  axes.grid(alpha=0.3)
  axes.legend(fontsize="small")
  return _save(figure, path)


def plot_curves(
  result: SweepResult,
  path: str | os.PathLike,
  metric: str = "val_loss",
  axis: str | None = None,
  *,
  cmap: str = "viridis",
  log_y: bool | None = None,
  title: str | None = None,
) -> Figure:
  """Learning curves, one line per member, coloured by its ``axis`` value.

  Each line is the mean over seeds of ``metric`` at every evaluation (or, for
  ``"learning_rate"``, at every step). Members that diverged in some seed are
  dashed. The colour scale is logarithmic for positive values spanning a
  factor of 10 or more, and shown as a colorbar. For a grid with more axes,
  the members on the slice through the best member are drawn.

  Args:
    result: the sweep.
    path: where to write the PNG; parent folders are created.
    metric: one of :data:`CURVE_METRICS`.
    axis: the grid axis that colours the lines (default ``"lr"`` if present,
      else the first axis).
    cmap: a matplotlib colormap name.
    log_y: a log y axis; default: for positive losses and learning rates.
    title: the figure title (default: task and metric).

  Returns:
    The saved ``Figure``.

  Example:
    >>> result = lrlab.sweep.result._example()
    >>> figure = lrlab.sweep.plot_curves(result, "/tmp/curves.png", "val_accuracy")
    >>> len(figure.axes[0].get_lines()), len(figure.axes)
    (3, 2)
  """
  _check_result(result)
  _checks.check_choice("metric", metric, CURVE_METRICS)
  axis = result._axis_name(axis)
  if "accuracy" in metric and not result.has_accuracy:
    raise ValueError(f"metric {metric!r} is NaN throughout: the task has no accuracy.")
  members = result._slice(result.best(warn=False)["index"], axis)
  values = getattr(result.history, metric)
  per_step = metric == "learning_rate"
  steps = np.arange(values.shape[-1]) if per_step else result.history.step[0, 0]
  curves = values[:, members].mean(axis=0)
  hp = result.grid[axis][members]
  low, high = float(hp.min()), float(hp.max())
  if _log_axis(hp):
    norm = colors.LogNorm(low, high)
  else:
    norm = colors.Normalize(low, high if high > low else low + 1)
  mappable = cm.ScalarMappable(norm=norm, cmap=cmap)
  diverged = np.any(result.history.diverged[:, members], axis=0)
  figure = Figure(figsize=(8, 4.5), layout="constrained")
  axes = figure.add_subplot()
  for curve, value, bad in zip(curves, hp, diverged, strict=True):
    axes.plot(steps, _finite(curve), color=mappable.to_rgba(value), linewidth=1.5,
              linestyle="--" if bad else "-", label=f"{axis}={value:.3g}")  # fmt: skip
  finite = curves[np.isfinite(curves)]
  if log_y is None:
    log_y = ("loss" in metric or metric == "learning_rate") and finite.size > 0
    log_y = log_y and bool(np.all(finite > 0))
  if log_y:
    axes.set_yscale("log")
  figure.colorbar(mappable, ax=axes, label=axis)
  if np.any(diverged):
    handle = Line2D([], [], color="gray", linestyle="--", label="diverged (any seed)")
    axes.legend(handles=[handle], fontsize="small")
  axes.set_xlabel("step")
  axes.set_ylabel(f"{metric} (seed mean)")
  axes.set_title(title or f"{result.config.get('task', 'sweep')}: {metric}")
  axes.grid(alpha=0.3)
  return _save(figure, path)


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

  The other axes are fixed at the best member's values. Cells are coloured so
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
  _check_result(result)
  metric = result._metric_name(metric)
  x_axis, y_axis = _heatmap_axes(result, x_axis, y_axis)
  best = result.best(metric, warn=False)["index"]
  keep = np.ones(result.num_members, bool)
  for name, column in result.grid.items():
    if name not in (x_axis, y_axis):
      keep &= column == column[best]
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
        f"{where[cell]} and {k} share {x_axis}={xs[cell[1]]:.4g}, {y_axis}={ys[cell[0]]:.4g}."
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
  axes.set_xticks(range(len(xs)), [f"{v:.3g}" for v in xs], rotation=45)
  axes.set_yticks(range(len(ys)), [f"{v:.3g}" for v in ys])
  axes.set_xlabel(x_axis)
  axes.set_ylabel(y_axis)
  axes.set_title(title or f"{result.config.get('task', 'sweep')}: {metric}")
  return _save(figure, path)


def plot_all(
  result: SweepResult, directory: str | os.PathLike, metric: str | None = None
) -> list[Path]:
  """Write every figure that applies to ``result`` into ``directory``.

  ``sensitivity.png`` (along the default axis), ``curves_val_loss.png``,
  ``curves_val_accuracy.png`` (tasks with accuracy), ``curves_learning_rate.png``
  (when the learning rate was recorded), and ``heatmap_<x>_<y>.png`` for the
  default axis against every other axis with 2 or more values that forms a
  product with it.

  Args:
    result: the sweep.
    directory: the folder (created if needed).
    metric: the summary metric of the sensitivity plot and heatmaps.

  Returns:
    The paths written, in that order.
  """
  _check_result(result)
  directory = Path(directory)
  paths = [directory / "sensitivity.png"]
  plot_sensitivity(result, paths[-1], metric)
  curves = ["val_loss", "val_accuracy"] if result.has_accuracy else ["val_loss"]
  if np.any(np.isfinite(result.history.learning_rate)):
    curves.append("learning_rate")
  for name in curves:
    paths.append(directory / f"curves_{name}.png")
    plot_curves(result, paths[-1], name)
  axis = result._axis_name(None)
  for other in result.grid:
    if other != axis and len(np.unique(result.grid[other])) > 1:
      path = directory / f"heatmap_{axis}_{other}.png"
      try:
        plot_heatmap(result, path, metric, axis, other)
      except ValueError:
        continue
      paths.append(path)
  return paths
