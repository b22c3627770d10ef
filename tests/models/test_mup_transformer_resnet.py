"""muP on the transformer and the ResNets (Tensor Programs V, Tables 3 and 8).

The coordinate check is the one of Yang et al. 2022 (Section 7, the ``mup``
package's ``coord_check``) as ``tests/models/test_mup.py`` runs it on the MLP:
train a few Adam steps at one rate at several widths and watch how far the
logits move. Under muP that change is Theta(1) in the width; under SP it grows
(the readout's ``n`` entries each move by about the rate and add up coherently
over the ``n`` features it reads).
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx

import lrlab
from lrlab.models.resnet import resnet_lr_multipliers
from lrlab.models.transformer import CausalSelfAttention, Transformer, transformer_lr_multipliers
from lrlab.transforms import scale_by_multipliers

LM = dict(depth=1, heads=4, context=8, num_tokens=8 * 64, num_eval=8)


@functools.cache
def _lm(width: int, parametrization: str, base_width: int = 32) -> lrlab.tasks.Task:
  return lrlab.tasks.get(
    "lm-transformer", width=width, parametrization=parametrization, base_width=base_width, **LM
  )


@functools.cache
def _resnet(scale: int, parametrization: str) -> lrlab.tasks.Task:
  """``mnist1d-resnet`` with ``scale`` times (4, 8) channels, muP's base width (4, 8)."""
  return lrlab.tasks.get(
    "mnist1d-resnet",
    channels=(4 * scale, 8 * scale),
    num_samples=300,
    parametrization=parametrization,
    base_width=(4, 8),
  )


@functools.cache
def _init(task: lrlab.tasks.Task):
  """The task's parameters and model state from key 0, drawn once."""
  return task.init(jax.random.key(0))


@pytest.fixture(scope="module", autouse=True)
def _one_worker():
  """A module-scoped fixture keeps this module on one worker, so the caches above are shared."""
  yield
  _lm.cache_clear(), _resnet.cache_clear(), _init.cache_clear()


def _batch(task: lrlab.tasks.Task, size: int):
  if task.streamed:
    x, y = task.dataset.gather("train", np.arange(size), where="test")
    return jnp.asarray(x), jnp.asarray(y)
  return task.batch(jnp.arange(size))


def _rule(task, optimizer: str, lr: float, batch):
  """``(tx, step)``: ``optimizer`` then ``task.lr_multipliers``, and one full-batch step of it,
  ``step(params, opt_state, model_state) -> (params, opt_state, model_state)``."""
  rule = {"adam": optax.adam, "sgd": optax.sgd}[optimizer](lr)
  tx = optax.chain(rule, scale_by_multipliers(task.lr_multipliers(optimizer)))
  loss = lambda p, s: task.loss(p, s, batch, jax.random.key(1))

  def step(params, opt_state, model_state):
    grads, (model_state, _) = jax.grad(loss, has_aux=True)(params, model_state)
    updates, opt_state = tx.update(grads, opt_state, params)
    return optax.apply_updates(params, updates), opt_state, model_state

  return tx, step


def _train(task, optimizer: str, lr: float, steps: int, batch):
  """``steps`` full-batch steps of ``optimizer`` then ``task.lr_multipliers``; (first, last)."""
  tx, step = _rule(task, optimizer, lr, batch)
  step = jax.jit(step)
  params, model_state = _init(task)
  current, opt_state, state = params, tx.init(params), model_state
  for _ in range(steps):
    current, opt_state, state = step(current, opt_state, state)
  return (params, model_state), (current, state)


def _logit_change(task, lr: float, batch_size: int, steps: int = 3) -> float:
  """Mean |logits after - logits before| of ``steps`` Adam steps, on the training batch.

  The steps and both evaluations are one program: evaluated eagerly, op by op, the logits
  compiled each op anew at every width (4.6 s of CPU over the transformer's six models, 5.7 s
  over the ResNet's; one program per model is 2.5 s and 0.5 s less in all).
  """
  batch = _batch(task, batch_size)
  tx, step = _rule(task, "adam", lr, batch)
  logits = lambda p, s: task.model.apply(p, s, batch[0], train=False)[0]

  @jax.jit
  def change(params, model_state):
    carry = (params, tx.init(params), model_state)
    after = jax.lax.fori_loop(0, steps, lambda _, c: step(*c), carry)
    return jnp.abs(logits(after[0], after[2]) - logits(params, model_state)).mean()

  return float(change(*_init(task)))


