"""Claim 2: a lower learning rate converges slower but to a higher accuracy.

The essay: "A lower learning rate means slower convergence but higher accuracy".
For each task, one sweep of SGD with momentum over log-spaced learning rates
trains for a long budget and records the accuracy curve of every rate. Two rates
are compared on the same seeds (common random numbers):

- the *fast* rate: the best validation accuracy after a short budget (the first
  5% of the steps; on a tie, the lower rate), the rate a practitioner in a hurry would pick;
- the *low* rate: the lowest rate whose final validation accuracy at the long
  budget is within 5 points of the best (the low end of the usable range), or
  the grid rate just below the fast one if that end is not below it.

The rates are picked by the claim's metric, accuracy (on validation); the best
rate by final validation loss at the long budget is reported beside the best by
accuracy. The usable range has the dead-network guard
(:func:`lrlab.analysis.fail_at_chance`): a run above the best rate whose final
train loss sits within 5% of chance counts as failed.

Every comparison is a paired difference over seeds
(:func:`lrlab.analysis.paired_difference`: the seeds' standard error, ddof 1,
plus the test set's binomial error for test accuracies). Three per task (the low
rate's accuracy gain, its slowdown, the best lower rate's accuracy gain), all
tasks in one family, Holm-corrected at ``lrlab.analysis.ALPHA`` (2 SE). The claim
holds on a task when the low rate is slower (reaches 95% of the best final
accuracy later) and ends with a higher *test* accuracy than the fast rate
(selection on validation, judgement on test). As a steelman, the best of all the
rates below the fast one (chosen on final validation accuracy) is compared the
same way: if it wins while the lowest usable rate does not, the verdict is
"depends on how far the rate is lowered"; the claim is refuted when the low rate
ends lower and no lower rate ends higher.
"""

import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make `experiments` importable
  sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import jax
import numpy as np
from matplotlib import ticker
from matplotlib.figure import Figure

from experiments import common
from lrlab import analysis, optimizers, sweep, tasks
from lrlab.analysis import ALPHA

CLAIM = "A lower learning rate means slower convergence but higher accuracy."
SIZES = {
  "tiny": dict(tasks=("digits-logreg",), num_lrs=6, steps=40, seeds=2),
  "default": dict(tasks=("digits-mlp", "mnist1d-mlp"), num_lrs=16, steps=6000, seeds=5),
  "full": dict(
    tasks=("digits-mlp", "digits-cnn", "mnist1d-mlp", "mnist1d-cnn"),
    num_lrs=48,
    steps=40000,
    seeds=5,
  ),
}
NUM_EVALS = 40  # evaluations per run; the short budget is the second one (5% of the steps)
SHORT = 2
TOLERANCE = 0.05  # of the usable range: accuracy points below the best
CHANCE_RTOL = 0.05  # the dead-network guard: final train loss within 5% of chance


def run(out: Path, *, tasks, num_lrs, steps, seeds) -> None:
  for task in tasks:
    result = sweep.run(
      task,
      lambda hp: optimizers.sgd(hp["lr"], momentum=0.9),
      {"lr": sweep.log_grid(1e-4, 1.0, num_lrs)},
      steps=steps,
      batch_size=100,
      key=jax.random.key(0),
      eval_every=steps // NUM_EVALS,
      seeds=seeds,
    )
    result.save(out / task)


def _accuracy(result: sweep.SweepResult, split: str, evaluation: int) -> np.ndarray:
  """``(S, K)`` accuracy at one evaluation; a run diverged by then counts as 0."""
  h = result.history
  step = h.step[0, 0, evaluation]
  gone = h.diverged & (h.diverged_step < step)
  return np.where(gone, 0.0, getattr(h, f"{split}_accuracy")[..., evaluation])


def _steps_to(result: sweep.SweepResult, value: float) -> np.ndarray:
  """``(S, K)`` first evaluation step with val accuracy >= ``value``; never: the budget + 1."""
  h = result.history
  hit = (h.val_accuracy >= value) & ~h.diverged[..., None]
  first = np.take_along_axis(h.step, np.argmax(hit, axis=-1)[..., None], axis=-1)[..., 0]
  return np.where(np.any(hit, axis=-1), first, h.step[0, 0, -1] + 1).astype(np.float64)


