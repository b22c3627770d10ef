"""Claim 1: too high a learning rate overshoots or diverges; too low converges slowly or stalls.

For each task, a sweep of SGD with momentum 0.9 over log-spaced learning rates
measures the final validation loss (the U-curve) and the steps to reach a loss
target, over 5 seeds at the default size. The rate is picked by the claim's
metric, the seed-mean final validation loss; on a classifier the rate with the
best final validation accuracy is reported beside it.

The dead-network guard (:func:`lrlab.analysis.fail_at_chance`: a run above the
best rate whose final training loss is within 5% of the chance-level loss) counts
a dead network as failed, like a diverged one, for the divergence threshold and
the high end. The quadratic has no chance level (no network to die), so it is
not guarded.

Per task, the comparisons are paired over seeds (:func:`lrlab.analysis.paired_difference`,
standard error ddof=1):

- *slow*: the final validation loss at the lowest rate minus that at the best rate;
- *overshoots*: the loss at the largest rate where no seed failed minus that at the
  best rate (the rise of the U before divergence);
- *diverges*: the highest rate failed (diverged or died) in every seed, a count,
  not a test.

The 2 tests per task (6 at the default size; fewer where the best rate is the largest
surviving one) are Holm-adjusted together
(:func:`lrlab.analysis.holm`) and counted at :data:`lrlab.analysis.ALPHA`, the
2-standard-error level. The claim holds on a task when the low end is slower
and the high end diverges in every seed or overshoots; it is refuted only when the lowest
rate ends lower than the best beyond 2 SE and the high end neither diverges nor overshoots;
anything else (a best rate on the grid's lowest point included) is inconclusive. A single
seed never makes a verdict.
"""

import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make `experiments` importable
  sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import jax
import numpy as np
from matplotlib.figure import Figure

from experiments import common
from lrlab import analysis, optimizers, sweep, tasks

CLAIM = "Too high a learning rate overshoots or diverges; too low converges slowly or stalls."
SIZES = {
  "tiny": dict(tasks=("quadratic",), num_lrs=6, steps=40, seeds=2),
  "default": dict(
    tasks=("quadratic", "digits-mlp", "mnist1d-mlp"), num_lrs=32, steps=1000, seeds=5
  ),
  "full": dict(
    tasks=("quadratic", "digits-mlp", "digits-cnn", "mnist1d-mlp", "mnist1d-cnn"),
    num_lrs=128,
    steps=6000,
    seeds=5,
  ),
}
METRIC = "final_val_loss"  # the claim's metric: it picks the best rate
ACCURACY = "final_val_accuracy"
CHANCE_RTOL = 0.05


def run(out: Path, *, tasks, num_lrs, steps, seeds) -> None:
  for task in tasks:
    result = sweep.run(
      task,
      lambda hp: optimizers.sgd(hp["lr"], momentum=0.9),
      {"lr": sweep.log_grid(1e-4, 10.0, num_lrs)},
      steps=steps,
      batch_size=100,
      key=jax.random.key(0),
      eval_every=steps // 10,
      seeds=seeds,
    )
    result.save(out / task)


def chance_of(name: str) -> float | None:
  """The chance-level loss of a classification task (:func:`lrlab.analysis.chance_loss`);
  ``None`` for a task without classes (the quadratic: nothing to die)."""
  task = tasks.get(name)
  if task.num_classes is None:
    return None
  return analysis.chance_loss(task.dataset.y_train, task.num_classes)


def guarded(result: sweep.SweepResult, chance: float | None) -> sweep.SweepResult:
  """``result`` with dead runs above the loss-best rate counted as diverged."""
  if chance is None:
    return result
  return analysis.fail_at_chance(result, chance, rtol=CHANCE_RTOL, select=METRIC)


def _best(result: sweep.SweepResult, metric: str) -> dict:
  """The grid's best rate by ``metric`` and its parabola-refined value."""
  means = result.seed_mean(metric)
  k = result.best(metric, warn=False)["index"]
  lrs = result.grid["lr"]
  refined = analysis.refine_best(np.log10(lrs), means, larger_is_better="accuracy" in metric)
  return {"index": k, "lr": float(lrs[k]), "value": float(means[k]), "refined_lr": 10**refined}


