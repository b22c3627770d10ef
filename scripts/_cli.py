"""Command-line pieces the scripts share. Import-free of JAX: the device flag must come first."""

import os
import sys


def expose_host_devices(count: int | None) -> None:
  """Expose ``count`` host CPU devices (default: one per core) to JAX, which must not be loaded.

  One CPU device runs on one core, so a sweep sharded over devices uses the
  whole machine only when each core is a device. A count already set in
  ``XLA_FLAGS`` wins.
  """
  count = count or os.cpu_count() or 1
  flags = os.environ.get("XLA_FLAGS", "")
  if "xla_force_host_platform_device_count" not in flags:
    os.environ["XLA_FLAGS"] = f"{flags} --xla_force_host_platform_device_count={count}".strip()


def parse_value(text: str) -> bool | int | float:
  """A command-line value: ``true``/``false``, an integer or a float."""
  if text.lower() in ("true", "false"):
    return text.lower() == "true"
  try:
    return int(text)
  except ValueError:
    return float(text)


def parse_assignments(items: list[str], flag: str) -> dict:
  """``["momentum=0.9", ...]`` given with ``flag`` as a dict, or a ValueError showing the form."""
  pairs = {}
  for item in items:
    name, sep, value = item.partition("=")
    if not sep or not name.isidentifier():
      raise ValueError(f"{flag} takes NAME=VALUE, e.g. {flag} momentum=0.9; got {item!r}.")
    try:
      pairs[name] = parse_value(value)
    except ValueError:
      raise ValueError(f"{flag} {name}= needs a number or true/false; got {value!r}.") from None
  return pairs


TASK_HELP = (
  "a task of lrlab.tasks.names(), or MODULE:FACTORY, a zero-argument function returning an "
  "lrlab.tasks.Task, e.g. my_package.my_module:make_task (MODULE is imported from the current "
  "directory or PYTHONPATH); results are named after the task's .name"
)
_MISSING = object()
_FACTORY = "MODULE:FACTORY, a zero-argument function returning an lrlab.tasks.Task"


def _first_line(error: BaseException) -> str:
  """``Type: message`` of ``error`` on one line."""
  lines = str(error).strip().splitlines()
  return f"{type(error).__name__}: {lines[0]}" if lines else type(error).__name__


def load_task(spec: str):
  """The task ``--task spec`` names: a registered task, or what ``MODULE:FACTORY()`` returns.

  ``MODULE`` is imported as ``python -m`` would, with the current directory on
  ``sys.path``, so a researcher runs the scripts from their project folder.
  Call it after :func:`expose_host_devices`: the module may import JAX.

  Raises:
    ValueError: on one line, naming ``--task``, ``spec`` and what is allowed, for an
      unknown name, a module that fails to import, a missing or non-callable
      factory, a factory that raises or one that returns something other than an
      :class:`lrlab.tasks.Task`.
  """
  import importlib

  from lrlab import tasks

  if spec in tasks.names():
    return tasks.get(spec)
  module_name, sep, attribute = spec.partition(":")
  if not sep:
    names = ", ".join(repr(n) for n in tasks.names())
    raise ValueError(
      f"--task must be a task name or {_FACTORY}: name must be one of {names}; got {spec!r}."
    )

  def fail(reason: str) -> ValueError:
    return ValueError(f"--task must be {_FACTORY}; got {spec!r}, {reason}.")

  if not module_name or not attribute.isidentifier():
    raise fail("which is not of that form")
  if os.getcwd() not in sys.path and "" not in sys.path:
    sys.path.insert(0, os.getcwd())
  try:
    module = importlib.import_module(module_name)
  except (Exception, SystemExit) as error:
    where = "the current directory or PYTHONPATH"
    raise fail(f"whose import failed with {_first_line(error)} (searched {where})") from None
  factory = getattr(module, attribute, _MISSING)
  if factory is _MISSING:
    raise fail(f"but module {module_name!r} has no attribute {attribute!r}")
  if not callable(factory):
    raise fail(f"but {attribute} is not callable (type {type(factory).__name__})")
  try:
    task = factory()
  except (Exception, SystemExit) as error:
    raise fail(f"but calling it raised {_first_line(error)}") from None
  if not isinstance(task, tasks.Task):
    raise fail(f"but it returned type {type(task).__name__}, not an lrlab.tasks.Task")
  return task
