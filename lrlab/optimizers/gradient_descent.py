"""Stochastic gradient descent with (Nesterov) momentum, as ``torch.optim.SGD``."""

import optax
from jax.typing import ArrayLike

from lrlab.optimizers._chain import check_common, momentum_buffer, penalties
from lrlab.transforms.learning_rate import LearningRate, scale_by_learning_rate


def sgd(
  learning_rate: LearningRate = 1e-3,
  *,
  momentum: ArrayLike = 0.0,
  nesterov: bool = False,
  dampening: ArrayLike = 0.0,
  weight_decay: ArrayLike = 0.0,
  l1: ArrayLike = 0.0,
) -> optax.GradientTransformationExtraArgs:
  r"""Stochastic gradient descent with optional (Nesterov) momentum, as ``torch.optim.SGD``.

  With :math:`\lambda` the weight decay, :math:`\mu` the momentum and
  :math:`\tau` the dampening:

  .. math::

    g_t \leftarrow g_t + \lambda p + \lambda_1 \operatorname{sign}(p), \qquad
    b_t = \mu b_{t-1} + (1 - \tau) g_t \ (b_1 = g_t), \qquad
    p \leftarrow p - \eta_t \,(b_t \text{ or } g_t + \mu b_t).

  The chain is ``add_l2 -> add_l1 -> trace -> scale_by_learning_rate``;
  a link whose weight is a Python number 0 is left out, while an array (traced
  or not) always keeps it, so a sweep's configurations share one state
  structure; an array momentum of 0 then gives plain SGD, as PyTorch. Defaults are
  PyTorch's, including ``lr=1e-3``; ``optax.sgd`` has no default rate, no
  dampening and no weight decay, and its momentum buffer starts at 0, which
  is the same trajectory when ``dampening=0``.

  Args:
    learning_rate: a rate ``>= 0``, an array, or a schedule ``step -> rate``.
    momentum: :math:`\mu \in [0, 1)`.
    nesterov: Nesterov momentum; requires ``momentum > 0`` and
      ``dampening == 0``.
    dampening: :math:`\tau \in [0, 1]`.
    weight_decay: coupled L2 weight :math:`\lambda \ge 0`.
    l1: coupled L1 weight :math:`\lambda_1 \ge 0` (not in PyTorch).

  Returns:
    An ``optax.GradientTransformationExtraArgs``.

  Example:
    >>> import jax.numpy as jnp
    >>> import optax
    >>> from lrlab import optimizers
    >>> tx = optimizers.sgd(0.1, momentum=0.9, nesterov=True)
    >>> params = {"w": jnp.array([1.0, -2.0])}
    >>> state = tx.init(params)
    >>> updates, state = tx.update({"w": params["w"]}, state, params)
    >>> print(optax.apply_updates(params, updates)["w"])
    [ 0.81 -1.62]

  References:
    Sutskever et al., `On the importance of initialization and momentum in
    deep learning <https://proceedings.mlr.press/v28/sutskever13.html>`_, 2013.

    PyTorch, `torch.optim.SGD
    <https://pytorch.org/docs/stable/generated/torch.optim.SGD.html>`_.
  """
  check_common(learning_rate, weight_decay, l1)
  return optax.chain(
    *penalties(weight_decay, l1),
    *momentum_buffer(momentum, nesterov, dampening),
    scale_by_learning_rate(learning_rate),
  )
