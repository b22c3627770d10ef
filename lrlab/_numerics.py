"""Arithmetic helpers shared across lrlab: the default float dtype and a guarded division."""

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike


def default_float_dtype() -> jnp.dtype:
  """The default float dtype: float32, or float64 under ``jax_enable_x64``.

  Scalars of the adaptive rules' states (a scale, a best loss, the estimate
  ``d``, the applied rate) are kept in it whatever the parameters' dtype.
  """
  return jax.dtypes.canonicalize_dtype(jnp.float64)


def safe_divide(numerator: ArrayLike, denominator: ArrayLike, *, fallback: ArrayLike) -> jax.Array:
  """``numerator / denominator`` where ``denominator > 0``, else ``fallback``.

  The division never sees a zero or negative denominator, so neither the value
  nor its gradient turns NaN. The fallback is the caller's meaning of an empty
  quotient: 1 for the fraction of a phase of zero length (it counts as
  finished), 0 for a step size estimated from nothing yet.

  Example:
    >>> float(safe_divide(3.0, 0.0, fallback=1.0)), float(safe_divide(3.0, 2.0, fallback=1.0))
    (1.0, 1.5)
  """
  positive = denominator > 0
  return jnp.where(positive, numerator / jnp.where(positive, denominator, 1), fallback)
