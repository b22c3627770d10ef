"""Flax NNX models and their pure init / apply bridge under vmap, jit, grad and scan."""

import functools

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx

from lrlab import analysis, models

CASES = {
  "linear": (lambda rngs: models.Linear(64, 10, rngs=rngs), 64),
  "mlp": (lambda rngs: models.MLP(40, (32, 16), 10, activation="tanh", rngs=rngs), 40),
  "cnn1d": (lambda rngs: models.CNN1D(40, 10, rngs=rngs), 40),
  "cnn2d": (lambda rngs: models.CNN2D((8, 8), 10, rngs=rngs), 64),
}


def _num_params(params):
  return sum(x.size for x in jax.tree.leaves(params))


def _eval(model):
  """``(params, x) -> outputs`` of a model without state, in evaluation mode."""
  return lambda params, x: model.apply(params, {}, x, train=False)[0]


@pytest.mark.parametrize("name", CASES)
def test_output_shapes_for_any_leading_axes(name):
  make, features = CASES[name]
  model = models.functional(make)
  params, model_state = model.init(jax.random.key(0))
  assert model_state == {}
  apply = jax.jit(model.apply, static_argnames="train")
  for lead in [(), (2, 3)]:  # (B,) is covered by the vmap test
    x = jnp.ones((*lead, features))
    out, new_state = apply(params, model_state, x, train=False)
    assert out.shape == (*lead, 10)
    assert out.dtype == jnp.float32
    # Without state or randomness the two modes are the same function.
    trained, new_state = apply(params, model_state, x, train=True, key=None)
    np.testing.assert_array_equal(trained, out)
    assert new_state == {}


@pytest.mark.parametrize("name", CASES)
def test_vmap_over_init_keys_and_apply(name):
  make, features = CASES[name]
  model = models.functional(make)
  keys = jax.random.split(jax.random.key(1), 3)
  stacked, states = jax.jit(jax.vmap(model.init))(keys)
  assert states == {}
  init, apply = jax.jit(model.init), jax.jit(_eval(model))
  single = [init(k)[0] for k in keys]
  chex.assert_trees_all_close(stacked, jax.tree.map(lambda *xs: jnp.stack(xs), *single))
  kernels = [p for p in jax.tree.leaves(stacked) if p.ndim > 2]
  assert not np.allclose(kernels[0][0], kernels[0][1])  # different keys, different weights
  x = jax.random.normal(jax.random.key(2), (4, features))
  out = jax.jit(jax.vmap(_eval(model), in_axes=(0, None)))(stacked, x)
  looped = jnp.stack([apply(p, x) for p in single])
  chex.assert_trees_all_close(out, looped, rtol=1e-5, atol=1e-5)


def test_params_are_plain_nested_dicts():
  model = models.functional(CASES["mlp"][0])
  params, model_state = model.init(jax.random.key(0))
  assert model_state == {}
  assert set(params) == {"dense_0", "dense_1", "head"}
  assert all(isinstance(leaf, jax.Array) for leaf in jax.tree.leaves(params))
  # Weights as torch.nn.Linear stores them: (out_features, in_features).
  assert jax.tree.map(jnp.shape, params["dense_0"]) == {"weight": (32, 40), "bias": (32,)}


def test_gradient_descent_inside_scan_equals_python_loop():
  model = models.functional(CASES["cnn1d"][0])
  x = jax.random.normal(jax.random.key(3), (8, 40))
  y = jnp.arange(8) % 10

  def loss(params):
    logits, _ = model.apply(params, {}, x, train=True)
    return -jnp.mean(jax.nn.log_softmax(logits)[jnp.arange(8), y])

  def step(params, _):
    return jax.tree.map(lambda p, g: p - 0.1 * g, params, jax.grad(loss)(params)), loss(params)

  params, _ = model.init(jax.random.key(0))
  scanned, losses = jax.jit(lambda p: jax.lax.scan(step, p, None, length=3))(params)
  looped, jit_step = params, jax.jit(step)
  for _ in range(3):
    looped, _ = jit_step(looped, None)
  chex.assert_trees_all_close(scanned, looped, rtol=1e-5, atol=1e-6)
  assert losses[-1] < losses[0]


