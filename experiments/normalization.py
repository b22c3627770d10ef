"""Claim 8: normalizing the input features widens the range of usable learning rates.

The essay: "If the input features have vastly different scales, it may be
beneficial to normalize or standardize the data before training. This helps
ensure that the learning rate is well-suited for all features". For each task,
full-batch gradient descent (plain SGD on the whole training set, so that the
classical stability limit ``lr < 2 / L`` applies) sweeps log-spaced learning
rates twice: on the raw features and on standardized ones (z-scored with
training statistics).

For each version the experiment measures the usable range (final validation
accuracy within 5 points of the best; for regression, final validation loss
within 5% of the best) and its width in decades, the divergence threshold, and
the curvature that explains them. For a linear model on features ``X`` the
curvature is set by the spectrum of ``X^T X / n`` (with a column of ones for the
bias): for least squares it *is* the Hessian, so ``L = lambda_max`` and GD
diverges above ``2 / L``; for softmax regression the Hessian is at most
``lambda_max / 2`` (the softmax covariance has norm <= 1/2), so ``2 / L >= 4 /
lambda_max``. The condition number ``kappa = lambda_max / lambda_min`` (over
the non-zero eigenvalues) bounds the width: the top of the range is ``~2 / L``,
the bottom is the rate that still fits the low-curvature directions within the
budget, ``~1 / (lambda_min * steps)``. The sharpness (top Hessian eigenvalue) of
the actual loss at initialization gives ``2 / sharpness`` for every model.

The claim holds on a task when the standardized usable range is wider than the
raw one by more than one grid step (the resolution of a width).
"""

import dataclasses
import json
import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make `experiments` importable
  sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import jax
import numpy as np
from matplotlib.figure import Figure

from experiments import common
from lrlab import analysis, data, optimizers, sweep, tasks

CLAIM = "Normalizing (standardizing) the input features widens the range of usable learning rates."
SIZES = {
  "tiny": dict(tasks=("linreg",), per_decade=1, steps=20, seeds=1),
  "default": dict(
    tasks=("digits-logreg", "mnist1d-logreg", "linreg"), per_decade=4, steps=1000, seeds=2
  ),
  "full": dict(
    tasks=("digits-logreg", "mnist1d-logreg", "linreg", "digits-mlp", "mnist1d-mlp"),
    per_decade=8,
    steps=5000,
    seeds=5,
  ),
}
LR_RANGE = (1e-6, 1e4)
VERSIONS = ("raw", "standardized")
TOLERANCE = 0.05
KEY = jax.random.key(0)


def build(name: str, version: str) -> tasks.Task:
  """Task ``name`` on raw or standardized features."""
  standardized = version == "standardized"
  if name.startswith(("digits", "mnist1d")):
    return tasks.get(name, standardize=standardized)
  task = tasks.get(name)  # linreg: raw features from the generator
  if not standardized:
    return task
  dataset = data.standardize(task.dataset)
  return dataclasses.replace(task, dataset=dataset, L=None, mu=None, optimum=None)


def curvature(task: tasks.Task) -> dict:
  """Spectrum of ``X^T X / n`` (a ones column for a model with bias) and sharpness at init.

  The initial parameters are those of seed 0 of the sweep (same key path).
  """
  x = np.asarray(task.dataset.x_train, np.float64).reshape(task.num_train, -1)
  if task.num_classes is not None:  # classifiers have a bias
    x = np.concatenate([x, np.ones((len(x), 1))], axis=1)
  eigenvalues = np.linalg.eigvalsh(x.T @ x / len(x))[::-1]
  init_key, _ = jax.random.split(jax.random.fold_in(KEY, 0))
  params, model_state = task.init(init_key)
  batch = task.split("train")
  loss = lambda p: task.eval_loss(p, model_state, batch)[0]
  top = analysis.sharpness(loss, params, key=jax.random.key(1), num_iterations=100, tol=1e-5)
  return {"eigenvalues": eigenvalues, "sharpness_at_init": float(top)}


def run(out: Path, *, tasks, per_decade, steps, seeds) -> None:
  decades = round(np.log10(LR_RANGE[1] / LR_RANGE[0]))
  grid = {"lr": sweep.log_grid(*LR_RANGE, decades * per_decade + 1)}
  for name in tasks:
    for version in VERSIONS:
      task = build(name, version)
      result = sweep.run(
        task,
        lambda hp: optimizers.sgd(hp["lr"]),
        grid,
        steps=steps,
        batch_size=None,
        key=KEY,
        eval_every=steps // 10,
        seeds=seeds,
      )
      folder = result.save(out / name / version)
      found = curvature(task)
      np.save(folder / "eigenvalues.npy", found["eigenvalues"])
      (folder / "curvature.json").write_text(
        json.dumps({"sharpness_at_init": found["sharpness_at_init"]}) + "\n"
      )


def _metric(result: sweep.SweepResult) -> str:
  return "final_val_accuracy" if result.has_accuracy else "final_val_loss"


