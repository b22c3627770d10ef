"""Cyclical learning rates (CLR) and the one-cycle policy."""

import jax.numpy as jnp
import optax
from jax.typing import ArrayLike

from lrlab import _checks
from lrlab._numerics import safe_divide
from lrlab.schedules._common import (
  accurate_power,
  as_step,
  cosine_anneal,
  floor_divide,
  linear_anneal,
)

CYCLICAL_POLICIES = ("triangular", "triangular2", "exp_range")


def cyclical(
  base_lr: ArrayLike,
  max_lr: ArrayLike,
  step_size_up: ArrayLike,
  *,
  step_size_down: ArrayLike | None = None,
  policy: str = "triangular",
  gamma: ArrayLike = 1.0,
) -> optax.Schedule:
  """Smith's cyclical learning rate: a triangle wave between ``base_lr`` and ``max_lr``.

  With ``up = step_size_up``, ``down = step_size_down`` (default ``up``) and
  cycle length ``C = up + down``, step ``t`` is in cycle ``c = floor(t / C) + 1`` at
  position ``p = t - (c - 1) C``, and

  ``lr(t) = base_lr + (max_lr - base_lr) * h(p) * s``,
  ``h(p) = p / up`` rising, ``(C - p) / down`` falling,

  with the amplitude scale ``s`` by ``policy``: ``1`` (``"triangular"``),
  ``1 / 2 ** (c - 1)`` (``"triangular2"``, halved every cycle) or ``gamma ** t``
  (``"exp_range"``).

  Equals PyTorch's ``CyclicLR(optimizer, base_lr, max_lr, step_size_up,
  step_size_down, mode=policy, gamma)`` (PyTorch's ``step_size_up`` defaults to
  2000; here it is required). PyTorch calls ``policy`` ``mode``; lrlab keeps
  ``mode`` for the direction of a monitored value (``"min"``/``"max"``), and
  Smith calls these variants policies. Optax has no cyclical schedule.

  Args:
    base_lr: lower bound of the cycle, >= 0.
    max_lr: upper bound of the cycle, >= base_lr.
    step_size_up: steps from ``base_lr`` up to ``max_lr``, > 0.
    step_size_down: steps back down, > 0; ``None`` means ``step_size_up``.
    policy: ``"triangular"``, ``"triangular2"`` or ``"exp_range"`` (static).
    gamma: per-step amplitude decay of ``"exp_range"``, in (0, 1].

  Returns:
    A schedule ``step -> learning rate``.

  Example:
    >>> s = lrlab.schedules.cyclical(0.1, 1.0, 2)
    >>> [round(float(s(t)), 2) for t in range(5)]
    [0.1, 0.55, 1.0, 0.55, 0.1]

  References:
    Smith, "Cyclical Learning Rates for Training Neural Networks", WACV 2017.
    https://arxiv.org/abs/1506.01186
  """
  _checks.check_choice("policy", policy, CYCLICAL_POLICIES)
  _checks.check_given(base_lr=base_lr, max_lr=max_lr, step_size_up=step_size_up, gamma=gamma)
  _checks.check_nonnegative("base_lr", base_lr)
  _checks.check_nonnegative("max_lr", max_lr)
  _checks.check_le("base_lr", base_lr, "max_lr", max_lr)
  _checks.check_positive("step_size_up", step_size_up)
  _checks.check_positive("step_size_down", step_size_down)
  _checks.check_interval("gamma", gamma, 0.0, 1.0, closed_low=False)
  up = step_size_up
  down = step_size_up if step_size_down is None else step_size_down

  def schedule(count: ArrayLike) -> jnp.ndarray:
    t = as_step(count)
    length = up + down
    cycle = floor_divide(t, length) + 1.0
    position = t - (cycle - 1.0) * length
    height = jnp.where(position <= up, position / up, (length - position) / down)
    if policy == "triangular":
      scale = 1.0
    elif policy == "triangular2":
      scale = jnp.power(0.5, cycle - 1.0)
    else:
      scale = accurate_power(gamma, t)
    return base_lr + (max_lr - base_lr) * height * scale

  return schedule


