"""Adamax: Adam with an exponentially weighted infinity norm."""

from typing import NamedTuple

import jax
import jax.numpy as jnp
import optax
from jax.typing import ArrayLike

from lrlab import _checks
from lrlab.transforms import _tree
from lrlab.transforms.adam import _bias_correction


class ScaleByAdamaxState(NamedTuple):
  """State of :func:`scale_by_adamax`.

  Attributes:
    count: updates made so far (int32).
    mu: first moment (moving average of the gradients), per parameter.
    inf_norm: exponentially weighted infinity norm of the gradients.
  """

  count: jax.Array
  mu: optax.Updates
  inf_norm: optax.Updates


def scale_by_adamax(
  *,
  b1: ArrayLike = 0.9,
  b2: ArrayLike = 0.999,
  eps: ArrayLike = 1e-8,
) -> optax.GradientTransformation:
  r"""Rescale updates by Adamax's weighted infinity norm.

  PyTorch's ``torch.optim.Adamax`` arithmetic:

  .. math::

    m_t = \beta_1 m_{t-1} + (1 - \beta_1) g_t, \qquad
    n_t = \max(\beta_2 n_{t-1}, |g_t| + \epsilon), \qquad
    u_t = \frac{m_t}{(1 - \beta_1^t)\, n_t},

  from :math:`m_0 = n_0 = 0`. :math:`\epsilon` sits inside the maximum, as in
  PyTorch and ``optax.scale_by_adamax`` (same rule, same defaults); the paper
  has no :math:`\epsilon`.

  Args:
    b1: :math:`\beta_1`, the first-moment decay, in ``[0, 1)``.
    b2: :math:`\beta_2`, the infinity-norm decay, in ``[0, 1)``.
    eps: :math:`\epsilon \ge 0`, added to :math:`|g_t|`.

  Returns:
    An ``optax.GradientTransformation`` with state :class:`ScaleByAdamaxState`.

  Example:
    >>> import jax.numpy as jnp
    >>> from lrlab.transforms import scale_by_adamax
    >>> tx = scale_by_adamax()
    >>> state = tx.init({"w": jnp.zeros(2)})
    >>> updates, state = tx.update({"w": jnp.array([3.0, -0.5])}, state)
    >>> print(updates["w"].round(4))
    [ 1. -1.]

  References:
    Kingma and Ba, `Adam: A Method for Stochastic Optimization
    <https://arxiv.org/abs/1412.6980>`_, 2014 (section 7.1).

    PyTorch, `torch.optim.Adamax
    <https://pytorch.org/docs/stable/generated/torch.optim.Adamax.html>`_.
  """
  _checks.check_given(b1=b1, b2=b2, eps=eps)
  _checks.check_betas(b1=b1, b2=b2)
  _checks.check_nonnegative("eps", eps)

  def init_fn(params):
    zeros = lambda: _tree.zeros_like(params)
    return ScaleByAdamaxState(count=jnp.zeros([], jnp.int32), mu=zeros(), inf_norm=zeros())

  def update_fn(updates, state, params=None):
    del params
    count = optax.safe_int32_increment(state.count)
    mu = jax.tree.map(lambda g, m: (m + (1 - b1) * (g - m)).astype(m.dtype), updates, state.mu)
    inf_norm = jax.tree.map(
      lambda g, n: jnp.maximum(b2 * n, jnp.abs(g) + eps).astype(n.dtype), updates, state.inf_norm
    )
    correction1 = _bias_correction(b1, count)
    updates = jax.tree.map(
      lambda g, m, n: (m / n / correction1).astype(g.dtype), updates, mu, inf_norm
    )
    return updates, ScaleByAdamaxState(count=count, mu=mu, inf_norm=inf_norm)

  return optax.GradientTransformation(init_fn, update_fn)
