"""Claim 7: the best learning rate depends on the problem: data size, depth, width, the task.

The essay names the factors and the direction of each: "the larger the
dataset, the slower the learning rate needs to be"; deep networks "may require
a lower learning rate" while "simpler models with fewer layers may benefit from
a higher learning rate"; and "when dealing with highly complex problems ... a
higher learning rate is often required" (elsewhere it says the opposite: "if
... the task is complex, a smaller learning rate may be necessary").

Each factor is one series of sweeps of SGD with momentum 0.9 over the same
log-spaced learning rates on the MNIST-1D MLP (batch 100, ``seeds`` seeds):

- data size, twice, because at a fixed number of updates a smaller training set
  is seen for more epochs (data size confounded with epochs):
  ``data_size_steps`` holds the updates fixed (``steps``), ``data_size_epochs``
  holds the epochs fixed (``steps * n / max(data_sizes)`` updates, so the
  largest set trains ``steps``). Nested random subsets of one training split
  (validation and test splits fixed); the claim predicts a falling best rate
  (sign -1) in both;
- depth: 1 to 4 hidden layers of 100 units; predicted sign -1;
- width: 2 hidden layers of 25 to 400 units, the "simpler model" read as the
  narrower one; predicted sign -1. The networks use the standard
  parametrization (SP: LeCun-normal weights, one rate for every layer). Under SP
  Adam's optimum drifts down with width (``width_transfer``), since Adam moves
  every weight by about the rate whatever its fan-in. For SGD, the theory of
  wide networks (Yang and Hu 2021, "Tensor Programs IV") has SP's stable rate
  fall like 1/width at large width (the readout's update of the logits sums
  over the hidden units), so the divergence threshold (the smallest rate that
  diverged or left the network dead, per seed) is measured beside the best
  rate: whether the best rate follows the limit, or sits below it, set by
  something width does not change, is then read off the same sweeps;
- problem complexity: MNIST-1D restricted to its first 2, 5 or 10 classes and
  the digits, all with the same number of training examples. Complexity is
  measured, not assumed: the best validation error as a fraction of chance
  error, ``(1 - accuracy) / (1 - 1 / classes)``; predicted sign +1.

The best rate of a condition is picked by the seed-mean final validation
accuracy (the claim is about which rate trains best; accuracy is what a user
reads), refined by a parabola through it and its two neighbours in log rate;
the best rate by final validation loss is reported beside it. The trend of a
series is the least-squares slope of log10(best rate) against log2(factor), in
decades per doubling. Standard errors (ddof=1) of every best rate and every
slope come from a bootstrap over seeds, paired across the conditions (the same
resampled seeds everywhere). A slope's SE adds, by ``hypot``, the grid's rounding
(:func:`experiments.common.grid_slope_se`: each best rate off by an error uniform over
one step, SD ``step / sqrt(12)``, through the least squares), since a best rate at the
grid's edge, next to a failed run or on a flat top sits on one grid point in every draw
and the bootstrap alone says 0. The term is applied to every best rate, parabola-refined
or not, and to the divergence thresholds (grid points): conservative where the parabola
applies (its error is smaller than a step's rounding, but not measured by the bootstrap
either), and one rule whichever points the refinement reaches in a draw. Each
slope is tested against 0 (``z = slope / SE``, two-sided normal p),
Holm-adjusted over the series (five tests). A series is supported when its
adjusted p is below :data:`lrlab.analysis.ALPHA` (the 2-SE level), the slope
has the predicted sign *and* the fitted line
changes by more than one grid step across the series; refuted likewise with
the opposite sign; otherwise inconclusive. Spearman's rank correlation is
reported as a description.
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

from experiments import _best_lr_depends_figures as figures_lib
from experiments import common
from lrlab import analysis, data, optimizers, sweep, tasks

CLAIM = (
  "The best learning rate depends on the problem: larger datasets and deeper networks want a "
  "smaller rate, complex problems a larger one."
)
SIZES = {
  "tiny": dict(
    num_samples=5000,
    base_hidden=(32, 32),
    data_sizes=(450, 3600),
    depths=(2,),
    widths=(32,),
    classes=(),
    digits=False,
    problem_train=1200,
    lr_range=(1e-2, 1.0),
    per_decade=2,
    steps=10,
    seeds=2,
  ),
  "default": dict(
    num_samples=10000,
    base_hidden=(100, 100),
    data_sizes=(900, 1800, 3600, 7200),
    depths=(1, 2, 3, 4),
    widths=(25, 50, 100, 200, 400),
    classes=(2, 5, 10),
    digits=True,
    problem_train=1200,
    lr_range=(1e-3, 1.0),
    per_decade=4,
    steps=1000,
    seeds=5,
  ),
  "full": dict(
    num_samples=40000,
    base_hidden=(100, 100),
    data_sizes=(450, 900, 1800, 3600, 7200, 14400, 28800),
    depths=(1, 2, 3, 4, 6, 8),
    widths=(25, 50, 100, 200, 400, 800, 1600),
    classes=(2, 3, 5, 7, 10),
    digits=True,
    problem_train=1200,
    lr_range=(1e-4, 3.0),
    per_decade=8,
    steps=5000,
    seeds=8,
  ),
}
METRIC = "final_val_accuracy"
LOSS = "final_val_loss"
BATCH_SIZE = 100
BOOTSTRAP = 1000
SERIES = {  # factor label, the sign the essay predicts
  "data_size_steps": ("training examples (steps fixed)", -1),
  "data_size_epochs": ("training examples (epochs fixed)", -1),
  "depth": ("hidden layers", -1),
  "width": ("units per hidden layer", -1),
  "complexity": ("best val error / chance error", +1),
}


def _restrict(task: tasks.Task, *, num_train=None, classes=None, name: str) -> tasks.Task:
  """``task`` on the examples of its first ``classes`` labels, then ``num_train`` of them.

  The training subset is a prefix of one fixed random permutation, so smaller
  subsets are nested in larger ones; the validation and test splits are only
  restricted to the classes. Standardization statistics stay those of the full
  training split.
  """
  ds = task.dataset
  splits = {s: ds.split(s) for s in ("train", "val", "test")}
  if classes is not None:
    splits = {s: (x[y < classes], y[y < classes]) for s, (x, y) in splits.items()}
  if num_train is not None:
    x, y = splits["train"]
    if num_train > len(y):
      raise ValueError(f"num_train must be at most {len(y)} for {name}; got {num_train}.")
    keep = np.sort(np.random.default_rng(0).permutation(len(y))[:num_train])
    splits["train"] = (x[keep], y[keep])
  arrays = {f"{c}_{s}": v for s, xy in splits.items() for c, v in zip("xy", xy, strict=True)}
  return dataclasses.replace(task, dataset=dataclasses.replace(ds, **arrays), name=name)


def epoch_steps(steps: int, n: int, full: int) -> int:
  """Updates that give ``n`` examples the epochs ``steps`` give ``full``: a multiple of 10."""
  return max(10, 10 * round(steps * n / full / 10))


def _conditions(
  *, num_samples, base_hidden, data_sizes, depths, widths, classes, digits, problem_train, steps
):
  """``({condition: (build(), steps)}, {series: [(condition, factor or None), ...]})``.

  The base condition (all training data, ``base_hidden``, ``steps``) belongs to the
  data, depth and width series. A complexity factor of ``None`` is measured later.
  """
  width, depth, full = base_hidden[0], len(base_hidden), max(data_sizes)
  mlp = lambda hidden, **kw: (
    lambda: _restrict(tasks.get("mnist1d-mlp", num_samples=num_samples, hidden=hidden), **kw)
  )
  build, series = {}, {name: [] for name in SERIES}
  for n in data_sizes:
    name = "base" if n == full else f"data-{n}"
    build[name] = (mlp(tuple(base_hidden), num_train=n, name=f"mnist1d-mlp n={n}"), steps)
    series["data_size_steps"].append((name, n))
    budget = epoch_steps(steps, n, full)
    if budget != steps:  # else the steps-fixed condition is this one too
      name = f"epochs-{n}"
      build[name] = (mlp(tuple(base_hidden), num_train=n, name=f"mnist1d-mlp n={n}"), budget)
    series["data_size_epochs"].append((name, n))
  for d in depths:
    name = "base" if d == depth else f"depth-{d}"
    hidden = (width,) * d
    build.setdefault(name, (mlp(hidden, num_train=full, name=f"mnist1d-mlp depth={d}"), steps))
    series["depth"].append((name, d))
  for w in widths:
    name = "base" if w == width else f"width-{w}"
    hidden = (w,) * depth
    build.setdefault(name, (mlp(hidden, num_train=full, name=f"mnist1d-mlp width={w}"), steps))
    series["width"].append((name, w))
  for k in classes:
    name = f"classes-{k}"
    make = mlp(tuple(base_hidden), num_train=problem_train, classes=k, name=f"{k} classes")
    build[name] = (make, steps)
    series["complexity"].append((name, None))
  if digits:
    make = lambda: _restrict(
      tasks.get("digits-mlp", hidden=tuple(base_hidden)), num_train=problem_train, name="digits"
    )
    build["digits"] = (make, steps)
    series["complexity"].append(("digits", None))
  return build, series


def run(out: Path, *, lr_range, per_decade, steps, seeds, **conditions) -> None:
  lo, hi = lr_range
  lrs = sweep.log_grid(lo, hi, round(np.log10(hi / lo) * per_decade) + 1)
  data.mnist1d(conditions["num_samples"])  # generate (and cache) once, outside the timings
  build, series = _conditions(steps=steps, **conditions)
  info = {}
  for name, (make_task, budget) in build.items():
    task = make_task()
    classes = len(np.unique(task.dataset.y_train))
    info[name] = {
      "task": task.name,
      "num_train": task.num_train,
      "classes": classes,
      "steps": budget,
      "epochs": budget * BATCH_SIZE / task.num_train,
      "chance_loss": analysis.chance_loss(task.dataset.y_train, classes),
    }
    result = sweep.run(
      task,
      lambda hp: optimizers.sgd(hp["lr"], momentum=0.9),
      {"lr": lrs},
      steps=budget,
      batch_size=BATCH_SIZE,
      key=jax.random.key(0),
      eval_every=budget // 10,
      seeds=seeds,
      progress=False,
    )
    result.save(out / name)
  (out / "conditions.json").write_text(json.dumps({"series": series, "tasks": info}) + "\n")


def _slope(x: np.ndarray, y: np.ndarray) -> float:
  """Least-squares slope of ``y`` against ``log2(x)`` (decades per doubling for log10 rates)."""
  return float(np.polyfit(np.log2(x), y, 1)[0]) if len(x) > 1 else math.nan


def _thresholds(result: sweep.SweepResult, chance: float) -> np.ndarray:
  """``(S,)`` log10 of each seed's smallest rate that diverged or died (``nan``: none did)."""
  guarded = analysis.fail_at_chance(result, chance, select=METRIC)
  lrs = np.log10(np.asarray(result.grid["lr"], float))
  failed = np.asarray(guarded.history.diverged)
  return np.array([lrs[f].min() if f.any() else np.nan for f in failed])


