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
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib import cm, colors, transforms
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from lrlab import _checks, train
from lrlab.sweep import storage
from lrlab.sweep.lines import product_axes
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
  """Render ``figure`` into ``path`` atomically (a temporary file, then ``os.replace``)."""
  path = Path(path)
  path.parent.mkdir(parents=True, exist_ok=True)
  kind = path.suffix.lstrip(".").lower() or "png"
  storage.atomic_write(path, lambda file: figure.savefig(file, dpi=120, format=kind), binary=True)
  return figure


def _number(value: Any) -> str:
  return f"{value:.3g}" if isinstance(value, float) else str(value)


def _arguments(values: Mapping[str, Any]) -> str:
  """`` (a=1, b=0.9)`` for the scalar entries of ``values`` (``""`` when there are none)."""
  shown = {k: v for k, v in values.items() if isinstance(v, int | float | str | bool)}
  return f" ({', '.join(f'{k}={_number(v)}' for k, v in shown.items())})" if shown else ""


def _describe_config(config: Mapping[str, Any]) -> str:
  """What was trained, from a result's config, for a figure's subtitle ("" if unknown).

  Reads ``config["tx"]``: a string (shown as is) or a dict with the optimizer
  under ``"optimizer"`` (or ``"name"``), the schedule under ``"schedule"`` (a
  name, or a dict with a ``"name"`` and its arguments) and the optimizer's
  fixed arguments as the other scalar entries; then ``config["schedule"]``
  when ``tx`` has none, ``"steps"``, ``"batch_size"`` (``None`` is full
  batch) and ``"cross_validated"`` (k folds). For example
  ``{"tx": {"optimizer": "sgd", "momentum": 0.9, "schedule": "cosine"},
  "steps": 400, "batch_size": None}`` gives ``"sgd (momentum=0.9), cosine
  schedule, 400 steps, full batch"``.
  """
  parts = []
  tx = config.get("tx")
  schedule = config.get("schedule")
  if isinstance(tx, str) and tx:
    parts.append(tx)
  elif isinstance(tx, Mapping):
    name = tx.get("optimizer", tx.get("name"))
    args = {k: v for k, v in tx.items() if k not in ("optimizer", "name", "schedule")}
    parts.append(f"{name or 'optimizer'}{_arguments(args)}")
    schedule = tx.get("schedule", schedule)
  if isinstance(schedule, Mapping):
    args = {k: v for k, v in schedule.items() if k != "name"}
    schedule = f"{schedule.get('name', '')}{_arguments(args)}".strip()
  if isinstance(schedule, str) and schedule:
    parts.append(f"{schedule} schedule")
  if isinstance(config.get("steps"), int):
    parts.append(f"{config['steps']} steps")
  if "batch_size" in config:
    size = config["batch_size"]
    parts.append("full batch" if size is None else f"batch {size}")
  if isinstance(config.get("cross_validated"), int):
    parts.append(f"{config['cross_validated']}-fold cross-validated")
  return ", ".join(parts)


def _title(result: SweepResult, what: str) -> str:
  """``"<task>: <what>"``, with a second line describing the training when the config can."""
  line = f"{result.config.get('task', 'sweep')}: {what}"
  details = _describe_config(result.config)
  return f"{line}\n{details}" if details else line


def _groups(result: SweepResult, axis: str) -> list[np.ndarray]:
  """Lines along ``axis``, one per setting of the axes that form a product with it."""
  fixed = product_axes(result.grid, axis)
  firsts: dict[tuple, int] = {}
  for k in range(result.num_members):
    firsts.setdefault(tuple(result.grid[name][k].item() for name in fixed), k)
  return [result.line(k, axis) for k in firsts.values()]


