"""Prodigy: Adam whose step size d is a running estimate of the distance to the solution."""

from typing import NamedTuple

import jax
import jax.numpy as jnp
import optax
from jax.typing import ArrayLike

from lrlab import _checks
from lrlab._numerics import default_float_dtype, safe_divide
from lrlab.transforms import _free
from lrlab.transforms.learning_rate import LearningRate


class ScaleByProdigyState(NamedTuple):
  """State of :func:`scale_by_prodigy`.

  Attributes:
    count: updates made so far (int32).
    learning_rate: the step size :math:`\\gamma_k d_k` applied by the latest
      update (before the first, the one the first will apply); log it.
    d: the current estimate :math:`d_{k}` (the next update applies it).
    numerator: :math:`r_k`, the weighted sum of
      :math:`\\langle g_i, x_0 - x_i \\rangle`.
    initial_params: the starting point :math:`x_0`.
    mu: Adam's first moment :math:`m_k` (of :math:`d_i g_i`).
    nu: Adam's second moment :math:`v_k` (of :math:`d_i^2 g_i^2`).
    grad_sum: :math:`s_k`, the weighted sum of the gradients.
  """

  count: jax.Array
  learning_rate: jax.Array
  d: jax.Array
  numerator: jax.Array
  initial_params: optax.Params
  mu: optax.Updates
  nu: optax.Updates
  grad_sum: optax.Updates


