"""Warmup: a linear ramp in front of any schedule, the inverse-square-root schedule, and WSD."""

import jax.numpy as jnp
import numpy as np
import optax
from jax.typing import ArrayLike

from lrlab import _checks
from lrlab._numerics import safe_divide
from lrlab.schedules._common import as_step, cosine_anneal, linear_anneal

WSD_ANNEAL_STRATEGIES = ("linear", "cos", "sqrt")


def _ramp(t: jnp.ndarray, warmup_steps: ArrayLike) -> jnp.ndarray:
  """``t / warmup_steps`` during warmup (1 when there is none)."""
  return jnp.minimum(safe_divide(t, warmup_steps, fallback=1.0), 1.0)


def warmup(
  schedule: optax.Schedule | ArrayLike, warmup_steps: ArrayLike, *, start_lr: ArrayLike = 0.0
) -> optax.Schedule:
  """Put a linear warmup in front of ``schedule``.

  With ``w = warmup_steps``:

  ``lr(t) = start_lr + (schedule(0) - start_lr) * t / w`` for ``t < w``,
  ``lr(t) = schedule(t - w)`` for ``t >= w``.

  The wrapped schedule starts on its own clock after the ramp, so nothing of it
  is skipped: with ``w = 1``, step 0 is ``start_lr`` and step 1 is ``schedule(0)``
  (Optax's ``warmup_*`` schedules drop a step there, optax#1403). ``w = 0`` gives
  ``schedule`` unchanged. PyTorch builds the same thing from ``LinearLR`` and
  ``SequentialLR``.

  Args:
    schedule: the schedule after warmup, or a constant rate.
    warmup_steps: length of the ramp in steps, >= 0.
    start_lr: learning rate at step 0, >= 0.

  Returns:
    A schedule ``step -> learning rate``.

  Example:
    >>> s = lrlab.schedules.warmup(lrlab.schedules.cosine_annealing(1.0, 10), 2)
    >>> [round(float(s(t)), 3) for t in (0, 1, 2, 7, 12)]
    [0.0, 0.5, 1.0, 0.5, 0.0]
  """
  _checks.check_given(schedule=schedule, warmup_steps=warmup_steps, start_lr=start_lr)
  _checks.check_nonnegative("warmup_steps", warmup_steps)
  _checks.check_nonnegative("start_lr", start_lr)
  if not callable(schedule):
    _checks.check_nonnegative("schedule", schedule)
    rate = schedule
    schedule = lambda count: jnp.asarray(rate, jnp.float32) + jnp.zeros_like(as_step(count))

  def warmed_up(count: ArrayLike) -> jnp.ndarray:
    t = as_step(count)
    ramp = linear_anneal(start_lr, schedule(jnp.zeros_like(t)), _ramp(t, warmup_steps))
    return jnp.where(t < warmup_steps, ramp, schedule(jnp.maximum(t - warmup_steps, 0.0)))

  return warmed_up


def inverse_sqrt(lr: ArrayLike, warmup_steps: ArrayLike) -> optax.Schedule:
  """Linear warmup to ``lr``, then decay with the inverse square root of the step.

  ``lr(t) = lr * t / w`` for ``t < w``, ``lr(t) = lr * sqrt(w / t)`` for ``t >= w``,
  ``w = warmup_steps``; continuous at ``t = w``.

  The schedule of the Transformer (Vaswani et al. 2017, ``d_model ** -0.5 *
  min(t ** -0.5, t * w ** -1.5)``) normalized to peak at ``lr``, as fairseq's
  ``inverse_sqrt``. PyTorch has no built-in equivalent; Optax has none either.

  Args:
    lr: peak learning rate, reached at step ``w``, >= 0.
    warmup_steps: length of the warmup, > 0.

  Returns:
    A schedule ``step -> learning rate``.

  Example:
    >>> s = lrlab.schedules.inverse_sqrt(1.0, 4)
    >>> [float(s(t)) for t in (0, 2, 4, 16)]
    [0.0, 0.5, 1.0, 0.5]

  References:
    Vaswani et al., "Attention Is All You Need", NeurIPS 2017.
    https://arxiv.org/abs/1706.03762
  """
  _checks.check_given(lr=lr, warmup_steps=warmup_steps)
  _checks.check_nonnegative("lr", lr)
  _checks.check_positive("warmup_steps", warmup_steps)

  def schedule(count: ArrayLike) -> jnp.ndarray:
    t = as_step(count)
    decay = jnp.sqrt(warmup_steps / jnp.maximum(t, warmup_steps))
    return lr * jnp.where(t < warmup_steps, _ramp(t, warmup_steps), decay)

  return schedule


