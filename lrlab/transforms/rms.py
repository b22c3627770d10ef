"""RMSprop: divide by the root of a moving average of squared gradients."""

from typing import NamedTuple

import jax
import jax.numpy as jnp
import optax
from jax.typing import ArrayLike

from lrlab import _checks
from lrlab.transforms import _tree


class ScaleByRmsState(NamedTuple):
  """State of :func:`scale_by_rms`.

  Attributes:
    square_avg: moving average of the squared gradients, per parameter.
    grad_avg: moving average of the gradients when ``centered=True``, else
      ``None`` (an empty pytree, so no memory is spent on it).
  """

  square_avg: optax.Updates
  grad_avg: optax.Updates | None


def scale_by_rms(
  *,
  alpha: ArrayLike = 0.99,
  eps: ArrayLike = 1e-8,
  centered: bool = False,
) -> optax.GradientTransformation:
  r"""Rescale updates by the root of a moving average of squared gradients.

  PyTorch's ``torch.optim.RMSprop`` arithmetic, with :math:`\alpha` the smoothing constant:

  .. math::

    v_t = \alpha v_{t-1} + (1 - \alpha) g_t^2, \qquad
    u_t = \frac{g_t}{\sqrt{v_t} + \epsilon},

  and with ``centered=True`` (Graves 2013) the moving variance instead,

  .. math::

    m_t = \alpha m_{t-1} + (1 - \alpha) g_t, \qquad
    u_t = \frac{g_t}{\sqrt{\max(v_t - m_t^2, 0)} + \epsilon},

  starting from :math:`v_0 = m_0 = 0`. The clamp at 0 only acts where
  rounding makes :math:`v_t - m_t^2` (mathematically never negative)
  slightly negative, where PyTorch would produce NaN.

  Defaults are PyTorch's (``alpha=0.99``, ``eps=1e-8``, ``eps`` outside the
  root). ``optax.scale_by_rms`` defaults to ``decay=0.9`` and
  ``eps_in_sqrt=True`` (:math:`g / \sqrt{v + \epsilon}`); with
  ``eps_in_sqrt=False`` and ``initial_scale=0`` it is this rule.
  RMSprop's momentum is :func:`~lrlab.transforms.trace` placed after this
  transform and before the learning rate, as in :func:`lrlab.optimizers.rmsprop`.

  Args:
    alpha: the smoothing constant :math:`\alpha \in [0, 1)` (Optax's ``decay``).
    eps: :math:`\epsilon \ge 0`, added to the root.
    centered: normalise by the estimated variance instead of the second moment.

  Returns:
    An ``optax.GradientTransformation`` with state :class:`ScaleByRmsState`.

  Example:
    >>> import jax.numpy as jnp
    >>> from lrlab.transforms import scale_by_rms
    >>> tx = scale_by_rms(alpha=0.75)
    >>> state = tx.init({"w": jnp.zeros(2)})
    >>> updates, state = tx.update({"w": jnp.array([1.0, -1.0])}, state)
    >>> print(updates["w"])
    [ 2. -2.]

  References:
    Hinton, `Neural Networks for Machine Learning, lecture 6e
    <https://www.cs.toronto.edu/~tijmen/csc321/slides/lecture_slides_lec6.pdf>`_,
    2012.

    Graves, `Generating Sequences With Recurrent Neural Networks
    <https://arxiv.org/abs/1308.0850>`_, 2013.

    PyTorch, `torch.optim.RMSprop
    <https://pytorch.org/docs/stable/generated/torch.optim.RMSprop.html>`_.
  """
  _checks.check_given(alpha=alpha, eps=eps)
  _checks.check_interval("alpha", alpha, 0.0, 1.0, closed_high=False)
  _checks.check_nonnegative("eps", eps)
  centered = _checks.flag("centered", centered)

  def init_fn(params):
    zeros = lambda: _tree.zeros_like(params)
    return ScaleByRmsState(square_avg=zeros(), grad_avg=zeros() if centered else None)

  def update_fn(updates, state, params=None):
    del params
    square_avg = jax.tree.map(
      lambda g, v: (alpha * v + (1 - alpha) * (g * g)).astype(v.dtype), updates, state.square_avg
    )
    if centered:
      grad_avg = jax.tree.map(
        lambda g, m: (m + (1 - alpha) * (g - m)).astype(m.dtype), updates, state.grad_avg
      )
      variance = jax.tree.map(lambda v, m: jnp.maximum(v - m * m, 0), square_avg, grad_avg)
    else:
      grad_avg = None
      variance = square_avg
    updates = jax.tree.map(
      lambda g, v: (g / (jnp.sqrt(v) + eps)).astype(g.dtype), updates, variance
    )
    return updates, ScaleByRmsState(square_avg=square_avg, grad_avg=grad_avg)

  return optax.GradientTransformation(init_fn, update_fn)
