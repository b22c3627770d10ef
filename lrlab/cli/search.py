"""``lrlab sweep --search halving|hyperband|pbt``: the sweep's grid searched, not trained in full.

  lrlab sweep --task digits-mlp --search halving --eta 3 --min-steps 100 --steps 2700
  lrlab sweep --task digits-mlp --search pbt --interval 300 --grid lr=1e-4:1e-2:8:log

The flags of ``lrlab sweep`` (task, optimizer, schedule, grid, seeds, steps,
batch size, evaluation interval, chunk size, ``--out``, ``--fresh``) mean what
they mean there; the grid is the candidate set (successive halving, Hyperband)
or the initial population (PBT). The results folder holds the members' curves
as a sweep's (``results.csv``, ``curves.npz``, ``sweep.json``; NaN after a
member stopped), ``search.json`` (where each member stopped, PBT's lineage and
schedules, the answer, model-steps spent) and figures. Ctrl-C saves a
checkpoint at the next segment boundary; the same command continues.
"""

import json
import os
import shutil
import sys
import time

from lrlab.cli import common

METHODS = ("halving", "hyperband", "pbt")


def add_arguments(parser: common.Parser) -> None:
  """The search flags of ``lrlab sweep``."""
  parser.add_argument(
    "--search", default=None, choices=METHODS, metavar="METHOD",
    help="search the grid instead of training all of it: halving (successive halving), "
    "hyperband or pbt (population-based training) (default: the full grid)",
  )  # fmt: skip
  parser.add_argument(
    "--eta", type=common.positive_int, default=3,
    help="halving, hyperband: keep the best 1/eta at each rung (an integer >= 2)",
  )  # fmt: skip
  parser.add_argument(
    "--min-steps", type=common.positive_int, default=None,
    help="halving, hyperband: the first rung's steps, dividing --steps (default: --eval-every)",
  )  # fmt: skip
  parser.add_argument(
    "--interval", type=common.positive_int, default=None,
    help="pbt: steps between exploits, dividing --steps (default: --eval-every)",
  )  # fmt: skip


def settings(args) -> dict:
  """What the search adds to the sweep's settings (and so to the results folder's hash)."""
  if args.search == "pbt":
    return {"method": "pbt", "interval": args.interval or args.eval_every}
  return {"method": args.search, "eta": args.eta, "min_steps": args.min_steps or args.eval_every}


def _answer(result, model_steps_grid: int) -> list[str]:
  best = result.best()
  setting = ", ".join(f"{k} = {v:.4g}" for k, v in best["hyperparameters"].items())
  which = f"member (it started at {setting})" if "schedule" in best else setting
  lines = [
    f"{result.config['method']}: {result.sweep.num_members} members x "
    f"{result.sweep.num_seeds} seed(s) on {result.config['task']!r}.",
    f"Best {which}: {result.metric} = {best['value']:.4g} at {result.config['steps']} steps "
    f"(mean of the {best['finished_seeds']} seed(s) it finished).",
  ]
  if "schedule" in best:
    schedule = "; ".join(
      f"{k}: " + ", ".join(f"{x:.3g}" for x in v) for k, v in best["schedule"].items()
    )
    lines.append(f"Its schedule after each exploit: {schedule}.")
  share = result.model_steps / model_steps_grid
  lines.append(
    f"Model-steps: {result.model_steps:,} ({share:.0%} of the full grid's {model_steps_grid:,})."
  )
  return lines


def run(args, task, make_tx, tx_config, grid, out: str, checkpoint_dir: str, finished: bool) -> int:
  """Run (or, ``finished``, re-read) the search ``args.search`` into ``out``; the exit code."""
  import jax

  from lrlab import search, sweep

  path = os.path.join(out, "search.json")
  if finished and os.path.exists(path):
    with open(path, encoding="utf-8") as f:
      print(f"{out}/ holds this search, finished (--fresh to run it again):")
      print("\n".join(json.load(f)["answer"]))
    return 0
  if args.folds or args.target:
    return common.fail("--search takes neither --folds nor --target; leave them out.")
  common_kwargs = dict(
    steps=args.steps, key=jax.random.key(args.seed), seeds=args.seeds, batch_size=args.batch_size,
    eval_every=args.eval_every, chunk_size=args.chunk_size, checkpoint_dir=checkpoint_dir,
    metric="val_accuracy" if task.num_classes else "val_loss",
  )  # fmt: skip
  extra = settings(args)
  with common.StopRequest() as stop:
    started = time.perf_counter()
    try:
      if args.search == "pbt":
        result = search.pbt(
          task, make_tx, grid, interval=extra["interval"], should_stop=stop, **common_kwargs
        )
      else:
        method = search.successive_halving if args.search == "halving" else search.hyperband
        result = method(
          task, make_tx, grid, eta=args.eta, min_steps=extra["min_steps"], should_stop=stop,
          **common_kwargs,
        )  # fmt: skip
    except sweep.Stopped as stopped:
      print(
        f"Stopped ({stop.received}): checkpoint saved in {checkpoint_dir}/ at {stopped.position};"
        " run the same command again to continue.",
        file=sys.stderr,
      )
      return common.EXIT_INTERRUPTED
    except ValueError as error:
      hint = " Pass --fresh to start over." if "checkpoint" in str(error) else ""
      return common.fail(f"{error}{hint}")
  seconds = time.perf_counter() - started
  grid_steps = sweep.grid_size(grid) * args.seeds * args.steps
  answer = _answer(result, grid_steps)
  answer.append(f"Time: {seconds:.1f} s ({result.metadata['compile_seconds']:.1f} s compiling).")
  sweep.plot_curves(result.sweep, os.path.join(out, f"curves_{result.metric}.png"), result.metric)
  if result.schedule is not None:
    search.plot_pbt(result, os.path.join(out, "pbt.png"))
  result.save(out, answer=answer, tx=tx_config)  # search.json last: the run is finished
  shutil.rmtree(checkpoint_dir, ignore_errors=True)  # the results hold everything it held
  print("\n".join(answer))
  print(f"Results: {out}/ (search.json, results.csv, curves.npz, sweep.json, figures)")
  return 0
