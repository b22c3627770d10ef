"""Reduce the step size when a monitored loss stops improving (ReduceLROnPlateau)."""

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.typing import ArrayLike

from lrlab import _checks
from lrlab._numerics import default_float_dtype

_MODES = ("min", "max")
_THRESHOLD_MODES = ("rel", "abs")


class ReduceOnPlateauState(NamedTuple):
  """State of :func:`reduce_on_plateau`.

  Attributes:
    scale: the multiplier applied to the updates (1 at the start); log it.
    best: the best evaluation so far; ``+inf`` (``-inf`` in ``"max"`` mode)
      before the first finite one.
    num_bad_evaluations: evaluations since the last improvement (int32), as in
      PyTorch's ``num_bad_epochs``.
    cooldown_counter: evaluations left in the cooldown after a reduction (int32).
    evaluation_count: evaluations made so far (int32).
    accumulated_value: sum of the values received in the current window.
    accumulated_count: values received in the current window (int32).
  """

  scale: jax.Array
  best: jax.Array
  num_bad_evaluations: jax.Array
  cooldown_counter: jax.Array
  evaluation_count: jax.Array
  accumulated_value: jax.Array
  accumulated_count: jax.Array


def _check_integer(name: str, value: Any, low: int) -> None:
  """``value`` is a whole number >= ``low`` (a patience, a cooldown, a window)."""
  _checks.check(
    name,
    value,
    lambda x: np.isfinite(x) & (x >= low) & (np.floor(x) == x),
    f"an integer >= {low}",
  )


def _scalar_value(value: ArrayLike, dtype: jnp.dtype) -> jax.Array:
  """The loss as a scalar of the state's dtype; a batch of losses is an error."""
  value = jnp.asarray(value)
  if value.ndim != 0:
    raise ValueError(f"value must be a scalar loss; got an array of shape {value.shape}.")
  return value.astype(dtype)


def _accumulate(
  total: jax.Array, count: jax.Array, value: jax.Array, accumulation_steps: ArrayLike
) -> tuple[jax.Array, jax.Array, jax.Array, jax.Array]:
  """Add ``value`` to the window; return (window full?, its mean, new sum, new count).

  The sum and count restart at zero once ``accumulation_steps`` values are in.
  """
  total = total + value
  count = count + 1
  steps = jnp.asarray(accumulation_steps).astype(jnp.int32)
  is_evaluation = count >= steps
  mean = total / steps.astype(total.dtype)
  total = jnp.where(is_evaluation, jnp.zeros_like(total), total)
  count = jnp.where(is_evaluation, jnp.zeros_like(count), count)
  return is_evaluation, mean, total, count


def _scale_updates(updates: optax.Updates, scale: jax.Array) -> optax.Updates:
  """Multiply every leaf by ``scale``, keeping each leaf's dtype."""
  return jax.tree.map(lambda u: (u * scale).astype(u.dtype), updates)


