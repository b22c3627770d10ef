"""What the subcommands share: the parser, the device flag, flag types and ``--task``.

Every error the command line reports is one line, ``PROG: error: ...``, naming
the flag, its value and what is allowed, with exit code 2, before any compute.
The device flag (:func:`expose_host_devices`) must be set before JAX makes its
first array: importing ``jax`` is fine, calling ``jax.devices()`` is too late.
"""

import argparse
import contextvars
import errno
import os
import sys
from collections.abc import Callable
from typing import NoReturn

EXIT_USAGE = 2
EXIT_INTERRUPTED = 130  # 128 + SIGINT, as a shell reports Ctrl-C
TOLERANCE = 0.05  # lrlab sweep's --tolerance default, which --search refuses to be given
_program = contextvars.ContextVar("program", default="lrlab")  # the command run_as runs


class UsageError(ValueError):
  """A bad command line found after parsing (e.g. by lrlab's own checks): one line, exit 2."""


class Parser(argparse.ArgumentParser):
  """An ``ArgumentParser`` whose errors are one line and whose help shows every default."""

  def __init__(self, *args, **kwargs):
    kwargs.setdefault("formatter_class", HelpFormatter)
    super().__init__(*args, **kwargs)

  def error(self, message: str) -> NoReturn:
    """Exits with :data:`EXIT_USAGE` and one line: the error and where to read the usage."""
    self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
  """Keeps the description's layout and appends ``(default: X)`` to a flag's help.

  A flag whose default is ``None``, ``False`` or empty says in its own words
  what happens without it (its help mentions "default"), so nothing is added.
  """

  def _get_help_string(self, action: argparse.Action) -> str:
    text = action.help or ""
    default = action.default
    unstated = default is None or default is False or default == [] or default == argparse.SUPPRESS
    if "default" in text or unstated:
      return text
    return f"{text} (default: %(default)s)"


def run_program(main: Callable[[], int]) -> NoReturn:
  """End the process with ``main()``'s exit code; on Ctrl-C, one line and exit code 130.

  Ctrl-C outside a sweep's training (where :class:`StopRequest` saves a
  checkpoint) raises ``KeyboardInterrupt`` wherever it lands, often inside an
  XLA compile. JAX's teardown after a compile cut short can crash (a
  segmentation fault in 11 of 20 interrupts of ``lrlab find`` sent 0.7 to 1.0 s
  after its first line, while it compiles), replacing the exit code and the
  message, so the process ends at once, as a second Ctrl-C of a sweep does:
  nothing is left to save by then. A program that returns 130 (a sweep stopped at a
  segment boundary, its checkpoint saved) ends at once too: a second Ctrl-C often landed in
  the teardown, where it printed a traceback or, after Python's signal handling was torn
  down, killed the process (exit -2). After any other return, a Ctrl-C in the teardown
  exits at once with 130.
  """
  try:
    code = main()
  except KeyboardInterrupt:
    print(
      "Interrupted: files and checkpoints saved before this point are kept; run the same "
      "command again to continue from them.", file=sys.stderr, flush=True,
    )  # fmt: skip
    sys.stdout.flush()
    os._exit(EXIT_INTERRUPTED)
  _end_at_once_on_ctrl_c()
  if code == EXIT_INTERRUPTED:  # a stopped sweep: its checkpoint and message are out
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
  raise SystemExit(code)


def _end_at_once_on_ctrl_c() -> None:
  """From here to the process's end, Ctrl-C exits at once with code 130, printing nothing.

  The work and its message are done, but the interpreter's teardown (JAX's atexit
  handler among it) takes a moment; a ``KeyboardInterrupt`` raised there is a traceback.
  A SIGINT that is ignored stays ignored.
  """
  import signal
  import threading

  def end(number: int, frame) -> None:
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(EXIT_INTERRUPTED)

  main_thread = threading.current_thread() is threading.main_thread()
  if main_thread and signal.getsignal(signal.SIGINT) is not signal.SIG_IGN:
    signal.signal(signal.SIGINT, end)


def main_of(command, prog: str, argv: list[str] | None) -> int:
  """Run a subcommand module (``add_arguments``, ``run``, ``__doc__``) as the program ``prog``.

  ``argv`` defaults to ``sys.argv[1:]``; the exit code. Ctrl-C raises
  ``KeyboardInterrupt`` to the caller (:func:`run_program` turns it into one line).
  """
  parser = Parser(prog=prog, description=command.__doc__)
  command.add_arguments(parser)
  return run_as(command, prog, parser.parse_args(argv))


