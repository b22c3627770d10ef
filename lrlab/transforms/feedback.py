"""The "bold driver": grow the step size while the loss falls, cut it when it rises."""

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.typing import ArrayLike

from lrlab import _checks
from lrlab._numerics import default_float_dtype
from lrlab.transforms.plateau import _accumulate, _check_integer, _scalar_value, _scale_updates


class LossFeedbackState(NamedTuple):
  """State of :func:`loss_feedback`.

  Attributes:
    scale: the multiplier applied to the updates; log it.
    reference: the last finite evaluation, which the next one is compared
      with; ``+inf`` before the first.
    evaluation_count: evaluations made so far (int32).
    accumulated_value: sum of the values received in the current window.
    accumulated_count: values received in the current window (int32).
  """

  scale: jax.Array
  reference: jax.Array
  evaluation_count: jax.Array
  accumulated_value: jax.Array
  accumulated_count: jax.Array


def loss_feedback(
  *,
  increase: ArrayLike = 1.05,
  decrease: ArrayLike = 0.5,
  threshold: ArrayLike = 0.0,
  min_scale: ArrayLike = 1e-3,
  max_scale: ArrayLike = 1e3,
  accumulation_steps: ArrayLike = 1,
) -> optax.GradientTransformationExtraArgs:
  r"""Scale updates up after an improving loss and down after a worsening one.

  The "bold driver" rule. The loss comes in as ``value=`` on every update;
  every ``accumulation_steps`` values are averaged into one evaluation
  :math:`a`, compared with the previous finite evaluation :math:`p`:

  .. math::

    s \leftarrow \operatorname{clip}\bigl(s \cdot
      \begin{cases}
        \text{increase} & a < p - \tau\,|p| \\
        \text{decrease} & \text{otherwise}
      \end{cases},\ s_{\min},\ s_{\max}\bigr)

  with :math:`\tau` the relative threshold. Measuring the threshold against
  :math:`|p|` keeps "improved" meaning "fell by the fraction :math:`\tau`" for
  negative losses as well (``p * (1 - threshold)`` would not). A loss that
  stays put (zero included) counts as getting worse. The first finite
  evaluation only sets the reference. The scale starts at 1 clipped to
  ``[min_scale, max_scale]``, and the updates of a call are multiplied by the
  scale *after* that call's evaluation; calls between evaluations leave it
  alone.

  Non-finite evaluations (NaN, ±inf, or a window holding one) count as getting
  worse, even before a reference exists, and never become the reference, so
  the scale falls by ``decrease`` and stays finite. Non-finite *updates* are
  scaled and passed on unchanged: handling a diverged gradient is the
  optimizer's business. The original rule also undoes the step that raised the
  loss; a transform cannot rewind parameters, so here the next step is simply
  smaller. PyTorch and Optax have no counterpart.

  Args:
    increase: multiplier after an improvement; > 1.
    decrease: multiplier otherwise, in (0, 1).
    threshold: relative improvement required, >= 0 (0: any strict decrease).
    min_scale: lower bound of the scale; >= 0.
    max_scale: upper bound of the scale; > 0 and >= ``min_scale`` (may be inf).
    accumulation_steps: values averaged into one evaluation; an integer >= 1.

  Returns:
    An ``optax.GradientTransformationExtraArgs`` whose ``update`` takes the
    loss as the keyword ``value`` and whose state is a
    :class:`LossFeedbackState`.

  Example:
    >>> import jax.numpy as jnp
    >>> import optax
    >>> from lrlab.transforms import loss_feedback
    >>> tx = optax.chain(optax.sgd(0.1), loss_feedback(increase=1.1))
    >>> params = jnp.array([1.0])
    >>> state = tx.init(params)
    >>> for loss in [3.0, 2.0, 1.0, 4.0]:  # reference, better, better, worse
    ...   updates, state = tx.update(jnp.array([1.0]), state, params, value=loss)
    >>> round(float(state[1].scale), 6)  # 1.1 * 1.1 * 0.5
    0.605

  References:
    Battiti, "Accelerated backpropagation learning: two optimization methods",
    Complex Systems 3(4):331-342 (1989), https://www.complex-systems.com/
    Vogl, Mangis, Rigler, Zink, Alkon, "Accelerating the convergence of the
    back-propagation method", Biological Cybernetics 59:257-263 (1988),
    https://doi.org/10.1007/BF00332914
  """
  _checks.check("increase", increase, lambda x: np.isfinite(x) & (x > 1), "a finite number > 1")
  _checks.check_interval("decrease", decrease, 0.0, 1.0, closed_low=False, closed_high=False)
  _checks.check_nonnegative("threshold", threshold)
  _checks.check_nonnegative("min_scale", min_scale)
  _checks.check("max_scale", max_scale, lambda x: ~np.isnan(x) & (x > 0), "a number > 0")
  _checks.check_le("min_scale", min_scale, "max_scale", max_scale)
  _check_integer("accumulation_steps", accumulation_steps, 1)

  def init_fn(params: optax.Params) -> LossFeedbackState:
    del params
    dtype = default_float_dtype()
    zero = jnp.zeros((), jnp.int32)
    return LossFeedbackState(
      scale=jnp.clip(jnp.ones((), dtype), min_scale, max_scale).astype(dtype),
      reference=jnp.asarray(jnp.inf, dtype),
      evaluation_count=zero,
      accumulated_value=jnp.zeros((), dtype),
      accumulated_count=zero,
    )

  def update_fn(
    updates: optax.Updates,
    state: LossFeedbackState,
    params: optax.Params | None = None,
    *,
    value: ArrayLike,
    **extra_args: Any,
  ) -> tuple[optax.Updates, LossFeedbackState]:
    del params, extra_args
    dtype = state.scale.dtype
    is_evaluation, a, accumulated_value, accumulated_count = _accumulate(
      state.accumulated_value,
      state.accumulated_count,
      _scalar_value(value, dtype),
      accumulation_steps,
    )

    finite = jnp.isfinite(a)
    reference = state.reference
    has_reference = jnp.isfinite(reference)
    finite_reference = jnp.where(has_reference, reference, jnp.zeros_like(reference))
    improved = (
      finite & has_reference & (a < finite_reference - threshold * jnp.abs(finite_reference))
    )
    worse = ~improved & (has_reference | ~finite)
    multiplier = jnp.where(improved, increase, jnp.where(worse, decrease, 1.0))
    new_scale = jnp.clip(state.scale * multiplier, min_scale, max_scale)
    new_reference = jnp.where(finite, a, reference)

    def on_evaluation(new: ArrayLike, old: jax.Array) -> jax.Array:
      return jnp.where(is_evaluation, new, old).astype(old.dtype)

    new_state = LossFeedbackState(
      scale=on_evaluation(new_scale, state.scale),
      reference=on_evaluation(new_reference, state.reference),
      evaluation_count=on_evaluation(
        optax.safe_increment(state.evaluation_count), state.evaluation_count
      ),
      accumulated_value=accumulated_value,
      accumulated_count=accumulated_count,
    )
    return _scale_updates(updates, new_state.scale), new_state

  return optax.GradientTransformationExtraArgs(init_fn, update_fn)