def test_cnn1d_matches_the_mnist1d_paper_architecture():
  params, _ = models.functional(CASES["cnn1d"][0]).init(jax.random.key(0))
  shapes = jax.tree.map(jnp.shape, params)
  assert shapes["conv_0"]["kernel"] == (5, 1, 25)
  assert shapes["conv_1"]["kernel"] == (3, 25, 25)
  assert shapes["head"]["kernel"] == (125, 10)  # 25 channels x length 5
  assert _num_params(params) == 5210  # as PyTorch's ConvBase(output_size=10)


def test_cnn2d_default_head_and_size():
  params, _ = models.functional(CASES["cnn2d"][0]).init(jax.random.key(0))
  assert params["head"]["kernel"].shape == (4 * 4 * 32, 10)
  assert _num_params(params) == 160 + 4640 + 5130


def test_mlp_without_hidden_layers_is_linear():
  model = models.functional(lambda rngs: models.MLP(3, (), 2, rngs=rngs))
  params, _ = model.init(jax.random.key(0))
  assert set(params) == {"head"}
  x = jnp.ones((1, 3))
  chex.assert_trees_all_close(
    _eval(model)(params, x), x @ params["head"]["weight"].T + params["head"]["bias"]
  )


def test_custom_callable_activation():
  model = models.functional(lambda r: models.MLP(2, (3,), 1, activation=jnp.sin, rngs=r))
  assert _eval(model)(model.init(jax.random.key(0))[0], jnp.ones((4, 2))).shape == (4, 1)


class _Holding(nnx.Module):
  """A module whose only state is ``value`` wrapped as ``kind``."""

  def __init__(self, kind, value):
    self.value = kind(value)

  def __call__(self, x):
    return x


def test_functional_rejects_state_it_cannot_carry():
  # BatchNorm's statistics are model state now, carried rather than refused.
  make = lambda rngs: nnx.Sequential(nnx.Linear(2, 3, rngs=rngs), nnx.BatchNorm(3, rngs=rngs))
  _, model_state = models.functional(make).init(jax.random.key(0))
  assert jax.tree.map(jnp.shape, model_state) == {"layers": {1: {"mean": (3,), "var": (3,)}}}
  # What cannot be trained or carried is refused, naming its path.
  integer_param = lambda rngs: _Holding(nnx.Param, jnp.zeros(3, jnp.int32))
  with pytest.raises(ValueError, match=r"parameters \(nnx\.Param\) are floating-point.*at value"):
    models.functional(integer_param)
  key_state = lambda rngs: _Holding(nnx.Variable, jax.random.key(0))
  with pytest.raises(ValueError, match=r"are numeric arrays; got dtype key<fry> at value"):
    models.functional(key_state)
  with pytest.raises(ValueError, match="make must be a callable"):
    models.functional(3)
  with pytest.raises(ValueError, match=r"make must return an nnx\.Module"):
    models.functional(lambda rngs: jnp.zeros(3))


class _NeedsWidth(nnx.Module):
  def __init__(self, width, rngs):
    self.linear = nnx.Linear(2, width, rngs=rngs)


@pytest.mark.parametrize(
  ("make", "takes"),
  [
    (lambda: models.Linear(2, 3, rngs=nnx.Rngs(0)), r"\(\) \(too many positional arguments\)"),
    (_NeedsWidth, r"\(self, width, rngs\) \(missing a required argument: 'rngs'\)"),
    (
      functools.partial(lambda rngs: models.Linear(2, 3, rngs=rngs), rngs=nnx.Rngs(0)),
      r"\(rngs\) \(multiple values for argument 'rngs'\)",
    ),
  ],
  ids=["no-arguments", "class-needing-two", "partial-given-rngs"],
)
def test_a_make_that_cannot_take_rngs_is_named_before_it_is_called(make, takes):
  # It failed on the call, with a TypeError naming a <lambda> and no argument of lrlab's.
  match = r"^make must take the random streams, as make\(rngs\) or make\(rngs=rngs\); it takes "
  with pytest.raises(ValueError, match=match + takes):
    models.functional(make)


