"""D-Adaptation: SGD and Adam stepping with a growing lower bound on the distance to a solution."""

from typing import NamedTuple

import jax
import jax.numpy as jnp
import optax
from jax.typing import ArrayLike

from lrlab import _checks
from lrlab._numerics import default_float_dtype, safe_divide
from lrlab.transforms import _free
from lrlab.transforms.learning_rate import LearningRate


class ScaleByDadaptSgdState(NamedTuple):
  """State of :func:`scale_by_dadapt_sgd`.

  Attributes:
    count: updates made so far (int32).
    learning_rate: the step :math:`\\lambda_k = d_k \\gamma_k / \\lVert g_0
      \\rVert` applied to :math:`z` by the latest update (0 before the first);
      log it.
    d: the current estimate :math:`d_k` (the next update applies it).
    grad_norm0: :math:`\\lVert g_0 \\rVert`, the first nonzero gradient norm
      (0 until one is seen).
    weighted_squares: :math:`\\sum_{i \\le k} \\lambda_i^2 \\lVert g_i \\rVert^2`.
    grad_sum: :math:`s_k = \\sum_{i < k} \\lambda_i g_i`.
    z: the dual-averaging sequence :math:`z_k = x_0 - s_k`.
  """

  count: jax.Array
  learning_rate: jax.Array
  d: jax.Array
  grad_norm0: jax.Array
  weighted_squares: jax.Array
  grad_sum: optax.Updates
  z: optax.Params


class ScaleByDadaptAdamState(NamedTuple):
  """State of :func:`scale_by_dadapt_adam`.

  Attributes:
    count: updates made so far (int32).
    learning_rate: the step :math:`d_k \\gamma_k` applied by the latest update
      (before the first, the one the first will apply); log it.
    d: the current estimate :math:`d_k` (the next update applies it).
    numerator: :math:`r_k`, the weighted sum of
      :math:`\\lambda_i \\langle g_i, s_i \\rangle_{A_{i+1}^{-1}}`.
    mu: :math:`m_k`, the moving average of :math:`d_i \\gamma_i g_i`.
    nu: :math:`v_k`, Adam's second moment of the raw gradients.
    grad_sum: :math:`s_k`, the moving average of :math:`d_i \\gamma_i g_i`
      with decay :math:`\\sqrt{\\beta_2}`.
  """

  count: jax.Array
  learning_rate: jax.Array
  d: jax.Array
  numerator: jax.Array
  mu: optax.Updates
  nu: optax.Updates
  grad_sum: optax.Updates


def _zeros(params: optax.Params) -> optax.Params:
  return _free.strong_copy(jax.tree.map(jnp.zeros_like, params))


