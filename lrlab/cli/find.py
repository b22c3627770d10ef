"""``lrlab find``: a learning rate two ways, the range test's rules against the parallel finder.

  lrlab find                    # mnist1d-mlp with Adam
  lrlab find --task my_package.my_module:make_task   # your own lrlab.tasks.Task
  lrlab find --task digits-mlp --optimizer sgd --opt momentum=0.9 \\
      --parallel-lrs 1e-4:3:16 --parallel-steps 200

The range test (``lrlab.finder.find_lr``, fastai's procedure) trains one run
with a growing learning rate and reads five suggestions off its loss curve. The
parallel finder (``lrlab.finder.find_lr_parallel``) trains K constant learning
rates for a short budget in one vmapped program and reports the best. The
command prints both side by side, each suggestion as a ratio to the parallel
finder's answer, and writes the range test's plot and both results (JSON) to
``--out``, by default a folder named after the task, the optimizer and a hash
of the settings; a folder that holds another run is refused unless
``--overwrite``.
"""

import contextlib
import inspect
import json
import os
import sys
from pathlib import Path

from lrlab.cli import common, compile_cache, output, task_flag

FILES = output.OWNED["find"]


def _batch_size(text: str) -> int | None:
  if text.lower() in ("full", "none"):
    return None
  return common.positive_int(text)


def add_arguments(parser: common.Parser) -> None:
  """The flags of ``lrlab find``."""
  common.add_run_arguments(parser)
  parser.add_argument(
    "--start-lr", type=common.positive_float, default=1e-7, help="the range test's first rate"
  )
  parser.add_argument(
    "--end-lr", type=common.positive_float, default=10.0, help="the range test's last rate"
  )
  parser.add_argument(
    "--steps", type=common.positive_int, default=100, help="steps of the range test, at least 23"
  )
  parser.add_argument(
    "--spacing", default="exponential", choices=("exponential", "linear"),
    help="how the range test's rate grows, exponential or linear",
  )  # fmt: skip
  parser.add_argument(
    "--batch-size", type=_batch_size, default=100, help="examples per minibatch, or 'full'"
  )
  parser.add_argument(
    "--parallel-lrs", default="1e-5:1:16", metavar="LO:HI:K",
    help="the parallel finder's K log-spaced candidates from LO to HI",
  )  # fmt: skip
  parser.add_argument(
    "--parallel-steps", type=common.positive_int, default=300,
    help="the parallel finder's budget in steps",
  )  # fmt: skip
  parser.add_argument(
    "--seeds", type=common.positive_int, default=1, help="seeds of the parallel finder"
  )
  parser.add_argument(
    "--out", default=None,
    help="output folder (default: results/find-TASK-OPTIMIZER-HASH, HASH of the settings)",
  )  # fmt: skip
  parser.add_argument(
    "--overwrite", action="store_true",
    help="replace another run's files in --out (default: refuse)",
  )  # fmt: skip


def _candidates(text: str):
  from lrlab import sweep

  parts = text.split(":")
  try:
    lo, hi, count = float(parts[0]), float(parts[1]), int(parts[2])
    grid = sweep.log_grid(lo, hi, count) if len(parts) == 3 and count >= 2 else None
  except (IndexError, ValueError):
    grid = None
  if grid is not None:
    from lrlab.sweep import arguments

    try:  # float32 must hold them: else the range test trains before the finder refuses
      arguments.check_traceable({"lr": grid})
    except ValueError:
      grid = None
  if grid is None:
    raise common.UsageError(
      f"--parallel-lrs takes LO:HI:K with 0 < LO < HI and K >= 2, e.g. 1e-5:1:16; got {text!r}."
    )
  return grid


def report(found, parallel) -> str:
  """The side-by-side table: each rule's rate and its ratio to the parallel finder's."""
  lines = [found.summary().splitlines()[0], "", f"{'rule':<11}{'suggestion':>12}{'/ parallel':>12}"]
  for name, lr in found.suggestions.items():
    if lr is None:
      lines.append(f"{name:<11}{'None':>12}{'':>12}  ({found.reasons[name]})")
    else:
      lines.append(f"{name:<11}{lr:>12.4g}{lr / parallel.lr:>11.3g}x")
  lo, hi = parallel.usable_range
  lines.append(
    f"{'parallel':<11}{parallel.lr:>12.4g}{1:>11.3g}x  ({parallel.metric} = {parallel.value:.4g}; "
    f"usable range [{lo:.4g}, {hi:.4g}] after {parallel.sweep.config['steps']} steps)"
  )
  if parallel.sweep.history.diverged.all():
    lines.append(f"Warning: {parallel.summary().split(': ', 1)[1]}")
  elif parallel.on_edge:
    lines.append(
      "Warning: the parallel finder's best is on the edge of its candidates: widen them."
    )
  return "\n".join(lines)


