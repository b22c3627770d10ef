"""CausalSelfAttention's layout (issue 17: q, k, v as three products straight into
(..., heads, T, d)) computes the formula it replaced: split the fused projection, move the
heads' axis, scale, mask, softmax, mix, in value and in gradient."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from lrlab.models.transformer import CausalSelfAttention, Transformer


def _split_formula(layer: CausalSelfAttention, h: jax.Array) -> jax.Array:
  """The attention as it was written before: one product, split, then the per-head einsums."""
  *batch, length, width = h.shape
  q, k, v = jnp.split(h @ layer.qkv.kernel[...] + layer.qkv.bias[...], 3, axis=-1)
  split = lambda a: a.reshape(*batch, length, layer.heads, width // layer.heads)
  scores = jnp.einsum("...thd,...shd->...hts", split(q), split(k)) / layer.temperature
  scores = jnp.where(jnp.tril(jnp.ones((length, length), bool)), scores, jnp.finfo(h.dtype).min)
  weights = jax.nn.softmax(scores, axis=-1)
  mixed = jnp.einsum("...hts,...shd->...thd", weights, split(v)).reshape(*batch, length, width)
  return mixed @ layer.out.kernel[...] + layer.out.bias[...]


@pytest.mark.parametrize("base_width", [None, 8])  # SP: temperature sqrt(8); muP: 8 / sqrt(4)
def test_attention_equals_the_split_formula_in_value_and_gradient(base_width):
  layer = CausalSelfAttention(16, 2, base_width=base_width, rngs=nnx.Rngs(0))
  graph, params, rest = nnx.split(layer, nnx.Param, ...)
  leaves, tree = jax.tree.flatten(params)  # every weight and bias drawn N(0, 0.25^2): scores O(1)
  keys = jax.random.split(jax.random.key(2), len(leaves))
  params = jax.tree.unflatten(
    tree, [0.25 * jax.random.normal(k, a.shape) for k, a in zip(keys, leaves, strict=True)]
  )
  h = jax.random.normal(jax.random.key(1), (2, 3, 6, 16))  # two leading batch axes

  @jax.jit
  def both(params, h):
    model = lambda p, h: layer_call(nnx.merge(graph, p, rest), h)
    old = lambda p, h: _split_formula(nnx.merge(graph, p, rest), h)
    out = {}
    for name, f in (("model", model), ("old", old)):
      loss = lambda p, h, f=f: jnp.sum(jnp.sin(f(p, h)))  # every output weighs differently
      out[name] = (f(params, h), jax.grad(loss, (0, 1))(params, h))
    return out

  layer_call = CausalSelfAttention.__call__
  out = both(params, h)
  leaves = zip(jax.tree.leaves(out["model"]), jax.tree.leaves(out["old"]), strict=True)
  for got, expected in leaves:
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)
  assert np.abs(out["old"][0]).std() > 0.2  # not a comparison of small numbers


@pytest.mark.parametrize(("context", "length"), [(1, 4), (3, 4), (3, 0)])
def test_transformer_refuses_sequences_longer_than_its_context(context, length):
  # With context=1 the one positional row broadcast over every position, silently; longer
  # sequences otherwise failed inside JAX's broadcasting with no word of the context.
  model = Transformer(vocab=5, context=context, width=8, depth=1, heads=2, rngs=nnx.Rngs(0))
  with pytest.raises(ValueError) as error:
    model(jnp.zeros((2, length), jnp.int32))
  expected = (
    f"tokens must have a last axis of 1 to context={context} positions; got shape (2, {length})."
  )
  assert str(error.value) == expected


def test_transformer_takes_sequences_up_to_its_context():
  model = Transformer(vocab=5, context=3, width=8, depth=1, heads=2, rngs=nnx.Rngs(0))
  tokens = jnp.array([[1, 2, 3]])
  full = model(tokens)
  np.testing.assert_allclose(model(tokens[:, :2]), full[:, :2], rtol=1e-6, atol=1e-6)  # causal
  assert model(jnp.array([4])).shape == (1, 5)  # one unbatched position
