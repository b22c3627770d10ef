"""Issue 7: do learning-rate-free methods at their defaults match a tuned learning rate?

The essay closes on researchers "looking for ways to automatically adapt the
learning rate during the training process". Learning-rate-free methods claim to
have found them: DoG, Prodigy, D-Adaptation (SGD and Adam), the stochastic
Polyak step (SPS) and schedule-free SGD/AdamW each set their own step size. If
the claim holds, such a method at its published defaults should reach the test
accuracy of a baseline whose learning rate a sweep has tuned.

Per task, with the same seeds for everything (common random numbers: seed ``s``
gives every run the same initial weights and batch order, so differences are
paired):

1. Baselines: SGD with momentum 0.9 and Adam, each swept over log-spaced
   learning rates. Each gives two settings: the *tuned* rate, best by seed-mean
   final validation accuracy, and the *untuned* rate, the grid point nearest the
   geometric middle of the usable range (rates whose validation accuracy is
   within ``TOLERANCE`` of the best), which is what a user who picks "some rate
   that works" gets.
2. A common target for the steps-to-target metric: ``TARGET_FRACTION`` of the
   better tuned baseline's seed-mean final validation accuracy.
3. Each learning-rate-free method swept over its own remaining hyperparameter
   (``d0`` for Prodigy and D-Adaptation, ``reps_rel`` for DoG, ``max_step`` for
   SPS, the learning rate itself for schedule-free SGD/AdamW, which the authors
   ship with a default rate), on a log grid in decades around the default, which
   it contains. The default member answers the question; the whole curve is the
   method's sensitivity to the hyperparameter it still has. Schedule-free runs
   are evaluated at their averaged point (the training core does this).

All accuracies are final (last step, no early stopping); the verdict is on test
accuracy. Per method and task, the effect is the seed-mean paired difference
``test acc(method at defaults) - test acc(better tuned baseline)`` and the noise
its standard deviation over seeds. ``lrlab.analysis.verdict`` at two noise
scales decides: worse beyond the noise refutes the claim for that method;
better beyond it, or within it while the noise resolves ``RESOLUTION`` accuracy
points, supports it; otherwise it is inconclusive.
"""

import inspect
import json
import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make `experiments` importable
  sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import jax
import numpy as np
from matplotlib.figure import Figure

from experiments import common
from lrlab import analysis, optimizers, sweep, train
from lrlab import tasks as tasks_lib

CLAIM = (
  'Adaptive rules can "automatically adapt the learning rate during the training process": '
  "a learning-rate-free method at its defaults matches a tuned learning rate."
)
BASELINES = {  # name: lr -> optimizer
  "sgd-momentum": lambda lr: optimizers.sgd(lr, momentum=0.9),
  "adam": lambda lr: optimizers.adam(lr),
}
METHODS = {  # name: (its own hyperparameter, decades below and above the default)
  "dog": ("reps_rel", (3, 4)),
  "prodigy": ("d0", (3, 4)),
  "dadapt_sgd": ("d0", (3, 4)),
  "dadapt_adamw": ("d0", (3, 4)),
  "sps": ("max_step", (3, 2)),
  "schedule_free_sgd": ("learning_rate", (4, 1)),
  "schedule_free_adamw": ("learning_rate", (3, 2)),
}
FIXED = {  # the authors' weight decay, 0 (lrlab's *adamw default to AdamW's 1e-2)
  "dadapt_adamw": {"weight_decay": 0.0},
  "schedule_free_adamw": {"weight_decay": 0.0},
}
DEFAULTS = {  # the published defaults, read from the optimizers' signatures
  name: inspect.signature(getattr(optimizers, name)).parameters[axis].default
  for name, (axis, _) in METHODS.items()
}
FAMILY = {  # the baseline each method modifies
  "dog": "sgd-momentum",
  "dadapt_sgd": "sgd-momentum",
  "sps": "sgd-momentum",
  "schedule_free_sgd": "sgd-momentum",
  "prodigy": "adam",
  "dadapt_adamw": "adam",
  "schedule_free_adamw": "adam",
}
SIZES = {
  "tiny": dict(
    tasks=("mnist1d-mlp",),
    task_options={"hidden": (16,)},
    methods=("prodigy", "schedule_free_sgd"),
    lr_range=(1e-3, 1.0),
    num_lrs=4,
    per_decade=0.5,
    steps=20,
    evals=5,
    seeds=2,
  ),
  "default": dict(
    tasks=("mnist1d-mlp", "digits-mlp"),
    task_options={},
    methods=tuple(METHODS),
    lr_range=(1e-5, 1.0),
    num_lrs=16,
    per_decade=2,
    steps=1500,
    evals=30,
    seeds=3,
  ),
  "full": dict(
    tasks=("mnist1d-mlp", "mnist1d-cnn", "digits-mlp", "digits-cnn"),
    task_options={},
    methods=tuple(METHODS),
    lr_range=(1e-6, 10.0),
    num_lrs=43,
    per_decade=4,
    steps=6000,
    evals=60,
    seeds=8,
  ),
}
SELECT = "final_val_accuracy"  # picks the tuned rate and the usable range
REPORT = "final_test_accuracy"  # what is compared
TOLERANCE = 0.05  # accuracy points below the best that still count as usable
TARGET_FRACTION = 0.95  # steps to target: val accuracy >= this fraction of the tuned best
RESOLUTION = 0.03  # a tie counts as a match only if twice the noise is at most this
BATCH = 100


