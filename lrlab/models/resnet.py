"""A small residual network with BatchNorm, for 1-D signals or 2-D images given flat."""

import functools
import math
from collections.abc import Sequence

import jax
from flax import nnx

from lrlab import _checks
from lrlab.models import mup
from lrlab.models.activations import Activation, resolve
from lrlab.models.conv import patch_conv


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
      i, o, k, strides=s, padding="SAME", use_bias=False, conv_general_dilated=patch_conv, rngs=rngs
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
  r"""A small ResNet: a stem, stages of :class:`ResidualBlock`, global average pooling, a head.

  Input ``(..., prod(input_shape))`` is reshaped to a one-channel signal
  (``input_shape = (length,)``, 1-D convolutions) or image (``(height,
  width)``, 2-D). The stem is conv(``kernel``, ``channels[0]``), BatchNorm and
  the activation; stage ``i`` has ``blocks`` residual blocks of ``channels[i]``
  channels, the first of every stage after the first with stride 2 (halving
  each spatial axis); the features are averaged over the spatial axes and a
  linear head gives ``out_features`` logits. BatchNorm's statistics are the
  model state (:func:`lrlab.models.functional`): the batch's in training mode,
  the running averages in evaluation mode. The running variance averages the batch's biased
  variance (Flax's ``nnx.BatchNorm``), where PyTorch's averages the unbiased one (``n / (n -
  1)`` times it), so the two differ in evaluation mode after training, though not in training
  mode. Flax initialisation (LeCun normal).

  ``parametrization="mup"`` is the maximal-update parametrization (Yang et al.
  2022, Table 8; the ``mup`` package's ResNet example) relative to
  ``base_width``, the channels of each stage at which muP equals SP. With
  :math:`m` the last stage's ``channels[-1] / base_width[-1]``, the head is
  muP's readout: it computes :math:`W (h / m) + b` (output multiplier
  :math:`1/m`) with :math:`W` drawn at :math:`m` times LeCun's variance
  (``mup.MuReadout``), as :class:`lrlab.models.MLP`'s. The convolutions keep
  LeCun's :math:`1/\text{fan-in}` variance, which is Table 8's for hidden
  weights and, with the stem's fixed fan-in, for input weights. The
  per-tensor rates are :func:`resnet_lr_multipliers` (also
  :meth:`lr_multipliers`). At the base width every factor is exactly 1, so
  muP and SP give the same parameters, outputs and updates, bit for bit.

  Args:
    input_shape: ``(length,)`` or ``(height, width)`` of the flattened inputs.
    out_features: number of outputs, >= 1.
    channels: channels of each stage, e.g. ``(16, 32)``; each >= 1.
    blocks: residual blocks per stage, >= 1.
    kernel: convolution taps per spatial axis, >= 1.
    momentum: BatchNorm momentum in [0, 1) (Flax's convention; 0.9 is PyTorch's default 0.1).
    activation: a name in :data:`lrlab.models.activations.ACTIVATIONS` or a callable.
    parametrization: ``"sp"`` (standard, the default) or ``"mup"``.
    base_width: under ``"mup"``, the channels (an int, or one per stage) at which
      muP equals SP; ``None``: ``channels`` itself. Checked but unused under ``"sp"``.
    rngs: Flax random streams for the initialisation.

  Example:
    >>> model = lrlab.models.resnet.ResNet((8, 8), 10, rngs=nnx.Rngs(0))
    >>> model(jnp.ones((5, 64))).shape
    (5, 10)

  References:
    He et al., "Deep Residual Learning for Image Recognition", 2015.
    https://arxiv.org/abs/1512.03385
    Ioffe and Szegedy, "Batch Normalization", 2015. https://arxiv.org/abs/1502.03167
    Yang et al., `Tensor Programs V <https://arxiv.org/abs/2203.03466>`_, 2022 (Table 8).
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
    parametrization: str = "sp",
    base_width: int | Sequence[int] | None = None,
    rngs: nnx.Rngs,
  ):
    input_shape = _checks.counts("input_shape", input_shape)
    if len(input_shape) not in (1, 2):
      raise ValueError(f"input_shape must be (length,) or (height, width); got {input_shape!r}.")
    out_features = _checks.count("out_features", out_features)
    channels = _checks.counts("channels", channels, empty=False)
    blocks = _checks.count("blocks", blocks)
    kernel = _checks.count("kernel", kernel)
    _checks.check_interval("momentum", momentum, 0.0, 1.0, closed_high=False)
    _checks.check_choice("parametrization", parametrization, mup.PARAMETRIZATIONS)
    base = mup.base_widths(channels, base_width, unit="stage")
    self.input_shape = input_shape
    self.options = dict(channels=channels, blocks=int(blocks), kernel=int(kernel))
    self.out_features, self.parametrization, self.base_width = out_features, parametrization, base
    self.activation = resolve(activation)
    ndim = len(input_shape)
    self.stem = nnx.Conv(
      1,
      channels[0],
      (int(kernel),) * ndim,
      padding="SAME",
      use_bias=False,
      conv_general_dilated=patch_conv,
      rngs=rngs,
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
    # muP's readout: W (h / m) + b with W of variance m / fan_in (MuReadout, rescaled).
    self.output_multiplier = None
    if parametrization == "mup" and channels[-1] != base[-1]:
      m = channels[-1] / base[-1]
      self.output_multiplier = 1.0 / m
      self.head.kernel[...] = self.head.kernel[...] * math.sqrt(m)

  def lr_multipliers(self, optimizer: str) -> dict:
    """This network's per-tensor learning-rate multipliers: :func:`resnet_lr_multipliers`."""
    return resnet_lr_multipliers(
      self.input_shape,
      self.out_features,
      optimizer,
      parametrization=self.parametrization,
      base_width=self.base_width,
      **self.options,
    )

  def __call__(self, x: jax.Array) -> jax.Array:
    h = x.reshape(*x.shape[:-1], *self.input_shape, 1)
    h = self.activation(self.stem_norm(self.stem(h)))
    for block in self.blocks:
      h = block(h)
    spatial = tuple(range(-1 - len(self.input_shape), -1))
    h = h.mean(axis=spatial)
    if self.output_multiplier is not None:
      h = h * self.output_multiplier
    return self.head(h)


