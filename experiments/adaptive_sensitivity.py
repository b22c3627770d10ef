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

Every curve has the dead-network guard (:func:`lrlab.analysis.fail_at_chance`):
a run above the optimizer's best rate whose final train loss sits within 5% of
chance counts as failed, so it ends the usable range and sets the divergence
threshold. The rate is picked by the claim's metric, final validation accuracy;
the best rate by final validation loss is reported beside it.

The claim holds for an adaptive optimizer when its usable range is wider than
the baseline's by more than 2 standard errors. The standard error of a width
difference comes from a bootstrap over seeds, paired (both optimizers' widths
recomputed on the same resampled seeds), combined with the grid's rounding of
the four ends (each uniform over a step: ``step / sqrt(3)``). The 8 comparisons
(4 adaptive methods x 2 baselines) are Holm-corrected at ``lrlab.analysis.ALPHA``; each
adaptive method's verdict is its comparison with the baseline of wider usable range.
"""

import dataclasses
import inspect
import math
import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make `experiments` importable
  sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import jax
import numpy as np
from matplotlib.figure import Figure

from experiments import common
from lrlab import analysis, optimizers, sweep, tasks
from lrlab.analysis import ALPHA

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
    task_options={},  # and the rates: kfold_cv's tiny Adam sweep, one compiled program for both
    optimizers=("sgd", "adam"),
    lr_range=(1e-3, 1e-1),
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
    seeds=5,
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
CHANCE_RTOL = 0.05  # the dead-network guard: final train loss within 5% of chance
BOOTSTRAP = 500  # resamplings of the seeds


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


def _resample(result: sweep.SweepResult, draw: np.ndarray) -> sweep.SweepResult:
  """``result`` with its seeds drawn (with replacement) as ``draw``: one bootstrap replicate."""
  history = jax.tree.map(lambda a: np.asarray(a)[draw], result.history)
  return dataclasses.replace(result, seeds=result.seeds[draw], history=history)


def _width(result: sweep.SweepResult) -> float:
  """The usable range's width in decades (NaN if there is none)."""
  return analysis.decades(result.usable_range(METRIC, TOLERANCE))


def _good_decades(result: sweep.SweepResult, level: float, step: float) -> float:
  """Decades of the grid (each point counts one grid step) whose seed mean is >= ``level``."""
  return float(np.sum(result.seed_mean(METRIC) >= level)) * step


def _load(out: Path) -> tuple[dict[str, sweep.SweepResult], float, int]:
  """Each optimizer's sweep with the dead-network guard applied; the chance loss; test size."""
  raw = {
    n: sweep.SweepResult.load(out / n) for n in OPTIMIZERS if (out / n / "sweep.json").exists()
  }
  first = next(iter(raw.values()))
  problem = tasks.get(first.config["task"])  # the split and labels do not depend on options
  chance = analysis.chance_loss(problem.dataset.y_train, problem.num_classes)
  guard = lambda r: analysis.fail_at_chance(r, chance, rtol=CHANCE_RTOL, select=METRIC)
  return {n: guard(r) for n, r in raw.items()}, chance, len(problem.dataset.y_test)


def _per_optimizer(name: str, result: sweep.SweepResult, top: float, step: float, n_test: int):
  """One optimizer's best rate (by val accuracy and by val loss), usable range and threshold."""
  best = result.best(METRIC, warn=False)
  lo, hi = result.usable_range(METRIC, TOLERANCE)
  lrs = result.grid["lr"]
  at_default = int(np.argmin(np.abs(np.log(lrs / DEFAULT_LR[name]))))
  test = result.metric("final_test_accuracy")[:, best["index"]]
  p = float(test.mean())
  by_loss = result.best("final_val_loss", warn=False)
  return {
    "best_lr": best["hyperparameters"]["lr"],
    "best_accuracy": best["value"],
    "best_accuracy_se": float(np.std(result.metric(METRIC)[:, best["index"]], ddof=1))
    / math.sqrt(result.num_seeds),
    "best_test_accuracy": p,
    "best_test_accuracy_se": math.hypot(
      float(np.std(test, ddof=1)) / math.sqrt(test.size), math.sqrt(p * (1 - p) / n_test)
    ),
    "best_lr_by_val_loss": by_loss["hyperparameters"]["lr"],
    "best_lr_differs_by_loss": bool(by_loss["index"] != best["index"]),
    "usable_range": [lo, hi],
    "usable_decades": _width(result),
    "good_decades": _good_decades(result, top - TOLERANCE, step),
    "default_lr": DEFAULT_LR[name],
    "accuracy_at_default_lr": float(result.seed_mean(METRIC)[at_default]),
    "default_lr_in_usable_range": bool(lo <= lrs[at_default] <= hi),
    "divergence_threshold": result.divergence_threshold(metric=METRIC),
    "dead_runs": result.config["dead_guard"]["runs"],
    "best_on_grid_edge": result.edge_warning(METRIC) is not None,
  }


