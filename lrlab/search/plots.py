"""Figures of a search: PBT's hyperparameter schedules and lineage.

A halving or Hyperband search's curves (NaN after each member stopped) are drawn by
:func:`lrlab.sweep.plot_curves`, as ``lrlab sweep --search`` draws them.
"""

import os

import matplotlib
import numpy as np
from matplotlib import colors
from matplotlib.figure import Figure

from lrlab import _checks
from lrlab.search.result import SearchResult
from lrlab.sweep.plots import common


def plot_pbt(
  result: SearchResult, path: str | os.PathLike, axis: str | None = None, *, seed: int = 0
) -> Figure:
  """PBT's answer in one figure: each member's hyperparameter schedule, its lineage and its curve.

  Top: member ``k``'s value of ``axis`` over steps (a step function, changing
  at the exploit steps), coloured by member; a grey segment joins a replaced
  member to the parent whose state it copied, at the step it copied it.
  Bottom: the ranking metric of every member over steps; a member that diverged after its
  last copy (still flagged at the end) is dashed and stops at its divergence step, marked
  with an ``x``, as in :func:`lrlab.sweep.plot_curves`. One seed (``seed``,
  an index into the result's seeds). Log scale for a positive axis spanning a
  factor of 10 or more.

  Args:
    result: a :func:`lrlab.search.pbt` result.
    path: where to write the PNG; parent folders are created.
    axis: the hyperparameter drawn (default ``"lr"`` if present, else the first).
    seed: which seed's population, ``0 <= seed < S``.

  Returns:
    The figure.
  """
  if result.schedule is None or result.lineage is None:
    raise ValueError("result must be a PBT result (lrlab.search.pbt); it has no schedule.")
  names = list(result.schedule)
  axis = ("lr" if "lr" in names else names[0]) if axis is None else axis
  _checks.check_choice("axis", axis, names)
  seeds = result.sweep.num_seeds
  if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or not 0 <= seed < seeds:
    raise ValueError(f"seed must be an integer in [0, {seeds}); got {seed!r}.")
  schedule = result.schedule[axis][seed]  # (K, I + 1)
  lineage = result.lineage[seed]  # (K, I)
  steps = int(result.config["steps"])
  edges = np.concatenate([[0], result.exploit_steps, [steps]])
  size = schedule.shape[0]
  palette = matplotlib.colormaps["viridis"]
  norm = colors.Normalize(0, max(size - 1, 1))

  figure = Figure(figsize=(8, 6.5), layout="constrained")
  top, bottom = figure.subplots(2, 1, sharex=True)
  for k in range(size):
    top.step(edges, np.append(schedule[k], schedule[k, -1]), where="post",
             color=palette(norm(k)), lw=1.2)  # fmt: skip
  for i, t in enumerate(result.exploit_steps):
    for k in np.flatnonzero(lineage[:, i] != np.arange(size)):
      parent = lineage[k, i]
      top.plot([t, t], [schedule[parent, i], schedule[k, i + 1]], color="0.6", lw=0.8, ls=":")
  positive = np.all(schedule > 0)
  if positive and schedule.max() / schedule.min() >= 10:
    top.set_yscale("log")
  top.set_ylabel(axis)
  top.set_title(
    f"PBT on {result.config.get('task')!r}, seed {int(result.sweep.seeds[seed])}: {axis} per "
    "member\n(dotted: a member copies a better one's state)",
    fontsize=10,
  )
  curves = getattr(result.sweep.history, result.metric)[seed]
  x = result.sweep.history.step
  x = x[seed, 0] if x.ndim == 3 else x
  history = result.sweep.history
  diverged = np.asarray(history.diverged[seed], bool)
  drawn = []
  for k in range(size):
    # A member still flagged at the end diverged after its last copy and is frozen from its
    # divergence step on: drawn dashed up to it, as plot_curves draws it, never as trained.
    keep = x <= history.diverged_step[seed, k] if diverged[k] else np.ones(len(x), bool)
    y = common.finite(np.asarray(curves[k], np.float64)[keep])
    bottom.plot(x[keep], y, color=palette(norm(k)), lw=1.0, ls="--" if diverged[k] else "-")
    if diverged[k] and keep.any():
      bottom.plot(x[keep][-1:], y[-1:], "x", color=palette(norm(k)), markersize=8)
    drawn.append(y)
  healthy = [y for y, bad in zip(drawn, diverged, strict=True) if not bad] or drawn
  shown = np.concatenate(healthy)
  shown = shown[np.isfinite(shown)]
  log_y = result.metric.endswith("loss") and shown.size > 0 and bool(np.all(shown > 0))
  if log_y:
    bottom.set_yscale("log")
  # The y range of the members that never diverged (all if none did), as plot_curves draws it.
  limits = common.limits(shown, log_y)
  if limits is not None:
    bottom.set_ylim(*limits)
  bottom.set_xlabel("step")
  bottom.set_ylabel(result.metric)
  for t in result.exploit_steps:
    top.axvline(t, color="0.9", lw=0.5, zorder=0)
    bottom.axvline(t, color="0.9", lw=0.5, zorder=0)
  return common.save(figure, path)
