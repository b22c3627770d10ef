"""How lrlab compiles a run's one-shot initialization program, and how it times compiling.

A run's initialization (drawing the parameters, building the optimizer state)
executes once, but XLA's CPU backend compiles it at LLVM's full optimization
level, which for the random-number generation of a model's parameters costs
seconds: 5 to 7 s for the MNIST-1D MLP, the transformer and the ResNet on the
2-core development CPU, more than the training segment's own program. At
backend level 1 the same program compiles 5 to 7 times faster and gives
bit-identical parameters (checked once for every registered task;
``tests/train/test_compiling.py`` checks every initializer the models use and one
model's whole initialization); level 0 is faster still but rounds 4% of the
parameters differently, so it is not used.

:class:`CompileClock` sums the seconds JAX reports for tracing, lowering and
compiling, wherever the programs are compiled: ahead of time, or on first use
as a streamed run's are.
"""

import threading
import weakref
from typing import Any

import jax

#: The XLA option that :func:`one_shot_options` sets on CPU.
ONE_SHOT_LEVEL = {"xla_backend_optimization_level": 1}


def one_shot_options(platform: str | None = None) -> dict[str, Any] | None:
  """Compiler options for a program that runs once: :data:`ONE_SHOT_LEVEL` on CPU, else none.

  Pass the result as ``jax.jit(..., compiler_options=...)`` or to
  ``Lowered.compile``. Only the CPU backend is covered: the bit-identity of the
  level was checked there, not on accelerators, whose compilers keep their
  defaults.

  Args:
    platform: ``"cpu"``, ``"gpu"``, ...; ``None`` reads JAX's default backend.

  Example:
    >>> one_shot_options("cpu"), one_shot_options("gpu")
    ({'xla_backend_optimization_level': 1}, None)
  """
  platform = jax.default_backend() if platform is None else platform
  return dict(ONE_SHOT_LEVEL) if platform == "cpu" else None


#: The durations JAX records for making a program (``jax.monitoring`` events): tracing to a
#: jaxpr, lowering it to MLIR, and XLA's compile.
COMPILE_EVENTS = (
  "/jax/core/compile/jaxpr_trace_duration",
  "/jax/core/compile/jaxpr_to_mlir_module_duration",
  "/jax/core/compile/backend_compile_duration",
)

# .clocks: the clocks running in this thread (weakly held: one abandoned by an exception goes).
_running = threading.local()
_listening = False


def _listen(event: str, duration: float, **_: Any) -> None:
  if event in COMPILE_EVENTS:
    for clock in list(getattr(_running, "clocks", ())):
      clock.seconds += duration
      clock.compiles += event == COMPILE_EVENTS[-1]


class CompileClock:
  """Seconds JAX spends making programs in this thread while the clock runs.

  ``seconds`` is the sum of JAX's recorded :data:`COMPILE_EVENTS` durations
  (tracing, lowering, XLA's compile; a jit traced inside another's trace counts
  in both) and ``compiles`` the number of XLA compiles, from :meth:`start`
  (which resets both) to :meth:`stop`, or over a ``with`` block. A program
  found in jit's cache records nothing, so a call that reuses every program
  reads 0. Clocks may overlap and nest; other threads' compiles are not
  counted, unless :func:`charge` adds them (the wall time of compiles this
  thread waited for). A clock no longer referenced stops.

  Example:
    >>> import jax, jax.numpy as jnp
    >>> x = jnp.zeros(3)
    >>> with CompileClock() as clock:
    ...   _ = jax.jit(lambda x: x + 1)(x)
    >>> clock.compiles, clock.seconds > 0
    (1, True)
  """

  def __init__(self):
    self.seconds, self.compiles = 0.0, 0

  def start(self) -> "CompileClock":
    """Starts (or restarts) the clock at zero seconds and compiles; returns the clock."""
    global _listening
    if not _listening:  # one listener for every clock, registered on first use
      jax.monitoring.register_event_duration_secs_listener(_listen)
      _listening = True
    self.seconds, self.compiles = 0.0, 0
    _running.__dict__.setdefault("clocks", weakref.WeakSet()).add(self)
    return self

  def stop(self) -> tuple[float, int]:
    """Stops the clock; returns ``(seconds, compiles)``."""
    getattr(_running, "clocks", weakref.WeakSet()).discard(self)
    return self.seconds, self.compiles

  def __enter__(self) -> "CompileClock":
    return self.start()

  def __exit__(self, *_: Any) -> None:
    self.stop()


def charge(seconds: float, compiles: int) -> None:
  """Adds ``seconds`` and ``compiles`` to every :class:`CompileClock` running in this thread: the
  wall time this thread waited for programs compiled in other threads on its behalf (as
  :func:`lrlab.sweep.programs.compile_all` compiles several side by side)."""
  for clock in list(getattr(_running, "clocks", ())):
    clock.seconds += seconds
    clock.compiles += compiles
