"""Gradient clipping: by the global norm, or elementwise by value."""

import jax
import jax.numpy as jnp
import optax
from jax.typing import ArrayLike

from lrlab import _checks


def _global_norm(updates: optax.Updates) -> jax.Array:
  """Return the Euclidean norm of all leaves of ``updates`` taken together."""
  squares = [
    jnp.sum(jnp.square(leaf.astype(jnp.promote_types(leaf.dtype, jnp.float32))))
    for leaf in jax.tree.leaves(updates)
  ]
  return jnp.sqrt(sum(squares, jnp.zeros([])))


def clip_by_global_norm(
  max_norm: ArrayLike,
  *,
  eps: ArrayLike = 1e-6,
) -> optax.GradientTransformation:
  r"""Rescale all updates together so that their global norm is at most ``max_norm``.

  ``torch.nn.utils.clip_grad_norm_`` arithmetic, with
  :math:`\lVert g \rVert` the norm of all leaves together:

  .. math::

    g \leftarrow g \cdot \min\Bigl(1, \frac{c}{\lVert g \rVert + \epsilon}\Bigr).

  PyTorch's :math:`\epsilon` is ``1e-6`` (the default here);
  ``optax.clip_by_global_norm`` has none, which is ``eps=0``. A NaN norm
  makes every update NaN and an infinite one every finite update 0, as in
  both libraries, so a diverging run stays visible.

  Args:
    max_norm: :math:`c \ge 0`, the largest global norm let through.
    eps: :math:`\epsilon \ge 0`, added to the norm.

  Returns:
    A stateless ``optax.GradientTransformation``.

  Example:
    >>> import jax.numpy as jnp
    >>> from lrlab.transforms import clip_by_global_norm
    >>> tx = clip_by_global_norm(1.0, eps=0.0)
    >>> updates = {"a": jnp.array([3.0]), "b": jnp.array([4.0])}
    >>> clipped, _ = tx.update(updates, tx.init(updates))
    >>> print(clipped["a"], clipped["b"])
    [0.6] [0.8]

  References:
    Pascanu, Mikolov and Bengio, `On the difficulty of training Recurrent
    Neural Networks <https://arxiv.org/abs/1211.5063>`_, 2013.

    PyTorch, `torch.nn.utils.clip_grad_norm_
    <https://pytorch.org/docs/stable/generated/torch.nn.utils.clip_grad_norm_.html>`_.
  """
  _checks.check_given(max_norm=max_norm, eps=eps)
  _checks.check_nonnegative("max_norm", max_norm)
  _checks.check_nonnegative("eps", eps)

  def init_fn(params):
    del params
    return optax.EmptyState()

  def update_fn(updates, state, params=None):
    del params
    norm = _global_norm(updates) + eps
    # Not `norm > max_norm`: a NaN norm must clip too (a NaN scale), as in PyTorch and Optax,
    # so no leaf passes unbounded beside a NaN one.
    keep = norm <= max_norm
    scale = jnp.where(keep, 1, max_norm / jnp.where(keep, 1, norm))
    updates = jax.tree.map(lambda g: (g * scale).astype(g.dtype), updates)
    return updates, state

  return optax.GradientTransformation(init_fn, update_fn)


def clip_by_value(clip_value: ArrayLike) -> optax.GradientTransformation:
  r"""Clip every update element to ``[-clip_value, clip_value]``.

  .. math::

    g \leftarrow \min(\max(g, -c), c),

  as ``torch.nn.utils.clip_grad_value_`` and ``optax.clip`` do.

  Args:
    clip_value: :math:`c \ge 0`, the largest magnitude let through (PyTorch's name).

  Returns:
    A stateless ``optax.GradientTransformation``.

  Example:
    >>> import jax.numpy as jnp
    >>> from lrlab.transforms import clip_by_value
    >>> tx = clip_by_value(1.0)
    >>> updates = {"w": jnp.array([-3.0, 0.5, 2.0])}
    >>> clipped, _ = tx.update(updates, tx.init(updates))
    >>> print(clipped["w"])
    [-1.   0.5  1. ]

  References:
    Pascanu, Mikolov and Bengio, `On the difficulty of training Recurrent
    Neural Networks <https://arxiv.org/abs/1211.5063>`_, 2013 (section 3.2).

    PyTorch, `torch.nn.utils.clip_grad_value_
    <https://pytorch.org/docs/stable/generated/torch.nn.utils.clip_grad_value_.html>`_.
  """
  _checks.check_given(clip_value=clip_value)
  _checks.check_nonnegative("clip_value", clip_value)

  def init_fn(params):
    del params
    return optax.EmptyState()

  def update_fn(updates, state, params=None):
    del params
    updates = jax.tree.map(lambda g: jnp.clip(g, -clip_value, clip_value).astype(g.dtype), updates)
    return updates, state

  return optax.GradientTransformation(init_fn, update_fn)
