"""Many hyperparameter settings trained at once: grids, the vmapped engine, results, plots.

Build a grid (:mod:`lrlab.sweep.grids`), train every member in one compiled
program with :func:`run`, then read the answers off the :class:`SweepResult`
(best setting, usable range, divergence threshold) and draw them
(:mod:`lrlab.sweep.plots`). Results save to plain files and load back, so
figures never need re-training.
"""

from lrlab.sweep.answers import GridEdgeWarning as GridEdgeWarning
from lrlab.sweep.cache import CacheInfo as CacheInfo
from lrlab.sweep.cache import cache_info as cache_info
from lrlab.sweep.cache import clear_cache as clear_cache
from lrlab.sweep.engine import Stopped as Stopped
from lrlab.sweep.engine import run as run
from lrlab.sweep.grids import AXIS_SYNTAX as AXIS_SYNTAX
from lrlab.sweep.grids import Grid as Grid
from lrlab.sweep.grids import check_grid as check_grid
from lrlab.sweep.grids import grid_size as grid_size
from lrlab.sweep.grids import linear_grid as linear_grid
from lrlab.sweep.grids import log_grid as log_grid
from lrlab.sweep.grids import member as member
from lrlab.sweep.grids import parse_axis as parse_axis
from lrlab.sweep.grids import parse_grid as parse_grid
from lrlab.sweep.grids import product as product
from lrlab.sweep.grids import random_log as random_log
from lrlab.sweep.grids import zipped as zipped
from lrlab.sweep.hyperparameters import UnusedAxisWarning as UnusedAxisWarning
from lrlab.sweep.metrics import SUMMARY_METRICS as SUMMARY_METRICS
from lrlab.sweep.plots import plot_all as plot_all
from lrlab.sweep.plots import plot_curves as plot_curves
from lrlab.sweep.plots import plot_heatmap as plot_heatmap
from lrlab.sweep.plots import plot_sensitivity as plot_sensitivity
from lrlab.sweep.programs import CACHE_SIZE as CACHE_SIZE
from lrlab.sweep.result import SweepResult as SweepResult
from lrlab.sweep.storage import environment_metadata as environment_metadata

__all__ = [
  "AXIS_SYNTAX",
  "CACHE_SIZE",
  "SUMMARY_METRICS",
  "CacheInfo",
  "Grid",
  "GridEdgeWarning",
  "Stopped",
  "SweepResult",
  "UnusedAxisWarning",
  "cache_info",
  "check_grid",
  "clear_cache",
  "environment_metadata",
  "grid_size",
  "linear_grid",
  "log_grid",
  "member",
  "parse_axis",
  "parse_grid",
  "plot_all",
  "plot_curves",
  "plot_heatmap",
  "plot_sensitivity",
  "product",
  "random_log",
  "run",
  "zipped",
]
