"""Does PBT miss because of the search benchmark's settings? One change at a time (issue 18).

  python scripts/search_pbt_settings.py [--steps 1620] [--seeds 5]
      [--out benchmarks/cpu-2core/search_pbt_settings.json]

On ``mnist1d-mlp`` with Adam and SGD momentum, PBT from the search benchmark's three
populations (:mod:`lrlab.benchmark.search`: every third rate of its 27-rate grid, and 8
rates spanning a factor 4 around a tenth and around ten times the grid's pick) under the
benchmark's settings (:data:`lrlab.benchmark.search.PBT`: an exploit every 60 steps, perturb
factors 0.5 and 2, members ranked by validation accuracy) and under one change at a time:

- ``perturb 0.8/1.25``: Jaderberg et al.'s factors, :func:`lrlab.search.pbt`'s default;
- ``interval x3``: an exploit every 180 steps;
- ``rank by val_loss``: the ranking metric (and the answer's) is the validation loss;
- ``resample 1/4 from the grid``: Jaderberg et al.'s other explore step, a replaced member's
  rate drawn with probability 1/4 from the benchmark's 27 grid rates instead of perturbed;
- ``16 members``: twice the population, over the same ranges (16 log-spaced rates of the
  grid's range, or spanning the same factor 4 around a tenth or ten times the pick).
- ``binary tournament``: Jaderberg et al.'s other exploit, each member copying a random
  other that ranks above it (``exploit="tournament"``) instead of the worst quarter copying
  the best quarter.

Each cell is the benchmark's measure: the best member's own test accuracy over ``--seeds``
independent populations (:func:`lrlab.benchmark.search.own_tests`), paired seed by seed with
the grid's pick retrained for the same seeds (the picks of the benchmark's report, ``--benchmark``),
as the mean difference ± its SE in points, and for the populations 10x off the verdict of
issue 18's goal (within 1 point; :func:`lrlab.benchmark.search_report.goal_verdict`).
"""

import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np

from lrlab.benchmark.workload import host_cores, set_host_devices, write_json
from lrlab.cli.common import Parser, integer_at_least_2, positive_int

#: The changes tried, each a function of the benchmark's settings (``interval``, ``perturb``,
#: ``metric``) to the settings it runs with; ``members`` sets the population's size.
VARIANTS = {
  "the benchmark's": lambda s: s,
  "perturb 0.8/1.25": lambda s: {**s, "perturb": (0.8, 1.25)},
  "interval x3": lambda s: {**s, "interval": 3 * s["interval"]},
  "rank by val_loss": lambda s: {**s, "metric": "val_loss"},
  "resample 1/4 from the grid": lambda s: {
    **s,
    "resample_probability": 0.25,
    "resample": {"lr": np.geomspace(1e-4, 1.0, 27)},
  },
  "16 members": lambda s: {**s, "members": 16},
  "binary tournament": lambda s: {**s, "exploit": "tournament"},
}
STARTS = {"grid": "every third grid rate", "low": "10x too small", "high": "10x too large"}


def table(report: dict) -> str:
  """The markdown table BENCHMARKS.md quotes: a row per variant, a column per optimizer and
  start, each cell the paired difference from the grid's pick in points ± SE (and the goal's
  verdict for the starts 10x off)."""
  cells = {(c["variant"], c["optimizer"], c["start"]): c for c in report["cells"]}
  columns = [(o, s) for o in report["optimizers"] for s in STARTS]
  lines = ["| settings | " + " | ".join(f"{o}, {STARTS[s]}" for o, s in columns) + " |",
           "|---" + "|---:" * len(columns) + "|"]  # fmt: skip
  for variant in VARIANTS:
    row = []
    for optimizer, start in columns:
      c = cells[variant, optimizer, start]
      text = f"{c['minus_grid_points']:+.1f} ± {c['minus_grid_points_se']:.1f}"
      row.append(text + (f", {c['verdict']}" if start != "grid" else ""))
    lines.append(f"| {variant} | " + " | ".join(row) + " |")
  return "\n".join(lines)


