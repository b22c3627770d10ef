"""Time to the answer: how long until the best learning rate is known, and how good it is.

  python scripts/benchmark.py --search [--tasks mnist1d-mlp:adam,digits-cnn:sgd-momentum]
      [--k 27] [--steps 1620] [--eta 3] [--retrain-seeds 5] [--out results/benchmark_search]

For each task and optimizer, every method searches the same log-spaced range of
learning rates ``[1e-4, 1]`` at the same budget per member and picks a rate by
its final validation metric (seed 0):

- ``grid``: :func:`lrlab.sweep.run` over ``K`` log-spaced rates (the reference);
- ``random``: the same over ``K`` log-uniform random rates (Bergstra & Bengio 2012);
- ``halving``: :func:`lrlab.search.successive_halving` over the grid (``eta``,
  ``min_steps = steps / eta**3``: 4 rungs, the pick made at the third);
- ``halving_3_rungs``: the same from ``min_steps = steps / eta**2``: its last rung trains
  ``K / eta**2`` members to the full budget and picks among them as the grid does
  (:data:`HALVING_RUNGS`);
- ``hyperband``: :func:`lrlab.search.hyperband` over the grid, the same rungs;
- ``pbt``: :func:`lrlab.search.pbt` from every ``K // 8``-th grid rate (8 or more members)
  with the settings of :data:`PBT` (an exploit every ``min_steps`` steps, perturb by 0.5 or
  2); the timed run's answer is its best member's schedule (seed 0), whose final rate is
  also retrained as a fixed rate;
- ``optuna_loop``: Optuna TPE (seed 0), ``K`` trials one after another, each trained by
  lrlab's compiled single run (``sweep.run`` of one member on one device, compiled once):
  a user's loop;
- ``optuna_batched``: the same study through :func:`lrlab.search.run_study`,
  ``parallel = K / eta`` trials at a time;
- ``pbt_from_low``, ``pbt_from_high``: PBT from 8 rates spanning a factor 4 around a tenth
  (ten times) of the grid's pick, all 10x too small (large).

A PBT row's quality, ``own_test``, is its best member's own test metric at the budget (the
member that trained on the schedule PBT answers with), measured after the timings over
``retrain_seeds`` independent populations (one call of ``pbt`` with that many seeds, each
answering with its own best member) and paired seed by seed with the grid pick's retrains;
for the two "from" rows it is judged against issue 18's goal, within 1 point of the grid's
(:func:`lrlab.benchmark.search_report.pbt_goal`).

Each method's wall-clock counts its compilation (the program cache is cleared
before it; a throwaway two-member sweep warms JAX up before the first), and its
model-steps are the members' training steps; the 1-minute load average before and after
it is recorded beside it. The picked
rates are then retrained at the full budget for ``retrain_seeds`` seeds (default 5), each
rate in a sweep of its own (one program width for all, so float rounding does not depend on
which rates were picked) and once however many methods picked it; every retrain shares the
seeds' keys (initial parameters, minibatch order), so the methods are compared seed by seed.
A method's quality is its rate's mean test metric with its standard error (ddof 1), and its
difference from the grid's is the mean of the per-seed differences with their standard error
(:func:`lrlab.benchmark.search_report.seed_statistics`); halving's goal (within 0.5 points, or
1% of the loss, of the grid's) is judged against that error
(:func:`lrlab.benchmark.search_report.halving_goal`). The full grid's
curves also give the Spearman rank correlation between each rung's validation
metric and the final one: how risky stopping early is on the task.
Writes ``search.json`` and ``search.md`` under ``--out``.
"""

import json
import os
import time
from typing import Any

import numpy as np

from lrlab.analysis import stats
from lrlab.benchmark import search_report

