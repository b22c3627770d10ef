"""The ``lrlab`` command: ``lrlab sweep``, ``lrlab find``, ``lrlab bench``, ``lrlab schedules``.

Installed as a console script (``[project.scripts]``) and as ``python -m lrlab``;
``scripts/vmap_sweep.py``, ``scripts/lr_find.py`` and ``scripts/schedule_demo.py``
call the same subcommands. Each subcommand is a module with ``add_arguments``,
``run`` and ``main``; :mod:`lrlab.cli.common` holds what they share,
:mod:`lrlab.cli.task_flag` reads ``--task`` and :mod:`lrlab.cli.output` keeps the rule
that a results folder holds one run.
"""

import sys
from typing import NoReturn

from lrlab.cli import bench, common, find, schedules, sweep

COMMANDS = {"sweep": sweep, "find": find, "schedules": schedules}
SUMMARIES = {
  "sweep": "sweep learning rates (and other hyperparameters) in one compiled program",
  "find": "find a learning rate: the range test against the parallel finder",
  "bench": "the throughput benchmark: lrlab against a loop of runs and PyTorch",
  "schedules": "print and plot every schedule over one budget",
}


def parser() -> common.Parser:
  """The whole command line, with every subcommand's flags."""
  import lrlab
  from lrlab import optimizers, tasks

  allowed = {
    "tasks": (*tasks.names(), "MODULE:FACTORY"),
    "optimizers": optimizers.names(),
    "schedules": sorted(sweep.SCHEDULES),
  }
  top = common.Parser(
    prog="lrlab",
    description=f"{__doc__.splitlines()[0]}\n\n`lrlab COMMAND --help` for a command's flags.",
    epilog="\n".join(f"{name}: {', '.join(values)}" for name, values in allowed.items()),
  )
  top.add_argument("--version", action="version", version=f"lrlab {lrlab.__version__}")
  commands = top.add_subparsers(dest="command", metavar="COMMAND", required=True)
  top.subcommands = {}  # what main names an unknown flag by
  for name, module in COMMANDS.items():
    sub = commands.add_parser(
      name, help=SUMMARIES[name], description=module.__doc__, formatter_class=common.HelpFormatter
    )
    sub.error = common.Parser.error.__get__(sub)  # one-line errors in subcommands too
    module.add_arguments(sub)
    top.subcommands[name] = sub
  commands.add_parser("bench", help=SUMMARIES["bench"], add_help=False)
  return top


def main(argv: list[str] | None = None) -> int:
  """Run ``lrlab ARGS`` (default: ``sys.argv[1:]``); the exit code (Ctrl-C raises
  ``KeyboardInterrupt``: :func:`program` is the executable)."""
  argv = list(sys.argv[1:] if argv is None else argv)
  if argv[:1] == ["bench"]:  # its flags are the benchmark's own
    return bench.main(argv[1:])
  top = parser()
  if argv[:1] and argv[0].startswith("-") and argv[0] not in ("-h", "--help", "--version"):
    top.error(f"the command comes first (lrlab COMMAND [flags], COMMAND one of "
              f"{', '.join([*COMMANDS, 'bench'])}); got {argv[0]!r}")  # fmt: skip
  args, unknown = top.parse_known_args(argv)
  if unknown:  # named by the subcommand, whose --help lists its flags (lrlab's does not)
    top.subcommands[args.command].error(f"unrecognized arguments: {' '.join(unknown)}")
  return common.run_as(COMMANDS[args.command], f"lrlab {args.command}", args)


def program() -> NoReturn:
  """The ``lrlab`` executable: :func:`main` through :func:`lrlab.cli.common.run_program`."""
  common.run_program(main)


__all__ = ["COMMANDS", "main", "parser", "program"]
