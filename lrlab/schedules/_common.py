"""Arithmetic shared by the schedules: step conversion and annealing curves."""

import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

from lrlab import _checks


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


def accurate_power(base: ArrayLike, exponent: ArrayLike) -> jnp.ndarray:
  """``base ** exponent`` for ``base >= 0``, as ``exp(exponent * log(base))``.

  A concrete ``base`` has its log taken in float64, so a long decay does not
  compound the float32 rounding of ``base`` itself (``float32(0.99999)`` is off
  by 3e-8, which ``0.99999 ** 5e5`` turns into 0.7%). A traced ``base`` is
  already a float32 number: ``jnp.power(base, exponent)``. ``0 ** 0`` is 1, as in
  ``jnp.power``.
  """
  if _checks.is_traced(base):
    return jnp.power(base, exponent)
  with np.errstate(divide="ignore"):  # log(0) = -inf: exp(-inf) = 0 for exponent > 0
    log_base = np.log(np.asarray(base, np.float64))
  return jnp.where(exponent == 0, 1.0, jnp.exp(exponent * log_base))


def cosine_anneal(start: ArrayLike, end: ArrayLike, fraction: ArrayLike) -> jnp.ndarray:
  """Half a cosine from ``start`` (fraction 0) to ``end`` (fraction 1)."""
  return end + (start - end) * 0.5 * (1.0 + jnp.cos(jnp.pi * fraction))


def linear_anneal(start: ArrayLike, end: ArrayLike, fraction: ArrayLike) -> jnp.ndarray:
  """A straight line from ``start`` (fraction 0) to ``end`` (fraction 1).

  Anchored at the nearer end, as ``torch.lerp``: exact at both ends, so a line
  down to a small ``end`` does not lose it to float32 cancellation.
  """
  return jnp.where(
    fraction < 0.5, start + (end - start) * fraction, end - (end - start) * (1.0 - fraction)
  )
