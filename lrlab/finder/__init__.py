"""Learning-rate finders: Smith's range test with every popular rule, and a parallel check.

- :func:`find_lr` runs the range test as fastai does (one compiled scan, a
  growing rate, a smoothed loss, a stop at divergence) and returns a
  :class:`FinderResult` with the suggestion of every rule in
  :mod:`lrlab.finder.suggestions`: fastai's ``steep``, ``valley``, ``minimum``
  and ``slide``, and Lightning's steepest gradient.
- :func:`find_lr_parallel` trains K constant rates for a short budget in one
  vmapped program (:func:`lrlab.sweep.run`) and reports the best one with its
  usable range: a measurement where the range test's rules are readings.

Example:
  >>> result = lrlab.finder.find_lr("quadratic", "sgd", start_lr=1e-3, steps=30,
  ...                               batch_size=None, key=jax.random.key(0))
  >>> sorted(result.suggestions) == sorted(lrlab.finder.RULES)
  True
"""

from lrlab.finder import suggestions as suggestions
from lrlab.finder.parallel import ParallelFinderResult as ParallelFinderResult
from lrlab.finder.parallel import find_lr_parallel as find_lr_parallel
from lrlab.finder.plots import plot_range_test as plot_range_test
from lrlab.finder.range_test import SPACINGS as SPACINGS
from lrlab.finder.range_test import find_lr as find_lr
from lrlab.finder.range_test import lr_sequence as lr_sequence
from lrlab.finder.result import STOP_REASONS as STOP_REASONS
from lrlab.finder.result import FinderResult as FinderResult
from lrlab.finder.suggestions import RULES as RULES
from lrlab.finder.suggestions import Suggestion as Suggestion

__all__ = [
  "RULES",
  "SPACINGS",
  "STOP_REASONS",
  "FinderResult",
  "ParallelFinderResult",
  "Suggestion",
  "find_lr",
  "find_lr_parallel",
  "lr_sequence",
  "plot_range_test",
  "suggestions",
]