def _judge(result: sweep.SweepResult, num_test: int) -> dict:
  """The fast, low and best lower rates of one task and their paired comparisons (unadjusted)."""
  lr = result.grid["lr"]
  last = result.history.step.shape[-1] - 1
  short_val = _accuracy(result, "val", SHORT).mean(0)
  fast = int(np.argmax(short_val))
  best = result.best("final_val_accuracy", warn=False)
  by_loss = result.best("final_val_loss", warn=False)
  usable_lo, usable_hi = result.usable_range("final_val_accuracy", TOLERANCE)
  low = int(np.searchsorted(lr, usable_lo)) if np.isfinite(usable_lo) else fast
  if low >= fast:  # the usable range does not reach below the fast rate: take the next lower one
    low = max(fast - 1, 0)
  final_test = _accuracy(result, "test", last)
  target = (1 - TOLERANCE) * best["value"]
  steps = _steps_to(result, target)
  # The steelman: the best of the lower rates (chosen on validation) against the fast one.
  final_val = result.seed_mean("final_val_accuracy")
  lower = int(np.argmax(final_val[:fast])) if fast > 0 else fast
  tests = {}
  if low != fast:
    tests["higher_accuracy"] = analysis.paired_difference(
      final_test[:, low], final_test[:, fast], test_examples=num_test
    )
    tests["slower"] = analysis.paired_difference(steps[:, low], steps[:, fast])
  if lower != fast and lower == low:  # one comparison, counted once
    tests["best_lower_higher_accuracy"] = tests["higher_accuracy"]
  elif lower != fast:
    tests["best_lower_higher_accuracy"] = analysis.paired_difference(
      final_test[:, lower], final_test[:, fast], test_examples=num_test
    )
  test_loss = result.metric("final_test_loss")
  return {
    "short_budget_steps": int(result.history.step[0, 0, SHORT]),
    "long_budget_steps": int(result.history.step[0, 0, last]),
    "fast_lr": float(lr[fast]),
    "fast_short_val_accuracy": float(short_val[fast]),
    "fast_final_test_accuracy": float(final_test[:, fast].mean()),
    "low_lr": float(lr[low]),
    "low_final_test_accuracy": float(final_test[:, low].mean()),
    "long_best_lr": best["hyperparameters"]["lr"],
    "long_best_final_test_accuracy": float(final_test[:, best["index"]].mean()),
    "long_best_over_fast_lr_decades": float(np.log10(best["hyperparameters"]["lr"] / lr[fast])),
    "long_best_lr_by_val_loss": by_loss["hyperparameters"]["lr"],
    "long_best_by_val_loss_final_test_accuracy": float(final_test[:, by_loss["index"]].mean()),
    "long_best_by_val_loss_final_test_loss": float(test_loss[:, by_loss["index"]].mean()),
    "long_best_lr_by_loss_over_by_accuracy_decades": float(
      np.log10(by_loss["hyperparameters"]["lr"] / best["hyperparameters"]["lr"])
    ),
    "usable_range": [usable_lo, usable_hi],
    "divergence_threshold": result.divergence_threshold(metric="final_val_accuracy"),
    "dead_runs": result.config["dead_guard"]["runs"],
    "target_val_accuracy": target,
    "fast_steps_to_target": float(steps[:, fast].mean()),
    "low_steps_to_target": float(steps[:, low].mean()),
    "best_lower_lr": float(lr[lower]),
    "best_lower_final_test_accuracy": float(final_test[:, lower].mean()),
    "tests": tests,
  }


def _verdicts(numbers: dict) -> int:
  """Holm over every task's comparisons; each judged at ALPHA; each task's verdict."""
  entries = []  # each distinct comparison once (the steelman may be the low rate itself)
  for task in numbers.values():
    entries += [e for e in task["tests"].values() if all(e is not f for f in entries)]
  for entry, p_holm in zip(entries, analysis.holm([e["p"] for e in entries]), strict=True):
    entry["p_holm"] = float(p_holm)
    won = "supported" if entry["gap"] > 0 else "refuted"
    entry["verdict"] = won if np.isfinite(p_holm) and p_holm <= ALPHA else "inconclusive"
  for entry in numbers.values():
    v = {k: entry["tests"].get(k, {}).get("verdict", "inconclusive") for k in _TESTS}
    entry.update(v)
    if v["higher_accuracy"] == "supported" and v["slower"] == "supported":
      entry["verdict"] = "supported"
    elif v["best_lower_higher_accuracy"] == "supported":
      entry["verdict"] = "depends on how far the rate is lowered"
    elif v["higher_accuracy"] == "refuted":
      entry["verdict"] = "refuted"
    else:
      entry["verdict"] = "inconclusive"
  return len(entries)


_TESTS = ("higher_accuracy", "slower", "best_lower_higher_accuracy")


