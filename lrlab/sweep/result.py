"""What a sweep measured, as plain NumPy, and the answers drawn from it.

A :class:`SweepResult` holds the grid of ``K`` members, the ``S`` seeds, and one
:class:`lrlab.train.History` whose fields all lead with ``(S, K)``. From these it
derives per-run summaries (:data:`SUMMARY_METRICS`), their mean over seeds, and
the answers a sweep is run for: the best setting, the usable range around it,
where training diverges, and whether the grid was wide enough. It saves to, and
loads from, plain files (CSV, NPZ, JSON), so figures and tables can be remade
without re-training.

The conventions of the summaries (a diverged run counts as the worst value,
the direction of a metric, the default metric and axis) are in
:mod:`lrlab.sweep.metrics`.
"""

import dataclasses
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from lrlab import _checks, train
from lrlab.sweep import answers, arguments, folds, grids, lines, metrics, storage, summary
from lrlab.sweep.metrics import SUMMARY_METRICS


@dataclasses.dataclass(frozen=True, eq=False)
class SweepResult:
  """The outcome of a sweep: ``S`` seeds by ``K`` grid members, in plain NumPy.

  Built by :func:`lrlab.sweep.run` (or by hand, or by :meth:`load`); the
  arguments are validated and converted to NumPy on construction. Equality
  compares every array (NaN equal to NaN, dtypes included), the config and
  the metadata.

  Attributes:
    grid: ``{name: (K,) array}``, float64 or int64 (see :mod:`lrlab.sweep.grids`).
    seeds: ``(S,)`` int, the seed of each row.
    history: a :class:`lrlab.train.History` of NumPy arrays: ``step`` and the
      per-evaluation metrics ``(S, K, E)``, ``learning_rate`` ``(S, K, steps)``,
      ``diverged`` ``(S, K)`` bool and ``diverged_step`` ``(S, K)`` int (-1 if
      never). A ``step`` of shape ``(E,)`` is broadcast.
    config: JSON-serialisable settings of the run (``task``, ``steps``,
      ``target`` = ``{"metric": ..., "value": ...}`` or ``None``, ...).
    metadata: JSON-serialisable provenance (see :func:`environment_metadata`).

  Example:
    >>> lr = np.array([0.01, 0.1, 1.0])
    >>> acc = np.array([[[0.1, 0.6], [0.1, 0.9], [0.1, 0.2]]])  # (S=1, K=3, E=2)
    >>> history = lrlab.train.History(
    ...     step=np.array([0, 100]), train_loss=1 - acc, val_loss=1 - acc, val_accuracy=acc,
    ...     test_loss=1 - acc, test_accuracy=acc, learning_rate=np.ones((1, 3, 100)) * lr[:, None],
    ...     diverged=np.array([[False, False, True]]), diverged_step=np.array([[-1, -1, 40]]))
    >>> result = lrlab.sweep.SweepResult({"lr": lr}, np.array([0]), history)
    >>> best = result.best()
    >>> best["index"], best["value"], best["hyperparameters"]
    (1, 0.9, {'lr': 0.1})
    >>> result.divergence_threshold()
    1.0
  """

  grid: dict[str, np.ndarray]
  seeds: np.ndarray
  history: train.History
  config: dict = dataclasses.field(default_factory=dict)
  metadata: dict = dataclasses.field(default_factory=dict)

  def __post_init__(self):
    grid = grids.check_grid(self.grid, "grid")
    arguments.check_axis_names(grid)
    seeds = np.asarray(self.seeds)
    if seeds.ndim != 1 or seeds.size == 0 or seeds.dtype.kind not in "iu":
      raise ValueError(f"seeds must be a non-empty 1-D integer array; got {self.seeds!r}.")
    history = metrics.check_history(self.history, len(seeds), len(next(iter(grid.values()))))
    target = self.config.get("target") if isinstance(self.config, Mapping) else None
    if target is not None:
      if not isinstance(target, Mapping) or set(target) != {"metric", "value"}:
        raise ValueError(f"config['target'] must be None or {{'metric', 'value'}}; got {target!r}.")
      arguments.check_target((target["metric"], target["value"]))  # as the sweep checks it
    object.__setattr__(self, "grid", grid)
    object.__setattr__(self, "seeds", seeds)
    object.__setattr__(self, "history", history)
    object.__setattr__(self, "config", storage.normal_json("config", self.config))
    object.__setattr__(self, "metadata", storage.normal_json("metadata", self.metadata))

  def __eq__(self, other: object) -> bool:
    if not isinstance(other, SweepResult):
      return NotImplemented

    def same(a: np.ndarray, b: np.ndarray) -> bool:
      nan = a.dtype.kind == "f"
      return a.dtype == b.dtype and a.shape == b.shape and np.array_equal(a, b, equal_nan=nan)

    return (
      list(self.grid) == list(other.grid)
      and all(same(self.grid[k], other.grid[k]) for k in self.grid)
      and same(self.seeds, other.seeds)
      and all(same(a, b) for a, b in zip(self.history, other.history, strict=True))
      and self.config == other.config
      and self.metadata == other.metadata
    )

  __hash__ = None  # type: ignore[assignment]

  def __repr__(self) -> str:
    task = self.config.get("task", "?")
    return (
      f"SweepResult(task={task!r}, members={self.num_members}, seeds={self.num_seeds}, "
      f"axes={list(self.grid)}, evals={self.history.step.shape[-1]})"
    )

  @property
  def num_seeds(self) -> int:
    """``S``, the number of seeds."""
    return len(self.seeds)

  @property
  def num_members(self) -> int:
    """``K``, the number of grid members."""
    return len(next(iter(self.grid.values())))

  @property
  def has_accuracy(self) -> bool:
    """Whether the task reports accuracy (a classification task)."""
    return bool(np.any(np.isfinite(self.history.val_accuracy)))

  def hyperparameters(self, index: int) -> dict[str, float | int]:
    """The grid values of member ``index`` as Python numbers."""
    return grids.member(self.grid, index)

  def _metric_name(self, metric: str | None) -> str:
    if metric is None:
      return "final_val_accuracy" if self.has_accuracy else "final_val_loss"
    _checks.check_choice("metric", metric, SUMMARY_METRICS)
    return metric

  def _axis_name(self, axis: str | None) -> str:
    if axis is None:
      return "lr" if "lr" in self.grid else next(iter(self.grid))
    _checks.check_choice("axis", axis, tuple(self.grid))
    return axis

  def target(self) -> dict[str, Any]:
    """The target of ``steps_to_target``: ``config["target"]``, or a default.

    The default, when the config has no target: for a classification task,
    ``val_accuracy >= 0.95 * A`` with ``A`` the best seed-mean
    ``final_val_accuracy`` of the sweep; for a regression task, ``val_loss <=
    L + 0.1 * |L|`` (within 10% above) with ``L`` the best seed-mean
    ``final_val_loss``. If every run diverged the default value is NaN (never met).

    Returns:
      ``{"metric": ..., "value": ..., "default": bool}``.
    """
    return metrics.target(self)

  def metric(self, metric: str, *, diverged_as_worst: bool = True) -> np.ndarray:
    """One summary number per run, ``(S, K)`` float64.

    - ``final_<m>``: ``m`` at the last evaluation; ``best_<m>``: its minimum
      over evaluations for a loss, maximum for an accuracy (NaN ignored).
    - ``test_loss_at_best_val``: test loss at the first evaluation of minimal
      val loss; ``test_accuracy_at_best_val``: test accuracy at the first
      evaluation of maximal val accuracy (early stopping on the matching
      validation metric; NaN where that metric is NaN at every evaluation, as for a
      task without accuracy).
    - ``steps_to_target``: :func:`lrlab.train.steps_to_target` with
      :meth:`target` (``inf`` when not reached).

    Args:
      metric: one of :data:`SUMMARY_METRICS`.
      diverged_as_worst: count diverged runs as the worst value (the module's
        conventions; NaN accuracies of a task without accuracy stay NaN).

    Returns:
      A ``(S, K)`` float64 array.
    """
    metric = self._metric_name(metric)
    target = self.target() if metric == "steps_to_target" else None
    return metrics.summarize(self.history, metric, target, diverged_as_worst=diverged_as_worst)

  def seed_mean(self, metric: str) -> np.ndarray:
    """``(K,)`` mean over seeds of :meth:`metric` (diverged runs count as the worst value).

    Example:
      >>> result = lrlab.sweep.result._example()
      >>> result.seed_mean("final_val_accuracy").round(3).tolist()
      [0.5, 0.8, 0.15]
    """
    return np.mean(self.metric(metric), axis=0)

  def seed_std(self, metric: str) -> np.ndarray:
    """``(K,)`` standard deviation over seeds (``ddof=0``) of :meth:`metric`.

    Diverged runs count as the worst value, so a loss std is NaN for a member
    with a diverged seed (``inf - inf``); with one seed it is 0.
    """
    with np.errstate(invalid="ignore"):
      return np.std(self.metric(metric), axis=0)

  def line(self, index: int, axis: str | None = None) -> np.ndarray:
    """The members on the line through member ``index`` along ``axis``, sorted by ``axis``.

    They agree with member ``index`` on every axis that forms a product with
    ``axis`` (:func:`~lrlab.sweep.lines.product_axes`): on a product grid, the
    slice through it; along a zipped or random-search grid, every member.
    Equal ``axis`` values keep their order. :meth:`usable_range`,
    :meth:`divergence_threshold`, :meth:`edge_warning` and the plots read it.

    Args:
      index: a member, ``0 <= index < K``.
      axis: the grid axis (default ``"lr"`` if present, else the first axis).

    Returns:
      A 1-D int array of member indices, member ``index`` among them.
    """
    k = self.num_members
    if isinstance(index, bool) or not isinstance(index, int | np.integer) or not 0 <= index < k:
      raise ValueError(f"index must be an integer in [0, {k - 1}]; got {index!r}.")
    return lines.members_on_line(self.grid, int(index), self._axis_name(axis))

  def best(self, metric: str | None = None, *, warn: bool = True) -> dict[str, Any]:
    """The member with the best seed-mean ``metric`` (the first one on ties).

    Warns with :class:`~lrlab.sweep.GridEdgeWarning` for every axis along which
    the best member sits on the edge of the grid (see :meth:`edge_warning`).

    Args:
      metric: one of :data:`SUMMARY_METRICS` (default: ``final_val_accuracy``,
        or ``final_val_loss`` for a task without accuracy).
      warn: issue the edge warnings.

    Returns:
      ``{"index", "metric", "value", "std", "hyperparameters"}``: the value is
      the seed mean, ``std`` its spread over seeds.

    Example:
      >>> result = lrlab.sweep.result._example()
      >>> result.best("final_val_accuracy")["hyperparameters"]
      {'lr': 0.1}
    """
    return answers.best(self, metric, warn=warn)

  def edge_warning(self, metric: str | None = None, axis: str | None = None) -> str | None:
    """A message if the best member is at the lowest or highest ``axis`` value of its line, else
    ``None``; the rule and its advice: :func:`lrlab.sweep.answers.edge_warning`.

    Args:
      metric: the metric of :meth:`best` (same default).
      axis: the grid axis (default ``"lr"`` if present, else the first axis).

    Example:
      >>> print(lrlab.sweep.result._example().edge_warning())
      None
    """
    return answers.edge_warning(self, metric, axis)

  def cross_validated(self) -> "SweepResult":
    """The k-fold sweep with its ``"fold"`` axis moved into the replicate axis.

    A sweep run with ``folds=k`` has a grid axis ``"fold"`` that varies fastest.
    Here every setting keeps one member and its ``S`` seeds become ``S * k``
    replicates (seed ``s``, fold ``f`` is replicate ``s * k + f``). So
    :meth:`seed_mean`, :meth:`best`, :meth:`usable_range` and the plots give
    cross-validated estimates: means over folds (and seeds), with the spread
    over folds as the band.

    Returns:
      A new :class:`SweepResult` whose config records ``cross_validated = k``.

    Raises:
      ValueError: the grid has no ``"fold"`` axis, or not the layout ``run`` gives it.
    """
    return folds.cross_validated(self)

  def usable_range(
    self, metric: str | None = None, tolerance: float = 0.05, axis: str | None = None
  ) -> tuple[float, float]:
    """The contiguous interval of ``axis`` around the best member that is within ``tolerance``.

    The rule (absolute for accuracies, relative for losses; a diverged member
    ends the interval): :func:`lrlab.sweep.answers.usable_range`.

    Args:
      metric: the metric (default as in :meth:`best`).
      tolerance: >= 0; 0.05 is 5 accuracy points, or 5% above the best loss.
      axis: the grid axis (default ``"lr"`` if present, else the first axis).

    Returns:
      ``(lo, hi)`` values of ``axis``; ``(nan, nan)`` if the best member
      diverged in every seed or its value is not finite.

    Example:
      >>> result = lrlab.sweep.result._example()
      >>> result.usable_range("final_val_accuracy", tolerance=0.35)
      (0.01, 0.1)
    """
    return answers.usable_range(self, metric, tolerance, axis)

  def divergence_threshold(
    self, axis: str | None = None, metric: str | None = None
  ) -> float | int | None:
    """The smallest ``axis`` value at which a member of the :meth:`line` through the best member
    by ``metric`` diverged in any seed: for a learning rate, "diverges from this rate on".

    Args:
      axis: the grid axis (default ``"lr"`` if present, else the first axis).
      metric: the metric that picks the best member (default as in :meth:`best`).

    Returns:
      The value, or ``None`` if no member of the slice diverged.
    """
    return answers.divergence_threshold(self, axis, metric)

  def table(self) -> list[dict[str, Any]]:
    """One row per run, seeds outer and members inner: the raw measurements.

    Each row has ``member``, ``seed``, the member's hyperparameters, then
    :data:`~lrlab.sweep.metrics.TABLE_COLUMNS` as in :meth:`metric`, diverged runs not replaced.

    Returns:
      A list of ``S * K`` dicts of Python numbers.
    """
    return storage.table(self)

  def to_csv(self, path: str | os.PathLike) -> Path:
    """Write :meth:`table` as CSV (written atomically); returns the path."""
    return storage.write_csv(self.table(), path)

  def summary_dict(self, metric: str | None = None, tolerance: float = 0.05) -> dict[str, Any]:
    """The answers of the sweep as a JSON-ready dict: :func:`lrlab.sweep.summary.as_dict`."""
    return summary.as_dict(self, metric, tolerance)

  def summary(self, metric: str | None = None, tolerance: float = 0.05) -> str:
    """A few lines for a person: best setting, usable range, divergence, accuracy, failures.

    Example:
      >>> print(lrlab.sweep.result._example().summary())
      Sweep of 3 members x 2 seeds on 'toy' (axes: lr).
      Best lr = 0.1: final_val_accuracy = 0.8 ± 0.1 (seed mean ± std).
      Usable range (final_val_accuracy within 0.05 of the best, absolute): lr in [0.1, 0.1].
      Diverges at lr >= 1 (any seed, slice through the best member).
      Best final val accuracy: 0.8 (seed mean).
      Diverged runs: 1 of 6 (1 of 3 members in at least one seed).
    """
    return summary.text(self, metric, tolerance)

  def save(
    self, directory: str | os.PathLike, *, metric: str | None = None, tolerance: float = 0.05
  ) -> Path:
    """Write ``results.csv``, ``curves.npz`` and ``sweep.json`` into ``directory``, atomically.

    ``sweep.json`` is written last and holds the grid, seeds, config, metadata,
    the SHA-256 of the other two files and ``summary_dict(metric, tolerance)``;
    see :mod:`lrlab.sweep.storage`. Pass the ``metric`` and ``tolerance`` of
    the :meth:`summary` you print, and of :func:`~lrlab.sweep.plot_all`.

    Args:
      directory: the folder (created if needed).
      metric: the metric of the stored summary (default as in :meth:`best`).
      tolerance: the tolerance of the stored usable range (see :meth:`usable_range`).

    Returns:
      The folder, as a ``Path``.
    """
    return storage.save(self, directory, metric=metric, tolerance=tolerance)

  @classmethod
  def load(cls, directory: str | os.PathLike) -> "SweepResult":
    """Read a result written by :meth:`save`; ``load(r.save(d)) == r``.

    Raises:
      ValueError: the folder holds no saved sweep; ``sweep.json`` is not valid
        or of an unknown format; or a file does not match ``sweep.json``
        because an overwrite was interrupted ("save again"). See
        :func:`lrlab.sweep.storage.load`.
    """
    return storage.load(cls, directory)


def _example() -> SweepResult:
  """A tiny hand-made result for the docstring examples: 3 learning rates, 2 seeds."""
  final = np.array([[0.4, 0.9, 0.5], [0.6, 0.7, 0.3]])  # (S, K); member 2 diverges in seed 0
  acc = np.stack([np.full_like(final, 0.1), final], axis=-1)
  history = train.History(
    step=np.array([0, 10]),
    train_loss=1 - acc,
    val_loss=1 - acc,
    val_accuracy=acc,
    test_loss=1 - acc,
    test_accuracy=acc,
    learning_rate=np.broadcast_to(np.array([0.01, 0.1, 1.0])[:, None], (2, 3, 10)),
    diverged=np.array([[False, False, True], [False, False, False]]),
    diverged_step=np.array([[-1, -1, 5], [-1, -1, -1]]),
  )
  return SweepResult({"lr": np.array([0.01, 0.1, 1.0])}, np.array([0, 1]), history, {"task": "toy"})