METHODS = (
  "grid", "random", "grid_before_halving", "halving", "halving_3_rungs", "hyperband", "pbt",
  "optuna_loop", "optuna_batched", "pbt_from_low", "pbt_from_high",
)  # fmt: skip
#: The halving methods, each with its first rung as a fraction of the budget: ``halving`` starts
#: at ``steps / eta**3`` (4 rungs: the last trains one member, so the pick is made at the third,
#: from ``eta`` members part-trained); ``halving_3_rungs`` at ``steps / eta**2`` (the last rung
#: trains ``eta`` members to the full budget and picks among them as the grid picks).
HALVING_RUNGS = {"halving": 4, "halving_3_rungs": 3}
LR_RANGE = (1e-4, 1.0)
#: PBT's settings, as a user who does not know where the good rates are might choose them: an
#: exploit every ``min_steps`` (27 in a budget of ``eta**3`` of them) and Jaderberg et al.'s
#: perturb explore step with factors 0.5 and 2, so a lineage's rate can move 2**26-fold.
PBT = {"interval_rungs": 1, "perturb": (0.5, 2.0)}
#: Task options the benchmark sets (recorded in its report): ``lm-transformer``'s default
#: 64,000 training sequences make its step-0 pass over the training split cost minutes per
#: method on 2 cores; 2,048 sequences of 64 tokens hold more than a 216-step budget reads
#: (216 x 32 = 6,912 sequences: 3.4 epochs), val and test 128 sequences each.
TASK_OPTIONS = {"lm-transformer": {"num_tokens": 2048 * 64, "num_eval": 128}}


def _adam(hp):
  from lrlab import optimizers

  return optimizers.adam(hp["lr"])


def _sgd_momentum(hp):
  from lrlab import optimizers

  return optimizers.sgd(hp["lr"], momentum=0.9)


OPTIMIZERS = {"adam": _adam, "sgd-momentum": _sgd_momentum}


def _pick(values: np.ndarray, lrs: np.ndarray, metric: str) -> float:
  score = -values if metric.endswith("accuracy") else values
  score = np.where(np.isfinite(score), score, np.inf)
  return float(lrs[int(np.argmin(score))])