def run_as(command, prog: str, args: argparse.Namespace) -> int:
  """``command.run(args)`` as the program ``prog``; the exit code.

  An error found after parsing names ``prog`` (:func:`fail`), as does a full disk (or
  quota), in one line that says what to do; the results folder the command claimed is
  released afterwards, for the next command in this process or not. A run the command's claim
  set aside (``--overwrite``, ``--fresh``) is removed if it succeeded, else kept and named
  (:func:`lrlab.cli.output.finish`).
  """
  from lrlab.cli import output  # here: output imports this module

  running = _program.set(prog)
  code = 1
  try:
    code = command.run(args)
    return code
  except OSError as error:
    if error.errno not in (errno.ENOSPC, errno.EDQUOT):
      raise
    where = f" writing {error.filename}" if error.filename else ""
    return fail(
      f"{error.strerror}{where}: free some space, or give an --out on another disk, and run the "
      "same command again; the files and checkpoints saved before this point are kept."
    )
  finally:
    for kept in output.finish(succeeded=code == 0):  # the runs it replaced (--overwrite)
      print(f"{prog}: {output.kept_note(kept)}", file=sys.stderr)
    _program.reset(running)
    output.release()  # the folder it claimed, for the next command (in this process or not)


def fail(message: str) -> int:
  """Print ``PROG: error: message`` on one line to stderr; return the usage exit code.

  ``PROG`` is the command :func:`run_as` runs (``lrlab sweep``), so an error found after
  parsing reads as the parser's own do; ``lrlab`` outside a command.
  """
  print(f"{_program.get()}: error: {message}", file=sys.stderr)
  return EXIT_USAGE


def expose_host_devices(count: int | None) -> None:
  """Expose ``count`` host CPU devices (default: one per core) to JAX, before its first array.

  One CPU device runs on one core, so a sweep sharded over devices uses the
  whole machine only when each core is a device. A count already set in
  ``XLA_FLAGS`` wins.
  """
  count = count or os.cpu_count() or 1
  flags = os.environ.get("XLA_FLAGS", "")
  if "xla_force_host_platform_device_count" not in flags:
    os.environ["XLA_FLAGS"] = f"{flags} --xla_force_host_platform_device_count={count}".strip()


def _number(kind: type, test: Callable[[float], bool], allowed: str) -> Callable[[str], float]:
  """An argparse ``type=``: ``text`` as ``kind``, refused unless ``test`` holds."""

  def parse(text: str):
    try:
      value = kind(text)
    except ValueError:
      value = None
    if value is None or not test(value):
      raise argparse.ArgumentTypeError(f"must be {allowed}; got {text!r}")
    return value

  parse.__doc__ = f"An argparse ``type=``: the text as ``{kind.__name__}``, which must be {allowed}"
  return parse


positive_int = _number(int, lambda v: v > 0, "a positive integer")
positive_float = _number(float, lambda v: 0 < v < float("inf"), "a positive number")
nonnegative_float = _number(float, lambda v: 0 <= v < float("inf"), "a number >= 0")
integer_at_least_2 = _number(int, lambda v: v >= 2, "an integer >= 2")
# jax.random.key keeps 32 bits without x64 (5 and 2**32 + 5 give the same key) and overflows
# past int64 (a traceback, after the folder was claimed).
seed_value = _number(int, lambda v: 0 <= v < 2**32, "an integer in [0, 2**32)")


def positive_ints(text: str) -> tuple[int, ...]:
  """An argparse ``type=``: comma-separated positive integers, e.g. ``64,512``."""
  try:
    return tuple(positive_int(part) for part in text.split(","))
  except argparse.ArgumentTypeError:
    raise argparse.ArgumentTypeError(
      f"must be comma-separated positive integers; got {text!r}"
    ) from None


def chunk_size(text: str) -> int | str:
  """An argparse ``type=`` for ``--chunk-size``: ``auto`` (measured) or a positive integer."""
  if text == "auto":
    return text
  try:
    return positive_int(text)
  except argparse.ArgumentTypeError:
    raise argparse.ArgumentTypeError(
      f"must be 'auto' or a positive integer; got {text!r}"
    ) from None


def parse_value(text: str) -> bool | int | float:
  """A command-line value: ``true``/``false``, an integer or a float."""
  if text.lower() in ("true", "false"):
    return text.lower() == "true"
  try:
    return int(text)
  except ValueError:
    return float(text)


