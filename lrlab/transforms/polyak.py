"""Stochastic Polyak step size (SPS_max): the step that would reach the optimal loss value."""

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.typing import ArrayLike

from lrlab import _checks
from lrlab._numerics import default_float_dtype
from lrlab.transforms import _free
from lrlab.transforms.learning_rate import LearningRate
from lrlab.transforms.plateau import _scalar_value


class ScaleByPolyakState(NamedTuple):
  """State of :func:`scale_by_polyak`.

  Attributes:
    count: updates made so far (int32).
    learning_rate: the step size :math:`\\alpha_t \\gamma_t` applied by the
      latest update (0 before the first); log it.
    f_star: the optimal value used: the known ``f_star``, or the current
      estimate (``+inf`` before the first finite loss) when ``f_star=None``.
  """

  count: jax.Array
  learning_rate: jax.Array
  f_star: jax.Array


def scale_by_polyak(
  learning_rate: LearningRate = 1.0,
  *,
  c: ArrayLike = 0.5,
  max_step: ArrayLike = 1.0,
  f_star: ArrayLike | None = 0.0,
  margin: ArrayLike = 0.5,
) -> optax.GradientTransformationExtraArgs:
  r"""SGD with the stochastic Polyak step size, bounded (SPS_max).

  The loss :math:`f_i(x_t)` of the batch comes in as ``value=`` on every
  update (lrlab's training core passes it):

  .. math::

    \gamma_t = \min\Bigl(\frac{\bigl(f_i(x_t) - f^\star\bigr)_+}
      {c\, \lVert g_t \rVert^2},\ \gamma_b\Bigr), \qquad
    x_{t+1} = x_t - \alpha_t \gamma_t g_t,

  with the norm over the whole pytree, :math:`\gamma_b` = ``max_step`` and
  :math:`\alpha_t` the ``learning_rate`` multiplier (1 in the paper; a
  schedule is evaluated at the 0-based count). The paper assumes
  :math:`f_i \ge f_i^\star`, so its gap is never negative; here a negative
  gap (a loss below the given :math:`f^\star`, e.g. a negative loss with the
  default 0) gives a step of 0 rather than an ascent. A zero gradient gives
  :math:`\gamma_b` times a zero update. The transform returns the final
  update (it ends a chain).

  The optimal value :math:`f^\star` is either known (``f_star``, default 0:
  right for non-negative losses of models that can interpolate the data, the
  paper's setting) or, with ``f_star=None``, estimated online. The paper
  uses a known :math:`f_i^\star` (or a lower bound on it); the estimate here
  is Polyak's "target level" with a relative margin :math:`\delta`:
  :math:`\hat f^\star_t = \min_{s \le t} \phi(f_s)` with
  :math:`\phi(f) = f - \delta \lvert f \rvert`, i.e. the best loss seen,
  lowered by the fraction :math:`\delta`. It works for negative losses, keeps
  the gap non-negative, and is invariant to rescaling the loss; on an
  interpolating problem it tends to the true :math:`f^\star = 0`. At a new
  best loss the step is :math:`\delta \lvert f \rvert / (c \lVert g
  \rVert^2)`, so the estimate never stalls the run. It is not invariant to
  shifting the loss: where the minimum is far from 0 the margin is large next
  to the remaining gap, the Polyak step grows as the gradient vanishes, and
  ``max_step`` sets the last phase's step (keep it below :math:`2/L`, as the
  paper's theory for a lower bound on :math:`f^\star` asks). A non-finite
  loss or gradient norm gives a step of 0 and leaves the estimate as it was
  (a non-finite gradient still flows into the update, times 0).

  Differences from Optax: ``optax.polyak_sgd`` has no :math:`c` (it is
  :math:`c = 1`), lets a negative gap step uphill (its ``variant="sps+"``
  clips it, as here), and applies its ``scaling`` :math:`s` *before* the
  step size is computed from the already scaled gradient, so the step is
  :math:`\min(\text{gap} / (s \lVert g \rVert^2),\ s \gamma_b)` rather
  than the documented :math:`s \min(\text{gap} / \lVert g \rVert^2,
  \gamma_b)`; the two agree at ``scaling=1``. lrlab applies its multiplier
  outside the minimum, as Optax documents. Optax has no estimate of
  :math:`f^\star`.

  Args:
    learning_rate: the multiplier :math:`\alpha \ge 0` (default 1, as in the
      paper), an array, or a schedule ``step -> multiplier``.
    c: :math:`c > 0`; the paper's theory uses 1/2 (the default), its deep
      learning experiments 0.2.
    max_step: :math:`\gamma_b > 0` (may be ``inf``: plain SPS); the paper
      leaves it to the user; 1 is Optax's default.
    f_star: the known optimal value :math:`f^\star` (any finite number), or
      ``None`` to estimate it.
    margin: :math:`\delta \in (0, 1)`, the estimate's relative margin; used
      only when ``f_star=None``.

  Returns:
    An ``optax.GradientTransformationExtraArgs`` whose ``update`` takes the
    loss as the keyword ``value`` and whose state is a
    :class:`ScaleByPolyakState`.

  Example:
    >>> import jax
    >>> import jax.numpy as jnp
    >>> import optax
    >>> from lrlab.transforms import scale_by_polyak
    >>> loss = lambda x: 0.5 * jnp.sum(x**2)
    >>> tx = scale_by_polyak()
    >>> params = jnp.array([1.0, -2.0])
    >>> state = tx.init(params)
    >>> value, grads = jax.value_and_grad(loss)(params)
    >>> updates, state = tx.update(grads, state, params, value=value)
    >>> print(optax.apply_updates(params, updates))  # f / (c |g|^2) = 1 lands at 0
    [0. 0.]

  References:
    Loizou, Vaswani, Laradji and Lacoste-Julien, `Stochastic Polyak Step-size
    for SGD: An Adaptive Learning Rate for Fast Convergence
    <https://arxiv.org/abs/2002.10542>`_, AISTATS 2021.

    Polyak, Introduction to Optimization, Optimization Software, 1987
    (section 5.3, the step size with an unknown optimal value).
  """
  _free.check_learning_rate(learning_rate)
  _checks.check_positive("c", c)
  _checks.check("max_step", max_step, lambda x: ~np.isnan(x) & (x > 0), "a number > 0")
  _checks.check("f_star", f_star, np.isfinite, "a finite number or None")
  _checks.check_interval("margin", margin, 0.0, 1.0, closed_low=False, closed_high=False)
  estimate = f_star is None

  def init_fn(params: optax.Params) -> ScaleByPolyakState:
    del params
    dtype = default_float_dtype()
    return ScaleByPolyakState(
      count=jnp.zeros([], jnp.int32),
      learning_rate=jnp.zeros([], dtype),
      f_star=jnp.asarray(jnp.inf if estimate else f_star).astype(dtype),
    )

  def update_fn(
    updates: optax.Updates,
    state: ScaleByPolyakState,
    params: optax.Params | None = None,
    *,
    value: ArrayLike,
    **extra_args: Any,
  ) -> tuple[optax.Updates, ScaleByPolyakState]:
    del params, extra_args
    dtype = state.f_star.dtype
    loss = _scalar_value(value, dtype)
    if estimate:
      level = loss - margin * jnp.abs(loss)
      target = _free.keep_finite(jnp.minimum(state.f_star, level), state.f_star)
    else:
      target = state.f_star
    squares = _free.tree_sum_squares(updates)
    gap = jnp.maximum(loss - target, 0)
    polyak = jnp.where(squares > 0, gap / (c * jnp.where(squares > 0, squares, 1)), max_step)
    gamma = jnp.minimum(polyak, max_step)
    step = _free.rate_at(learning_rate, state.count) * gamma
    finite = jnp.isfinite(loss) & jnp.isfinite(squares) & jnp.isfinite(step)
    step = jnp.where(finite, step, 0).astype(dtype)
    updates = jax.tree.map(lambda g: (-step * g).astype(g.dtype), updates)
    new_state = ScaleByPolyakState(
      count=optax.safe_int32_increment(state.count), learning_rate=step, f_star=target
    )
    return updates, new_state

  return optax.GradientTransformationExtraArgs(init_fn, update_fn)
