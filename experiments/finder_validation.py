"""Issue 6: does an LR range test's suggestion land near the learning rate that trains best?

fastai and Lightning read a learning rate off one range test; neither checks it
against the rate a sweep finds best. For each task, optimizer and seed this runs

1. the range test (``lrlab.finder.find_lr``, fastai's settings) and its five rules;
2. the parallel finder (``lrlab.finder.find_lr_parallel``: K rates, a tenth of the budget);
3. a full sweep (``lrlab.sweep.run``: K log-spaced rates at the full budget), into
   which that seed's suggestions are also trained, from the same initial
   parameters and minibatches as the range test, so the accuracy each suggestion
   gives is measured, not guessed.

Seed ``s`` uses ``fold_in(key(0), s)`` everywhere (the sweep's convention), so a
seed's range test and sweep share the initialization and the minibatch order. The
parallel finder, handed the same key, runs it as its own sweep's seed 0
(``fold_in`` once more), so its short runs start elsewhere; its suggestion is
trained in the seed's sweep like the others. The sweep's best rate is the best
of the seed-mean validation metric over the grid (accuracy; loss on the quadratic
and the transformer), refined by a parabola in log rate. Each (case, seed) gives each rule an error:
``log10(suggestion / sweep's best)`` in decades, and the test points lost,
seed ``s``'s test accuracy at the grid's best rate minus at the suggestion
(excess test loss on the loss tasks). A suggestion lands near when it is within
2x of the sweep's best (about one step of the grid) or inside the sweep's usable
range (validation accuracy within 0.05 of the best; loss within 5% on the
loss tasks). A rule is near in a case when it is near in the majority of seeds;
the points each rule loses are averaged over the accuracy cases, with a standard
error from the seeds and the test set's binomial error
(:func:`lrlab.analysis.paired_difference` per case), and tested against 0 with
Holm's correction over the rules. A rule is refuted when it loses points beyond 2 SE
(Holm); supported when near in every case and its points lost plus 2 SE stay below one
(``SAME_ACCURACY``); inconclusive otherwise. On the quadratic, theory gives the answers
for gradient descent: divergence above ``2/L``, fastest rate ``2/(L+mu)``; for
heavy ball, divergence above ``2(1+b)/L``.

Tasks: the quadratic, the digits and MNIST-1D MLPs and the MNIST-1D ResNet (small
channels, BatchNorm), each with SGD (momentum 0.9) and Adam, and ``lm-transformer``
at a small size (width 16, one layer, context 16; metric: validation loss per
token) with Adam.
"""

import json
import sys
import time
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make `experiments` importable
  sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import jax
import numpy as np

from experiments import _finder_validation_report as report_lib
from experiments import common
from lrlab import analysis, finder, optimizers, sweep, tasks
from lrlab.sweep.result import SweepResult

