"""Monotone decays: constant, step, multistep, exponential, inverse-time, polynomial, linear.

Every numeric argument may be a traced array (the rule of ARCHITECTURE.md); the argument
checks run only on concrete values.
"""

from collections.abc import Sequence

import jax.numpy as jnp
import numpy as np
import optax
from jax.typing import ArrayLike

from lrlab import _checks
from lrlab.schedules._common import accurate_power, as_step, floor_divide, linear_anneal


def constant(lr: ArrayLike) -> optax.Schedule:
  """A constant learning rate, ``lr(t) = lr``.

  Args:
    lr: the learning rate, >= 0.

  Returns:
    A schedule ``step -> lr``; an array of steps gives an array of rates.

  Example:
    >>> import lrlab
    >>> float(lrlab.schedules.constant(0.1)(7))
    0.1...
  """
  _checks.check_given(lr=lr)
  _checks.check_nonnegative("lr", lr)

  def schedule(count: ArrayLike) -> jnp.ndarray:
    return jnp.asarray(lr, jnp.float32) + jnp.zeros_like(as_step(count))

  return schedule


def step_decay(lr: ArrayLike, step_size: ArrayLike, gamma: ArrayLike = 0.1) -> optax.Schedule:
  """Multiply the rate by ``gamma`` every ``step_size`` steps.

  ``lr(t) = lr * gamma ** floor(t / step_size)``

  Equals PyTorch's ``StepLR(optimizer, step_size, gamma)`` with the same default
  ``gamma=0.1``: ``lr(t)`` is the rate after ``t`` calls of ``scheduler.step()``.
  Optax spells it ``exponential_decay(..., staircase=True)``.

  Args:
    lr: initial learning rate, >= 0.
    step_size: steps between decays, > 0.
    gamma: multiplicative factor, >= 0.

  Returns:
    A schedule ``step -> learning rate``.

  Example:
    >>> s = lrlab.schedules.step_decay(1.0, step_size=10, gamma=0.5)
    >>> [float(s(t)) for t in (0, 9, 10, 25)]
    [1.0, 1.0, 0.5, 0.25]
  """
  _checks.check_given(lr=lr, step_size=step_size, gamma=gamma)
  _checks.check_nonnegative("lr", lr)
  _checks.check_positive("step_size", step_size)
  _checks.check_nonnegative("gamma", gamma)

  def schedule(count: ArrayLike) -> jnp.ndarray:
    return lr * accurate_power(gamma, floor_divide(as_step(count), step_size))

  return schedule


def multistep_decay(
  lr: ArrayLike, milestones: Sequence[int] | ArrayLike, gamma: ArrayLike = 0.1
) -> optax.Schedule:
  """Multiply the rate by ``gamma`` at each milestone.

  ``lr(t) = lr * gamma ** #{i : milestones[i] <= t}``

  Equals PyTorch's ``MultiStepLR(optimizer, milestones, gamma)`` (default
  ``gamma=0.1``), including a repeated milestone decaying twice. The number of
  milestones is static; their values may be traced, so a sweep can vmap over a
  ``(K, num_milestones)`` array. Optax's ``piecewise_constant_schedule`` takes a
  dict of per-boundary scales instead.

  Args:
    lr: initial learning rate, >= 0.
    milestones: non-decreasing steps >= 0 at which the rate decays.
    gamma: multiplicative factor, >= 0.

  Returns:
    A schedule ``step -> learning rate``.

  Example:
    >>> s = lrlab.schedules.multistep_decay(1.0, [3, 5], gamma=0.1)
    >>> [round(float(s(t)), 4) for t in (0, 3, 4, 5)]
    [1.0, 0.1, 0.1, 0.01]
  """
  _checks.check_given(lr=lr, milestones=milestones, gamma=gamma)
  _checks.check_nonnegative("lr", lr)
  _checks.check_nonnegative("gamma", gamma)
  _checks.check_nonnegative("milestones", milestones)
  _checks.check(
    "milestones",
    milestones,
    lambda m: np.all(np.diff(m, axis=-1) >= 0) if m.ndim else True,
    "a non-decreasing sequence of steps >= 0",
  )
  milestones = jnp.asarray(milestones, jnp.float32)

  def schedule(count: ArrayLike) -> jnp.ndarray:
    t = as_step(count)
    passed = jnp.sum(milestones <= t[..., None], axis=-1)
    return lr * accurate_power(gamma, passed.astype(jnp.float32))

  return schedule


