"""Issues 7 and 19: do learning-rate-free methods, run as the authors recommend, match tuning?

The essay closes on researchers "looking for ways to automatically adapt the
learning rate during the training process". Learning-rate-free methods claim to
have found them: DoG, Prodigy, D-Adaptation (SGD and Adam), the stochastic
Polyak step (SPS) and schedule-free SGD/AdamW each set their own step size. If
the claim holds, such a method as its authors recommend running it should reach
the test accuracy of a baseline whose learning rate a sweep has tuned.

lrlab's methods reproduce the authors' PyTorch packages (``dog-optimizer``,
``prodigyopt``, ``dadaptation``, ``schedulefree``) to float64 rounding over 100
steps on a common problem, each in the configuration run here:
``tests/transforms/test_authors_packages.py``. A gap found here is the method's,
not lrlab's.

Per task, with the same seeds for everything (common random numbers: seed ``s``
gives every run the same initial weights and batch order, so differences are
paired):

1. Baselines, tuned: SGD with momentum 0.9 and Adam, each with cosine decay to 0
   over the run, swept over log-spaced peak rates. The tuned rate is picked by
   seed-mean final *validation accuracy* (the claim is about accuracy); the rate
   picked by validation loss is reported beside it. The *untuned* rate is the grid
   point at the geometric middle of the usable range (val accuracy within
   ``TOLERANCE`` of the best), what a user who picks "some rate that works" gets.
2. Each method once, as its authors recommend (:data:`METHODS`): DoG with its
   polynomial iterate averaging (gamma 8, evaluated at the average); Prodigy with
   its rate multiplier on a cosine over the run; D-Adaptation SGD at its defaults
   (momentum 0); D-Adapt Adam at its defaults and, as a documented variant, with
   Adam's bias correction (``bias_correction=True``, which equals
   ``optax.contrib.dadapt_adamw``); schedule-free SGD and AdamW at their default
   rates with a linear warmup over ``WARMUP`` of the run (evaluated at their
   average); SPS at its defaults. Weight decay is 0 everywhere (the packages'
   default).

The effect, per method and task, is the paired difference ``test acc(method) -
test acc(better tuned baseline)``, averaged over seeds. Its standard error adds
the seeds' (``ddof=1``, over the paired differences) and the test set's: the
binomial sampling error of two accuracies on ``n`` test examples,
``sqrt((a1 (1 - a1) + a2 (1 - a2)) / n)`` (conservative: it ignores that both
models see the same examples). ``z = effect / SE`` gives a two-sided normal
p-value; the ``methods x tasks`` p-values are Holm-adjusted
(:func:`lrlab.analysis.holm`) and a difference counts at ``ALPHA``, the level of
2 SE. Worse beyond it refutes the claim for that method and task; better beyond
it supports it; within it, the claim is supported if the whole ``effect ± 2 SE``
interval lies within ``RESOLUTION`` of 0 (a resolved match), else inconclusive.
"""

import json
import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make `experiments` importable
  sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import jax
import numpy as np

from experiments import _lr_free_figures as figures
from experiments import common
from lrlab import analysis, optimizers, schedules, sweep, train
from lrlab import tasks as tasks_lib
from lrlab.analysis import ALPHA

