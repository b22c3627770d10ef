"""A sweep's answers in a few lines for a person (:meth:`lrlab.sweep.SweepResult.summary`)."""

from typing import Any

import numpy as np

from lrlab.sweep.metrics import higher_is_better


def text(result: Any, metric: str | None = None, tolerance: float = 0.05) -> str:
  """Best setting, usable range, divergence, headline metric and failures of ``result``.

  Reads ``result.summary_dict(metric, tolerance)``; see
  :meth:`lrlab.sweep.SweepResult.summary` for an example.
  """
  d = result.summary_dict(metric, tolerance)
  metric, axis, best = d["metric"], d["axis"], d["best"]
  others = {k: v for k, v in best["hyperparameters"].items() if k != axis}
  fixed = f" ({', '.join(f'{k}={v:.4g}' for k, v in others.items())})" if others else ""
  semantics = "absolute" if higher_is_better(metric) else "relative"
  usable = d["usable_range"]
  threshold = d["divergence_threshold"]
  value = lambda v: "nan" if v is None else f"{v:.4g}"
  seeds = result.num_seeds
  lines = [
    f"Sweep of {result.num_members} members x {seeds} seed{'s' * (seeds > 1)} on "
    f"{result.config.get('task', '?')!r} (axes: {', '.join(result.grid)}).",
    f"Best {axis} = {best['hyperparameters'][axis]:.4g}{fixed}: {metric} = "
    f"{value(best['value'])} ± {value(best['std'])} (seed mean ± std).",
    f"Usable range ({metric} within {tolerance:g} of the best, {semantics}): "
    + (f"{axis} in [{usable[0]:.4g}, {usable[1]:.4g}]." if usable else "none."),
    "No member diverged along the slice through the best member."
    if threshold is None
    else f"Diverges at {axis} >= {threshold:.4g} (any seed, slice through the best member).",
  ]
  headline = "final_val_accuracy" if result.has_accuracy else "final_val_loss"
  means = result.seed_mean(headline)
  top = np.max(means) if result.has_accuracy else np.min(means)
  lines.append(f"Best {headline.replace('_', ' ')}: {top:.4g} (seed mean).")
  members = int(np.sum(np.any(result.history.diverged, axis=0)))
  lines.append(
    f"Diverged runs: {d['diverged_runs']} of {d['runs']} "
    f"({members} of {result.num_members} members in at least one seed)."
  )
  lines.extend(f"Warning: {message}" for message in d["edge_warnings"])
  return "\n".join(lines)
