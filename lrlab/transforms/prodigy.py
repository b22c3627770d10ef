"""Prodigy: Adam whose step size d is a running estimate of the distance to the solution."""

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


class ScaleByProdigyState(NamedTuple):
  """State of :func:`scale_by_prodigy`.

  Attributes:
    count: updates made so far (int32).
    learning_rate: the step size :math:`\\gamma_k c_k d_k` applied by the
      latest update (before the first, the one the first will apply); log it.
    d: the current estimate :math:`d_{k}` (the next update applies it).
    d_max: the largest estimate :math:`\\max(d_0, \\hat d_1, \\dots, \\hat
      d_k)` so far (:math:`d_k` is it, unless ``growth_rate`` holds it back).
    numerator: :math:`r_k`, the weighted sum of
      :math:`\\langle g_i, x_0 - x_i \\rangle`.
    initial_params: the starting point :math:`x_0`.
    mu: Adam's first moment :math:`m_k` (of :math:`d_i g_i`).
    nu: Adam's second moment :math:`v_k` (of :math:`d_i^2 g_i^2`).
    grad_sum: :math:`s_k`, the weighted sum of the gradients.
    taken: steps taken (int32), the bias correction's clock (the package's ``k``):
      a step whose rate is 0, or before any nonzero gradient, is skipped.
  """

  count: jax.Array
  learning_rate: jax.Array
  d: jax.Array
  d_max: jax.Array
  numerator: jax.Array
  initial_params: optax.Params
  mu: optax.Updates
  nu: optax.Updates
  grad_sum: optax.Updates
  taken: jax.Array


