"""NAdam: Adam with Nesterov momentum and Dozat's momentum schedule."""

from typing import NamedTuple

import jax
import jax.numpy as jnp
import optax
from jax.typing import ArrayLike

from lrlab import _checks
from lrlab._numerics import default_float_dtype
from lrlab.transforms import _tree
from lrlab.transforms.adam import _bias_correction


class ScaleByNadamState(NamedTuple):
  """State of :func:`scale_by_nadam`.

  Attributes:
    count: updates made so far (int32).
    mu_product: product of the momentum schedule so far,
      :math:`\\prod_{i \\le t} \\mu_i` (a float scalar, 1 at the start).
    mu: first moment (moving average of the gradients), per parameter.
    nu: second moment (moving average of the squared gradients).
  """

  count: jax.Array
  mu_product: jax.Array
  mu: optax.Updates
  nu: optax.Updates


def scale_by_nadam(
  *,
  b1: ArrayLike = 0.9,
  b2: ArrayLike = 0.999,
  eps: ArrayLike = 1e-8,
  momentum_decay: ArrayLike = 4e-3,
) -> optax.GradientTransformation:
  r"""Rescale updates by NAdam's Nesterov-corrected moment estimates.

  PyTorch's ``torch.optim.NAdam`` arithmetic, with :math:`\psi` the momentum
  decay and the momentum schedule
  :math:`\mu_t = \beta_1 (1 - \tfrac12 \cdot 0.96^{t \psi})`:

  .. math::

    m_t = \beta_1 m_{t-1} + (1 - \beta_1) g_t, \qquad
    v_t = \beta_2 v_{t-1} + (1 - \beta_2) g_t^2, \qquad
    d_t = \sqrt{v_t / (1 - \beta_2^t)} + \epsilon, \\
    u_t = \frac{1 - \mu_t}{1 - \prod_{i \le t} \mu_i} \frac{g_t}{d_t}
      + \frac{\mu_{t+1}}{1 - \prod_{i \le t+1} \mu_i} \frac{m_t}{d_t}.

  Defaults are PyTorch's. ``optax.scale_by_adam(nesterov=True)`` (behind
  ``optax.nadam``) has no momentum schedule: it is the constant
  :math:`\mu_t = \beta_1`, which this rule approaches as
  ``momentum_decay`` grows (``0.96 ** (t * 1e6)`` is 0 in float32). As for
  :func:`scale_by_adam`, :math:`1 - \beta_2^t` is computed to float32
  precision, where Optax's float32 power loses about 1e-5 relative.

  Args:
    b1: :math:`\beta_1`, the first-moment decay, in ``[0, 1)``.
    b2: :math:`\beta_2`, the second-moment decay, in ``[0, 1)``.
    eps: :math:`\epsilon \ge 0`, added to the root.
    momentum_decay: :math:`\psi \ge 0` (PyTorch's ``momentum_decay``).

  Returns:
    An ``optax.GradientTransformation`` with state :class:`ScaleByNadamState`.

  Example:
    >>> import jax.numpy as jnp
    >>> from lrlab.transforms import scale_by_nadam
    >>> tx = scale_by_nadam()
    >>> state = tx.init({"w": jnp.zeros(2)})
    >>> updates, state = tx.update({"w": jnp.array([3.0, -0.5])}, state)
    >>> print(updates["w"].round(3))
    [ 1.056 -1.056]

  References:
    Dozat, `Incorporating Nesterov Momentum into Adam
    <https://openreview.net/forum?id=OM0jvwB8jIp57ZJjtNEZ>`_, 2016.

    PyTorch, `torch.optim.NAdam
    <https://pytorch.org/docs/stable/generated/torch.optim.NAdam.html>`_.
  """
  _checks.check_given(b1=b1, b2=b2, eps=eps, momentum_decay=momentum_decay)
  _checks.check_betas(b1=b1, b2=b2)
  _checks.check_nonnegative("eps", eps)
  _checks.check_nonnegative("momentum_decay", momentum_decay)

  def schedule(step):
    return b1 * (1 - 0.5 * 0.96 ** (step * momentum_decay))

  def init_fn(params):
    zeros = lambda: _tree.zeros_like(params)
    return ScaleByNadamState(
      count=jnp.zeros([], jnp.int32),
      mu_product=jnp.ones([], default_float_dtype()),
      mu=zeros(),
      nu=zeros(),
    )

  def update_fn(updates, state, params=None):
    del params
    count = optax.safe_int32_increment(state.count)
    float_dtype = state.mu_product.dtype  # the default float dtype when the state was made
    step = count.astype(float_dtype)
    mu_now = schedule(step)
    mu_next = schedule(step + 1)
    mu_product = (state.mu_product * mu_now).astype(float_dtype)
    grad_weight = (1 - mu_now) / (1 - mu_product)
    moment_weight = mu_next / (1 - mu_product * mu_next)
    mu = jax.tree.map(lambda g, m: (m + (1 - b1) * (g - m)).astype(m.dtype), updates, state.mu)
    nu = jax.tree.map(lambda g, v: (b2 * v + (1 - b2) * (g * g)).astype(v.dtype), updates, state.nu)
    correction2 = _bias_correction(b2, count)

    def direction(g, m, v):
      denominator = jnp.sqrt(v / correction2) + eps
      return (grad_weight * g / denominator + moment_weight * m / denominator).astype(g.dtype)

    updates = jax.tree.map(direction, updates, mu, nu)
    return updates, ScaleByNadamState(count=count, mu_product=mu_product, mu=mu, nu=nu)

  return optax.GradientTransformation(init_fn, update_fn)