def report(out: Path):
  results, chance, n_test = _load(out)
  first = next(iter(results.values()))
  lrs = first.grid["lr"]
  step = float(np.log10(lrs[1] / lrs[0]))  # grid spacing in decades
  top = max(float(np.max(r.seed_mean(METRIC))) for r in results.values())
  per_opt = {n: _per_optimizer(n, r, top, step, n_test) for n, r in results.items()}
  draws = np.random.default_rng(0).integers(0, first.num_seeds, (BOOTSTRAP, first.num_seeds))
  boot = {n: np.array([_width(_resample(r, d)) for d in draws]) for n, r in results.items()}
  for name in per_opt:
    per_opt[name]["usable_decades_se"] = float(np.nanstd(boot[name], ddof=1))
  baselines = [b for b in BASELINES if b in per_opt]
  adaptive = [n for n in per_opt if n not in BASELINES]
  comparisons, verdicts, family = {}, {}, []
  for name in adaptive:
    comparisons[name] = {}
    for base in baselines:
      effect = per_opt[name]["usable_decades"] - per_opt[base]["usable_decades"]
      se = math.hypot(float(np.nanstd(boot[name] - boot[base], ddof=1)), step / math.sqrt(3))
      z = effect / se
      comparisons[name][base] = {
        "extra_decades": effect,
        "se": se,
        "z": z,
        "p": math.erfc(abs(z) / math.sqrt(2)) if math.isfinite(z) else math.nan,
      }
      family.append(comparisons[name][base])
  for entry, p_holm in zip(family, analysis.holm([e["p"] for e in family]), strict=True):
    entry["p_holm"] = float(p_holm)
    won = "supported" if entry["extra_decades"] > 0 else "refuted"
    entry["verdict"] = won if np.isfinite(p_holm) and p_holm <= ALPHA else "inconclusive"
  wider = max(baselines, key=lambda b: per_opt[b]["usable_decades"]) if baselines else None
  verdicts = {name: comparisons[name][wider]["verdict"] for name in adaptive} if wider else {}
  if not verdicts:
    verdict = "inconclusive"
  elif len(set(verdicts.values())) == 1:
    verdict = next(iter(verdicts.values()))
  else:
    groups = {v: [n for n in verdicts if verdicts[n] == v] for v in analysis.VERDICTS}
    verdict = (
      f"depends on the optimizer (against {wider}, Holm over {len(family)} comparisons: "
      + "; ".join(f"{v}: {', '.join(names)}" for v, names in groups.items() if names)
      + ")"
    )
  numbers = {
    "task": first.config.get("task"),
    "metric": METRIC,
    "tolerance": TOLERANCE,
    "seeds": first.num_seeds,
    "grid_step_decades": step,
    "chance_loss": chance,
    "test_examples": n_test,
    "best_accuracy_any_optimizer": top,
    "optimizers": per_opt,
    "versus_baselines": comparisons,
    "baseline_compared": wider,
    "comparisons": len(family),
    "alpha": ALPHA,
    "bootstrap": BOOTSTRAP,
  }
  figures = _sensitivity_figure(results, out / "sensitivity.png")
  figures += _width_figure(per_opt, top, out / "usable_decades.png")
  return numbers, verdict, figures


def _sensitivity_figure(results: dict[str, sweep.SweepResult], path: Path) -> list[Path]:
  figure = Figure(figsize=(9, 5), layout="constrained")
  axes = figure.add_subplot()
  for i, (name, result) in enumerate(results.items()):
    lrs = result.grid["lr"]
    values = result.metric(METRIC)  # a failed run (diverged or dead) counts as 0
    mean = values.mean(0)
    se = values.std(0, ddof=1) / np.sqrt(len(values))
    style = "--" if name in BASELINES else "-"
    axes.plot(lrs, mean, style, marker=".", color=f"C{i}", label=name)
    axes.fill_between(lrs, mean - se, mean + se, color=f"C{i}", alpha=0.2)
    default = np.argmin(np.abs(np.log(lrs / DEFAULT_LR[name])))
    axes.plot(lrs[default], mean[default], "D", color=f"C{i}", markeredgecolor="k")
    lo, hi = result.usable_range(METRIC, TOLERANCE)
    if np.isfinite(lo):
      y = -0.03 - 0.025 * i
      axes.plot([lo, hi], [y, y], color=f"C{i}", linewidth=4, solid_capstyle="butt")
  axes.plot([], [], "D", color="w", markeredgecolor="k", label="default lr")
  first = next(iter(results.values()))
  lrs = first.grid["lr"]
  axes.set_xscale("log")
  axes.set_xticks(lrs[::4], [f"{v:.0e}" for v in lrs[::4]])
  axes.set(
    xlabel="learning rate",
    ylabel=f"{METRIC} (seed mean ± SE; failed runs: 0)",
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
  usable_se = [per_opt[n]["usable_decades_se"] for n in names]
  good = [per_opt[n]["good_decades"] for n in names]
  colors = ["0.6" if n in BASELINES else "C0" for n in names]
  left.bar(x - 0.2, usable, 0.4, yerr=usable_se, capsize=3, color=colors,
           label="usable range (own best) ± bootstrap SE")  # fmt: skip
  left.bar(x + 0.2, good, 0.4, color=colors, alpha=0.5, hatch="//", label="good decades (any best)")
  left.set_xticks(x, names, rotation=30)
  left.set_ylabel("decades of learning rate")
  left.set_title(f"Width of the usable learning rates (tolerance {TOLERANCE:g})")
  left.legend(fontsize="small")
  best = [per_opt[n]["best_accuracy"] for n in names]
  se = [per_opt[n]["best_accuracy_se"] for n in names]
  right.bar(x, best, 0.6, yerr=se, color=colors, capsize=3)
  right.axhline(top - TOLERANCE, color="red", linestyle="--", linewidth=1,
                label=f"best of any optimizer - {TOLERANCE:g}")  # fmt: skip
  right.set_xticks(x, names, rotation=30)
  right.set_ylim(0, 1.05 * max(best))
  right.set_ylabel(f"best {METRIC} (± SE over seeds)")
  right.set_title("Best accuracy over the grid")
  right.legend(fontsize="small")
  figure.savefig(path, dpi=120)
  return [path]


if __name__ == "__main__":
  sys.exit(common.main(sys.modules[__name__]))