def _figure(result: sweep.SweepResult, numbers: dict, path: Path) -> Path:
  """Left: test accuracy vs lr at both budgets. Right: test accuracy vs step for a few rates."""
  lr, h = result.grid["lr"], result.history
  last = h.step.shape[-1] - 1
  figure = Figure(figsize=(12, 4.5), layout="constrained")
  left, right = figure.subplots(1, 2)
  for evaluation, label, color in ((SHORT, "short", "C1"), (last, "long", "C0")):
    values = _accuracy(result, "test", evaluation)
    mean, se = values.mean(0), values.std(0, ddof=1) / np.sqrt(len(values))
    steps = int(h.step[0, 0, evaluation])
    left.plot(lr, mean, "o-", color=color, label=f"{label} budget ({steps} steps)")
    left.fill_between(lr, mean - se, mean + se, color=color, alpha=0.25)
  left.axvline(numbers["fast_lr"], color="C1", linestyle="--", label="fast lr (best at short)")
  left.axvline(numbers["low_lr"], color="C2", linestyle="--", label="low lr (lowest usable)")
  left.axvspan(*numbers["usable_range"], color="green", alpha=0.08, label="usable range (long)")
  left.set(
    xscale="log",
    xlabel="learning rate (SGD, momentum 0.9)",
    ylabel="test accuracy (seed mean ± SE; diverged: 0)",
    title=f"{result.config['task']}: accuracy vs learning rate",
  )
  left.set_xticks(lr[::3], [f"{v:.0e}" for v in lr[::3]])
  left.xaxis.set_minor_formatter(ticker.NullFormatter())
  left.legend(fontsize="small")
  left.grid(alpha=0.3)
  picks = {}
  for name in ("fast", "low", "long_best"):
    picks.setdefault(numbers[f"{name}_lr"], []).append(name.replace("long_", ""))
  shown = sorted(
    {*picks, lr[0], lr[min(int(np.searchsorted(lr, numbers["fast_lr"])) + 2, len(lr) - 1)]}
  )
  steps = h.step[0, 0]
  for i, value in enumerate(shown):
    k = int(np.argmin(np.abs(lr - value)))
    runs = np.where(h.diverged[:, k, None], np.nan, h.test_accuracy[:, k])
    kept = np.sum(np.isfinite(runs), axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):  # every seed diverged: no point
      curve = np.nanmean(runs, axis=0) if kept.min() > 0 else np.full(runs.shape[1], np.nan)
      se = np.nanstd(runs, axis=0, ddof=1) / np.sqrt(kept) if kept.min() > 1 else 0 * curve
    tag = f" ({', '.join(picks[value])})" if value in picks else ""
    right.plot(steps[1:], curve[1:], color=f"C{i}", label=f"lr={lr[k]:.3g}{tag}")
    right.fill_between(steps[1:], (curve - se)[1:], (curve + se)[1:], color=f"C{i}", alpha=0.2)
  right.axvline(steps[SHORT], color="gray", linestyle=":", label="short budget")
  right.set(
    xscale="log",
    xlabel="step",
    ylabel="test accuracy (seed mean ± SE; diverged seeds left out)",
    title="accuracy vs steps",
  )
  ticks = steps[np.unique(np.geomspace(1, len(steps) - 1, 5).astype(int))]
  right.set_xticks(ticks, [f"{t:,}" for t in ticks])
  right.xaxis.set_minor_formatter(ticker.NullFormatter())
  right.legend(fontsize="small")
  right.grid(alpha=0.3)
  figure.savefig(path, dpi=120)
  return path


def report(out: Path):
  numbers, figures = {}, []
  for folder in sorted(p for p in out.iterdir() if (p / "sweep.json").exists()):
    raw = sweep.SweepResult.load(folder)
    problem = tasks.get(raw.config["task"])
    chance = analysis.chance_loss(problem.dataset.y_train, problem.num_classes)
    result = analysis.fail_at_chance(raw, chance, rtol=CHANCE_RTOL, select="final_val_accuracy")
    numbers[folder.name] = _judge(result, len(problem.dataset.y_test))
    numbers[folder.name].update(chance_loss=chance, test_examples=len(problem.dataset.y_test))
  comparisons = _verdicts(numbers)
  for name, entry in numbers.items():
    result = sweep.SweepResult.load(out / name)
    figures.append(_figure(result, entry, out / f"accuracy_{name}.png"))
  verdicts = {n["verdict"] for n in numbers.values()}
  verdict = verdicts.pop() if len(verdicts) == 1 else "depends on the task"
  numbers = {"tasks": numbers, "comparisons": comparisons, "alpha": ALPHA}
  return numbers, verdict, figures


if __name__ == "__main__":
  sys.exit(common.main(sys.modules[__name__]))
