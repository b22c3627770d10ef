"""Find a learning rate two ways and compare: the range test's rules against the parallel finder.

  python scripts/lr_find.py                     # mnist1d-mlp with Adam
  python scripts/lr_find.py --task my_package.my_module:make_task   # your own lrlab.tasks.Task
  python scripts/lr_find.py --task digits-mlp --optimizer sgd --opt momentum=0.9 \\
      --parallel-lrs 1e-4:3:16 --parallel-steps 200

The range test (``lrlab.finder.find_lr``, fastai's procedure) trains one run
with a growing learning rate and reads five suggestions off its loss curve. The
parallel finder (``lrlab.finder.find_lr_parallel``) trains K constant learning
rates for a short budget in one vmapped program and reports the best. The
script prints both side by side, each suggestion as a ratio to the parallel
finder's answer, and writes the range test's plot and both results (JSON) to
``--out``.
"""

import argparse
import json
import os
import sys

from _cli import TASK_HELP, expose_host_devices, load_task, parse_assignments


def _batch_size(text: str) -> int | None:
  return None if text.lower() in ("full", "none") else int(text)


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
  parser.add_argument("--start-lr", type=float, default=1e-7)
  parser.add_argument("--end-lr", type=float, default=10.0)
  parser.add_argument("--num-steps", type=int, default=100, help="steps of the range test")
  parser.add_argument("--mode", default="exponential", choices=("exponential", "linear"))
  parser.add_argument(
    "--batch-size", type=_batch_size, default=100, help="examples per minibatch, or 'full'"
  )
  parser.add_argument(
    "--parallel-lrs", default="1e-5:1:16", metavar="LO:HI:K", help="log-spaced candidates"
  )
  parser.add_argument("--parallel-steps", type=int, default=300, help="the parallel budget")
  parser.add_argument("--seeds", type=int, default=1, help="seeds of the parallel finder")
  parser.add_argument("--seed", type=int, default=0, help="the base random key")
  parser.add_argument(
    "--devices", type=int, default=None, help="host CPU devices to expose (default: one per core)"
  )
  parser.add_argument(
    "--out", default=None, help="output folder (default results/lr_find-TASK-OPTIMIZER)"
  )
  args = parser.parse_args(argv)
  return args


def _candidates(text: str):
  from lrlab import sweep

  parts = text.split(":")
  try:
    lo, hi, count = float(parts[0]), float(parts[1]), int(parts[2])
  except (IndexError, ValueError):
    raise ValueError(f"--parallel-lrs takes LO:HI:K, e.g. 1e-5:1:16; got {text!r}.") from None
  if len(parts) != 3:
    raise ValueError(f"--parallel-lrs takes LO:HI:K, e.g. 1e-5:1:16; got {text!r}.")
  return sweep.log_grid(lo, hi, count)


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
  if parallel.on_edge:
    lines.append(
      "Warning: the parallel finder's best is on the edge of its candidates: widen them."
    )
  return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
  args = parse_args(argv)
  expose_host_devices(args.devices)

  import jax

  from lrlab import finder, optimizers

  try:
    if args.optimizer not in optimizers.names():
      allowed = ", ".join(optimizers.names())
      raise ValueError(f"--optimizer must be one of {allowed}; got {args.optimizer!r}.")
    options = parse_assignments(args.opt, "--opt")
    make_tx = lambda hp: optimizers.get(args.optimizer, learning_rate=hp["lr"], **options)
    make_tx({"lr": 1e-3})  # the optimizer's own checks, before any compilation
    candidates = _candidates(args.parallel_lrs)
    task = load_task(args.task)
    key = jax.random.key(args.seed)
    print(
      f"{task.name} | {args.optimizer} {options or ''} | range test: {args.num_steps} steps "
      f"from {args.start_lr:g} to {args.end_lr:g}, batch {args.batch_size or 'full'} | "
      f"parallel: {len(candidates)} lrs x {args.parallel_steps} steps x {args.seeds} seed(s)"
    )
    found = finder.find_lr(
      task,
      make_tx,
      start_lr=args.start_lr,
      end_lr=args.end_lr,
      num_steps=args.num_steps,
      mode=args.mode,
      batch_size=args.batch_size,
      key=key,
    )
    parallel = finder.find_lr_parallel(
      task,
      make_tx,
      lrs=candidates,
      steps=args.parallel_steps,
      batch_size=args.batch_size,
      key=key,
      seeds=args.seeds,
    )
  except ValueError as error:
    print(f"error: {error}", file=sys.stderr)
    return 2
  print(report(found, parallel))
  args.out = args.out or os.path.join("results", f"lr_find-{task.name}-{args.optimizer}")
  os.makedirs(args.out, exist_ok=True)
  found.save(os.path.join(args.out, "range_test.json"))
  with open(os.path.join(args.out, "parallel.json"), "w", encoding="utf-8") as file:
    json.dump(parallel.to_dict() | {"command": sys.argv}, file, indent=2)
  figure = os.path.join(args.out, "lr_find.png")
  finder.plot_range_test(found, figure, reference={"parallel finder": parallel.lr})
  print(f"Results: {args.out}/ (range_test.json, parallel.json, lr_find.png)")
  return 0


if __name__ == "__main__":
  sys.exit(main())