def method_grid(name: str, per_decade: float) -> np.ndarray:
  """``default * 10**(k / per_decade)`` over the method's decades; ``k = 0`` is the default."""
  below, above = METHODS[name][1]
  k = np.arange(-round(below * per_decade), round(above * per_decade) + 1)
  return DEFAULTS[name] * 10.0 ** (k / per_decade)


def _make_method(name: str):
  axis = METHODS[name][0]
  make = getattr(optimizers, name)
  return lambda hp: make(**FIXED.get(name, {}), **{axis: hp[axis]})


def _target(results: dict[str, sweep.SweepResult]) -> dict:
  best = max(float(np.max(r.seed_mean(SELECT))) for r in results.values())
  return {"metric": "val_accuracy", "value": TARGET_FRACTION * best}


def run(
  out: Path, *, tasks, task_options, methods, lr_range, num_lrs, per_decade, steps, evals, seeds
) -> None:
  lrs = sweep.log_grid(*lr_range, num_lrs)
  common_args = dict(
    batch_size=BATCH, key=jax.random.key(0), eval_every=steps // evals, seeds=seeds
  )
  for task in tasks:
    problem = tasks_lib.get(task, **task_options)
    baselines = {}
    for name, make in BASELINES.items():
      baselines[name] = sweep.run(
        problem, lambda hp, make=make: make(hp["lr"]), {"lr": lrs}, steps=steps, **common_args
      )
      baselines[name].save(out / task / name)
    target = _target(baselines)
    (out / task / "target.json").write_text(json.dumps(target) + "\n")
    for name in methods:
      axis = METHODS[name][0]
      result = sweep.run(
        problem,
        _make_method(name),
        {axis: method_grid(name, per_decade)},
        steps=steps,
        target=(target["metric"], target["value"]),
        **common_args,
      )
      result.save(out / task / name)


def _steps(result: sweep.SweepResult, target: dict) -> np.ndarray:
  """``(S, K)`` steps until the common target (``inf``: never, or diverged)."""
  steps = np.asarray(train.steps_to_target(result.history, target["metric"], target["value"]))
  return np.where(result.history.diverged, np.inf, steps).astype(np.float64)


def _steps_summary(steps: np.ndarray) -> dict:
  """Steps to target over seeds: mean over the seeds that reached it, and how many did."""
  reached = np.isfinite(steps)
  return {
    "per_seed": steps,
    "reached": int(reached.sum()),
    "mean_reached": float(steps[reached].mean()) if reached.any() else None,
    "mean": float(steps.mean()) if reached.all() else None,
  }


