"""Helpers shared by the learning-rate-free and schedule-free rules.

Scalars of their states (distances, sums of squares, the estimate ``d``, the
applied rate) are kept in the default float dtype (float32, or float64 under
``jax_enable_x64``) whatever the parameters' dtype, and the pytree reductions
are computed in it, so bfloat16 parameters do not degrade the estimates.
"""

from typing import Any

import jax
import jax.numpy as jnp
import optax

from lrlab import _checks
from lrlab._numerics import default_float_dtype
from lrlab.transforms.learning_rate import LearningRate


def check_learning_rate(learning_rate: LearningRate) -> None:
  """A multiplier ``>= 0``, an array, or a schedule ``step -> multiplier``."""
  _checks.check_given(learning_rate=learning_rate)
  _checks.check_nonnegative("learning_rate", learning_rate)


def check_growth_rate(growth_rate: Any) -> None:
  """A bound ``>= 1`` on the growth factor of an estimate per step; ``inf`` for none.

  A factor below 1 is no bound on growth: D-Adaptation's ``d`` would never leave ``d0`` and
  Prodigy's would shrink to 0 by that factor each step, the run stalling without a word.
  """
  _checks.check("growth_rate", growth_rate, lambda x: x >= 1, "a number >= 1 (inf: unbounded)")


def rate_at(learning_rate: LearningRate, count: jax.Array) -> jax.Array:
  """The multiplier at the 0-based step ``count``, as a strongly typed scalar."""
  rate = learning_rate(count) if callable(learning_rate) else learning_rate
  return jnp.asarray(rate).astype(default_float_dtype())


def need_params(name: str, params: optax.Params | None) -> None:
  """Raise the error every rule here gives when ``update`` is called without params."""
  if params is None:
    raise ValueError(
      f"{name} needs the parameters: call update(updates, state, params) with params."
    )


def strong_copy(params: optax.Params) -> optax.Params:
  """A copy of ``params`` with each leaf strongly typed (a weak leaf would turn strong)."""
  return jax.tree.map(lambda p: jnp.asarray(p).astype(jnp.result_type(p)), params)


def tree_vdot(a: Any, b: Any) -> jax.Array:
  """Sum over all leaves of ``a * b``, in the scalar dtype."""
  dtype = default_float_dtype()
  terms = [jnp.sum(x.astype(dtype) * y.astype(dtype)) for x, y in zip_leaves(a, b)]
  return sum(terms, jnp.zeros((), dtype))


def tree_sum_squares(a: Any) -> jax.Array:
  """Squared Euclidean norm of a pytree, in the scalar dtype."""
  dtype = default_float_dtype()
  return sum(
    (jnp.sum(jnp.square(x.astype(dtype))) for x in jax.tree.leaves(a)), jnp.zeros((), dtype)
  )


def tree_l1(a: Any) -> jax.Array:
  """L1 norm of a pytree, in the scalar dtype."""
  dtype = default_float_dtype()
  return sum((jnp.sum(jnp.abs(x.astype(dtype))) for x in jax.tree.leaves(a)), jnp.zeros((), dtype))


def zip_leaves(a: Any, b: Any) -> list[tuple[jax.Array, jax.Array]]:
  """Pairs of corresponding leaves of two pytrees of one structure."""
  return list(zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True))


def keep_finite(new: jax.Array, old: jax.Array) -> jax.Array:
  """``new`` where it is finite, else ``old``: a scalar statistic never turns NaN."""
  return jnp.where(jnp.isfinite(new), new, old).astype(old.dtype)


def skip_idle_step(
  learning_rate: LearningRate, state: Any, new_state: Any, updates: Any, denominator: jax.Array
):
  """``(updates, new_state)`` of a step, or a skipped step: zero updates and ``state`` kept but
  for its ``count`` and ``learning_rate`` (``new_state``'s).

  A step is skipped where the rate at ``state.count`` is 0 or the estimate's ``denominator``
  (:math:`\\lVert s_{k+1} \\rVert_1`) is 0, i.e. no gradient so far was nonzero, as the
  authors' Prodigy and D-Adapt Adam skip such a step (``if group_lr > 0.0``, then an early
  return ``if d_denom == 0``): no moment, numerator or estimate update, no move, and their
  ``k`` (the bias correction's clock, ``taken`` here) does not advance."""
  active = (rate_at(learning_rate, state.count) > 0) & (denominator != 0)
  keep = lambda new, old: jnp.where(active, new, old).astype(old.dtype)
  kept = jax.tree.map(keep, new_state, state)._replace(
    count=new_state.count, learning_rate=new_state.learning_rate
  )
  return jax.tree.map(lambda u: jnp.where(active, u, jnp.zeros_like(u)), updates), kept
