"""A fully connected network whose depth and width are arguments."""

from collections.abc import Sequence

import jax
from flax import nnx

from lrlab import _checks
from lrlab.models.activations import Activation, resolve


class MLP(nnx.Module):
  """Multilayer perceptron: ``len(hidden)`` activated dense layers, then a linear head.

  ``h_0 = x``, ``h_{i+1} = activation(h_i W_i + b_i)``, output ``h_k W + b``.
  Layers use Flax's initialisation (LeCun-normal kernels, zero biases).
  Parameters are named ``dense_0 ... dense_{k-1}`` and ``head``.

  Args:
    in_features: input width, >= 1.
    hidden: widths of the hidden layers, e.g. ``(128, 128)``; ``()`` gives a
      linear model.
    out_features: output width, >= 1.
    activation: a name in :data:`lrlab.models.activations.ACTIVATIONS` or a callable.
    rngs: Flax random streams for the initialisation.

  Example:
    >>> model = lrlab.models.MLP(40, (100, 100), 10, rngs=nnx.Rngs(0))
    >>> model(jnp.ones((5, 40))).shape
    (5, 10)

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
      setattr(self, f"dense_{i}", nnx.Linear(widths[i], widths[i + 1], rngs=rngs))
    self.head = nnx.Linear(widths[-1], int(out_features), rngs=rngs)

  def __call__(self, x: jax.Array) -> jax.Array:
    for i in range(self.depth):
      x = self.activation(getattr(self, f"dense_{i}")(x))
    return self.head(x)
