"""Claim 3: high learning rates overfit, low ones underfit.

The essay: "High learning rates can lead to overfitting as the model quickly
adapts to the training data and starts memorizing it. Low learning rates, on the
other hand, can lead to underfitting". One sweep of SGD with momentum 0.9 over
log-spaced rates measures, at the end of a fixed budget, the loss and accuracy
on the *whole training set* and on the test set.

The task must not interpolate at the budget: where every fitting rate reaches
train accuracy 1.0, the accuracy gap is just ``1 - test accuracy``. So the
default is the MNIST-1D MLP on 10,000 signals (7,200 for training) with
``NOISE`` = 20% symmetric label noise in every split (a label is replaced, with
that probability, by one of the other classes drawn uniformly; Zhang et al.
2017), trained for 1,000 steps (14 epochs): no rate fits the noisy training
labels. Train and test then come from the same noisy distribution, so
``train - test`` is the generalization gap.

The training-set numbers are exact, not the running minibatch loss: the sweep
runs on a copy of the task whose validation split is the (noisy) training
split. The gaps are ``train accuracy - test accuracy`` and ``test loss - train
loss``. The dead-network guard (:func:`lrlab.analysis.fail_at_chance`, train
loss within 5% of the chance loss of the training labels, above the best-fitting
rate) counts a dead run as failed, like a diverged one. Among the rates failed
in no seed (*stable*):

- *low rates underfit*: the lowest stable rate ends with a higher training loss
  than the best-fitting rate (lowest seed-mean training loss);
- *high rates overfit*: the highest rate that still fits (train accuracy within
  ``FIT`` of the best stable rate's) has a larger gap than every lower stable
  rate, judged on the accuracy gap and, separately, on the loss gap. Stable
  rates above it that do not fit are reported as ``collapsed_lrs``.

Each difference is paired over seeds (the same initializations and batches for
every rate); its standard error is the seeds' (ddof=1) and, for an accuracy
gap, the test set's binomial error of the two test accuracies added in
quadrature. ``z = difference / SE`` gives a two-sided normal p-value, and all
the comparisons (1 + 2 x the lower stable rates) are Holm-adjusted together
(:func:`lrlab.analysis.holm`) at ``ALPHA``, the level of 2 SE. A part is
supported when each of its comparisons is significant in the claimed
direction, refuted when one is significant against it, else inconclusive.
The verdict is the parts' common verdict; where the two gaps disagree it
"depends on the measure", otherwise "depends on the part".
"""

import dataclasses
import math
import sys
import warnings
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make `experiments` importable
  sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import jax
import numpy as np
from matplotlib.figure import Figure

from experiments import common
from lrlab import analysis, optimizers, sweep, tasks
from lrlab.analysis import ALPHA

CLAIM = "High learning rates overfit, low ones underfit."
FIT = 0.05  # a rate fits when its train accuracy is within 5 points of the best stable rate's
CHANCE_RTOL = 0.05  # the dead-network guard: train loss within 5% of the chance loss
BATCH = 100
SIZES = {
  "tiny": dict(
    task="digits-logreg", task_options={}, noise=0.2, lr_range=(1e-2, 1.0), num_lrs=4, steps=30,
    seeds=2,
  ),
  "default": dict(
    task="mnist1d-mlp",
    task_options={"num_samples": 10000},
    noise=0.2,
    lr_range=(1e-3, 1.0),
    num_lrs=10,
    steps=1000,
    seeds=5,
  ),
  "full": dict(
    task="mnist1d-mlp",
    task_options={"num_samples": 40000},
    noise=0.2,
    lr_range=(1e-4, 1.0),
    num_lrs=25,
    steps=4000,
    seeds=8,
  ),
}  # fmt: skip


