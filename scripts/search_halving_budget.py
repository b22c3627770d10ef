"""Successive halving's wall-clock against the full grid's at several budgets (issue 18).

  python scripts/search_halving_budget.py [--task mnist1d-mlp] [--steps 1620,4860]
      [--repeats 2] [--optimizers adam,sgd-momentum]
      [--out benchmarks/cpu-2core/search_halving_budget.json]

The search benchmark's protocol (``lrlab.benchmark.search``: 27 log-spaced rates in
``[1e-4, 1]`` on ``--task`` (built with the benchmark's ``TASK_OPTIONS``), batch 100,
seed 0, ``eta = 3``, ``min_steps = steps / 27``, an evaluation every ``min_steps``), only
the grid and successive halving, in one process, interleaved: each repeat runs both, the
order alternating (grid first, then halving first), each with the program cache cleared, so
each pays its compilation. Its 1-minute load average before and after is recorded beside
each. Compilation is fixed and
training scales with the budget, so the ratio falls towards the model-steps' (11%) as the
budget grows; this measures from which budget it is at most 40%.
"""

import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from lrlab.benchmark.workload import host_cores, set_host_devices, write_json
from lrlab.cli.common import Parser, positive_int


def table(report: dict) -> str:
  """The markdown table BENCHMARKS.md quotes: per optimizer and budget, the median wall-clock
  of the grid and of halving, their ratio, and the range of the load averages around them."""
  import numpy as np

  lines = ["| optimizer | steps | grid s (median) | halving s (median) | halving / grid | load |",
           "|---|---:|---:|---:|---:|---|"]  # fmt: skip
  for key, ratio in report["halving_over_grid"].items():
    optimizer, steps = key.split("/")
    same = [r for r in report["rows"] if (r["optimizer"], str(r["steps"])) == (optimizer, steps)]
    median = {
      leg: np.median([r["wall_seconds"] for r in same if r["leg"] == leg])
      for leg in ("grid", "halving")
    }
    loads = [x for r in same for x in r["load_average"]]
    lines.append(f"| {optimizer} | {steps} | {median['grid']:.1f} | {median['halving']:.1f} | "
                 f"{ratio:.0%} | {min(loads):.0f}-{max(loads):.0f} |")  # fmt: skip
  return "\n".join(lines)


def main(argv=None) -> int:
  """Run the legs; write ``--out`` (rows and the median ratio per optimizer and budget); 0."""
  parser = Parser(description=__doc__.split("\n")[0])
  parser.add_argument("--task", default="mnist1d-mlp", help="a registered task")
  parser.add_argument("--steps", default="1620,4860", help="budgets, multiples of 27")
  parser.add_argument("--repeats", type=positive_int, default=2)
  parser.add_argument("--optimizers", default="adam,sgd-momentum")
  parser.add_argument("--k", type=positive_int, default=27)
  parser.add_argument(
    "--out",
    default="results/search_halving_budget.json",
    help="the report; benchmarks/cpu-2core/search_halving_budget.json is the committed one",
  )
  args = parser.parse_args(argv)
  set_host_devices(host_cores())
  import jax
  import numpy as np

  from lrlab import search, sweep, tasks
  from lrlab.benchmark import search as bench

  optimizers = args.optimizers.split(",")
  unknown = [name for name in optimizers if name not in bench.OPTIMIZERS]
  if unknown:  # else a typo stops it after the legs before it, with nothing written
    parser.error(f"--optimizers must name {', '.join(bench.OPTIMIZERS)}; got {unknown[0]!r}")
  try:
    budgets = [int(s) for s in args.steps.split(",")]
  except ValueError:
    parser.error(f"--steps must be comma-separated integers; got {args.steps!r}")
  if any(steps <= 0 or steps % 27 for steps in budgets):  # min_steps = steps / 27, eta = 3
    parser.error(f"--steps must be positive multiples of 27; got {args.steps!r}")
  if args.task not in tasks.names():  # else a traceback, after JAX started
    parser.error(f"--task must be one of {', '.join(tasks.names())}; got {args.task!r}")
  task, eta = tasks.get(args.task, **bench.TASK_OPTIONS.get(args.task, {})), 3
  grid = {"lr": sweep.log_grid(*bench.LR_RANGE, args.k)}

  def run_leg(leg, make_tx, steps):
    min_steps = steps // eta**3
    common = dict(steps=steps, eval_every=min_steps, batch_size=100, key=jax.random.key(0))
    if leg == "grid":
      return sweep.run(task, make_tx, grid, progress=False, **common)
    return search.successive_halving(
      task, make_tx, grid, eta=eta, min_steps=min_steps, metric="val_accuracy", **common
    )

  rows = []
  for steps in budgets:
    for optimizer in optimizers:
      for repeat in range(args.repeats):
        for leg in ("grid", "halving") if repeat % 2 == 0 else ("halving", "grid"):
          sweep.clear_cache()
          load, tic = os.getloadavg()[0], time.perf_counter()
          result = run_leg(leg, bench.OPTIMIZERS[optimizer], steps)
          rows.append({"steps": steps, "optimizer": optimizer, "repeat": repeat, "leg": leg,
                       "wall_seconds": time.perf_counter() - tic,
                       "compile_seconds": result.metadata["compile_seconds"],
                       "load_average": [load, os.getloadavg()[0]]})  # fmt: skip
          print(json.dumps(rows[-1]), flush=True)
  ratios = {}
  for steps in sorted({r["steps"] for r in rows}):
    for optimizer in optimizers:
      median = {}
      for leg in ("grid", "halving"):
        same = [
          r for r in rows if (r["steps"], r["optimizer"], r["leg"]) == (steps, optimizer, leg)
        ]
        median[leg] = float(np.median([r["wall_seconds"] for r in same]))
      ratios[f"{optimizer}/{steps}"] = median["halving"] / median["grid"]
  report = {"task": args.task, "k": args.k, "eta": eta, "repeats": args.repeats,
            "rows": rows, "halving_over_grid": ratios}  # fmt: skip
  write_json(report, args.out)
  print(table(report))
  return 0


if __name__ == "__main__":
  sys.exit(main())
