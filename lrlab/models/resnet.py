"""A small residual network with BatchNorm, for 1-D signals or 2-D images given flat."""

from collections.abc import Sequence

import jax
from flax import nnx

from lrlab import _checks
from lrlab.models.activations import Activation, resolve


class ResidualBlock(nnx.Module):
  """``act(BN(conv(act(BN(conv(h))))) + shortcut(h))``: the basic block of He et al.

  Both convolutions have ``kernel`` taps per spatial axis and SAME padding and
  no bias (BatchNorm's shift replaces it); the first has ``stride``. The
  shortcut is the identity when the shape is kept, otherwise a 1x1 convolution
  of that stride followed by BatchNorm (option B of the paper).

  Args:
    in_channels, out_channels: channels in and out, >= 1.
    ndim: number of spatial axes, 1 or 2.
    kernel: taps per spatial axis, >= 1.
    stride: stride of the first convolution and the shortcut, >= 1.
    momentum: BatchNorm's running-average momentum (Flax's convention: the
      weight of the old statistics; PyTorch's ``momentum=0.1`` is 0.9 here).
    activation: the activation function.
    rngs: Flax random streams for the initialisation.
  """

  def __init__(
    self,
    in_channels: int,
    out_channels: int,
    *,
    ndim: int,
    kernel: int,
    stride: int,
    momentum: float,
    activation: Activation,
    rngs: nnx.Rngs,
  ):
    taps, strides = (kernel,) * ndim, (stride,) * ndim
    self.activation = activation
    conv = lambda i, o, k, s: nnx.Conv(
      i, o, k, strides=s, padding="SAME", use_bias=False, rngs=rngs
    )
    norm = lambda c: nnx.BatchNorm(c, momentum=momentum, rngs=rngs)
    self.conv_0, self.norm_0 = conv(in_channels, out_channels, taps, strides), norm(out_channels)
    self.conv_1, self.norm_1 = conv(out_channels, out_channels, taps, 1), norm(out_channels)
    self.project = stride != 1 or in_channels != out_channels
    if self.project:
      self.shortcut = conv(in_channels, out_channels, (1,) * ndim, strides)
      self.norm_shortcut = norm(out_channels)

  def __call__(self, h: jax.Array) -> jax.Array:
    out = self.activation(self.norm_0(self.conv_0(h)))
    out = self.norm_1(self.conv_1(out))
    skip = self.norm_shortcut(self.shortcut(h)) if self.project else h
    return self.activation(out + skip)


class ResNet(nnx.Module):
  """A small ResNet: a stem, stages of :class:`ResidualBlock`, global average pooling, a head.

  Input ``(..., prod(input_shape))`` is reshaped to a one-channel signal
  (``input_shape = (length,)``, 1-D convolutions) or image (``(height,
  width)``, 2-D). The stem is conv(``kernel``, ``channels[0]``), BatchNorm and
  the activation; stage ``i`` has ``blocks`` residual blocks of ``channels[i]``
  channels, the first of every stage after the first with stride 2 (halving
  each spatial axis); the features are averaged over the spatial axes and a
  linear head gives ``out_features`` logits. BatchNorm's statistics are the
  model state (:func:`lrlab.models.functional`): the batch's in training mode,
  the running averages in evaluation mode. Flax initialisation (LeCun normal).

  Args:
    input_shape: ``(length,)`` or ``(height, width)`` of the flattened inputs.
    out_features: number of outputs, >= 1.
    channels: channels of each stage, e.g. ``(16, 32)``; each >= 1.
    blocks: residual blocks per stage, >= 1.
    kernel: convolution taps per spatial axis, >= 1.
    momentum: BatchNorm momentum in [0, 1) (Flax's convention; 0.9 is PyTorch's default 0.1).
    activation: a name in :data:`lrlab.models.activations.ACTIVATIONS` or a callable.
    rngs: Flax random streams for the initialisation.

  Example:
    >>> model = lrlab.models.resnet.ResNet((8, 8), 10, rngs=nnx.Rngs(0))
    >>> model(jnp.ones((5, 64))).shape
    (5, 10)

  References:
    He et al., "Deep Residual Learning for Image Recognition", 2015.
    https://arxiv.org/abs/1512.03385
    Ioffe and Szegedy, "Batch Normalization", 2015. https://arxiv.org/abs/1502.03167
  """

  def __init__(
    self,
    input_shape: Sequence[int],
    out_features: int,
    *,
    channels: Sequence[int] = (16, 32),
    blocks: int = 1,
    kernel: int = 3,
    momentum: float = 0.9,
    activation: str | Activation = "relu",
    rngs: nnx.Rngs,
  ):
    input_shape = tuple(int(s) for s in input_shape)
    if len(input_shape) not in (1, 2):
      raise ValueError(f"input_shape must be (length,) or (height, width); got {input_shape!r}.")
    _checks.check_positive("input_shape", input_shape)
    _checks.check_positive("out_features", out_features)
    channels = tuple(int(c) for c in channels)
    if not channels:
      raise ValueError("channels must name at least one stage; got ().")
    _checks.check_positive("channels", channels)
    _checks.check_positive("blocks", blocks)
    _checks.check_positive("kernel", kernel)
    _checks.check_interval("momentum", momentum, 0.0, 1.0, closed_high=False)
    self.input_shape = input_shape
    self.activation = resolve(activation)
    ndim = len(input_shape)
    self.stem = nnx.Conv(
      1, channels[0], (int(kernel),) * ndim, padding="SAME", use_bias=False, rngs=rngs
    )
    self.stem_norm = nnx.BatchNorm(channels[0], momentum=momentum, rngs=rngs)
    layers, features = [], channels[0]
    for i, out in enumerate(channels):
      for j in range(int(blocks)):
        stride = 2 if i > 0 and j == 0 else 1
        layers.append(
          ResidualBlock(
            features,
            out,
            ndim=ndim,
            kernel=int(kernel),
            stride=stride,
            momentum=momentum,
            activation=self.activation,
            rngs=rngs,
          )
        )
        features = out
    self.blocks = nnx.List(layers)
    self.head = nnx.Linear(features, int(out_features), rngs=rngs)

  def __call__(self, x: jax.Array) -> jax.Array:
    h = x.reshape(*x.shape[:-1], *self.input_shape, 1)
    h = self.activation(self.stem_norm(self.stem(h)))
    for block in self.blocks:
      h = block(h)
    spatial = tuple(range(-1 - len(self.input_shape), -1))
    return self.head(h.mean(axis=spatial))
