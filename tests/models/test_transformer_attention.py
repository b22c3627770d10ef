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


def _torch_transformer(params, tokens, *, heads, base_width=None, eps=1e-6, gelu="tanh"):
  """The same network from PyTorch's ``nn.TransformerEncoderLayer(norm_first=True)``, float64.

  Each block is PyTorch's pre-LayerNorm encoder layer under a causal mask; the muP attention
  scale ``sqrt(d_base) / d`` enters through the query's weights (PyTorch divides by
  ``sqrt(d)``), and muP's readout multiplier ``base_width / width`` through the final norm.
  """
  torch = pytest.importorskip("torch")
  t = lambda a: torch.tensor(np.asarray(a, np.float64))
  width = params["embed"]["embedding"].shape[1]
  d = width // heads
  q_scale = 1.0 if base_width is None else np.sqrt(d) * np.sqrt(base_width // heads) / d
  h = t(params["embed"]["embedding"])[torch.tensor(np.asarray(tokens))]
  h = h + t(params["position"])[: tokens.shape[-1]]
  mask = torch.nn.Transformer.generate_square_subsequent_mask(tokens.shape[-1], dtype=h.dtype)
  for i in range(len(params["blocks"])):
    p = params["blocks"][i]
    layer = torch.nn.TransformerEncoderLayer(
      width,
      heads,
      4 * width,
      dropout=0.0,
      activation=lambda x: torch.nn.functional.gelu(x, approximate=gelu),
      layer_norm_eps=eps,
      batch_first=True,
      norm_first=True,
      dtype=torch.float64,
    ).eval()
    in_weight, in_bias = t(p["attention"]["qkv"]["kernel"]).T, t(p["attention"]["qkv"]["bias"])
    in_weight[:width] *= q_scale
    in_bias[:width] *= q_scale
    copies = [
      (layer.self_attn.in_proj_weight, in_weight),
      (layer.self_attn.in_proj_bias, in_bias),
      (layer.self_attn.out_proj.weight, t(p["attention"]["out"]["kernel"]).T),
      (layer.self_attn.out_proj.bias, t(p["attention"]["out"]["bias"])),
      (layer.linear1.weight, t(p["up"]["kernel"]).T),
      (layer.linear1.bias, t(p["up"]["bias"])),
      (layer.linear2.weight, t(p["down"]["kernel"]).T),
      (layer.linear2.bias, t(p["down"]["bias"])),
      (layer.norm1.weight, t(p["norm_attention"]["scale"])),
      (layer.norm1.bias, t(p["norm_attention"]["bias"])),
      (layer.norm2.weight, t(p["norm_mlp"]["scale"])),
      (layer.norm2.bias, t(p["norm_mlp"]["bias"])),
    ]
    with torch.no_grad():
      for target, value in copies:
        target.copy_(value)
      h = layer(h, src_mask=mask, is_causal=True)
  norm = params["norm"]
  h = torch.nn.functional.layer_norm(h, (width,), t(norm["scale"]), t(norm["bias"]), eps)
  if base_width is not None:
    h = h * (base_width / width)
  return (h @ t(params["embed"]["embedding"]).T).detach().numpy()


@pytest.mark.parametrize(
  ("parametrization", "base_width"), [("sp", None), ("mup", 8)], ids=["sp", "mup"]
)
def test_transformer_equals_pytorch_pre_layernorm_encoder_layers_with_a_causal_mask(
  parametrization, base_width
):
  # Documented numerics: GELU in its tanh approximation (GPT-2's), LayerNorm epsilon 1e-6
  # (Flax's), attention 1 / sqrt(d) (muP: sqrt(d_base) / d), readout through the tied embedding.
  heads = 4
  model = Transformer(
    11,
    7,
    width=32,
    depth=2,
    heads=heads,
    parametrization=parametrization,
    base_width=base_width,
    rngs=nnx.Rngs(0),
  )
  params = nnx.to_pure_dict(nnx.state(model, nnx.Param))
  leaves, tree = jax.tree.flatten(params)  # every parameter moved, so biases and norms count
  keys = jax.random.split(jax.random.key(3), len(leaves))
  moved = [a + 0.3 * jax.random.normal(k, a.shape) for k, a in zip(keys, leaves, strict=True)]
  nnx.update(model, nnx.State(jax.tree.unflatten(tree, moved)))
  params = nnx.to_pure_dict(nnx.state(model, nnx.Param))
  tokens = jax.random.randint(jax.random.key(4), (3, 7), 0, 11)
  got = np.asarray(model(tokens))
  reference = lambda **kw: _torch_transformer(
    params, tokens, heads=heads, base_width=base_width, **kw
  )
  close = dict(rtol=1e-5, atol=1e-5)
  np.testing.assert_allclose(got, reference(), **close)
  assert np.abs(got).std() > 0.1  # logits far from zero: not a comparison of small numbers
  # The tolerance tells the flavours apart: exact GELU or PyTorch's epsilon 1e-5 fail it.
  assert not np.allclose(got, reference(gelu="none"), **close)
  assert not np.allclose(got, reference(eps=1e-5), **close)