def _trend(factors, best, boot, boot_loss, best_loss, thresholds, step, sign) -> dict:
  """One series' slope, its bootstrap SE and its z test (Holm comes later)."""
  slope = _slope(factors, best)
  samples = np.array([_slope(factors, b) for b in boot])
  boot_se = float(np.std(samples, ddof=1))
  grid_se = common.grid_slope_se(np.log2(factors), step)  # every best rate's rounding
  se = math.hypot(boot_se, grid_se)
  z = slope / se if se > 0 else math.nan
  loss_samples = np.array([_slope(factors, b) for b in boot_loss])
  finite = np.all(np.isfinite(thresholds), axis=0)  # conditions where every seed failed somewhere
  out = {
    "spearman": analysis.spearman(factors, best),
    "decades_per_doubling": slope,
    "decades_per_doubling_se": se,
    "decades_per_doubling_bootstrap_se": boot_se,
    "decades_per_doubling_grid_se": grid_se,
    "z": z,
    "p": math.erfc(abs(z) / math.sqrt(2.0)) if math.isfinite(z) else math.nan,
    "fitted_shift_decades": abs(slope) * float(np.ptp(np.log2(factors))),
    "best_lr_spread_decades": float(np.ptp(best)),
    "by_loss_decades_per_doubling": _slope(factors, best_loss),
    "by_loss_decades_per_doubling_se": math.hypot(float(np.std(loss_samples, ddof=1)), grid_se),
    "threshold_decades_per_doubling": (
      _slope(factors[finite], thresholds.mean(0)[finite]) if finite.sum() > 1 else math.nan
    ),
  }
  if finite.sum() > 1:
    draws = np.random.default_rng(1).integers(0, len(thresholds), (BOOTSTRAP, len(thresholds)))
    t = [_slope(factors[finite], thresholds[d].mean(0)[finite]) for d in draws]
    grid_t = common.grid_slope_se(np.log2(factors[finite]), step)  # thresholds are grid points
    out["threshold_decades_per_doubling_se"] = math.hypot(float(np.std(t, ddof=1)), grid_t)
  out["fitted_shift_exceeds_grid_step"] = out["fitted_shift_decades"] > step
  out["expected_sign"] = sign
  return out