def _visible_span(lo: float, hi: float, values: np.ndarray, log: bool) -> tuple[float, float]:
  """``(lo, hi)`` widened about its centre to at least 2% of the span of ``values`` on the axis."""
  forward, inverse = (np.log10, lambda v: 10.0**v) if log else (lambda v: v, lambda v: v)
  a, b = float(forward(lo)), float(forward(hi))
  span = float(np.ptp(forward(np.asarray(values, np.float64))))
  width = 0.02 * span if span > 0 else (0.02 if log else 0.02 * max(abs(a), 1.0))
  if b - a >= width:
    return lo, hi
  centre = (a + b) / 2
  return float(inverse(centre - width / 2)), float(inverse(centre + width / 2))


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

  Along the :meth:`~lrlab.sweep.SweepResult.line` through the best member:
  the seed mean (diverged runs count as the worst value, so a diverged loss
  leaves a gap), a band over seeds, a red ``x`` at the top for every member
  that diverged in some seed, a star at the best member, the
  :meth:`~lrlab.sweep.SweepResult.usable_range` shaded (at least 2% of the
  axis wide, so a range of one value stays visible; its legend entry gives
  the interval) and the divergence threshold as a dashed red line. When the
  axes that form a product with ``axis`` make at most 8 groups of 2 or more
  members, each other group is drawn as a thin line, its diverged members
  marked with an ``x`` in its colour (on the line, or just below the red row
  at the top where the value is not finite). The x axis is logarithmic for
  positive values spanning a factor of 10 or more; the y axis is logarithmic
  for a loss whose plotted values are all positive.

  Args:
    result: the sweep.
    path: where to write the PNG; parent folders are created.
    metric: a summary metric (default as in :meth:`~lrlab.sweep.SweepResult.best`).
    axis: the grid axis on x (default ``"lr"`` if present, else the first axis).
    tolerance: of the usable range.
    band: ``"minmax"`` (seed minimum to maximum) or ``"std"`` (mean ± std).
    title: the figure title (default: task, metric and axis, and a second
      line with the optimizer, schedule and budget when the config records
      them: ``config["tx"]``, ``"steps"``, ``"batch_size"``).

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
  members = result.line(best["index"], axis)
  runs = result.metric(metric)
  means = result.seed_mean(metric)
  diverged_any = np.any(result.history.diverged, axis=0)
  figure = Figure(figsize=(8, 4.5), layout="constrained")
  axes = figure.add_subplot()
  top = transforms.blended_transform_factory(axes.transData, axes.transAxes)
  plotted = []  # every y value drawn in data coordinates, for the choice of a log y axis
  groups = _groups(result, axis)
  fixed = product_axes(result.grid, axis)
  secondary_diverged = False
  if 1 < len(groups) <= _MAX_GROUPS and all(len(g) > 1 for g in groups):
    others_drawn = 0
    for group in groups:
      if best["index"] in group:
        continue
      others_drawn += 1
      color = f"C{others_drawn}"
      label = ", ".join(f"{n}={_number(result.grid[n][group[0]].item())}" for n in fixed)
      x, y = result.grid[axis][group], _finite(means[group])
      axes.plot(x, y, ".-", color=color, linewidth=1, alpha=0.6, label=label)
      plotted.append(y)
      bad = diverged_any[group]
      on_line = bad & np.isfinite(y)
      if np.any(on_line):
        axes.plot(x[on_line], y[on_line], "x", color=color, markersize=8, markeredgewidth=1.5,
                  label="_diverged")  # fmt: skip
      if np.any(bad & ~on_line):
        axes.plot(x[bad & ~on_line], np.full(int(np.sum(bad & ~on_line)), 0.91), "x",
                  color=color, markersize=8, markeredgewidth=1.5, transform=top,
                  clip_on=False, label="_diverged")  # fmt: skip
      secondary_diverged |= bool(np.any(bad))
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
    plotted.extend([low[ok], high[ok]])
  others = {n: best["hyperparameters"][n] for n in fixed}
  fixed_text = f" ({', '.join(f'{n}={_number(v)}' for n, v in others.items())})" if others else ""
  seeds = f"{result.num_seeds} seed{'s' * (result.num_seeds > 1)}"
  y = _finite(means[members])
  axes.plot(x, y, "o-", color="C0", label=f"seed mean, {seeds}{fixed_text}")
  plotted.append(y)
  diverged = diverged_any[members]
  if np.any(diverged):
    axes.plot(x[diverged], np.full(int(diverged.sum()), 0.96), "x", color="red", markersize=9,
              transform=top, clip_on=False, label="diverged (any seed)")  # fmt: skip
  log_x = _log_axis(result.grid[axis])
  lo, hi = result.usable_range(metric, tolerance, axis)
  if np.isfinite(lo):
    shown = f"only {axis}={_number(lo)}" if lo == hi else f"{axis} {_number(lo)} to {_number(hi)}"
    left, right = _visible_span(lo, hi, result.grid[axis], log_x)
    axes.axvspan(left, right, color="green", alpha=0.15 if lo == hi else 0.12,
                 label=f"usable range (tol {tolerance:g}): {shown}")  # fmt: skip
  threshold = result.divergence_threshold(axis, metric)
  if threshold is not None:
    axes.axvline(threshold, color="red", linestyle="--", linewidth=1, label="diverges from")
  if np.isfinite(best["value"]):
    best_x = best["hyperparameters"][axis]
    axes.plot([best_x], [best["value"]], "*", color="gold", markeredgecolor="black",
              markersize=15, label=f"best {axis}={best_x:.3g}")  # fmt: skip
  if log_x:
    axes.set_xscale("log")
  shown_values = np.concatenate([np.ravel(v) for v in plotted])
  shown_values = shown_values[np.isfinite(shown_values)]
  if "loss" in metric and shown_values.size and bool(np.all(shown_values > 0)):
    axes.set_yscale("log")
  axes.set_xlabel(axis)
  direction = "higher" if higher_is_better(metric) else "lower"
  axes.set_ylabel(f"{metric} ({direction} is better)")
  axes.set_title(title or _title(result, f"{metric} vs {axis}"))
  axes.grid(alpha=0.3)
  handles, _ = axes.get_legend_handles_labels()
  if secondary_diverged:
    handles.append(Line2D([], [], marker="x", color="gray", linestyle="none",
                          label="diverged (any seed), thin line's colour"))  # fmt: skip
  axes.legend(handles=handles, fontsize="small")
  return _save(figure, path)


