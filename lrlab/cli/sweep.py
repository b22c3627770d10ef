"""``lrlab sweep``: learning rates (and any other hyperparameter) in one compiled program.

  lrlab sweep                   # mnist1d-mlp, Adam, 64 learning rates x 3 seeds, 3000 steps
  lrlab sweep --task my_package.my_module:make_task   # your own lrlab.tasks.Task
  lrlab sweep --task lm-transformer --task-arg width=128   # a registered task's options
  lrlab sweep --task digits-mlp --optimizer sgd --opt momentum=0.9 \\
      --schedule cosine --grid lr=1e-3:3:32:log --grid momentum=0.8,0.9,0.99 --seeds 3

Each grid axis is routed by name: ``lr`` is the peak learning rate; an axis
named after an argument of the optimizer (``momentum``, ``weight_decay``, ``b1``,
...) or of the schedule (``pct_start``, ``period``, ...) becomes that argument,
traced, so the whole grid still compiles once. Results (CSV, NPZ, JSON with the
configuration, versions and command line) and figures go to ``--out``, by
default a folder named after the task, the optimizer and a hash of the settings.

Nothing is lost on a re-run: the sweep checkpoints as it goes, and the same
command continues where it stopped (Ctrl-C or SIGTERM saves a checkpoint at the
next segment boundary and exits with 130); run again after it finished, it
re-reads the results (a new ``--tolerance`` or ``--metric`` re-draws the
summary and figures without training). A different sweep into a folder that
holds one stops, unless ``--overwrite``; ``--fresh`` starts this one over.
"""

import os
import shutil
import sys
import time

from lrlab.cli import common, compile_cache, output, task_flag
from lrlab.cli import search as search_cli
from lrlab.cli.routing import LR, SCHEDULES, build_make_tx

DEFAULT_GRID = "lr=1e-5:1:64:log"
# What a sweep writes in its folder (removed before another sweep takes the folder over).
FILES = output.OWNED["sweep"]


def add_arguments(parser: common.Parser) -> None:
  """The flags of ``lrlab sweep``."""
  from lrlab import sweep

  common.add_run_arguments(parser)
  parser.add_argument(
    "--schedule", default="constant", choices=sorted(SCHEDULES), metavar="SCHEDULE",
    help=f"the learning-rate schedule, one of {', '.join(sorted(SCHEDULES))}",
  )  # fmt: skip
  parser.add_argument(
    "--schedule-arg", action="append", default=[], metavar="NAME=VALUE",
    help="a fixed schedule argument, e.g. pct_start=0.25 (repeatable; default: sized to --steps)",
  )  # fmt: skip
  parser.add_argument(
    "--grid", action="append", default=[], metavar="AXIS=SPEC",
    help=f"a grid axis, lo:hi:n:log|lin or v1,v2,... (repeatable; default: {DEFAULT_GRID})",
  )  # fmt: skip
  parser.add_argument(
    "--lr", type=common.positive_float, default=None,
    help=f"the learning rate if no lr axis (default: {LR:g}; refused with one)",
  )  # fmt: skip
  parser.add_argument("--seeds", type=common.positive_int, default=3, help="seeds per setting")
  parser.add_argument("--steps", type=common.positive_int, default=3000, help="updates per run")
  parser.add_argument(
    "--batch-size", type=common.positive_int, default=100, help="examples per minibatch"
  )
  parser.add_argument(
    "--eval-every", type=common.positive_int, default=100, help="steps between evaluations"
  )
  parser.add_argument(
    "--target", default=None, metavar="METRIC=VALUE",
    help="for steps-to-target, e.g. val_accuracy=0.6 (default: none)",
  )  # fmt: skip
  parser.add_argument(
    "--metric", default=None, choices=sweep.SUMMARY_METRICS, metavar="METRIC",
    help="the summary metric of the best setting, usable range and figures, one of "
    f"{', '.join(sweep.SUMMARY_METRICS)} (default: final_val_accuracy, or final_val_loss "
    "for a task without accuracy)",
  )  # fmt: skip
  parser.add_argument(
    "--tolerance", type=common.nonnegative_float, default=common.TOLERANCE,
    help="of the usable range: accuracy points below the best, or a loss's fraction above it",
  )  # fmt: skip
  parser.add_argument(
    "--folds", type=common.integer_at_least_2, default=None,
    help="k-fold cross-validation over train+val as one more grid axis (default: none)",
  )  # fmt: skip
  parser.add_argument(
    "--chunk-size", type=common.chunk_size, default=None,
    help="members per compiled chunk, a multiple of the number of devices, or 'auto': timed on "
    "a short probe and remembered per machine (default: from the cache size and memory)",
  )  # fmt: skip
  parser.add_argument(
    "--out", default=None,
    help="results folder (default: results/sweep-TASK-OPTIMIZER-HASH, HASH of the settings)",
  )  # fmt: skip
  again = parser.add_mutually_exclusive_group()
  again.add_argument(
    "--fresh", action="store_true",
    help="start this sweep over, discarding its checkpoint and results (default: continue)",
  )  # fmt: skip
  again.add_argument(
    "--overwrite", action="store_true",
    help="replace another sweep's files in --out (default: refuse)",
  )  # fmt: skip
  parser.add_argument(
    "--no-progress", action="store_true", help="no progress bar (default: one on stderr)"
  )
  search_cli.add_arguments(parser)