def report(out: Path):
  spec = json.loads((out / "conditions.json").read_text())
  names = sorted({name for members in spec["series"].values() for name, _ in members})
  results = {name: sweep.SweepResult.load(out / name) for name in names}
  first = next(iter(results.values()))
  log_lrs = np.log10(first.grid["lr"])
  step = float(log_lrs[1] - log_lrs[0])
  seeds = first.num_seeds
  draws = np.random.default_rng(0).integers(0, seeds, size=(BOOTSTRAP, seeds))
  refine = lambda values, larger: analysis.refine_best(log_lrs, values, larger_is_better=larger)
  per_condition, boot, boot_loss, thresholds = {}, {}, {}, {}
  for name, result in results.items():
    runs, losses = result.metric(METRIC), result.metric(LOSS)
    mean = runs.mean(axis=0)
    accuracy = float(np.max(mean))
    classes = spec["tasks"][name]["classes"]
    boot[name] = np.array([refine(runs[d].mean(axis=0), True) for d in draws])
    boot_loss[name] = np.array([refine(losses[d].mean(axis=0), False) for d in draws])
    thresholds[name] = _thresholds(result, spec["tasks"][name]["chance_loss"])
    per_condition[name] = {
      "best_lr": float(10 ** refine(mean, True)),
      "best_lr_se_decades": float(np.std(boot[name], ddof=1)),
      "best_lr_on_grid": result.best(METRIC, warn=False)["hyperparameters"]["lr"],
      "best_lr_by_loss": float(10 ** refine(losses.mean(axis=0), False)),
      "best_lr_by_loss_se_decades": float(np.std(boot_loss[name], ddof=1)),
      "best_accuracy": accuracy,
      "best_on_grid_edge": result.edge_warning(METRIC) is not None,
      "divergence_threshold_per_seed": (10 ** thresholds[name]).tolist(),
      **spec["tasks"][name],
      "complexity": (1 - accuracy) / (1 - 1 / classes),
    }
  trends = {}
  for key, members in spec["series"].items():
    if len(members) < 2:
      continue
    factors = [per_condition[n]["complexity"] if f is None else float(f) for n, f in members]
    order = np.argsort(factors, kind="stable")
    members = [members[i] for i in order]
    factors = np.asarray(factors, float)[order]
    conds = [n for n, _ in members]
    best = np.log10([per_condition[n]["best_lr"] for n in conds])
    best_loss = np.log10([per_condition[n]["best_lr_by_loss"] for n in conds])
    trends[key] = {
      "conditions": conds,
      "factor": factors.tolist(),
      "best_lr": (10**best).tolist(),
      "best_lr_by_loss": (10**best_loss).tolist(),
      **_trend(
        factors,
        best,
        np.stack([boot[n] for n in conds], axis=1),
        np.stack([boot_loss[n] for n in conds], axis=1),
        best_loss,
        np.stack([thresholds[n] for n in conds], axis=1),
        step,
        SERIES[key][1],
      ),
    }
  adjusted = analysis.holm([t["p"] for t in trends.values()])
  for t, p in zip(trends.values(), adjusted, strict=True):
    t["p_holm"] = float(p)
    sign = t["expected_sign"]
    if not (p < analysis.ALPHA and t["fitted_shift_exceeds_grid_step"]):
      t["verdict"] = "inconclusive"
    else:
      t["verdict"] = "supported" if np.sign(t["decades_per_doubling"]) == sign else "refuted"
  verdicts = {key: t["verdict"] for key, t in trends.items()}
  if len(set(verdicts.values())) == 1:
    verdict = next(iter(verdicts.values()))
  else:
    verdict = "depends on the factor (" + "; ".join(f"{k}: {v}" for k, v in verdicts.items()) + ")"
  numbers = {
    "metric": METRIC,
    "optimizer": "sgd, momentum 0.9",
    "batch_size": BATCH_SIZE,
    "seeds": seeds,
    "num_lrs": len(log_lrs),
    "grid_step_decades": step,
    "comparisons": len(trends),
    "alpha": analysis.ALPHA,
    "trends": trends,
    "conditions": per_condition,
  }
  figures = [
    figures_lib.trends(trends, per_condition, boot, SERIES, out / "best_lr_trends.png"),
    figures_lib.curves(spec["series"], results, per_condition, SERIES, METRIC, out / "curves.png"),
  ]
  return numbers, verdict, figures


if __name__ == "__main__":
  sys.exit(common.main(sys.modules[__name__]))
