"""Adagrad: divide by the root of the running sum of squared gradients."""

from typing import NamedTuple

import jax
import jax.numpy as jnp
import optax
from jax.typing import ArrayLike

from lrlab import _checks


class ScaleByAdagradState(NamedTuple):
  """State of :func:`scale_by_adagrad`.

  Attributes:
    sum_of_squares: the running sum of squared gradients, per parameter.
  """

  sum_of_squares: optax.Updates


def scale_by_adagrad(
  *,
  eps: ArrayLike = 1e-10,
  initial_accumulator_value: ArrayLike = 0.0,
) -> optax.GradientTransformation:
  r"""Rescale updates by the root of the accumulated squared gradients (Adagrad).

  PyTorch's ``torch.optim.Adagrad`` arithmetic:

  .. math::

    s_0 = s_{\text{init}}, \qquad s_t = s_{t-1} + g_t^2, \qquad
    u_t = \frac{g_t}{\sqrt{s_t} + \epsilon}.

  The defaults are PyTorch's (``eps=1e-10``, ``initial_accumulator_value=0``).
  ``optax.scale_by_rss`` differs: it puts :math:`\epsilon` inside the root,
  :math:`g / \sqrt{s + \epsilon}`, and ``optax.adagrad`` starts the sum at 0.1
  with ``eps=1e-7``; ``scale_by_adagrad(initial_accumulator_value=0.1)`` agrees with
  it up to the :math:`\epsilon` term. PyTorch's ``lr_decay`` is a learning-rate
  schedule here: ``lambda t: lr / (1 + t * lr_decay)``.

  Args:
    eps: :math:`\epsilon \ge 0`, added to the root.
    initial_accumulator_value: :math:`s_{\text{init}} \ge 0`, the starting sum.

  Returns:
    An ``optax.GradientTransformation`` with state :class:`ScaleByAdagradState`.

  Example:
    >>> import jax.numpy as jnp
    >>> from lrlab.transforms import scale_by_adagrad
    >>> tx = scale_by_adagrad()
    >>> state = tx.init({"w": jnp.zeros(2)})
    >>> updates, state = tx.update({"w": jnp.array([3.0, -4.0])}, state)
    >>> print(updates["w"])
    [ 1. -1.]

  References:
    Duchi, Hazan and Singer, `Adaptive Subgradient Methods for Online Learning
    and Stochastic Optimization <https://jmlr.org/papers/v12/duchi11a.html>`_,
    2011.

    PyTorch, `torch.optim.Adagrad
    <https://pytorch.org/docs/stable/generated/torch.optim.Adagrad.html>`_.
  """
  _checks.check_given(eps=eps, initial_accumulator_value=initial_accumulator_value)
  _checks.check_nonnegative("eps", eps)
  _checks.check_nonnegative("initial_accumulator_value", initial_accumulator_value)

  def init_fn(params):
    # Strongly typed in the parameters' dtype, as _tree.zeros_like: a Python-float leaf works and
    # the state's type never changes under jit and lax.scan.
    fill = lambda p: jnp.full(jnp.shape(p), initial_accumulator_value, jnp.result_type(p))
    return ScaleByAdagradState(sum_of_squares=jax.tree.map(fill, params))

  def update_fn(updates, state, params=None):
    del params
    sum_of_squares = jax.tree.map(
      lambda g, s: (s + g * g).astype(s.dtype), updates, state.sum_of_squares
    )
    updates = jax.tree.map(
      lambda g, s: (g / (jnp.sqrt(s) + eps)).astype(g.dtype), updates, sum_of_squares
    )
    return updates, ScaleByAdagradState(sum_of_squares=sum_of_squares)

  return optax.GradientTransformation(init_fn, update_fn)
