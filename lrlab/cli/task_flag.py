"""The ``--task`` and ``--task-arg`` flags: a registered task with its options, or
``MODULE:FACTORY``."""

import os
import sys

from lrlab.cli.common import UsageError, first_line, parse_assignments, parse_option

_MISSING = object()
_FACTORY = "MODULE:FACTORY, a zero-argument function returning an lrlab.tasks.Task"


def task_options(items: list[str]) -> dict:
  """The ``--task-arg NAME=VALUE`` flags as keyword options of :func:`lrlab.tasks.get`."""
  return parse_assignments(items, "--task-arg", "width=128", parse_option)


def task_help() -> str:
  """The help of ``--task``, listing the registered tasks."""
  from lrlab import tasks

  return (
    f"one of {', '.join(tasks.names())}; or MODULE:FACTORY, a zero-argument function returning "
    "an lrlab.tasks.Task, e.g. my_package.my_module:make_task (MODULE is imported from the "
    "current directory or PYTHONPATH); results are named after the task's .name"
  )


def load_task(spec: str, options: dict | None = None):
  """The task ``--task spec`` names: a registered task (built with ``options``, the
  ``--task-arg`` flags, by :func:`lrlab.tasks.get`), or what ``MODULE:FACTORY()`` returns.

  ``MODULE`` is imported as ``python -m`` would, with the current directory on
  ``sys.path``, so a researcher runs the command from their project folder.
  Call it after :func:`expose_host_devices`: the module may make arrays.

  Raises:
    UsageError: on one line, naming ``--task``, ``spec`` and what is allowed, for an
      unknown name, a module that fails to import, a missing or non-callable
      factory, a factory that raises or one that returns something other than an
      :class:`lrlab.tasks.Task`; naming ``--task-arg`` for options the task refuses, or
      options given with a factory.
  """
  import importlib

  from lrlab import tasks

  if spec in tasks.names():
    try:
      return tasks.get(spec, **(options or {}))
    except (ValueError, TypeError, ArithmeticError) as error:  # dim=1e400: OverflowError
      given = " ".join(f"{name}={value!r}" for name, value in (options or {}).items())
      hint = ""
      # A value of the wrong kind, as the builder found it (one number for a sequence).
      if isinstance(error, TypeError) or "sequence" in str(error):
        hint = " (a value of the wrong kind? several values go comma-separated: channels=8,16)"
      raise UsageError(
        f"--task-arg {given} refused by task {spec!r}: {first_line(error).rstrip('.')}{hint}."
      ) from None
  if options:
    raise UsageError(
      f"--task-arg takes the options of a registered task; {spec!r} is not one, and "
      f"MODULE:FACTORY is called without arguments; got {sorted(options)}."
    )
  module_name, sep, attribute = spec.partition(":")
  if not sep:
    names = ", ".join(repr(n) for n in tasks.names())
    raise UsageError(
      f"--task must be a task name or {_FACTORY}: name must be one of {names}; got {spec!r}."
    )

  def bad(reason: str) -> UsageError:
    return UsageError(f"--task must be {_FACTORY}; got {spec!r}, {reason}.")

  if not module_name or not attribute.isidentifier():
    raise bad("which is not of that form")
  if os.getcwd() not in sys.path and "" not in sys.path:
    sys.path.insert(0, os.getcwd())
  try:
    module = importlib.import_module(module_name)
  except (Exception, SystemExit) as error:
    where = "the current directory or PYTHONPATH"
    raise bad(f"whose import failed with {first_line(error)} (searched {where})") from None
  factory = getattr(module, attribute, _MISSING)
  if factory is _MISSING:
    raise bad(f"but module {module_name!r} has no attribute {attribute!r}")
  if not callable(factory):
    raise bad(f"but {attribute} is not callable (type {type(factory).__name__})")
  try:
    task = factory()
  except (Exception, SystemExit) as error:
    raise bad(f"but calling it raised {first_line(error)}") from None
  if not isinstance(task, tasks.Task):
    raise bad(f"but it returned type {type(task).__name__}, not an lrlab.tasks.Task")
  return task
