"""Claim 6: adaptive methods (AdaGrad, RMSprop, AdaDelta, Adam) reduce the need to tune the rate.

The essay: adaptive methods "help to overcome the challenge of manually tuning
the learning rate". If so, their final accuracy should depend less on the
learning rate than plain SGD's: a wider band of rates gives a good result.

For each optimizer (the four adaptive ones, and SGD with and without momentum
as baselines) one sweep over the same log-spaced learning rates trains the
MNIST-1D MLP with the same seeds (common random numbers: seed ``s`` gives every
optimizer the same initial weights and batch order). From each sweep:

- the DeepOBS-style sensitivity curve, final validation accuracy against the
  learning rate, with its seed band;
- the width, in decades, of the usable range: the contiguous rates around the
  optimizer's own best whose seed-mean accuracy is within ``TOLERANCE`` of it
  (:meth:`SweepResult.usable_range`);
- the width of the rates within ``TOLERANCE`` of the best accuracy of *any*
  optimizer ("good decades"), which does not reward a curve that is flat
  because it is bad everywhere;
- the best accuracy.

The claim holds for an adaptive optimizer when its usable range is wider than
the baseline's by more than twice the noise. The noise of a width difference
is the standard deviation over seeds of the same difference measured on each
seed alone (paired by seed), and at least one grid step. The overall verdict
compares each adaptive method with the baseline of wider usable range.
"""

import inspect
import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make `experiments` importable
  sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import jax
import numpy as np
from matplotlib.figure import Figure

from experiments import common
from lrlab import analysis, optimizers, sweep, tasks, train

CLAIM = (
  "Adaptive methods (AdaGrad, RMSprop, AdaDelta, Adam) reduce the need to tune the learning rate."
)
OPTIMIZERS = {  # name: lr -> optimizer
  "sgd": lambda lr: optimizers.sgd(lr),
  "sgd-momentum": lambda lr: optimizers.sgd(lr, momentum=0.9),
  "adagrad": lambda lr: optimizers.adagrad(lr),
  "rmsprop": lambda lr: optimizers.rmsprop(lr),
  "adadelta": lambda lr: optimizers.adadelta(lr),
  "adam": lambda lr: optimizers.adam(lr),
}
BASELINES = ("sgd", "sgd-momentum")
DEFAULT_LR = {  # lrlab's (= PyTorch's) default rates: what an untuned user gets
  name: inspect.signature(getattr(optimizers, name.split("-")[0]))
  .parameters["learning_rate"]
  .default
  for name in OPTIMIZERS
}
SIZES = {
  "tiny": dict(
    task="mnist1d-mlp",
    task_options={"hidden": (32,)},
    optimizers=("sgd", "adam"),
    lr_range=(1e-3, 1.0),
    per_decade=1,
    steps=30,
    seeds=2,
  ),
  "default": dict(
    task="mnist1d-mlp",
    task_options={},
    optimizers=tuple(OPTIMIZERS),
    lr_range=(1e-5, 1e2),
    per_decade=4,
    steps=1500,
    seeds=3,
  ),
  "full": dict(
    task="mnist1d-mlp",
    task_options={},
    optimizers=tuple(OPTIMIZERS),
    lr_range=(1e-6, 1e3),
    per_decade=8,
    steps=6000,
    seeds=8,
  ),
}
METRIC = "final_val_accuracy"
TOLERANCE = 0.05  # accuracy points below the best that still count as usable


def run(out: Path, *, task, task_options, optimizers, lr_range, per_decade, steps, seeds) -> None:
  lo, hi = lr_range
  lrs = sweep.log_grid(lo, hi, round(np.log10(hi / lo) * per_decade) + 1)
  problem = tasks.get(task, **task_options)
  for name in optimizers:
    make = OPTIMIZERS[name]
    result = sweep.run(
      problem,
      lambda hp, make=make: make(hp["lr"]),
      {"lr": lrs},
      steps=steps,
      batch_size=100,
      key=jax.random.key(0),
      eval_every=steps // 10,
      seeds=seeds,
    )
    result.save(out / name)