def parse_option(text: str) -> bool | int | float | str | tuple:
  """A task option's value: as :func:`parse_value` reads it, a comma-separated tuple of such
  values (``channels=8,16``; ``hidden=32,`` for one), or else the text itself
  (``parametrization=mup``)."""
  if "," in text:  # "8," is a tuple of one
    return tuple(parse_option(part) for part in text.split(",") if part)
  try:
    return parse_value(text)
  except ValueError:
    return text


def parse_assignments(
  items: list[str], flag: str, example: str = "momentum=0.9", value=parse_value
) -> dict:
  """``["momentum=0.9", ...]`` given with ``flag`` as a dict of ``value(text)`` by name, or a
  UsageError showing the form (``flag example``)."""
  pairs = {}
  for item in items:
    name, sep, text = item.partition("=")
    if not sep or not name.isidentifier():
      raise UsageError(f"{flag} takes NAME=VALUE, e.g. {flag} {example}; got {item!r}.")
    if name in pairs:  # the last would win silently
      raise UsageError(f"{flag} gives {name} more than once; give it once; got {item!r} again.")
    try:
      pairs[name] = value(text)
    except ValueError:
      raise UsageError(f"{flag} {name}= needs a number or true/false; got {text!r}.") from None
  return pairs


def optimizer_help() -> str:
  """The help of ``--optimizer``, listing lrlab's optimizers."""
  from lrlab import optimizers

  return f"one of {', '.join(optimizers.names())}"


def add_run_arguments(parser: argparse.ArgumentParser) -> None:
  """The flags ``lrlab sweep`` and ``lrlab find`` share: what to train, with what, where."""
  from lrlab.cli import task_flag  # here: task_flag imports this module

  parser.add_argument("--task", default="mnist1d-mlp", help=task_flag.task_help())
  parser.add_argument(
    "--task-arg", action="append", default=[], metavar="NAME=VALUE",
    help="an option of a registered task, as lrlab.tasks.get takes it, e.g. width=128, "
    "channels=8,16 or parametrization=mup (repeatable; default: the task's)",
  )  # fmt: skip
  parser.add_argument("--optimizer", default="adam", help=optimizer_help())
  parser.add_argument(
    "--opt", action="append", default=[], metavar="NAME=VALUE",
    help="a fixed optimizer argument, e.g. momentum=0.9 (repeatable; default: the optimizer's)",
  )  # fmt: skip
  parser.add_argument("--seed", type=seed_value, default=0, help="the base random key")
  parser.add_argument(
    "--devices", type=positive_int, default=None,
    help="host CPU devices to expose (default: one per core)",
  )  # fmt: skip


def check_optimizer(name: str) -> None:
  """Raise a UsageError naming ``--optimizer`` unless ``name`` is one of lrlab's optimizers."""
  from lrlab import optimizers

  if name not in optimizers.names():
    allowed = ", ".join(optimizers.names())
    raise UsageError(f"--optimizer must be one of {allowed}; got {name!r}.")


def first_line(error: BaseException) -> str:
  """``Type: message`` of ``error`` on one line."""
  lines = str(error).strip().splitlines()
  return f"{type(error).__name__}: {lines[0]}" if lines else type(error).__name__


class StopRequest:
  """SIGINT/SIGTERM, caught: calling the object says whether one came (``should_stop``).

  Use it as a context manager around a sweep: the first signal asks the
  engine to stop at its next segment boundary, after saving a checkpoint; a
  second one exits at once (code 130), keeping the last checkpoint saved.
  """

  SIGNALS = ("SIGINT", "SIGTERM")

  def __init__(self) -> None:
    self.received: str | None = None
    self._previous: dict = {}

  def __call__(self) -> bool:
    return self.received is not None

  def _handle(self, number: int, frame) -> None:
    import signal

    if self.received is not None:
      print(f"{self.received} again: stopped without a new checkpoint.", file=sys.stderr)
      os._exit(EXIT_INTERRUPTED)
    self.received = signal.Signals(number).name
    print(
      f"\n{self.received}: stopping at the next segment boundary (again to stop at once).",
      file=sys.stderr,
      flush=True,
    )

  def __enter__(self) -> "StopRequest":
    import signal
    import threading

    if threading.current_thread() is threading.main_thread():
      for name in self.SIGNALS:
        number = getattr(signal, name)
        self._previous[number] = signal.signal(number, self._handle)
    return self

  def __exit__(self, *exc) -> None:
    import signal

    for number, handler in self._previous.items():
      signal.signal(number, handler)
    self._previous.clear()