def noisy_labels(labels: np.ndarray, fraction: float, num_classes: int, rng) -> np.ndarray:
  """Symmetric label noise: each label, with probability ``fraction``, becomes another class.

  The new class is drawn uniformly from the ``num_classes - 1`` others, so a
  corrupted label is always wrong (Zhang et al. 2017, "Understanding deep
  learning requires rethinking generalization").
  """
  labels = np.asarray(labels).copy()
  flip = rng.random(labels.shape) < fraction
  labels[flip] = (labels[flip] + rng.integers(1, num_classes, flip.sum())) % num_classes
  return labels


def noisy_train_as_val(name: str, options: dict, noise: float) -> tasks.Task:
  """Task ``name`` with label noise in every split and its val split replaced by the train split."""
  task = tasks.get(name, **options)
  d, rng = task.dataset, np.random.default_rng(0)
  y_train, y_val, y_test = (
    noisy_labels(y, noise, task.num_classes, rng) for y in (d.y_train, d.y_val, d.y_test)
  )
  del y_val  # drawn so that the test labels do not depend on whether val is kept
  dataset = dataclasses.replace(d, y_train=y_train, x_val=d.x_train, y_val=y_train, y_test=y_test)
  return dataclasses.replace(task, dataset=dataset, name=f"{name} (noisy labels; val = train)")


def run(out: Path, *, task, task_options, noise, lr_range, num_lrs, steps, seeds) -> None:
  problem = noisy_train_as_val(task, task_options, noise)
  result = sweep.run(
    problem,
    lambda hp: optimizers.sgd(hp["lr"], momentum=0.9),
    {"lr": sweep.log_grid(*lr_range, num_lrs)},
    steps=steps,
    batch_size=BATCH,
    key=jax.random.key(0),
    eval_every=steps // 10,
    seeds=seeds,
    progress=False,
  )
  chance = analysis.chance_loss(problem.dataset.y_train, problem.num_classes)
  config = {"chance_loss": chance, "noise": noise, "num_test": len(problem.dataset.y_test)}
  result = dataclasses.replace(result, config={**result.config, **config})
  result.save(out / task)


def _measures(result: sweep.SweepResult) -> dict[str, np.ndarray]:
  """``(S, K)`` final train-set and test loss and accuracy, and the gaps (NaN if failed)."""
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


def paired(m: dict, measure: str, a: int, b: int, num_test: int) -> dict:
  """``measure[:, a] - measure[:, b]`` over seeds: mean, SE (seeds ddof=1; test-set binomial
  for an accuracy gap), z and its two-sided normal p-value."""
  d = m[measure][:, a] - m[measure][:, b]
  se_seeds = float(np.std(d, ddof=1) / np.sqrt(d.size))
  se_test = 0.0
  if measure == "accuracy_gap":
    p1, p2 = (float(np.mean(m["test_accuracy"][:, k])) for k in (a, b))
    se_test = math.sqrt(max(p1 * (1 - p1) + p2 * (1 - p2), 0.0) / num_test)
  se = math.hypot(se_seeds, se_test)
  z = float(np.mean(d)) / se if se > 0 else math.nan
  p = math.erfc(abs(z) / math.sqrt(2.0)) if math.isfinite(z) else math.nan
  return {"difference": float(np.mean(d)), "se": se, "se_seeds": se_seeds, "z": z, "p": p}


def _part(tests: list[dict]) -> str:
  """Supported if every comparison is significant and positive; refuted if one is significant
  and negative (after Holm); else inconclusive."""
  significant = [t["p_holm"] <= ALPHA for t in tests]
  if any(s and t["difference"] < 0 for s, t in zip(significant, tests, strict=True)):
    return "refuted"
  if tests and all(s and t["difference"] > 0 for s, t in zip(significant, tests, strict=True)):
    return "supported"
  return "inconclusive"