@pytest.mark.parametrize(
  ("build", "sizes", "lr", "batch_size"),
  [
    pytest.param(_lm, (32, 64, 128), 1e-3, 16, id="lm-transformer"),
    pytest.param(_resnet, (2, 8, 16), 1e-2, 64, id="mnist1d-resnet", marks=pytest.mark.slow),
  ],
)
def test_coordinate_check_adam_mup_is_width_independent_and_sp_is_not(build, sizes, lr, batch_size):
  # The transformer: 16 sequences of 8 tokens, widths 32 to 128; the ResNet: 64 signals,
  # channels (8, 16) to (64, 128). Measured |d logits|: transformer muP 0.082, 0.088, 0.074,
  # SP 0.082, 0.22, 0.37; ResNet muP 0.29, 0.11, 0.092, SP 0.55, 1.30, 3.69 (at width 512
  # and channels (128, 256): transformer muP 0.068, SP 1.23; ResNet muP 0.09, SP 22.3).
  # (Re-measured with the steps and logits in one program: the same to the digits quoted.)
  # muP's change converges from above: its W dh / m term shrinks like 1 / sqrt(width),
  # visible on the narrowest ResNet, so the check reads the two widest.
  mup = np.array([_logit_change(build(n, "mup"), lr, batch_size) for n in sizes])
  sp = np.array([_logit_change(build(n, "sp"), lr, batch_size) for n in sizes])
  print("sizes", sizes, "\n|d logits| muP", mup, "\nSP", sp)
  # muP: Theta(1): within a factor 1.5 between the two widest (2x apart).
  assert max(mup[-2:]) / min(mup[-2:]) < 1.5, mup
  # SP: grows with the width at every doubling step of the series, and between the two widest
  # at least like the square root of the width (measured on the transformer: about linearly).
  assert np.all(np.diff(sp) > 0), sp
  assert sp[-1] / sp[-2] > np.sqrt(sizes[-1] / sizes[-2]), sp


def test_transformer_lr_multipliers_follow_the_table():
  # Width 32 on a base of 8: m = 4. Matrices (fan_in, fan_out both grow): Adam 1/m, SGD m/m.
  # Embeddings, biases and LayerNorms (one axis grows): Adam 1, SGD m.
  def table(matrix, vector):
    dense = lambda: {"kernel": matrix, "bias": vector}
    norm = lambda: {"scale": vector, "bias": vector}
    block = {
      "attention": {"qkv": dense(), "out": dense()},
      "up": dense(),
      "down": dense(),
      "norm_attention": norm(),
      "norm_mlp": norm(),
    }
    return {
      "embed": {"embedding": vector},
      "position": vector,
      "blocks": {0: block},
      "norm": norm(),
    }

  rates = lambda opt, p: transformer_lr_multipliers(
    8, 4, opt, width=32, depth=1, heads=2, parametrization=p, base_width=8
  )
  assert rates("adam", "mup") == table(0.25, 1.0)
  assert rates("sgd", "mup") == table(1.0, 4.0)
  assert rates("adam", "sp") == rates("sgd", "sp") == table(1.0, 1.0)
  # The task hands out the same tree, shaped like its params.
  task = _lm(512, "mup")
  params = _init(task)[0]
  assert jax.tree.structure(task.lr_multipliers("adam")) == jax.tree.structure(params)
  assert task.lr_multipliers("adam")["blocks"][0]["up"]["kernel"] == 32 / 512


