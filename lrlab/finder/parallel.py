"""The parallel finder: K constant learning rates trained side by side for a short budget.

Where the range test reads a suggestion off one run whose rate never stays
put, the parallel finder answers the question directly: it trains every
candidate rate at once, for ``steps`` updates, in one vmapped program
(:func:`lrlab.sweep.run`), and reports the rate that did best with the range
of rates that did nearly as well. It costs ``K`` short runs instead of one,
which the sweep engine spreads over every device.
"""

import dataclasses
from collections.abc import Sequence
from typing import Any

import jax
import numpy as np

from lrlab import _checks, sweep
from lrlab.finder._common import MakeTx, as_make_tx, as_task, check_batch_size
from lrlab.sweep.arguments import check_accuracy


@dataclasses.dataclass(frozen=True, eq=False)
class ParallelFinderResult:
  """The answer of :func:`find_lr_parallel`.

  Attributes:
    lr: the candidate rate with the best seed-mean ``metric`` after the budget.
    usable_range: ``(lo, hi)``, the contiguous rates around ``lr`` within
      ``tolerance`` of the best (see :meth:`lrlab.sweep.SweepResult.usable_range`),
      or ``(nan, nan)``.
    divergence_lr: the smallest candidate that diverged, or ``None``.
    metric: the metric that ranks the candidates.
    value: the best seed-mean ``metric``.
    on_edge: whether the best candidate is the smallest or the largest one (the
      best rate may lie outside the candidates: widen them).
    sweep: the full :class:`lrlab.sweep.SweepResult`.
  """

  lr: float
  usable_range: tuple[float, float]
  divergence_lr: float | None
  metric: str
  value: float
  on_edge: bool
  sweep: sweep.SweepResult

  def summary(self) -> str:
    """One line: the best rate, its value and the usable range; where every candidate
    diverged in every seed, that, and that the rates to try lie below the smallest."""
    if np.all(self.sweep.history.diverged):
      return (
        f"Parallel finder: every candidate diverged, the smallest ({self.lr:.4g}) too: widen "
        f"the candidates below it."
      )
    lo, hi = self.usable_range
    edge = " (on the edge of the candidates: widen them)" if self.on_edge else ""
    diverges = "" if self.divergence_lr is None else f"; diverges from {self.divergence_lr:.4g}"
    return (
      f"Parallel finder: best lr = {self.lr:.4g}{edge} ({self.metric} = {self.value:.4g}); "
      f"usable range [{lo:.4g}, {hi:.4g}]{diverges}."
    )

  def to_dict(self) -> dict[str, Any]:
    """The answer as a JSON-ready dict (without the sweep's curves)."""
    lo, hi = self.usable_range
    finite = lambda v: float(v) if v is not None and np.isfinite(v) else None
    return {
      "lr": self.lr,
      "usable_range": [finite(lo), finite(hi)],
      "divergence_lr": self.divergence_lr,
      "metric": self.metric,
      "value": finite(self.value),
      "on_edge": self.on_edge,
      "steps": self.sweep.config["steps"],
      "candidates": self.sweep.grid["lr"].tolist(),
    }