def _judge(raw: sweep.SweepResult) -> dict:
  chance, num_test = raw.config["chance_loss"], raw.config["num_test"]
  result = analysis.fail_at_chance(raw, chance, rtol=CHANCE_RTOL, select="final_val_loss")
  lr = result.grid["lr"]
  m = _measures(result)
  failed = np.any(result.history.diverged, axis=0)
  dead = np.any(result.history.diverged & ~raw.history.diverged, axis=0)
  stable = np.flatnonzero(~failed)
  numbers = {
    "chance_loss": chance,
    "noise": raw.config["noise"],
    "num_test": num_test,
    "seeds": result.num_seeds,
    "num_lrs": len(lr),
    "diverged_lrs": [float(v) for v in lr[np.any(raw.history.diverged, axis=0)]],
    "dead_lrs": [float(v) for v in lr[dead]],
  }
  if len(stable) < 3:
    return {**numbers, "stable_lrs": len(stable), "verdict": "inconclusive"}
  mean = {name: np.mean(values, 0) for name, values in m.items()}
  se = {name: np.std(values, 0, ddof=1) / np.sqrt(len(values)) for name, values in m.items()}
  fits = stable[mean["train_accuracy"][stable] >= np.max(mean["train_accuracy"][stable]) - FIT]
  lowest, highest = int(stable[0]), int(fits[-1])
  fit = int(stable[np.argmin(mean["train_loss"][stable])])
  below = stable[stable < highest]
  if len(below) == 0 or lowest == fit:
    return {**numbers, "stable_lrs": len(stable), "verdict": "inconclusive"}
  tests = {"underfit": [paired(m, "train_loss", lowest, fit, num_test)]}
  for measure in ("accuracy_gap", "loss_gap"):
    tests[measure] = [paired(m, measure, highest, int(j), num_test) for j in below]
    for t, j in zip(tests[measure], below, strict=True):
      t["lower_lr"] = float(lr[j])
  flat = [t for group in tests.values() for t in group]
  for t, p in zip(flat, analysis.holm([t["p"] for t in flat]), strict=True):
    t["p_holm"] = float(p)
  parts = {
    "low_underfits": _part(tests["underfit"]),
    "high_overfits": _part(tests["accuracy_gap"]),
    "high_overfits_by_loss": _part(tests["loss_gap"]),
  }
  if {parts["high_overfits"], parts["high_overfits_by_loss"]} == {"supported", "refuted"}:
    verdict = "depends on the measure of overfitting (accuracy gap or loss gap)"
  elif len(set(parts.values())) == 1:
    verdict = parts["low_underfits"]
  else:
    verdict = "depends on the part: " + "; ".join(f"{k} {v}" for k, v in parts.items())
  at = lambda k: (
    {name: float(mean[name][k]) for name in m} | {f"{name}_se": float(se[name][k]) for name in m}
  )
  collapsed = stable[stable > highest]
  best_by = lambda name, sign: float(lr[stable[np.argmax(sign * mean[name][stable])]])
  return {
    **numbers,
    "stable_lrs": [float(lr[lowest]), float(lr[stable[-1]])],
    "fitting_lrs": [float(lr[fits[0]]), float(lr[highest])],
    "collapsed_lrs": [float(v) for v in lr[stable[stable > highest]]],
    "collapsed_train_accuracy": [float(mean["train_accuracy"][k]) for k in collapsed],
    "best_fit_lr": float(lr[fit]),
    "best_test_accuracy_lr": best_by("test_accuracy", 1),
    "best_test_loss_lr": best_by("test_loss", -1),
    "largest_accuracy_gap_lr": best_by("accuracy_gap", 1),
    "largest_loss_gap_lr": best_by("loss_gap", 1),
    "max_train_accuracy": float(np.max(mean["train_accuracy"][stable])),
    "lowest_lr": at(lowest),
    "best_fit": at(fit),
    "highest_fitting_lr": at(highest),
    "per_lr": {f"{v:.4g}": at(k) for k, v in enumerate(lr) if k in stable},
    "comparisons": len(flat),
    "tests": tests,
    "spearman_lr_accuracy_gap": analysis.spearman(lr[stable], mean["accuracy_gap"][stable]),
    "spearman_lr_loss_gap": analysis.spearman(lr[stable], mean["loss_gap"][stable]),
    "parts": parts,
    "verdict": verdict,
  }


