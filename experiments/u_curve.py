"""Claim 1: too high a learning rate overshoots or diverges; too low converges slowly or stalls.

For each task, a sweep of SGD with momentum over log-spaced learning rates
measures the final validation loss (the U-curve) and the steps to reach a loss
target. The claim holds on a task when the smallest rate ends measurably worse
than the best (slow), and the largest rates either diverge or end worse
(overshoot), by more than the spread across seeds.
"""

import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make `experiments` importable
  sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import jax
import numpy as np
from matplotlib.figure import Figure

from experiments import common
from lrlab import optimizers, sweep

CLAIM = "Too high a learning rate overshoots or diverges; too low converges slowly or stalls."
SIZES = {
  "tiny": dict(tasks=("quadratic",), num_lrs=6, steps=40, seeds=1),
  "default": dict(
    tasks=("quadratic", "digits-mlp", "mnist1d-mlp"), num_lrs=32, steps=1000, seeds=2
  ),
  "full": dict(
    tasks=("quadratic", "digits-mlp", "digits-cnn", "mnist1d-mlp", "mnist1d-cnn"),
    num_lrs=128,
    steps=6000,
    seeds=5,
  ),
}
METRIC = "final_val_loss"


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


def _judge(result: sweep.SweepResult) -> dict:
  """Is the low end slow and the high end overshooting, beyond the seed spread?"""
  mean, std = result.seed_mean(METRIC), result.seed_std(METRIC)
  best = result.best(METRIC, warn=False)
  k = best["index"]
  noise = float(np.nanmax(np.where(np.isfinite(std), std, 0.0)))
  low_gap = float(mean[0] - mean[k])
  high = mean[-1]
  diverged = bool(np.any(result.history.diverged[:, -1]))
  high_gap = float(high - mean[k]) if np.isfinite(high) else float("inf")
  return {
    "best_lr": best["hyperparameters"]["lr"],
    "best_final_val_loss": best["value"],
    "lowest_lr_gap": low_gap,
    "highest_lr_gap": high_gap,
    "highest_lr_diverged": diverged,
    "divergence_threshold": result.divergence_threshold(),
    "seed_noise": noise,
    "low_end_slow": low_gap > 2 * noise,
    "high_end_overshoots": diverged or high_gap > 2 * noise,
  }


def report(out: Path):
  numbers, figures = {}, []
  steps_figure = Figure(figsize=(7, 4), layout="constrained")
  axes = steps_figure.add_subplot()
  for folder in sorted(p for p in out.iterdir() if (p / "sweep.json").exists()):
    result = sweep.SweepResult.load(folder)
    numbers[folder.name] = _judge(result)
    figures.append(out / f"u_curve_{folder.name}.png")
    sweep.plot_sensitivity(result, figures[-1], metric=METRIC)
    to_target = result.seed_mean("steps_to_target")
    axes.plot(
      result.grid["lr"],
      np.where(np.isfinite(to_target), to_target, np.nan),
      "o-",
      label=folder.name,
    )
  axes.set(
    xscale="log",
    xlabel="learning rate (SGD, momentum 0.9)",
    ylabel="steps to target",
    title="Steps to reach the default target (missing: never reached)",
  )
  axes.legend()
  figures.append(out / "steps_to_target.png")
  steps_figure.savefig(figures[-1], dpi=120)
  held = [n["low_end_slow"] and n["high_end_overshoots"] for n in numbers.values()]
  verdict = "supported" if all(held) else "refuted" if not any(held) else "depends on the task"
  return numbers, verdict, figures


if __name__ == "__main__":
  sys.exit(common.main(sys.modules[__name__]))