def _eval_every(steps: int) -> int:
  """The smallest divisor of ``steps`` giving at most 10 evaluation windows."""
  return next(d for d in range(1, steps + 1) if steps % d == 0 and steps // d <= 10)


def find_lr_parallel(
  task: Any,
  make_tx: MakeTx | str,
  *,
  lrs: Sequence[float] | np.ndarray,
  steps: int,
  batch_size: int | None,
  key: jax.Array,
  seeds: int | Sequence[int] = 1,
  metric: str | None = None,
  tolerance: float = 0.05,
  eval_every: int | None = None,
  divergence_factor: float = 10.0,
  chunk_size: int | None = None,
  progress: bool = False,
) -> ParallelFinderResult:
  """Train each rate of ``lrs`` for ``steps`` updates in one vmapped program; report the best.

  Every candidate trains with ``make_tx({"lr": rate})`` from the same initial
  parameters and minibatch order (common random numbers; see
  :func:`lrlab.sweep.run`), so the candidates differ only in their rate. The
  suggestion is the rate with the best seed-mean ``metric`` at the end of the
  budget, with the usable range around it. Unlike a range-test rule this is a
  measurement, not a reading of a curve; it is slower per call (``K`` runs of
  ``steps`` instead of one run of about 100 steps) and answers for that budget.

  Args:
    task: an :class:`lrlab.tasks.Task` or a registered task name.
    make_tx: ``hp -> optax.GradientTransformation`` (``hp["lr"]`` a traced
      scalar), or an optimizer name.
    lrs: the candidate rates, 1-D, finite and > 0 (e.g. :func:`lrlab.sweep.log_grid`).
    steps: the budget, updates per candidate.
    batch_size: examples per minibatch, or ``None`` for full batch.
    key: a ``jax.random`` key.
    seeds: the number of seeds, or the seed values.
    metric: a summary metric of :data:`lrlab.sweep.SUMMARY_METRICS` (default:
      ``final_val_accuracy`` when the task has accuracy, else ``final_val_loss``).
    tolerance: of the usable range (0.05: five accuracy points, or 5% of the loss).
    eval_every: steps between evaluations (default: at most 10 evaluations).
    divergence_factor: a candidate whose loss exceeds this multiple of its
      initial loss is frozen and counts as the worst.
    chunk_size: candidates per compiled chunk (default: automatic).
    progress: show the sweep's progress bar.

  Returns:
    A :class:`ParallelFinderResult`.

  Example:
    >>> found = lrlab.finder.find_lr_parallel(
    ...     "quadratic", "sgd", lrs=[0.1, 0.5, 1.0, 1.9, 2.5], steps=50, batch_size=None,
    ...     key=jax.random.key(0))
    >>> found.lr, found.divergence_lr
    (1.9, 2.5)

  References:
    Godbole et al., `Deep Learning Tuning Playbook
    <https://github.com/google-research/tuning_playbook>`_, 2023.
  """
  task = as_task(task)
  make_tx = as_make_tx(make_tx)
  candidates = np.asarray(lrs, np.float64)
  if candidates.ndim != 1 or candidates.size == 0 or not np.all(np.isfinite(candidates)):
    raise ValueError(f"lrs must be a non-empty 1-D sequence of finite rates > 0; got {lrs!r}.")
  if np.any(candidates <= 0):
    raise ValueError(f"lrs must be a non-empty 1-D sequence of finite rates > 0; got {lrs!r}.")
  if not isinstance(steps, int | np.integer) or steps < 1:
    raise ValueError(f"steps must be a positive integer; got {steps!r}.")
  batch_size = check_batch_size(task, batch_size)
  # Before the sweep: read only after it, a misspelt metric or a bad tolerance cost the training.
  if metric is not None:
    _checks.check_choice("metric", metric, sweep.SUMMARY_METRICS)
    check_accuracy(task, metric)
  _checks.check_given(tolerance=tolerance)
  _checks.check_nonnegative("tolerance", tolerance)
  result = sweep.run(
    task,
    make_tx,
    {"lr": np.sort(candidates)},
    steps=int(steps),
    batch_size=batch_size,
    key=key,
    eval_every=eval_every if eval_every is not None else _eval_every(int(steps)),
    seeds=seeds,
    chunk_size=chunk_size,
    progress=progress,
    divergence_factor=divergence_factor,
  )
  best = result.best(metric, warn=False)
  lr = float(best["hyperparameters"]["lr"])
  return ParallelFinderResult(
    lr=lr,
    usable_range=tuple(float(v) for v in result.usable_range(best["metric"], tolerance)),
    divergence_lr=result.divergence_threshold("lr", best["metric"]),
    metric=best["metric"],
    value=float(best["value"]),
    # Every candidate diverged (the best one in every seed): all tie at the worst value, so
    # edge_warning sees no edge, but the best rate lies below the smallest candidate.
    on_edge=result.edge_warning(best["metric"], "lr") is not None
    or bool(np.all(result.history.diverged[:, best["index"]])),
    sweep=result,
  )
