"""Search that stops wasting compute: successive halving, Hyperband, population-based training
and Optuna studies, inside the sweep's compiled, vmapped programs.

Every method drives the sweep engine's compiled segment programs (the same ones
:func:`lrlab.sweep.run` uses) and decides between segments which members go on,
which stop and which copy another's state: stopping a member costs nothing,
and PBT's copy of weights is a gather on device. See :func:`successive_halving`
(Jamieson & Talwalkar 2016), :func:`hyperband` (Li et al. 2018), :func:`pbt`
(Jaderberg et al. 2017) and :func:`run_study` (Optuna, the ``lrlab[optuna]`` extra).
"""

from lrlab.search.halving import hyperband as hyperband
from lrlab.search.halving import hyperband_brackets as hyperband_brackets
from lrlab.search.halving import rung_steps as rung_steps
from lrlab.search.halving import successive_halving as successive_halving
from lrlab.search.members import RANKING_METRICS as RANKING_METRICS
from lrlab.search.pbt import EXPLOITS as EXPLOITS
from lrlab.search.pbt import pbt as pbt
from lrlab.search.plots import plot_pbt as plot_pbt
from lrlab.search.result import SearchResult as SearchResult
from lrlab.search.study import run_study as run_study

__all__ = [
  "EXPLOITS",
  "RANKING_METRICS",
  "SearchResult",
  "hyperband",
  "hyperband_brackets",
  "pbt",
  "plot_pbt",
  "run_study",
  "rung_steps",
  "successive_halving",
]
