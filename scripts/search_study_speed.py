"""How much faster ``lrlab.search.run_study`` is than a user's sequential Optuna loop (issue 18).

  python scripts/search_study_speed.py [--k 27] [--steps 1620] [--repeats 2]
      [--out benchmarks/cpu-2core/search_study.json]

The same Optuna TPE study (seed 0), ``K`` trials of Adam's learning rate in
``[1e-4, 1]`` on ``mnist1d-mlp`` (batch 100, ``steps`` steps, val accuracy), is
run four ways, round robin ``repeats`` times in one process (each with the
program cache cleared first, so each pays its compilation, and the 1-minute load
average before and after recorded beside it):

- ``loop``: ask, train with lrlab's compiled single run (``sweep.run`` of one
  member on one device, compiled once), tell: a user's loop;
- ``run_study_9`` and ``run_study_K``: :func:`lrlab.search.run_study` with
  ``parallel`` 9 (``K / eta``, as the search benchmark) and ``K`` (every trial in
  one batch; TPE then has nothing to learn from, it samples from its prior);
- ``sweep_K``: :func:`lrlab.sweep.run` over ``K`` log-spaced rates, no Optuna:
  the speedup of one batch of ``K`` over the loop, which bounds ``run_study``'s.

The loop's and the sweep's compile seconds are recorded beside their wall-clock.

Like ``scripts/benchmark.py --search``, it runs on as many host devices as the
process may use cores.
"""

import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from lrlab.benchmark.workload import host_cores, set_host_devices
from lrlab.cli.common import Parser, positive_int

EVERY = 60  # steps between evaluations, of every leg


def main(argv=None) -> int:
  """Run the four legs ``--repeats`` times, round robin; write ``--out``; 0."""
  parser = Parser(description=__doc__.split("\n")[0])
  parser.add_argument("--k", type=positive_int, default=27)
  parser.add_argument(
    "--steps", type=positive_int, default=1620, help=f"updates per trial, a multiple of {EVERY}"
  )
  parser.add_argument("--repeats", type=positive_int, default=2)
  parser.add_argument(
    "--out",
    default="results/search_study.json",
    help="the report; benchmarks/cpu-2core/search_study.json is the committed one",
  )
  args = parser.parse_args(argv)
  if args.steps % EVERY:  # else a traceback from the first leg (eval_every must divide steps)
    parser.error(
      f"--steps must be a multiple of {EVERY}, the evaluation interval; got {args.steps}"
    )
  set_host_devices(host_cores())  # before JAX starts its backend
  import jax
  import numpy as np
  import optuna

  from lrlab import search, sweep, tasks
  from lrlab.benchmark.search import _adam
  from lrlab.sweep.storage import environment_metadata

  optuna.logging.set_verbosity(optuna.logging.WARNING)
  task, key, k, steps = tasks.get("mnist1d-mlp"), jax.random.key(0), args.k, args.steps
  every = EVERY
  space = {"lr": optuna.distributions.FloatDistribution(1e-4, 1.0, log=True)}
  common = dict(batch_size=100, key=key)
  tpe = lambda: optuna.create_study(
    direction="maximize", sampler=optuna.samplers.TPESampler(seed=0)
  )

  compiled = {}  # a leg's compile seconds, where lrlab reports them

  def loop():
    study, compiled["loop"] = tpe(), 0.0
    for _ in range(k):
      trial = study.ask(space)
      result = sweep.run(task, _adam, {"lr": np.array([trial.params["lr"]])}, steps=steps,
                         eval_every=every, chunk_size=1, devices=jax.devices()[:1],
                         progress=False, **common)  # fmt: skip
      compiled["loop"] += result.metadata["compile_seconds"]
      study.tell(trial, float(result.metric("final_val_accuracy")[0, 0]))
    return study.best_value

  def batched(parallel):
    def run():
      study = tpe()
      search.run_study(study, task, _adam, space, n_trials=k, parallel=parallel, steps=steps,
                       metric="val_accuracy", eval_every=every, prune=False, **common)  # fmt: skip
      return study.best_value

    return run

  def grid():
    result = sweep.run(task, _adam, {"lr": sweep.log_grid(1e-4, 1.0, k)}, steps=steps,
                       eval_every=every, progress=False, **common)  # fmt: skip
    compiled[f"sweep_{k}"] = result.metadata["compile_seconds"]
    return float(np.nanmax(result.metric("final_val_accuracy")))

  legs = {"loop": loop, "run_study_9": batched(9), f"run_study_{k}": batched(k), f"sweep_{k}": grid}
  # Warm up JAX's backend outside every timing.
  sweep.run(task, _adam, {"lr": np.array([1e-3, 1e-2])}, steps=every, eval_every=every,
            progress=False, **common)  # fmt: skip
  rows = []
  for repeat in range(args.repeats):
    for name, leg in legs.items():
      sweep.clear_cache()
      compiled.clear()
      load = os.getloadavg()[0]
      tic = time.perf_counter()
      best = leg()
      row = {"leg": name, "repeat": repeat, "wall_seconds": time.perf_counter() - tic,
             "best_val_accuracy": best, "load_average": [load, os.getloadavg()[0]],
             "compile_seconds": compiled.get(name)}  # fmt: skip
      print(json.dumps(row), flush=True)
      rows.append(row)
  median = {n: float(np.median([r["wall_seconds"] for r in rows if r["leg"] == n])) for n in legs}
  report = {
    "k": k, "steps": steps, "repeats": args.repeats, "devices": len(jax.devices()),
    "rows": rows, "median_seconds": median,
    "loop_over": {n: median["loop"] / s for n, s in median.items() if n != "loop"},
    "environment": environment_metadata(),
  }  # fmt: skip
  os.makedirs(os.path.dirname(args.out) or ".", exist_ok=True)
  with open(args.out, "w", encoding="utf-8") as f:
    json.dump(report, f, indent=2, default=str)
  print(json.dumps(report["loop_over"]))
  return 0


if __name__ == "__main__":
  sys.exit(main())
