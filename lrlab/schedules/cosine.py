"""Cosine annealing and its warm-restart form (SGDR)."""

import jax.numpy as jnp
import optax
from jax.typing import ArrayLike

from lrlab import _checks
from lrlab.schedules._common import as_step, cosine_anneal, floor_divide


def cosine_annealing(
  lr: ArrayLike, total_steps: ArrayLike, *, min_lr: ArrayLike = 0.0
) -> optax.Schedule:
  """Half a cosine from ``lr`` down to ``min_lr`` over ``total_steps``, then constant.

  ``lr(t) = min_lr + (lr - min_lr) * (1 + cos(pi * min(t, T) / T)) / 2``, ``T = total_steps``.

  Equals PyTorch's ``CosineAnnealingLR(optimizer, T_max=T, eta_min=min_lr)`` for
  ``t <= T``. After ``T`` PyTorch keeps following the cosine, so its rate rises
  back to ``lr`` at ``2T``; lrlab stays at ``min_lr`` (use :func:`warm_restarts`
  for restarts). Optax's ``cosine_decay_schedule`` has the same curve with
  ``alpha = min_lr / lr`` and an optional ``exponent``.

  Args:
    lr: initial (maximum) learning rate, >= 0.
    total_steps: steps of the decay, > 0.
    min_lr: final learning rate, in [0, lr].

  Returns:
    A schedule ``step -> learning rate``.

  Example:
    >>> s = lrlab.schedules.cosine_annealing(1.0, 10)
    >>> [round(float(s(t)), 4) for t in (0, 5, 10, 20)]
    [1.0, 0.5, 0.0, 0.0]

  References:
    Loshchilov & Hutter, "SGDR: Stochastic Gradient Descent with Warm Restarts",
    ICLR 2017. https://arxiv.org/abs/1608.03983
  """
  _checks.check_given(lr=lr, total_steps=total_steps, min_lr=min_lr)
  _checks.check_nonnegative("lr", lr)
  _checks.check_positive("total_steps", total_steps)
  _checks.check_nonnegative("min_lr", min_lr)
  _checks.check_le("min_lr", min_lr, "lr", lr)

  def schedule(count: ArrayLike) -> jnp.ndarray:
    t = jnp.minimum(as_step(count), total_steps)
    return cosine_anneal(lr, min_lr, t / total_steps, (total_steps - t) / total_steps)

  return schedule


def warm_restarts(
  lr: ArrayLike, period: ArrayLike, *, period_mult: ArrayLike = 1, min_lr: ArrayLike = 0.0
) -> optax.Schedule:
  """Cosine annealing with warm restarts (SGDR).

  Cycle ``i`` lasts ``T_i = period * period_mult ** i`` steps and starts at
  ``S_i = period * (period_mult ** i - 1) / (period_mult - 1)`` (``period * i`` when
  ``period_mult == 1``). Within it, with ``t_i = t - S_i``:

  ``lr(t) = min_lr + (lr - min_lr) * (1 + cos(pi * t_i / T_i)) / 2``

  Equals PyTorch's ``CosineAnnealingWarmRestarts(optimizer, T_0=period,
  T_mult=period_mult, eta_min=min_lr)`` stepped once per step. PyTorch requires an
  integer ``T_mult``; here any ``period_mult >= 1`` works. Optax's
  ``sgdr_schedule`` instead takes an explicit list of cycles (and, unlike this
  function, cannot vmap over the period).

  Args:
    lr: learning rate at the start of every cycle, >= 0.
    period: length of the first cycle in steps, > 0.
    period_mult: growth factor of successive cycles, in [1, 1e6).
    min_lr: learning rate at the end of every cycle, in [0, lr].

  Returns:
    A schedule ``step -> learning rate``.

  Example:
    >>> s = lrlab.schedules.warm_restarts(1.0, 4, period_mult=2)
    >>> [round(float(s(t)), 3) for t in (0, 2, 4, 8, 12)]
    [1.0, 0.5, 1.0, 0.5, 1.0]

  References:
    Loshchilov & Hutter, "SGDR: Stochastic Gradient Descent with Warm Restarts",
    ICLR 2017. https://arxiv.org/abs/1608.03983
  """
  _checks.check_given(lr=lr, period=period, period_mult=period_mult, min_lr=min_lr)
  _checks.check_nonnegative("lr", lr)
  _checks.check_positive("period", period)
  _checks.check("period_mult", period_mult, lambda m: (m >= 1) & (m < 1e6), "a number in [1, 1e6)")
  _checks.check_nonnegative("min_lr", min_lr)
  _checks.check_le("min_lr", min_lr, "lr", lr)

  def schedule(count: ArrayLike) -> jnp.ndarray:
    t = as_step(count)
    growing = period_mult > 1
    # Geometric cycles: invert S_n = period (m^n - 1) / (m - 1) for n, then
    # correct the float estimate by one either way so boundaries are exact.
    # The corrections compare S_n (m - 1) = period (m^n - 1) with t (m - 1): products of
    # whole numbers are exact, a quotient by (m - 1) is not under jit (XLA may multiply
    # by its reciprocal), which put some restarts one step late.
    m = jnp.where(growing, period_mult, 2.0)
    scaled_start = lambda n: period * (jnp.power(m, n) - 1.0)
    scaled_t = t * (m - 1.0)
    n = jnp.floor(jnp.log1p(t / period * (m - 1.0)) / jnp.log(m))
    n = jnp.where(scaled_start(n) > scaled_t, n - 1.0, n)
    n = jnp.where(scaled_start(n + 1.0) <= scaled_t, n + 1.0, n)
    geometric_position = (scaled_t - scaled_start(n)) / (m - 1.0)
    geometric_length = period * jnp.power(m, n)
    # A non-integer m rounds both sides of those comparisons: a step on a restart could
    # still be counted as the end of the cycle before it (period 100, m 1.01, step 201).
    passed = geometric_position >= geometric_length
    geometric_position = jnp.where(
      passed, geometric_position - geometric_length, geometric_position
    )
    geometric_length = jnp.where(passed, geometric_length * m, geometric_length)
    # Equal cycles.
    equal_position = t - floor_divide(t, period) * period
    position = jnp.where(growing, geometric_position, equal_position)
    length = jnp.where(growing, geometric_length, period)
    return cosine_anneal(lr, min_lr, position / length, (length - position) / length)

  return schedule
