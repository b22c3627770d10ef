"""How lrlab compiles a run's one-shot initialization program.

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
"""

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