def scale_by_dadapt_sgd(
  learning_rate: LearningRate = 1.0,
  *,
  momentum: ArrayLike = 0.9,
  d0: ArrayLike = 1e-6,
) -> optax.GradientTransformation:
  r"""SGD with D-Adaptation (the paper's SGD variant, momentum by primal averaging).

  From :math:`s_0 = 0`, :math:`z_0 = x_0`, with :math:`\gamma_k` the
  ``learning_rate`` multiplier, :math:`\beta` the momentum and
  :math:`G = \lVert g_0 \rVert`:

  .. math::

    \lambda_k &= d_k \gamma_k / G, \qquad
    s_{k+1} = s_k + \lambda_k g_k, \qquad z_{k+1} = z_k - \lambda_k g_k, \\
    x_{k+1} &= \beta x_k + (1 - \beta) z_{k+1}, \\
    \hat d_{k+1} &= \frac{\lVert s_{k+1} \rVert^2 - \sum_{i \le k}
      \lambda_i^2 \lVert g_i \rVert^2}{\lVert s_{k+1} \rVert}
      = \frac{2 \sum_{i \le k} \lambda_i \langle g_i, s_i \rangle}
      {\lVert s_{k+1} \rVert}, \qquad
    d_{k+1} = \max(d_k, \hat d_{k+1}),

  norms over the whole pytree. The transform returns the final update
  :math:`x_{k+1} - x_k` (it ends a chain) and needs ``params``
  (:math:`x_k`). The logged ``learning_rate`` is :math:`\lambda_k`, the step
  of :math:`z`; the averaging makes :math:`x` follow it with momentum
  :math:`\beta`. :math:`G` is the first *nonzero* gradient norm (the paper
  stops when :math:`g_0 = 0`; here the steps stay 0 until a gradient is not).
  A non-finite gradient leaves :math:`d` and the sums of squares as they were
  and flows into :math:`s, z` and the update.

  Optax has no D-Adapted SGD.

  Args:
    learning_rate: the multiplier :math:`\gamma \ge 0` (default 1, as in the
      paper), an array, or a schedule ``step -> multiplier``.
    momentum: :math:`\beta \in [0, 1)`.
    d0: the initial estimate :math:`d_0 > 0` (paper: 1e-6).

  Returns:
    An ``optax.GradientTransformation`` with state
    :class:`ScaleByDadaptSgdState`.

  Example:
    >>> import jax
    >>> import jax.numpy as jnp
    >>> import optax
    >>> from lrlab.transforms import scale_by_dadapt_sgd
    >>> loss = lambda x: 0.5 * jnp.sum(jnp.array([1.0, 10.0]) * (x - 3.0) ** 2)
    >>> params = jnp.zeros(2)
    >>> tx = scale_by_dadapt_sgd()
    >>> state = tx.init(params)
    >>> for _ in range(50):
    ...   updates, state = tx.update(jax.grad(loss)(params), state, params)
    ...   params = optax.apply_updates(params, updates)
    >>> bool(state.d > 1.0)  # grew from 1e-6 towards the distance to the solution
    True

  References:
    Defazio and Mishchenko, `Learning-Rate-Free Learning by D-Adaptation
    <https://arxiv.org/abs/2301.07733>`_, ICML 2023.
  """
  _free.check_learning_rate(learning_rate)
  _checks.check_interval("momentum", momentum, 0.0, 1.0, closed_high=False)
  _checks.check_positive("d0", d0)

  def init_fn(params: optax.Params) -> ScaleByDadaptSgdState:
    dtype = default_float_dtype()
    return ScaleByDadaptSgdState(
      count=jnp.zeros([], jnp.int32),
      learning_rate=jnp.zeros([], dtype),
      d=jnp.asarray(d0).astype(dtype),
      grad_norm0=jnp.zeros([], dtype),
      weighted_squares=jnp.zeros([], dtype),
      grad_sum=_zeros(params),
      z=_free.strong_copy(params),
    )

  def update_fn(
    updates: optax.Updates, state: ScaleByDadaptSgdState, params: optax.Params | None = None
  ) -> tuple[optax.Updates, ScaleByDadaptSgdState]:
    _free.need_params("scale_by_dadapt_sgd", params)
    d = state.d
    squares = _free.tree_sum_squares(updates)
    norm = jnp.sqrt(squares)
    seen = state.grad_norm0 > 0
    grad_norm0 = jnp.where(seen | ~jnp.isfinite(norm), state.grad_norm0, norm)
    gamma = _free.rate_at(learning_rate, state.count)
    step = safe_divide(d * gamma, grad_norm0, fallback=0.0).astype(d.dtype)  # lambda_k

    cast = lambda value, like: value.astype(like.dtype)
    grad_sum = jax.tree.map(lambda s, g: cast(s + step * g, s), state.grad_sum, updates)
    z = jax.tree.map(lambda z, g: cast(z - step * g, z), state.z, updates)
    weighted_squares = _free.keep_finite(
      state.weighted_squares + step * step * squares, state.weighted_squares
    )
    s_squares = _free.tree_sum_squares(grad_sum)
    estimate = safe_divide(s_squares - weighted_squares, jnp.sqrt(s_squares), fallback=0.0)
    new_d = _free.keep_finite(jnp.maximum(d, estimate), d)

    updates = jax.tree.map(lambda g, z, x: cast((1 - momentum) * (z - x), g), updates, z, params)
    new_state = ScaleByDadaptSgdState(
      count=optax.safe_int32_increment(state.count),
      learning_rate=step,
      d=new_d,
      grad_norm0=grad_norm0,
      weighted_squares=weighted_squares,
      grad_sum=grad_sum,
      z=z,
    )
    return updates, new_state

  return optax.GradientTransformation(init_fn, update_fn)


