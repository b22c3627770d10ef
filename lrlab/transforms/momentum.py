"""Heavy-ball and Nesterov momentum, with PyTorch's SGD buffer semantics."""

from typing import NamedTuple

import jax
import jax.numpy as jnp
import optax
from jax.typing import ArrayLike

from lrlab import _checks
from lrlab.transforms import _tree


class TraceState(NamedTuple):
  """State of :func:`trace`.

  Attributes:
    count: updates made so far (int32); the buffer is seeded when it is 0.
    trace: the momentum buffer, one array per parameter.
  """

  count: jax.Array
  trace: optax.Updates


def trace(
  momentum: ArrayLike,
  *,
  nesterov: bool = False,
  dampening: ArrayLike = 0.0,
) -> optax.GradientTransformation:
  r"""Accumulate updates in a momentum buffer, as ``torch.optim.SGD`` does.

  With :math:`\mu` the momentum and :math:`\tau` the dampening:

  .. math::

    b_1 = g_1, \qquad b_t = \mu\, b_{t-1} + (1 - \tau)\, g_t \quad (t > 1),

  and the output is :math:`b_t`, or :math:`g_t + \mu\, b_t` with
  ``nesterov=True``. The first buffer is the first update itself, undamped,
  exactly as PyTorch seeds its buffer. Followed by
  :func:`~lrlab.transforms.scale_by_learning_rate`, this is PyTorch's
  ``p -= lr * b``, so a learning-rate schedule scales the whole step and the
  buffer never holds an old learning rate.

  With ``dampening=0`` the result equals a buffer started at zero
  (:math:`b_t = \mu b_{t-1} + g_t`, :math:`b_0 = 0`), which is
  ``optax.trace`` and also the momentum buffer of ``torch.optim.RMSprop``.
  Optax has no dampening and names the momentum ``decay``. Momentum 0 (also
  as a traced array) gives the updates back unchanged, whatever the
  dampening, as PyTorch then skips its buffer.

  Args:
    momentum: the momentum factor :math:`\mu`, in ``[0, 1)``.
    nesterov: use Nesterov's look-ahead output :math:`g_t + \mu b_t`. As in
      PyTorch, it requires ``momentum > 0`` and ``dampening == 0``.
    dampening: the dampening :math:`\tau`, in ``[0, 1]``; PyTorch's default 0.

  Returns:
    An ``optax.GradientTransformation`` with state :class:`TraceState`.

  Raises:
    ValueError: for a concrete momentum outside ``[0, 1)``, a dampening
      outside ``[0, 1]``, a ``nesterov`` other than ``True`` or ``False``, or
      ``nesterov=True`` with concrete ``momentum == 0`` or ``dampening != 0``.

  Example:
    >>> import jax.numpy as jnp
    >>> from lrlab.transforms import trace
    >>> tx = trace(0.9)
    >>> state = tx.init({"w": jnp.zeros(2)})
    >>> updates, state = tx.update({"w": jnp.ones(2)}, state)
    >>> updates, state = tx.update({"w": jnp.ones(2)}, state)
    >>> print(updates["w"])
    [1.9 1.9]

  References:
    Polyak, `Some methods of speeding up the convergence of iteration methods
    <https://doi.org/10.1016/0041-5553(64)90137-5>`_, 1964.

    Sutskever et al., `On the importance of initialization and momentum in
    deep learning <https://proceedings.mlr.press/v28/sutskever13.html>`_, 2013.

    PyTorch, `torch.optim.SGD
    <https://pytorch.org/docs/stable/generated/torch.optim.SGD.html>`_.
  """
  _checks.check_given(momentum=momentum, dampening=dampening)
  _checks.check_interval("momentum", momentum, 0.0, 1.0, closed_high=False)
  _checks.check_interval("dampening", dampening, 0.0, 1.0)
  nesterov = _checks.flag("nesterov", nesterov)
  if nesterov:
    _checks.check("momentum", momentum, lambda x: x > 0, "> 0 when nesterov=True")
    _checks.check("dampening", dampening, lambda x: x == 0, "0 when nesterov=True")

  def init_fn(params):
    return TraceState(count=jnp.zeros([], jnp.int32), trace=_tree.zeros_like(params))

  def update_fn(updates, state, params=None):
    del params
    first = state.count == 0
    # PyTorch skips the buffer when momentum is 0, dampening or not: keep b_t = g_t then.
    undamped = jnp.where(momentum == 0, 1.0, 1 - dampening)

    def new_buffer(g, b):
      return jnp.where(first, g, momentum * b + undamped * g).astype(b.dtype)

    buffer = jax.tree.map(new_buffer, updates, state.trace)
    if nesterov:
      updates = jax.tree.map(lambda g, b: (g + momentum * b).astype(g.dtype), updates, buffer)
    else:
      updates = jax.tree.map(lambda g, b: b.astype(g.dtype), updates, buffer)
    return updates, TraceState(count=optax.safe_int32_increment(state.count), trace=buffer)

  return optax.GradientTransformation(init_fn, update_fn)