def main(argv=None) -> int:
  """Run every (optimizer, start, variant) cell; write ``--out``; 0."""
  parser = Parser(description=__doc__.split("\n")[0])
  parser.add_argument("--steps", type=positive_int, default=1620)
  parser.add_argument(
    "--seeds", type=integer_at_least_2, default=5, help="populations (a standard error needs two)"
  )
  parser.add_argument("--benchmark", default="benchmarks/cpu-2core/search.json",
                      help="the search benchmark's report (its grid's picks)")  # fmt: skip
  parser.add_argument(
    "--out",
    default="results/search_pbt_settings.json",
    help="the report; benchmarks/cpu-2core/search_pbt_settings.json is the committed one",
  )
  args = parser.parse_args(argv)
  if not os.path.isfile(args.benchmark):  # else a FileNotFoundError traceback
    parser.error(f"--benchmark must be a search benchmark's report; got {args.benchmark!r}")
  with open(args.benchmark, encoding="utf-8") as f:
    runs = [r for r in json.load(f)["runs"] if r["task"] == "mnist1d-mlp"]
  picks = {r["optimizer"]: r["methods"]["grid"]["lr"] for r in runs}
  if any(r["steps"] != args.steps for r in runs):
    parser.error(f"--benchmark's runs are at {runs[0]['steps']} steps, not --steps {args.steps}")
  set_host_devices(host_cores())
  import jax

  from lrlab import search, sweep, tasks
  from lrlab.benchmark import search as bench
  from lrlab.benchmark.search_report import PBT_GOAL, goal_verdict, seed_statistics

  task = tasks.get("mnist1d-mlp")
  interval = args.steps // 27 * bench.PBT["interval_rungs"]
  common = dict(batch_size=100, key=jax.random.key(0))
  grid = sweep.log_grid(*bench.LR_RANGE, 27)
  cells, references = [], {}
  for optimizer, pick in picks.items():
    make_tx = bench.OPTIMIZERS[optimizer]
    reference = bench.retrain_per_seed(
      task, make_tx, pick, steps=args.steps, eval_every=interval, test="final_test_accuracy",
      seeds=args.seeds, **common,
    )  # fmt: skip
    references[optimizer] = reference.tolist()
    for variant, change in VARIANTS.items():
      settings = change({"interval": interval, "perturb": bench.PBT["perturb"],
                         "metric": "val_accuracy"})  # fmt: skip
      size = settings.pop("members", None)
      # the benchmark's populations (or `size` members over the same ranges)
      populations = {
        "grid": bench.pbt_grid_population(grid)
        if size is None
        else sweep.log_grid(*bench.LR_RANGE, size),
        "low": bench.pbt_population(pick * 0.1, size or 8),
        "high": bench.pbt_population(pick * 10.0, size or 8),
      }
      for start, rates in populations.items():
        tic, load = time.perf_counter(), os.getloadavg()[0]
        result = search.pbt(task, make_tx, {"lr": rates}, steps=args.steps, eval_every=interval,
                            seeds=args.seeds, **settings, **common)  # fmt: skip
        own = bench.own_tests(result, "test_accuracy")
        paired = seed_statistics(own, reference)
        difference, se = 100 * paired["test_minus_grid"], 100 * paired["test_minus_grid_se"]
        cells.append({
          "optimizer": optimizer, "start": start, "variant": variant,
          "settings": {**settings, "perturb": list(settings["perturb"]),
                       **({"resample": {k: v.tolist() for k, v in settings["resample"].items()}}
                          if "resample" in settings else {})},
          "population": rates.tolist(), "own_test_seeds": own.tolist(),
          "minus_grid_points": difference, "minus_grid_points_se": se,
          "verdict": goal_verdict(-difference, se, PBT_GOAL["points"])[1],
          "final_lr": result.best(seed=0)["schedule"]["lr"][-1],
          "wall_seconds": time.perf_counter() - tic, "load_average": [load, os.getloadavg()[0]],
        })  # fmt: skip
        shown = ("optimizer", "start", "variant", "minus_grid_points", "verdict")
        print(json.dumps({k: cells[-1][k] for k in shown}), flush=True)
  report = {"task": "mnist1d-mlp", "steps": args.steps, "interval": interval,
            "seeds": list(range(args.seeds)), "optimizers": list(picks), "grid_lr": picks,
            "grid_test_seeds": references, "cells": cells}  # fmt: skip
  write_json(report, args.out)
  print(table(report))
  return 0


if __name__ == "__main__":
  sys.exit(main())
