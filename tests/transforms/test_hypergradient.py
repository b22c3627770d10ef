"""Tests for lrlab.transforms.scale_by_hypergradient (SGD-HD and Adam-HD)."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from lrlab.transforms import ScaleByHypergradientState, scale_by_hypergradient

# A non-quadratic test function on a pytree of two parameters:
# f(x) = sum(0.5 h x^2 + 0.25 q x^4 - c x) over both leaves.
H = {"w": np.array([1.0, 2.0, 3.0]), "b": np.array([[0.5, 1.5], [2.5, 4.0]])}
Q = {"w": np.array([0.1, 0.0, 0.2]), "b": np.array([[0.3, 0.0], [0.1, 0.05]])}
C = {"w": np.array([1.0, -1.0, 0.5]), "b": np.array([[0.0, 2.0], [-0.5, 1.0]])}
X0 = {"w": np.array([0.5, -1.0, 2.0]), "b": np.array([[1.0, -0.5], [0.25, 1.5]])}


def _flat(tree):
  return np.concatenate([np.ravel(tree[k]) for k in ("b", "w")]).astype(np.float64)


def loss(params):
  return sum(jnp.sum(0.5 * H[k] * x**2 + 0.25 * Q[k] * x**4 - C[k] * x) for k, x in params.items())


def numpy_hd(base, alpha, beta, steps, b1=0.9, b2=0.999, eps=1e-8):
  """The paper's SGD-HD / Adam-HD pseudocode, line by line, on the flattened parameters."""
  h, q, c = _flat(H), _flat(Q), _flat(C)
  grad = lambda theta: h * theta + q * theta**3 - c
  theta = _flat(X0)
  grad_u = np.zeros_like(theta)  # nabla_alpha u_0 = 0
  m = np.zeros_like(theta)
  v = np.zeros_like(theta)
  alphas, thetas = [], []
  for t in range(1, steps + 1):
    g = grad(theta)  # g_t = grad f(theta_{t-1})
    h_t = g @ grad_u  # h_t = g_t . nabla_alpha u_{t-1}
    alpha = alpha - beta * h_t  # alpha_t = alpha_{t-1} - beta h_t
    if base == "sgd":
      u = -alpha * g  # u_t = -alpha_t g_t
      grad_u = -g
    else:
      m = b1 * m + (1 - b1) * g
      v = b2 * v + (1 - b2) * g**2
      m_hat = m / (1 - b1**t)
      v_hat = v / (1 - b2**t)
      u = -alpha * m_hat / (np.sqrt(v_hat) + eps)
      grad_u = -m_hat / (np.sqrt(v_hat) + eps)
    theta = theta + u  # theta_t = theta_{t-1} + u_t
    alphas.append(alpha)
    thetas.append(theta)
  return np.asarray(alphas), np.asarray(thetas)


def lrlab_run(tx, params, steps, objective=loss):
  """Scan ``steps`` updates of ``tx`` on ``objective``; return rates, parameters, losses."""

  def step(carry, _):
    params, state = carry
    value, grads = jax.value_and_grad(objective)(params)
    updates, state = tx.update(grads, state, params)
    params = optax.apply_updates(params, updates)
    return (params, state), (state.learning_rate, params, value)

  _, out = jax.lax.scan(step, (params, tx.init(params)), None, length=steps)
  return out


@pytest.mark.parametrize(
  ("base", "alpha", "beta"),
  [("sgd", 0.05, 1e-3), ("sgd", 0.45, 1e-3), ("adam", 0.01, 1e-4), ("adam", 0.05, 1e-3)],
)
def test_matches_the_papers_pseudocode(base, alpha, beta):
  steps = 50
  expected_alphas, expected_thetas = numpy_hd(base, alpha, beta, steps)
  tx = scale_by_hypergradient(alpha, hyper_lr=beta, base=base)
  params = jax.tree.map(lambda x: jnp.asarray(x, jnp.float32), X0)
  alphas, thetas, _ = jax.jit(lambda p: lrlab_run(tx, p, steps))(params)
  thetas = np.concatenate([np.reshape(thetas[k], (steps, -1)) for k in ("b", "w")], axis=1)
  assert np.ptp(expected_alphas) > 0.1 * alpha, "the rate should actually move"
  np.testing.assert_allclose(alphas, expected_alphas, rtol=2e-4, atol=1e-6)
  np.testing.assert_allclose(thetas, expected_thetas, rtol=2e-4, atol=1e-5)