def exponential_decay(
  lr: ArrayLike,
  gamma: ArrayLike,
  *,
  step_size: ArrayLike = 1,
  staircase: bool = False,
  min_lr: ArrayLike = 0.0,
) -> optax.Schedule:
  """Exponential decay floored at ``min_lr``.

  ``lr(t) = max(lr * gamma ** (t / step_size), min_lr)``, with
  ``floor(t / step_size)`` when ``staircase=True``.

  With ``step_size=1`` and ``min_lr=0`` this is PyTorch's
  ``ExponentialLR(optimizer, gamma)``. Optax's ``exponential_decay`` takes
  ``transition_steps`` and ``decay_rate`` for ``step_size`` and ``gamma``, counts from an
  optional ``transition_begin`` and calls the floor ``end_value``.

  Args:
    lr: initial learning rate, >= 0.
    gamma: decay factor per ``step_size`` steps, > 0.
    step_size: steps over which the rate is multiplied by ``gamma``, > 0.
    staircase: decay in discrete jumps (static).
    min_lr: floor, in [0, lr].

  Returns:
    A schedule ``step -> learning rate``.

  Example:
    >>> s = lrlab.schedules.exponential_decay(1.0, 0.5, step_size=2)
    >>> [float(s(t)) for t in (0, 2, 3)]
    [1.0, 0.5, 0.35...]
  """
  _checks.check_given(lr=lr, gamma=gamma, step_size=step_size, min_lr=min_lr)
  _checks.check_nonnegative("lr", lr)
  _checks.check_positive("gamma", gamma)
  _checks.check_positive("step_size", step_size)
  _checks.check_nonnegative("min_lr", min_lr)
  _checks.check_le("min_lr", min_lr, "lr", lr)

  def schedule(count: ArrayLike) -> jnp.ndarray:
    t = as_step(count)
    p = floor_divide(t, step_size) if staircase else t / step_size
    return jnp.maximum(lr * accurate_power(gamma, p), min_lr)

  return schedule


def inverse_time_decay(
  lr: ArrayLike, gamma: ArrayLike, *, step_size: ArrayLike = 1, staircase: bool = False
) -> optax.Schedule:
  """Inverse-time decay, as in Keras' ``InverseTimeDecay``.

  ``lr(t) = lr / (1 + gamma * t / step_size)``, with
  ``floor(t / step_size)`` when ``staircase=True``. PyTorch has no such
  scheduler; it is the classical ``1/t`` rate of stochastic approximation
  (Robbins & Monro 1951). Keras calls ``gamma`` ``decay_rate`` and
  ``step_size`` ``decay_steps``; Caffe's ``"inv"`` policy calls it ``gamma``.

  Args:
    lr: initial learning rate, >= 0.
    gamma: decay coefficient per ``step_size`` steps, >= 0.
    step_size: steps per unit of decay, > 0.
    staircase: decay in discrete jumps (static).

  Returns:
    A schedule ``step -> learning rate``.

  Example:
    >>> s = lrlab.schedules.inverse_time_decay(1.0, 1.0)
    >>> [float(s(t)) for t in (0, 1, 3)]
    [1.0, 0.5, 0.25]
  """
  _checks.check_given(lr=lr, gamma=gamma, step_size=step_size)
  _checks.check_nonnegative("lr", lr)
  _checks.check_nonnegative("gamma", gamma)
  _checks.check_positive("step_size", step_size)

  def schedule(count: ArrayLike) -> jnp.ndarray:
    t = as_step(count)
    p = floor_divide(t, step_size) if staircase else t / step_size
    return lr / (1.0 + gamma * p)

  return schedule