def run(args) -> int:
  """``lrlab find`` with parsed ``args``; the exit code."""
  common.expose_host_devices(args.devices)
  compile_cache.use()
  import jax

  from lrlab import finder, optimizers
  from lrlab.finder._common import refuse_learning_rate_free
  from lrlab.sweep import storage

  created = False  # the results folder, made by this run before its compute
  try:
    if args.start_lr >= args.end_lr:
      raise common.UsageError(
        f"--start-lr must be below --end-lr ({args.end_lr:g}); got {args.start_lr:g}."
      )
    common.check_optimizer(args.optimizer)
    refuse_learning_rate_free(args.optimizer, "--optimizer")  # else it failed after the test
    options = common.parse_assignments(args.opt, "--opt")
    make_tx = lambda hp: optimizers.get(args.optimizer, learning_rate=hp["lr"], **options)
    allowed = sorted(set(inspect.signature(getattr(optimizers, args.optimizer)).parameters))
    allowed.remove("learning_rate")  # the range test's and the finder's to set
    unknown = sorted(set(options) - set(allowed))
    if unknown:
      raise common.UsageError(
        f"--opt (arguments of {args.optimizer}) must be among {', '.join(allowed)}; "
        f"got {', '.join(unknown)}."
      )
    try:  # the optimizer's own checks, before any compilation
      make_tx({"lr": args.start_lr})
    except (ValueError, TypeError) as error:
      raise common.UsageError(f"--opt {' '.join(args.opt)}: {error}") from None
    candidates = _candidates(args.parallel_lrs)
    least = finder.suggestions.min_steps()
    if args.steps < least:
      raise common.UsageError(
        f"--steps must be at least {least} (fastai's rules read that many points of the range "
        f"test); got {args.steps}."
      )
    task_options = task_flag.task_options(args.task_arg)
    task = task_flag.load_task(args.task, task_options)
    if args.batch_size is None and task.streamed:
      raise common.UsageError(
        f"--batch-size must be a number for task {task.name!r}, whose data are streamed; "
        "got 'full'."
      )
    if args.batch_size is not None and args.batch_size > task.num_train:
      raise common.UsageError(
        f"--batch-size must be 'full' or at most the {task.num_train} training examples of task "
        f"{task.name!r}; got {args.batch_size}."
      )
    settings = {
      key: getattr(args, key)
      for key in ("task", "optimizer", "start_lr", "end_lr", "steps", "spacing", "batch_size",
                  "parallel_lrs", "parallel_steps", "seeds", "seed")
    } | {"opt": options}  # fmt: skip
    if task_options:  # only then, so a folder named before --task-arg existed keeps its name
      settings["task_args"] = task_options
    out = args.out or output.default_folder(
      "find", task.name, args.optimizer, output.settings_hash(settings)
    )
    output.check(out, "find", settings, FILES, overwrite=args.overwrite)  # before any compute
    new = not os.path.isdir(out)
    os.makedirs(out, exist_ok=True)
    output.hold(out)  # a command started into it meanwhile is refused, not this one's results
    created = new  # held: removing it, empty, can no longer pull it from under another command
    key = jax.random.key(args.seed)
    optimizer = f"{args.optimizer} {options}" if options else args.optimizer
    print(
      f"{task.name} | {optimizer} | range test: {args.steps} steps "
      f"from {args.start_lr:g} to {args.end_lr:g}, batch {args.batch_size or 'full'} | "
      f"parallel: {len(candidates)} lrs x {args.parallel_steps} steps x {args.seeds} seed(s)",
      flush=True,
    )
    found = finder.find_lr(
      task, make_tx, start_lr=args.start_lr, end_lr=args.end_lr, steps=args.steps,
      spacing=args.spacing, batch_size=args.batch_size, key=key,
    )  # fmt: skip
    parallel = finder.find_lr_parallel(
      task, make_tx, lrs=candidates, steps=args.parallel_steps, batch_size=args.batch_size,
      key=key, seeds=args.seeds,
    )  # fmt: skip
  except BaseException as error:  # Ctrl-C included: a folder this run made stays only with results
    if created:
      with contextlib.suppress(OSError):
        os.rmdir(out)
    if isinstance(error, ValueError):
      return common.fail(str(error))
    raise
  print(report(found, parallel))
  try:
    output.claim(out, "find", settings, FILES, overwrite=args.overwrite, fresh=True)
  except ValueError as error:
    return common.fail(str(error))
  found.save(os.path.join(out, "range_test.json"))
  text = json.dumps(parallel.to_dict() | {"command": sys.argv}, indent=2)
  storage.atomic_write(Path(out) / "parallel.json", lambda file: file.write(text))
  figure = os.path.join(out, "lr_find.png")
  finder.plot_range_test(found, figure, reference={"parallel finder": parallel.lr})
  print(f"Results: {out}/ (range_test.json, parallel.json, lr_find.png)")
  return 0


def main(argv: list[str] | None = None) -> int:
  """``lrlab find`` as a program: parse ``argv`` (default: ``sys.argv[1:]``) and run."""
  return common.main_of(sys.modules[__name__], "lrlab find", argv)