def scale_by_dadapt_adam(
  learning_rate: LearningRate = 1.0,
  *,
  b1: ArrayLike = 0.9,
  b2: ArrayLike = 0.999,
  eps: ArrayLike = 1e-8,
  d0: ArrayLike = 1e-6,
  weight_decay: ArrayLike = 0.0,
) -> optax.GradientTransformation:
  r"""Adam with D-Adaptation (the paper's Adam variant, inner-product form).

  From :math:`m_0 = v_0 = s_0 = 0`, :math:`r_0 = 0`, with :math:`\gamma_k`
  the ``learning_rate`` multiplier, :math:`\lambda_k = d_k \gamma_k` and
  :math:`\beta_3 = \sqrt{\beta_2}`:

  .. math::

    m_{k+1} &= \beta_1 m_k + (1 - \beta_1) \lambda_k g_k, \qquad
    v_{k+1} = \beta_2 v_k + (1 - \beta_2) g_k^2, \qquad
    A_{k+1} = \operatorname{diag}(\sqrt{v_{k+1}} + \epsilon), \\
    x_{k+1} &= x_k - A_{k+1}^{-1} m_{k+1} - \lambda_k \lambda_{\text{wd}} x_k, \\
    r_{k+1} &= \beta_3 r_k + (1 - \beta_3) \lambda_k
      \langle g_k, s_k \rangle_{A_{k+1}^{-1}}, \qquad
    s_{k+1} = \beta_3 s_k + (1 - \beta_3) \lambda_k g_k, \\
    d_{k+1} &= \max\Bigl(d_k,\ \frac{r_{k+1}}{(1 - \beta_3)
      \lVert s_{k+1} \rVert_1}\Bigr),

  inner products and norms over the whole pytree. There is no bias
  correction, as in the paper. :math:`\lambda_{\text{wd}}` is a decoupled
  (AdamW-style) weight decay scaled by the applied step :math:`\lambda_k`,
  as in Optax's and the authors' AdamW variant; with the default 0 this is
  the paper's algorithm. The transform returns the final update (it ends a
  chain); ``params`` are needed only for a weight decay other than a Python
  0. A non-finite gradient leaves :math:`r` and :math:`d` as they were.

  Differences from Optax: ``optax.contrib.dadapt_adamw`` (1) multiplies
  :math:`\lambda_k` by Adam's bias correction :math:`\sqrt{1 -
  \beta_2^{k+1}} / (1 - \beta_1^{k+1})`, which the paper's algorithm does
  not have (the authors' implementation has it as an option), and (2) weighs
  :math:`\langle g_k, s_k \rangle` with the *previous* :math:`A_k` (before
  :math:`g_k` enters :math:`v`) where the paper uses :math:`A_{k+1}`. lrlab
  follows the paper; the tests reproduce Optax's trajectory with those two
  changes made to the NumPy transliteration.

  Args:
    learning_rate: the multiplier :math:`\gamma \ge 0` (default 1, as in the
      paper), an array, or a schedule ``step -> multiplier``.
    b1: :math:`\beta_1 \in [0, 1)`.
    b2: :math:`\beta_2 \in [0, 1)`.
    eps: :math:`\epsilon \ge 0`, added to the root.
    d0: the initial estimate :math:`d_0 > 0` (paper: 1e-6).
    weight_decay: decoupled weight decay :math:`\lambda_{\text{wd}} \ge 0`.

  Returns:
    An ``optax.GradientTransformation`` with state
    :class:`ScaleByDadaptAdamState`.

  Example:
    >>> import jax
    >>> import jax.numpy as jnp
    >>> import optax
    >>> from lrlab.transforms import scale_by_dadapt_adam
    >>> loss = lambda x: 0.5 * jnp.sum(jnp.array([1.0, 10.0]) * (x - 3.0) ** 2)
    >>> params = jnp.zeros(2)
    >>> tx = scale_by_dadapt_adam()
    >>> state = tx.init(params)
    >>> for _ in range(200):
    ...   updates, state = tx.update(jax.grad(loss)(params), state, params)
    ...   params = optax.apply_updates(params, updates)
    >>> bool(state.d > 0.1)  # grew from 1e-6 towards the distance to the solution
    True

  References:
    Defazio and Mishchenko, `Learning-Rate-Free Learning by D-Adaptation
    <https://arxiv.org/abs/2301.07733>`_, ICML 2023.
  """
  _free.check_learning_rate(learning_rate)
  _checks.check_betas(b1=b1, b2=b2)
  _checks.check_nonnegative("eps", eps)
  _checks.check_positive("d0", d0)
  _checks.check_nonnegative("weight_decay", weight_decay)
  decays = not _checks.is_zero(weight_decay)

  def init_fn(params: optax.Params) -> ScaleByDadaptAdamState:
    dtype = default_float_dtype()
    d = jnp.asarray(d0).astype(dtype)
    return ScaleByDadaptAdamState(
      count=jnp.zeros([], jnp.int32),
      learning_rate=(_free.rate_at(learning_rate, jnp.zeros([], jnp.int32)) * d).astype(dtype),
      d=d,
      numerator=jnp.zeros([], dtype),
      mu=_zeros(params),
      nu=_zeros(params),
      grad_sum=_zeros(params),
    )

  def update_fn(
    updates: optax.Updates, state: ScaleByDadaptAdamState, params: optax.Params | None = None
  ) -> tuple[optax.Updates, ScaleByDadaptAdamState]:
    if decays:
      _free.need_params("scale_by_dadapt_adam with weight_decay", params)
    d = state.d
    step = (d * _free.rate_at(learning_rate, state.count)).astype(d.dtype)  # lambda_k
    b3 = jnp.sqrt(b2)

    cast = lambda value, like: value.astype(like.dtype)
    mu = jax.tree.map(lambda m, g: cast(b1 * m + (1 - b1) * step * g, m), state.mu, updates)
    nu = jax.tree.map(lambda v, g: cast(b2 * v + (1 - b2) * g * g, v), state.nu, updates)
    denominators = jax.tree.map(lambda v: jnp.sqrt(v) + eps, nu)
    weighted = jax.tree.map(lambda s, a: s / a, state.grad_sum, denominators)
    numerator = b3 * state.numerator + (1 - b3) * step * _free.tree_vdot(updates, weighted)
    numerator = _free.keep_finite(numerator, state.numerator)
    grad_sum = jax.tree.map(
      lambda s, g: cast(b3 * s + (1 - b3) * step * g, s), state.grad_sum, updates
    )
    estimate = safe_divide(numerator, (1 - b3) * _free.tree_l1(grad_sum), fallback=0.0)
    new_d = _free.keep_finite(jnp.maximum(d, estimate), d)

    adam = jax.tree.map(lambda g, m, a: cast(-m / a, g), updates, mu, denominators)
    if decays:
      adam = jax.tree.map(lambda u, x: cast(u - step * weight_decay * x, u), adam, params)
    new_state = ScaleByDadaptAdamState(
      count=optax.safe_int32_increment(state.count),
      learning_rate=step,
      d=new_d,
      numerator=numerator,
      mu=mu,
      nu=nu,
      grad_sum=grad_sum,
    )
    return adam, new_state

  return optax.GradientTransformation(init_fn, update_fn)
