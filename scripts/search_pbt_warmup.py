"""PBT from rates 10x too large with Adam, with and without a warmup of the rate (issue 18).

  python scripts/search_pbt_warmup.py [--steps 1620] [--warmups 0,60,180]
      [--out benchmarks/cpu-2core/search_pbt_warmup.json]

The search benchmark's PBT (``lrlab.benchmark.search.PBT``: an exploit every 60
steps, perturb factors 0.5 and 2, 8 members spanning a factor 4) on
``mnist1d-mlp`` with Adam, started 10x too large (around 0.1, the grid's pick
0.01 times 10) and 10x too small (around 0.001). Each member's rate is
``lr * min(1, (t + 1) / W)`` at step ``t`` (a linear warmup over the first
``W`` steps, ``W = 0``: none), as a user who knows Adam damages a network in its
first steps at a large rate would set it; PBT still perturbs ``lr``, the peak.
The measure is the benchmark's (:mod:`lrlab.benchmark.search`): the best member's own
test accuracy over ``--seeds`` independent populations (one ``pbt`` call with that many
seeds, each answering with its own best member), paired seed by seed with the best fixed
rate of the benchmark's grid, 0.01 without warmup, retrained for the same seeds in a sweep of
its own: mean ± SE (ddof 1) and the paired difference ± its SE. Beside it, the fairer
reference for a warmed-up PBT: the benchmark's 27-rate grid trained with the longest warmup
(seed 0), its pick retrained the same way (``warmup_grid_lr``, ``warmup_grid_test``), and
each row's paired difference from it (``minus_warmup_grid_points``).
"""

import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from lrlab.benchmark.workload import host_cores, set_host_devices, write_json
from lrlab.cli.common import Parser, integer_at_least_2, positive_int


def warmup_adam(warmup: int):
  """``hp -> Adam`` whose rate rises linearly from ``hp["lr"] / warmup`` to ``hp["lr"]`` over
  the first ``warmup`` steps (``warmup = 0``: the fixed rate)."""
  import jax.numpy as jnp

  from lrlab import optimizers

  def make_tx(hp):
    if warmup == 0:
      return optimizers.adam(hp["lr"])
    return optimizers.adam(lambda t: hp["lr"] * jnp.minimum(1.0, (t + 1) / warmup))

  return make_tx


def table(report: dict) -> str:
  """The markdown table BENCHMARKS.md quotes: per start and warmup, the best member's own test
  accuracy (mean ± SE over the seeds), its paired difference from the grid's rate retrained
  and from the warmed-up grid's, its final rate (seed 0) and the load."""
  seeds = len(report["seeds"])
  lines = [f"| start | warmup steps | best member's test ({seeds} seeds) | - grid (points) | "
           "- warmed-up grid (points) | final lr, seed 0 | load |",
           "|---|---:|---:|---:|---:|---:|---|"]  # fmt: skip
  for r in report["rows"]:
    load = "-".join(f"{x:.0f}" for x in r["load_average"])
    lines.append(f"| 10x too {'large' if r['start'] == 'high' else 'small'} | {r['warmup']} | "
                 f"{r['own_test']:.3f} ± {r['own_test_se']:.3f} | "
                 f"{r['minus_grid_points']:+.1f} ± {r['minus_grid_points_se']:.1f} | "
                 f"{r['minus_warmup_grid_points']:+.1f} ± {r['minus_warmup_grid_points_se']:.1f} | "
                 f"{r['final_lr']:.3g} | {load} |")  # fmt: skip
  longest = max(r["warmup"] for r in report["rows"])
  lines.append(f"\nThe grid's rate {report['grid_lr']:g} (no warmup) retrains at "
               f"{report['grid_test']:.3f} ± {report['grid_test_se']:.3f}; with a warmup of "
               f"{longest} steps the grid picks {report['warmup_grid_lr']:.3g}, which retrains "
               f"at {report['warmup_grid_test']:.3f} ± "
               f"{report['warmup_grid_test_se']:.3f}.")  # fmt: skip
  return "\n".join(lines)