# The quadratic f(x) = 0.5 x^T H x with eigenvalues 1..10: L = 10, stable for rates < 2/L.
EIGENVALUES = jnp.linspace(1.0, 10.0, 10)
quadratic = lambda x: 0.5 * jnp.sum(EIGENVALUES * x**2)


def _quadratic_run(learning_rate, hyper_lr, base="sgd", steps=100):
  tx = scale_by_hypergradient(learning_rate, hyper_lr=hyper_lr, base=base)
  rates, _, losses = lrlab_run(tx, jnp.ones(10), steps, quadratic)
  return np.asarray(rates), np.asarray(losses)


def test_sgd_hd_raises_a_too_small_rate_into_the_stable_range():
  rates, losses = _quadratic_run(1e-4, 1e-4)
  assert np.all(np.diff(rates[:10]) > 0)  # gradients agree, so the rate climbs
  assert 100 * 1e-4 < rates[-1] < 2 / 10
  assert losses[-1] < 1e-6 * losses[0]
  _, sgd_losses = _quadratic_run(1e-4, 0.0)  # plain SGD at the same start barely moves
  assert sgd_losses[-1] > 0.8 * sgd_losses[0]


def test_sgd_hd_lowers_a_too_large_rate_into_the_stable_range():
  rates, losses = _quadratic_run(0.25, 1e-4)
  # The top mode overshoots, so successive gradients oppose and the rate falls.
  assert np.all(np.diff(rates[:5]) < 0)
  assert np.all(rates[2:] < 2 / 10) and rates[-1] > 0.05
  assert np.all(np.diff(losses[1:20]) < 0) and losses[-1] < 1e-6 * losses[0]
  _, sgd_losses = _quadratic_run(0.25, 0.0)  # plain SGD at 0.25 diverges
  assert sgd_losses[-1] > 1e6 * sgd_losses[0]


def test_adam_hd_raises_a_too_small_rate():
  rates, losses = _quadratic_run(1e-4, 1e-3, base="adam")
  assert rates[-1] > 100 * 1e-4
  assert losses[-1] < 1e-3 * losses[0]


@pytest.mark.parametrize("base", ["sgd", "adam"])
def test_vmap_over_hyper_lr_equals_a_python_loop(base):
  hyper_lrs = [0.0, 1e-5, 1e-4]

  def run(hyper_lr):
    tx = scale_by_hypergradient(0.01, hyper_lr=hyper_lr, base=base)
    rates, _, losses = lrlab_run(tx, jnp.ones(10), 30, quadratic)
    return rates, losses

  vmapped = jax.jit(jax.vmap(run, in_axes=0))(jnp.asarray(hyper_lrs))
  for i, hyper_lr in enumerate(hyper_lrs):
    looped = jax.jit(run, static_argnums=0)(hyper_lr)
    row = jax.tree.map(lambda x, i=i: x[i], vmapped)
    chex.assert_trees_all_close(row, looped, rtol=1e-5)
  assert len(set(np.asarray(vmapped[0][:, -1]).tolist())) == 3


@pytest.mark.parametrize(("base", "reference"), [("sgd", optax.sgd), ("adam", optax.adam)])
def test_zero_hyper_lr_is_the_plain_optimizer(base, reference):
  params = jax.tree.map(lambda x: jnp.asarray(x, jnp.float32), X0)
  tx = scale_by_hypergradient(0.03, hyper_lr=0.0, base=base)
  ours = jax.jit(lambda p: lrlab_run(tx, p, 20)[1])(params)
  ref_tx = reference(0.03)

  def ref_step(carry, _):
    params, state = carry
    updates, state = ref_tx.update(jax.grad(loss)(params), state, params)
    params = optax.apply_updates(params, updates)
    return (params, state), params

  theirs = jax.lax.scan(ref_step, (params, ref_tx.init(params)), None, length=20)[1]
  chex.assert_trees_all_close(ours, theirs, rtol=1e-5, atol=1e-6)


