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

The usable range is read per seed (5 at the default size), after the dead-network
guard (:func:`lrlab.analysis.fail_at_chance`: a run above the best rate whose final
training loss is within 5% of chance, :func:`lrlab.analysis.chance_loss`, counts as
failed, so a saturated classifier ends the range and sets the threshold). The
effect on a task is the width gain, standardized minus raw, paired over seeds
(:func:`lrlab.analysis.paired_difference`, ddof=1). A width is read on a grid, so
its standard error adds to the seeds' the rounding of its ends: uniform over one
grid step, SD ``step / sqrt(12)`` each, four ends in a difference of two widths,
so ``step / sqrt(3)``. The claim holds on a task when the gain exceeds 2 standard
errors after Holm's correction over the tasks (:func:`lrlab.analysis.holm`, at
:data:`lrlab.analysis.ALPHA`). The rate is picked by validation accuracy, the
usable range's metric (validation loss for linreg); the best rate by validation
loss is reported beside it.
"""

import dataclasses
import json
import math
import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make `experiments` importable
  sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import jax
import numpy as np
from matplotlib.figure import Figure

from experiments import common
from lrlab import analysis, data, optimizers, sweep, tasks, train

CLAIM = "Normalizing (standardizing) the input features widens the range of usable learning rates."
SIZES = {
  "tiny": dict(tasks=("linreg",), per_decade=1, steps=20, seeds=2),
  "default": dict(
    tasks=("digits-logreg", "mnist1d-logreg", "linreg"), per_decade=4, steps=1000, seeds=5
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
CHANCE_RTOL = 0.05
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
      chance = analysis.chance_loss(task.dataset.y_train, task.num_classes)
      (folder / "curvature.json").write_text(
        json.dumps({"sharpness_at_init": found["sharpness_at_init"], "chance_loss": chance}) + "\n"
      )


def _metric(result: sweep.SweepResult) -> str:
  return "final_val_accuracy" if result.has_accuracy else "final_val_loss"


def load(folder: Path) -> sweep.SweepResult:
  """The saved sweep with the dead-network guard applied (chance level saved beside it)."""
  result = sweep.SweepResult.load(folder)
  chance = json.loads((folder / "curvature.json").read_text())["chance_loss"]
  return analysis.fail_at_chance(result, chance, rtol=CHANCE_RTOL, select=_metric(result))


def _one_seed(result: sweep.SweepResult, s: int) -> sweep.SweepResult:
  h = train.History(**{k: v[s : s + 1] for k, v in result.history._asdict().items()})
  return dataclasses.replace(result, seeds=result.seeds[s : s + 1], history=h)


def per_seed_widths(result: sweep.SweepResult) -> np.ndarray:
  """``(S,)`` each seed's usable width in decades (NaN where its best run failed)."""
  metric = _metric(result)
  return np.array(
    [
      analysis.decades(_one_seed(result, s).usable_range(metric, TOLERANCE))
      for s in range(result.num_seeds)
    ]
  )


def _measure(folder: Path) -> dict:
  result = load(folder)
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
  widths = per_seed_widths(result)
  found = {
    "seeds": result.num_seeds,
    "usable_range": list(usable),
    "usable_decades": analysis.decades(usable),
    "usable_decades_per_seed": widths,
    "dead_runs": result.config["dead_guard"]["runs"],
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
  if classifier:  # the rate by the other metric, where it differs
    by_loss = result.best("final_val_loss", warn=False)
    found["best_lr_by_val_loss"] = by_loss["hyperparameters"]["lr"]
    found["best_final_val_loss"] = by_loss["value"]
  return found


def _judge(name: str, raw: dict, std: dict, step: float) -> dict:
  """The width gain, paired over seeds, its SE with the grid's rounding (``step / sqrt 3``)."""
  grid_se = step / math.sqrt(3.0)
  gain = analysis.paired_difference(
    std["usable_decades_per_seed"], raw["usable_decades_per_seed"], extra_se=grid_se
  )
  gain["se_grid"] = grid_se
  return {
    "raw": raw,
    "standardized": std,
    "width_gain_decades": std["usable_decades"] - raw["usable_decades"],
    "width_gain_per_seed": gain,
    "condition_number_ratio": raw["condition_number"] / std["condition_number"],
    "grid_step_decades": step,
  }


def _figure(name: str, folders: dict[str, Path], numbers: dict, path: Path) -> Path:
  """Final metric vs learning rate, raw vs standardized, with ranges and thresholds."""
  figure = Figure(figsize=(8, 4.5), layout="constrained")
  axes = figure.add_subplot()
  for i, version in enumerate(VERSIONS):
    result = load(folders[version])
    metric, n, color = _metric(result), numbers[version], f"C{i}"
    values = result.metric(metric)
    mean = values.mean(axis=0)
    with np.errstate(invalid="ignore"):
      se = values.std(axis=0, ddof=1) / np.sqrt(len(values)) if len(values) > 1 else 0 * mean
    lr = result.grid["lr"]
    finite = np.isfinite(mean) & np.isfinite(se)
    axes.plot(lr[finite], mean[finite], "o-", color=color, label=f"{version}")
    axes.fill_between(
      lr,
      np.where(finite, mean - se, np.nan),
      np.where(finite, mean + se, np.nan),
      color=color,
      alpha=0.25,
      label=f"{version}: ± 1 SE over {len(values)} seeds",
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
        label=f"{version}: fails (diverges or dies) from {n['divergence_threshold']:.3g}",
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
    ylabel=f"{metric} (seed mean; failed runs as the worst)",
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
  names = list(numbers)
  adjusted = analysis.holm([numbers[n]["width_gain_per_seed"]["p"] for n in names])
  for name, p in zip(names, adjusted, strict=True):
    n, gain = numbers[name], numbers[name]["width_gain_per_seed"]
    gain["p_holm"] = float(p)
    one_seed = n["raw"]["seeds"] < 2  # a zero spread never makes a verdict
    significant = bool(p < analysis.ALPHA) and not one_seed
    n["verdict"] = (
      "inconclusive" if not significant else "supported" if gain["gap"] > 0 else "refuted"
    )
  numbers["comparisons"] = {
    "tests": int(np.sum(np.isfinite(adjusted))),
    "correction": "Holm",
    "level": analysis.ALPHA,
    "margin_se": 2,  # ALPHA is the two-sided level of 2 standard errors
  }
  verdicts = {numbers[n]["verdict"] for n in names}
  if len(verdicts) == 1:
    verdict = verdicts.pop()
  else:
    verdict = "depends on the task: " + "; ".join(f"{k} {numbers[k]['verdict']}" for k in names)
  return numbers, verdict, figures


if __name__ == "__main__":
  sys.exit(common.main(sys.modules[__name__]))
