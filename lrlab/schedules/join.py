"""Joining schedules end to end."""

from collections.abc import Sequence

import jax.numpy as jnp
import numpy as np
import optax
from jax.typing import ArrayLike

from lrlab import _checks
from lrlab.schedules._common import as_step


def sequence(
  schedules: Sequence[optax.Schedule], boundaries: Sequence[int] | ArrayLike
) -> optax.Schedule:
  """Run schedules one after another, each on its own clock.

  With boundaries ``b_1 <= ... <= b_{n-1}`` (and ``b_0 = 0``), schedule ``i``
  runs for ``b_i <= t < b_{i+1}`` and sees the step ``t - b_i``:

  ``lr(t) = schedules[i](t - b_i)``

  Equals PyTorch's ``SequentialLR(optimizer, schedulers, milestones=boundaries)``
  and Optax's ``join_schedules``. The number of schedules is static; the
  boundaries may be traced.

  Args:
    schedules: ``n >= 1`` schedules.
    boundaries: ``n - 1`` non-decreasing steps >= 0 at which the next schedule starts.

  Returns:
    A schedule ``step -> learning rate``.

  Example:
    >>> from lrlab import schedules
    >>> s = schedules.sequence([schedules.linear(0.0, 1.0, 5), schedules.constant(0.1)], [5])
    >>> [round(float(s(t)), 2) for t in (0, 4, 5, 9)]
    [0.0, 0.8, 0.1, 0.1]
  """
  schedules = list(schedules)
  if not schedules or not all(callable(s) for s in schedules):
    raise ValueError(f"schedules must be a non-empty sequence of schedules; got {schedules!r}.")
  if np.shape(boundaries) != (len(schedules) - 1,):
    raise ValueError(
      f"boundaries must hold len(schedules) - 1 = {len(schedules) - 1} steps; got {boundaries!r}."
    )
  _checks.check_nonnegative("boundaries", boundaries)
  _checks.check(
    "boundaries",
    boundaries,
    lambda b: np.all(np.diff(b) >= 0),
    "a non-decreasing sequence of steps >= 0",
  )
  boundaries = jnp.asarray(boundaries, jnp.float32)

  def joined(count: ArrayLike) -> jnp.ndarray:
    t = as_step(count)
    lr = schedules[0](t)
    for boundary, schedule in zip(boundaries, schedules[1:], strict=True):
      lr = jnp.where(t >= boundary, schedule(jnp.maximum(t - boundary, 0.0)), lr)
    return lr

  return joined
