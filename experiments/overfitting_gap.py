"""Claim 3: high learning rates overfit, low ones underfit.

The essay: "High learning rates can lead to overfitting as the model quickly
adapts to the training data and starts memorizing it. Low learning rates, on the
other hand, can lead to underfitting". For each task, one sweep of SGD with
momentum over log-spaced learning rates measures, at the end of a fixed budget,
the loss and accuracy on the *whole training set* and on the test set.

The training-set numbers are exact, not the running minibatch loss: the sweep
runs on a copy of the task whose validation split is the training split, so the
sweep's ``val_*`` metrics are the full training-set loss and accuracy of the
final parameters (``train_loss`` stays the mean minibatch loss of the last
window). The generalization gap is ``train accuracy - test accuracy`` (and
``test loss - train loss``).

Among the rates that diverged in no seed (*stable*), the claim predicts two things:

- *low rates underfit*: the lowest rate ends with a higher training loss than the
  rate that fits the training set best;
- *high rates overfit*: the highest rate that still fits the training set (train
  accuracy within 5 points of the best) has a larger accuracy gap than every
  lower stable rate (the gap peaks at the high end). Higher stable rates that do
  not fit (training collapsed without tripping the divergence guard) are
  reported as ``collapsed_lrs``: they underfit rather than overfit.

Each difference is paired over seeds (common random numbers) and counts when it
exceeds twice its seed spread; the claim holds on a task when both parts do.
The overfitting part is also judged on the loss gap (``test loss - train
loss``, same rule); where one gap supports it and the other refutes it the
verdict is "depends on the measure", otherwise the accuracy gap decides.
"""

import dataclasses
import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make `experiments` importable
  sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import jax
import numpy as np
from matplotlib.figure import Figure

from experiments import common
from lrlab import analysis, optimizers, sweep, tasks

CLAIM = "High learning rates overfit, low ones underfit."
FIT = 0.05  # a rate fits the training set when its train accuracy is within 5 points of the best
SIZES = {
  "tiny": dict(tasks=("digits-logreg",), num_lrs=5, steps=40, seeds=2),
  "default": dict(tasks=("digits-mlp", "mnist1d-mlp"), num_lrs=16, steps=4000, seeds=2),
  "full": dict(
    tasks=("digits-mlp", "digits-cnn", "mnist1d-mlp", "mnist1d-cnn"),
    num_lrs=48,
    steps=20000,
    seeds=5,
  ),
}


def train_as_val(name: str) -> tasks.Task:
  """Task ``name`` with its validation split replaced by the training split."""
  task = tasks.get(name)
  dataset = dataclasses.replace(
    task.dataset, x_val=task.dataset.x_train, y_val=task.dataset.y_train
  )
  return dataclasses.replace(task, dataset=dataset, name=f"{name} (val = train set)")


def run(out: Path, *, tasks, num_lrs, steps, seeds) -> None:
  for name in tasks:
    result = sweep.run(
      train_as_val(name),
      lambda hp: optimizers.sgd(hp["lr"], momentum=0.9),
      {"lr": sweep.log_grid(1e-4, 1.0, num_lrs)},
      steps=steps,
      batch_size=100,
      key=jax.random.key(0),
      eval_every=steps // 20,
      seeds=seeds,
    )
    result.save(out / name)


def _measures(result: sweep.SweepResult) -> dict[str, np.ndarray]:
  """``(S, K)`` final train-set and test loss and accuracy, and the gaps (NaN if diverged)."""
  h = result.history
  final = lambda a: np.where(h.diverged, np.nan, a[..., -1]).astype(np.float64)
  m = {
    "train_loss": final(h.val_loss),
    "test_loss": final(h.test_loss),
    "train_accuracy": final(h.val_accuracy),
    "test_accuracy": final(h.test_accuracy),
  }
  m["accuracy_gap"] = m["train_accuracy"] - m["test_accuracy"]
  m["loss_gap"] = m["test_loss"] - m["train_loss"]
  return m


def _paired(values: np.ndarray, a: int, b: int) -> tuple[float, float]:
  """Seed mean and seed std of ``values[:, a] - values[:, b]`` (same seeds, paired)."""
  difference = values[:, a] - values[:, b]
  return float(np.mean(difference)), float(np.std(difference))