def scale_by_prodigy(
  learning_rate: LearningRate = 1.0,
  *,
  b1: ArrayLike = 0.9,
  b2: ArrayLike = 0.999,
  b3: ArrayLike | None = None,
  eps: ArrayLike = 1e-8,
  d0: ArrayLike = 1e-6,
  weight_decay: ArrayLike = 0.0,
) -> optax.GradientTransformation:
  r"""Adam with Prodigy's learning-rate-free step size (the paper's Algorithm 4).

  From :math:`m_0 = v_0 = s_0 = 0`, :math:`r_0 = 0`, with :math:`\gamma_k`
  the ``learning_rate`` multiplier and :math:`\beta_3 = \sqrt{\beta_2}`
  unless given:

  .. math::

    m_{k+1} &= \beta_1 m_k + (1 - \beta_1)\, d_k g_k, \qquad
    v_{k+1} = \beta_2 v_k + (1 - \beta_2)\, d_k^2 g_k^2, \\
    r_{k+1} &= \beta_3 r_k + (1 - \beta_3)\, \gamma_k d_k^2
      \langle g_k, x_0 - x_k \rangle, \qquad
    s_{k+1} = \beta_3 s_k + (1 - \beta_3)\, \gamma_k d_k^2 g_k, \\
    d_{k+1} &= \max\bigl(d_k,\ r_{k+1} / \lVert s_{k+1} \rVert_1\bigr), \\
    x_{k+1} &= x_k - \gamma_k d_k \Bigl(\frac{m_{k+1}}{\sqrt{v_{k+1}} + d_k
      \epsilon} + \lambda x_k\Bigr),

  inner products and norms over the whole pytree. The step uses :math:`d_k`,
  the estimate from before this gradient, as in the paper. :math:`\lambda` is
  a decoupled (AdamW-style) weight decay, scaled by the applied step
  :math:`\gamma_k d_k` as in the authors' implementation; the paper has none,
  and with the default 0 this is exactly its algorithm. The transform returns
  the final update, step size and sign included (it ends a chain), and needs
  ``params``. While :math:`s = 0` the estimate stays put. A non-finite
  gradient leaves :math:`r` and :math:`d` as they were; it flows into the
  moments and the update as in Adam.

  Differences from Optax: ``optax.contrib.prodigy`` multiplies the step and
  the estimate's weights by Adam's bias correction
  :math:`\sqrt{1 - \beta_2^{k+1}} / (1 - \beta_1^{k+1})`, which the paper's
  Algorithm 4 does not have (the authors' implementation leaves it off by
  default), and puts the *updated* :math:`d_{k+1}` in the denominator's
  :math:`d\epsilon`. Its scaling of :math:`r` and :math:`s` (no
  :math:`1 - \beta_3`, divided by :math:`d_0`) cancels in the ratio. lrlab
  follows the paper; the tests reproduce Optax's trajectory with those two
  changes made to the NumPy transliteration.

  Args:
    learning_rate: the multiplier :math:`\gamma \ge 0` (default 1, as in the
      paper), an array, or a schedule ``step -> multiplier``.
    b1: :math:`\beta_1 \in [0, 1)`.
    b2: :math:`\beta_2 \in [0, 1)`.
    b3: :math:`\beta_3 \in [0, 1)` for :math:`r, s`; ``None`` (default)
      for :math:`\sqrt{\beta_2}`, the paper's choice.
    eps: :math:`\epsilon \ge 0`, multiplied by :math:`d_k` in the denominator.
    d0: the initial estimate :math:`d_0 > 0` (paper: 1e-6).
    weight_decay: decoupled weight decay :math:`\lambda \ge 0`.

  Returns:
    An ``optax.GradientTransformation`` with state
    :class:`ScaleByProdigyState`.

  Example:
    >>> import jax
    >>> import jax.numpy as jnp
    >>> import optax
    >>> from lrlab.transforms import scale_by_prodigy
    >>> loss = lambda x: 0.5 * jnp.sum(jnp.array([1.0, 10.0]) * (x - 3.0) ** 2)
    >>> params = jnp.zeros(2)
    >>> tx = scale_by_prodigy()
    >>> state = tx.init(params)
    >>> for _ in range(200):
    ...   updates, state = tx.update(jax.grad(loss)(params), state, params)
    ...   params = optax.apply_updates(params, updates)
    >>> bool(state.d > 0.1)  # grew from 1e-6 towards the distance to the solution
    True

  References:
    Mishchenko and Defazio, `Prodigy: An Expeditiously Adaptive
    Parameter-Free Learner <https://arxiv.org/abs/2306.06101>`_, 2023.
  """
  _free.check_learning_rate(learning_rate)
  _checks.check_betas(b1=b1, b2=b2, b3=b3)
  _checks.check_nonnegative("eps", eps)
  _checks.check_positive("d0", d0)
  _checks.check_nonnegative("weight_decay", weight_decay)

  def init_fn(params: optax.Params) -> ScaleByProdigyState:
    dtype = default_float_dtype()
    zeros = lambda: _free.strong_copy(jax.tree.map(jnp.zeros_like, params))
    d = jnp.asarray(d0).astype(dtype)
    return ScaleByProdigyState(
      count=jnp.zeros([], jnp.int32),
      learning_rate=(_free.rate_at(learning_rate, jnp.zeros([], jnp.int32)) * d).astype(dtype),
      d=d,
      numerator=jnp.zeros([], dtype),
      initial_params=_free.strong_copy(params),
      mu=zeros(),
      nu=zeros(),
      grad_sum=zeros(),
    )

  def update_fn(
    updates: optax.Updates, state: ScaleByProdigyState, params: optax.Params | None = None
  ) -> tuple[optax.Updates, ScaleByProdigyState]:
    _free.need_params("scale_by_prodigy", params)
    d = state.d
    gamma = _free.rate_at(learning_rate, state.count)
    beta3 = jnp.sqrt(b2) if b3 is None else b3
    weight = gamma * d * d  # gamma_k d_k^2

    cast = lambda value, like: value.astype(like.dtype)
    mu = jax.tree.map(lambda m, g: cast(b1 * m + (1 - b1) * d * g, m), state.mu, updates)
    nu = jax.tree.map(lambda v, g: cast(b2 * v + (1 - b2) * (d * g) ** 2, v), state.nu, updates)
    to_start = jax.tree.map(lambda x0, x: x0 - x, state.initial_params, params)
    numerator = beta3 * state.numerator + (1 - beta3) * weight * _free.tree_vdot(updates, to_start)
    numerator = _free.keep_finite(numerator, state.numerator)
    grad_sum = jax.tree.map(
      lambda s, g: cast(beta3 * s + (1 - beta3) * weight * g, s), state.grad_sum, updates
    )
    estimate = safe_divide(numerator, _free.tree_l1(grad_sum), fallback=0.0)
    new_d = _free.keep_finite(jnp.maximum(d, estimate), d)

    step = (gamma * d).astype(d.dtype)
    updates = jax.tree.map(
      lambda g, m, v, x: cast(-step * (m / (jnp.sqrt(v) + d * eps) + weight_decay * x), g),
      updates,
      mu,
      nu,
      params,
    )
    new_state = ScaleByProdigyState(
      count=optax.safe_int32_increment(state.count),
      learning_rate=step,
      d=new_d,
      numerator=numerator,
      initial_params=state.initial_params,
      mu=mu,
      nu=nu,
      grad_sum=grad_sum,
    )
    return updates, new_state

  return optax.GradientTransformation(init_fn, update_fn)
