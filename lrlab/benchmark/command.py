"""The benchmark's command line (``lrlab bench``, ``python -m lrlab.benchmark``,
``python scripts/benchmark.py``): no JAX device is touched until XLA's host device count is
set."""

import argparse
import json
import sys

from lrlab.benchmark import chunks, runner, tasks, tasks_report
from lrlab.benchmark import report as report_lib
from lrlab.benchmark.workload import LEGS, Config, host_cores, set_host_devices
from lrlab.cli.common import Parser, chunk_size, positive_float, positive_int, positive_ints

DESCRIPTION = "Throughput of lrlab's vmapped sweep against a loop of runs and a PyTorch loop."


def _task_names(text: str) -> tuple[str, ...]:
  """An argparse ``type=``: comma-separated registered task names, e.g. ``lm-transformer``."""
  import lrlab

  names = tuple(part for part in text.split(",") if part)
  unknown = [n for n in names if n not in lrlab.tasks.names()]
  if not names or unknown:
    raise argparse.ArgumentTypeError(
      f"must be comma-separated task names (lrlab.tasks.names()); got {text!r}"
    )
  return names


def _parser() -> Parser:
  """The command line's parser; its errors are one line (:class:`lrlab.cli.common.Parser`)."""
  parser = Parser(
    description=f"{DESCRIPTION} With --search, the time to the answer of lrlab.search's "
    "methods against a full grid instead (--search --help lists its flags)."
  )
  parser.add_argument(
    "--ks", type=positive_ints, default=None, help="comma-separated K values [1,8,64,512]"
  )
  parser.add_argument("--steps", type=positive_int, default=None, help="updates per member [200]")
  parser.add_argument("--batch-size", type=positive_int, default=100)
  parser.add_argument("--legs", default=",".join(LEGS), help=f"comma-separated, from {LEGS}")
  parser.add_argument(
    "--devices", type=positive_int, default=None, help="host devices [every core]"
  )
  parser.add_argument(
    "--threads", type=positive_int, default=None, help="PyTorch threads [every core]"
  )
  parser.add_argument(
    "--repeats",
    type=positive_int,
    default=None,
    help="steady-state timings, best counts (default 5, 2 with --quick; 3 rounds with --chunks "
    "or --tasks)",
  )
  parser.add_argument(
    "--budget", type=positive_float, default=30.0, help="seconds of repeats per (leg, K)"
  )
  parser.add_argument("--seed", type=int, default=0)
  parser.add_argument("--quick", action="store_true", help="smoke run: K in {1, 8}, 20 steps")
  parser.add_argument("--in-process", action="store_true", help="no subprocess per (leg, K)")
  parser.add_argument("--out", default="results/benchmark", help="folder for the report")
  parser.add_argument(
    "--chunks", action="store_true",
    help="instead of the legs: chunk_size='auto' against fixed chunk sizes, per task and K "
    "[K in 64,512; at most 50 steps, each task's own workload; sizes timed round robin], "
    "writing chunks.json and chunks.md under --out",
  )  # fmt: skip
  parser.add_argument(
    "--chunk-size", default="auto", type=chunk_size,
    help="the sweep leg's chunk_size: auto (measured, remembered) or a number [auto]",
  )  # fmt: skip
  parser.add_argument(
    "--tasks", default=None, type=_task_names,
    help="comma-separated tasks: the sweep against the loop and the ceiling per task "
    f"(from {', '.join(tasks.TASKS)}) at K in --ks [64], writing tasks.json and tasks.md; "
    f"with --chunks, the tasks of the chunk benchmark [{','.join(chunks.TASKS)}]",
  )  # fmt: skip
  parser.add_argument(
    "--chunk-sizes", type=positive_ints, default=chunks.CHUNK_SIZES,
    help="with --chunks: the fixed chunk sizes (those above K are left out)",
  )  # fmt: skip
  parser.add_argument("--worker", default=None, help=argparse.SUPPRESS)
  return parser


def parse_args(argv=None) -> argparse.Namespace:
  """The command line; it runs before JAX's backend starts."""
  parser = _parser()
  args = parser.parse_args(argv)
  legs = tuple(s for s in args.legs.split(",") if s)
  unknown = sorted(set(legs) - set(LEGS))
  if unknown or not legs:
    parser.error(f"--legs must be taken from {LEGS}; got {args.legs!r}")
  args.legs = legs
  if args.tasks and not args.chunks:
    unknown = [n for n in args.tasks if n not in tasks.TASKS]
    if unknown:
      parser.error(f"--tasks must be taken from {tasks.TASKS} (with --chunks: any task); "
                   f"got {unknown}")  # fmt: skip
  return args


def config_from_args(args: argparse.Namespace) -> Config:
  """The :class:`Config` the command line asks for."""
  cores = host_cores()
  ks = args.ks or ((1, 8) if args.quick else (1, 8, 64, 512))
  return Config(
    ks=ks,
    steps=args.steps or (20 if args.quick else 200),
    batch_size=args.batch_size,
    legs=args.legs,
    devices=args.devices or cores,
    threads=args.threads or cores,
    repeats=args.repeats or (2 if args.quick else 5),
    budget_s=args.budget,
    seed=args.seed,
    chunk_size=args.chunk_size,
  )


def main(argv=None) -> int:
  """Run the benchmark the command line ``argv`` asks for (default ``sys.argv[1:]``); 0.

  ``--search`` anywhere in ``argv`` runs :func:`lrlab.benchmark.search.main` instead.
  """
  argv = list(sys.argv[1:] if argv is None else argv)
  if "--search" in argv:
    from lrlab.benchmark import search

    set_host_devices(host_cores())  # before JAX starts its backend
    return search.main(argv)
  args = parse_args(argv)
  if args.worker:
    runner.worker_main(json.loads(args.worker))
    return 0
  config = config_from_args(args)
  set_host_devices(config.devices)  # before JAX starts its backend
  # The chunk and task benchmarks time whole sweeps: 3 rounds unless --repeats says otherwise.
  rounds = args.repeats or (2 if args.quick else 3)
  if args.chunks:
    report = chunks.run_chunks(
      args.out, tasks=args.tasks or chunks.TASKS,
      ks=args.ks or tuple(chunks.KS),
      chunk_sizes=tuple(args.chunk_sizes),
      steps=args.steps or chunks.STEPS, batch_size=config.batch_size,
      repeats=rounds,
    )  # fmt: skip
    print(chunks.markdown(report))
    print(f"wrote {args.out}/chunks.json, {args.out}/chunks.md")
    return 0
  if args.tasks:
    report = tasks.run_tasks(
      args.out, tasks=args.tasks, ks=args.ks or tasks.KS, steps=args.steps,
      devices=config.devices, repeats=rounds, budget_s=config.budget_s,
      chunk_size=config.chunk_size, isolate=not args.in_process,
    )  # fmt: skip
    print(tasks_report.markdown(report))
    print(f"wrote {args.out}/tasks.json, {args.out}/tasks.md")
    return 0
  try:  # a batch larger than the training set: one line, before the ceiling is measured
    runner.check_config(config)
  except ValueError as error:
    _parser().error(str(error))
  report = runner.run_benchmark(config, isolate=not args.in_process)
  paths = report_lib.write_report(report, args.out)
  print(report_lib.markdown(report))
  print("wrote " + ", ".join(paths.values()))
  return 0
