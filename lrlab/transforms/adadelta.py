"""Adadelta: a step whose units match the parameters' (Zeiler 2012)."""

from typing import NamedTuple

import jax
import jax.numpy as jnp
import optax
from jax.typing import ArrayLike

from lrlab import _checks
from lrlab.transforms import _tree


class ScaleByAdadeltaState(NamedTuple):
  """State of :func:`scale_by_adadelta`.

  Attributes:
    square_avg: moving average of the squared gradients, per parameter.
    acc_delta: moving average of the squared steps, per parameter.
  """

  square_avg: optax.Updates
  acc_delta: optax.Updates


def scale_by_adadelta(
  *,
  rho: ArrayLike = 0.9,
  eps: ArrayLike = 1e-6,
) -> optax.GradientTransformation:
  r"""Rescale updates by the ratio of RMS step to RMS gradient (Adadelta).

  PyTorch's ``torch.optim.Adadelta`` arithmetic (Zeiler's Algorithm 1):

  .. math::

    v_t = \rho v_{t-1} + (1 - \rho) g_t^2, \qquad
    u_t = \frac{\sqrt{a_{t-1} + \epsilon}}{\sqrt{v_t + \epsilon}}\, g_t, \qquad
    a_t = \rho a_{t-1} + (1 - \rho) u_t^2,

  from :math:`v_0 = a_0 = 0`. Zeiler's method has no learning rate; PyTorch
  multiplies by one (default 1.0), done here by the following
  :func:`~lrlab.transforms.scale_by_learning_rate`. Defaults are PyTorch's
  and Optax's (``rho=0.9``, ``eps=1e-6``); ``optax.scale_by_adadelta`` is the
  same rule.

  Args:
    rho: the decay :math:`\rho`, in ``[0, 1]`` as PyTorch allows.
    eps: :math:`\epsilon \ge 0`, inside both roots.

  Returns:
    An ``optax.GradientTransformation`` with state :class:`ScaleByAdadeltaState`.

  Example:
    >>> import jax.numpy as jnp
    >>> from lrlab.transforms import scale_by_adadelta
    >>> tx = scale_by_adadelta(eps=1e-4)
    >>> state = tx.init({"w": jnp.zeros(2)})
    >>> updates, state = tx.update({"w": jnp.array([1.0, -1.0])}, state)
    >>> print(updates["w"].round(4))
    [ 0.0316 -0.0316]

  References:
    Zeiler, `ADADELTA: An Adaptive Learning Rate Method
    <https://arxiv.org/abs/1212.5701>`_, 2012.

    PyTorch, `torch.optim.Adadelta
    <https://pytorch.org/docs/stable/generated/torch.optim.Adadelta.html>`_.
  """
  _checks.check_given(rho=rho, eps=eps)
  _checks.check_interval("rho", rho, 0.0, 1.0)
  _checks.check_nonnegative("eps", eps)

  def init_fn(params):
    zeros = lambda: _tree.zeros_like(params)
    return ScaleByAdadeltaState(square_avg=zeros(), acc_delta=zeros())

  def update_fn(updates, state, params=None):
    del params
    square_avg = jax.tree.map(
      lambda g, v: (rho * v + (1 - rho) * (g * g)).astype(v.dtype), updates, state.square_avg
    )
    updates = jax.tree.map(
      lambda g, v, a: (jnp.sqrt(a + eps) / jnp.sqrt(v + eps) * g).astype(g.dtype),
      updates,
      square_avg,
      state.acc_delta,
    )
    acc_delta = jax.tree.map(
      lambda u, a: (rho * a + (1 - rho) * (u * u)).astype(a.dtype), updates, state.acc_delta
    )
    return updates, ScaleByAdadeltaState(square_avg=square_avg, acc_delta=acc_delta)

  return optax.GradientTransformation(init_fn, update_fn)