def test_resnet_lr_multipliers_follow_the_table():
  # Stages of 32 and 16 channels on a base of (8, 8): m0 = 4, m1 = 2.
  got = {
    opt: resnet_lr_multipliers(
      (40,), 10, opt, channels=(32, 16), parametrization="mup", base_width=(8, 8)
    )
    for opt in ("adam", "sgd")
  }
  norm = lambda c: {"scale": c, "bias": c}
  adam, sgd = got["adam"], got["sgd"]
  # Adam: input weights (one input channel) and vectors eta, hidden 1 / m_in, readout eta.
  assert adam["stem"] == {"kernel": 1.0} and adam["stem_norm"] == norm(1.0)
  assert adam["blocks"][0] == {
    "conv_0": {"kernel": 0.25},
    "conv_1": {"kernel": 0.25},
    "norm_0": norm(1.0),
    "norm_1": norm(1.0),
  }
  assert adam["blocks"][1] == {
    "conv_0": {"kernel": 0.25},  # 32 -> 16: 1 / m0
    "conv_1": {"kernel": 0.5},  # 16 -> 16: 1 / m1
    "shortcut": {"kernel": 0.25},
    "norm_0": norm(1.0),
    "norm_1": norm(1.0),
    "norm_shortcut": norm(1.0),
  }
  assert adam["head"] == {"kernel": 1.0, "bias": 1.0}
  # SGD: input weights and vectors m (fan-out), hidden m_out / m_in, readout m (fan-in).
  assert sgd["stem"] == {"kernel": 4.0} and sgd["stem_norm"] == norm(4.0)
  assert sgd["blocks"][0] == {
    "conv_0": {"kernel": 1.0},
    "conv_1": {"kernel": 1.0},
    "norm_0": norm(4.0),
    "norm_1": norm(4.0),
  }
  assert sgd["blocks"][1] == {
    "conv_0": {"kernel": 0.5},
    "conv_1": {"kernel": 1.0},
    "shortcut": {"kernel": 0.5},
    "norm_0": norm(2.0),
    "norm_1": norm(2.0),
    "norm_shortcut": norm(2.0),
  }
  assert sgd["head"] == {"kernel": 2.0, "bias": 1.0}


@pytest.mark.parametrize(
  ("sp", "mup"),
  [
    (lambda: _lm(32, "sp", None), lambda: _lm(32, "mup")),
    (lambda: _resnet(1, "sp"), lambda: _resnet(1, "mup")),
  ],
  ids=["lm-transformer", "mnist1d-resnet"],
)
def test_at_the_base_width_mup_is_sp_bit_for_bit(sp, mup):
  sp, mup = sp(), mup()
  for optimizer in ("adam", "sgd"):
    assert set(jax.tree.leaves(mup.lr_multipliers(optimizer))) == {1.0}
    assert set(jax.tree.leaves(sp.lr_multipliers(optimizer))) == {1.0}
  # Same parameters, then the same Adam steps (SGD's multipliers are the same ones, all 1).
  runs = [_train(task, "adam", 1e-2, 2, _batch(sp, 8)) for task in (sp, mup)]
  jax.tree.map(np.testing.assert_array_equal, runs[0], runs[1])


def test_mup_initialisation_variances():
  # Transformer, width 512 on a base of 32 (m = 16): hidden weights 0.02 / sqrt(m), embeddings 0.02.
  for parametrization, hidden_std in (("sp", 0.02), ("mup", 0.02 / 4)):
    params = _init(_lm(512, parametrization))[0]
    block = params["blocks"][0]
    for kernel in (block["attention"]["qkv"], block["up"], block["down"]):
      np.testing.assert_allclose(np.std(kernel["kernel"]), hidden_std, rtol=0.05)
    np.testing.assert_allclose(np.std(params["embed"]["embedding"]), 0.02, rtol=0.05)
  # ResNet, channels (64, 128) on (4, 8): LeCun convolutions, the head at m = 16 times LeCun's
  # variance, 1 / 8 (the base's fan-in).
  for parametrization, head_std in (("sp", 128**-0.5), ("mup", 8**-0.5)):
    params = _init(_resnet(16, parametrization))[0]
    np.testing.assert_allclose(np.std(params["head"]["kernel"]), head_std, rtol=0.1)
    conv = params["blocks"][1]["conv_1"]["kernel"]  # fan_in 3 * 128
    np.testing.assert_allclose(np.std(conv), (3 * 128) ** -0.5, rtol=0.05)


def _numpy_attention(params, h: np.ndarray, heads: int, scale: float) -> np.ndarray:
  """Causal multi-head attention in float64 NumPy, logits ``q k^T * scale``."""
  p = jax.tree.map(lambda a: np.asarray(a, np.float64), params)
  length, width = h.shape
  qkv = h @ p["qkv"]["kernel"] + p["qkv"]["bias"]
  q, k, v = (a.reshape(length, heads, -1).transpose(1, 0, 2) for a in np.split(qkv, 3, -1))
  scores = q @ k.transpose(0, 2, 1) * scale
  scores = np.where(np.tril(np.ones((length, length), bool)), scores, -np.inf)
  weights = np.exp(scores - scores.max(-1, keepdims=True))
  weights /= weights.sum(-1, keepdims=True)
  mixed = (weights @ v).transpose(1, 0, 2).reshape(length, width)
  return mixed @ p["out"]["kernel"] + p["out"]["bias"]