CLAIM = (
  'Adaptive rules can "automatically adapt the learning rate during the training process": '
  "a learning-rate-free method, run as its authors recommend, matches a tuned learning rate."
)
BASELINES = {  # name: (peak lr, steps) -> optimizer with cosine decay to 0 over the run
  "sgd-momentum": lambda lr, steps: optimizers.sgd(
    schedules.cosine_annealing(lr, steps), momentum=0.9
  ),
  "adam": lambda lr, steps: optimizers.adam(schedules.cosine_annealing(lr, steps)),
}
WARMUP = 0.05  # schedule-free's linear warmup, a fraction of the run
DOG_AVERAGING = 8.0  # gamma of DoG's polynomial-decay iterate average (the authors')
METHODS = {  # name: ((scale, steps) -> optimizer as the authors recommend, its baseline family)
  # scale multiplies the authors' rate (1 here: their recommendation; the grid axis "scale")
  "dog": (lambda s, steps: optimizers.dog(s, averaging=DOG_AVERAGING), "sgd-momentum"),
  "prodigy": (
    lambda s, steps: optimizers.prodigy(schedules.cosine_annealing(s, steps)),
    "adam",
  ),
  "dadapt_sgd": (lambda s, steps: optimizers.dadapt_sgd(s), "sgd-momentum"),
  "dadapt_adamw": (lambda s, steps: optimizers.dadapt_adamw(s, weight_decay=0.0), "adam"),
  "dadapt_adamw_bias_corrected": (
    lambda s, steps: optimizers.dadapt_adamw(s, weight_decay=0.0, bias_correction=True),
    "adam",
  ),
  "sps": (lambda s, steps: optimizers.sps(s), "sgd-momentum"),
  "schedule_free_sgd": (
    lambda s, steps: optimizers.schedule_free_sgd(s, warmup_steps=round(WARMUP * steps)),
    "sgd-momentum",
  ),
  "schedule_free_adamw": (
    lambda s, steps: optimizers.schedule_free_adamw(
      0.0025 * s, warmup_steps=round(WARMUP * steps), weight_decay=0.0
    ),
    "adam",
  ),
}
RECIPE = {  # how each method is run, for the summary and the README
  "dog": "averaging=8 (polynomial iterate average, evaluated at it)",
  "prodigy": "learning_rate = cosine from 1 to 0 over the run",
  "dadapt_sgd": "defaults (momentum 0)",
  "dadapt_adamw": "defaults, weight_decay=0",
  "dadapt_adamw_bias_corrected": "bias_correction=True (= optax.contrib.dadapt_adamw)",
  "sps": "defaults (c 0.5, max_step 1, f* 0)",
  "schedule_free_sgd": f"lr 1, warmup {WARMUP:.0%} of the run",
  "schedule_free_adamw": f"lr 0.0025, warmup {WARMUP:.0%} of the run, weight_decay=0",
}
SIZES = {
  "tiny": dict(
    tasks=("mnist1d-mlp",),
    task_options={"hidden": (16,)},
    methods=("schedule_free_sgd",),  # one method: every method shares run()'s and report()'s path
    lr_ranges={"sgd-momentum": (1e-2, 1.0), "adam": (1e-3, 1e-1)},
    num_lrs=3,
    steps=20,
    evals=5,
    seeds=2,
  ),
  "default": dict(
    tasks=("mnist1d-mlp", "digits-mlp"),
    task_options={},
    methods=tuple(METHODS),
    lr_ranges={"sgd-momentum": (1e-3, 1.0), "adam": (1e-4, 1e-1)},
    num_lrs=10,
    steps=2000,
    evals=20,
    seeds=5,
  ),
  "full": dict(
    tasks=("mnist1d-mlp", "mnist1d-cnn", "digits-mlp", "digits-cnn"),
    task_options={},
    methods=tuple(METHODS),
    lr_ranges={"sgd-momentum": (1e-4, 10.0), "adam": (1e-5, 1.0)},
    num_lrs=21,
    steps=6000,
    evals=60,
    seeds=8,
  ),
}
SELECT = "final_val_accuracy"  # picks the tuned rate and the usable range (the claim's metric)
SELECT_LOSS = "final_val_loss"  # the rate by loss, reported beside it
REPORT = "final_test_accuracy"  # what is compared
TOLERANCE = 0.05  # accuracy points below the best that still count as usable
CHANCE_RTOL = 0.05  # the dead-network guard: final train loss within 5% of chance
TARGET_FRACTION = 0.95  # steps to target: val accuracy >= this fraction of the tuned best
RESOLUTION = 0.03  # a tie counts as a match only if effect ± 2 SE lies within this
BATCH = 100


def run(out: Path, *, tasks, task_options, methods, lr_ranges, num_lrs, steps, evals, seeds):
  common_args = dict(
    steps=steps, batch_size=BATCH, key=jax.random.key(0), eval_every=steps // evals, seeds=seeds
  )
  for task in tasks:
    problem = tasks_lib.get(task, **task_options)
    baselines = {}
    for name, make in BASELINES.items():
      grid = {"lr": sweep.log_grid(*lr_ranges[name], num_lrs)}
      result = sweep.run(problem, lambda hp, make=make: make(hp["lr"], steps), grid, **common_args)
      result.save(out / task / name)
      baselines[name] = result
    best = max(float(np.max(r.seed_mean(SELECT))) for r in baselines.values())
    info = {
      "target": {"metric": "val_accuracy", "value": TARGET_FRACTION * best},
      "test_examples": len(problem.dataset.y_test),
      "chance_loss": _chance(problem),
    }
    (out / task / "target.json").write_text(json.dumps(info) + "\n")
    for name in methods:
      make = METHODS[name][0]
      result = sweep.run(
        problem,
        lambda hp, make=make: make(hp["scale"], steps),
        {"scale": np.ones(1)},
        target=(info["target"]["metric"], info["target"]["value"]),
        **common_args,
      )
      result.save(out / task / name)


