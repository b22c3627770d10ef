"""Every figure that applies to a sweep, written into one folder, following the metric and the
tolerance of the summary printed beside them."""

import os
from pathlib import Path

import numpy as np

from lrlab.sweep.lines import product_axes
from lrlab.sweep.plots import common
from lrlab.sweep.plots.curves import plot_curves
from lrlab.sweep.plots.heatmap import plot_heatmap
from lrlab.sweep.plots.sensitivity import plot_sensitivity
from lrlab.sweep.result import SweepResult


def plot_all(
  result: SweepResult,
  directory: str | os.PathLike,
  metric: str | None = None,
  *,
  tolerance: float = 0.05,
) -> list[Path]:
  """Write every figure that applies to ``result`` into ``directory``.

  Pass the ``metric`` and ``tolerance`` of the summary printed or saved beside
  the figures (:meth:`~lrlab.sweep.SweepResult.summary`,
  :meth:`~lrlab.sweep.SweepResult.save`): the sensitivity plot then shades the
  usable range that the summary states, and every figure draws the line
  through the same best member.

  ``sensitivity.png`` (along the default axis), ``curves_val_loss.png``,
  ``curves_val_accuracy.png`` (tasks with accuracy), ``curves_learning_rate.png``
  (when the learning rate was recorded), and ``heatmap_<x>_<y>.png`` for the
  default axis against every other axis with 2 or more values that forms a
  product with it.

  Args:
    result: the sweep.
    directory: the folder (created if needed).
    metric: the summary metric: of the sensitivity plot and the heatmaps, and
      the one that picks the best member whose line the curves show (default
      as in :meth:`~lrlab.sweep.SweepResult.best`).
    tolerance: of the usable range shaded in the sensitivity plot.

  Returns:
    The paths written, in that order.
  """
  common.check_result(result)
  directory = Path(directory)
  paths = [directory / "sensitivity.png"]
  plot_sensitivity(result, paths[-1], metric, tolerance=tolerance)
  curves = ["val_loss", "val_accuracy"] if result.has_accuracy else ["val_loss"]
  if np.any(np.isfinite(result.history.learning_rate)):
    curves.append("learning_rate")
  for name in curves:
    paths.append(directory / f"curves_{name}.png")
    plot_curves(result, paths[-1], name, best_by=metric)
  axis = result._axis_name(None)
  for other in product_axes(result.grid, axis):
    if len(np.unique(result.grid[other])) > 1:
      path = directory / f"heatmap_{axis}_{other}.png"
      try:
        plot_heatmap(result, path, metric, axis, other)
      except ValueError:
        continue
      paths.append(path)
  return paths