def scale_by_prodigy(
  learning_rate: LearningRate = 1.0,
  *,
  b1: ArrayLike = 0.9,
  b2: ArrayLike = 0.999,
  b3: ArrayLike | None = None,
  eps: ArrayLike = 1e-8,
  d0: ArrayLike = 1e-6,
  d_coef: ArrayLike = 1.0,
  growth_rate: ArrayLike = float("inf"),
  weight_decay: ArrayLike = 0.0,
  bias_correction: bool = False,
  safeguard_warmup: bool = False,
) -> optax.GradientTransformation:
  r"""Adam with Prodigy's learning-rate-free step size, as the authors' ``Prodigy``.

  From :math:`m_0 = v_0 = s_0 = 0`, :math:`r_0 = 0`, :math:`d_{\max} = d_0`,
  with :math:`\gamma_k` the ``learning_rate`` multiplier, :math:`c_k =
  \sqrt{1 - \beta_2^{k+1}} / (1 - \beta_1^{k+1})` with ``bias_correction``
  (else 1), :math:`\eta_k = \gamma_k c_k d_k` the applied step,
  :math:`\beta_3 = \sqrt{\beta_2}` unless given, :math:`\kappa` the
  ``d_coef`` and :math:`\rho` the ``growth_rate``:

  .. math::

    m_{k+1} &= \beta_1 m_k + (1 - \beta_1)\, d_k g_k, \qquad
    v_{k+1} = \beta_2 v_k + (1 - \beta_2)\, d_k^2 g_k^2, \\
    r_{k+1} &= \beta_3 r_k + \tfrac{d_k}{d_0} \eta_k
      \langle g_k, x_0 - x_k \rangle, \qquad
    s_{k+1} = \beta_3 s_k + \tfrac{d_k}{d_0} w_k g_k, \qquad
    \hat d_{k+1} = \kappa\, r_{k+1} / \lVert s_{k+1} \rVert_1, \\
    d_{\max} &\leftarrow \max(d_{\max}, \hat d_{k+1}), \qquad
    d_{k+1} = \min(d_{\max}, \rho\, d_k'), \quad
    d_k' = \max(d_k, \hat d_{k+1}) \text{ if } d_k = d_0 \text{ else } d_k, \\
    x_{k+1} &= x_k - \eta_k \Bigl(\frac{m_{k+1}}{\sqrt{v_{k+1}} + d_{k+1}
      \epsilon} + \lambda x_k\Bigr),

  with :math:`w_k = \eta_k`, or :math:`w_k = d_k` with ``safeguard_warmup``
  (the rate and the correction left out of :math:`s`, for a warmup schedule).
  Inner products and norms are over the whole pytree. This is the authors'
  ``Prodigy`` (``prodigyopt`` package) step for step, defaults included, and
  the tests reproduce its trajectory and :math:`d` to float64 rounding:
  ``denom = exp_avg_sq.sqrt().add_(d * eps)`` uses the *updated*
  :math:`d_{k+1}`, the step :math:`\eta_k` the old one; with ``b1 = 0`` (a
  number or a traced array alike) the step is :math:`\eta_k d_{k+1} g_k /
  (\ldots)`, as there. With the default unbounded growth, :math:`d_{k+1} = \max(d_k, \hat
  d_{k+1})`, the paper's Algorithm 4 (whose :math:`r, s` carry a factor
  :math:`1 - \beta_3` that cancels in the ratio, and whose :math:`d\epsilon`
  uses :math:`d_k`). :math:`\lambda` is a decoupled (AdamW-style) weight
  decay, scaled by the applied step :math:`\eta_k` (the package's default
  ``decouple=True``). The transform returns the final update, step size and
  sign included (it ends a chain), and needs ``params``. While :math:`s = 0`
  (no gradient so far was nonzero) the step is skipped, as the package skips
  it: no move, and neither :math:`d` nor the bias correction's clock advances.
  A non-finite gradient leaves :math:`r` and :math:`d` as they were; it flows
  into the moments and the update as in Adam.

  Differences from Optax: ``optax.contrib.prodigy`` always applies the bias
  correction; ``bias_correction=True`` reproduces it.

  Args:
    learning_rate: the multiplier :math:`\gamma \ge 0` (default 1, as in the
      paper), an array, or a schedule ``step -> multiplier``.
    b1: :math:`\beta_1 \in [0, 1)`.
    b2: :math:`\beta_2 \in [0, 1)`.
    b3: :math:`\beta_3 \in [0, 1)` for :math:`r, s`; ``None`` (default)
      for :math:`\sqrt{\beta_2}`, the paper's choice.
    eps: :math:`\epsilon \ge 0`, multiplied by :math:`d_{k+1}` in the
      denominator.
    d0: the initial estimate :math:`d_0 > 0` (paper: 1e-6).
    d_coef: :math:`\kappa > 0`, the estimate's multiplier (the authors' way
      to tune the method; default 1).
    growth_rate: :math:`\rho \ge 1`, the largest factor by which :math:`d`
      grows in one step (default ``inf``; e.g. 1.02 acts as a warmup).
    weight_decay: decoupled weight decay :math:`\lambda \ge 0`.
    bias_correction: static; Adam's bias correction :math:`c_k` (the
      package's ``use_bias_correction``, off by default as there).
    safeguard_warmup: static; leave :math:`\gamma_k c_k` out of :math:`s`
      (the package's option of that name).

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
  _checks.check_positive("d_coef", d_coef)
  _free.check_growth_rate(growth_rate)
  _checks.check_nonnegative("weight_decay", weight_decay)
  bias_correction = _checks.flag("bias_correction", bias_correction)
  safeguard_warmup = _checks.flag("safeguard_warmup", safeguard_warmup)

  def applied_step(d: jax.Array, count: jax.Array, taken: jax.Array) -> jax.Array:
    """:math:`\\eta_k = \\gamma_k c_k d_k` for the 0-based ``count`` ``k``."""
    step = d * _free.rate_at(learning_rate, count)
    if bias_correction:
      t = (taken + 1).astype(d.dtype)
      step = step * jnp.sqrt(_bias_correction(b2, t)) / _bias_correction(b1, t)
    return step.astype(d.dtype)

  def init_fn(params: optax.Params) -> ScaleByProdigyState:
    zeros = lambda: _free.strong_copy(jax.tree.map(jnp.zeros_like, params))
    d = jnp.asarray(d0).astype(default_float_dtype())
    return ScaleByProdigyState(
      count=jnp.zeros([], jnp.int32),
      learning_rate=applied_step(d, jnp.zeros([], jnp.int32), jnp.zeros([], jnp.int32)),
      d=d,
      d_max=d,
      numerator=jnp.zeros([], d.dtype),
      initial_params=_free.strong_copy(params),
      mu=zeros(),
      nu=zeros(),
      grad_sum=zeros(),
      taken=jnp.zeros([], jnp.int32),
    )

  def update_fn(
    updates: optax.Updates, state: ScaleByProdigyState, params: optax.Params | None = None
  ) -> tuple[optax.Updates, ScaleByProdigyState]:
    _free.need_params("scale_by_prodigy", params)
    d = state.d
    step = applied_step(d, state.count, state.taken)  # eta_k
    beta3 = jnp.sqrt(b2) if b3 is None else b3
    scale = d / jnp.asarray(d0).astype(d.dtype)  # d_k / d_0, as the package
    s_weight = scale * (d if safeguard_warmup else step)

    cast = lambda value, like: value.astype(like.dtype)
    to_start = jax.tree.map(lambda x0, x: x0 - x, state.initial_params, params)
    numerator = beta3 * state.numerator + scale * step * _free.tree_vdot(updates, to_start)
    numerator = _free.keep_finite(numerator, state.numerator)
    mu = jax.tree.map(lambda m, g: cast(b1 * m + (1 - b1) * d * g, m), state.mu, updates)
    nu = jax.tree.map(lambda v, g: cast(b2 * v + (1 - b2) * (d * g) ** 2, v), state.nu, updates)
    grad_sum = jax.tree.map(lambda s, g: cast(beta3 * s + s_weight * g, s), state.grad_sum, updates)
    denominator = _free.tree_l1(grad_sum)
    estimate = d_coef * safe_divide(numerator, denominator, fallback=0.0)
    estimate = _free.keep_finite(estimate, d)
    d_max = jnp.maximum(state.d_max, estimate)
    first = d == jnp.asarray(d0).astype(d.dtype)  # the package's `if d == d0`
    new_d = jnp.minimum(d_max, jnp.where(first, jnp.maximum(d, estimate), d) * growth_rate)

    # The package's b1 = 0 keeps no first moment and steps along -dlr * d * grad, with the new
    # d; a where, not a Python branch, so a sweep over b1 gives the same member as a number.
    direction = jax.tree.map(lambda m, g: jnp.where(b1 == 0, new_d * g, m), mu, updates)
    updates = jax.tree.map(
      lambda g, m, v, x: cast(-step * (m / (jnp.sqrt(v) + new_d * eps) + weight_decay * x), g),
      updates,
      direction,
      nu,
      params,
    )
    new_state = ScaleByProdigyState(
      count=optax.safe_int32_increment(state.count),
      learning_rate=step,
      d=new_d.astype(d.dtype),
      d_max=d_max.astype(d.dtype),
      numerator=numerator,
      initial_params=state.initial_params,
      mu=mu,
      nu=nu,
      grad_sum=grad_sum,
      taken=optax.safe_int32_increment(state.taken),
    )
    return _free.skip_idle_step(learning_rate, state, new_state, updates, denominator)

  return optax.GradientTransformation(init_fn, update_fn)