def _steps(result: sweep.SweepResult, index: int, target: dict) -> dict:
  """Steps to the common target per seed (``inf``: never, or diverged), and a summary."""
  history = result.history
  steps = np.asarray(train.steps_to_target(history, target["metric"], target["value"]))
  steps = np.where(history.diverged, np.inf, steps).astype(np.float64)[:, index]
  reached = np.isfinite(steps)
  return {
    "per_seed": steps,
    "reached": int(reached.sum()),
    "mean_reached": float(steps[reached].mean()) if reached.any() else None,
    "mean": float(steps.mean()) if reached.all() else None,
  }


def _at(result: sweep.SweepResult, index: int, target: dict) -> dict:
  """One member's numbers: test accuracy per seed, its mean and standard error, steps."""
  test = result.metric(REPORT)[:, index]
  return {
    "test_accuracy": float(test.mean()),
    "test_accuracy_se": float(test.std(ddof=1) / np.sqrt(test.size)),
    "test_accuracy_per_seed": test,
    "val_accuracy": float(result.seed_mean(SELECT)[index]),
    "val_loss": float(result.seed_mean(SELECT_LOSS)[index]),
    "diverged_seeds": int(result.history.diverged[:, index].sum()),
    "steps_to_target": _steps(result, index, target),
  }


def judge(gap: float, se: float, p_holm: float) -> str:
  """The claim's verdict for one method and task from its Holm-adjusted gap to tuned."""
  if not (np.isfinite(p_holm) and np.isfinite(se)):
    return "inconclusive"
  if p_holm <= ALPHA:
    return "supported" if gap > 0 else "refuted"
  return "supported" if abs(gap) + 2 * se <= RESOLUTION else "inconclusive"


def _baseline(result: sweep.SweepResult, target: dict) -> dict:
  lrs = result.grid["lr"]
  best = result.best(SELECT, warn=False)["index"]
  by_loss = result.best(SELECT_LOSS, warn=False)["index"]
  usable = result.usable_range(SELECT, TOLERANCE, "lr")
  median = int(np.argmin(np.abs(np.log(lrs / np.sqrt(usable[0] * usable[1])))))
  return {
    "tuned_lr": float(lrs[best]),
    "tuned": _at(result, best, target),
    "tuned_lr_by_val_loss": float(lrs[by_loss]),
    "tuned_by_val_loss": _at(result, by_loss, target),
    "usable_range": list(usable),
    "usable_decades": analysis.decades(usable),
    "median_lr": float(lrs[median]),
    "median": _at(result, median, target),
    "best_on_grid_edge": result.edge_warning(SELECT) is not None,
    "divergence_threshold": result.divergence_threshold(),
    "dead_runs": result.config["dead_guard"]["runs"],
  }


def _chance(problem) -> float:
  """The task's chance-level loss (:func:`lrlab.analysis.chance_loss` of its training labels)."""
  return analysis.chance_loss(problem.dataset.y_train, problem.num_classes)


