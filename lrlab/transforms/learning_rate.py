"""The last link of every optimizer chain: multiply by minus the learning rate."""

from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
import optax
from jax.typing import ArrayLike

from lrlab import _checks
from lrlab._numerics import default_float_dtype

LearningRate = ArrayLike | Callable[[jax.Array], ArrayLike]
"""A learning rate: a number, an array (traced in a sweep) or a schedule ``step -> rate``."""


class ScaleByLearningRateState(NamedTuple):
  """State of :func:`scale_by_learning_rate`.

  Attributes:
    count: updates made so far (int32); the schedule is evaluated at it.
    learning_rate: the rate applied by the latest update (in the default float
      dtype: float32, or float64 under ``jax_enable_x64``; before the first
      update, the rate the first update will apply). Log it:
      :func:`lrlab.train.applied_learning_rate` reads it.
  """

  count: jax.Array
  learning_rate: jax.Array


def scale_by_learning_rate(
  learning_rate: LearningRate,
) -> optax.GradientTransformation:
  r"""Scale updates by minus the learning rate, a constant or a schedule.

  .. math::

    u_t \leftarrow -\eta(t)\, u_t, \qquad t = 0, 1, 2, \dots

  where :math:`\eta` is ``learning_rate`` itself when it is a number or an
  array, and ``learning_rate(count)`` when it is a schedule. The count starts
  at 0, so the first update uses ``schedule(0)``, as PyTorch uses the group's
  ``lr`` before the first ``scheduler.step()``. The state always carries the
  count and the rate just applied, whatever ``learning_rate`` is, so a chain's
  state has one structure for constant and scheduled rates alike.

  The rate may be a traced array (``jax.vmap`` over it); changing its value
  never recompiles. It is kept in the default float dtype, so under
  ``jax_enable_x64`` float64 parameters take a float64 step, as with PyTorch's
  Python-float ``lr``, not one rounded to float32. Unlike
  ``optax.scale_by_learning_rate`` there is no ``flip_sign`` option: the
  update is always a descent step.

  Args:
    learning_rate: a number ``>= 0``, an array, or a schedule mapping the
      int32 step count to a rate.

  Returns:
    An ``optax.GradientTransformation`` with state
    :class:`ScaleByLearningRateState`.

  Example:
    >>> import jax.numpy as jnp
    >>> from lrlab.transforms import scale_by_learning_rate
    >>> tx = scale_by_learning_rate(lambda step: 0.5 ** step)
    >>> state = tx.init({"w": jnp.zeros(2)})
    >>> updates, state = tx.update({"w": jnp.ones(2)}, state)
    >>> updates, state = tx.update({"w": jnp.ones(2)}, state)
    >>> print(updates["w"])
    [-0.5 -0.5]

  References:
    Robbins and Monro, `A Stochastic Approximation Method
    <https://doi.org/10.1214/aoms/1177729586>`_, 1951.
  """
  _checks.check_given(learning_rate=learning_rate)
  _checks.check_nonnegative("learning_rate", learning_rate)

  def rate_at(count: jax.Array) -> jax.Array:
    rate = learning_rate(count) if callable(learning_rate) else learning_rate
    return jnp.asarray(rate, default_float_dtype())

  def init_fn(params):
    del params
    count = jnp.zeros([], jnp.int32)
    return ScaleByLearningRateState(count=count, learning_rate=rate_at(count))

  def update_fn(updates, state, params=None):
    del params
    rate = rate_at(state.count)
    updates = jax.tree.map(lambda u: (-rate * u).astype(u.dtype), updates)
    new_state = ScaleByLearningRateState(
      count=optax.safe_int32_increment(state.count), learning_rate=rate
    )
    return updates, new_state

  return optax.GradientTransformation(init_fn, update_fn)
