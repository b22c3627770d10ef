"""DoG, "Distance over Gradients": SGD whose step is the distance travelled over the gradients."""

from typing import NamedTuple

import jax
import jax.numpy as jnp
import optax
from jax.typing import ArrayLike

from lrlab import _checks
from lrlab._numerics import default_float_dtype, safe_divide
from lrlab.transforms import _free
from lrlab.transforms.learning_rate import LearningRate


class ScaleByDogState(NamedTuple):
  """State of :func:`scale_by_dog`.

  Attributes:
    count: updates made so far (int32).
    learning_rate: the step size :math:`\\eta_t` applied by the latest update
      (multiplier included; 0 before the first); log it.
    initial_params: the starting point :math:`x_0`.
    max_distance: :math:`\\bar r_t`, the largest distance from :math:`x_0`
      seen so far (:math:`r_\\epsilon` before the first update).
    sum_squared_norms: :math:`G_t = \\sum_{i \\le t} \\lVert g_i \\rVert^2`.
  """

  count: jax.Array
  learning_rate: jax.Array
  initial_params: optax.Params
  max_distance: jax.Array
  sum_squared_norms: jax.Array


def scale_by_dog(
  learning_rate: LearningRate = 1.0,
  *,
  reps_rel: ArrayLike = 1e-6,
  initial_distance: ArrayLike | None = None,
) -> optax.GradientTransformation:
  r"""SGD with DoG's parameter-free step size (the paper's Algorithm 1).

  .. math::

    \bar r_t = \max\bigl(\bar r_{t-1}, \lVert x_t - x_0 \rVert\bigr), \quad
    \bar r_{-1} = r_\epsilon, \qquad
    G_t = G_{t-1} + \lVert g_t \rVert^2, \\
    \eta_t = \alpha_t \frac{\bar r_t}{\sqrt{G_t}}, \qquad
    x_{t+1} = x_t - \eta_t g_t,

  with norms over the whole pytree, :math:`r_\epsilon = \text{reps\_rel}
  \cdot (1 + \lVert x_0 \rVert)` (the paper's choice, ``reps_rel=1e-6``)
  unless ``initial_distance`` gives it, and :math:`\alpha_t` the
  ``learning_rate`` multiplier (1 in the paper; a schedule is evaluated at the
  0-based count). The transform returns the final update, learning rate and
  sign included, so it ends a chain. It needs ``params`` to measure
  :math:`\lVert x_t - x_0 \rVert`, and ``init`` must see the real starting
  parameters. While :math:`G_t = 0` (only zero gradients so far) the step is 0.
  A non-finite gradient leaves :math:`\bar r, G` as they were (the statistics
  never turn NaN) and flows into the update itself.

  Differences from Optax: ``optax.contrib.dog`` adds ``eps=1e-8`` under the
  root, :math:`\bar r_t / \sqrt{G_t + \epsilon}`; the paper has no
  :math:`\epsilon`, and lrlab follows the paper (with ``eps=0`` Optax's
  trajectory is the same to float32 rounding). Optax also accepts a first
  learning rate instead of :math:`r_\epsilon`; lrlab does not. The paper's
  layer-wise variant (L-DoG) and its iterate averaging are not implemented.

  Args:
    learning_rate: the multiplier :math:`\alpha \ge 0` (default 1, as in the
      paper), an array, or a schedule ``step -> multiplier``.
    reps_rel: :math:`> 0`; :math:`r_\epsilon = \text{reps\_rel} (1 +
      \lVert x_0 \rVert)`. The paper suggests 1e-6 (1e-4 with batch norm).
    initial_distance: :math:`r_\epsilon > 0` itself; overrides ``reps_rel``.

  Returns:
    An ``optax.GradientTransformation`` with state :class:`ScaleByDogState`.

  Example:
    >>> import jax
    >>> import jax.numpy as jnp
    >>> import optax
    >>> from lrlab.transforms import scale_by_dog
    >>> loss = lambda x: 0.5 * jnp.sum(jnp.array([1.0, 10.0]) * x**2)
    >>> params = jnp.array([1.0, 1.0])
    >>> tx = scale_by_dog()
    >>> state = tx.init(params)
    >>> for _ in range(300):
    ...   updates, state = tx.update(jax.grad(loss)(params), state, params)
    ...   params = optax.apply_updates(params, updates)
    >>> bool(loss(params) < 1e-3 * loss(jnp.ones(2)))  # no learning rate was tuned
    True

  References:
    Ivgi, Hinder and Carmon, `DoG is SGD's Best Friend: A Parameter-Free
    Dynamic Step Size Schedule <https://arxiv.org/abs/2302.12022>`_, 2023.
  """
  _free.check_learning_rate(learning_rate)
  _checks.check_positive("reps_rel", reps_rel)
  _checks.check_positive("initial_distance", initial_distance)

  def init_fn(params: optax.Params) -> ScaleByDogState:
    dtype = default_float_dtype()
    if initial_distance is None:
      r_eps = reps_rel * (1 + jnp.sqrt(_free.tree_sum_squares(params)))
    else:
      r_eps = initial_distance
    return ScaleByDogState(
      count=jnp.zeros([], jnp.int32),
      learning_rate=jnp.zeros([], dtype),
      initial_params=_free.strong_copy(params),
      max_distance=jnp.asarray(r_eps).astype(dtype),
      sum_squared_norms=jnp.zeros([], dtype),
    )

  def update_fn(
    updates: optax.Updates, state: ScaleByDogState, params: optax.Params | None = None
  ) -> tuple[optax.Updates, ScaleByDogState]:
    _free.need_params("scale_by_dog", params)
    moved = jax.tree.map(lambda x, x0: x - x0, params, state.initial_params)
    distance = jnp.sqrt(_free.tree_sum_squares(moved))
    max_distance = _free.keep_finite(jnp.maximum(state.max_distance, distance), state.max_distance)
    total = _free.keep_finite(
      state.sum_squared_norms + _free.tree_sum_squares(updates), state.sum_squared_norms
    )
    rate = _free.rate_at(learning_rate, state.count)
    eta = (rate * safe_divide(max_distance, jnp.sqrt(total), fallback=0.0)).astype(total.dtype)
    updates = jax.tree.map(lambda g: (-eta * g).astype(g.dtype), updates)
    new_state = ScaleByDogState(
      count=optax.safe_int32_increment(state.count),
      learning_rate=eta,
      initial_params=state.initial_params,
      max_distance=max_distance,
      sum_squared_norms=total,
    )
    return updates, new_state

  return optax.GradientTransformation(init_fn, update_fn)