def _one_seed(result: sweep.SweepResult, s: int) -> sweep.SweepResult:
  """The sweep as if it had run seed ``s`` only."""
  history = train.History(*(np.asarray(field)[s : s + 1] for field in result.history))
  return sweep.SweepResult(result.grid, result.seeds[s : s + 1], history, result.config)


def _width(result: sweep.SweepResult) -> float:
  return analysis.decades(result.usable_range(METRIC, TOLERANCE))


def _good_decades(result: sweep.SweepResult, level: float, step: float) -> float:
  """Decades of the grid (each point counts one grid step) whose seed mean is >= ``level``."""
  return float(np.sum(result.seed_mean(METRIC) >= level)) * step


def _load(out: Path) -> dict[str, sweep.SweepResult]:
  return {
    n: sweep.SweepResult.load(out / n) for n in OPTIMIZERS if (out / n / "sweep.json").exists()
  }


def report(out: Path):
  results = _load(out)
  lrs = next(iter(results.values())).grid["lr"]
  step = float(np.log10(lrs[1] / lrs[0]))  # grid spacing in decades
  top = max(float(np.max(r.seed_mean(METRIC))) for r in results.values())
  per_opt = {}
  for name, result in results.items():
    best = result.best(METRIC, warn=False)
    lo, hi = result.usable_range(METRIC, TOLERANCE)
    seeds = [_one_seed(result, s) for s in range(result.num_seeds)]
    lrs_here = result.grid["lr"]
    at_default = int(np.argmin(np.abs(np.log(lrs_here / DEFAULT_LR[name]))))
    per_opt[name] = {
      "best_lr": best["hyperparameters"]["lr"],
      "best_accuracy": best["value"],
      "best_accuracy_seed_std": best["std"],
      "usable_range": [lo, hi],
      "usable_decades": _width(result),
      "usable_decades_per_seed": [_width(r) for r in seeds],
      "good_decades": _good_decades(result, top - TOLERANCE, step),
      "default_lr": DEFAULT_LR[name],
      "accuracy_at_default_lr": float(result.seed_mean(METRIC)[at_default]),
      "default_lr_in_usable_range": bool(lo <= lrs_here[at_default] <= hi),
      "divergence_threshold": result.divergence_threshold(),
      "best_on_grid_edge": result.edge_warning(METRIC) is not None,
    }
  baselines = [b for b in BASELINES if b in per_opt]
  comparisons, verdicts = {}, {}
  if baselines:
    wider = max(baselines, key=lambda b: per_opt[b]["usable_decades"])
    for name in (n for n in per_opt if n not in BASELINES):
      comparisons[name] = {}
      for base in baselines:
        paired = np.subtract(
          per_opt[name]["usable_decades_per_seed"], per_opt[base]["usable_decades_per_seed"]
        )
        sd = float(np.std(paired, ddof=1)) if paired.size > 1 else 0.0
        effect = per_opt[name]["usable_decades"] - per_opt[base]["usable_decades"]
        noise = max(sd, step)
        comparisons[name][base] = {
          "extra_decades": effect,
          "noise": noise,
          "verdict": analysis.verdict(effect, noise),
        }
      verdicts[name] = comparisons[name][wider]["verdict"]
  if not verdicts:
    verdict = "inconclusive"
  elif len(set(verdicts.values())) == 1:
    verdict = next(iter(verdicts.values()))
  else:
    groups = {v: [n for n in verdicts if verdicts[n] == v] for v in analysis.VERDICTS}
    verdict = (
      "depends on the optimizer ("
      + "; ".join(f"{v}: {', '.join(names)}" for v, names in groups.items() if names)
      + ")"
    )
  numbers = {
    "task": next(iter(results.values())).config.get("task"),
    "metric": METRIC,
    "tolerance": TOLERANCE,
    "grid_step_decades": step,
    "best_accuracy_any_optimizer": top,
    "optimizers": per_opt,
    "versus_baselines": comparisons,
    "baseline_compared": wider if baselines else None,
  }
  figures = _sensitivity_figure(results, out / "sensitivity.png")
  figures += _width_figure(per_opt, top, out / "usable_decades.png")
  for name, result in results.items():
    figures.append(out / f"u_curve_{name}.png")
    sweep.plot_sensitivity(result, figures[-1], metric=METRIC, tolerance=TOLERANCE,
                           title=f"{name}: {METRIC} vs lr")  # fmt: skip
  return numbers, verdict, figures