def measure(result: sweep.SweepResult, chance: float | None) -> dict:
  """The U-curve's measurements, with the two paired comparisons' raw p-values."""
  result = guarded(result, chance)
  loss = result.metric(METRIC)  # (S, K), failed runs as inf
  failed = result.history.diverged  # diverged or dead (the guard)
  lrs, seeds = result.grid["lr"], result.num_seeds
  best = _best(result, METRIC)
  k = best["index"]
  alive = np.flatnonzero(~np.any(failed, axis=0))
  top = int(alive[alive >= k].max())  # the largest rate at or above the best where no seed failed
  slow = analysis.paired_difference(loss[:, 0], loss[:, k])
  overshoot = analysis.paired_difference(loss[:, top], loss[:, k])
  numbers = {
    "seeds": seeds,
    "best_lr": best["lr"],
    "best_lr_refined": best["refined_lr"],
    "best_final_val_loss": best["value"],
    "lowest_lr": float(lrs[0]),
    "lowest_lr_gap": slow,
    "largest_surviving_lr": float(lrs[top]),
    "overshoot_gap": overshoot,
    "highest_lr_failed_seeds": int(np.sum(failed[:, -1])),
    "highest_lr_diverges": bool(np.all(failed[:, -1])),
    "divergence_threshold": result.divergence_threshold(metric=METRIC),
    "dead_runs": int(result.config.get("dead_guard", {}).get("runs", 0)),
    "chance_loss": chance,
  }
  if result.has_accuracy:
    by_accuracy = _best(result, ACCURACY)
    numbers["accuracy_best_lr"] = by_accuracy["lr"]
    numbers["accuracy_best_lr_refined"] = by_accuracy["refined_lr"]
    numbers["best_final_val_accuracy"] = by_accuracy["value"]
    numbers["loss_best_final_val_accuracy"] = float(result.seed_mean(ACCURACY)[k])
    numbers["loss_and_accuracy_best_differ"] = by_accuracy["index"] != k
  return numbers


def judge(numbers: dict[str, dict]) -> tuple[dict[str, dict], str]:
  """Holm over the 2 tests per task; the per-task verdicts and the overall one.

  ``numbers`` maps each task to :func:`measure`'s dict; the count of tests is added.
  """
  names = sorted(numbers)
  p = [numbers[n][g]["p"] for n in names for g in ("lowest_lr_gap", "overshoot_gap")]
  p = np.asarray(p, np.float64)
  adjusted = analysis.holm(p).reshape(len(names), 2)
  for n, (p_slow, p_over) in zip(names, adjusted, strict=True):
    entry = numbers[n]
    entry["lowest_lr_gap"]["p_holm"] = float(p_slow)
    entry["overshoot_gap"]["p_holm"] = float(p_over)
    entry["low_end_slow"] = bool(p_slow < analysis.ALPHA and entry["lowest_lr_gap"]["gap"] > 0)
    entry["overshoots"] = bool(p_over < analysis.ALPHA and entry["overshoot_gap"]["gap"] > 0)
    entry["high_end_overshoots_or_diverges"] = entry["highest_lr_diverges"] or entry["overshoots"]
    if entry["seeds"] < 2:
      entry["verdict"] = "inconclusive"  # one seed: no spread, no verdict
    elif entry["low_end_slow"] and entry["high_end_overshoots_or_diverges"]:
      entry["verdict"] = "supported"
    elif (
      p_slow < analysis.ALPHA
      and entry["lowest_lr_gap"]["gap"] < 0
      and not entry["high_end_overshoots_or_diverges"]
    ):  # refuted only beyond 2 SE: a best rate on the grid's lowest point has no low end
      entry["verdict"] = "refuted"
    else:
      entry["verdict"] = "inconclusive"
  numbers["comparisons"] = {  # a test whose arms coincide (best = largest surviving) has no p
    "tests": int(np.sum(np.isfinite(p))),
    "correction": "Holm",
    "level": analysis.ALPHA,
    "margin_se": 2,  # ALPHA is the two-sided level of 2 standard errors
  }
  held = {numbers[n]["verdict"] for n in names}
  if len(held) == 1:
    verdict = held.pop()
  else:
    verdict = "depends on the task: " + "; ".join(f"{n} {numbers[n]['verdict']}" for n in names)
  return numbers, verdict