def _task_report(folder: Path) -> tuple[dict, dict]:
  info = json.loads((folder / "target.json").read_text())
  target, n = info["target"], info["test_examples"]
  # The dead-network guard on the baselines' usable range and divergence threshold (results
  # saved before the chance loss was recorded: the task's labels do not depend on its options).
  chance = info.get("chance_loss") or _chance(tasks_lib.get(folder.name))
  loaded = {
    name: sweep.SweepResult.load(folder / name)
    for name in [*BASELINES, *METHODS]
    if (folder / name / "sweep.json").exists()
  }
  per_base = {
    name: _baseline(
      analysis.fail_at_chance(loaded[name], chance, rtol=CHANCE_RTOL, select=SELECT), target
    )
    for name in BASELINES
  }
  tuned = max(per_base, key=lambda name: per_base[name]["tuned"]["val_accuracy"])
  per_method = {}
  for name in (m for m in METHODS if m in loaded):
    result, family = loaded[name], per_base[METHODS[name][1]]
    at = _at(result, 0, target)
    acc = at["test_accuracy_per_seed"]
    applied = np.asarray(result.history.learning_rate[:, 0], np.float64)
    per_method[name] = {
      "recipe": RECIPE[name],
      "at_recipe": at,
      "vs_tuned": analysis.paired_difference(
        acc, per_base[tuned]["tuned"]["test_accuracy_per_seed"], test_examples=n
      ),
      "vs_tuned_same_family": {
        "baseline": METHODS[name][1],
        **analysis.paired_difference(
          acc, family["tuned"]["test_accuracy_per_seed"], test_examples=n
        ),
      },
      "vs_untuned_same_family": {
        "baseline": METHODS[name][1],
        **analysis.paired_difference(
          acc, family["median"]["test_accuracy_per_seed"], test_examples=n
        ),
      },
      "applied_lr_final": float(np.median(applied[:, -1])),
      "applied_lr_max": float(np.median(applied.max(axis=1))),
    }
  numbers = {
    "task": next(iter(loaded.values())).config.get("task"),
    "steps": next(iter(loaded.values())).config.get("steps"),
    "seeds": int(next(iter(loaded.values())).num_seeds),
    "test_examples": n,
    "training_seconds": sum(r.metadata.get("wall_seconds", 0.0) for r in loaded.values()),
    "target": target,
    "tuned_baseline": tuned,
    "baselines": per_base,
    "methods": per_method,
  }
  return numbers, loaded


def report(out: Path):
  numbers, loaded = {}, {}
  for folder in sorted(p for p in out.iterdir() if (p / "target.json").exists()):
    numbers[folder.name], loaded[folder.name] = _task_report(folder)
  tests = [(t, m) for t in numbers for m in numbers[t]["methods"]]
  adjusted = analysis.holm([numbers[t]["methods"][m]["vs_tuned"]["p"] for t, m in tests])
  verdicts: dict[str, dict[str, str]] = {}
  for (task, name), p_holm in zip(tests, adjusted, strict=True):
    entry = numbers[task]["methods"][name]
    entry["vs_tuned"]["p_holm"] = float(p_holm)
    entry["verdict"] = judge(entry["vs_tuned"]["gap"], entry["vs_tuned"]["se"], p_holm)
    verdicts.setdefault(name, {})[task] = entry["verdict"]
  drawn = [figures.gaps(numbers, out / "gaps.png", RESOLUTION)]
  for task, task_loaded in loaded.items():
    drawn += figures.draw(numbers[task], task_loaded, out, task)
  numbers["comparisons"] = len(tests)
  numbers["constants"] = {  # the design's numbers, so the README can quote them
    "alpha": ALPHA,
    "margin_se": 2.0,
    "resolution": RESOLUTION,
    "tolerance": TOLERANCE,
    "target_fraction": TARGET_FRACTION,
    "sgd_momentum": 0.9,
    "dog_averaging": DOG_AVERAGING,
    "warmup_fraction": WARMUP,
    "schedule_free_adamw_lr": 0.0025,
    "batch": BATCH,
  }
  numbers["verdict_per_method"] = verdicts
  packages = out / "authors_packages.json"  # scripts/authors_packages_mnist1d.py: the match
  if packages.exists():  # with the authors' packages on this experiment's MNIST-1D problem
    numbers["authors_packages"] = json.loads(packages.read_text())
  labels = {  # a method's verdict over the tasks: one word, or one per task
    name: next(iter(v.values()))
    if len(set(v.values())) == 1
    else ", ".join(f"{verdict} on {task}" for task, verdict in v.items())
    for name, v in verdicts.items()
  }
  if len(set(labels.values())) == 1:
    return numbers, next(iter(labels.values())), drawn
  groups: dict[str, list[str]] = {}
  order = lambda v: ([*analysis.VERDICTS, v].index(v), v)  # then alphabetical: not set order
  for v in sorted(set(labels.values()), key=order):
    groups[v] = [name for name in labels if labels[name] == v]
  verdict = "depends on the method (" + "; ".join(
    f"{v}: {', '.join(names)}" for v, names in groups.items()
  )
  return numbers, verdict + ")", drawn


if __name__ == "__main__":
  sys.exit(common.main(sys.modules[__name__]))