def resnet_lr_multipliers(
  input_shape: Sequence[int],
  out_features: int,
  optimizer: str,
  *,
  channels: Sequence[int] = (16, 32),
  blocks: int = 1,
  kernel: int = 3,
  parametrization: str = "sp",
  base_width: int | Sequence[int] | None = None,
) -> dict:
  r"""The per-tensor learning-rate multipliers of a :class:`ResNet`, shaped like its params.

  With :math:`m_i` = ``channels[i] / base_width[i]`` the width multiplier of
  stage :math:`i` and :math:`\eta` the rate tuned at the base width, muP
  (Yang et al. 2022, Table 8; ``mup.MuAdam``, ``mup.MuSGD``) gives each
  tensor the rate :math:`c \eta`, with :math:`c`
  (:func:`lrlab.models.mup.shape_lr_multipliers` applied to the model's shapes):

  - a convolution from stage :math:`i` 's channels to stage :math:`j` 's (in
    the blocks and the projected shortcuts; hidden weights): ``"adam"``
    :math:`1/m_i` (1/fan-in), ``"sgd"`` :math:`m_j / m_i` (fan-out/fan-in);
  - the stem's convolution (input weights, one input channel), every
    BatchNorm scale and bias of stage :math:`j`: ``"adam"`` 1, ``"sgd"`` :math:`m_j`;
  - the head's kernel (the readout; its :math:`1/m` is in the forward):
    ``"adam"`` 1, ``"sgd"`` :math:`m` of the last stage; its bias: 1.

  Under ``"sp"`` every multiplier is 1.

  Args:
    input_shape, out_features, channels, blocks, kernel: the :class:`ResNet`'s.
    optimizer: ``"adam"`` or ``"sgd"``.
    parametrization: ``"sp"`` or ``"mup"``.
    base_width: the channels (an int, or one per stage) at which muP equals SP;
      ``None``: ``channels``.

  Returns:
    A pytree of Python floats with the params' structure, for
    :func:`lrlab.transforms.scale_by_multipliers`.
  """
  input_shape = _checks.counts("input_shape", input_shape)
  channels = _checks.counts("channels", channels, empty=False)
  counts = [_checks.count(n, v) for n, v in (("out_features", out_features), ("blocks", blocks))]
  base = mup.base_widths(channels, base_width, unit="stage")
  key = (input_shape, *counts, _checks.count("kernel", kernel))
  rates = _multipliers(*key, channels, optimizer, parametrization, base)
  return jax.tree.map(float, rates)  # a fresh tree: the cached one stays as it is


@functools.cache
def _multipliers(
  input_shape, out_features, blocks, kernel, channels, optimizer, parametrization, base
):
  """:func:`resnet_lr_multipliers`, computed once per set of arguments."""

  def shapes(widths: tuple[int, ...]):
    make = lambda key: ResNet(
      input_shape, out_features, channels=widths, blocks=blocks, kernel=kernel, rngs=nnx.Rngs(key)
    )
    return nnx.to_pure_dict(nnx.state(nnx.eval_shape(make, jax.random.key(0)), nnx.Param))

  return mup.model_lr_multipliers(shapes, channels, base, optimizer, parametrization)
