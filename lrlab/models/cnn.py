"""Small convolutional networks for MNIST-1D signals and 8x8 digit images."""

from collections.abc import Sequence

import jax
import numpy as np
from flax import nnx

from lrlab import _checks
from lrlab.models.activations import Activation, resolve
from lrlab.models.conv import patch_conv


class CNN1D(nnx.Module):
  """The MNIST-1D baseline CNN: three strided 1-D convolutions, then a linear head.

  Input ``(..., length)`` is read as a one-channel signal. Layers, as in the
  paper's ``ConvBase``: conv(kernel 5, stride 2, padding 1), conv(3, 2, 1),
  conv(3, 2, 1), each with ``channels`` filters and the activation, then the
  flattened features (``25 * 5 = 125`` for ``length=40``) feed a linear head.
  Flax initialisation (LeCun normal, zero bias) replaces PyTorch's.
  Parameters: ``conv_0``, ``conv_1``, ``conv_2``, ``head``.

  Args:
    length: signal length, >= 5 (40 for MNIST-1D).
    out_features: number of outputs, >= 1.
    channels: filters per convolution, >= 1.
    activation: a name in :data:`lrlab.models.activations.ACTIVATIONS` or a callable.
    rngs: Flax random streams for the initialisation.

  Example:
    >>> model = lrlab.models.CNN1D(40, 10, rngs=nnx.Rngs(0))
    >>> model(jnp.ones((5, 40))).shape
    (5, 10)

  References:
    Greydanus, "Scaling down Deep Learning", 2020. https://arxiv.org/abs/2011.14439
  """

  KERNELS = (5, 3, 3)

  def __init__(
    self,
    length: int,
    out_features: int,
    *,
    channels: int = 25,
    activation: str | Activation = "relu",
    rngs: nnx.Rngs,
  ):
    _checks.check("length", length, lambda n: (n >= 5) & (n == np.floor(n)), "an integer >= 5")
    out_features = _checks.count("out_features", out_features)
    channels = _checks.count("channels", channels)
    self.activation = resolve(activation)
    size, features = int(length), 1
    for i, kernel in enumerate(self.KERNELS):
      conv = nnx.Conv(
        features,
        int(channels),
        kernel,
        strides=2,
        padding=[(1, 1)],
        conv_general_dilated=patch_conv,
        rngs=rngs,
      )
      setattr(self, f"conv_{i}", conv)
      size, features = (size + 2 - kernel) // 2 + 1, int(channels)
    self.head = nnx.Linear(size * features, int(out_features), rngs=rngs)

  def __call__(self, x: jax.Array) -> jax.Array:
    h = x[..., None]
    for i in range(len(self.KERNELS)):
      h = self.activation(getattr(self, f"conv_{i}")(h))
    return self.head(h.reshape(*h.shape[:-2], -1))


class CNN2D(nnx.Module):
  """A small 2-D CNN: 3x3 convolutions (the first stride 1, later ones stride 2), then a head.

  Input ``(..., height * width)`` is reshaped to a one-channel image. With the
  defaults on 8x8 digits: conv 3x3/16 (8x8) -> conv 3x3 stride 2/32 (4x4) ->
  linear head on the 512 flattened features, about 10k parameters. SAME
  padding; Flax initialisation. Parameters: ``conv_0 ...``, ``head``.

  Args:
    image_shape: ``(height, width)`` of the flattened input images.
    out_features: number of outputs, >= 1.
    channels: filters of each convolution, e.g. ``(16, 32)``; each >= 1.
    activation: a name in :data:`lrlab.models.activations.ACTIVATIONS` or a callable.
    rngs: Flax random streams for the initialisation.

  Example:
    >>> model = lrlab.models.CNN2D((8, 8), 10, rngs=nnx.Rngs(0))
    >>> model(jnp.ones((5, 64))).shape
    (5, 10)
  """

  def __init__(
    self,
    image_shape: Sequence[int],
    out_features: int,
    *,
    channels: Sequence[int] = (16, 32),
    activation: str | Activation = "relu",
    rngs: nnx.Rngs,
  ):
    image_shape = _checks.counts("image_shape", image_shape)
    if len(image_shape) != 2:
      raise ValueError(f"image_shape must be (height, width); got {image_shape!r}.")
    out_features = _checks.count("out_features", out_features)
    channels = _checks.counts("channels", channels, empty=False)
    self.image_shape = image_shape
    self.activation = resolve(activation)
    self.depth = len(channels)
    (height, width), features = image_shape, 1
    for i, out in enumerate(channels):
      stride = 1 if i == 0 else 2
      conv = nnx.Conv(
        features,
        out,
        (3, 3),
        strides=stride,
        padding="SAME",
        conv_general_dilated=patch_conv,
        rngs=rngs,
      )
      setattr(self, f"conv_{i}", conv)
      height, width, features = -(-height // stride), -(-width // stride), out
    self.head = nnx.Linear(height * width * features, int(out_features), rngs=rngs)

  def __call__(self, x: jax.Array) -> jax.Array:
    h = x.reshape(*x.shape[:-1], *self.image_shape, 1)
    for i in range(self.depth):
      h = self.activation(getattr(self, f"conv_{i}")(h))
    return self.head(h.reshape(*h.shape[:-3], -1))
