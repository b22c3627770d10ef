"""A decoder-only transformer language model: pre-LayerNorm, causal attention, tied embeddings.

GPT-2's layout (Radford et al., 2019) at toy sizes: token embeddings plus
learned positional embeddings, ``depth`` blocks of ``h + attention(LN(h))``
then ``h + MLP(LN(h))`` with a GELU MLP four times as wide (GELU in GPT-2's tanh
approximation, ``nnx.gelu``; PyTorch's ``nn.GELU()`` is the exact one), a final LayerNorm,
and logits read through the transposed token embedding (tied input and output
embeddings, Press and Wolf, 2017). Dropout, when ``dropout > 0``, acts on the
embeddings, the attention weights and each block's two residual branches.

References:
  Vaswani et al., "Attention Is All You Need", 2017, https://arxiv.org/abs/1706.03762.
  Radford et al., "Language Models are Unsupervised Multitask Learners", 2019 (GPT-2).
  Xiong et al., "On Layer Normalization in the Transformer Architecture", 2020,
  https://arxiv.org/abs/2002.04745 (pre-LayerNorm).
  Press and Wolf, "Using the Output Embedding to Improve Language Models", 2017,
  https://arxiv.org/abs/1608.05859.
"""

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from lrlab import _checks
from lrlab.models import mup

_STD = 0.02  # GPT-2's for every weight matrix and the token embedding (its positions: 0.01)
_INIT = nnx.initializers.normal(_STD)


