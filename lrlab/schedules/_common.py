"""Arithmetic shared by the schedules: step conversion and annealing curves."""

import jax.numpy as jnp
from jax.typing import ArrayLike


def as_step(count: ArrayLike) -> jnp.ndarray:
  """The step counter as float32 (exact for counts below 2**24)."""
  return jnp.asarray(count, jnp.float32)


def floor_divide(t: ArrayLike, period: ArrayLike) -> jnp.ndarray:
  """``floor(t / period)``, exact at multiples of ``period``.

  Under ``jit`` XLA may rewrite division by a constant as multiplication by its
  reciprocal, so ``floor(97 / 97)`` can come out as 0. The estimate is corrected
  by one either way using products, which are exact for integer-valued floats.
  """
  q = jnp.floor(t / period)
  q = jnp.where(q * period > t, q - 1.0, q)
  return jnp.where((q + 1.0) * period <= t, q + 1.0, q)


def cosine_anneal(start: ArrayLike, end: ArrayLike, fraction: ArrayLike) -> jnp.ndarray:
  """Half a cosine from ``start`` (fraction 0) to ``end`` (fraction 1)."""
  return end + (start - end) * 0.5 * (1.0 + jnp.cos(jnp.pi * fraction))


def linear_anneal(start: ArrayLike, end: ArrayLike, fraction: ArrayLike) -> jnp.ndarray:
  """A straight line from ``start`` (fraction 0) to ``end`` (fraction 1)."""
  return start + (end - start) * fraction