CLAIM = (
  "An LR range test's suggested learning rate (fastai's steep, valley, minimum, slide; "
  "Lightning's steepest gradient) lands near the rate that trains best."
)
TASK_NAMES = ("quadratic", "digits-mlp", "mnist1d-mlp", "mnist1d-resnet", "lm-transformer")
# The transformer with Adam only (SGD is not how transformers are trained); gd: the theory check.
ALL_CASES = [[t, o] for t in TASK_NAMES[:-1] for o in ("sgd-momentum", "adam")]
ALL_CASES += [["lm-transformer", "adam"], ["quadratic", "gd"]]
SIZES = {
  "tiny": dict(
    cases=[["quadratic", "gd"]],
    steps={"quadratic": 20},
    num_lrs={"quadratic": 8},
    parallel_lrs=4,
    seeds=2,
  ),
  "default": dict(
    cases=ALL_CASES,
    steps={
      "quadratic": 50,
      "digits-mlp": 400,
      "mnist1d-mlp": 1000,
      "mnist1d-resnet": 400,
      "lm-transformer": 150,
    },
    num_lrs={
      "quadratic": 48,
      "digits-mlp": 16,
      "mnist1d-mlp": 16,
      "mnist1d-resnet": 10,
      "lm-transformer": 8,
    },
    parallel_lrs=12,
    seeds=5,
  ),
  "full": dict(
    cases=ALL_CASES,
    steps={
      "quadratic": 50,
      "digits-mlp": 1000,
      "mnist1d-mlp": 3000,
      "mnist1d-resnet": 3000,
      "lm-transformer": 2000,
    },
    num_lrs={
      "quadratic": 64,
      "digits-mlp": 32,
      "mnist1d-mlp": 32,
      "mnist1d-resnet": 32,
      "lm-transformer": 24,
    },
    parallel_lrs=16,
    seeds=8,
  ),
}
# The small transformer: one training sequence per update and seed (no epochs).
LM = dict(width=16, depth=1, heads=2, context=16)
LM_BATCH = 16
TASKS = {
  # kappa = 10, so 2/L = 2 and 2/(L+mu) = 1.82 differ; 50 steps keep the loss above float32's
  # floor; at fastai's end_lr = 10 gradient descent never trips the stop rule, so go to 100.
  "quadratic": dict(options={"min_curvature": 0.1}, batch_size=None, grid=(1e-2, 10.0), end=100.0),
  "digits-mlp": dict(options={}, batch_size=64, grid=(1e-4, 3.0), end=10.0),
  "mnist1d-mlp": dict(options={}, batch_size=100, grid=(1e-4, 3.0), end=10.0),
  # (8, 16) channels, batch 64: ~0.9 test accuracy at 400 steps; (4, 8), 32, 200: 0.45-0.55.
  "mnist1d-resnet": dict(options={"channels": (8, 16)}, batch_size=64, grid=(1e-4, 3.0), end=10.0),
  "lm-transformer": dict(options=LM, batch_size=LM_BATCH, grid=(1e-3, 1.0), end=10.0),
}
OPTIMIZERS = {"sgd-momentum": ("sgd", {"momentum": 0.9}), "adam": ("adam", {}), "gd": ("sgd", {})}
NAMES = (*finder.RULES, "parallel")
NEAR = 2.0
LOSS_TASKS = ("lm-transformer",)  # read on val loss though it has a (per-token) accuracy


def _make_tx(optimizer: str):
  name, options = OPTIMIZERS[optimizer]
  return lambda hp: optimizers.get(name, learning_rate=hp["lr"], **options)


def _task(task_name: str, budget: int) -> tasks.Task:
  options = dict(TASKS[task_name]["options"])
  if task_name == "lm-transformer":  # enough tokens for the range test's 100 steps too
    options["num_tokens"] = max(budget, 100) * LM_BATCH * LM["context"]
  return tasks.get(task_name, **options)


