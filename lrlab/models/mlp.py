"""A fully connected network whose depth and width are arguments, laid out for vmapped sweeps."""

import functools
import math
from collections.abc import Sequence

import jax
import jax.numpy as jnp
from flax import nnx
from jax.custom_derivatives import SymbolicZero

from lrlab import _checks
from lrlab.models import mup
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
    shape = (_checks.count("in_features", in_features), _checks.count("out_features", out_features))
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


def mlp_lr_multipliers(
  hidden: Sequence[int],
  optimizer: str,
  *,
  parametrization: str = "sp",
  base_width: int | Sequence[int] | None = None,
) -> dict[str, dict[str, float]]:
  r"""The per-layer learning-rate multipliers of an :class:`MLP`, a pytree shaped like its params.

  With :math:`m_i = n_i / n_i^{\mathrm{base}}` the width multiplier of hidden
  layer :math:`i` (``hidden[i] / base_width``) and the learning rate
  :math:`\eta` tuned at the base width, muP (Yang et al. 2022, Table 8, the
  ``mup`` package's ``MuAdam`` and ``MuSGD``) sets each tensor's rate to
  :math:`c \eta` with :math:`c`:

  - ``dense_0.weight`` (input weights): ``"adam"`` 1; ``"sgd"`` :math:`m_0` (fan-out);
  - ``dense_i.weight``, ``i >= 1`` (hidden weights): ``"adam"`` :math:`1/m_{i-1}`
    (1/fan-in); ``"sgd"`` :math:`m_i / m_{i-1}` (fan-out/fan-in, 1 for equal widths);
  - ``dense_i.bias`` (all hidden biases): ``"adam"`` 1; ``"sgd"`` :math:`m_i`;
  - ``head.weight`` (output weights): ``"adam"`` 1; ``"sgd"`` :math:`m_{k-1}` (fan-in);
  - ``head.bias``: 1 for both.

  The readout's rates look like SP's because its forward multiplier
  :math:`1/m_{k-1}` (see :class:`MLP`) already shrinks its effective update to
  Table 3's :math:`\eta / \text{fan-in}`. Under ``"sp"`` every multiplier is 1.
  ``"adam"`` is for every rule that normalises the gradient entrywise (Adam,
  AdamW, RMSprop, Adagrad, ...), ``"sgd"`` for SGD with or without momentum,
  as in ``mup``.

  Args:
    hidden: the hidden widths, as for :class:`MLP`.
    optimizer: ``"adam"`` or ``"sgd"``.
    parametrization: ``"sp"`` or ``"mup"``.
    base_width: the width (an int, or one per hidden layer) at which muP equals
      SP; ``None``: ``hidden`` itself.

  Returns:
    ``{"dense_i": {"weight": c, "bias": c}, ..., "head": {...}}`` of Python floats,
    for :func:`lrlab.transforms.scale_by_multipliers`.

  Example:
    >>> rates = lrlab.models.mlp_lr_multipliers((400, 400), "adam", parametrization="mup",
    ...                                         base_width=100)
    >>> rates["dense_1"]
    {'weight': 0.25, 'bias': 1.0}
  """
  _checks.check_choice("parametrization", parametrization, mup.PARAMETRIZATIONS)
  _checks.check_choice("optimizer", optimizer, mup.OPTIMIZER_KINDS)
  hidden = _checks.counts("hidden", hidden)
  base = mup.base_widths(hidden, base_width)
  if parametrization == "sp":
    m = (1.0,) * len(hidden)
  else:
    m = tuple(w / b for w, b in zip(hidden, base, strict=True))
  adam = optimizer == "adam"
  rates = {}
  for i in range(len(hidden)):
    fan_in = m[i - 1] if i else 1.0  # the input's width is fixed
    weight = 1.0 / fan_in if adam else m[i] / fan_in
    rates[f"dense_{i}"] = {"weight": weight, "bias": 1.0 if adam else m[i]}
  readout = m[-1] if hidden else 1.0
  rates["head"] = {"weight": 1.0 if adam else readout, "bias": 1.0}
  return rates