def reduce_on_plateau(
  *,
  gamma: ArrayLike = 0.1,
  patience: ArrayLike = 10,
  threshold: ArrayLike = 1e-4,
  threshold_mode: str = "rel",
  cooldown: ArrayLike = 0,
  min_scale: ArrayLike = 0.0,
  eps: ArrayLike = 1e-8,
  mode: str = "min",
  accumulation_steps: ArrayLike = 1,
) -> optax.GradientTransformationExtraArgs:
  r"""Scale updates down by ``gamma`` when the loss stops improving.

  The loss comes in as ``value=`` on every update. Every ``accumulation_steps``
  values are averaged into one *evaluation* :math:`a` (one PyTorch
  ``scheduler.step(metric)``), compared against the best evaluation so far:

  .. math::

    \text{improved} = \begin{cases}
      a < b - \tau\,|b| & \text{min, rel} \\
      a < b - \tau      & \text{min, abs} \\
      a > b + \tau\,|b| & \text{max, rel} \\
      a > b + \tau      & \text{max, abs}
    \end{cases}

  with :math:`b` the best evaluation and :math:`\tau` the threshold (the first
  finite evaluation always improves). Then, in PyTorch's order:

  1. improved: ``best = a`` and ``num_bad = 0``; otherwise ``num_bad += 1``;
  2. in cooldown (``cooldown_counter > 0``): ``cooldown_counter -= 1`` and
     ``num_bad = 0``;
  3. if ``num_bad > patience``: ``new = max(scale * gamma, min_scale)``, applied
     only if ``scale - new > eps``; then ``cooldown_counter = cooldown`` and
     ``num_bad = 0``.

  The updates of a call are multiplied by the scale *after* that call's
  evaluation, so ``state.scale`` after ``k`` evaluations equals
  ``lr / base_lr`` of ``torch.optim.lr_scheduler.ReduceLROnPlateau`` after
  ``k`` calls to ``step``. Calls between evaluations leave the scale alone.

  Defaults are PyTorch's. PyTorch's ``factor`` is ``gamma`` here, lrlab's one
  name for a decay factor, and its ``min_lr`` becomes ``min_scale``, relative
  to the base learning rate. Differences from PyTorch:

  * The relative threshold is measured against :math:`|b|`. PyTorch compares
    ``a < b * (1 - threshold)``, which for a negative ``b`` demands *less* than
    no progress: a flat negative loss counts as improving every time and the
    rate is never reduced. For positive losses both rules are identical, and
    for ``threshold=0`` or ``"abs"`` mode they agree for every sign.
  * ``eps`` is compared with the change of the *scale*; PyTorch compares it
    with the change of the absolute learning rate. With base rate ``lr``, pass
    ``eps=1e-8 / lr`` to stop exactly where PyTorch stops.
  * Non-finite evaluations (NaN, ±inf, or a window holding one) count as bad
    evaluations and never become ``best``, so ``best`` and ``scale`` stay
    finite; PyTorch would store ``-inf`` as best in ``"min"`` mode. Non-finite
    *updates* are scaled and passed on unchanged: handling a diverged gradient
    is the optimizer's business.

  Unlike ``optax.contrib.reduce_on_plateau`` (``rtol``/``atol``, evaluation
  compared with ``best * (1 - rtol) - atol``) this mirrors PyTorch's
  arguments and order, including its ``eps`` rule, and handles negative losses.

  Args:
    gamma: multiplier of the scale at a reduction, in (0, 1).
    patience: bad evaluations tolerated before a reduction; an integer >= 0.
    threshold: how much better than ``best`` an evaluation must be; >= 0.
    threshold_mode: ``"rel"`` (threshold times ``|best|``) or ``"abs"``.
    cooldown: evaluations after a reduction during which bad evaluations are
      not counted; an integer >= 0.
    min_scale: lower bound of the scale, in [0, 1].
    eps: smallest change of the scale worth applying; >= 0.
    mode: ``"min"`` (the value should fall, a loss) or ``"max"`` (it should
      rise, an accuracy).
    accumulation_steps: values averaged into one evaluation; an integer >= 1.

  Returns:
    An ``optax.GradientTransformationExtraArgs`` whose ``update`` takes the
    loss as the keyword ``value`` and whose state is a
    :class:`ReduceOnPlateauState`.

  Example:
    >>> import jax.numpy as jnp
    >>> import optax
    >>> from lrlab.transforms import reduce_on_plateau
    >>> tx = optax.chain(optax.sgd(0.1), reduce_on_plateau(patience=0))
    >>> params = jnp.array([1.0])
    >>> state = tx.init(params)
    >>> for loss in [1.0, 1.0, 1.0]:
    ...   updates, state = tx.update(jnp.array([1.0]), state, params, value=loss)
    >>> round(float(state[1].scale), 6)  # reduced at the 2nd and 3rd evaluation
    0.01

  References:
    PyTorch, ``torch.optim.lr_scheduler.ReduceLROnPlateau``,
    https://pytorch.org/docs/stable/generated/torch.optim.lr_scheduler.ReduceLROnPlateau.html
    Optax PR #1767 (the relative threshold for negative losses),
    https://github.com/google-deepmind/optax/pull/1767
  """
  _checks.check_interval("gamma", gamma, 0.0, 1.0, closed_low=False, closed_high=False)
  _check_integer("patience", patience, 0)
  _checks.check_nonnegative("threshold", threshold)
  _checks.check_choice("threshold_mode", threshold_mode, _THRESHOLD_MODES)
  _check_integer("cooldown", cooldown, 0)
  _checks.check_interval("min_scale", min_scale, 0.0, 1.0)
  _checks.check_nonnegative("eps", eps)
  _checks.check_choice("mode", mode, _MODES)
  _check_integer("accumulation_steps", accumulation_steps, 1)

  def init_fn(params: optax.Params) -> ReduceOnPlateauState:
    del params
    dtype = default_float_dtype()
    worst = jnp.inf if mode == "min" else -jnp.inf
    zero = jnp.zeros((), jnp.int32)
    return ReduceOnPlateauState(
      scale=jnp.ones((), dtype),
      best=jnp.asarray(worst, dtype),
      num_bad_evaluations=zero,
      cooldown_counter=zero,
      evaluation_count=zero,
      accumulated_value=jnp.zeros((), dtype),
      accumulated_count=zero,
    )

  def update_fn(
    updates: optax.Updates,
    state: ReduceOnPlateauState,
    params: optax.Params | None = None,
    *,
    value: ArrayLike,
    **extra_args: Any,
  ) -> tuple[optax.Updates, ReduceOnPlateauState]:
    del params, extra_args
    dtype = state.scale.dtype
    is_evaluation, a, accumulated_value, accumulated_count = _accumulate(
      state.accumulated_value,
      state.accumulated_count,
      _scalar_value(value, dtype),
      accumulation_steps,
    )

    best = state.best
    has_best = jnp.isfinite(best)
    finite_best = jnp.where(has_best, best, jnp.zeros_like(best))
    margin = threshold * jnp.abs(finite_best) if threshold_mode == "rel" else threshold
    beats_best = a < finite_best - margin if mode == "min" else a > finite_best + margin
    improved = jnp.isfinite(a) & (~has_best | beats_best)

    new_best = jnp.where(improved, a, best)
    num_bad = jnp.where(improved, 0, optax.safe_increment(state.num_bad_evaluations))
    in_cooldown = state.cooldown_counter > 0
    cooldown_counter = jnp.where(in_cooldown, state.cooldown_counter - 1, state.cooldown_counter)
    num_bad = jnp.where(in_cooldown, 0, num_bad)

    reduce = num_bad > patience
    reduced = jnp.maximum(state.scale * gamma, min_scale).astype(dtype)
    new_scale = jnp.where(reduce & (state.scale - reduced > eps), reduced, state.scale)
    cooldown_counter = jnp.where(reduce, jnp.asarray(cooldown).astype(jnp.int32), cooldown_counter)
    num_bad = jnp.where(reduce, 0, num_bad)

    def on_evaluation(new: ArrayLike, old: jax.Array) -> jax.Array:
      return jnp.where(is_evaluation, new, old).astype(old.dtype)

    new_state = ReduceOnPlateauState(
      scale=on_evaluation(new_scale, state.scale),
      best=on_evaluation(new_best, state.best),
      num_bad_evaluations=on_evaluation(num_bad, state.num_bad_evaluations),
      cooldown_counter=on_evaluation(cooldown_counter, state.cooldown_counter),
      evaluation_count=on_evaluation(
        optax.safe_increment(state.evaluation_count), state.evaluation_count
      ),
      accumulated_value=accumulated_value,
      accumulated_count=accumulated_count,
    )
    return _scale_updates(updates, new_state.scale), new_state

  return optax.GradientTransformationExtraArgs(init_fn, update_fn)