def run_task(task_name: str, optimizer: str, *, k: int, steps: int, eta: int, batch_size: int,
             retrain_seeds: int, methods: tuple[str, ...]) -> dict[str, Any]:  # fmt: skip
  """Every method of :data:`METHODS` in ``methods`` on one task and optimizer; a JSON-able dict."""
  min_steps = steps // eta**3
  if min_steps * eta**3 != steps:
    raise ValueError(f"steps must be a multiple of eta**3 = {eta**3}; got {steps}.")
  if isinstance(retrain_seeds, bool) or not isinstance(retrain_seeds, int) or retrain_seeds < 1:
    raise ValueError(f"retrain_seeds must be an integer >= 1; got {retrain_seeds!r}.")
  import jax
  import optuna

  from lrlab import search, sweep, tasks

  optuna.logging.set_verbosity(optuna.logging.WARNING)
  options = TASK_OPTIONS.get(task_name, {})
  task, make_tx = tasks.get(task_name, **options), OPTIMIZERS[optimizer]
  metric = "val_accuracy" if task.num_classes else "val_loss"
  summary = "final_val_accuracy" if task.num_classes else "final_val_loss"
  key = jax.random.key(0)
  common = dict(batch_size=batch_size, key=key)
  grid = {"lr": sweep.log_grid(*LR_RANGE, k)}
  out: dict[str, Any] = {
    "task": task_name, "optimizer": optimizer, "metric": metric, "k": k, "steps": steps,
    "eta": eta, "min_steps": min_steps, "methods": {},
  }  # fmt: skip
  if options:
    out["task_options"] = options

  def timed(name, fn):
    sweep.clear_cache()
    load = os.getloadavg()[0]
    tic = time.perf_counter()
    lr, model_steps, extra = fn()
    seconds = time.perf_counter() - tic
    out["methods"][name] = {"lr": lr, "wall_seconds": seconds, "model_steps": int(model_steps),
                            "load_average": [load, os.getloadavg()[0]], **extra}  # fmt: skip
    print(f"  {task_name}/{optimizer} {name}: lr {lr:.3g}, {seconds:.1f} s, "
          f"{model_steps:,} model-steps", flush=True)  # fmt: skip

  full = {}

  def full_sweep(g):
    result = sweep.run(task, make_tx, g, steps=steps, eval_every=min_steps, progress=False,
                       **common)  # fmt: skip
    return result

  def grid_method():
    full["grid"] = result = full_sweep(grid)
    compile_s = {"compile_seconds": result.metadata["compile_seconds"]}
    return _pick(result.metric(summary)[0], grid["lr"], metric), k * steps, compile_s

  def random_method():
    lrs = sweep.random_log(*LR_RANGE, k, jax.random.key(1))
    result = full_sweep({"lr": lrs})
    compile_s = {"compile_seconds": result.metadata["compile_seconds"]}
    return _pick(result.metric(summary)[0], lrs, metric), k * steps, compile_s

  def halving_method(fn, rungs=4):
    def run():
      first = steps // eta ** (rungs - 1)
      result = fn(task, make_tx, grid, steps=steps, min_steps=first, eta=eta, metric=metric,
                  eval_every=min_steps, **common)  # fmt: skip
      best = result.best()
      extra = {"rungs": result.rungs, "compile_seconds": result.metadata["compile_seconds"]}
      return best["hyperparameters"]["lr"], result.model_steps, extra

    return run

  pbt_settings = dict(interval=min_steps * PBT["interval_rungs"], perturb=PBT["perturb"],
                      metric=metric, eval_every=min_steps, **common)  # fmt: skip
  out["pbt"] = {**PBT, "interval": pbt_settings["interval"]}

  own_metric = "test_accuracy" if task.num_classes else "test_loss"

  def pbt_answer(population):
    # PBT's answer is a schedule: the timed run's is its best member's (seed 0), whose own
    # test metric is recorded; the quality over seeds is measured after the timings
    # (own_test); the final rate, retrained as a fixed rate, is recorded beside it.
    result = search.pbt(task, make_tx, population, steps=steps, **pbt_settings)
    best = result.best()
    own = float(getattr(result.sweep.history, own_metric)[0, best["index"], -1])
    extra = {"population": population["lr"].tolist(), "schedule": best["schedule"]["lr"],
             "own_test_timed": own,
             "compile_seconds": result.metadata["compile_seconds"]}  # fmt: skip
    return best["schedule"]["lr"][-1], result.model_steps, extra

  def pbt_method():
    return pbt_answer({"lr": pbt_grid_population(grid["lr"])})

  def pbt_from(factor):
    def run():
      return pbt_answer({"lr": pbt_population(out["methods"]["grid"]["lr"] * factor)})

    return run

  space = {"lr": optuna.distributions.FloatDistribution(*LR_RANGE, log=True)}

  def optuna_loop():
    study = optuna.create_study(direction="maximize" if task.num_classes else "minimize",
                                sampler=optuna.samplers.TPESampler(seed=0))  # fmt: skip
    for _ in range(k):
      trial = study.ask(space)
      result = sweep.run(task, make_tx, {"lr": np.array([trial.params["lr"]])}, steps=steps,
                         eval_every=min_steps, chunk_size=1, devices=jax.devices()[:1],
                         progress=False, **common)  # fmt: skip
      value = float(result.metric(summary)[0, 0])
      study.tell(trial, value if np.isfinite(value) else (0.0 if task.num_classes else np.inf))
    return float(study.best_params["lr"]), k * steps, {}

  def optuna_batched():
    study = optuna.create_study(direction="maximize" if task.num_classes else "minimize",
                                sampler=optuna.samplers.TPESampler(seed=0))  # fmt: skip
    search.run_study(study, task, make_tx, space, n_trials=k, parallel=max(1, k // eta),
                     steps=steps, metric=metric, eval_every=min_steps, prune=False,
                     **common)  # fmt: skip
    return float(study.best_params["lr"]), k * steps, {}

  # Warm up JAX's backend (first dispatches, the data on device) outside every timing.
  sweep.run(task, make_tx, {"lr": grid["lr"][:2]}, steps=min_steps, eval_every=min_steps,
            progress=False, **common)  # fmt: skip
  runs = {
    "grid": grid_method, "random": random_method, "grid_before_halving": grid_method,
    **{name: halving_method(search.successive_halving, n) for name, n in HALVING_RUNGS.items()},
    "hyperband": halving_method(search.hyperband), "pbt": pbt_method,
    "optuna_loop": optuna_loop, "optuna_batched": optuna_batched,
    "pbt_from_low": pbt_from(0.1), "pbt_from_high": pbt_from(10.0),
  }  # fmt: skip
  for name in ("grid", *[m for m in methods if m != "grid"]):
    timed(name, runs[name])

  # Rank correlation of each rung's validation metric with the final one (the full grid).
  history = getattr(full["grid"].history, metric)[0]
  final = history[:, -1]
  out["rank_correlation"] = {
    str(min_steps * eta**i): stats.spearman(history[:, eta**i], final) for i in range(3)
  }
  # Retrain every picked rate at the full budget, retrain_seeds seeds, each in a sweep of its
  # own (one rate: the same program width for every pick, so a rate retrains to the same
  # numbers whichever other rates were picked; a sweep's float rounding depends on its width).
  # Every retrain takes the same key and seeds, so seed s starts from the same parameters and
  # reads the same minibatches at every rate: the methods' differences are paired by seed. A
  # rate picked by several methods (equal as the float32 the program reads) retrains once.
  test = "final_test_accuracy" if task.num_classes else "final_test_loss"
  per_rate: dict[float, np.ndarray] = {}
  tic = time.perf_counter()
  for m in out["methods"].values():
    rate = float(np.float32(m["lr"]))
    if rate not in per_rate:
      per_rate[rate] = retrain_per_seed(task, make_tx, m["lr"], steps=steps, eval_every=min_steps,
                                        seeds=retrain_seeds, test=test, **common)  # fmt: skip
  out["retrain"] = {"rates": len(per_rate), "seeds": list(range(retrain_seeds)),
                    "wall_seconds": time.perf_counter() - tic}  # fmt: skip
  grid_seeds = per_rate[float(np.float32(out["methods"]["grid"]["lr"]))]
  ref = out["methods"]["grid"]
  for name, m in out["methods"].items():
    per_seed = per_rate[float(np.float32(m["lr"]))]
    m["test_seeds"] = per_seed.tolist()
    m.update(search_report.seed_statistics(per_seed, grid_seeds))
    paired = name in HALVING_RUNGS and "grid_before_halving" in out["methods"]
    m["model_steps_vs_grid"] = m["model_steps"] / ref["model_steps"]
    m["wall_vs_grid"] = m["wall_seconds"] / (out["methods"]["grid_before_halving"] if paired
                                             else ref)["wall_seconds"]  # fmt: skip
  out["test_metric"] = test
  # PBT's quality over seeds, untimed: retrain_seeds independent populations in one call (seed
  # s starts from the retrains' seed-s parameters and reads their minibatches), each answering
  # with its own best member (result.best(seed=s)), whose test metric is paired with the grid
  # pick's retrained at seed s.
  for name, m in out["methods"].items():
    if "population" not in m:
      continue
    result = search.pbt(task, make_tx, {"lr": np.asarray(m["population"])}, steps=steps,
                        **{**pbt_settings, "seeds": retrain_seeds})  # fmt: skip
    own = own_tests(result, own_metric)
    m["own_test_seeds"] = own.tolist()
    statistics = search_report.seed_statistics(own, grid_seeds)
    m.update({f"own_{stat}": value for stat, value in statistics.items()})
    if name.startswith("pbt_from"):
      out[f"{name}_goal"] = search_report.pbt_goal(out, name)
  for name in HALVING_RUNGS:
    if name in out["methods"]:
      out[f"{name}_goal"] = search_report.halving_goal(out, name)
  return out


def pbt_grid_population(rates) -> np.ndarray:
  """The ``pbt`` row's population: every ``len(rates) // 8``-th rate of the grid (8 or more)."""
  return np.asarray(rates)[:: max(1, len(rates) // 8)]


def pbt_population(center: float, members: int = 8) -> np.ndarray:
  """A PBT population around ``center``: ``members`` rates log-spaced from ``center / 2`` to
  ``center * 2`` (the ``pbt_from_low`` and ``pbt_from_high`` rows: a tenth and ten times the
  grid's pick)."""
  return np.geomspace(center / 2, center * 2, members)


def own_tests(result, metric: str) -> np.ndarray:
  """``(S,)``: each seed's answer's quality in a PBT ``result`` of ``S`` independent populations:
  ``metric`` (``test_accuracy`` or ``test_loss``) at the budget of that seed's best member
  (:meth:`lrlab.search.SearchResult.best` with ``seed``), the run of the schedule it answers."""
  history = getattr(result.sweep.history, metric)
  seeds = history.shape[0]
  return np.array([history[s, result.best(seed=s)["index"], -1] for s in range(seeds)], np.float64)


def retrain_per_seed(task, make_tx, lr: float, *, steps: int, eval_every: int, seeds: int,
                     test: str, batch_size: int, key) -> np.ndarray:  # fmt: skip
  """``(seeds,)``: ``test`` (a summary metric) of the rate ``lr`` trained for ``steps``, per seed.

  A sweep of that one rate alone, so the result does not depend on which other rates are
  retrained. Seed ``s`` trains from ``fold_in(key, s)`` (:func:`lrlab.sweep.run`'s common
  random numbers: its initial parameters and minibatch order), whatever the rate, so two
  rates retrained with the same ``key`` and ``seeds`` are paired seed by seed.
  """
  from lrlab import sweep

  result = sweep.run(task, make_tx, {"lr": np.array([lr])}, steps=steps, eval_every=eval_every,
                     seeds=seeds, batch_size=batch_size, key=key, progress=False)  # fmt: skip
  return np.asarray(result.metric(test)[:, 0], np.float64)


def retrain(task, make_tx, lr: float, *, steps: int, eval_every: int, seeds: int, test: str,
            batch_size: int, key) -> float:  # fmt: skip
  """The mean over seeds of :func:`retrain_per_seed` (the same arguments)."""
  return float(np.mean(retrain_per_seed(task, make_tx, lr, steps=steps, eval_every=eval_every,
                                        seeds=seeds, test=test, batch_size=batch_size,
                                        key=key)))  # fmt: skip


def main(argv: list[str] | None = None) -> int:
  """``scripts/benchmark.py --search ...``: run, write ``search.json`` and ``search.md``; 0.

  Every flag is checked before the first task trains: a bad one is one line, exit code 2.
  """
  from lrlab.cli.common import Parser, integer_at_least_2, positive_int

  parser = Parser(description="Time to the answer of lrlab.search's methods.")
  parser.add_argument("--search", action="store_true", help="(selects this benchmark)")
  parser.add_argument(
    "--tasks",
    default="mnist1d-mlp:adam,mnist1d-mlp:sgd-momentum",
    help="comma-separated TASK:OPTIMIZER (optimizer: adam or sgd-momentum)",
  )
  parser.add_argument("--methods", default=",".join(METHODS), help=f"from {METHODS}")
  parser.add_argument("--k", type=positive_int, default=27, help="rates per method")
  parser.add_argument("--steps", type=positive_int, default=1620, help="budget per member, a "
                      "multiple of eta**3")  # fmt: skip
  parser.add_argument("--eta", type=integer_at_least_2, default=3, help="an integer >= 2")
  parser.add_argument("--batch-size", type=positive_int, default=100)
  parser.add_argument("--retrain-seeds", type=positive_int, default=5, help="seeds per picked "
                      "rate retrained at the full budget (a verdict needs 5 or more)")  # fmt: skip
  parser.add_argument("--out", default="results/benchmark_search")
  args = parser.parse_args(argv)
  methods = tuple(m for m in args.methods.split(",") if m)
  unknown = sorted(set(methods) - set(METHODS))
  if unknown:
    parser.error(f"--methods must be taken from {METHODS}; got {unknown}")
  if args.steps % args.eta**3:
    parser.error(f"--steps must be a multiple of eta**3 = {args.eta**3}; got {args.steps}")
  from lrlab import tasks

  specs = [spec.partition(":")[::2] for spec in args.tasks.split(",")]
  for (task_name, optimizer), spec in zip(specs, args.tasks.split(","), strict=True):
    if task_name not in tasks.names() or optimizer not in OPTIMIZERS:
      parser.error(f"--tasks takes TASK:OPTIMIZER with TASK in lrlab.tasks.names() and "
                   f"OPTIMIZER in {sorted(OPTIMIZERS)}; got {spec!r}")  # fmt: skip
  import jax

  from lrlab.sweep.storage import environment_metadata

  device = jax.devices()[0]
  report = {
    "machine": f"{len(jax.devices())} {device.platform} device(s), {os.cpu_count()} cores",
    "k": args.k, "steps": args.steps, "eta": args.eta, "retrain_seeds": args.retrain_seeds,
    "environment": environment_metadata(), "runs": [],
    "compile_cache": search_report.compile_cache_state(),
  }  # fmt: skip
  for task_name, optimizer in specs:
    report["runs"].append(run_task(
      task_name, optimizer, k=args.k, steps=args.steps, eta=args.eta,
      batch_size=args.batch_size, retrain_seeds=args.retrain_seeds, methods=methods,
    ))  # fmt: skip
  os.makedirs(args.out, exist_ok=True)
  with open(os.path.join(args.out, "search.json"), "w", encoding="utf-8") as f:
    json.dump(report, f, indent=2, default=str)
  text = search_report.markdown(report)
  with open(os.path.join(args.out, "search.md"), "w", encoding="utf-8") as f:
    f.write(text + "\n")
  print(text)
  return 0
