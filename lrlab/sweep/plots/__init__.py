"""Figures of a sweep, drawn from a :class:`~lrlab.sweep.SweepResult` (never by re-training).

- :func:`plot_sensitivity`: the U-curve, a summary metric against one axis.
- :func:`plot_curves`: learning curves coloured by one axis.
- :func:`plot_heatmap`: a summary metric over two axes of a product grid.
- :func:`plot_all`: whichever of these apply, written into one folder, with the
  metric and tolerance of the printed summary.

Every function draws on a ``matplotlib.figure.Figure`` (no pyplot state),
writes a PNG and returns the figure. Like the result's analysis, the slice
through the best member is drawn when the grid has more axes than the figure.
"""

from lrlab.sweep.plots.curves import CURVE_METRICS as CURVE_METRICS
from lrlab.sweep.plots.curves import plot_curves as plot_curves
from lrlab.sweep.plots.folder import plot_all as plot_all
from lrlab.sweep.plots.heatmap import plot_heatmap as plot_heatmap
from lrlab.sweep.plots.sensitivity import plot_sensitivity as plot_sensitivity

__all__ = ["CURVE_METRICS", "plot_all", "plot_curves", "plot_heatmap", "plot_sensitivity"]
