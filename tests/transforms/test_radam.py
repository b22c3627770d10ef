"""Tests for lrlab.transforms.scale_by_radam (PyTorch RAdam arithmetic)."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from lrlab.transforms import ScaleByRadamState, scale_by_learning_rate, scale_by_radam
from lrlab.transforms.radam import _length
from tests.transforms import reference
from tests.transforms.runners import assert_close, run_optax

PROBLEM = reference.make_problem(seed=8)


@pytest.mark.parametrize(
  "kwargs",
  [
    {},
    {"b1": 0.5, "b2": 0.9, "eps": 1e-3},
    {"b1": 0.0, "b2": 0.99},
    {"b2": 0.5},  # rho_inf = 3: never rectified
  ],
)
def test_matches_reference(kwargs):
  tx = optax.chain(scale_by_radam(**kwargs), scale_by_learning_rate(0.05))
  assert_close(run_optax(tx, PROBLEM), reference.radam(PROBLEM, 0.05, **kwargs))


def test_matches_optax_radam_without_eps():
  # Optax adds eps after the bias correction and rectifies from rho_t >= 5; with eps = 0 and
  # b2 = 0.875 (exact in float32; rho_t is never 5) the rules coincide.
  ours = optax.chain(scale_by_radam(b2=0.875, eps=0.0), scale_by_learning_rate(0.05))
  theirs = optax.radam(0.05, b2=0.875, eps=0.0)
  assert_close(run_optax(ours, PROBLEM), run_optax(theirs, PROBLEM))


def _float64_length(b2, t):
  t = t.astype(np.float64)
  return 2 / (1 - b2) - 1 - 2 * t * b2**t / (1 - b2**t)


@pytest.mark.parametrize("b2", [0.5, 0.9, 0.99, 0.999, 0.9999])
def test_length_is_accurate_in_float32(b2):
  # rho_inf - 2 t b2^t / (1 - b2^t) in float32 lost 5e-4 of rho_6 = 5.994 at b2 = 0.999.
  steps = np.unique(np.geomspace(1, 100_000, 400).astype(np.int32))
  rho_inf, rho = _length(b2, jnp.asarray(steps))
  assert rho.dtype == jnp.float32 and rho_inf == 2 / (1 - b2) - 1
  np.testing.assert_allclose(rho, _float64_length(b2, steps), rtol=2e-6)


def test_length_under_a_traced_b2():
  steps = jnp.arange(1, 2001)
  b2 = jnp.array([0.5, 0.875, 0.9375])  # exact in float32
  rho_inf, rho = jax.jit(jax.vmap(lambda b: _length(b, steps)))(b2)
  for i, b in enumerate(np.asarray(b2, np.float64)):
    np.testing.assert_allclose(rho_inf[i], 2 / (1 - b) - 1, rtol=1e-7)
    np.testing.assert_allclose(rho[i], _float64_length(b, np.asarray(steps)), rtol=2e-6)


def _updates(steps, **kwargs):
  tx = scale_by_radam(**kwargs)
  grads = jnp.asarray(PROBLEM.noise["w"][:steps])
  state = tx.init(grads[0])
  out = []
  for g in grads:
    update, state = tx.update(g, state)
    out.append(update)
  return jnp.stack(out), grads, state


def test_the_first_five_steps_are_the_bias_corrected_momentum():
  # With b2 = 0.999, rho_5 = 4.996 and rho_6 = 5.994: the sixth step is the first rectified.
  updates, grads, state = _updates(7, b1=0.5)
  momentum = np.zeros_like(grads[0])
  for t in range(7):
    momentum = 0.5 * momentum + 0.5 * np.asarray(grads[t], np.float64)
    m_hat = momentum / (1 - 0.5 ** (t + 1))
    if t < 5:
      np.testing.assert_allclose(updates[t], m_hat, rtol=1e-6)
    else:
      assert not np.allclose(updates[t], m_hat, rtol=1e-2)
  assert isinstance(state, ScaleByRadamState) and state.count == 7
  assert state.count.dtype == jnp.int32


@pytest.mark.parametrize("b2", [0.0, 0.6])
def test_never_rectified_where_rho_inf_is_at_most_5(b2):
  # rho_inf = 1 and 4; 4 puts a zero in the rectifier's denominator, which must not leak.
  updates, grads, _ = _updates(20, b1=0.0, b2=b2, eps=0.0)
  np.testing.assert_allclose(updates, grads, rtol=1e-6, atol=1e-7)  # m + (g - m) rounds


@pytest.mark.parametrize("b2", [0.0, 0.6])
def test_the_branch_not_taken_leaves_no_nan_in_a_derivative(b2):
  # jnp.where's derivative multiplies the other branch by 0, and 0 * nan is nan: at
  # rho_inf = 4 the rectifier divides by zero unless the untaken branch is made finite.
  tx = scale_by_radam(b2=b2, eps=0.0)
  grads = jnp.array([0.5, -1.0])
  state = tx.init(grads)
  derivative = jax.grad(lambda g: jnp.sum(tx.update(g, state)[0]))(grads)
  np.testing.assert_allclose(derivative, [1.0, 1.0], rtol=1e-6)  # the first step is m_hat = g


@pytest.mark.parametrize(
  ("kwargs", "match"),
  [
    ({"b1": 1.0}, r"b1 must be in \[0.0, 1.0\); got 1.0"),
    ({"b1": -0.1}, r"b1 must be in \[0.0, 1.0\); got -0.1"),
    ({"b2": 1.0}, r"b2 must be in \[0.0, 1.0\); got 1.0"),
    ({"eps": -1e-8}, "eps must be a finite number >= 0; got -1e-08"),
    ({"eps": None}, "eps must be a number or an array; got None"),
  ],
)
def test_bad_input(kwargs, match):
  with pytest.raises(ValueError, match=match):
    scale_by_radam(**kwargs)
