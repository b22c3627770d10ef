"""What a sweep measured, as plain NumPy, and the answers drawn from it.

A :class:`SweepResult` holds the grid of ``K`` members, the ``S`` seeds, and one
:class:`lrlab.train.History` whose fields all lead with ``(S, K)``. From these it
derives per-run summaries (:data:`SUMMARY_METRICS`), their mean over seeds, and
the answers a sweep is run for: the best setting, the usable range around it,
where training diverges, and whether the grid was wide enough. It saves to, and
loads from, plain files (CSV, NPZ, JSON), so figures and tables can be remade
without re-training.

Conventions for the summaries:

- A **diverged** run (flagged by the training loop) counts as the worst value
  of the metric: ``inf`` for losses and ``steps_to_target``, ``0`` for
  accuracies. So one diverged seed makes a member's seed-mean loss ``inf`` (and
  its seed std NaN) and pulls its seed-mean accuracy towards 0.
  :meth:`SweepResult.table` reports the raw measurements with a ``diverged``
  column instead.
- **Direction**: a metric containing ``"accuracy"`` is better higher; losses
  and ``steps_to_target`` are better lower.
- The **default metric** is ``final_val_accuracy`` when the task reports
  accuracy, else ``final_val_loss``; the **default axis** is ``"lr"`` when the
  grid has it, else the grid's first axis.
"""

import dataclasses
import os
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from lrlab import _checks, train
from lrlab.sweep import grids, lines, metrics, storage, summary
from lrlab.sweep.lines import product_axes as product_axes
from lrlab.sweep.metrics import SUMMARY_METRICS as SUMMARY_METRICS
from lrlab.sweep.metrics import TABLE_COLUMNS as TABLE_COLUMNS
from lrlab.sweep.metrics import higher_is_better as higher_is_better
from lrlab.sweep.storage import FILES as FILES
from lrlab.sweep.storage import environment_metadata as environment_metadata


