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
    sum_squared_norms: :math:`G_t = \\epsilon + \\sum_{i \\le t} \\lVert g_i
      \\rVert^2`.
    average: the polynomial-decay average :math:`\\bar x_t` of the iterates,
      the point to evaluate (:func:`lrlab.transforms.eval_params` finds it);
      ``None`` without ``averaging``.
  """

  count: jax.Array
  learning_rate: jax.Array
  initial_params: optax.Params
  max_distance: jax.Array
  sum_squared_norms: jax.Array
  average: optax.Params | None = None


def scale_by_dog(
  learning_rate: LearningRate = 1.0,
  *,
  reps_rel: ArrayLike = 1e-6,
  eps: ArrayLike = 1e-8,
  d0: ArrayLike | None = None,
  averaging: ArrayLike | None = None,
) -> optax.GradientTransformation:
  r"""SGD with DoG's parameter-free step size (the paper's Algorithm 1), as the authors' ``DoG``.

  .. math::

    \bar r_t = \max\bigl(\bar r_{t-1}, \lVert x_t - x_0 \rVert\bigr), \quad
    \bar r_{-1} = r_\epsilon, \qquad
    G_t = G_{t-1} + \lVert g_t \rVert^2, \quad G_{-1} = \epsilon, \\
    \eta_t = \alpha_t \frac{\bar r_t}{\sqrt{G_t}}, \qquad
    x_{t+1} = x_t - \eta_t g_t,

  with norms over the whole pytree, :math:`r_\epsilon = \text{reps\_rel}
  \cdot (1 + \lVert x_0 \rVert)` (the paper's choice, ``reps_rel=1e-6``)
  unless ``d0`` gives it, and :math:`\alpha_t` the
  ``learning_rate`` multiplier (1 in the paper; a schedule is evaluated at the
  0-based count). This is the authors' ``DoG`` (``dog-optimizer`` package),
  defaults included, which the tests reproduce to float64 rounding; its
  :math:`\epsilon = 10^{-8}` is not in the paper (``eps=0`` is the paper's
  rule). The transform returns the final update, learning rate and sign
  included, so it ends a chain. It needs ``params`` to measure
  :math:`\lVert x_t - x_0 \rVert`, and ``init`` must see the real starting
  parameters. A non-finite gradient leaves :math:`\bar r, G` as they were
  (the statistics never turn NaN) and flows into the update itself.

  ``averaging`` :math:`= \gamma` adds the iterate averaging the authors call
  crucial (their ``PolynomialDecayAverager``; Shamir and Zhang 2013, the
  paper's :math:`\gamma = 8`): after update :math:`t = 1, 2, \ldots`,
  :math:`\bar x_t = (1 - w_t) \bar x_{t-1} + w_t x_t` with :math:`w_t =
  (1 + \gamma) / (t + \gamma)`. The average only watches: evaluate the model
  at it (:func:`lrlab.transforms.eval_params`; the training core does).

  Differences from Optax: ``optax.contrib.dog`` adds the same :math:`\epsilon`
  (under the root) and has no averaging; it also accepts a first learning
  rate instead of :math:`r_\epsilon` (the package's ``init_eta``), which lrlab
  does not. The layer-wise variant (L-DoG) is not implemented.

  Args:
    learning_rate: the multiplier :math:`\alpha \ge 0` (default 1, as in the
      paper), an array, or a schedule ``step -> multiplier``.
    reps_rel: :math:`> 0`; :math:`r_\epsilon = \text{reps\_rel} (1 +
      \lVert x_0 \rVert)`. The paper suggests 1e-6 (1e-4 with batch norm).
    eps: :math:`\epsilon \ge 0`, the start of :math:`G` (the package's 1e-8).
    d0: :math:`r_\epsilon > 0` itself, the initial distance estimate (the
      name Prodigy and D-Adaptation give theirs); overrides ``reps_rel``.
    averaging: :math:`\gamma \ge 0` of the polynomial-decay average, or
      ``None`` (default, as the package's ``DoG``) for none; the authors use 8.

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
  _checks.check_nonnegative("eps", eps)
  _checks.check_positive("d0", d0)
  _checks.check_nonnegative("averaging", averaging)

  def init_fn(params: optax.Params) -> ScaleByDogState:
    dtype = default_float_dtype()
    r_eps = d0 if d0 is not None else reps_rel * (1 + jnp.sqrt(_free.tree_sum_squares(params)))
    return ScaleByDogState(
      count=jnp.zeros([], jnp.int32),
      learning_rate=jnp.zeros([], dtype),
      initial_params=_free.strong_copy(params),
      max_distance=jnp.asarray(r_eps).astype(dtype),
      sum_squared_norms=jnp.asarray(eps).astype(dtype),
      average=None if averaging is None else _free.strong_copy(params),
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
    average = state.average
    if averaging is not None:
      t = (state.count + 1).astype(total.dtype)
      w = (1 + averaging) / (t + averaging)  # w_1 = 1: the average starts at x_1
      average = jax.tree.map(
        lambda a, x, u: ((1 - w) * a + w * (x + u)).astype(a.dtype), average, params, updates
      )
    new_state = ScaleByDogState(
      count=optax.safe_int32_increment(state.count),
      learning_rate=eta,
      initial_params=state.initial_params,
      max_distance=max_distance,
      sum_squared_norms=total,
      average=average,
    )
    return updates, new_state

  return optax.GradientTransformation(init_fn, update_fn)
