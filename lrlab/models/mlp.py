"""A fully connected network whose depth and width are arguments, laid out for vmapped sweeps."""

import functools
from collections.abc import Sequence

import jax
import jax.numpy as jnp
from flax import nnx
from jax.custom_derivatives import SymbolicZero

from lrlab import _checks
from lrlab.models.activations import Activation, resolve


@jax.custom_jvp
def _affine(weight: jax.Array, bias: jax.Array, h: jax.Array) -> jax.Array:
  """``W h + b`` for ``W`` of shape ``(out, in)`` and ``h`` of shape ``(in, n)``.

  Its derivatives are exactly those of the plain expression; only their
  operand layout differs. Reverse mode transposes the linear map of
  :func:`_affine_jvp`, which reads a copy of ``W^T`` kept ``(in, out)`` in
  memory (an optimization barrier stops XLA from folding the copy away), so
  the input gradient ``W^T dy`` contracts both operands as XLA:CPU's fast
  batched-matmul kernels want them. Without it, XLA folds the transpose into
  the product, which then contracts ``W`` over its major axis and runs on a
  generic kernel: for the MNIST-1D MLP's 10-wide head, about twice as slow.
  Forward mode and higher derivatives work as for the plain expression.
  """
  return weight @ h + bias[:, None]


@functools.partial(_affine.defjvp, symbolic_zeros=True)
def _affine_jvp(primals, tangents):
  """``d(W h + b) = dW h + W dh + db``, with ``W dh`` read through a stored ``W^T``."""
  weight, bias, h = primals
  d_weight, d_bias, d_h = tangents
  out = _affine(weight, bias, h)
  terms = []
  if not isinstance(d_weight, SymbolicZero):
    terms.append(d_weight @ h)
  if not isinstance(d_h, SymbolicZero):
    weight_t = jax.lax.optimization_barrier(weight.T)
    terms.append(weight_t.T @ d_h)
  if not isinstance(d_bias, SymbolicZero):
    terms.append(jnp.broadcast_to(d_bias[:, None], out.shape))
  return out, functools.reduce(jnp.add, terms) if terms else jnp.zeros_like(out)


class Dense(nnx.Module):
  """An affine layer ``y = x W^T + b`` with ``W`` stored ``(out_features, in_features)``.

  The weight has the shape and name of ``torch.nn.Linear.weight`` (Flax's
  ``nnx.Linear`` stores the transpose as ``kernel``). It is initialised as
  Flax does (LeCun normal, zero bias): the kernel is drawn ``(in, out)`` and
  transposed, so a key gives exactly ``nnx.Linear``'s values, transposed.
  :meth:`feature_major` applies the layer to features-first activations, the
  layout in which :class:`MLP` runs.

  Args:
    in_features: input width, >= 1.
    out_features: output width, >= 1.
    rngs: Flax random streams for the initialisation.

  Example:
    >>> layer = lrlab.models.Dense(3, 2, rngs=nnx.Rngs(0))
    >>> layer.weight.shape, layer(jnp.ones((5, 3))).shape
    ((2, 3), (5, 2))
  """

  def __init__(self, in_features: int, out_features: int, *, rngs: nnx.Rngs):
    _checks.check_positive("in_features", in_features)
    _checks.check_positive("out_features", out_features)
    shape = (int(in_features), int(out_features))
    self.weight = nnx.Param(nnx.initializers.lecun_normal()(rngs.params(), shape).T)
    self.bias = nnx.Param(nnx.initializers.zeros_init()(rngs.params(), shape[1:]))

  def __call__(self, x: jax.Array) -> jax.Array:
    """``x`` of shape ``(..., in_features)`` to ``(..., out_features)``."""
    return jnp.einsum("...i,oi->...o", x, self.weight[...]) + self.bias[...]

  def feature_major(
    self, h: jax.Array, *, features_last: bool = False, transposed_backward: bool = False
  ) -> jax.Array:
    """``h`` of shape ``(in_features, ...)`` to ``(out_features, ...)``: ``W h + b``.

    Args:
      h: features-first activations.
      features_last: ``h`` is ``(..., in_features)`` (data as stored), read
        as it is rather than transposed first; the output is features-first.
      transposed_backward: differentiate through a copy of ``W^T`` stored
        ``(in, out)`` (see :func:`_affine`): the same derivatives, from an
        input-gradient product in the operand layout XLA:CPU runs fastest.
        It pays for a narrow layer, where the copy is small and the default
        product slowest; :class:`MLP` uses it for its head. Ignored with
        ``features_last``.
    """
    weight, bias = self.weight[...], self.bias[...]
    if transposed_backward and not features_last:
      out = _affine(weight, bias, h.reshape(h.shape[0], -1))
      return out.reshape(out.shape[0], *h.shape[1:])
    layout = "oi,...i->o..." if features_last else "oi,i...->o..."
    return jnp.einsum(layout, weight, h) + jnp.reshape(bias, (-1,) + (1,) * (h.ndim - 1))


