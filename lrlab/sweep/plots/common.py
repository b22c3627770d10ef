"""What every figure of a sweep shares: the check of its argument, axis scales, a title that
says what was trained, and an atomic write."""

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.figure import Figure

from lrlab.sweep import storage
from lrlab.sweep.result import SweepResult


def check_result(result: SweepResult) -> None:
  """Raises a one-line ``ValueError`` unless ``result`` is a :class:`lrlab.sweep.SweepResult`."""
  if not isinstance(result, SweepResult):
    raise ValueError(f"result must be an lrlab.sweep.SweepResult; got {type(result)}.")


def log_axis(values: np.ndarray) -> bool:
  """Log scale for positive values spanning at least a factor of 10."""
  values = np.asarray(values, np.float64)
  values = values[np.isfinite(values)]
  return values.size > 1 and bool(np.all(values > 0)) and values.max() >= 10 * values.min()


def finite(values: np.ndarray) -> np.ndarray:
  """``values`` with every non-finite entry (a diverged member's inf or nan) as nan, which
  matplotlib leaves out of a line or a colour map."""
  return np.where(np.isfinite(values), values, np.nan)


def save(figure: Figure, path: str | os.PathLike) -> Figure:
  """Render ``figure`` into ``path`` atomically (a temporary file, then ``os.replace``)."""
  path = Path(path)
  path.parent.mkdir(parents=True, exist_ok=True)
  kind = path.suffix.lstrip(".").lower() or "png"
  storage.atomic_write(path, lambda file: figure.savefig(file, dpi=120, format=kind), binary=True)
  return figure


def number(value: Any) -> str:
  """A float to 3 significant digits (``0.00316``, ``1e-05``); anything else, an integer axis's
  value included, as ``str`` (``1024``, never ``1.02e+03``)."""
  return f"{value:.3g}" if isinstance(value, float) else str(value)


def arguments(values: Mapping[str, Any]) -> str:
  """`` (a=1, b=0.9)`` for the scalar entries of ``values`` (``""`` when there are none)."""
  shown = {k: v for k, v in values.items() if isinstance(v, int | float | str | bool)}
  return f" ({', '.join(f'{k}={number(v)}' for k, v in shown.items())})" if shown else ""


def describe_config(config: Mapping[str, Any]) -> str:
  """What was trained, from a result's config, for a figure's subtitle ("" if unknown).

  Reads ``config["tx"]``: a string (shown as is) or a dict with the optimizer
  under ``"optimizer"`` (or ``"name"``), the schedule under ``"schedule"`` (a
  name, or a dict with a ``"name"`` and its arguments) and the optimizer's
  fixed arguments as the other scalar entries; then ``config["schedule"]``
  when ``tx`` has none, ``"steps"``, ``"batch_size"`` (``None`` is full
  batch) and ``"cross_validated"`` (k folds). For example
  ``{"tx": {"optimizer": "sgd", "momentum": 0.9, "schedule": "cosine"},
  "steps": 400, "batch_size": None}`` gives ``"sgd (momentum=0.9), cosine
  schedule, 400 steps, full batch"``.
  """
  parts = []
  tx = config.get("tx")
  schedule = config.get("schedule")
  if isinstance(tx, str) and tx:
    parts.append(tx)
  elif isinstance(tx, Mapping):
    name = tx.get("optimizer", tx.get("name"))
    args = {k: v for k, v in tx.items() if k not in ("optimizer", "name", "schedule")}
    parts.append(f"{name or 'optimizer'}{arguments(args)}")
    schedule = tx.get("schedule", schedule)
  if isinstance(schedule, Mapping):
    args = {k: v for k, v in schedule.items() if k != "name"}
    schedule = f"{schedule.get('name', '')}{arguments(args)}".strip()
  if isinstance(schedule, str) and schedule:
    parts.append(f"{schedule} schedule")
  if isinstance(config.get("steps"), int):
    parts.append(f"{config['steps']} steps")
  if "batch_size" in config:
    size = config["batch_size"]
    parts.append("full batch" if size is None else f"batch {size}")
  if isinstance(config.get("cross_validated"), int):
    parts.append(f"{config['cross_validated']}-fold cross-validated")
  return ", ".join(parts)


def title_of(result: SweepResult, what: str) -> str:
  """``"<task>: <what>"``, with a second line describing the training when the config can."""
  line = f"{result.config.get('task', 'sweep')}: {what}"
  details = describe_config(result.config)
  return f"{line}\n{details}" if details else line


def limits(values: np.ndarray, log: bool) -> tuple[float, float] | None:
  """y limits holding the finite ``values`` with a 5% margin, or ``None`` when there are none."""
  values = values[np.isfinite(values)]
  if log:
    values = values[values > 0]
  if values.size == 0:
    return None
  lo, hi = float(values.min()), float(values.max())
  if log:
    margin = (hi / lo) ** 0.05 if hi > lo else 1.1
    return lo / margin, hi * margin
  margin = 0.05 * (hi - lo) if hi > lo else 0.05 * max(abs(hi), 1.0)
  return lo - margin, hi + margin