class MLP(nnx.Module):
  r"""Multilayer perceptron: ``len(hidden)`` activated dense layers, then a linear head.

  ``h_0 = x``, ``h_{i+1} = activation(h_i W_i^T + b_i)``, output
  ``h_k W^T + b``, each ``W_i`` stored ``(out, in)`` as in ``torch.nn.Linear``
  (see :class:`Dense`; Flax's initialisation: LeCun-normal weights, zero
  biases). Parameters are named ``dense_0 ... dense_{k-1}`` and ``head``, each
  ``{"weight", "bias"}``.

  ``parametrization="mup"`` is the maximal-update parametrization in the form
  of Tensor Programs V's Table 8 and the ``mup`` package's ``MuReadout``,
  relative to ``base_width``: with :math:`m = n_{k-1} / n^{\mathrm{base}}_{k-1}`
  the last hidden layer's width multiplier, the readout computes
  :math:`W (h / m) + b` (output multiplier :math:`1/m`) and its weight is
  drawn with variance :math:`1/n^{\mathrm{base}}` (LeCun's :math:`1/n`
  times :math:`m`, so the effective weight :math:`W/m` has Table 3's variance
  :math:`\propto 1/\text{fan-in}^2`); the readout is not zero-initialised.
  Input and hidden weights keep their fan-in initialisation, which muP and SP
  share. The per-layer learning rates are :func:`mlp_lr_multipliers` (also
  :meth:`lr_multipliers`). At the base width every factor is exactly 1, so
  muP and SP give the same parameters, outputs and updates, bit for bit.

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
    parametrization: ``"sp"`` (standard, the default) or ``"mup"``.
    base_width: under ``"mup"``, the hidden width (an int, or one per hidden
      layer) at which muP equals SP; ``None``: ``hidden`` itself. Checked but unused under ``"sp"``.
    rngs: Flax random streams for the initialisation.

  Example:
    >>> model = lrlab.models.MLP(40, (100, 100), 10, rngs=nnx.Rngs(0))
    >>> model(jnp.ones((5, 40))).shape, model.dense_0.weight.shape
    ((5, 10), (100, 40))

  References:
    The MNIST-1D baseline MLP has ``hidden=(100, 100)`` and ReLU: Greydanus,
    "Scaling down Deep Learning", 2020. https://arxiv.org/abs/2011.14439

    Yang et al., `Tensor Programs V: Tuning Large Neural Networks via Zero-Shot
    Hyperparameter Transfer <https://arxiv.org/abs/2203.03466>`_, 2022 (Tables 3
    and 8); https://github.com/microsoft/mup.
  """

  def __init__(
    self,
    in_features: int,
    hidden: Sequence[int],
    out_features: int,
    *,
    activation: str | Activation = "relu",
    parametrization: str = "sp",
    base_width: int | Sequence[int] | None = None,
    rngs: nnx.Rngs,
  ):
    in_features = _checks.count("in_features", in_features)
    out_features = _checks.count("out_features", out_features)
    _checks.check_choice("parametrization", parametrization, mup.PARAMETRIZATIONS)
    hidden = _checks.counts("hidden", hidden)
    base = mup.base_widths(hidden, base_width)
    self.activation = resolve(activation)
    self.depth = len(hidden)
    self.hidden, self.parametrization, self.base_width = hidden, parametrization, base
    widths = (int(in_features), *hidden)
    for i in range(self.depth):
      setattr(self, f"dense_{i}", Dense(widths[i], widths[i + 1], rngs=rngs))
    self.head = Dense(widths[-1], int(out_features), rngs=rngs)
    # muP's readout: W (h / m) + b with W of variance m / fan_in (MuReadout, rescaled).
    self.output_multiplier = None
    if parametrization == "mup" and self.depth:
      m = hidden[-1] / base[-1]
      self.output_multiplier = 1.0 / m
      self.head.weight[...] = self.head.weight[...] * math.sqrt(m)

  def lr_multipliers(self, optimizer: str) -> dict[str, dict[str, float]]:
    """This network's per-layer learning-rate multipliers: :func:`mlp_lr_multipliers`."""
    return mlp_lr_multipliers(
      self.hidden, optimizer, parametrization=self.parametrization, base_width=self.base_width
    )

  def __call__(self, x: jax.Array) -> jax.Array:
    layers = [getattr(self, f"dense_{i}") for i in range(self.depth)] + [self.head]
    h = layers[0].feature_major(x, features_last=True)  # (features, ...batch) from here on
    for layer in layers[1:]:
      h = self.activation(h)
      if layer is self.head and self.output_multiplier is not None:
        h = h * self.output_multiplier
      h = layer.feature_major(h, transposed_backward=layer is self.head)
    # The barrier keeps the logits' gradient feature-major in memory, so that the
    # head's weight gradient runs on the fast kernels too (see _affine).
    return jnp.moveaxis(jax.lax.optimization_barrier(h), 0, -1)