class MLP(nnx.Module):
  """Multilayer perceptron: ``len(hidden)`` activated dense layers, then a linear head.

  ``h_0 = x``, ``h_{i+1} = activation(h_i W_i^T + b_i)``, output
  ``h_k W^T + b``, each ``W_i`` stored ``(out, in)`` as in ``torch.nn.Linear``
  (see :class:`Dense`; Flax's initialisation: LeCun-normal weights, zero
  biases). Parameters are named ``dense_0 ... dense_{k-1}`` and ``head``, each
  ``{"weight", "bias"}``.

  The network runs feature-major: the first layer computes ``W_0 x^T``
  straight from the data, the activations stay ``(features, batch)`` and only
  the logits are transposed back, to ``(..., out_features)``. The values are
  those of the usual batch-major product up to float rounding; the layout is
  chosen for speed. When a sweep vmaps many members over one shared
  minibatch, the forward and weight-gradient products then take the operand
  layout XLA:CPU hands to its fast batched-matmul kernels, the first layer
  merges across members into one wide product, and no activations are
  transposed in between (with batch-major activations the weight gradients
  take the slower generic path instead, plus the transposes). The head is
  differentiated through a stored copy of its small ``W^T`` and its logits'
  gradient is kept feature-major, so its input and weight gradients run on
  the fast kernels too; only the hidden layers' input gradients, whose
  ``W^T`` would cost as much to copy as the generic kernel loses, do not.
  Measured on the benchmark's MNIST-1D MLP on a 2-core CPU: a sweep's step
  is about 10% faster than with batch-major activations and ``(in, out)``
  kernels, and the head's treatment adds about 4% (2% for a single run);
  see BENCHMARKS.md.

  Args:
    in_features: input width, >= 1.
    hidden: widths of the hidden layers, e.g. ``(128, 128)``; ``()`` gives a
      linear model.
    out_features: output width, >= 1.
    activation: a name in :data:`lrlab.models.activations.ACTIVATIONS` or a callable
      applied elementwise (the activations are laid out features-first).
    rngs: Flax random streams for the initialisation.

  Example:
    >>> model = lrlab.models.MLP(40, (100, 100), 10, rngs=nnx.Rngs(0))
    >>> model(jnp.ones((5, 40))).shape, model.dense_0.weight.shape
    ((5, 10), (100, 40))

  References:
    The MNIST-1D baseline MLP has ``hidden=(100, 100)`` and ReLU: Greydanus,
    "Scaling down Deep Learning", 2020. https://arxiv.org/abs/2011.14439
  """

  def __init__(
    self,
    in_features: int,
    hidden: Sequence[int],
    out_features: int,
    *,
    activation: str | Activation = "relu",
    rngs: nnx.Rngs,
  ):
    _checks.check_positive("in_features", in_features)
    _checks.check_positive("out_features", out_features)
    hidden = tuple(int(w) for w in hidden)
    _checks.check_positive("hidden", hidden)
    self.activation = resolve(activation)
    self.depth = len(hidden)
    widths = (int(in_features), *hidden)
    for i in range(self.depth):
      setattr(self, f"dense_{i}", Dense(widths[i], widths[i + 1], rngs=rngs))
    self.head = Dense(widths[-1], int(out_features), rngs=rngs)

  def __call__(self, x: jax.Array) -> jax.Array:
    layers = [getattr(self, f"dense_{i}") for i in range(self.depth)] + [self.head]
    h = layers[0].feature_major(x, features_last=True)  # (features, ...batch) from here on
    for layer in layers[1:]:
      h = layer.feature_major(self.activation(h), transposed_backward=layer is self.head)
    # The barrier keeps the logits' gradient feature-major in memory, so that the
    # head's weight gradient runs on the fast kernels too (see _affine).
    return jnp.moveaxis(jax.lax.optimization_barrier(h), 0, -1)