def run(out: Path, *, cases, steps, num_lrs, parallel_lrs, seeds) -> None:
  for index, (task_name, optimizer) in enumerate(cases):
    spec, budget = TASKS[task_name], steps[task_name]
    task = _task(task_name, budget)
    make_tx, folder = _make_tx(optimizer), out / f"{task_name}_{optimizer}"
    started = time.perf_counter()
    lo, hi = spec["grid"]
    grid = sweep.log_grid(lo, hi, num_lrs[task_name])
    picks, parallel = [], []
    for s in range(seeds):
      key = jax.random.fold_in(jax.random.key(0), s)  # the sweep's seed s
      found = finder.find_lr(
        task, make_tx, end_lr=spec["end"], batch_size=spec["batch_size"], key=key
      )
      found.save(folder / f"range_test_{s}.json")
      fast = finder.find_lr_parallel(
        task,
        make_tx,
        lrs=sweep.log_grid(lo, hi, parallel_lrs),
        steps=max(10, budget // 10),
        batch_size=spec["batch_size"],
        key=key,
      )
      parallel.append(fast.to_dict())
      picks.append({**found.suggestions, "parallel": fast.lr})
      # The grid, then this seed's suggestions in a fixed order (a rule without one trains
      # the grid's first rate in its slot), so every seed runs the same compiled program.
      slots = [grid[0] if picks[s].get(n) is None else picks[s][n] for n in NAMES]
      result = sweep.run(
        task,
        make_tx,
        {"lr": np.r_[grid, slots]},
        steps=budget,
        batch_size=spec["batch_size"],
        key=jax.random.key(0),
        eval_every=budget // 2,  # only the final metrics are read
        seeds=[s],
        progress=False,
      )
      result.save(folder / f"sweep_{s}")
    case = {
      "index": index,
      "task": task_name,
      "optimizer": optimizer,
      "options": spec["options"],
      "batch_size": spec["batch_size"],
      "steps": budget,
      "seeds": seeds,
      "test_examples": None if task.streamed else len(task.dataset.split("test")[1]),
      "grid": grid.tolist(),
      "picks": picks,
      "parallel": parallel,
      "L": task.L,
      "mu": task.mu,
      "momentum": OPTIMIZERS[optimizer][1].get("momentum", 0.0),
      "seconds": round(time.perf_counter() - started, 1),
    }
    (folder / "case.json").write_text(json.dumps(case, indent=2) + "\n", encoding="utf-8")


def _of(values: list, reduce) -> float | None:
  """``reduce`` (``np.mean``, ``np.median``) of the values that are not ``None``, or ``None``."""
  values = [v for v in values if v is not None]
  return float(reduce(values)) if values else None


def _grid_only(result: SweepResult, grid: list[float]) -> SweepResult:
  """The sweep without the suggestions' slots: the log grid alone."""
  keep = np.arange(len(grid))
  history = jax.tree.map(lambda a: a[:, keep] if np.ndim(a) >= 2 else a, result.history)
  return SweepResult({"lr": result.grid["lr"][keep]}, result.seeds, history, result.config)


def _row(folder: Path) -> dict:
  """One case's answers, from its saved files only."""
  case = json.loads((folder / "case.json").read_text(encoding="utf-8"))
  seeds, grid = case["seeds"], case["grid"]
  runs = [SweepResult.load(folder / f"sweep_{s}") for s in range(seeds)]
  accuracy = runs[0].has_accuracy and case["task"] not in LOSS_TASKS
  metric = "final_val_accuracy" if accuracy else "final_val_loss"
  test_metric = "final_test_accuracy" if accuracy else "final_test_loss"
  val = np.concatenate([r.metric(metric) for r in runs])  # (seeds, grid + slots)
  test = np.concatenate([r.metric(test_metric, diverged_as_worst=False) for r in runs])
  n = len(grid)
  full = _grid_only(runs[0], grid)
  full = SweepResult(
    full.grid,
    np.arange(seeds),
    jax.tree.map(lambda *a: np.concatenate(a), *[_grid_only(r, grid).history for r in runs]),
    full.config,
  )
  full, chance = report_lib.guarded(full, case, metric)  # dead runs count as failed
  mean = val[:, :n].mean(0)
  k = int(np.argmax(mean if accuracy else -np.where(np.isfinite(mean), mean, np.inf)))
  log_best = analysis.refine_best(np.log10(grid), mean, larger_is_better=accuracy)
  best_lr = float(10**log_best)
  usable = full.usable_range(metric)
  sign = 1.0 if accuracy else -1.0  # points lost: the best's score minus the pick's, signed
  rules = {}
  for j, name in enumerate(NAMES):
    lrs = [case["picks"][s].get(name) for s in range(seeds)]
    have = [lr is not None for lr in lrs]
    decades = [None if lr is None else float(np.log10(lr) - log_best) for lr in lrs]
    lost = [sign * float(test[s, k] - test[s, n + j]) if have[s] else None for s in range(seeds)]
    inside = [lr is not None and usable[0] <= lr <= usable[1] for lr in lrs]
    near = [
      h and (i or abs(d) <= np.log10(NEAR) + 1e-12)
      for h, i, d in zip(have, inside, decades, strict=True)
    ]
    gap = None
    if accuracy and all(have):
      at_best, at_pick = test[:, k], test[:, n + j]
      gap = analysis.paired_difference(at_best, at_pick, test_examples=case["test_examples"])
    rules[name] = {
      "lr": lrs,
      "decades": decades,
      "test_lost": [None if v is None else report_lib.finite(v) for v in lost],
      "mean_test_lost": _of(lost, np.mean),
      "in_usable_range": inside,
      "near": near,
      "near_seeds": int(sum(near)),
      "near_case": 2 * sum(near) > seeds,
      "median_decades": _of(decades, np.median),
      "points_lost": gap,
    }
  found = finder.FinderResult.load(folder / "range_test_0.json")
  row = {
    **{k: case[k] for k in ("task", "optimizer", "options", "batch_size", "steps", "seeds")},
    "metric": metric,
    "test_examples": case["test_examples"],
    "sweep": {
      "best_lr": best_lr,
      "best_lr_on_grid": float(grid[k]),
      "best_lr_by_val_loss": report_lib.loss_best(runs, grid) if accuracy else best_lr,
      "val": report_lib.finite(mean[k]),
      "test": report_lib.finite(np.mean(test[:, k])),
      "usable_range": [report_lib.finite(v) for v in usable],
      "usable_range_ratio": report_lib.finite(usable[1] / usable[0]),
      "divergence_lr": full.divergence_threshold("lr", metric),
      "chance_loss": chance,
      "dead_runs": full.config.get("dead_guard", {}).get("runs", 0),
      "on_edge": k in (0, n - 1),
      "size": n,
    },
    "range_test": {  # seed 0's
      "stop_reason": found.stop_reason,
      "stop_lr": found.stop_lr,
      "onset_lr": float(found.lrs[int(np.nanargmin(found.losses))]),  # the lowest raw loss
      **report_lib.slopes(found, best_lr),
      "end_lr": found.config["end_lr"],
    },
    "rules": rules,
    "seconds": case["seconds"],
  }
  if case["L"] is not None and case["optimizer"] != "adam":
    # Gradient descent is stable iff lr < 2/L and fastest at 2/(L+mu). Heavy ball (PyTorch's
    # form) is stable iff lr < 2(1+b)/L, and every lr in [(1-sqrt b)^2/mu, (1+sqrt b)^2/L]
    # contracts at the same rate sqrt b.
    L, mu, b = case["L"], case["mu"], case["momentum"]
    limit = 2 * (1 + b) / L
    theory = {"L": L, "mu": mu, "momentum": b, "stability_limit": limit}
    theory["stop_over_limit"] = None if found.stop_lr is None else found.stop_lr / limit
    theory["onset_over_limit"] = row["range_test"]["onset_lr"] / limit
    if b == 0:
      theory["best"] = 2 / (L + mu)
      theory["sweep_best_over_best"] = best_lr / theory["best"]
    else:
      theory["flat_range"] = [(1 - b**0.5) ** 2 / mu, (1 + b**0.5) ** 2 / L]
    row["theory"] = theory
  return row


def report(out: Path):
  folders = [p.parent for p in out.glob("*/case.json")]
  order = lambda p: json.loads((p / "case.json").read_text(encoding="utf-8"))["index"]
  folders = sorted(folders, key=order)  # the cases' order in the run
  rows = [_row(folder) for folder in folders]
  numbers = {"cases": rows, "aggregate": report_lib.aggregate(rows, NAMES, NEAR)}
  figures = []
  for folder, r in zip(folders, rows, strict=True):
    reference = {"sweep best": r["sweep"]["best_lr"]}
    if "theory" in r:
      reference["stability limit"] = r["theory"]["stability_limit"]
      if "best" in r["theory"]:
        reference["2/(L+mu)"] = r["theory"]["best"]
    found = finder.FinderResult.load(folder / "range_test_0.json")
    figures.append(out / f"range_{folder.name}.png")
    finder.plot_range_test(found, figures[-1], reference=reference)
  figures.append(report_lib.error_figure(rows, NAMES, NEAR, out / "errors.png"))
  (out / "table.md").write_text(report_lib.table(numbers, NAMES) + "\n", encoding="utf-8")
  verdicts = {n: numbers["aggregate"]["rules"][n]["verdict"] for n in finder.RULES}
  if len(set(verdicts.values())) == 1:
    verdict = next(iter(verdicts.values()))
  else:
    verdict = "depends on the rule: " + ", ".join(f"{n} {v}" for n, v in verdicts.items())
  return numbers, verdict, figures


if __name__ == "__main__":
  sys.exit(common.main(sys.modules[__name__]))