def one_cycle(
  max_lr: ArrayLike,
  total_steps: ArrayLike,
  *,
  pct_start: ArrayLike = 0.3,
  div_factor: ArrayLike = 25.0,
  final_div_factor: ArrayLike = 1e4,
  anneal_strategy: str = "cos",
  three_phase: bool = False,
) -> optax.Schedule:
  """The one-cycle policy: warm up to ``max_lr``, then anneal far below the start.

  With ``T = total_steps``, ``initial = max_lr / div_factor`` and
  ``final = initial / final_div_factor``, the phases end at PyTorch's steps:

  - two phases: ``initial -> max_lr`` until ``pct_start * T - 1``, then
    ``max_lr -> final`` until ``T - 1``;
  - three phases: ``initial -> max_lr`` until ``pct_start * T - 1``,
    ``max_lr -> initial`` until ``2 pct_start * T - 2``, ``initial -> final``
    until ``T - 1``.

  Each phase follows ``anneal_strategy`` (half cosine or straight line) from its start
  value to its end value. After ``T - 1`` the rate stays at ``final`` (PyTorch
  extrapolates the last phase one step further, to step ``T``, and raises an error after
  it). A phase of zero length jumps to its end value.

  Equals PyTorch's ``OneCycleLR(optimizer, max_lr, total_steps, pct_start,
  anneal_strategy, div_factor=25, final_div_factor=1e4, three_phase)`` with its
  defaults. Optax's ``cosine_onecycle_schedule`` places its phase boundaries at
  ``pct_start * T`` and ``T`` instead, so it is one step later.

  Args:
    max_lr: peak learning rate, >= 0.
    total_steps: length of the cycle, > 0.
    pct_start: fraction of the cycle spent warming up, in (0, 1).
    div_factor: ``initial = max_lr / div_factor``, > 0.
    final_div_factor: ``final = initial / final_div_factor``, > 0.
    anneal_strategy: ``"cos"`` or ``"linear"`` (static).
    three_phase: use PyTorch's symmetric three-phase variant (static).

  Returns:
    A schedule ``step -> learning rate``.

  Example:
    >>> s = lrlab.schedules.one_cycle(1.0, 100)
    >>> [round(float(s(t)), 4) for t in (0, 29, 99)]
    [0.04, 1.0, 0.0]

  References:
    Smith & Topin, "Super-Convergence: Very Fast Training of Neural Networks
    Using Large Learning Rates", 2017. https://arxiv.org/abs/1708.07120
  """
  _checks.check_choice("anneal_strategy", anneal_strategy, ("cos", "linear"))
  _checks.check_given(
    max_lr=max_lr,
    total_steps=total_steps,
    pct_start=pct_start,
    div_factor=div_factor,
    final_div_factor=final_div_factor,
  )
  _checks.check_nonnegative("max_lr", max_lr)
  _checks.check_positive("total_steps", total_steps)
  _checks.check_interval("pct_start", pct_start, 0.0, 1.0, closed_low=False, closed_high=False)
  _checks.check_positive("div_factor", div_factor)
  _checks.check_positive("final_div_factor", final_div_factor)
  interpolate = cosine_anneal if anneal_strategy == "cos" else linear_anneal
  initial_lr = max_lr / div_factor
  final_lr = initial_lr / final_div_factor

  def schedule(count: ArrayLike) -> jnp.ndarray:
    t = jnp.clip(as_step(count), 0.0, total_steps - 1.0)
    warm_end = pct_start * total_steps - 1.0
    if three_phase:
      ends = (warm_end, 2.0 * pct_start * total_steps - 2.0, total_steps - 1.0)
      values = (initial_lr, max_lr, initial_lr, final_lr)
    else:
      ends = (warm_end, total_steps - 1.0)
      values = (initial_lr, max_lr, final_lr)
    # PyTorch picks the first phase whose end is >= t, else the last phase.
    lr = None
    for i in reversed(range(len(ends))):
      phase_start = ends[i - 1] if i > 0 else 0.0
      # A phase of zero length counts as finished: it jumps to its end value. The
      # fraction is 1 minus the part left, so it is exactly 1 at the phase's end.
      remaining = safe_divide(ends[i] - t, ends[i] - phase_start, fallback=0.0)
      value = interpolate(values[i], values[i + 1], 1.0 - remaining, remaining)
      lr = value if lr is None else jnp.where(t <= ends[i], value, lr)
    return lr

  return schedule
