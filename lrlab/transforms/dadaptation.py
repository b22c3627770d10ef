"""D-Adaptation: SGD and Adam stepping with a growing lower bound on the distance to a solution."""

from typing import NamedTuple

import jax
import jax.numpy as jnp
import optax
from jax.typing import ArrayLike

from lrlab import _checks
from lrlab._numerics import default_float_dtype, safe_divide
from lrlab.transforms import _free
from lrlab.transforms.adam import _bias_correction
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
    numerator: :math:`\\sum_{i < k} \\lambda_i \\langle g_i, s_i \\rangle`.
    grad_sum: :math:`s_k = \\sum_{i < k} \\lambda_i g_i`.
    z: the dual-averaging sequence :math:`z_k = x_0 - s_k`.
  """

  count: jax.Array
  learning_rate: jax.Array
  d: jax.Array
  grad_norm0: jax.Array
  numerator: jax.Array
  grad_sum: optax.Updates
  z: optax.Params


class ScaleByDadaptAdamState(NamedTuple):
  """State of :func:`scale_by_dadapt_adam`.

  Attributes:
    count: updates made so far (int32).
    learning_rate: the step :math:`\\lambda_k` applied by the latest update
      (before the first, the one the first will apply); log it.
    d: the current estimate :math:`d_k` (the next update applies it).
    numerator: :math:`r_k`, the weighted sum of
      :math:`\\lambda_i \\langle g_i, s_i \\rangle_{A_i^{-1}}`.
    mu: :math:`m_k`, the moving average of :math:`\\lambda_i g_i`.
    nu: :math:`v_k`, Adam's second moment of the raw gradients.
    grad_sum: :math:`s_k`, the moving average of :math:`\\lambda_i g_i`
      with decay :math:`\\sqrt{\\beta_2}`.
    taken: steps taken (int32), the bias correction's clock (the package's ``k``):
      a step whose rate is 0, or before any nonzero gradient, is skipped.
  """

  count: jax.Array
  learning_rate: jax.Array
  d: jax.Array
  numerator: jax.Array
  mu: optax.Updates
  nu: optax.Updates
  grad_sum: optax.Updates
  taken: jax.Array


def _zeros(params: optax.Params) -> optax.Params:
  return _free.strong_copy(jax.tree.map(jnp.zeros_like, params))


def scale_by_dadapt_sgd(
  learning_rate: LearningRate = 1.0,
  *,
  momentum: ArrayLike = 0.0,
  d0: ArrayLike = 1e-6,
  growth_rate: ArrayLike = float("inf"),
  weight_decay: ArrayLike = 0.0,
) -> optax.GradientTransformation:
  r"""SGD with D-Adaptation (the paper's SGD variant, momentum by primal averaging).

  From :math:`s_0 = 0`, :math:`r_0 = 0`, :math:`z_0 = x_0`, with
  :math:`\gamma_k` the ``learning_rate`` multiplier, :math:`\beta` the
  momentum, :math:`\rho` the ``growth_rate``, :math:`\tilde g_k = g_k +
  \lambda_{\text{wd}} x_k` and :math:`G = \lVert g_0 \rVert`:

  .. math::

    \lambda_k &= d_k \gamma_k / G, \qquad
    r_{k+1} = r_k + \lambda_k \langle \tilde g_k, s_k \rangle, \qquad
    s_{k+1} = s_k + \lambda_k \tilde g_k, \qquad z_{k+1} = x_0 - s_{k+1}, \\
    x_{k+1} &= \beta x_k + (1 - \beta) z_{k+1}, \qquad
    d_{k+1} = \max\Bigl(d_k, \min\Bigl(\frac{2 r_{k+1}}{\lVert s_{k+1} \rVert},
      \rho d_k\Bigr)\Bigr),

  norms over the whole pytree; :math:`2 r_{k+1} = \lVert s_{k+1} \rVert^2 -
  \sum_{i \le k} \lambda_i^2 \lVert \tilde g_i \rVert^2`, the paper's
  numerator, computed as the authors' ``DAdaptSGD`` (``dadaptation`` package)
  does, which the tests reproduce to float64 rounding. The defaults are the
  package's: no momentum (:math:`x = z`, plain dual averaging), unbounded
  growth. :math:`\lambda_{\text{wd}}` (``weight_decay``) is a coupled L2
  penalty and, as in the package, :math:`G` is the norm of the raw gradient,
  without it. The transform returns the final update :math:`x_{k+1} - x_k`
  (it ends a chain) and needs ``params`` (:math:`x_k`). The logged
  ``learning_rate`` is :math:`\lambda_k`, the step of :math:`z`. :math:`G` is
  the first *nonzero* gradient norm (the package divides by a zero one; here
  the steps stay 0 until a gradient is not). A non-finite gradient leaves
  :math:`d` and :math:`r` as they were and flows into :math:`s, z` and the
  update.

  Optax has no D-Adapted SGD.

  Args:
    learning_rate: the multiplier :math:`\gamma \ge 0` (default 1, as in the
      paper), an array, or a schedule ``step -> multiplier``.
    momentum: :math:`\beta \in [0, 1)` (default 0, the package's).
    d0: the initial estimate :math:`d_0 > 0` (paper: 1e-6).
    growth_rate: :math:`\rho \ge 1`, the largest factor by which :math:`d`
      grows in one step (default ``inf``: unbounded, the package's).
    weight_decay: coupled L2 weight :math:`\lambda_{\text{wd}} \ge 0`.

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
    >>> tx = scale_by_dadapt_sgd(momentum=0.9)
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
  _free.check_growth_rate(growth_rate)
  _checks.check_nonnegative("weight_decay", weight_decay)

  def init_fn(params: optax.Params) -> ScaleByDadaptSgdState:
    dtype = default_float_dtype()
    return ScaleByDadaptSgdState(
      count=jnp.zeros([], jnp.int32),
      learning_rate=jnp.zeros([], dtype),
      d=jnp.asarray(d0).astype(dtype),
      grad_norm0=jnp.zeros([], dtype),
      numerator=jnp.zeros([], dtype),
      grad_sum=_zeros(params),
      z=_free.strong_copy(params),
    )

  def update_fn(
    updates: optax.Updates, state: ScaleByDadaptSgdState, params: optax.Params | None = None
  ) -> tuple[optax.Updates, ScaleByDadaptSgdState]:
    _free.need_params("scale_by_dadapt_sgd", params)
    d = state.d
    norm = jnp.sqrt(_free.tree_sum_squares(updates))  # G: the raw gradient, as the package
    seen = state.grad_norm0 > 0
    grad_norm0 = jnp.where(seen | ~jnp.isfinite(norm), state.grad_norm0, norm)
    gamma = _free.rate_at(learning_rate, state.count)
    step = safe_divide(d * gamma, grad_norm0, fallback=0.0).astype(d.dtype)  # lambda_k

    cast = lambda value, like: value.astype(like.dtype)
    grads = jax.tree.map(lambda g, x: g + weight_decay * x, updates, params)
    numerator = state.numerator + step * _free.tree_vdot(grads, state.grad_sum)
    numerator = _free.keep_finite(numerator, state.numerator)
    grad_sum = jax.tree.map(lambda s, g: cast(s + step * g, s), state.grad_sum, grads)
    z = jax.tree.map(lambda z, g: cast(z - step * g, z), state.z, grads)
    estimate = safe_divide(2 * numerator, jnp.sqrt(_free.tree_sum_squares(grad_sum)), fallback=0.0)
    new_d = _free.keep_finite(jnp.maximum(d, jnp.minimum(estimate, d * growth_rate)), d)

    updates = jax.tree.map(lambda g, z, x: cast((1 - momentum) * (z - x), g), updates, z, params)
    new_state = ScaleByDadaptSgdState(
      count=optax.safe_int32_increment(state.count),
      learning_rate=step,
      d=new_d,
      grad_norm0=grad_norm0,
      numerator=numerator,
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
  growth_rate: ArrayLike = float("inf"),
  weight_decay: ArrayLike = 0.0,
  bias_correction: bool = False,
) -> optax.GradientTransformation:
  r"""Adam with D-Adaptation (the paper's Adam variant, as the authors' ``DAdaptAdam``).

  From :math:`m_0 = v_0 = s_0 = 0`, :math:`r_0 = 0`, with :math:`\gamma_k`
  the ``learning_rate`` multiplier, :math:`\lambda_k = d_k \gamma_k c_k`
  (:math:`c_k = \sqrt{1 - \beta_2^{k+1}} / (1 - \beta_1^{k+1})` with
  ``bias_correction``, else 1), :math:`\beta_3 = \sqrt{\beta_2}`,
  :math:`A_k = \operatorname{diag}(\sqrt{v_k} + \epsilon)` and :math:`\rho`
  the ``growth_rate``:

  .. math::

    r_{k+1} &= \beta_3 r_k + (1 - \beta_3) \lambda_k
      \langle g_k, s_k \rangle_{A_k^{-1}}, \qquad
    s_{k+1} = \beta_3 s_k + (1 - \beta_3) \lambda_k g_k, \\
    m_{k+1} &= \beta_1 m_k + (1 - \beta_1) \lambda_k g_k, \qquad
    v_{k+1} = \beta_2 v_k + (1 - \beta_2) g_k^2, \\
    d_{k+1} &= \max\Bigl(d_k,\ \min\Bigl(\frac{r_{k+1}}{(1 - \beta_3)
      \lVert s_{k+1} \rVert_1}, \rho d_k\Bigr)\Bigr), \qquad
    x_{k+1} = x_k - A_{k+1}^{-1} m_{k+1} - \lambda_k \lambda_{\text{wd}} x_k,

  inner products and norms over the whole pytree. This is the authors'
  ``DAdaptAdam`` (``dadaptation`` package, ``decouple=True`` for a weight
  decay), which the tests reproduce to float64 rounding: its inner product
  weighs :math:`g_k` with :math:`A_k`, the second moment *before*
  :math:`g_k` enters it (``denom = exp_avg_sq.sqrt().add_(eps)`` is taken
  before ``exp_avg_sq`` is updated), and its bias correction is off by
  default (``use_bias_correction=False``). :math:`\lambda_{\text{wd}}` is a
  decoupled (AdamW-style) weight decay scaled by the applied step
  :math:`\lambda_k`. The transform returns the final update (it ends a chain);
  ``params`` are needed only for a weight decay other than a Python 0. While
  :math:`s = 0` (no gradient so far was nonzero) the step is skipped, as the
  package skips it: no move, and the bias correction's clock waits. A
  non-finite gradient leaves :math:`r` and :math:`d` as they were.

  Differences from Optax: ``optax.contrib.dadapt_adamw`` always applies the
  bias correction; ``bias_correction=True`` reproduces it.

  Args:
    learning_rate: the multiplier :math:`\gamma \ge 0` (default 1, as in the
      paper), an array, or a schedule ``step -> multiplier``.
    b1: :math:`\beta_1 \in [0, 1)`.
    b2: :math:`\beta_2 \in [0, 1)`.
    eps: :math:`\epsilon \ge 0`, added to the root.
    d0: the initial estimate :math:`d_0 > 0` (paper: 1e-6).
    growth_rate: :math:`\rho \ge 1`, the largest factor by which :math:`d`
      grows in one step (default ``inf``, the package's).
    weight_decay: decoupled weight decay :math:`\lambda_{\text{wd}} \ge 0`.
    bias_correction: static; Adam's bias correction in :math:`\lambda_k`
      (the package's ``use_bias_correction``; default off, as there).

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
  _free.check_growth_rate(growth_rate)
  _checks.check_nonnegative("weight_decay", weight_decay)
  bias_correction = _checks.flag("bias_correction", bias_correction)
  decays = not _checks.is_zero(weight_decay)

  def applied_step(d: jax.Array, count: jax.Array, taken: jax.Array) -> jax.Array:
    """:math:`\\lambda_k = d_k \\gamma_k c_k` for the 0-based ``count`` ``k``."""
    step = d * _free.rate_at(learning_rate, count)
    if bias_correction:
      t = (taken + 1).astype(d.dtype)
      step = step * jnp.sqrt(_bias_correction(b2, t)) / _bias_correction(b1, t)
    return step.astype(d.dtype)

  def init_fn(params: optax.Params) -> ScaleByDadaptAdamState:
    d = jnp.asarray(d0).astype(default_float_dtype())
    return ScaleByDadaptAdamState(
      count=jnp.zeros([], jnp.int32),
      learning_rate=applied_step(d, jnp.zeros([], jnp.int32), jnp.zeros([], jnp.int32)),
      d=d,
      numerator=jnp.zeros([], d.dtype),
      mu=_zeros(params),
      nu=_zeros(params),
      grad_sum=_zeros(params),
      taken=jnp.zeros([], jnp.int32),
    )

  def update_fn(
    updates: optax.Updates, state: ScaleByDadaptAdamState, params: optax.Params | None = None
  ) -> tuple[optax.Updates, ScaleByDadaptAdamState]:
    if decays:
      _free.need_params("scale_by_dadapt_adam with weight_decay", params)
    d = state.d
    step = applied_step(d, state.count, state.taken)  # lambda_k
    b3 = jnp.sqrt(b2)

    cast = lambda value, like: value.astype(like.dtype)
    weighted = jax.tree.map(lambda s, v: s / (jnp.sqrt(v) + eps), state.grad_sum, state.nu)
    numerator = b3 * state.numerator + (1 - b3) * step * _free.tree_vdot(updates, weighted)
    numerator = _free.keep_finite(numerator, state.numerator)
    mu = jax.tree.map(lambda m, g: cast(b1 * m + (1 - b1) * step * g, m), state.mu, updates)
    nu = jax.tree.map(lambda v, g: cast(b2 * v + (1 - b2) * g * g, v), state.nu, updates)
    grad_sum = jax.tree.map(
      lambda s, g: cast(b3 * s + (1 - b3) * step * g, s), state.grad_sum, updates
    )
    denominator = _free.tree_l1(grad_sum)
    estimate = safe_divide(numerator, (1 - b3) * denominator, fallback=0.0)
    new_d = _free.keep_finite(jnp.maximum(d, jnp.minimum(estimate, d * growth_rate)), d)

    adam = jax.tree.map(lambda g, m, v: cast(-m / (jnp.sqrt(v) + eps), g), updates, mu, nu)
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
      taken=optax.safe_int32_increment(state.taken),
    )
    return _free.skip_idle_step(learning_rate, state, new_state, adam, denominator)

  return optax.GradientTransformation(init_fn, update_fn)
