"""A fully connected network whose depth and width are arguments, laid out for vmapped sweeps."""

from collections.abc import Sequence

import jax
import jax.numpy as jnp
from flax import nnx

from lrlab import _checks
from lrlab.models.activations import Activation, resolve


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

  def feature_major(self, h: jax.Array, *, features_last: bool = False) -> jax.Array:
    """``h`` of shape ``(in_features, ...)`` to ``(out_features, ...)``: ``W h + b``.

    With ``features_last``, ``h`` is ``(..., in_features)`` (data as stored),
    read as it is rather than transposed first; the output is features-first.
    """
    bias = jnp.reshape(self.bias[...], (-1,) + (1,) * (h.ndim - 1))
    layout = "oi,...i->o..." if features_last else "oi,i...->o..."
    return jnp.einsum(layout, self.weight[...], h) + bias


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
  transposed in between; only the hidden layers' input gradients still take
  the slower generic path (with batch-major activations it is the weight
  gradients instead, plus the transposes). Measured on the benchmark's
  MNIST-1D MLP on a 2-core CPU: a sweep's step is about 10% faster than with
  batch-major activations and ``(in, out)`` kernels (a single run is not
  slower); see BENCHMARKS.md.

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
      h = layer.feature_major(self.activation(h))
    return jnp.moveaxis(h, 0, -1)
