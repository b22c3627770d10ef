"""Does PBT's selection favour the members that just lowered their rate? (issue 18)

  python scripts/search_pbt_selection.py [--runs adam:1620,adam:4860,sgd-momentum:4860]
      [--seeds 5] [--out benchmarks/cpu-2core/search_pbt_selection.json]

The search benchmark's PBT (:mod:`lrlab.benchmark.search`: every third rate of its 27-rate
grid on ``mnist1d-mlp``, an exploit every ``steps / 27`` steps, perturb factors 0.5 and 2,
truncation of a quarter, ranked by validation accuracy), ``--seeds`` independent populations.
At each exploit a replaced member (a child) continues from its parent's state with the
parent's rate times 0.5 or 2. At the next exploit the population is ranked again; this counts
how often a child lands in the top quarter (becomes a parent) or the bottom quarter (is
replaced), by the factor it drew. Greedy selection on the metric of the moment would favour
the halved children if a lower rate buys an immediate gain (the short-horizon bias of
Wu et al. 2018, "Understanding Short-Horizon Bias in Stochastic Meta-Optimization").

Per seed, the share of halved children in the top quarter minus the share of doubled ones;
the mean over seeds ± its SE (ddof 1): the seeds are the independent units, the children of
one population are not.
"""

import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from lrlab.benchmark.workload import host_cores, set_host_devices, write_json
from lrlab.cli.common import Parser, integer_at_least_2


def children(result) -> list[list[tuple[float, int]]]:
  """Per seed, ``(factor, rank at the next exploit)`` of every child (0: best), by the
  ranking PBT itself used there (:func:`lrlab.search.members.ranking`)."""
  from lrlab.search.members import ranking

  seeds, size, exploits = result.lineage.shape
  interval = result.config["eval_every"]
  values = getattr(result.sweep.history, result.metric)
  out = []
  for s in range(seeds):
    found = []
    for i in range(1, exploits):
      step = int(result.exploit_steps[i])
      # PBT ranks by the evaluation at the exploit, a diverged member last
      order = list(ranking(values[s, :, step // interval], result.metric,
                           result.sweep.history.diverged[s]))  # fmt: skip
      for k in range(size):
        parent = result.lineage[s, k, i - 1]
        if parent == k:
          continue
        factor = result.schedule["lr"][s, k, i] / result.schedule["lr"][s, parent, i - 1]
        found.append((0.5 if factor < 1 else 2.0, order.index(k)))
    out.append(found)
  return out


def table(report: dict) -> str:
  """The markdown table BENCHMARKS.md quotes."""
  lines = ["| optimizer, steps | halved children: top / bottom quarter | doubled: top / bottom "
           f"| top share, halved - doubled ({len(report['seeds'])} seeds) "
           "| best member's final lr, seed 0 |",
           "|---|---:|---:|---:|---:|"]  # fmt: skip
  for r in report["runs"]:
    h, d = r["factors"]["0.5"], r["factors"]["2.0"]
    lines.append(f"| {r['optimizer']}, {r['steps']} | {h['top']:.2f} / {h['bottom']:.2f} "
                 f"({h['children']}) | {d['top']:.2f} / {d['bottom']:.2f} ({d['children']}) | "
                 f"{r['top_difference']:+.2f} ± {r['top_difference_se']:.2f} | "
                 f"{r['final_lr']:.2g} |")  # fmt: skip
  return "\n".join(lines)


def main(argv=None) -> int:
  """Run each PBT; write ``--out``; 0."""
  parser = Parser(description=__doc__.split("\n")[0])
  parser.add_argument("--runs", default="adam:1620,adam:4860,sgd-momentum:4860")
  parser.add_argument(
    "--seeds", type=integer_at_least_2, default=5, help="populations (a standard error needs two)"
  )
  parser.add_argument(
    "--out",
    default="results/search_pbt_selection.json",
    help="the report; benchmarks/cpu-2core/search_pbt_selection.json is the committed one",
  )
  args = parser.parse_args(argv)
  set_host_devices(host_cores())
  import jax
  import numpy as np

  from lrlab import search, sweep, tasks
  from lrlab.benchmark import search as bench

  wanted = []
  for spec in args.runs.split(","):  # all read first: a typo stops it before any PBT runs
    optimizer, _, steps = spec.partition(":")
    if optimizer not in bench.OPTIMIZERS or not steps.isdigit() or int(steps) < 27:
      parser.error(
        f"--runs takes OPTIMIZER:STEPS,..., OPTIMIZER one of {', '.join(bench.OPTIMIZERS)} "
        f"and STEPS an integer >= 27; got {spec!r}"
      )
    wanted.append((optimizer, int(steps)))
  task = tasks.get("mnist1d-mlp")
  grid = sweep.log_grid(*bench.LR_RANGE, 27)
  runs = []
  for optimizer, steps in wanted:
    interval = steps // 27 * bench.PBT["interval_rungs"]
    population = {"lr": bench.pbt_grid_population(grid)}
    result = search.pbt(task, bench.OPTIMIZERS[optimizer], population, steps=steps,
                        interval=interval, perturb=bench.PBT["perturb"], metric="val_accuracy",
                        eval_every=interval, seeds=args.seeds, batch_size=100,
                        key=jax.random.key(0))  # fmt: skip
    size = result.lineage.shape[1]
    quarter = int(np.floor(0.25 * size))
    found = children(result)
    factors, per_seed = {}, {0.5: [], 2.0: []}
    for factor in (0.5, 2.0):
      ranks = np.array([rank for seed in found for f, rank in seed if f == factor])
      factors[str(factor)] = {"children": len(ranks), "top": float(np.mean(ranks < quarter)),
                              "bottom": float(np.mean(ranks >= size - quarter))}  # fmt: skip
      for seed in found:
        mine = np.array([rank for f, rank in seed if f == factor])
        per_seed[factor].append(float(np.mean(mine < quarter)))
    difference = np.array(per_seed[0.5]) - np.array(per_seed[2.0])
    runs.append({
      "optimizer": optimizer, "steps": steps, "interval": interval, "members": size,
      "quarter": quarter, "factors": factors,
      "top_share_by_seed": {str(k): v for k, v in per_seed.items()},
      "top_difference": float(difference.mean()),
      "top_difference_se": float(difference.std(ddof=1) / np.sqrt(difference.size)),
      "final_lr": result.best(seed=0)["schedule"]["lr"][-1],
    })  # fmt: skip
    print(json.dumps(runs[-1]), flush=True)
  report = {"task": "mnist1d-mlp", "perturb": list(bench.PBT["perturb"]),
            "seeds": list(range(args.seeds)), "runs": runs}  # fmt: skip
  write_json(report, args.out)
  print(table(report))
  return 0


if __name__ == "__main__":
  sys.exit(main())