def warmup_stable_decay(
  lr: ArrayLike,
  total_steps: ArrayLike,
  *,
  warmup_steps: ArrayLike,
  decay_steps: ArrayLike,
  min_lr: ArrayLike = 0.0,
  anneal_strategy: str = "linear",
) -> optax.Schedule:
  """Warmup-stable-decay (WSD): ramp up, hold ``lr``, decay over the last ``decay_steps``.

  With ``w = warmup_steps``, ``T = total_steps``, ``D = decay_steps`` and
  ``p = clip((t - (T - D)) / D, 0, 1)``:

  ``lr(t) = lr * t / w`` for ``t < w``, else
  ``lr(t) = min_lr + (lr - min_lr) * f(p)``,

  with ``f(p)`` by ``anneal_strategy``: ``1 - p`` (``"linear"``),
  ``(1 + cos(pi p)) / 2`` (``"cos"``, spelled as in PyTorch's ``OneCycleLR``) or
  ``1 - sqrt(p)`` (``"sqrt"``, the "1-sqrt" cooldown of Hägele et al.). The rate
  reaches ``min_lr`` at step ``T`` and stays there. Neither PyTorch nor Optax has
  it built in.

  Args:
    lr: learning rate of the stable phase, >= 0.
    total_steps: steps until the end of the decay, > 0.
    warmup_steps: length of the warmup, >= 0.
    decay_steps: length of the decay, > 0, with ``warmup_steps + decay_steps <= total_steps``.
    min_lr: learning rate at the end of the decay, in [0, lr].
    anneal_strategy: ``"linear"``, ``"cos"`` or ``"sqrt"`` (static).

  Returns:
    A schedule ``step -> learning rate``.

  Example:
    >>> s = lrlab.schedules.warmup_stable_decay(1.0, 10, warmup_steps=2, decay_steps=4)
    >>> [float(s(t)) for t in (0, 1, 2, 6, 8, 10)]
    [0.0, 0.5, 1.0, 1.0, 0.5, 0.0]

  References:
    Hu et al., "MiniCPM: Unveiling the Potential of Small Language Models with
    Scalable Training Strategies", 2024. https://arxiv.org/abs/2404.06395
    Hägele et al., "Scaling Laws and Compute-Optimal Training Beyond Fixed
    Training Durations", 2024. https://arxiv.org/abs/2405.18392
  """
  _checks.check_choice("anneal_strategy", anneal_strategy, WSD_ANNEAL_STRATEGIES)
  _checks.check_given(
    lr=lr,
    total_steps=total_steps,
    warmup_steps=warmup_steps,
    decay_steps=decay_steps,
    min_lr=min_lr,
  )
  _checks.check_nonnegative("lr", lr)
  _checks.check_positive("total_steps", total_steps)
  _checks.check_nonnegative("warmup_steps", warmup_steps)
  _checks.check_positive("decay_steps", decay_steps)
  _checks.check_nonnegative("min_lr", min_lr)
  _checks.check_le("min_lr", min_lr, "lr", lr)
  if not _checks.is_traced((warmup_steps, decay_steps, total_steps)):
    _checks.check_le(
      "warmup_steps + decay_steps",
      np.add(warmup_steps, decay_steps).tolist(),
      "total_steps",
      total_steps,
    )

  def schedule(count: ArrayLike) -> jnp.ndarray:
    t = as_step(count)
    # The part done, p, and the part left, r, each from its own end: steps into the decay and
    # steps left are whole numbers, so p is exactly 0 at the decay's start and r exactly 0 from
    # T on. 1 - r or 1 - p is not, under jit, where XLA may divide by multiplying by 1 / D
    # (41 * (1 / 41) < 1 in float32): 1 - sqrt(p) then started the decay 2.4e-4 below lr.
    p = jnp.clip((t - (total_steps - decay_steps)) / decay_steps, 0.0, 1.0)
    r = jnp.clip((total_steps - jnp.minimum(t, total_steps)) / decay_steps, 0.0, 1.0)
    if anneal_strategy == "linear":
      shape = jnp.where(p < 0.5, 1.0 - p, r)
    elif anneal_strategy == "cos":
      shape = cosine_anneal(1.0, 0.0, p, r)
    else:  # 1 - sqrt(p) = r / (1 + sqrt(1 - r)) near the end, without cancellation
      shape = jnp.where(p < 0.5, 1.0 - jnp.sqrt(p), r / (1.0 + jnp.sqrt(1.0 - r)))
    after_warmup = min_lr + (lr - min_lr) * shape
    return jnp.where(t < warmup_steps, lr * _ramp(t, warmup_steps), after_warmup)

  return schedule
