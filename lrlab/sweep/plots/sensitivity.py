"""The sensitivity (U-) curve of a sweep: a summary metric against one axis, with the usable
range and the divergence threshold of the printed summary."""

import os

import numpy as np
from matplotlib import transforms
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from lrlab import _checks
from lrlab.sweep.lines import product_axes
from lrlab.sweep.metrics import higher_is_better
from lrlab.sweep.plots import common
from lrlab.sweep.result import SweepResult

_MAX_GROUPS = 8


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
  common.check_result(result)
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
      label = ", ".join(f"{n}={common.number(result.grid[n][group[0]].item())}" for n in fixed)
      x, y = result.grid[axis][group], common.finite(means[group])
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
    values = common.finite(runs[:, members])
    with np.errstate(invalid="ignore"):
      if band == "minmax":
        low, high = np.nanmin(values, 0, initial=np.inf), np.nanmax(values, 0, initial=-np.inf)
      else:
        low, high = (
          common.finite(means[members] - values.std(0)),
          common.finite(means[members] + values.std(0)),
        )
    ok = np.isfinite(low) & np.isfinite(high)
    band_label = "seed min to max" if band == "minmax" else "seed mean ± std"
    axes.fill_between(
      x, np.where(ok, low, 0), np.where(ok, high, 0), where=ok, alpha=0.2, label=band_label
    )
    plotted.extend([low[ok], high[ok]])
  others = {n: best["hyperparameters"][n] for n in fixed}
  fixed_text = (
    f" ({', '.join(f'{n}={common.number(v)}' for n, v in others.items())})" if others else ""
  )
  seeds = f"{result.num_seeds} seed{'s' * (result.num_seeds > 1)}"
  y = common.finite(means[members])
  axes.plot(x, y, "o-", color="C0", label=f"seed mean, {seeds}{fixed_text}")
  plotted.append(y)
  diverged = diverged_any[members]
  if np.any(diverged):
    axes.plot(x[diverged], np.full(int(diverged.sum()), 0.96), "x", color="red", markersize=9,
              transform=top, clip_on=False, label="diverged (any seed)")  # fmt: skip
  log_x = common.log_axis(result.grid[axis])
  lo, hi = result.usable_range(metric, tolerance, axis)
  if np.isfinite(lo):
    shown = (
      f"only {axis}={common.number(lo)}"
      if lo == hi
      else f"{axis} {common.number(lo)} to {common.number(hi)}"
    )
    left, right = _visible_span(lo, hi, result.grid[axis], log_x)
    axes.axvspan(left, right, color="green", alpha=0.15 if lo == hi else 0.12,
                 label=f"usable range (tol {tolerance:g}): {shown}")  # fmt: skip
  threshold = result.divergence_threshold(axis, metric)
  if threshold is not None:
    axes.axvline(threshold, color="red", linestyle="--", linewidth=1, label="diverges from")
  if np.isfinite(best["value"]):
    best_x = best["hyperparameters"][axis]
    axes.plot([best_x], [best["value"]], "*", color="gold", markeredgecolor="black",
              markersize=15, label=f"best {axis}={common.number(best_x)}")  # fmt: skip
  if log_x:
    axes.set_xscale("log")
  shown_values = np.concatenate([np.ravel(v) for v in plotted])
  shown_values = shown_values[np.isfinite(shown_values)]
  if "loss" in metric and shown_values.size and bool(np.all(shown_values > 0)):
    axes.set_yscale("log")
  axes.set_xlabel(axis)
  direction = "higher" if higher_is_better(metric) else "lower"
  axes.set_ylabel(f"{metric} ({direction} is better)")
  axes.set_title(title or common.title_of(result, f"{metric} vs {axis}"))
  axes.grid(alpha=0.3)
  handles, _ = axes.get_legend_handles_labels()
  if secondary_diverged:
    handles.append(Line2D([], [], marker="x", color="gray", linestyle="none",
                          label="diverged (any seed), thin line's colour"))  # fmt: skip
  axes.legend(handles=handles, fontsize="small")
  return common.save(figure, path)
