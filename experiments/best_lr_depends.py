"""Claim 7: the best learning rate depends on the problem: data size, depth, width, the task.

The essay names the factors and the direction of each: "the larger the
dataset, the slower the learning rate needs to be"; deep networks "may require
a lower learning rate" while "simpler models with fewer layers may benefit from
a higher learning rate"; and "when dealing with highly complex problems ... a
higher learning rate is often required" (elsewhere it says the opposite: "if
... the task is complex, a smaller learning rate may be necessary").

Each factor is one series of sweeps of SGD with momentum 0.9 over the same
log-spaced learning rates, with the same number of updates (so a smaller
training set is seen for more epochs), on the MNIST-1D MLP:

- data size: nested random subsets of one training split (validation and test
  splits fixed); the claim predicts a falling best rate (sign -1);
- depth: 1 to 4 hidden layers of 100 units; predicted sign -1;
- width: 2 hidden layers of 25 to 200 units, the "simpler model" read as the
  narrower one; predicted sign -1;
- problem complexity: MNIST-1D restricted to its first 2, 5 or 10 classes and
  the digits, all with the same number of training examples. Complexity is
  measured, not assumed: the best validation error as a fraction of chance
  error, ``(1 - accuracy) / (1 - 1 / classes)``; predicted sign +1.

The best rate of a condition is the argmax of the seed-mean final validation
accuracy, refined by a parabola through it and its two neighbours in log rate.
The trend is Spearman's correlation of the factor with the best rate; its noise
is the standard deviation of that correlation over a paired bootstrap of seeds
(the same resampled seeds in every condition). A sub-claim is supported when
the correlation has the predicted sign beyond twice its noise *and* the
least-squares line of log best rate against log2 factor changes by more than
one grid step across the series; refuted likewise with the opposite sign;
otherwise inconclusive. (With four conditions a rank correlation is coarse:
its values move in steps of 0.2.)
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
    steps=30,
    seeds=2,
  ),
  "default": dict(
    num_samples=10000,
    base_hidden=(100, 100),
    data_sizes=(900, 1800, 3600, 7200),
    depths=(1, 2, 3, 4),
    widths=(25, 50, 100, 200),
    classes=(2, 5, 10),
    digits=True,
    problem_train=1200,
    lr_range=(1e-3, 1.0),
    per_decade=4,
    steps=1000,
    seeds=3,
  ),
  "full": dict(
    num_samples=40000,
    base_hidden=(100, 100),
    data_sizes=(450, 900, 1800, 3600, 7200, 14400, 28800),
    depths=(1, 2, 3, 4, 6, 8),
    widths=(25, 50, 100, 200, 400, 800),
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
BOOTSTRAP = 1000
SERIES = {  # factor label, the sign the essay predicts
  "data_size": ("training examples", -1),
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


def _conditions(
  *, num_samples, base_hidden, data_sizes, depths, widths, classes, digits, problem_train
):
  """``({condition: build()}, {series: [(condition, factor or None), ...]})``.

  The base condition (all training data, ``base_hidden``) belongs to the data,
  depth and width series. A complexity factor of ``None`` is measured later.
  """
  width, depth, full = base_hidden[0], len(base_hidden), max(data_sizes)
  mlp = lambda hidden, **kw: (
    lambda: _restrict(tasks.get("mnist1d-mlp", num_samples=num_samples, hidden=hidden), **kw)
  )
  build, series = {}, {name: [] for name in SERIES}
  for n in data_sizes:
    name = "base" if n == full else f"data-{n}"
    build[name] = mlp(tuple(base_hidden), num_train=n, name=f"mnist1d-mlp n={n}")
    series["data_size"].append((name, n))
  for d in depths:
    name = "base" if d == depth else f"depth-{d}"
    build.setdefault(name, mlp((width,) * d, num_train=full, name=f"mnist1d-mlp depth={d}"))
    series["depth"].append((name, d))
  for w in widths:
    name = "base" if w == width else f"width-{w}"
    build.setdefault(name, mlp((w,) * depth, num_train=full, name=f"mnist1d-mlp width={w}"))
    series["width"].append((name, w))
  for k in classes:
    name = f"classes-{k}"
    build[name] = mlp(
      tuple(base_hidden), num_train=problem_train, classes=k, name=f"mnist1d-mlp {k} classes"
    )
    series["complexity"].append((name, None))
  if digits:
    build["digits"] = lambda: _restrict(
      tasks.get("digits-mlp", hidden=tuple(base_hidden)), num_train=problem_train, name="digits"
    )
    series["complexity"].append(("digits", None))
  return build, series


def run(out: Path, *, lr_range, per_decade, steps, seeds, **conditions) -> None:
  lo, hi = lr_range
  lrs = sweep.log_grid(lo, hi, round(np.log10(hi / lo) * per_decade) + 1)
  data.mnist1d(conditions["num_samples"])  # generate (and cache) once, outside the timings
  build, series = _conditions(**conditions)
  info = {}
  for name, make_task in build.items():
    task = make_task()
    info[name] = {
      "task": task.name,
      "num_train": task.num_train,
      "classes": len(np.unique(task.dataset.y_train)),
    }
    result = sweep.run(
      task,
      lambda hp: optimizers.sgd(hp["lr"], momentum=0.9),
      {"lr": lrs},
      steps=steps,
      batch_size=100,
      key=jax.random.key(0),
      eval_every=steps // 10,
      seeds=seeds,
    )
    result.save(out / name)
  (out / "conditions.json").write_text(json.dumps({"series": series, "tasks": info}) + "\n")


def _judge(factors, best, boot, step, sign) -> dict:
  rho = analysis.spearman(factors, best)
  rhos = np.array([analysis.spearman(factors, b) for b in boot])
  noise = float(np.nanstd(rhos)) if np.any(np.isfinite(rhos)) else float("nan")
  octaves = np.log2(factors)
  slope = float(np.polyfit(octaves, best, 1)[0]) if len(factors) > 1 else float("nan")
  fitted = abs(slope) * float(np.ptp(octaves))  # change of the fitted line across the series
  verdict = analysis.verdict(rho, noise, expected_sign=sign)
  if verdict != "inconclusive" and not fitted > step:
    verdict = "inconclusive"
  return {
    "spearman": rho,
    "spearman_bootstrap_std": noise,
    "decades_per_doubling": slope,
    "fitted_shift_decades": fitted,
    "best_lr_spread_decades": float(np.ptp(best)),
    "fitted_shift_exceeds_grid_step": fitted > step,
    "verdict": verdict,
  }


def report(out: Path):
  spec = json.loads((out / "conditions.json").read_text())
  names = sorted({name for members in spec["series"].values() for name, _ in members})
  results = {name: sweep.SweepResult.load(out / name) for name in names}
  first = next(iter(results.values()))
  log_lrs = np.log10(first.grid["lr"])
  step = float(log_lrs[1] - log_lrs[0])
  rng = np.random.default_rng(0)
  draws = rng.integers(0, first.num_seeds, size=(BOOTSTRAP, first.num_seeds))
  per_condition, boot = {}, {}
  for name, result in results.items():
    runs = result.metric(METRIC)
    mean = runs.mean(axis=0)
    accuracy = float(np.max(mean))
    classes = spec["tasks"][name]["classes"]
    per_condition[name] = {
      "best_lr": float(10 ** analysis.refine_best(log_lrs, mean, larger_is_better=True)),
      "best_lr_on_grid": result.best(METRIC, warn=False)["hyperparameters"]["lr"],
      "best_accuracy": accuracy,
      "best_on_grid_edge": result.edge_warning(METRIC) is not None,
      "divergence_threshold": result.divergence_threshold(),
      **spec["tasks"][name],
      "complexity": (1 - accuracy) / (1 - 1 / classes),
    }
    boot[name] = np.array(
      [analysis.refine_best(log_lrs, runs[d].mean(axis=0), larger_is_better=True) for d in draws]
    )
  trends = {}
  for key, members in spec["series"].items():
    if len(members) < 2:
      continue
    factors = [per_condition[n]["complexity"] if f is None else float(f) for n, f in members]
    order = np.argsort(factors, kind="stable")
    members = [members[i] for i in order]
    factors = np.asarray(factors, float)[order]
    best = np.log10([per_condition[n]["best_lr"] for n, _ in members])
    samples = np.stack([boot[n] for n, _ in members], axis=1)
    trends[key] = {
      "conditions": [n for n, _ in members],
      "factor": factors.tolist(),
      "best_lr": (10**best).tolist(),
      **_judge(factors, best, samples, step, SERIES[key][1]),
    }
  verdicts = {key: t["verdict"] for key, t in trends.items()}
  if len(set(verdicts.values())) == 1:
    verdict = next(iter(verdicts.values()))
  else:
    verdict = "depends on the factor (" + "; ".join(f"{k}: {v}" for k, v in verdicts.items()) + ")"
  numbers = {
    "metric": METRIC,
    "optimizer": "sgd, momentum 0.9",
    "grid_step_decades": step,
    "trends": trends,
    "conditions": per_condition,
  }
  figures = [_trend_figure(trends, per_condition, boot, out / "best_lr_trends.png")]
  figures.append(_curves_figure(spec["series"], results, per_condition, out / "curves.png"))
  return numbers, verdict, figures


def _trend_figure(trends, per_condition, boot, path: Path) -> Path:
  figure = Figure(figsize=(12, 3.6), layout="constrained")
  panels = figure.subplots(1, max(1, len(trends)), squeeze=False)[0]
  for axes, (key, trend) in zip(panels, trends.items(), strict=False):
    x = np.asarray(trend["factor"])
    samples = 10 ** np.stack([boot[n] for n in trend["conditions"]], axis=1)
    low, high = np.percentile(samples, [5, 95], axis=0)
    axes.fill_between(x, low, high, alpha=0.2, label="seed bootstrap 5-95%")
    axes.plot(x, trend["best_lr"], "o-", label="best lr (refined)")
    grid_best = [per_condition[n]["best_lr_on_grid"] for n in trend["conditions"]]
    axes.plot(x, grid_best, "k_", markersize=12, label="best lr on the grid")
    if key == "complexity":
      for xi, yi, n in zip(x, trend["best_lr"], trend["conditions"], strict=True):
        axes.annotate(n, (xi, yi), fontsize="x-small", textcoords="offset points", xytext=(3, 3))
    else:
      axes.set_xscale("log", base=2)
    axes.set_yscale("log")
    label, sign = SERIES[key]
    axes.set(xlabel=label, ylabel="best learning rate")
    axes.set_title(
      f"{key}: rho={trend['spearman']:+.2f}±{trend['spearman_bootstrap_std']:.2f} "
      f"(claim {'+' if sign > 0 else '-'})\n{trend['verdict']}",
      fontsize="small",
    )
    axes.grid(alpha=0.3, which="both")
  panels[0].legend(fontsize="x-small")
  figure.savefig(path, dpi=120)
  return path


def _curves_figure(series, results, per_condition, path: Path) -> Path:
  keys = [k for k in SERIES if series.get(k)]
  figure = Figure(figsize=(12, 3.6), layout="constrained")
  panels = figure.subplots(1, max(1, len(keys)), squeeze=False)[0]
  for axes, key in zip(panels, keys, strict=False):
    short = {"data_size": "n", "depth": "layers", "width": "units"}.get(key)
    for i, (name, factor) in enumerate(series[key]):
      label = name if factor is None else f"{short}={factor}"
      result = results[name]
      mean, low, high = analysis.seed_band(result.metric(METRIC))
      lrs = result.grid["lr"]
      axes.plot(lrs, mean, ".-", color=f"C{i}", label=label)
      axes.fill_between(lrs, low, high, color=f"C{i}", alpha=0.15)
      axes.axvline(per_condition[name]["best_lr"], color=f"C{i}", linewidth=0.8, linestyle=":")
    axes.set(xscale="log", xlabel="learning rate (SGD, momentum 0.9)", ylabel=METRIC)
    axes.set_title(f"{key} (dotted: best lr, refined)", fontsize="medium")
    axes.grid(alpha=0.3)
    axes.legend(fontsize="x-small")
  figure.savefig(path, dpi=120)
  return path


if __name__ == "__main__":
  sys.exit(common.main(sys.modules[__name__]))