class GridEdgeWarning(UserWarning):
  """The best setting lies on the edge of the grid: the optimum may lie outside it."""


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
    reserved = sorted(set(grid) & {"member", "seed", *TABLE_COLUMNS})
    if reserved:
      raise ValueError(f"grid names must differ from the table's columns; got {reserved}.")
    seeds = np.asarray(self.seeds)
    if seeds.ndim != 1 or seeds.size == 0 or seeds.dtype.kind not in "iu":
      raise ValueError(f"seeds must be a non-empty 1-D integer array; got {self.seeds!r}.")
    history = metrics.check_history(self.history, len(seeds), len(next(iter(grid.values()))))
    target = self.config.get("target") if isinstance(self.config, Mapping) else None
    if target is not None:
      if not isinstance(target, Mapping) or set(target) != {"metric", "value"}:
        raise ValueError(f"config['target'] must be None or {{'metric', 'value'}}; got {target!r}.")
      _checks.check_choice("config['target']['metric']", target["metric"], train.METRICS)
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
    if self.config.get("target") is not None:
      return {**self.config["target"], "default": False}
    if self.has_accuracy:
      metric, value = "val_accuracy", 0.95 * np.nanmax(self.seed_mean("final_val_accuracy"))
    else:
      best = np.min(self.seed_mean("final_val_loss"))
      metric, value = "val_loss", best + 0.1 * abs(best)
    if np.all(self.history.diverged) or not np.isfinite(value):
      value = np.nan
    return {"metric": metric, "value": float(value), "default": True}

  def metric(self, metric: str, *, diverged_as_worst: bool = True) -> np.ndarray:
    """One summary number per run, ``(S, K)`` float64.

    - ``final_<m>``: ``m`` at the last evaluation; ``best_<m>``: its minimum
      over evaluations for a loss, maximum for an accuracy (NaN ignored).
    - ``test_loss_at_best_val``: test loss at the first evaluation of minimal
      val loss; ``test_accuracy_at_best_val``: test accuracy at the first
      evaluation of maximal val accuracy (early stopping on the matching
      validation metric; NaN for a task without accuracy).
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

  def _best(self, metric: str) -> tuple[int, float]:
    means = self.seed_mean(metric)
    if np.all(np.isnan(means)):
      raise ValueError(
        f"metric {metric!r} is NaN for every member (a task without accuracy?); "
        f"use a loss metric such as 'final_val_loss'."
      )
    if higher_is_better(metric):
      index = int(np.argmax(np.where(np.isnan(means), -np.inf, means)))
    else:
      index = int(np.argmin(np.where(np.isnan(means), np.inf, means)))
    return index, float(means[index])

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
    return lines.members_on_line(self.grid, index, self._axis_name(axis))

  def best(self, metric: str | None = None, *, warn: bool = True) -> dict[str, Any]:
    """The member with the best seed-mean ``metric`` (the first one on ties).

    Warns with :class:`GridEdgeWarning` for every axis along which the best
    member sits on the edge of the grid (see :meth:`edge_warning`).

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
    metric = self._metric_name(metric)
    index, value = self._best(metric)
    if warn:
      for axis in self.grid:
        message = self.edge_warning(metric, axis)
        if message is not None:
          warnings.warn(message, GridEdgeWarning, stacklevel=2)
    return {
      "index": index,
      "metric": metric,
      "value": value,
      "std": float(self.seed_std(metric)[index]),
      "hyperparameters": self.hyperparameters(index),
    }

  def edge_warning(self, metric: str | None = None, axis: str | None = None) -> str | None:
    """A message if the best member is at the lowest or highest ``axis`` value of its line.

    The line is :meth:`line` through the best member: on a product grid, the
    members whose other hyperparameters equal the best member's; along axes
    that are zipped or drawn at random together (not a product), every such
    member, so the edge is the axis's own extreme over them. Following
    Google's tuning playbook, a best value on the edge of the searched range
    means the grid should be widened beyond that edge. When an inner member of
    the line ties the best value exactly (``axis`` has no effect there), the
    best is not on the edge.

    The message says what to add (:func:`~lrlab.sweep.lines.widening_advice`):
    values beyond the edge, or closer to 1 for a fraction bounded by 1.

    Args:
      metric: the metric of :meth:`best` (same default).
      axis: the grid axis (default ``"lr"`` if present, else the first axis).

    Returns:
      The message, or ``None`` when the best is inside the grid, ties an
      inner member, the line has a single value of ``axis``, or ``axis`` is
      ``"fold"`` (cross-validation folds are replicates, not a range).

    Example:
      >>> print(lrlab.sweep.result._example().edge_warning())
      None
    """
    metric, axis = self._metric_name(metric), self._axis_name(axis)
    if axis == "fold":  # cross-validation folds are replicates, not a range to widen
      return None
    index, value = self._best(metric)
    members = self.line(index, axis)
    values = np.unique(self.grid[axis][members])
    ties = self.grid[axis][members[self.seed_mean(metric)[members] == value]]
    where = self.grid[axis][index]
    if len(values) < 2 or np.any((values[0] < ties) & (ties < values[-1])):
      return None
    side = "lowest" if where == values[0] else "highest"
    advice = lines.widening_advice(axis, values, where)
    return (
      f"The best {metric} ({value:.4g}) is at the {side} value of {axis!r} in the grid "
      f"({axis}={where:.4g}; the grid spans {values[0]:.4g} to {values[-1]:.4g}): the optimum "
      f"may lie outside it. {advice} (Google's tuning playbook)."
    )

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
      ValueError: the grid has no ``"fold"`` axis.
    """
    if "fold" not in self.grid:
      raise ValueError(
        f"cross_validated needs a sweep run with folds=; the grid has axes {', '.join(self.grid)}."
      )
    folds = int(np.max(self.grid["fold"])) + 1
    settings = self.num_members // folds

    def regroup(a: np.ndarray) -> np.ndarray:
      a = a.reshape(self.num_seeds, settings, folds, *a.shape[2:])
      return np.swapaxes(a, 1, 2).reshape(self.num_seeds * folds, settings, *a.shape[3:])

    return SweepResult(
      grid={k: v[::folds] for k, v in self.grid.items() if k != "fold"},
      seeds=(np.asarray(self.seeds)[:, None] * folds + np.arange(folds)).ravel(),
      history=train.History(*(regroup(np.asarray(a)) for a in self.history)),
      config={**self.config, "cross_validated": folds},
      metadata=self.metadata,
    )

  def usable_range(
    self, metric: str | None = None, tolerance: float = 0.05, axis: str | None = None
  ) -> tuple[float, float]:
    """The contiguous interval of ``axis`` around the best member that is within ``tolerance``.

    Along the :meth:`line` through the best member, sorted by ``axis`` (on a
    product grid: the slice with the other axes fixed at the best member's
    values), the interval extends from the best member in both directions
    while the seed-mean ``metric`` stays acceptable:

    - accuracy (higher is better), absolute: ``value >= best - tolerance``;
    - loss or steps (lower is better), relative: ``value <= best + tolerance * |best|``
      (``best * (1 + tolerance)`` for a positive best).

    A diverged member counts as the worst value, so it ends the interval.
    On a grid that is not a product along ``axis`` (zipped or random-search
    axes), the line holds members whose other hyperparameters differ, and the
    interval is the run of acceptable members next to the best in order of
    ``axis``, whatever their other values: a range of ``axis`` that worked
    with the values it was paired with.

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
    metric, axis = self._metric_name(metric), self._axis_name(axis)
    _checks.check_nonnegative("tolerance", tolerance)
    index, best = self._best(metric)
    if not np.isfinite(best) or np.all(self.history.diverged[:, index]):
      return (np.nan, np.nan)
    members = self.line(index, axis)
    means = self.seed_mean(metric)[members]
    if higher_is_better(metric):
      ok = means >= best - tolerance
    else:
      ok = means <= best + tolerance * abs(best)
    position = int(np.flatnonzero(members == index)[0])
    lo = hi = position
    while lo > 0 and ok[lo - 1]:
      lo -= 1
    while hi < len(members) - 1 and ok[hi + 1]:
      hi += 1
    values = self.grid[axis][members]
    return (values[lo].item(), values[hi].item())

  def divergence_threshold(
    self, axis: str | None = None, metric: str | None = None
  ) -> float | int | None:
    """The smallest ``axis`` value at which a member diverged in any seed.

    Looked for along the :meth:`line` through the best member by ``metric``
    (on a product grid: its other axes fixed), so for a learning-rate axis:
    "training diverges from this learning rate on".

    Args:
      axis: the grid axis (default ``"lr"`` if present, else the first axis).
      metric: the metric that picks the best member (default as in :meth:`best`).

    Returns:
      The value, or ``None`` if no member of the slice diverged.
    """
    metric, axis = self._metric_name(metric), self._axis_name(axis)
    members = self.line(self._best(metric)[0], axis)
    diverged = np.any(self.history.diverged[:, members], axis=0)
    if not np.any(diverged):
      return None
    return self.grid[axis][members][diverged].min().item()

  def table(self) -> list[dict[str, Any]]:
    """One row per run, seeds outer and members inner: the raw measurements.

    Each row has ``member``, ``seed``, the member's hyperparameters, then
    :data:`TABLE_COLUMNS` as in :meth:`metric`, diverged runs not replaced.

    Returns:
      A list of ``S * K`` dicts of Python numbers.
    """
    columns = {c: self.metric(c, diverged_as_worst=False) for c in TABLE_COLUMNS[:-2]}
    columns["diverged"] = self.history.diverged
    columns["diverged_step"] = self.history.diverged_step
    rows = []
    for s, seed in enumerate(self.seeds.tolist()):
      for k in range(self.num_members):
        row = {"member": k, "seed": seed, **self.hyperparameters(k)}
        row.update({name: values[s, k].item() for name, values in columns.items()})
        rows.append(row)
    return rows

  def to_csv(self, path: str | os.PathLike) -> Path:
    """Write :meth:`table` as CSV (written atomically); returns the path."""
    return storage.write_csv(self.table(), path)

  def summary_dict(self, metric: str | None = None, tolerance: float = 0.05) -> dict[str, Any]:
    """The answers of the sweep as a JSON-ready dict (non-finite numbers become ``None``).

    Keys: ``metric``, ``axis`` (the default axis), ``best`` (as :meth:`best`),
    ``usable_range`` (``[lo, hi]`` or ``None``) with its ``tolerance``,
    ``divergence_threshold``, ``edge_warnings``, ``target``, ``diverged_runs``
    and ``runs``.
    """
    metric, axis = self._metric_name(metric), self._axis_name(None)
    usable = self.usable_range(metric, tolerance, axis)
    return storage.finite_or_none(
      {
        "metric": metric,
        "axis": axis,
        "best": self.best(metric, warn=False),
        "usable_range": list(usable) if np.all(np.isfinite(usable)) else None,
        "tolerance": tolerance,
        "divergence_threshold": self.divergence_threshold(axis, metric),
        "edge_warnings": [m for a in self.grid if (m := self.edge_warning(metric, a))],
        "target": self.target(),
        "diverged_runs": int(np.sum(self.history.diverged)),
        "runs": self.num_seeds * self.num_members,
      }
    )

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
    """Write ``results.csv``, ``curves.npz`` and ``sweep.json`` into ``directory``.

    Each file is written atomically (a temporary file in the same folder,
    fsync, ``os.replace``), ``sweep.json`` last, so a reader never sees a
    half-written file. ``curves.npz`` holds the history fields under their
    names, the grid as ``grid.<name>`` and ``seeds``; ``sweep.json`` holds the
    format (2), the SHA-256 of ``curves.npz`` and ``results.csv``, the grid,
    seeds, config, metadata and ``summary_dict(metric, tolerance)``. If the
    process dies while overwriting an earlier result, :meth:`load` finds the
    files out of step with ``sweep.json`` and raises instead of mixing them.

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

    The files are checked against ``sweep.json`` (its format, its fields and
    the SHA-256 of ``curves.npz`` and ``results.csv``); a folder of format 1,
    written before the checksums, is read with only its grid checked.

    Args:
      directory: the folder holding ``sweep.json``, ``curves.npz`` and ``results.csv``.

    Returns:
      The :class:`SweepResult`.

    Raises:
      ValueError: the folder holds no saved sweep; ``sweep.json`` is not
        valid, names an unknown format or lacks a field; or a file does not
        match ``sweep.json`` because an overwrite was interrupted ("save again").
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