def _sensitivity_figure(results: dict[str, sweep.SweepResult], path: Path) -> list[Path]:
  figure = Figure(figsize=(9, 5), layout="constrained")
  axes = figure.add_subplot()
  for i, (name, result) in enumerate(results.items()):
    lrs = result.grid["lr"]
    mean, low, high = analysis.seed_band(result.metric(METRIC))
    style = "--" if name in BASELINES else "-"
    axes.plot(lrs, mean, style, marker=".", color=f"C{i}", label=name)
    axes.fill_between(lrs, low, high, color=f"C{i}", alpha=0.15)
    default = np.argmin(np.abs(np.log(lrs / DEFAULT_LR[name])))
    axes.plot(lrs[default], mean[default], "D", color=f"C{i}", markeredgecolor="k")
    lo, hi = result.usable_range(METRIC, TOLERANCE)
    if np.isfinite(lo):
      y = -0.03 - 0.025 * i
      axes.plot([lo, hi], [y, y], color=f"C{i}", linewidth=4, solid_capstyle="butt")
  axes.plot([], [], "D", color="w", markeredgecolor="k", label="default lr")
  first = next(iter(results.values()))
  axes.set(
    xscale="log",
    xlabel="learning rate",
    ylabel=f"{METRIC} (seed mean, band: min to max)",
    title=f"{first.config.get('task')}: sensitivity to the learning rate, "
    f"{first.num_seeds} seeds\nbars: usable range (within {TOLERANCE:g} of own best); "
    "diamonds: default lr",
  )
  axes.title.set_fontsize("medium")
  axes.grid(alpha=0.3)
  axes.legend(fontsize="small")
  figure.savefig(path, dpi=120)
  return [path]


def _width_figure(per_opt: dict, top: float, path: Path) -> list[Path]:
  names = list(per_opt)
  x = np.arange(len(names))
  figure = Figure(figsize=(10, 4), layout="constrained")
  left, right = figure.subplots(1, 2)
  usable = [per_opt[n]["usable_decades"] for n in names]
  per_seed = [np.asarray(per_opt[n]["usable_decades_per_seed"], float) for n in names]
  good = [per_opt[n]["good_decades"] for n in names]
  colors = ["0.6" if n in BASELINES else "C0" for n in names]
  left.bar(x - 0.2, usable, 0.4, color=colors, label="usable range (own best)")
  left.bar(x + 0.2, good, 0.4, color=colors, alpha=0.5, hatch="//", label="good decades (any best)")
  for i, widths in enumerate(per_seed):
    left.plot(
      np.full(widths.size, x[i] - 0.2), widths, "k.", label="single seed" if i == 0 else None
    )
  left.set_xticks(x, names, rotation=30)
  left.set_ylabel("decades of learning rate")
  left.set_title(f"Width of the usable learning rates (tolerance {TOLERANCE:g})")
  left.legend(fontsize="small")
  best = [per_opt[n]["best_accuracy"] for n in names]
  std = [per_opt[n]["best_accuracy_seed_std"] for n in names]
  right.bar(x, best, 0.6, yerr=std, color=colors, capsize=3)
  right.axhline(top - TOLERANCE, color="red", linestyle="--", linewidth=1,
                label=f"best of any optimizer - {TOLERANCE:g}")  # fmt: skip
  right.set_xticks(x, names, rotation=30)
  right.set_ylim(0, 1.05 * max(best))
  right.set_ylabel(f"best {METRIC} (± seed std)")
  right.set_title("Best accuracy over the grid")
  right.legend(fontsize="small")
  figure.savefig(path, dpi=120)
  return [path]


if __name__ == "__main__":
  sys.exit(common.main(sys.modules[__name__]))