@pytest.mark.parametrize(
  ("make", "match"),
  [
    (lambda r: models.MLP(4, (8,), 2, activation="swish!", rngs=r), "activation must be one of"),
    (lambda r: models.MLP(4, (8, 0), 2, rngs=r), "hidden"),
    (lambda r: models.Linear(0, 2, rngs=r), "in_features"),
    (lambda r: models.CNN1D(3, 10, rngs=r), "length"),
    (lambda r: models.CNN2D((8,), 10, rngs=r), "image_shape"),
    (lambda r: models.CNN2D((8, 8), 10, channels=(), rngs=r), "channels"),
  ],
)
def test_models_reject_bad_arguments(make, match):
  with pytest.raises(ValueError, match=match):
    make(nnx.Rngs(0))


def test_dense_stores_torch_layout_with_flax_init_values():
  layer = models.Dense(5, 3, rngs=nnx.Rngs(7))
  flax_layer = nnx.Linear(5, 3, rngs=nnx.Rngs(7))
  assert layer.weight.shape == (3, 5)  # torch.nn.Linear.weight's (out, in)
  np.testing.assert_array_equal(layer.weight[...], flax_layer.kernel[...].T)
  np.testing.assert_array_equal(layer.bias[...], flax_layer.bias[...])
  x = np.random.default_rng(0).normal(size=(2, 4, 5)).astype(np.float32)
  expected = x @ np.asarray(layer.weight[...]).T + np.asarray(layer.bias[...])
  np.testing.assert_allclose(layer(jnp.asarray(x)), expected, rtol=1e-5, atol=1e-6)
  # Features-first: (in, ...) -> (out, ...), the same numbers transposed.
  np.testing.assert_allclose(
    layer.feature_major(jnp.moveaxis(jnp.asarray(x), -1, 0)), np.moveaxis(expected, -1, 0),
    rtol=1e-5, atol=1e-6,
  )  # fmt: skip


@pytest.mark.parametrize("activation", ["relu", "tanh"])
def test_mlp_equals_a_batch_major_numpy_forward(activation):
  model = models.functional(lambda r: models.MLP(6, (8, 7), 4, activation=activation, rngs=r))
  params = jax.tree.map(np.asarray, model.init(jax.random.key(3))[0])
  act = {"relu": lambda v: np.maximum(v, 0.0), "tanh": np.tanh}[activation]
  for shape in [(6,), (5, 6), (2, 3, 6)]:
    x = np.random.default_rng(1).normal(size=shape).astype(np.float32)
    h = x
    for name in ("dense_0", "dense_1"):
      h = act(h @ params[name]["weight"].T + params[name]["bias"])
    expected = h @ params["head"]["weight"].T + params["head"]["bias"]
    outputs = _eval(model)(params, jnp.asarray(x))
    np.testing.assert_allclose(outputs, expected, rtol=1e-5, atol=1e-5)


def _dense_fn(layer, **kwargs):
  """``(weight, bias, h) -> layer.feature_major(h, **kwargs)`` as a pure function."""
  graphdef, state = nnx.split(layer)

  def apply(weight, bias, h):
    fresh = jax.tree.map(lambda leaf: leaf, state)
    nnx.replace_by_pure_dict(fresh, {"weight": weight, "bias": bias})
    return nnx.merge(graphdef, fresh).feature_major(h, **kwargs)

  return apply


def test_transposed_backward_derivatives_equal_the_closed_forms():
  rng = np.random.default_rng(0)
  layer = models.Dense(5, 3, rngs=nnx.Rngs(1))
  w, b = np.asarray(layer.weight[...]), np.asarray(layer.bias[...])
  h = rng.normal(size=(5, 2, 4)).astype(np.float32)  # (in, ...batch)
  cot = rng.normal(size=(3, 2, 4)).astype(np.float32)
  f = _dense_fn(layer, transposed_backward=True)
  product = lambda w, h: np.einsum("oi,i...->o...", w, h)
  np.testing.assert_allclose(f(w, b, h), product(w, h) + b[:, None, None], rtol=1e-5)
  # Reverse mode: dW = C h^T, db = sum of C over the batch, dh = W^T C.
  loss = lambda *args: jnp.sum(cot * f(*args))
  dw, db, dh = jax.grad(loss, argnums=(0, 1, 2))(w, b, h)
  np.testing.assert_allclose(dw, np.einsum("ojk,ijk->oi", cot, h), rtol=1e-5, atol=1e-6)
  np.testing.assert_allclose(db, cot.sum(axis=(1, 2)), rtol=1e-5, atol=1e-6)
  np.testing.assert_allclose(dh, np.einsum("oi,ojk->ijk", w, cot), rtol=1e-5, atol=1e-6)
  # One argument at a time (the others' tangents are symbolic zeros).
  np.testing.assert_allclose(jax.grad(loss, argnums=2)(w, b, h), dh, rtol=1e-6)
  np.testing.assert_allclose(jax.grad(loss, argnums=0)(w, b, h), dw, rtol=1e-6)
  # Forward mode: d(W h + b) = dW h + W dh + db.
  tw, tb, th = (rng.normal(size=a.shape).astype(np.float32) for a in (w, b, h))
  _, tangent = jax.jvp(f, (w, b, h), (tw, tb, th))
  expected = product(tw, h) + product(w, th) + tb[:, None, None]
  np.testing.assert_allclose(tangent, expected, rtol=1e-5, atol=1e-5)
  _, tangent_h = jax.jvp(lambda h: f(w, b, h), (h,), (th,))
  np.testing.assert_allclose(tangent_h, product(w, th), rtol=1e-5, atol=1e-5)