class JitTest(chex.TestCase):
  @chex.variants(with_jit=True, without_jit=True)
  def test_jit_and_no_jit_agree(self):
    tx = scale_by_hypergradient(0.1, hyper_lr=0.01, base="adam")
    params = {"a": jnp.ones(2), "b": jnp.zeros((2, 2))}
    update = self.variant(tx.update)
    state = tx.init(params)
    for scale in [1.0, 0.5, -0.25]:
      grads = jax.tree.map(lambda x, s=scale: jnp.full_like(x, s), params)
      _, state = update(grads, state, params)
    assert isinstance(state, ScaleByHypergradientState)
    assert state.count.dtype == jnp.int32 and int(state.count) == 3
    # Rates: 0.1 (no previous direction), then up (agreeing), then down (opposing).
    assert 0.1 < float(state.learning_rate) < 0.1 + 0.01 * 6


@pytest.mark.parametrize("base", ["sgd", "adam"])
def test_non_finite_gradients_do_not_poison_the_rate(base):
  tx = scale_by_hypergradient(0.1, hyper_lr=0.01, base=base)
  state = tx.init(jnp.zeros(2))
  good = jnp.ones(2)
  rates, updates = [], []
  for grads in [good, good, jnp.array([np.nan, 1.0]), good, good, jnp.array([np.inf, 1.0]), good]:
    update, state = tx.update(grads, state)
    rates.append(float(state.learning_rate))
    updates.append(np.asarray(update))
  assert np.all(np.isfinite(rates))
  assert rates[1] > rates[0]  # two agreeing gradients raise the rate
  assert rates[2] == rates[1]  # g . direction is nan: skipped
  assert np.isnan(updates[2][0])  # the bad gradient itself flows through
  if base == "sgd":
    assert rates[3] == rates[2]  # the stored direction is still nan: skipped again
    assert rates[4] > rates[3]  # then it learns again
    assert np.all(np.isfinite(updates[4]))


def test_keeps_the_update_dtype():
  tx = scale_by_hypergradient(0.1, hyper_lr=0.01, base="adam")
  params = jnp.zeros(3, jnp.bfloat16)
  state = tx.init(params)
  for _ in range(2):
    updates, state = tx.update(jnp.ones(3, jnp.bfloat16), state)
  assert updates.dtype == jnp.bfloat16 and state.mu.dtype == jnp.bfloat16
  assert state.learning_rate.dtype == jnp.float32


@pytest.mark.parametrize("base", ["sgd", "adam"])
def test_state_types_never_change_with_a_weakly_typed_parameter(base):
  # A scalar parameter made by jnp.asarray(1.0) is weakly typed, and so is its gradient; the
  # state must keep its types at every update, or a jitted step compiles again.
  tx = scale_by_hypergradient(0.1, hyper_lr=0.01, base=base)
  params = {"t": jnp.asarray(1.0), "w": jnp.ones(2)}
  state = tx.init(params)
  types = lambda tree: jax.tree.map(lambda x: (x.dtype, x.weak_type), tree)
  for grads in [params, {"t": jnp.float32(0.5), "w": jnp.ones(2)}]:
    _, new_state = tx.update(grads, state, params)
    assert types(new_state) == types(state)
    state = new_state


@pytest.mark.parametrize(
  ("name", "value"),
  [
    ("learning_rate", -0.1),
    ("learning_rate", float("nan")),
    ("learning_rate", lambda step: 0.1),
    ("hyper_lr", -1e-3),
    ("hyper_lr", float("inf")),
    ("base", "rmsprop"),
    ("b1", 1.0),
    ("b1", -0.1),
    ("b2", 1.0),
    ("eps", -1e-8),
  ],
)
def test_bad_arguments_raise(name, value):
  kwargs = {"learning_rate": 0.1, "hyper_lr": 1e-3, name: value}
  with pytest.raises(ValueError, match=name):
    scale_by_hypergradient(**kwargs)