def _figure(result: sweep.SweepResult, name: str, numbers: dict, path: Path) -> Path:
  """Train-set vs test loss and accuracy, and the two gaps, against the rate (mean ± SE)."""
  guarded = analysis.fail_at_chance(
    result, numbers["chance_loss"], rtol=CHANCE_RTOL, select="final_val_loss"
  )
  lr, m = result.grid["lr"], _measures(guarded)
  figure = Figure(figsize=(15, 4.6), layout="constrained")
  panels = figure.subplots(1, 3)

  def band(values):  # mean ± SE over seeds; a rate failed in every seed has no band
    with warnings.catch_warnings():
      warnings.simplefilter("ignore", RuntimeWarning)
      return np.nanmean(values, 0), np.nanstd(values, 0, ddof=1) / np.sqrt(len(values))

  for axes, kind in zip(panels[:2], ("loss", "accuracy"), strict=True):
    for split, color in (("train", "C0"), ("test", "C3")):
      mean, se = band(m[f"{split}_{kind}"])
      label = "whole (noisy) training set" if split == "train" else "test set (same noise)"
      axes.plot(lr, mean, "o-", color=color, label=label)
      axes.fill_between(lr, mean - se, mean + se, color=color, alpha=0.25)
    if kind == "loss":
      axes.axhline(numbers["chance_loss"], color="gray", linestyle="--", label="chance loss")
    axes.set(ylabel=f"final {kind} (mean ± SE)")
    axes.set_title(f"{name}: train vs test {kind}", fontsize="medium")
  for measure, color in (("accuracy_gap", "C2"), ("loss_gap", "C4")):
    mean, se = band(m[measure])
    label = "train acc - test acc" if measure == "accuracy_gap" else "test loss - train loss"
    panels[2].plot(lr, mean, "o-", color=color, label=label)
    panels[2].fill_between(lr, mean - se, mean + se, color=color, alpha=0.25)
  panels[2].axhline(0, color="black", linewidth=0.8)
  panels[2].set(ylabel="generalization gap (mean ± SE)")
  panels[2].set_title("the gaps (accuracy and loss)", fontsize="medium")
  failed = np.any(guarded.history.diverged, axis=0)
  for axes in panels:
    for value in lr[failed]:
      axes.axvline(value, color="red", alpha=0.15, linewidth=6)
    if np.any(failed):
      axes.plot([], [], color="red", alpha=0.3, linewidth=6, label="diverged or dead (any seed)")
    if "fitting_lrs" in numbers:
      axes.axvspan(*numbers["fitting_lrs"], color="green", alpha=0.08, label="fitting rates")
    axes.set(xscale="log", xlabel="learning rate (SGD, momentum 0.9)")
    axes.set_xticks(lr, [f"{v:.2g}" for v in lr], fontsize="x-small", rotation=45)
    axes.minorticks_off()
    axes.grid(alpha=0.3)
    axes.legend(fontsize="x-small")
  figure.savefig(path, dpi=120)
  return path


def report(out: Path):
  numbers, figures = {}, []
  for folder in sorted(p for p in out.iterdir() if (p / "sweep.json").exists()):
    result = sweep.SweepResult.load(folder)
    numbers[folder.name] = _judge(result)
    path = out / f"gap_{folder.name}.png"
    figures.append(_figure(result, folder.name, numbers[folder.name], path))
  verdicts = {n["verdict"] for n in numbers.values()}
  verdict = verdicts.pop() if len(verdicts) == 1 else "depends on the task"
  return numbers, verdict, figures


if __name__ == "__main__":
  sys.exit(common.main(sys.modules[__name__]))
