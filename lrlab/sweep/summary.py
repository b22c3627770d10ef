"""A sweep's answers as a JSON-ready dict (what ``sweep.json`` stores) and as a few lines for a
person (:meth:`lrlab.sweep.SweepResult.summary`); the text is made from the dict, so the two
always agree (where the dict holds ``None`` for a non-finite number, the text shows which)."""

from typing import Any

import numpy as np

from lrlab.sweep import answers, storage
from lrlab.sweep.lines import format_value as shown
from lrlab.sweep.metrics import higher_is_better


def as_dict(result: Any, metric: str | None = None, tolerance: float = 0.05) -> dict[str, Any]:
  """The answers of ``result`` as a JSON-ready dict (non-finite numbers become ``None``).

  Keys: ``metric``, ``axis`` (the default axis), ``best`` (as
  :func:`~lrlab.sweep.answers.best`), ``usable_range`` (``[lo, hi]`` or ``None``)
  with its ``tolerance``, ``divergence_threshold``, ``edge_warnings``,
  ``target``, ``diverged_runs`` and ``runs``.
  """
  metric, axis = result._metric_name(metric), result._axis_name(None)
  tolerance = answers.check_tolerance(tolerance)  # a float: the dict is JSON-ready
  usable = answers.usable_range(result, metric, tolerance, axis)
  return storage.finite_or_none(
    {
      "metric": metric,
      "axis": axis,
      "best": answers.best(result, metric, warn=False),
      "usable_range": list(usable) if np.all(np.isfinite(usable)) else None,
      "tolerance": tolerance,
      "divergence_threshold": answers.divergence_threshold(result, axis, metric),
      "edge_warnings": [m for a in result.grid if (m := answers.edge_warning(result, metric, a))],
      "target": result.target(),
      "diverged_runs": int(np.sum(result.history.diverged)),
      "runs": result.num_seeds * result.num_members,
    }
  )


def text(result: Any, metric: str | None = None, tolerance: float = 0.05) -> str:
  """Best setting, usable range, divergence, headline metric and failures of ``result``.

  Reads :func:`as_dict` (and the best member's seed mean and std themselves, which the dict
  holds as ``None`` when not finite: an ``inf`` loss mean is shown as ``inf``); see
  :meth:`lrlab.sweep.SweepResult.summary` for an example.
  """
  d = as_dict(result, metric, tolerance)
  metric, axis, best = d["metric"], d["axis"], d["best"]
  # The dict holds None for a non-finite number; the text shows which (a loss mean of inf).
  exact = answers.best(result, metric, warn=False)
  others = {k: v for k, v in best["hyperparameters"].items() if k != axis}
  fixed = f" ({', '.join(f'{k}={shown(v)}' for k, v in others.items())})" if others else ""
  semantics = "absolute" if higher_is_better(metric) else "relative"
  usable = d["usable_range"]
  threshold = d["divergence_threshold"]
  seeds = result.num_seeds
  if result.history.diverged.all():  # no setting trained: best() would only name the first
    runs = f"all {d['runs']} runs" if d["runs"] > 1 else "the one run"
    best_line = f"Best {axis}: none, {runs} diverged (no setting of this grid trains)."
  elif metric == "steps_to_target" and not np.isfinite(exact["value"]):  # argmin named the first
    goal = d["target"]
    sign = ">=" if goal["metric"].endswith("accuracy") else "<="
    best_line = (
      f"Best {axis}: none, no member reached the target ({goal['metric']} {sign} "
      f"{goal['value']:.4g}) in every seed (steps_to_target is inf for every member)."
    )
  else:  # one seed has no spread: "± 0" read like a measurement
    spread = f" ± {exact['std']:.4g} (seed mean ± std)" if seeds > 1 else " (one seed)"
    best_line = (
      f"Best {axis} = {shown(best['hyperparameters'][axis])}{fixed}: {metric} = "
      f"{exact['value']:.4g}{spread}."
    )
  lines = [
    f"Sweep of {result.num_members} members x {seeds} seed{'s' * (seeds > 1)} on "
    f"{result.config.get('task', '?')!r} (axes: {', '.join(result.grid)}).",
    best_line,
    f"Usable range ({metric} within {tolerance:g} of the best, {semantics}): "
    + (f"{axis} in [{shown(usable[0])}, {shown(usable[1])}]." if usable else "none."),
    "No member diverged along the slice through the best member."
    if threshold is None
    else f"Diverges at {axis} >= {shown(threshold)} (any seed, slice through the best member).",
  ]
  headline = "final_val_accuracy" if result.has_accuracy else "final_val_loss"
  means = result.seed_mean(headline)
  means = means[~np.isnan(means)]  # NaN never wins, as in best()
  top = np.nan if not means.size else np.max(means) if result.has_accuracy else np.min(means)
  if not result.history.diverged.all():  # else the diverged runs' worst value, of no setting
    lines.append(f"Best {headline.replace('_', ' ')}: {top:.4g} (seed mean).")
  members = int(np.sum(np.any(result.history.diverged, axis=0)))
  lines.append(
    f"Diverged runs: {d['diverged_runs']} of {d['runs']} "
    f"({members} of {result.num_members} members in at least one seed)."
  )
  lines.extend(f"Warning: {message}" for message in d["edge_warnings"])
  return "\n".join(lines)
