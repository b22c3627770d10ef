"""Arithmetic shared by the schedules: step conversion and annealing curves."""

import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

from lrlab import _checks


def as_step(count: ArrayLike) -> jnp.ndarray:
  """The step counter as float32 (exact for counts below 2**24).

  A concrete ``count`` with a negative or non-finite step is a one-line ``ValueError`` naming
  the first such step (a schedule has no rate before step 0: the formulas gave negative rates,
  rates above the peak and NaN there). A traced ``count`` cannot be checked and is clamped
  at 0, so a negative step gets step 0's rate.
  """
  if not _checks.is_traced(count):
    steps = np.asarray(count)
    bad = ~(np.isfinite(steps) & (steps >= 0))
    if np.any(bad):
      first = steps[np.unravel_index(np.argmax(bad), steps.shape)].item()
      raise ValueError(f"count must be a finite step >= 0; got {first!r}.")
  return jnp.maximum(jnp.asarray(count, jnp.float32), 0.0)


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


def cosine_anneal(
  start: ArrayLike, end: ArrayLike, fraction: ArrayLike, remaining: ArrayLike | None = None
) -> jnp.ndarray:
  """Half a cosine from ``start`` (fraction 0) to ``end`` (fraction 1).

  ``end + (start - end) * (1 + cos(pi f)) / 2``, written as
  ``start + (end - start) * sin(pi f / 2) ** 2`` for ``f < 1/2`` and
  ``end + (start - end) * sin(pi r / 2) ** 2`` after, with ``r = 1 - f`` (``remaining``, where
  the caller has it exactly; else ``1 - fraction``). Anchored at the nearer end like
  :func:`linear_anneal`, so a small end value keeps its relative accuracy: ``1 + cos`` near
  ``f = 1`` cancels in float32 (one-cycle's last steps were 1.7e-4 off PyTorch's, relative).
  """
  remaining = 1.0 - fraction if remaining is None else remaining
  near_start = start + (end - start) * jnp.square(jnp.sin(0.5 * jnp.pi * fraction))
  near_end = end + (start - end) * jnp.square(jnp.sin(0.5 * jnp.pi * remaining))
  return jnp.where(fraction < 0.5, near_start, near_end)


def linear_anneal(
  start: ArrayLike, end: ArrayLike, fraction: ArrayLike, remaining: ArrayLike | None = None
) -> jnp.ndarray:
  """A straight line from ``start`` (fraction 0) to ``end`` (fraction 1).

  Anchored at the nearer end, as ``torch.lerp``: exact at both ends, so a line
  down to a small ``end`` does not lose it to float32 cancellation. ``remaining`` is
  ``1 - fraction`` where the caller has it exactly.
  """
  remaining = 1.0 - fraction if remaining is None else remaining
  return jnp.where(
    fraction < 0.5, start + (end - start) * fraction, end - (end - start) * remaining
  )