def _limits(values: np.ndarray, log: bool) -> tuple[float, float] | None:
  """y limits holding the finite ``values`` with a 5% margin, or ``None`` when there are none."""
  values = values[np.isfinite(values)]
  if log:
    values = values[values > 0]
  if values.size == 0:
    return None
  lo, hi = float(values.min()), float(values.max())
  if log:
    margin = (hi / lo) ** 0.05 if hi > lo else 1.1
    return lo / margin, hi * margin
  margin = 0.05 * (hi - lo) if hi > lo else 0.05 * max(abs(hi), 1.0)
  return lo - margin, hi + margin


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
      in :func:`plot_sensitivity`).

  Returns:
    The saved ``Figure``.

  Example:
    >>> result = lrlab.sweep.result._example()
    >>> figure = lrlab.sweep.plot_curves(result, "/tmp/curves.png", "val_accuracy")
    >>> len(figure.axes[0].get_lines()), len(figure.axes)
    (4, 2)
  """
  _check_result(result)
  _checks.check_choice("metric", metric, CURVE_METRICS)
  axis = result._axis_name(axis)
  if "accuracy" in metric and not result.has_accuracy:
    raise ValueError(f"metric {metric!r} is NaN throughout: the task has no accuracy.")
  members = result.line(result.best(warn=False)["index"], axis)
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
    x, y = steps[keep], _finite(curve[keep])
    axes.plot(x, y, color=color, linewidth=1.5, linestyle="--" if bad else "-",
              label=f"{axis}={value:.3g}")  # fmt: skip
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
  limits = _limits(np.concatenate(healthy), bool(log_y)) if healthy else None
  if limits is not None:
    axes.set_ylim(*limits)
  figure.colorbar(mappable, ax=axes, label=axis)
  if np.any(diverged):
    handle = Line2D([0, 1], [0, 0], color="gray", linestyle="--", marker="x", markevery=[1],
                    label="diverged (any seed): stops there")  # fmt: skip
    axes.legend(handles=[handle], fontsize="small")
  axes.set_xlabel("step")
  axes.set_ylabel(f"{metric} (seed mean)")
  axes.set_title(title or _title(result, metric))
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
