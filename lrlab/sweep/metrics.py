"""Per-run summaries of a sweep's curves: one number per (seed, member).

Final and best values of every evaluated metric, test metrics at the best
validation point (early stopping), and steps to a target; a diverged run can
be counted as the worst value so it never looks good in a mean.

Conventions for the summaries:

- A **diverged** run (flagged by the training loop) counts as the worst value
  of the metric: ``inf`` for losses and ``steps_to_target``, ``0`` for
  accuracies. So one diverged seed makes a member's seed-mean loss ``inf`` (and
  its seed std NaN) and pulls its seed-mean accuracy towards 0.
  :meth:`lrlab.sweep.SweepResult.table` reports the raw measurements with a ``diverged``
  column instead.
- **Direction**: a metric containing ``"accuracy"`` is better higher; losses
  and ``steps_to_target`` are better lower.
- The **default metric** is ``final_val_accuracy`` when the task reports
  accuracy, else ``final_val_loss``; the **default axis** is ``"lr"`` when the
  grid has it, else the grid's first axis.
"""

import contextlib
from typing import Any

import numpy as np

from lrlab import train

SUMMARY_METRICS = (
  *(f"{when}_{m}" for m in train.METRICS for when in ("final", "best")),
  "test_loss_at_best_val",
  "test_accuracy_at_best_val",
  "steps_to_target",
)
"""Per-run summaries accepted by :meth:`SweepResult.metric` and the methods built on it."""

TABLE_COLUMNS = (
  "final_val_loss",
  "best_val_loss",
  "final_val_accuracy",
  "best_val_accuracy",
  "test_loss_at_best_val",
  "test_accuracy_at_best_val",
  "steps_to_target",
  "diverged",
  "diverged_step",
)
"""Measurement columns of :meth:`SweepResult.table`, after ``member``, ``seed`` and the grid."""


def higher_is_better(metric: str) -> bool:
  """True for accuracies; losses and ``steps_to_target`` are better lower."""
  return "accuracy" in metric


def _extreme(values: np.ndarray, *, largest: bool) -> np.ndarray:
  """Max (or min) over the last axis ignoring NaN; NaN where every value is NaN."""
  fill = -np.inf if largest else np.inf
  filled = np.where(np.isnan(values), fill, values)
  out = filled.max(axis=-1) if largest else filled.min(axis=-1)
  return np.where(np.all(np.isnan(values), axis=-1), np.nan, out)


def _at_best(select: np.ndarray, report: np.ndarray, *, largest: bool) -> np.ndarray:
  """``report`` at the first evaluation point where ``select`` is best (NaN ignored); NaN where
  every ``select`` is NaN (no best point: not the first evaluation's ``report``)."""
  fill = -np.inf if largest else np.inf
  filled = np.where(np.isnan(select), fill, select)
  index = filled.argmax(axis=-1) if largest else filled.argmin(axis=-1)
  picked = np.take_along_axis(np.asarray(report, np.float64), index[..., None], axis=-1)[..., 0]
  return np.where(np.all(np.isnan(select), axis=-1), np.nan, picked)


def summarize(
  history: train.History,
  metric: str,
  target: dict[str, Any] | None = None,
  *,
  diverged_as_worst: bool = True,
) -> np.ndarray:
  """One ``metric`` of :data:`SUMMARY_METRICS` per run, float64 with the history's lead axes.

  See :meth:`lrlab.sweep.SweepResult.metric` for the definitions; ``target``
  (``{"metric": ..., "value": ...}``) is needed for ``steps_to_target``.
  """
  h = history
  if metric == "steps_to_target":
    raw = np.asarray(train.steps_to_target(h, target["metric"], target["value"]), np.float64)
  elif metric == "test_loss_at_best_val":
    raw = _at_best(h.val_loss, h.test_loss, largest=False)
  elif metric == "test_accuracy_at_best_val":
    raw = _at_best(h.val_accuracy, h.test_accuracy, largest=True)
  else:
    when, name = metric.split("_", 1)
    values = getattr(h, name)
    raw = values[..., -1] if when == "final" else _extreme(values, largest="accuracy" in name)
  raw = np.asarray(raw, np.float64)
  if not diverged_as_worst:
    return raw
  if higher_is_better(metric):
    return np.where(h.diverged & ~np.isnan(raw), 0.0, raw)
  return np.where(h.diverged | np.isnan(raw), np.inf, raw)


def check_history(history: Any, num_seeds: int, num_members: int) -> train.History:
  """``history`` as NumPy arrays, checked to be the curves of ``num_seeds`` x ``num_members`` runs.

  The per-evaluation fields must be ``(S, K, E)`` with ``E >= 1`` (an integer
  ``step`` of shape ``(E,)`` is broadcast to it), ``learning_rate`` ``(S, K,
  steps)``, ``diverged`` ``(S, K)`` bool and ``diverged_step`` ``(S, K)``.

  Raises:
    ValueError: naming the first field that does not fit.
  """
  if not isinstance(history, train.History):
    raise ValueError(f"history must be an lrlab.train.History; got {type(history)}.")
  lead = (num_seeds, num_members)
  fields = {name: np.asarray(value) for name, value in history._asdict().items()}
  num_evals = fields["val_loss"].shape[-1] if fields["val_loss"].ndim else 0
  if num_evals == 0:
    raise ValueError(
      f"history.val_loss must have shape {(*lead, 'E')} with at least one evaluation (E >= 1) "
      f"for {num_seeds} seeds and {num_members} members; got {fields['val_loss'].shape}."
    )
  if fields["step"].dtype.kind not in "iu":
    raise ValueError(f"history.step must be integer; got dtype {fields['step'].dtype}.")
  with contextlib.suppress(ValueError):
    fields["step"] = np.broadcast_to(fields["step"], (*lead, num_evals)).copy()
  expected = {name: (*lead, num_evals) for name in ("step", *train.METRICS)}
  expected.update(diverged=lead, diverged_step=lead)
  for name, shape in expected.items():
    if fields[name].shape != shape:
      raise ValueError(
        f"history.{name} must have shape {shape} (seeds, members{', evals' * (len(shape) > 2)}) "
        f"for {num_seeds} seeds and {num_members} members; got {fields[name].shape}."
      )
  if fields["learning_rate"].shape[:2] != lead or fields["learning_rate"].ndim != 3:
    raise ValueError(
      f"history.learning_rate must have shape {(*lead, 'steps')}; "
      f"got {fields['learning_rate'].shape}."
    )
  if fields["diverged"].dtype != bool:
    raise ValueError(f"history.diverged must be bool; got dtype {fields['diverged'].dtype}.")
  return train.History(**fields)


def target(result: Any) -> dict[str, Any]:
  """The target of ``steps_to_target``: see :meth:`lrlab.sweep.SweepResult.target`."""
  if result.config.get("target") is not None:
    return {**result.config["target"], "default": False}
  if result.has_accuracy:
    means = result.seed_mean("final_val_accuracy")  # all NaN if no member finished every seed
    best = np.nanmax(means) if np.isfinite(means).any() else np.nan
    metric, value = "val_accuracy", 0.95 * best
  else:
    best = np.min(result.seed_mean("final_val_loss"))
    metric, value = "val_loss", best + 0.1 * abs(best)
  if np.all(result.history.diverged) or not np.isfinite(value):
    value = np.nan
  return {"metric": metric, "value": float(value), "default": True}
