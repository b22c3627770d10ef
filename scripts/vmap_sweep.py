"""Sweep learning rates (and any other hyperparameter) in one compiled program.

  python scripts/vmap_sweep.py          # mnist1d-mlp, Adam, 64 learning rates x 3 seeds, 3000 steps
  python scripts/vmap_sweep.py --task my_package.my_module:make_task   # your own lrlab.tasks.Task
  python scripts/vmap_sweep.py --task digits-mlp --optimizer sgd --opt momentum=0.9 \\
      --schedule cosine --grid lr=1e-3:3:32:log --grid momentum=0.8,0.9,0.99 --seeds 3

Each grid axis is routed by name: ``lr`` is the peak learning rate; an axis
named after an argument of the optimizer (``momentum``, ``weight_decay``, ``b1``,
...) or of the schedule (``pct_start``, ``period``, ...) becomes that argument,
traced, so the whole grid still compiles once. The sweep checkpoints as it
goes; ``--resume`` continues a sweep that was interrupted. Results (CSV, NPZ,
JSON with the configuration, versions and command line) and figures go to
``--out``.
"""

import argparse
import inspect
import os
import shutil
import sys
import time

from _cli import TASK_HELP, expose_host_devices, load_task, parse_assignments

# Learning-rate schedules by command-line name: (factory, its default arguments for a budget).
# Kept import-free so the device flag can be set before JAX starts.
SCHEDULES = {
  "constant": ("constant", lambda steps: {}),
  "cosine": ("cosine_annealing", lambda steps: {"total_steps": steps}),
  "warmup-cosine": ("cosine_annealing", lambda steps: {"total_steps": steps}),
  "one-cycle": ("one_cycle", lambda steps: {"total_steps": steps}),
  "step": ("step_decay", lambda steps: {"step_size": max(1, steps // 3)}),
  "exponential": ("exponential_decay", lambda steps: {"gamma": 0.01 ** (1 / steps)}),
  "warm-restarts": ("warm_restarts", lambda steps: {"period": max(1, steps // 4)}),
  "inverse-sqrt": ("inverse_sqrt", lambda steps: {"warmup_steps": max(1, steps // 20)}),
  "wsd": (
    "warmup_stable_decay",
    lambda steps: {
      "total_steps": steps,
      "warmup_steps": steps // 20,
      "decay_steps": max(1, steps // 5),
    },
  ),
}
DEFAULT_GRID = "lr=1e-5:1:64:log"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
  parser = argparse.ArgumentParser(
    description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
  )
  parser.add_argument("--task", default="mnist1d-mlp", help=TASK_HELP)
  parser.add_argument("--optimizer", default="adam", help="an optimizer of lrlab.optimizers")
  parser.add_argument(
    "--opt",
    action="append",
    default=[],
    metavar="NAME=VALUE",
    help="a fixed optimizer argument, e.g. momentum=0.9 (repeatable)",
  )
  parser.add_argument("--schedule", default="constant", choices=sorted(SCHEDULES))
  parser.add_argument(
    "--schedule-arg",
    action="append",
    default=[],
    metavar="NAME=VALUE",
    help="a fixed schedule argument, e.g. pct_start=0.25 (repeatable)",
  )
  parser.add_argument(
    "--grid",
    action="append",
    default=[],
    metavar="AXIS=SPEC",
    help=f"a grid axis, lo:hi:n:log|lin or v1,v2,... (default {DEFAULT_GRID})",
  )
  parser.add_argument("--lr", type=float, default=1e-3, help="learning rate if no lr axis")
  parser.add_argument("--seeds", type=int, default=3)
  parser.add_argument("--steps", type=int, default=3000)
  parser.add_argument("--batch-size", type=int, default=100)
  parser.add_argument("--eval-every", type=int, default=100)
  parser.add_argument(
    "--target",
    default=None,
    metavar="METRIC=VALUE",
    help="for steps-to-target, e.g. val_accuracy=0.6",
  )
  parser.add_argument("--tolerance", type=float, default=0.05, help="for the usable range")
  parser.add_argument(
    "--folds",
    type=int,
    default=None,
    help="k-fold cross-validation over train+val as one more grid axis",
  )
  parser.add_argument("--chunk-size", type=int, default=None)
  parser.add_argument(
    "--devices", type=int, default=None, help="host CPU devices to expose (default: one per core)"
  )
  parser.add_argument(
    "--out", default=None, help="results folder (default results/sweep-TASK-OPTIMIZER)"
  )
  parser.add_argument("--resume", action="store_true", help="continue an interrupted sweep")
  parser.add_argument("--seed", type=int, default=0, help="the base random key")
  parser.add_argument("--no-progress", action="store_true")
  args = parser.parse_args(argv)
  args.grid = args.grid or [DEFAULT_GRID]
  for name in ("seeds", "steps", "batch_size", "eval_every"):
    if getattr(args, name) <= 0:
      parser.error(f"--{name.replace('_', '-')} must be positive; got {getattr(args, name)}")
  return args


def build_make_tx(args, axes: list[str]):
  """``(hp -> optimizer, tx_config)``: route every grid axis to the rate, optimizer or schedule.

  ``tx_config`` describes what ``make_tx`` builds (the optimizer and its fixed
  arguments, the schedule and its fixed arguments, the rate when ``lr`` is
  not an axis), for the result's config, the figures' titles and the
  checkpoint's fingerprint: a resumed sweep must train the same optimizer.
  """
  from lrlab import optimizers, schedules

  if args.optimizer not in optimizers.names():
    allowed = ", ".join(optimizers.names())
    raise ValueError(f"--optimizer must be one of {allowed}; got {args.optimizer!r}.")
  optimizer = getattr(optimizers, args.optimizer)
  factory_name, defaults = SCHEDULES[args.schedule]
  factory = getattr(schedules, factory_name)
  optimizer_args = set(inspect.signature(optimizer).parameters) - {"learning_rate"}
  schedule_args = set(list(inspect.signature(factory).parameters)[1:])
  fixed_optimizer = parse_assignments(args.opt, "--opt")
  fixed_schedule = defaults(args.steps) | parse_assignments(args.schedule_arg, "--schedule-arg")
  for name, allowed, what in (
    (set(fixed_optimizer), optimizer_args, f"--opt (arguments of {args.optimizer})"),
    (set(fixed_schedule), schedule_args, f"--schedule-arg (arguments of {factory_name})"),
    (set(axes) - {"lr"}, optimizer_args | schedule_args, "a grid axis"),
  ):
    unknown = name - allowed
    if unknown:
      raise ValueError(
        f"{what} must be among {', '.join(sorted(allowed | ({'lr'} if 'grid' in what else set())))}"
        f"; got {', '.join(sorted(unknown))}."
      )
  warmup = max(1, args.steps // 20) if args.schedule == "warmup-cosine" else 0

  def make_tx(hp):
    lr = hp.get("lr", args.lr)
    traced = lambda allowed: {k: v for k, v in hp.items() if k in allowed}
    if args.schedule == "constant":
      rate = lr
    else:
      kwargs = fixed_schedule | traced(schedule_args)
      if warmup:
        kwargs["total_steps"] = args.steps - warmup
      rate = factory(lr, **kwargs)
      rate = schedules.warmup(rate, warmup) if warmup else rate
    return optimizer(rate, **(fixed_optimizer | traced(optimizer_args)))

  schedule = {"name": args.schedule}
  if args.schedule != "constant":
    schedule |= fixed_schedule | ({"warmup_steps": warmup} if warmup else {})
  tx_config = {"optimizer": args.optimizer, **fixed_optimizer, "schedule": schedule}
  if "lr" not in axes:
    tx_config["lr"] = args.lr
  return make_tx, tx_config


def main(argv: list[str] | None = None) -> int:
  args = parse_args(argv)
  expose_host_devices(args.devices)

  import jax

  from lrlab import sweep

  try:
    grid = sweep.parse_grid(args.grid)
    make_tx, tx_config = build_make_tx(args, list(grid))
    task = load_task(args.task)
    target = None
    if args.target:
      metric, sep, value = args.target.partition("=")
      if not sep:
        raise ValueError(
          f"--target takes METRIC=VALUE, e.g. val_accuracy=0.6; got {args.target!r}."
        )
      target = (metric, float(value))
  except ValueError as error:
    print(f"error: {error}", file=sys.stderr)
    return 2

  args.out = args.out or os.path.join("results", f"sweep-{task.name}-{args.optimizer}")
  checkpoint_dir = os.path.join(args.out, "checkpoint")
  if not args.resume and os.path.exists(checkpoint_dir):
    shutil.rmtree(checkpoint_dir)
  platform = jax.devices()[0].platform
  print(
    f"{task.name} | {args.optimizer} ({args.schedule}) | {sweep.grid_size(grid)} members "
    f"x {args.seeds} seed(s) | {args.steps} steps x batch {args.batch_size} | "
    f"{len(jax.devices())} {platform} device(s)"
  )
  started = time.perf_counter()
  try:
    result = sweep.run(
      task,
      make_tx,
      grid,
      steps=args.steps,
      batch_size=args.batch_size,
      key=jax.random.key(args.seed),
      eval_every=args.eval_every,
      seeds=args.seeds,
      chunk_size=args.chunk_size,
      checkpoint_dir=checkpoint_dir,
      progress=not args.no_progress,
      target=target,
      folds=args.folds,
      tx_config=tx_config,
    )
  except ValueError as error:
    print(f"error: {error}", file=sys.stderr)
    return 2
  seconds = time.perf_counter() - started
  result.save(args.out)
  shutil.rmtree(checkpoint_dir, ignore_errors=True)
  runs = result.num_members * result.num_seeds  # every fold counts
  if args.folds:  # judge settings by their mean over folds
    result = result.cross_validated()
    print(f"Cross-validated over {args.folds} folds (each seed x fold is a replicate):")
  figures = sweep.plot_all(result, args.out)
  print(result.summary(tolerance=args.tolerance))
  print(
    f"Time: {seconds:.1f} s ({result.metadata['compile_seconds']:.1f} s compiling), "
    f"{runs * args.steps / seconds:,.0f} model-steps/s."
  )
  print(f"Results: {args.out}/ (results.csv, curves.npz, sweep.json, {len(figures)} figures)")
  return 0


if __name__ == "__main__":
  sys.exit(main())