def polynomial_decay(
  lr: ArrayLike, total_steps: ArrayLike, *, power: ArrayLike = 1.0, min_lr: ArrayLike = 0.0
) -> optax.Schedule:
  """Polynomial decay from ``lr`` to ``min_lr`` over ``total_steps``.

  ``lr(t) = min_lr + (lr - min_lr) * (1 - min(t, T) / T) ** power``, ``T = total_steps``;
  constant at ``min_lr`` after ``T``.

  With ``min_lr=0`` this is PyTorch's ``PolynomialLR(optimizer, total_iters=T,
  power=power)`` (whose ``total_iters`` defaults to 5; here it is required).
  Optax's ``polynomial_schedule`` is the same curve with ``init_value``,
  ``end_value`` and ``transition_steps``.

  Args:
    lr: initial learning rate, >= 0.
    total_steps: steps to reach ``min_lr``, > 0.
    power: exponent of the decay, > 0.
    min_lr: final learning rate, >= 0.

  Returns:
    A schedule ``step -> learning rate``.

  Example:
    >>> s = lrlab.schedules.polynomial_decay(1.0, 4, power=2.0)
    >>> [float(s(t)) for t in (0, 2, 4, 9)]
    [1.0, 0.25, 0.0, 0.0]
  """
  _checks.check_given(lr=lr, total_steps=total_steps, power=power, min_lr=min_lr)
  _checks.check_nonnegative("lr", lr)
  _checks.check_positive("total_steps", total_steps)
  _checks.check_positive("power", power)
  _checks.check_nonnegative("min_lr", min_lr)

  def schedule(count: ArrayLike) -> jnp.ndarray:
    # T - min(t, T) is exact, so the base is exactly 0 from T on; 1 - min(t, T) / T is
    # not under jit, where XLA may divide by multiplying by 1 / T (a negative base then
    # gives NaN for power < 1, a positive one a rate that never reaches min_lr).
    remaining = (total_steps - jnp.minimum(as_step(count), total_steps)) / total_steps
    return min_lr + (lr - min_lr) * jnp.power(remaining, power)

  return schedule


def linear(start_lr: ArrayLike, end_lr: ArrayLike, total_steps: ArrayLike) -> optax.Schedule:
  """Linear interpolation from ``start_lr`` to ``end_lr`` over ``total_steps``, then constant.

  ``lr(t) = start_lr + (end_lr - start_lr) * min(t, T) / T``, ``T = total_steps``.

  PyTorch's ``LinearLR(optimizer, start_factor, end_factor, total_iters=T)`` is the
  same curve in factors of the optimizer's rate: ``start_lr = lr * start_factor``,
  ``end_lr = lr * end_factor``. Optax calls it ``linear_schedule``. Works as a
  warmup (``start_lr < end_lr``) or a decay.

  Args:
    start_lr: learning rate at step 0, >= 0.
    end_lr: learning rate from step ``T`` on, >= 0.
    total_steps: length of the ramp, > 0.

  Returns:
    A schedule ``step -> learning rate``.

  Example:
    >>> s = lrlab.schedules.linear(0.0, 1.0, 4)
    >>> [float(s(t)) for t in (0, 1, 4, 8)]
    [0.0, 0.25, 1.0, 1.0]
  """
  _checks.check_given(start_lr=start_lr, end_lr=end_lr, total_steps=total_steps)
  _checks.check_nonnegative("start_lr", start_lr)
  _checks.check_nonnegative("end_lr", end_lr)
  _checks.check_positive("total_steps", total_steps)

  def schedule(count: ArrayLike) -> jnp.ndarray:
    # The part done, t / T, is exactly 0 at step 0 and the part left, (T - min(t, T)) / T,
    # exactly 0 from T on, also under jit (1 minus either is not: XLA may divide by
    # multiplying by 1 / T).
    t = jnp.minimum(as_step(count), total_steps)
    return linear_anneal(start_lr, end_lr, t / total_steps, (total_steps - t) / total_steps)

  return schedule