def test_transposed_backward_matches_plain_autodiff_to_second_order_and_under_vmap():
  rng = np.random.default_rng(2)
  layer = models.Dense(6, 4, rngs=nnx.Rngs(3))
  w, b = jnp.asarray(layer.weight[...]), jnp.asarray(layer.bias[...])
  h = jnp.asarray(rng.normal(size=(6, 7)).astype(np.float32))
  fast, plain = _dense_fn(layer, transposed_backward=True), _dense_fn(layer)

  def scalar(f):  # nonlinear in every argument, so the Hessian has every block
    return lambda p: jnp.sum(jnp.tanh(f(p["w"], p["b"], p["h"])) ** 2)

  point = {"w": w, "b": b, "h": h}
  direction = jax.tree.map(lambda a: jnp.asarray(rng.normal(size=a.shape), jnp.float32), point)
  for hvp in (  # forward-over-reverse (lrlab.analysis) and reverse-over-reverse
    lambda g: analysis.hessian_vector_product(g, point, direction),
    lambda g: jax.grad(lambda p: optax.tree.vdot(jax.grad(g)(p), direction))(point),
  ):
    chex.assert_trees_all_close(hvp(scalar(fast)), hvp(scalar(plain)), rtol=1e-5, atol=1e-6)
  # A batch of members (leading axis on every argument), as a sweep runs it.
  members = jax.tree.map(lambda a: jnp.stack([a, 2 * a, -a]), point)
  grads = jax.vmap(jax.grad(scalar(fast)))(members)
  for m in range(3):
    member = functools.partial(lambda m, a: a[m], m)
    one = jax.grad(scalar(plain))(jax.tree.map(member, members))
    chex.assert_trees_all_close(jax.tree.map(member, grads), one, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("hidden", [(), (8,), (8, 7)])
def test_mlp_gradient_and_hessian_equal_a_plain_batch_major_network(hidden):
  model = models.functional(lambda r: models.MLP(6, hidden, 4, activation="tanh", rngs=r))
  params, _ = model.init(jax.random.key(5))
  x = jnp.asarray(np.random.default_rng(4).normal(size=(9, 6)).astype(np.float32))
  labels = jnp.arange(9) % 4

  def reference(params, x):  # batch-major, no custom derivative, no barrier
    names = [f"dense_{i}" for i in range(len(hidden))]
    for name in names:
      x = jnp.tanh(x @ params[name]["weight"].T + params[name]["bias"])
    return x @ params["head"]["weight"].T + params["head"]["bias"]

  def loss(apply):
    return lambda p: optax.softmax_cross_entropy_with_integer_labels(apply(p, x), labels).mean()

  chex.assert_trees_all_close(
    jax.grad(loss(_eval(model)))(params), jax.grad(loss(reference))(params), rtol=1e-5, atol=1e-6
  )
  direction = jax.tree.map(jnp.ones_like, params)
  chex.assert_trees_all_close(
    analysis.hessian_vector_product(loss(_eval(model)), params, direction),
    analysis.hessian_vector_product(loss(reference), params, direction),
    rtol=1e-4, atol=1e-5,
  )  # fmt: skip