@pytest.mark.parametrize(("base_width", "scale"), [(None, 8**-0.5), (8, 2 / 8), (16, 8**-0.5)])
def test_attention_logits_are_scaled_one_over_d_under_mup(base_width, scale):
  # Width 16, 2 heads: d = 8. SP 1/sqrt(d); muP sqrt(d_base)/d (base 8: d_base 4; base 16: SP).
  layer = CausalSelfAttention(16, 2, base_width=base_width, rngs=nnx.Rngs(0))
  h = 30 * np.asarray(jax.random.normal(jax.random.key(1), (6, 16)))  # scores of order 1
  params = nnx.to_pure_dict(nnx.state(layer, nnx.Param))
  expected = _numpy_attention(params, h, 2, scale)
  np.testing.assert_allclose(layer(jnp.asarray(h)), expected, rtol=1e-4, atol=1e-5)


def test_transformer_readout_is_the_tied_embedding_over_m():
  # muP's logits: (LN(h) / m) E^T. Against a model with the output multiplier removed.
  model = Transformer(
    16, 8, width=32, depth=1, heads=2, parametrization="mup", base_width=8, rngs=nnx.Rngs(0)
  )
  tokens = jnp.arange(8) % 16
  logits = model(tokens)
  model.output_multiplier = None
  np.testing.assert_allclose(logits, model(tokens) * 8 / 32, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize(
  ("build", "message"),
  [
    (
      lambda: lrlab.tasks.get("lm-transformer", parametrization="ntk"),
      "parametrization must be one of 'sp', 'mup'; got 'ntk'.",
    ),
    (
      lambda: Transformer(8, 4, width=32, heads=4, parametrization="mup", base_width=6, rngs=None),
      "base_width must be a positive integer multiple of heads=4; got 6.",
    ),
    (  # base_width is checked under "sp" too, where it is unused (the docstrings say so)
      lambda: Transformer(8, 4, width=32, heads=4, base_width=6, rngs=nnx.Rngs(0)),
      "base_width must be a positive integer multiple of heads=4; got 6.",
    ),
    (
      lambda: lrlab.models.resnet.ResNet((8,), 3, base_width=0, rngs=nnx.Rngs(0)),
      "base_width must be an int >= 1 or one int >= 1 per stage (2); got 0.",
    ),
    (
      lambda: lrlab.tasks.get("mnist1d-resnet", parametrization="MuP"),
      "parametrization must be one of 'sp', 'mup'; got 'MuP'.",
    ),
    (
      lambda: lrlab.tasks.get("digits-resnet", parametrization="mup", base_width=(8, 16, 32)),
      "base_width must be an int >= 1 or one int >= 1 per stage (2); got (8, 16, 32).",
    ),
    (  # muP's default base width is the default model's: it fits no other count of stages
      lambda: lrlab.tasks.get("digits-resnet", parametrization="mup", channels=(8, 16, 32)),
      "base_width must be given with parametrization='mup' and channels=(8, 16, 32): its "
      "default, the default model's channels (8, 16), has 2 stages.",
    ),
    (  # nor a count of heads that does not divide the default width
      lambda: lrlab.tasks.get("lm-transformer", parametrization="mup", width=96, heads=3),
      "base_width must be given with parametrization='mup' and heads=3: its default, the "
      "default width 64, is not a multiple of heads.",
    ),
    (
      lambda: resnet_lr_multipliers((40,), 10, "lion"),
      "optimizer must be one of 'adam', 'sgd'; got 'lion'.",
    ),
    (  # the rates read the sizes with int(): a fraction was truncated (16.5 channels gave
      # the rates of 16) and one int failed with "'int' object is not iterable"
      lambda: resnet_lr_multipliers((40,), 10, "adam", channels=16),
      "channels must be a non-empty sequence of integers >= 1; got 16.",
    ),
    (
      lambda: resnet_lr_multipliers((40,), 10, "adam", channels=(16.5, 32), base_width=8),
      "channels must be a non-empty sequence of integers >= 1; got (16.5, 32).",
    ),
    (
      lambda: resnet_lr_multipliers((40.5,), 10, "adam"),
      "input_shape must be a sequence of integers >= 1; got (40.5,).",
    ),
    (
      lambda: resnet_lr_multipliers((40,), 10, "adam", blocks=1.5),
      "blocks must be an integer >= 1; got 1.5.",
    ),
  ],
)
def test_bad_input_is_refused_in_one_line(build, message):
  with pytest.raises(ValueError) as error:
    build()
  assert str(error.value).startswith(message)
  assert "\n" not in str(error.value)
