"""A decoder-only transformer language model: pre-LayerNorm, causal attention, tied embeddings.

GPT-2's layout (Radford et al., 2019) at toy sizes: token embeddings plus
learned positional embeddings, ``depth`` blocks of ``h + attention(LN(h))``
then ``h + MLP(LN(h))`` with a GELU MLP four times as wide, a final LayerNorm,
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

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from lrlab import _checks

_INIT = nnx.initializers.normal(0.02)  # GPT-2's initialisation of every weight matrix


class CausalSelfAttention(nnx.Module):
  r"""Multi-head self-attention where position ``t`` attends to positions ``<= t`` only.

  .. math:: \mathrm{head}_i = \mathrm{softmax}\big(q_i k_i^\top / \sqrt{d} + M\big) v_i,
     \quad M_{ts} = -\infty \text{ for } s > t,

  with ``q, k, v`` one fused projection of the input, ``d = width / heads``,
  and the heads concatenated and projected back to ``width``.

  Args:
    width: model width, a multiple of ``heads``.
    heads: number of heads.
    dropout: dropout rate on the attention weights.
    rngs: Flax random streams.
  """

  def __init__(self, width: int, heads: int, *, dropout: float = 0.0, rngs: nnx.Rngs):
    self.heads = heads
    self.qkv = nnx.Linear(width, 3 * width, kernel_init=_INIT, rngs=rngs)
    self.out = nnx.Linear(width, width, kernel_init=_INIT, rngs=rngs)
    self.drop = nnx.Dropout(dropout, rngs=rngs)

  def __call__(self, h: jax.Array) -> jax.Array:
    """``h`` of shape ``(..., T, width)`` to the same shape."""
    *batch, length, width = h.shape
    q, k, v = jnp.split(self.qkv(h), 3, axis=-1)
    split = lambda a: a.reshape(*batch, length, self.heads, width // self.heads)
    q, k, v = split(q), split(k), split(v)
    scores = jnp.einsum("...thd,...shd->...hts", q, k) / np.sqrt(width // self.heads)
    causal = jnp.tril(jnp.ones((length, length), bool))
    scores = jnp.where(causal, scores, jnp.finfo(scores.dtype).min)
    weights = self.drop(jax.nn.softmax(scores, axis=-1))
    mixed = jnp.einsum("...hts,...shd->...thd", weights, v).reshape(*batch, length, width)
    return self.out(mixed)


class Block(nnx.Module):
  """One pre-LayerNorm block: ``h + attention(LN(h))``, then ``h + MLP(LN(h))`` (GELU, 4x wide)."""

  def __init__(self, width: int, heads: int, *, dropout: float = 0.0, rngs: nnx.Rngs):
    self.norm_attention = nnx.LayerNorm(width, rngs=rngs)
    self.attention = CausalSelfAttention(width, heads, dropout=dropout, rngs=rngs)
    self.norm_mlp = nnx.LayerNorm(width, rngs=rngs)
    self.up = nnx.Linear(width, 4 * width, kernel_init=_INIT, rngs=rngs)
    self.down = nnx.Linear(4 * width, width, kernel_init=_INIT, rngs=rngs)
    self.drop = nnx.Dropout(dropout, rngs=rngs)

  def __call__(self, h: jax.Array) -> jax.Array:
    h = h + self.drop(self.attention(self.norm_attention(h)))
    return h + self.drop(self.down(nnx.gelu(self.up(self.norm_mlp(h)))))


class Transformer(nnx.Module):
  """A decoder-only transformer: tokens ``(..., T)`` to next-token logits ``(..., T, vocab)``.

  Token and learned positional embeddings (``T <= context``), ``depth``
  pre-LayerNorm :class:`Block` s with causal attention, a final LayerNorm, and
  logits ``LN(h) W_embed^T`` through the tied token embedding. Weights start
  from ``N(0, 0.02^2)`` as GPT-2's, biases at zero, LayerNorm at the identity.

  Args:
    vocab: number of tokens, >= 1.
    context: the longest sequence (rows of the positional embedding), >= 1.
    width: model width, a multiple of ``heads``.
    depth: number of blocks, >= 1.
    heads: attention heads per block, >= 1.
    dropout: dropout rate in ``[0, 1)``, applied only in training mode.
    rngs: Flax random streams (``params``, and ``dropout`` when ``dropout > 0``).

  Example:
    >>> from flax import nnx
    >>> from lrlab.models.transformer import Transformer
    >>> model = Transformer(vocab=16, context=8, width=32, depth=2, heads=4, rngs=nnx.Rngs(0))
    >>> model(jnp.zeros((3, 8), jnp.int32)).shape
    (3, 8, 16)
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
    rngs: nnx.Rngs,
  ):
    for name, value in (("vocab", vocab), ("context", context), ("width", width)):
      _check_count(name, value)
    _check_count("depth", depth)
    _check_count("heads", heads)
    if width % heads:
      raise ValueError(f"width must be a multiple of heads={heads}; got {width}.")
    _checks.check_interval("dropout", dropout, 0.0, 1.0, closed_high=False)
    self.context = context
    self.embed = nnx.Embed(vocab, width, embedding_init=_INIT, rngs=rngs)
    self.position = nnx.Param(_INIT(rngs.params(), (context, width)))
    self.drop = nnx.Dropout(dropout, rngs=rngs)
    self.blocks = nnx.List([Block(width, heads, dropout=dropout, rngs=rngs) for _ in range(depth)])
    self.norm = nnx.LayerNorm(width, rngs=rngs)

  def __call__(self, tokens: jax.Array) -> jax.Array:
    """Logits ``(..., T, vocab)`` of the token after each position of ``tokens`` ``(..., T)``."""
    length = tokens.shape[-1]
    h = self.drop(self.embed(tokens) + self.position[:length])
    for block in self.blocks:
      h = block(h)
    return self.embed.attend(self.norm(h))


def _check_count(name: str, value: object) -> None:
  if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
    raise ValueError(f"{name} must be an integer >= 1; got {value!r}.")