def _measure(folder: Path) -> dict:
  result = sweep.SweepResult.load(folder)
  eigenvalues = np.load(folder / "eigenvalues.npy")
  sharpness = json.loads((folder / "curvature.json").read_text())["sharpness_at_init"]
  top = float(eigenvalues[0])
  nonzero = eigenvalues[eigenvalues > 1e-9 * top]
  classifier = result.has_accuracy
  usable = result.usable_range(_metric(result), TOLERANCE)
  best = result.best(_metric(result), warn=False)
  threshold = result.divergence_threshold(metric=_metric(result))
  lr = result.grid["lr"]
  below = float(lr[lr < threshold].max()) if threshold is not None else None
  return {
    "usable_range": list(usable),
    "usable_decades": analysis.decades(usable),
    "divergence_threshold": threshold,
    "largest_lr_below_threshold": below,
    "best_lr": best["hyperparameters"]["lr"],
    "best_" + _metric(result): best["value"],
    "lambda_max": top,
    "lambda_min_nonzero": float(nonzero[-1]),
    "zero_eigenvalues": int(len(eigenvalues) - len(nonzero)),
    "condition_number": top / float(nonzero[-1]),
    # Least squares: L = lambda_max. Softmax regression: L <= lambda_max / 2.
    "two_over_L": (4.0 if classifier else 2.0) / top,
    "sharpness_at_init": sharpness,
    "two_over_sharpness": 2.0 / sharpness,
    "threshold_over_two_over_sharpness": (
      threshold * sharpness / 2.0 if threshold is not None else None
    ),
  }


def _judge(name: str, raw: dict, std: dict, step: float) -> dict:
  gain = std["usable_decades"] - raw["usable_decades"]
  return {
    "raw": raw,
    "standardized": std,
    "width_gain_decades": gain,
    "condition_number_ratio": raw["condition_number"] / std["condition_number"],
    "grid_step_decades": step,
    "verdict": analysis.verdict(gain, step, margin=1.0),
  }


def _figure(name: str, folders: dict[str, Path], numbers: dict, path: Path) -> Path:
  """Final metric vs learning rate, raw vs standardized, with ranges and thresholds."""
  figure = Figure(figsize=(8, 4.5), layout="constrained")
  axes = figure.add_subplot()
  for i, version in enumerate(VERSIONS):
    result = sweep.SweepResult.load(folders[version])
    metric, n, color = _metric(result), numbers[version], f"C{i}"
    mean, low, high = analysis.seed_band(result.metric(metric))
    lr = result.grid["lr"]
    finite = np.isfinite(mean)
    axes.plot(lr[finite], mean[finite], "o-", color=color, label=f"{version}")
    axes.fill_between(
      lr, np.where(finite, low, np.nan), np.where(finite, high, np.nan), color=color, alpha=0.2
    )
    if np.isfinite(n["usable_decades"]):
      axes.axvspan(
        *n["usable_range"],
        color=color,
        alpha=0.1,
        label=f"{version}: usable, {n['usable_decades']:.2f} decades",
      )
    if n["divergence_threshold"] is not None:
      axes.axvline(
        n["divergence_threshold"],
        color=color,
        linestyle="--",
        label=f"{version}: diverges from {n['divergence_threshold']:.3g}",
      )
    axes.axvline(
      n["two_over_sharpness"],
      color=color,
      linestyle=":",
      label=f"{version}: 2 / sharpness at init = {n['two_over_sharpness']:.3g}",
    )
  if metric.endswith("loss"):
    axes.set_yscale("log")
  axes.set(
    xscale="log",
    xlabel="learning rate (full-batch gradient descent)",
    ylabel=f"{metric} (seed mean; diverged left out)",
    title=f"{name}: raw vs standardized features",
  )
  axes.grid(alpha=0.3)
  axes.legend(fontsize="x-small")
  figure.savefig(path, dpi=120)
  return path


def _spectra(spectra: dict[str, dict[str, np.ndarray]], path: Path) -> Path:
  """Sorted eigenvalues of ``X^T X / n`` per task, raw vs standardized."""
  figure = Figure(figsize=(4 * len(spectra), 3.8), layout="constrained")
  for axes, (name, versions) in zip(
    figure.subplots(1, len(spectra), squeeze=False)[0], spectra.items(), strict=True
  ):
    for i, (version, eigenvalues) in enumerate(versions.items()):
      positive = eigenvalues[eigenvalues > 1e-9 * eigenvalues[0]]
      kappa = positive[0] / positive[-1]
      axes.plot(positive, ".-", color=f"C{i}", label=f"{version} (kappa = {kappa:.3g})")
    axes.set(
      yscale="log",
      xlabel="index",
      ylabel="eigenvalue of X^T X / n (ones column for a bias)",
      title=name,
    )
    axes.grid(alpha=0.3)
    axes.legend(fontsize="small")
  figure.savefig(path, dpi=120)
  return path


def report(out: Path):
  numbers, figures, spectra = {}, [], {}
  for task_folder in sorted(p for p in out.iterdir() if (p / "raw" / "sweep.json").exists()):
    folders = {version: task_folder / version for version in VERSIONS}
    measured = {version: _measure(folder) for version, folder in folders.items()}
    lr = sweep.SweepResult.load(folders["raw"]).grid["lr"]
    step = float(np.log10(lr[1] / lr[0]))
    numbers[task_folder.name] = _judge(task_folder.name, *measured.values(), step)
    path = out / f"usable_range_{task_folder.name}.png"
    figures.append(_figure(task_folder.name, folders, measured, path))
    spectra[task_folder.name] = {v: np.load(f / "eigenvalues.npy") for v, f in folders.items()}
  figures.append(_spectra(spectra, out / "spectra.png"))
  verdicts = {n["verdict"] for n in numbers.values()}
  if len(verdicts) == 1:
    verdict = verdicts.pop()
  else:
    verdict = "depends on the task: " + "; ".join(f"{k} {n['verdict']}" for k, n in numbers.items())
  return numbers, verdict, figures


if __name__ == "__main__":
  sys.exit(common.main(sys.modules[__name__]))