def _at(result: sweep.SweepResult, index: int, target: dict) -> dict:
  """One member's numbers: accuracies per seed and their mean, steps to target."""
  test = result.metric(REPORT)[:, index]
  return {
    "test_accuracy": float(test.mean()),
    "test_accuracy_std": float(test.std()),
    "test_accuracy_per_seed": test,
    "val_accuracy": float(result.seed_mean(SELECT)[index]),
    "diverged_seeds": int(result.history.diverged[:, index].sum()),
    "steps_to_target": _steps_summary(_steps(result, target)[:, index]),
  }


def _median_index(lrs: np.ndarray, usable: tuple[float, float]) -> int:
  """The grid point nearest the geometric middle of the usable range."""
  middle = np.sqrt(usable[0] * usable[1])
  return int(np.argmin(np.abs(np.log(lrs / middle))))


def _paired(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
  """Seed-mean of ``a - b`` and its standard deviation over seeds (NaN with one seed)."""
  d = np.asarray(a, np.float64) - np.asarray(b, np.float64)
  return float(d.mean()), float(d.std(ddof=1)) if d.size > 1 else float("nan")


def judge(effect: float, noise: float) -> str:
  """The claim's verdict for one method from its gap to the tuned baseline."""
  v = analysis.verdict(effect, noise)
  if v != "inconclusive" or not np.isfinite(noise):
    return v
  return "supported" if 2 * noise <= RESOLUTION else "inconclusive"


def _task_report(folder: Path) -> tuple[dict, dict]:
  target = json.loads((folder / "target.json").read_text())
  loaded = {
    n: sweep.SweepResult.load(folder / n)
    for n in [*BASELINES, *METHODS]
    if (folder / n / "sweep.json").exists()
  }
  baselines, per_base = {n: loaded[n] for n in BASELINES}, {}
  for name, result in baselines.items():
    lrs = result.grid["lr"]
    best = result.best(SELECT, warn=False)["index"]
    usable = result.usable_range(SELECT, TOLERANCE, "lr")
    median = _median_index(lrs, usable)
    per_base[name] = {
      "tuned_lr": float(lrs[best]),
      "tuned": _at(result, best, target),
      "usable_range": list(usable),
      "usable_decades": analysis.decades(usable),
      "median_lr": float(lrs[median]),
      "median": _at(result, median, target),
      "best_on_grid_edge": result.edge_warning(SELECT) is not None,
      "divergence_threshold": result.divergence_threshold(),
    }
  tuned = max(per_base, key=lambda n: per_base[n]["tuned"]["val_accuracy"])
  tuned_acc = per_base[tuned]["tuned"]["test_accuracy_per_seed"]
  per_method = {}
  for name in (n for n in METHODS if n in loaded):
    result, axis = loaded[name], METHODS[name][0]
    values = result.grid[axis]
    default = int(np.argmin(np.abs(np.log(values / DEFAULTS[name]))))
    at = _at(result, default, target)
    effect, noise = _paired(at["test_accuracy_per_seed"], tuned_acc)
    family = per_base[FAMILY[name]]
    vs_family = _paired(at["test_accuracy_per_seed"], family["tuned"]["test_accuracy_per_seed"])
    vs_median = _paired(at["test_accuracy_per_seed"], family["median"]["test_accuracy_per_seed"])
    own_best = result.best(SELECT, warn=False)["index"]
    usable = result.usable_range(SELECT, TOLERANCE, axis)
    step = float(np.log10(values[1] / values[0])) if len(values) > 1 else float("nan")
    level = per_base[tuned]["tuned"]["test_accuracy"] - TOLERANCE
    within = int(np.sum(result.seed_mean(REPORT) >= level))
    good = float(within) * step
    applied = np.asarray(result.history.learning_rate[:, default], np.float64)
    per_method[name] = {
      "hyperparameter": axis,
      "default": DEFAULTS[name],
      "at_default": at,
      "gap_to_tuned": effect,
      "gap_noise": noise,
      "verdict": judge(effect, noise),
      "gap_to_tuned_same_family": {
        "baseline": FAMILY[name],
        "gap": vs_family[0],
        "noise": vs_family[1],
      },
      "gap_to_untuned_same_family": {
        "baseline": FAMILY[name],
        "gap": vs_median[0],
        "noise": vs_median[1],
      },
      "own_best_value": float(values[own_best]),
      "own_best": _at(result, own_best, target),
      "usable_range": list(usable),
      "usable_decades": analysis.decades(usable),
      "default_in_usable_range": bool(usable[0] <= values[default] <= usable[1]),
      "decades_within_tolerance_of_tuned": good,
      "values_within_tolerance_of_tuned": [within, int(len(values))],
      "diverges_from": result.divergence_threshold(axis, SELECT),
      "applied_lr_final": float(np.median(applied[:, -1])),
      "applied_lr_mean": float(np.median(applied.mean(axis=1))),
      # the share of steps whose step size is the method's cap (SPS: max_step; others: None)
      "fraction_of_steps_at_cap": float(np.mean(applied >= 0.999 * DEFAULTS[name]))
      if name == "sps"
      else None,
    }
  numbers = {
    "task": next(iter(loaded.values())).config.get("task"),
    "steps": next(iter(loaded.values())).config.get("steps"),
    "seeds": int(next(iter(loaded.values())).num_seeds),
    "training_seconds": sum(r.metadata.get("wall_seconds", 0.0) for r in loaded.values()),
    "target": target,
    "tuned_baseline": tuned,
    "baselines": per_base,
    "methods": per_method,
  }
  return numbers, loaded


def report(out: Path):
  numbers, figures, verdicts = {}, [], {}
  for folder in sorted(p for p in out.iterdir() if (p / "target.json").exists()):
    task_numbers, loaded = _task_report(folder)
    numbers[folder.name] = task_numbers
    for name, m in task_numbers["methods"].items():
      verdicts.setdefault(name, {})[folder.name] = m["verdict"]
    figures += _accuracy_figure(task_numbers, out / f"accuracy_{folder.name}.png")
    figures += _steps_figure(task_numbers, out / f"steps_to_target_{folder.name}.png")
    figures += _sensitivity_figure(task_numbers, loaded, out / f"sensitivity_{folder.name}.png")
    figures += _applied_lr_figure(task_numbers, loaded, out / f"applied_lr_{folder.name}.png")
  labels = {  # a method's verdict over the tasks: one word, or one per task
    n: next(iter(v.values()))
    if len(set(v.values())) == 1
    else ", ".join(f"{verdict} on {task}" for task, verdict in v.items())
    for n, v in verdicts.items()
  }
  numbers["verdict_per_method"] = verdicts
  if len(set(labels.values())) == 1:
    verdict = next(iter(labels.values()))
  else:
    groups: dict[str, list[str]] = {}
    for v in sorted(set(labels.values()), key=lambda v: [*analysis.VERDICTS, v].index(v)):
      groups[v] = [n for n in labels if labels[n] == v]
    verdict = (
      "depends on the method ("
      + "; ".join(f"{v}: {', '.join(names)}" for v, names in groups.items())
      + ")"
    )
  return numbers, verdict, figures


def _label(name: str) -> str:
  return name.replace("schedule_free", "sf").replace("_", " ")


def _accuracy_figure(numbers: dict, path: Path) -> list[Path]:
  rows = []  # (label, per-seed test accuracies, colour)
  for name, b in numbers["baselines"].items():
    rows.append((f"{name}\ntuned lr {b['tuned_lr']:.2g}", b["tuned"], "0.35"))
    rows.append((f"{name}\nmid-usable lr {b['median_lr']:.2g}", b["median"], "0.7"))
  for name, m in numbers["methods"].items():
    rows.append((f"{_label(name)}\ndefaults", m["at_default"], "C0"))
  x = np.arange(len(rows))
  figure = Figure(figsize=(max(8, 0.9 * len(rows)), 4.5), layout="constrained")
  axes = figure.add_subplot()
  means = [r[1]["test_accuracy"] for r in rows]
  errors = [r[1]["test_accuracy_std"] for r in rows]
  axes.bar(x, means, 0.7, yerr=errors, color=[r[2] for r in rows], capsize=3)
  for i, (_, at, _) in enumerate(rows):
    seeds = np.asarray(at["test_accuracy_per_seed"], float)
    axes.plot(np.full(seeds.size, x[i]), seeds, "k.", markersize=4)
  tuned = numbers["baselines"][numbers["tuned_baseline"]]["tuned"]["test_accuracy"]
  axes.axhline(tuned, color="red", linestyle="--", linewidth=1, label="tuned best")
  low = min(means)
  axes.set_ylim(max(0.0, low - 0.1), min(1.0, max(means) + 0.05))
  axes.set_xticks(x, [r[0] for r in rows], fontsize="small", rotation=45, ha="right")
  axes.set_ylabel(f"{REPORT} (seed mean ± std; dots: seeds)")
  axes.set_title(
    f"{numbers['task']}: learning-rate-free methods at their defaults vs a learning-rate "
    f"sweep\n{numbers['steps']} steps, {numbers['seeds']} seeds; grey: SGD-momentum/Adam, "
    "blue: LR-free at defaults"
  )
  axes.title.set_fontsize("medium")
  axes.legend(fontsize="small", loc="lower right")
  axes.grid(axis="y", alpha=0.3)
  figure.savefig(path, dpi=120)
  return [path]


def _steps_figure(numbers: dict, path: Path) -> list[Path]:
  rows = []
  for name, b in numbers["baselines"].items():
    rows += [(f"{name} tuned", b["tuned"], "0.35"), (f"{name} mid-usable", b["median"], "0.7")]
  rows += [(f"{_label(n)} defaults", m["at_default"], "C0") for n, m in numbers["methods"].items()]
  figure = Figure(figsize=(8, 0.35 * len(rows) + 1.5), layout="constrained")
  axes = figure.add_subplot()
  budget, y = numbers["steps"], np.arange(len(rows))[::-1]
  for yi, (_, at, color) in zip(y, rows, strict=True):
    s = at["steps_to_target"]
    seeds = np.asarray([v if v is not None else np.inf for v in s["per_seed"]], float)
    shown = np.where(np.isfinite(seeds), seeds, budget)
    if s["reached"]:
      axes.barh(yi, s["mean_reached"], 0.7, color=color, hatch="" if s["mean"] else "//")
    done = np.isfinite(seeds)
    axes.plot(shown[done], np.full(done.sum(), yi), "k.", markersize=4)
    axes.plot(shown[~done], np.full((~done).sum(), yi), "kx", markersize=5)
    axes.text(budget * 1.01, yi, f"{s['reached']}/{seeds.size}", va="center", fontsize="small")
  axes.axvline(budget, color="0.5", linewidth=1)
  axes.set_yticks(y, [r[0] for r in rows], fontsize="small")
  axes.set_xlim(0, budget * 1.08)
  target = numbers["target"]["value"]
  axes.set_xlabel("steps to reach the target (mean over the seeds that reach it)")
  axes.set_title(
    f"{numbers['task']}: steps until val accuracy ≥ {target:.3f} ({TARGET_FRACTION:g} x tuned "
    "best)\nright: seeds that reach it; hatched: not all seeds; x: never"
  )
  axes.title.set_fontsize("medium")
  figure.savefig(path, dpi=120)
  return [path]


def _sensitivity_figure(numbers: dict, loaded: dict, path: Path) -> list[Path]:
  names = [*numbers["methods"], "baselines"]
  cols = 4
  rows = -(-len(names) // cols)
  figure = Figure(figsize=(4 * cols, 3.2 * rows), layout="constrained")
  panels = figure.subplots(rows, cols, squeeze=False).ravel()
  tuned = numbers["baselines"][numbers["tuned_baseline"]]
  lines = [
    (tuned["tuned"]["test_accuracy"], "--", "tuned best"),
    (tuned["median"]["test_accuracy"], ":", "tuned baseline at mid-usable lr"),
  ]
  for axes, name in zip(panels, names, strict=False):
    if name == "baselines":
      for i, (base, result) in enumerate((n, loaded[n]) for n in BASELINES):
        mean, low, high = analysis.seed_band(result.metric(REPORT))
        lrs = result.grid["lr"]
        axes.plot(lrs, mean, ".-", color=f"C{i + 1}", label=base)
        axes.fill_between(lrs, low, high, color=f"C{i + 1}", alpha=0.2)
      axes.set(xscale="log", xlabel="learning rate", title="baselines: lr sweep")
      axes.legend(fontsize="x-small")
    else:
      m, result = numbers["methods"][name], loaded[name]
      values = result.grid[m["hyperparameter"]]
      mean, low, high = analysis.seed_band(result.metric(REPORT))
      axes.plot(values, mean, ".-", color="C0")
      axes.fill_between(values, low, high, color="C0", alpha=0.2)
      default = m["at_default"]["test_accuracy"]
      axes.plot(m["default"], default, "D", color="C0", markeredgecolor="k", label="default")
      gap = f"gap {100 * m['gap_to_tuned']:+.1f} pts ({m['verdict']})"
      axes.set(xscale="log", xlabel=m["hyperparameter"], title=f"{_label(name)}: {gap}")
    for value, style, label in lines:
      axes.axhline(value, color="red", linestyle=style, linewidth=1, label=label)
    top = tuned["tuned"]["test_accuracy"]
    axes.set_ylim(max(0.0, top - 0.3), min(1.0, top + 0.1))
    axes.grid(alpha=0.3)
    axes.title.set_fontsize("small")
  panels[0].set_ylabel(f"{REPORT}\n(seed mean, band: min-max)")
  panels[0].legend(fontsize="x-small", loc="lower left")
  for axes in panels[len(names) :]:
    axes.set_visible(False)
  figure.suptitle(
    f"{numbers['task']}: sensitivity to each method's own remaining hyperparameter "
    "(diamond: the published default)",
    fontsize="medium",
  )
  figure.savefig(path, dpi=120)
  return [path]


def _applied_lr_figure(numbers: dict, loaded: dict, path: Path) -> list[Path]:
  figure = Figure(figsize=(8, 4.5), layout="constrained")
  axes = figure.add_subplot()
  for i, (name, m) in enumerate(numbers["methods"].items()):
    result = loaded[name]
    values = result.grid[m["hyperparameter"]]
    default = int(np.argmin(np.abs(np.log(values / m["default"]))))
    applied = np.median(np.asarray(result.history.learning_rate[:, default], float), axis=0)
    style = "--" if FAMILY[name] == "adam" else "-"
    axes.plot(np.arange(applied.size), applied, style, color=f"C{i}", label=_label(name))
  for name, b in numbers["baselines"].items():
    color = "0.3" if name == "sgd-momentum" else "0.6"
    axes.axhline(b["tuned_lr"], color=color, linewidth=2, alpha=0.6, label=f"{name} tuned lr")
  heavy_ball = numbers["baselines"]["sgd-momentum"]["tuned_lr"] / (1 - 0.9)
  axes.axhline(heavy_ball, color="0.3", linestyle=":", label="sgd-momentum tuned lr / (1 - 0.9)")
  axes.set(
    yscale="log",
    xlabel="step",
    ylabel="step size applied (median over seeds)",
    title=f"{numbers['task']}: the learning rate each method sets itself, at its defaults\n"
    "(dashed: Adam-type, compare with Adam's tuned lr; solid: SGD-type, compare with the "
    "dotted line)",
  )
  axes.title.set_fontsize("medium")
  axes.grid(alpha=0.3)
  axes.legend(fontsize="x-small", ncol=2)
  figure.savefig(path, dpi=120)
  return [path]


if __name__ == "__main__":
  sys.exit(common.main(sys.modules[__name__]))