class CausalSelfAttention(nnx.Module):
  r"""Multi-head self-attention where position ``t`` attends to positions ``<= t`` only.

  .. math:: \mathrm{head}_i = \mathrm{softmax}\big(q_i k_i^\top / \sqrt{d} + M\big) v_i,
     \quad M_{ts} = -\infty \text{ for } s > t,

  with ``q, k, v`` one fused projection of the input, ``d = width / heads``,
  and the heads concatenated and projected back to ``width``. Under muP the
  logits are :math:`q_i k_i^\top \sqrt{d_{\mathrm{base}}} / d` instead (Yang et al.
  2022, Section 6: ``q`` and ``k`` become correlated in training, so their
  product grows like ``d``), which is :math:`1/\sqrt{d}` at the base width.

  Args:
    width: model width, a multiple of ``heads``.
    heads: number of heads.
    dropout: dropout rate on the attention weights.
    base_width: under muP, the width at which the scaling is :math:`1/\sqrt{d}`;
      ``None`` (SP): :math:`1/\sqrt{d}` at every width.
    kernel_init: the initialiser of both projections.
    rngs: Flax random streams.
  """

  def __init__(
    self,
    width: int,
    heads: int,
    *,
    dropout: float = 0.0,
    base_width: int | None = None,
    kernel_init=_INIT,
    rngs: nnx.Rngs,
  ):
    self.heads = heads
    self.qkv = nnx.Linear(width, 3 * width, kernel_init=kernel_init, rngs=rngs)
    self.out = nnx.Linear(width, width, kernel_init=kernel_init, rngs=rngs)
    self.drop = nnx.Dropout(dropout, rngs=rngs)
    d = width // heads
    # SP divides by sqrt(d) (a NumPy float64, as it always has: the compiled division, and so
    # the rounding, differ with a Python float); muP by d / sqrt(d_base), 1 / sqrt(d) at the base.
    self.temperature = np.sqrt(d)
    if base_width is not None and width != base_width:
      self.temperature = d / math.sqrt(base_width // heads)

  def __call__(self, h: jax.Array) -> jax.Array:
    """``h`` of shape ``(..., T, width)`` to the same shape."""
    *batch, length, width = h.shape
    # The fused projection's columns are (q, k, v) x heads x d: each of q, k, v is its own
    # product with a column block of the kernel, written straight into (..., heads, T, d), the
    # layout of the per-head products. The same values as splitting h @ kernel + bias and
    # moving the heads' axis. On XLA:CPU its backward adds up three weight gradients instead
    # of concatenating d(qkv) and copying it transposed: a few percent less CPU time per
    # training step (issue 17, scripts/transformer_step_speed.py; loaded machine, four
    # interleaved A/B runs: 1.08-1.09x at 1 member in three and 0.87x in the noisiest,
    # 1.02-1.05x at 16 and 64 members vmapped).
    kernel = self.qkv.kernel[...].reshape(width, 3, self.heads, width // self.heads)
    bias = self.qkv.bias[...].reshape(3, self.heads, 1, width // self.heads)
    q, k, v = (jnp.einsum("...tw,whd->...htd", h, kernel[:, i]) + bias[i] for i in range(3))
    scores = jnp.einsum("...htd,...hsd->...hts", q, k) / self.temperature
    causal = jnp.tril(jnp.ones((length, length), bool))
    scores = jnp.where(causal, scores, jnp.finfo(scores.dtype).min)
    weights = self.drop(jax.nn.softmax(scores, axis=-1))
    mixed = jnp.einsum("...hts,...hsd->...thd", weights, v).reshape(*batch, length, width)
    return self.out(mixed)


class Block(nnx.Module):
  r"""One pre-LayerNorm block: ``h + attention(LN(h))``, then ``h + MLP(LN(h))`` (tanh GELU, 4x).

  ``base_width`` (muP, see :class:`Transformer`): the hidden weights are drawn
  with standard deviation :math:`0.02 / \sqrt{m}`, :math:`m` = ``width / base_width``,
  and the attention is scaled as :class:`CausalSelfAttention` says; ``None``: SP.
  """

  def __init__(
    self,
    width: int,
    heads: int,
    *,
    dropout: float = 0.0,
    base_width: int | None = None,
    rngs: nnx.Rngs,
  ):
    init = _INIT
    if base_width is not None and width != base_width:
      init = nnx.initializers.normal(_STD / math.sqrt(width / base_width))  # var ~ 1/fan_in
    self.norm_attention = nnx.LayerNorm(width, rngs=rngs)
    self.attention = CausalSelfAttention(
      width, heads, dropout=dropout, base_width=base_width, kernel_init=init, rngs=rngs
    )
    self.norm_mlp = nnx.LayerNorm(width, rngs=rngs)
    self.up = nnx.Linear(width, 4 * width, kernel_init=init, rngs=rngs)
    self.down = nnx.Linear(4 * width, width, kernel_init=init, rngs=rngs)
    self.drop = nnx.Dropout(dropout, rngs=rngs)

  def __call__(self, h: jax.Array) -> jax.Array:
    h = h + self.drop(self.attention(self.norm_attention(h)))
    return h + self.drop(self.down(nnx.gelu(self.up(self.norm_mlp(h)))))


class Transformer(nnx.Module):
  r"""A decoder-only transformer: tokens ``(..., T)`` to next-token logits ``(..., T, vocab)``.

  Token and learned positional embeddings (``T <= context``), ``depth``
  pre-LayerNorm :class:`Block` s with causal attention, a final LayerNorm, and
  logits ``LN(h) W_embed^T`` through the tied token embedding. Weight matrices and both
  embeddings start from ``N(0, 0.02^2)``: GPT-2's for the matrices and the token embedding
  (its released code draws the positions from ``N(0, 0.01^2)``; neither scales the residual
  projections by ``1/sqrt(2 depth)`` as its paper and nanoGPT do). Biases start at zero and
  LayerNorm at the identity, with Flax's epsilon ``1e-6`` (GPT-2's and PyTorch's: ``1e-5``).

  ``parametrization="mup"`` is the maximal-update parametrization (Yang et al.
  2022, Tables 3 and 8; the ``mup`` package's Transformer example) relative to
  ``base_width``, with :math:`m` = ``width / base_width`` and the heads' count
  fixed (each head's dimension grows with the width):

  - hidden weights (``qkv``, ``out``, ``up``, ``down``): drawn with standard
    deviation :math:`0.02/\sqrt{m}` (variance :math:`\propto 1/\text{fan-in}`,
    ``mup.init.normal_``); the embeddings keep 0.02 (input weights: constant);
  - attention logits scaled :math:`\sqrt{d_{\mathrm{base}}}/d` instead of
    :math:`1/\sqrt{d}` (:class:`CausalSelfAttention`);
  - the readout keeps the tied embedding and gets the output multiplier
    :math:`1/m`: logits ``(LN(h) / m) W_embed^T``, as ``mup.MuSharedReadout``.
    Tying is consistent with Table 8: input and output weights both start at a
    constant variance (the readout's, :math:`1/\text{fan-in}^2` in Table 3, is
    that of ``W / m``) and take the same rate under both optimizers (Adam:
    :math:`\eta`; SGD: :math:`\eta m`, the input's fan-out and the readout's
    fan-in), so one tensor can play both parts, and SP's model is kept;
  - per-tensor learning rates :func:`transformer_lr_multipliers` (also
    :meth:`lr_multipliers`).

  The package's optional zero initialisation of the query and the readout is
  not applied. At the base width every factor is exactly 1, so muP and SP
  give the same parameters, outputs and updates, bit for bit.

  Args:
    vocab: number of tokens, >= 1.
    context: the longest sequence (rows of the positional embedding), >= 1.
    width: model width, a multiple of ``heads``.
    depth: number of blocks, >= 1.
    heads: attention heads per block, >= 1.
    dropout: dropout rate in ``[0, 1)``, applied only in training mode.
    parametrization: ``"sp"`` (standard, GPT-2's; the default) or ``"mup"``.
    base_width: under ``"mup"``, the width (a multiple of ``heads``) at which
      muP equals SP; ``None``: ``width`` itself. Checked but unused under ``"sp"``.
    rngs: Flax random streams (``params``, and ``dropout`` when ``dropout > 0``).

  Example:
    >>> from flax import nnx
    >>> from lrlab.models.transformer import Transformer
    >>> model = Transformer(vocab=16, context=8, width=32, depth=2, heads=4, rngs=nnx.Rngs(0))
    >>> model(jnp.zeros((3, 8), jnp.int32)).shape
    (3, 8, 16)

  References:
    Yang et al., `Tensor Programs V: Tuning Large Neural Networks via Zero-Shot
    Hyperparameter Transfer <https://arxiv.org/abs/2203.03466>`_, 2022 (Tables 3
    and 8); https://github.com/microsoft/mup.
  """

  def __init__(
    self,
    vocab: int,
    context: int,
    *,
    width: int = 64,
    depth: int = 2,
    heads: int = 4,
    dropout: float = 0.0,
    parametrization: str = "sp",
    base_width: int | None = None,
    rngs: nnx.Rngs,
  ):
    for name, value in (("vocab", vocab), ("context", context), ("width", width)):
      _check_count(name, value)
    _check_count("depth", depth)
    _check_count("heads", heads)
    if width % heads:
      raise ValueError(f"width must be a multiple of heads={heads}; got {width}.")
    _checks.check_interval("dropout", dropout, 0.0, 1.0, closed_high=False)
    _checks.check_choice("parametrization", parametrization, mup.PARAMETRIZATIONS)
    base = _base_width(width, heads, base_width)
    self.context, self.width, self.depth, self.heads = context, width, depth, heads
    self.vocab, self.parametrization, self.base_width = vocab, parametrization, base
    self.embed = nnx.Embed(vocab, width, embedding_init=_INIT, rngs=rngs)
    self.position = nnx.Param(_INIT(rngs.params(), (context, width)))
    self.drop = nnx.Dropout(dropout, rngs=rngs)
    mup_base = base if parametrization == "mup" else None
    self.blocks = nnx.List(
      [Block(width, heads, dropout=dropout, base_width=mup_base, rngs=rngs) for _ in range(depth)]
    )
    self.norm = nnx.LayerNorm(width, rngs=rngs)
    # muP's readout through the tied embedding: (LN(h) / m) W^T (mup.MuSharedReadout).
    self.output_multiplier = None
    if parametrization == "mup" and width != base:
      self.output_multiplier = base / width

  def lr_multipliers(self, optimizer: str) -> dict:
    """This network's per-tensor learning-rate multipliers: :func:`transformer_lr_multipliers`."""
    return transformer_lr_multipliers(
      self.vocab,
      self.context,
      optimizer,
      width=self.width,
      depth=self.depth,
      heads=self.heads,
      parametrization=self.parametrization,
      base_width=self.base_width,
    )

  def __call__(self, tokens: jax.Array) -> jax.Array:
    """Logits ``(..., T, vocab)`` of the token after each position of ``tokens`` ``(..., T)``.

    Raises a one-line ``ValueError`` for ``T`` outside ``[1, context]``: a longer sequence has
    no positional embedding (with ``context=1`` one row would broadcast over every position).
    """
    length = tokens.shape[-1] if tokens.ndim else 0
    if not 1 <= length <= self.context:
      raise ValueError(
        f"tokens must have a last axis of 1 to context={self.context} positions; "
        f"got shape {tokens.shape}."
      )
    h = self.drop(self.embed(tokens) + self.position[:length])
    for block in self.blocks:
      h = block(h)
    h = self.norm(h)
    if self.output_multiplier is not None:
      h = h * self.output_multiplier
    return self.embed.attend(h)


def _check_count(name: str, value: object) -> None:
  if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
    raise ValueError(f"{name} must be an integer >= 1; got {value!r}.")


def _base_width(width: int, heads: int, base_width: int | None) -> int:
  """``base_width`` checked (an integer multiple of ``heads``), or ``width`` for ``None``."""
  if base_width is None:
    return width
  integer = not isinstance(base_width, bool) and isinstance(base_width, int | np.integer)
  if not integer or base_width < 1 or base_width % heads:
    raise ValueError(
      f"base_width must be a positive integer multiple of heads={heads}; got {base_width!r}."
    )
  return int(base_width)


def transformer_lr_multipliers(
  vocab: int,
  context: int,
  optimizer: str,
  *,
  width: int,
  depth: int,
  heads: int,
  parametrization: str = "sp",
  base_width: int | None = None,
) -> dict:
  r"""The per-tensor learning-rate multipliers of a :class:`Transformer`, shaped like its params.

  With :math:`m` = ``width / base_width`` and :math:`\eta` the rate tuned at the
  base width, muP (Yang et al. 2022, Table 8; ``mup.MuAdam``, ``mup.MuSGD``)
  gives each tensor the rate :math:`c \eta`, with :math:`c`
  (:func:`lrlab.models.mup.shape_lr_multipliers` applied to the model's shapes):

  - hidden weights ``blocks.*.{attention.qkv, attention.out, up, down}.kernel``
    (two width-like axes): ``"adam"`` :math:`1/m` (1/fan-in), ``"sgd"`` 1
    (fan-out/fan-in);
  - the token and position embeddings (input weights, and the token embedding
    is also the readout: fan-out and fan-in :math:`m` alike), every bias and
    every LayerNorm scale and bias (one width-like axis): ``"adam"`` 1,
    ``"sgd"`` :math:`m`.

  Under ``"sp"`` every multiplier is 1.

  Args:
    vocab, context, width, depth, heads: the :class:`Transformer`'s.
    optimizer: ``"adam"`` or ``"sgd"``.
    parametrization: ``"sp"`` or ``"mup"``.
    base_width: the width at which muP equals SP; ``None``: ``width``.

  Returns:
    A pytree of Python floats with the params' structure, for
    :func:`lrlab.transforms.scale_by_multipliers`.
  """
  base = _base_width(width, heads, base_width)
  rates = _multipliers(vocab, context, width, depth, heads, optimizer, parametrization, base)
  return jax.tree.map(float, rates)  # a fresh tree: the cached one stays as it is


@functools.cache
def _multipliers(vocab, context, width, depth, heads, optimizer, parametrization, base) -> dict:
  """:func:`transformer_lr_multipliers`, computed once per set of arguments."""

  def shapes(w: int):
    make = lambda key: Transformer(
      vocab, context, width=w, depth=depth, heads=heads, rngs=nnx.Rngs(key)
    )
    return nnx.to_pure_dict(nnx.state(nnx.eval_shape(make, jax.random.key(0)), nnx.Param))

  return mup.model_lr_multipliers(shapes, width, base, optimizer, parametrization)