def parse_target(text: str | None) -> tuple[str, float] | None:
  """``--target METRIC=VALUE`` as ``(metric, value)``."""
  if text is None:
    return None
  metric, sep, value = text.partition("=")
  try:
    number = float(value) if sep and metric else None
  except ValueError:
    number = None
  if number is None:
    raise common.UsageError(f"--target takes METRIC=VALUE, e.g. val_accuracy=0.6; got {text!r}.")
  return metric, number


def preflight(args, task, make_tx, grid, target) -> None:
  """The checks lrlab.sweep.run (or the search) would make once it starts, made here with the
  flags' names, before :func:`lrlab.cli.output.claim` removes any file (``--overwrite``), and
  that an accuracy ``--metric`` or ``--target`` is one the task reports (else the sweep would
  train and fail only when its summary is saved)."""
  from lrlab.sweep import arguments

  if args.steps % args.eval_every:
    raise common.UsageError(
      f"--eval-every must divide --steps ({args.steps}); got {args.eval_every}."
    )
  num_train, which = task.num_train, "training examples"
  if args.folds:  # as lrlab.train.Trainer pools train and val and cuts them into folds
    if task.streamed:
      raise common.UsageError(
        f"--folds needs a task whose data are in memory; task {task.name!r} streams its data."
      )
    pooled = task.dataset.sizes["train"] + task.dataset.sizes["val"]
    if args.folds > pooled:
      raise common.UsageError(
        f"--folds must be at most the {pooled} training and validation examples of task "
        f"{task.name!r}; got {args.folds}."
      )
    num_train = (args.folds - 1) * (pooled // args.folds)
    which = f"examples each fold trains on with --folds {args.folds}"
  if not task.streamed and args.batch_size > num_train:
    raise common.UsageError(
      f"--batch-size must be at most the {num_train} {which} of task {task.name!r}; "
      f"got {args.batch_size}."
    )
  if isinstance(args.chunk_size, int):  # each device runs the same share of a chunk
    import jax

    devices = len(jax.devices())
    if args.chunk_size % devices:
      raise common.UsageError(
        f"--chunk-size must be a multiple of the number of devices ({devices}, see --devices) "
        f"or 'auto'; got {args.chunk_size}."
      )
  try:
    arguments.check_traceable(dict(grid))
  except ValueError as error:
    raise common.UsageError(f"--grid: {error}") from None
  try:
    arguments.check_target(target)
  except ValueError as error:
    raise common.UsageError(f"--target {args.target!r}: {error}") from None
  # The optimizer's and schedule's own checks (as lrlab find makes them), for every member:
  # inside the sweep the values are traced, and nothing checks them (lr=0.1,-0.1 would train).
  rows = zip(*(values.tolist() for values in grid.values()), strict=True)
  fixed = {"--opt": args.opt, "--schedule-arg": args.schedule_arg}
  fixed = {flag: common.parse_assignments(given, flag) for flag, given in fixed.items()}
  for member in dict.fromkeys(rows):
    hp = dict(zip(grid, member, strict=True))
    try:
      make_tx(hp)
    except (ValueError, TypeError) as error:
      name = str(error).split(" ", 1)[0]  # the argument a check names first
      axis = "lr" if name == "learning_rate" else name  # the optimizers' name for the lr axis
      where = next(
        (f"{flag} {name}={given[name]}" for flag, given in fixed.items() if name in given),
        f"--grid at {hp}" if axis in hp else f"--opt/--schedule-arg/--grid at {hp}",
      )
      raise common.UsageError(f"{where}: {error}") from None
  for flag, metric in (("--metric", args.metric), ("--target", target and target[0])):
    try:
      arguments.check_accuracy(task, metric or "")
    except ValueError:
      raise common.UsageError(
        f"{flag} must name a metric task {task.name!r} reports; it has no accuracy, so "
        f"{metric!r} does not exist."
      ) from None


def steps_run_here(result) -> int:
  """Model-steps (runs x steps) this process trained: a resumed sweep's earlier ones are not."""
  config, members = result.config, result.num_members
  steps = config["steps"]
  total = members * result.num_seeds * steps
  where = result.metadata.get("resumed_from")
  if not where:
    return total
  chunk = config["chunk_size"]
  real = lambda c: max(0, min(chunk, members - c * chunk))  # the rest of a chunk is padding
  segment_steps = config["windows_per_segment"] * config["eval_every"]
  before = where["seed"] * members * steps
  before += sum(real(c) for c in range(where["chunk"])) * steps
  before += real(where["chunk"]) * where["segment"] * segment_steps
  return total - before


def report(result, out: str, args, seconds: float | None, runs: int = 0, task=None) -> None:
  """Draw and print the sweep's answers with the command's metric and tolerance.

  ``runs`` is the model-steps trained in ``seconds`` (:func:`steps_run_here`); with a
  resident classification ``task``, a warning where the best member sits at chance level.
  """
  from lrlab import sweep

  if result.config.get("cross_validated"):
    folds = result.config["cross_validated"]
    print(f"Cross-validated over {folds} folds (each seed x fold is a replicate):")
  figures = sweep.plot_all(result, out, metric=args.metric, tolerance=args.tolerance)
  print(result.summary(metric=args.metric, tolerance=args.tolerance))
  if (warning := chance_warning(result, task, args.metric)) is not None:
    print(warning)
  if seconds is not None:
    resumed = " (resumed: counts only the steps run now)" if result.metadata["resumed_from"] else ""
    print(
      f"Time: {seconds:.1f} s ({result.metadata['compile_seconds']:.1f} s compiling), "
      f"{runs / seconds:,.0f} model-steps/s{resumed}."
    )
  print(f"Results: {out}/ (results.csv, curves.npz, sweep.json, {len(figures)} figures)")


def chance_warning(result, task, metric: str | None, rtol: float = 0.05) -> str | None:
  """A warning line where the best member's final training loss (seed mean) is at chance
  level, within ``rtol`` of a constant prediction's (:func:`lrlab.analysis.chance_loss` of
  the training labels): no setting has learned yet, whatever the usable range says. ``None``
  otherwise, and for a streamed task (its labels are not at hand) or a regression."""
  from lrlab import analysis

  if task is None or not task.num_classes or task.streamed or result.history.diverged.all():
    return None
  try:
    best = result.best(metric, warn=False)["index"]
  except ValueError:  # no member has a seed mean: nothing to judge
    return None
  chance = analysis.chance_loss(task.dataset.y_train, task.num_classes)
  loss = float(result.seed_mean("final_train_loss")[best])
  if not chance > 0 or not loss >= (1 - rtol) * chance:
    return None
  return (
    f"Warning: the best member's final train loss, {loss:.4g}, is at chance level ({chance:.4g}, "
    f"a constant prediction's): no setting has learned yet; train longer (--steps) or move "
    f"the grid."
  )


def run(args) -> int:
  """``lrlab sweep`` with parsed ``args``; the exit code."""
  common.expose_host_devices(args.devices)
  compile_cache.use()
  import jax

  from lrlab import sweep
  from lrlab.sweep import checkpoint

  try:
    try:
      grid = sweep.parse_grid(args.grid or [DEFAULT_GRID])
    except ValueError as error:
      raise common.UsageError(f"--grid: {error}") from None
    make_tx, tx_config = build_make_tx(args, list(grid))
    target = parse_target(args.target)
    task_options = task_flag.task_options(args.task_arg)
    task = task_flag.load_task(args.task, task_options)
    settings = {
      "task": args.task, "tx": tx_config, "grid": {k: v.tolist() for k, v in grid.items()},
      "seeds": args.seeds, "steps": args.steps, "batch_size": args.batch_size,
      "eval_every": args.eval_every, "target": target, "folds": args.folds,
      "chunk_size": args.chunk_size, "seed": args.seed,
    }  # fmt: skip
    if task_options:  # only then, so a folder named before --task-arg existed keeps its name
      settings["task_args"] = task_options
    preflight(args, task, make_tx, grid, target)
    search_cli.check_unused(args)
    if args.search:
      if args.chunk_size == "auto":
        raise ValueError("--chunk-size must be a positive integer with --search; got 'auto'.")
      settings["search"] = search_cli.settings(args)
      metric = search_cli.ranking_metric(args, task)
      if metric != search_cli.default_metric(task):
        settings["search"]["metric"] = metric  # only then: older results keep their folder
      search_cli.preflight(args, grid)
    out = args.out or output.default_folder(
      "sweep", task.name, args.optimizer, output.settings_hash(settings)
    )
    done = output.claim(out, "sweep", settings, FILES, overwrite=args.overwrite, fresh=args.fresh)
  except ValueError as error:
    return common.fail(str(error))
  checkpoint_dir = os.path.join(out, "checkpoint")
  resuming = os.path.exists(os.path.join(checkpoint_dir, checkpoint.FILENAME))
  # Killed while writing its first checkpoint, a run left checkpoint/ and no results: not finished.
  finished = done and not resuming and os.path.exists(os.path.join(out, "sweep.json"))
  if args.search:
    return search_cli.run(args, task, make_tx, tx_config, grid, out, checkpoint_dir, finished)
  if finished:
    print(f"{out}/ holds this sweep, finished: its answers (--fresh to train it again).")
    try:
      result = sweep.SweepResult.load(out)
      result.save(out, metric=args.metric, tolerance=args.tolerance)  # the summary it prints
      report(result, out, args, None, task=task)
    except ValueError as error:
      return common.fail(f"{error} Pass --fresh to train it again.")
    return 0
  platform = jax.devices()[0].platform
  with common.StopRequest() as stop:  # from here on, Ctrl-C stops at a segment boundary
    print(
      f"{task.name} | {args.optimizer} ({args.schedule}) | {sweep.grid_size(grid)} members "
      f"x {args.seeds} seed(s) | {args.steps} steps x batch {args.batch_size} | "
      f"{len(jax.devices())} {platform} device(s)" + (" | resuming" if resuming else ""),
      flush=True,
    )
    started = time.perf_counter()
    try:
      result = sweep.run(
        task, make_tx, grid, steps=args.steps, batch_size=args.batch_size,
        key=jax.random.key(args.seed), eval_every=args.eval_every, seeds=args.seeds,
        chunk_size=args.chunk_size, checkpoint_dir=checkpoint_dir,
        progress=not args.no_progress, target=target, folds=args.folds, tx_config=tx_config,
        should_stop=stop, keep_checkpoint=True,  # removed below, once the results are saved
      )  # fmt: skip
    except sweep.Stopped as stopped:
      where = stopped.position
      print(
        f"Stopped ({stop.received}): checkpoint saved in {checkpoint_dir}/ at seed "
        f"{where['seed']}, chunk {where['chunk']}, segment {where['segment']}; run the same "
        "command again to continue.",
        file=sys.stderr,
      )
      return common.EXIT_INTERRUPTED
    except ValueError as error:
      hint = " Pass --fresh to start over." if "checkpoint" in str(error) else ""
      return common.fail(f"{error}{hint}")
  seconds = time.perf_counter() - started
  runs = steps_run_here(result)
  if args.folds:  # judge settings by their mean over folds; the files hold what is printed
    result = result.cross_validated()
  result.save(out, metric=args.metric, tolerance=args.tolerance)
  shutil.rmtree(checkpoint_dir, ignore_errors=True)  # the results hold everything it held
  report(result, out, args, seconds, runs, task=task)
  return 0


def main(argv: list[str] | None = None) -> int:
  """``lrlab sweep`` as a program: parse ``argv`` (default: ``sys.argv[1:]``) and run."""
  return common.main_of(sys.modules[__name__], "lrlab sweep", argv)