def main(argv=None) -> int:
  """Run every (start, warmup) case and the grid's rate; write ``--out``; 0."""
  parser = Parser(description=__doc__.split("\n")[0])
  parser.add_argument("--steps", type=positive_int, default=1620)
  parser.add_argument("--warmups", default="0,60,180")
  parser.add_argument(
    "--seeds", type=integer_at_least_2, default=5, help="populations (a standard error needs two)"
  )
  parser.add_argument("--grid-lr", type=float, default=0.01, help="the grid's pick (benchmark)")
  parser.add_argument(
    "--out",
    default="results/search_pbt_warmup.json",
    help="the report; benchmarks/cpu-2core/search_pbt_warmup.json is the committed one",
  )
  args = parser.parse_args(argv)
  try:  # read before anything runs: a typo used to end in a traceback after the grid's retrain
    warmups = [int(w) for w in args.warmups.split(",")]
  except ValueError:
    warmups = [-1]
  if any(w < 0 for w in warmups):
    parser.error(f"--warmups must be comma-separated integers >= 0; got {args.warmups!r}")
  set_host_devices(host_cores())
  import jax

  from lrlab import search, sweep, tasks
  from lrlab.benchmark import search as bench
  from lrlab.benchmark.search_report import seed_statistics

  task = tasks.get("mnist1d-mlp")
  interval = args.steps // 27 * bench.PBT["interval_rungs"]
  common = dict(batch_size=100, key=jax.random.key(0), eval_every=interval)
  retrain = dict(steps=args.steps, test="final_test_accuracy", seeds=args.seeds, **common)
  reference = bench.retrain_per_seed(task, warmup_adam(0), args.grid_lr, **retrain)
  # The fairer reference for a warmed-up PBT: the grid's best rate with the same warmup.
  warm_grid = {"lr": sweep.log_grid(*bench.LR_RANGE, 27)}
  swept = sweep.run(task, warmup_adam(max(warmups)), warm_grid, steps=args.steps,
                    progress=False, **common)  # fmt: skip
  warm_lr = bench._pick(swept.metric("final_val_accuracy")[0], warm_grid["lr"], "val_accuracy")
  warm_reference = bench.retrain_per_seed(task, warmup_adam(max(warmups)), warm_lr, **retrain)
  rows = []
  for warmup in warmups:
    for start, factor in (("high", 10.0), ("low", 0.1)):
      tic, load = time.perf_counter(), os.getloadavg()[0]
      population = {"lr": bench.pbt_population(args.grid_lr * factor)}
      result = search.pbt(task, warmup_adam(warmup), population, steps=args.steps,
                          interval=interval, perturb=bench.PBT["perturb"],
                          metric="val_accuracy", seeds=args.seeds, **common)  # fmt: skip
      own = bench.own_tests(result, "test_accuracy")
      grid = seed_statistics(own, reference)
      warm = seed_statistics(own, warm_reference)
      rows.append({"start": start, "warmup": warmup, "own_test_seeds": own.tolist(),
                   "own_test": grid["test"], "own_test_se": grid["test_se"],
                   "minus_grid_points": 100 * grid["test_minus_grid"],
                   "minus_grid_points_se": 100 * grid["test_minus_grid_se"],
                   "minus_warmup_grid_points": 100 * warm["test_minus_grid"],
                   "minus_warmup_grid_points_se": 100 * warm["test_minus_grid_se"],
                   "final_lr": result.best(seed=0)["schedule"]["lr"][-1],
                   "wall_seconds": time.perf_counter() - tic,
                   "load_average": [load, os.getloadavg()[0]]})  # fmt: skip
      print(json.dumps(rows[-1]), flush=True)
  reference_stats = seed_statistics(reference, reference)
  warm_stats = seed_statistics(warm_reference, warm_reference)
  report = {"task": "mnist1d-mlp", "optimizer": "adam", "steps": args.steps,
            "interval": interval, "perturb": list(bench.PBT["perturb"]), "members": 8,
            "seeds": list(range(args.seeds)), "grid_lr": args.grid_lr,
            "grid_test_seeds": reference.tolist(), "grid_test": reference_stats["test"],
            "grid_test_se": reference_stats["test_se"], "warmup_grid_lr": warm_lr,
            "warmup_grid_test_seeds": warm_reference.tolist(),
            "warmup_grid_test": warm_stats["test"], "warmup_grid_test_se": warm_stats["test_se"],
            "rows": rows}  # fmt: skip
  write_json(report, args.out)
  print(table(report))
  return 0


if __name__ == "__main__":
  sys.exit(main())
