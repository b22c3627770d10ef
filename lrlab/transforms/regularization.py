"""Penalties on the parameters: coupled L2 and L1, and decoupled weight decay."""

from collections.abc import Callable

import jax
import jax.numpy as jnp
import optax
from jax.typing import ArrayLike

from lrlab import _checks


def _params_transform(
  name: str, weight: ArrayLike, term: Callable[[jax.Array], jax.Array]
) -> optax.GradientTransformation:
  """A stateless transform adding ``weight * term(p)`` to each update."""
  _checks.check_given(weight=weight)
  _checks.check_nonnegative("weight", weight)

  def init_fn(params):
    del params
    return optax.EmptyState()

  def update_fn(updates, state, params=None):
    if params is None:
      raise ValueError(
        f"{name} needs the parameters: call update(updates, state, params) with params."
      )
    updates = jax.tree.map(lambda u, p: (u + weight * term(p)).astype(u.dtype), updates, params)
    return updates, state

  return optax.GradientTransformation(init_fn, update_fn)


def add_l2(weight: ArrayLike) -> optax.GradientTransformation:
  r"""Add the gradient of an L2 penalty, coupled: it passes through later rules.

  .. math::

    u \leftarrow g + \lambda\, p,

  the gradient of :math:`\tfrac{\lambda}{2} \lVert p \rVert^2`. Placed first
  in a chain it is PyTorch's ``weight_decay`` of SGD, Adagrad, RMSprop,
  Adadelta, Adam, Adamax and NAdam (``grad = grad + weight_decay * param``),
  so adaptive rules rescale it. For AdamW's decoupled decay use
  :func:`add_decayed_weights`. Optax has no separate coupled form; its
  ``add_decayed_weights`` placed first in a chain computes the same.

  Args:
    weight: :math:`\lambda \ge 0`.

  Returns:
    A stateless ``optax.GradientTransformation``; its ``update`` needs
    ``params`` (a ``ValueError`` says so when they are missing).

  Example:
    >>> import jax.numpy as jnp
    >>> from lrlab.transforms import add_l2
    >>> tx = add_l2(0.1)
    >>> params = {"w": jnp.array([1.0, -2.0])}
    >>> updates, _ = tx.update({"w": jnp.zeros(2)}, tx.init(params), params)
    >>> print(updates["w"])
    [ 0.1 -0.2]

  References:
    Krogh and Hertz, `A Simple Weight Decay Can Improve Generalization
    <https://papers.nips.cc/paper/563-a-simple-weight-decay-can-improve-generalization>`_,
    1991.
  """
  return _params_transform("add_l2", weight, lambda p: p)


def add_l1(weight: ArrayLike) -> optax.GradientTransformation:
  r"""Add a subgradient of an L1 penalty, coupled: it passes through later rules.

  .. math::

    u \leftarrow g + \lambda \operatorname{sign}(p),

  a subgradient of :math:`\lambda \lVert p \rVert_1`, with
  :math:`\operatorname{sign}(0) = 0`. PyTorch and Optax have no built-in L1
  term; lrlab's optimizers expose it as ``l1=`` beside ``weight_decay``.

  Args:
    weight: :math:`\lambda \ge 0`.

  Returns:
    A stateless ``optax.GradientTransformation``; its ``update`` needs
    ``params``.

  Example:
    >>> import jax.numpy as jnp
    >>> from lrlab.transforms import add_l1
    >>> tx = add_l1(0.1)
    >>> params = {"w": jnp.array([3.0, 0.0, -2.0])}
    >>> updates, _ = tx.update({"w": jnp.zeros(3)}, tx.init(params), params)
    >>> print(updates["w"])
    [ 0.1  0.  -0.1]

  References:
    Tibshirani, `Regression Shrinkage and Selection via the Lasso
    <https://doi.org/10.1111/j.2517-6161.1996.tb02080.x>`_, 1996.
  """
  return _params_transform("add_l1", weight, jnp.sign)


def add_decayed_weights(weight: ArrayLike) -> optax.GradientTransformation:
  r"""Add decoupled weight decay, to be multiplied by the learning rate only.

  .. math::

    u \leftarrow u + \lambda\, p.

  Placed after the adaptive rule and before
  :func:`~lrlab.transforms.scale_by_learning_rate`, the step becomes
  :math:`p \leftarrow p - \eta (u + \lambda p)`, which is PyTorch's AdamW
  (``p *= 1 - lr * weight_decay`` then the Adam step) and Optax's
  ``add_decayed_weights``: the decay follows the learning rate's schedule
  but bypasses the adaptive rescaling. Defaults live in the optimizers
  (``adamw``: PyTorch's 1e-2; Optax's ``adamw`` uses 1e-4).

  Args:
    weight: :math:`\lambda \ge 0`.

  Returns:
    A stateless ``optax.GradientTransformation``; its ``update`` needs
    ``params``.

  Example:
    >>> import jax.numpy as jnp
    >>> import optax
    >>> from lrlab.transforms import add_decayed_weights, scale_by_adam
    >>> from lrlab.transforms import scale_by_learning_rate
    >>> tx = optax.chain(scale_by_adam(), add_decayed_weights(1e-2),
    ...                  scale_by_learning_rate(1e-3))
    >>> params = {"w": jnp.array([1.0, -1.0])}
    >>> updates, _ = tx.update({"w": jnp.ones(2)}, tx.init(params), params)
    >>> print(updates["w"])
    [-0.00101 -0.00099]

  References:
    Loshchilov and Hutter, `Decoupled Weight Decay Regularization
    <https://arxiv.org/abs/1711.05101>`_, 2019.
  """
  return _params_transform("add_decayed_weights", weight, lambda p: p)