def _judge(result: sweep.SweepResult) -> dict:
  lr = result.grid["lr"]
  m = _measures(result)
  stable = np.flatnonzero(~np.any(result.history.diverged, axis=0))
  if len(stable) < 3:
    return {"stable_lrs": len(stable), "verdict": "inconclusive"}
  mean = {name: values.mean(0) for name, values in m.items()}
  fits = stable[mean["train_accuracy"][stable] >= np.max(mean["train_accuracy"][stable]) - FIT]
  lowest, highest = int(stable[0]), int(fits[-1])
  fit = int(stable[np.argmin(mean["train_loss"][stable])])
  below = stable[stable < highest]
  if len(below) == 0:
    return {"stable_lrs": len(stable), "fitting_lrs": len(fits), "verdict": "inconclusive"}
  peak = int(below[np.argmax(mean["accuracy_gap"][below])])
  loss_peak = int(below[np.argmax(mean["loss_gap"][below])])
  underfit, underfit_noise = _paired(m["train_loss"], lowest, fit)
  overfit, overfit_noise = _paired(m["accuracy_gap"], highest, peak)
  overfit_loss, overfit_loss_noise = _paired(m["loss_gap"], highest, loss_peak)
  parts = {
    "low_underfits": analysis.verdict(underfit, underfit_noise) if lowest != fit else "refuted",
    "high_overfits": analysis.verdict(overfit, overfit_noise),
    "high_overfits_by_loss": analysis.verdict(overfit_loss, overfit_loss_noise),
  }
  if {parts["high_overfits"], parts["high_overfits_by_loss"]} == {"supported", "refuted"}:
    verdict = "depends on the measure of overfitting (accuracy gap or loss gap)"
  elif parts["low_underfits"] == parts["high_overfits"]:
    verdict = parts["high_overfits"]
  elif "refuted" in parts.values():
    verdict = "refuted"
  else:
    verdict = "inconclusive"
  at = lambda name, k: float(mean[name][k])
  gap_peak = int(stable[np.argmax(mean["accuracy_gap"][stable])])
  return {
    "stable_lrs": [float(lr[lowest]), float(lr[stable[-1]])],
    "fitting_lrs": [float(lr[fits[0]]), float(lr[highest])],
    "collapsed_lrs": [float(v) for v in lr[stable[stable > highest]]],
    "collapsed_train_accuracy": [
      float(mean["train_accuracy"][k]) for k in stable[stable > highest]
    ],
    "best_fit_lr": float(lr[fit]),
    "best_test_accuracy_lr": float(lr[stable[np.argmax(mean["test_accuracy"][stable])]]),
    "largest_accuracy_gap_lr": float(lr[gap_peak]),
    "lowest_lr": {name: at(name, lowest) for name in m},
    "best_fit": {name: at(name, fit) for name in m},
    "largest_gap": {name: at(name, gap_peak) for name in m},
    "highest_fitting_lr": {name: at(name, highest) for name in m},
    "underfit_train_loss_excess": underfit,
    "underfit_seed_std": underfit_noise,
    "overfit_gap_excess": overfit,
    "overfit_seed_std": overfit_noise,
    "overfit_loss_gap_excess": overfit_loss,
    "overfit_loss_gap_seed_std": overfit_loss_noise,
    "spearman_lr_accuracy_gap": analysis.spearman(lr[fits], mean["accuracy_gap"][fits]),
    "spearman_lr_loss_gap": analysis.spearman(lr[fits], mean["loss_gap"][fits]),
    **parts,
    "verdict": verdict,
  }


def _figure(result: sweep.SweepResult, name: str, numbers: dict, path: Path) -> Path:
  """Train-set vs test loss (left) and accuracy (right) against the learning rate."""
  lr, m = result.grid["lr"], _measures(result)
  figure = Figure(figsize=(12, 5), layout="constrained")
  panels = figure.subplots(1, 2)
  for axes, kind in zip(panels, ("loss", "accuracy"), strict=True):
    for split, color in (("train", "C0"), ("test", "C3")):
      with np.errstate(all="ignore"):
        mean, low, high = analysis.seed_band(m[f"{split}_{kind}"])
      label = "whole training set" if split == "train" else "test set"
      axes.plot(lr, mean, "o-", color=color, label=label)
      axes.fill_between(lr, low, high, color=color, alpha=0.2)
    train, test = (np.nanmean(m[f"{s}_{kind}"], 0) for s in ("train", "test"))
    axes.fill_between(lr, train, test, color="gray", alpha=0.15, label="generalization gap")
    diverged = np.any(result.history.diverged, axis=0)
    for value in lr[diverged]:
      axes.axvline(value, color="red", alpha=0.15, linewidth=6)
    if np.any(diverged):
      axes.plot([], [], color="red", alpha=0.3, linewidth=6, label="diverged (any seed)")
    if "fitting_lrs" in numbers:
      axes.axvspan(
        *numbers["fitting_lrs"],
        color="green",
        alpha=0.08,
        label=f"fits the training set (train accuracy within {FIT:g} of the best)",
      )
      axes.axvline(
        numbers["largest_accuracy_gap_lr"],
        color="black",
        linestyle=":",
        label="largest accuracy gap",
      )
    axes.set(
      xscale="log",
      yscale="log" if kind == "loss" else "linear",
      xlabel="learning rate (SGD, momentum 0.9)",
      ylabel=f"final {kind} (seed mean, min-max band)",
      title=f"{name}: train vs test {kind}",
    )
    axes.grid(alpha=0.3)
  figure.legend(*panels[0].get_legend_handles_labels(), loc="outside lower center", ncol=3)
  figure.savefig(path, dpi=120)
  return path


def report(out: Path):
  numbers, figures = {}, []
  gaps = Figure(figsize=(7, 4), layout="constrained")
  axes = gaps.add_subplot()
  for folder in sorted(p for p in out.iterdir() if (p / "sweep.json").exists()):
    result = sweep.SweepResult.load(folder)
    numbers[folder.name] = _judge(result)
    path = out / f"gap_{folder.name}.png"
    figures.append(_figure(result, folder.name, numbers[folder.name], path))
    with np.errstate(all="ignore"):
      mean, low, high = analysis.seed_band(_measures(result)["accuracy_gap"])
    axes.plot(result.grid["lr"], mean, "o-", label=folder.name)
    axes.fill_between(result.grid["lr"], low, high, alpha=0.2)
  axes.set(
    xscale="log",
    xlabel="learning rate (SGD, momentum 0.9)",
    ylabel="train accuracy - test accuracy",
    title="Generalization gap at the end of training (gaps: diverged)",
  )
  axes.grid(alpha=0.3)
  axes.legend()
  figures.append(out / "accuracy_gap.png")
  gaps.savefig(figures[-1], dpi=120)
  verdicts = {n["verdict"] for n in numbers.values()}
  verdict = verdicts.pop() if len(verdicts) == 1 else "depends on the task"
  return numbers, verdict, figures


if __name__ == "__main__":
  sys.exit(common.main(sys.modules[__name__]))
