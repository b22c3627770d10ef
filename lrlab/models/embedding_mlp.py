"""A multilayer perceptron over learned embeddings of a few integer tokens (modular arithmetic)."""

from collections.abc import Sequence

import jax
import jax.numpy as jnp
from flax import nnx

from lrlab import _checks
from lrlab.models.activations import Activation
from lrlab.models.mlp import MLP


class EmbeddingMLP(nnx.Module):
  """Embed each of ``tokens`` integer inputs, concatenate the embeddings, then an :class:`MLP`.

  For an input row ``(t_1, ..., t_T)`` of token ids in ``[0, vocab)`` (stored as
  floats, as lrlab's datasets store features, and cast to int32 here), the
  output is ``MLP([E[t_1], ..., E[t_T]])`` with one embedding table ``E`` of
  shape ``(vocab, width)`` shared by every position (Flax's ``nnx.Embed``
  initialisation: entries drawn from ``N(0, 1 / width)``) and the MLP of ``T * width`` inputs,
  ``hidden`` layers and ``out_features`` logits. With ``T = 2`` and ``vocab =
  out_features = p`` it is the model on which Gromov and Liu et al. study
  grokking of ``(a + b) mod p``. Parameters: ``embed`` and ``mlp``.

  Args:
    vocab: number of distinct tokens, >= 1.
    tokens: tokens per example, >= 1.
    out_features: number of outputs, >= 1.
    width: embedding width, >= 1.
    hidden: widths of the MLP's hidden layers.
    activation: a name in :data:`lrlab.models.activations.ACTIVATIONS` or a callable.
    rngs: Flax random streams for the initialisation.

  Example:
    >>> model = lrlab.models.embedding_mlp.EmbeddingMLP(97, 2, 97, rngs=nnx.Rngs(0))
    >>> model(jnp.array([[3.0, 5.0]])).shape
    (1, 97)

  References:
    Gromov, "Grokking modular arithmetic", 2023. https://arxiv.org/abs/2301.02679
    Liu et al., "Omnigrok: Grokking Beyond Algorithmic Data", 2022.
    https://arxiv.org/abs/2210.01117
  """

  def __init__(
    self,
    vocab: int,
    tokens: int,
    out_features: int,
    *,
    width: int = 128,
    hidden: Sequence[int] = (256,),
    activation: str | Activation = "relu",
    rngs: nnx.Rngs,
  ):
    vocab, width = _checks.count("vocab", vocab), _checks.count("width", width)
    self.tokens = _checks.count("tokens", tokens)
    self.embed = nnx.Embed(vocab, width, rngs=rngs)
    self.mlp = MLP(self.tokens * width, hidden, out_features, activation=activation, rngs=rngs)

  def __call__(self, x: jax.Array) -> jax.Array:
    """``x`` of shape ``(..., tokens)`` (token ids) to logits ``(..., out_features)``."""
    embedded = self.embed(x.astype(jnp.int32))
    return self.mlp(embedded.reshape(*embedded.shape[:-2], -1))
