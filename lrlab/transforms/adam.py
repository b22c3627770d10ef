"""Adam and AMSGrad: bias-corrected first and second moment estimates."""

from typing import NamedTuple

import jax
import jax.numpy as jnp
import optax
from jax.typing import ArrayLike

from lrlab import _checks
from lrlab.transforms import _tree


class ScaleByAdamState(NamedTuple):
  """State of :func:`scale_by_adam`.

  Attributes:
    count: updates made so far (int32).
    mu: first moment (moving average of the gradients), per parameter.
    nu: second moment (moving average of the squared gradients).
    nu_max: running maximum of ``nu`` when ``amsgrad=True``, else ``None``.
  """

  count: jax.Array
  mu: optax.Updates
  nu: optax.Updates
  nu_max: optax.Updates | None


def _bias_correction(decay: ArrayLike, count: jax.Array) -> jax.Array:
  r"""Return :math:`1 - \beta^t`, accurate for :math:`\beta` close to 1.

  Computed as :math:`-\operatorname{expm1}(t \log(1 - (1 - \beta)))` with
  :math:`1 - \beta` formed before ``decay`` becomes a float32, so for a
  Python-float ``decay`` the result is as accurate as PyTorch's float64
  ``1 - beta ** step`` rounded to float32; ``1 - 0.999 ** 1`` in float32 is
  off by 1.3e-5 relative. ``count`` is the 1-based step :math:`t`.
  """
  return -jnp.expm1(count * jnp.log1p(-(1 - decay)))


def scale_by_adam(
  *,
  b1: ArrayLike = 0.9,
  b2: ArrayLike = 0.999,
  eps: ArrayLike = 1e-8,
  amsgrad: bool = False,
) -> optax.GradientTransformation:
  r"""Rescale updates by Adam's bias-corrected moment estimates.

  PyTorch's ``torch.optim.Adam`` arithmetic:

  .. math::

    m_t = \beta_1 m_{t-1} + (1 - \beta_1) g_t, \qquad
    v_t = \beta_2 v_{t-1} + (1 - \beta_2) g_t^2, \\
    u_t = \frac{m_t / (1 - \beta_1^t)}
      {\sqrt{\hat v_t} / \sqrt{1 - \beta_2^t} + \epsilon},

  from :math:`m_0 = v_0 = 0`, where :math:`\hat v_t = v_t`, or with
  ``amsgrad=True`` :math:`\hat v_t = \max(\hat v_{t-1}, v_t)`: PyTorch's
  AMSGrad keeps the maximum of the *raw* second moment and divides it by the
  current bias correction.

  Defaults are PyTorch's and Optax's. ``optax.scale_by_adam`` computes the
  same quantity, :math:`\epsilon` outside the root, but forms
  :math:`1 - \beta_2^t` in float32, where ``float32(0.999)`` puts it off by
  1.3e-5 relative at :math:`t = 1`; PyTorch forms it in float64, and lrlab
  as accurately in float32 (via ``expm1``/``log1p``), so lrlab follows
  PyTorch's trajectory, not Optax's, to float32 precision.
  ``optax.scale_by_amsgrad`` differs more: it keeps the maximum of the
  bias-corrected :math:`v_t / (1 - \beta_2^t)`.

  Args:
    b1: :math:`\beta_1`, the first-moment decay, in ``[0, 1)``.
    b2: :math:`\beta_2`, the second-moment decay, in ``[0, 1)``.
    eps: :math:`\epsilon \ge 0`, added to the root.
    amsgrad: use the running maximum of the second moment (AMSGrad).

  Returns:
    An ``optax.GradientTransformation`` with state :class:`ScaleByAdamState`.

  Example:
    >>> import jax.numpy as jnp
    >>> from lrlab.transforms import scale_by_adam
    >>> tx = scale_by_adam()
    >>> state = tx.init({"w": jnp.zeros(2)})
    >>> updates, state = tx.update({"w": jnp.array([3.0, -0.5])}, state)
    >>> print(updates["w"].round(4))
    [ 1. -1.]

  References:
    Kingma and Ba, `Adam: A Method for Stochastic Optimization
    <https://arxiv.org/abs/1412.6980>`_, 2014.

    Reddi, Kale and Kumar, `On the Convergence of Adam and Beyond
    <https://arxiv.org/abs/1904.09237>`_, 2018.

    PyTorch, `torch.optim.Adam
    <https://pytorch.org/docs/stable/generated/torch.optim.Adam.html>`_.
  """
  _checks.check_given(b1=b1, b2=b2, eps=eps)
  _checks.check_betas(b1=b1, b2=b2)
  _checks.check_nonnegative("eps", eps)
  amsgrad = _checks.flag("amsgrad", amsgrad)

  def init_fn(params):
    zeros = lambda: _tree.zeros_like(params)
    return ScaleByAdamState(
      count=jnp.zeros([], jnp.int32),
      mu=zeros(),
      nu=zeros(),
      nu_max=zeros() if amsgrad else None,
    )

  def update_fn(updates, state, params=None):
    del params
    count = optax.safe_int32_increment(state.count)
    mu = jax.tree.map(lambda g, m: (m + (1 - b1) * (g - m)).astype(m.dtype), updates, state.mu)
    nu = jax.tree.map(lambda g, v: (b2 * v + (1 - b2) * (g * g)).astype(v.dtype), updates, state.nu)
    if amsgrad:
      nu_max = jax.tree.map(jnp.maximum, state.nu_max, nu)
      second = nu_max
    else:
      nu_max = None
      second = nu
    correction1 = _bias_correction(b1, count)
    root_correction2 = jnp.sqrt(_bias_correction(b2, count))
    updates = jax.tree.map(
      lambda g, m, v: ((m / correction1) / (jnp.sqrt(v) / root_correction2 + eps)).astype(g.dtype),
      updates,
      mu,
      second,
    )
    return updates, ScaleByAdamState(count=count, mu=mu, nu=nu, nu_max=nu_max)

  return optax.GradientTransformation(init_fn, update_fn)