def _mean_se(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
  """Seed mean and standard error (ddof=1); NaN where a seed is not finite."""
  values = np.where(np.isfinite(values), values, np.nan)
  mean = np.mean(values, axis=0)
  if values.shape[0] < 2:
    return mean, np.zeros_like(mean)
  return mean, np.std(values, axis=0, ddof=1) / np.sqrt(values.shape[0])


def _u_figure(name: str, result: sweep.SweepResult, n: dict, path: Path) -> Path:
  """Final val loss against the rate: seed mean ± SE, the picks and the threshold labelled."""
  result = guarded(result, n["chance_loss"])
  lrs = result.grid["lr"]
  mean, se = _mean_se(result.metric(METRIC))
  figure = Figure(figsize=(8, 4.5), layout="constrained")
  axes = figure.add_subplot()
  label = "seed mean (not drawn where a seed failed)"
  axes.plot(lrs, mean, "o-", color="C0", markersize=3, label=label)
  low = np.where(mean - se > 0, mean - se, np.nan)
  axes.fill_between(lrs, low, mean + se, color="C0", alpha=0.25, label="± 1 SE over seeds")
  failed = np.any(result.history.diverged, axis=0)
  if np.any(failed):
    axes.plot(lrs[failed], np.full(int(failed.sum()), np.nanmax(mean + se)), "x", color="C3",
              label="failed in some seed (diverged or dead)")  # fmt: skip
  axes.axvline(n["best_lr"], color="C2", label=f"best by val loss: {n['best_lr']:.3g}")
  if n.get("loss_and_accuracy_best_differ"):
    axes.axvline(n["accuracy_best_lr"], color="C1", linestyle="-.",
                 label=f"best by val accuracy: {n['accuracy_best_lr']:.3g}")  # fmt: skip
  if n["divergence_threshold"] is not None:
    axes.axvline(n["divergence_threshold"], color="C3", linestyle="--",
                 label=f"fails from {n['divergence_threshold']:.3g}")  # fmt: skip
  if name == "quadratic":
    axes.axvline(2 * 1.9, color="k", linestyle=":", label="heavy ball 2(1+β)/L = 3.8")
  if np.all(mean[np.isfinite(mean)] > 0):
    axes.set_yscale("log")
  axes.set(xscale="log", xlabel="learning rate (SGD, momentum 0.9)", ylabel=METRIC)
  axes.set_title(f"{name}: U-curve, {result.num_seeds} seeds, verdict {n['verdict']}")
  axes.grid(alpha=0.3, which="both")
  axes.legend(fontsize="x-small")
  figure.savefig(path, dpi=120)
  return path


def report(out: Path):
  numbers, results = {}, {}
  for folder in sorted(p for p in out.iterdir() if (p / "sweep.json").exists()):
    results[folder.name] = sweep.SweepResult.load(folder)
    numbers[folder.name] = measure(results[folder.name], chance_of(folder.name))
  numbers, verdict = judge(numbers)
  figures = []
  for name, result in results.items():
    figures.append(_u_figure(name, result, numbers[name], out / f"u_curve_{name}.png"))
  steps_figure = Figure(figsize=(7, 4), layout="constrained")
  axes = steps_figure.add_subplot()
  for i, (name, result) in enumerate(results.items()):
    mean, se = _mean_se(result.metric("steps_to_target"))
    lrs = result.grid["lr"]
    label = name if np.any(np.isfinite(mean)) else f"{name}: no rate reached it in every seed"
    axes.plot(lrs, mean, "o-", color=f"C{i}", markersize=3, label=label)
    axes.fill_between(lrs, mean - se, mean + se, color=f"C{i}", alpha=0.25)
  axes.set(
    xscale="log",
    xlabel="learning rate (SGD, momentum 0.9)",
    ylabel="steps to target (mean ± SE over seeds)",
    title="Steps to reach the default target (missing: a seed never reached it)",
  )
  axes.grid(alpha=0.3, which="both")
  axes.legend()
  figures.append(out / "steps_to_target.png")
  steps_figure.savefig(figures[-1], dpi=120)
  return numbers, verdict, figures


if __name__ == "__main__":
  sys.exit(common.main(sys.modules[__name__]))
