"""Tests for lrlab.transforms.trace (PyTorch SGD momentum)."""

import chex
import jax
import jax.numpy as jnp
import optax
import pytest

from lrlab.transforms import TraceState, scale_by_learning_rate, trace
from tests.transforms import reference
from tests.transforms.runners import assert_close, run_optax

PROBLEM = reference.make_problem(seed=1)


@pytest.mark.parametrize(
  "kwargs",
  [
    {"momentum": 0.9},
    {"momentum": 0.5, "dampening": 0.3},
    {"momentum": 0.9, "nesterov": True},
    {"momentum": 0.0},
  ],
)
def test_matches_reference(kwargs):
  tx = optax.chain(trace(**kwargs), scale_by_learning_rate(0.05))
  assert_close(run_optax(tx, PROBLEM), reference.sgd(PROBLEM, 0.05, **kwargs))


@pytest.mark.parametrize("nesterov", [False, True])
def test_matches_optax_sgd_without_dampening(nesterov):
  ours = run_optax(
    optax.chain(trace(0.9, nesterov=nesterov), scale_by_learning_rate(0.05)), PROBLEM
  )
  theirs = run_optax(optax.sgd(0.05, momentum=0.9, nesterov=nesterov), PROBLEM)
  assert_close(ours, theirs)


def test_first_buffer_is_the_undamped_update():
  tx = trace(0.9, dampening=0.5)
  g = {"w": jnp.array([1.0, 2.0])}
  out, state = tx.update(g, tx.init(g))
  chex.assert_trees_all_close(out, g)
  out, state = tx.update(g, state)
  chex.assert_trees_all_close(out["w"], 0.9 * g["w"] + 0.5 * g["w"])
  assert isinstance(state, TraceState) and int(state.count) == 2


def test_traced_zero_momentum_is_the_identity():
  g = {"w": jnp.array([1.0, -2.0])}

  @jax.jit
  def two_steps(momentum):
    tx = trace(momentum, nesterov=True)
    state = tx.init(g)
    _, state = tx.update(g, state)
    return tx.update(jax.tree.map(lambda x: 3 * x, g), state)[0]

  chex.assert_trees_all_close(two_steps(0.0), jax.tree.map(lambda x: 3 * x, g))


def test_traced_zero_momentum_ignores_dampening():
  # PyTorch has no buffer at momentum 0, so its dampening has no effect either.
  g = {"w": jnp.array([1.0, -2.0])}

  @jax.jit
  def three_steps(momentum, dampening):
    tx = trace(momentum, dampening=dampening)
    state = tx.init(g)
    for _ in range(3):
      out, state = tx.update(g, state)
    return out

  chex.assert_trees_all_close(three_steps(0.0, 0.5), g)
  # b1 = g, b2 = 0.9 g + 0.5 g, b3 = 0.9 b2 + 0.5 g.
  chex.assert_trees_all_close(three_steps(0.9, 0.5)["w"], (0.9 * 1.4 + 0.5) * g["w"], rtol=1e-6)


@pytest.mark.parametrize(
  ("kwargs", "match"),
  [
    ({"momentum": -0.1}, r"momentum must be in \[0.0, 1.0\); got -0.1"),
    ({"momentum": 1.0}, r"momentum must be in \[0.0, 1.0\); got 1.0"),
    ({"momentum": float("nan")}, r"momentum must be in"),
    ({"momentum": 0.9, "dampening": -0.1}, r"dampening must be in \[0.0, 1.0\]; got -0.1"),
    ({"momentum": 0.9, "dampening": 1.5}, r"dampening must be in \[0.0, 1.0\]; got 1.5"),
    ({"momentum": 0.0, "nesterov": True}, r"momentum must be > 0 when nesterov=True; got 0.0"),
    (
      {"momentum": 0.9, "nesterov": True, "dampening": 0.1},
      r"dampening must be 0 when nesterov=True; got 0.1",
    ),
  ],
)
def test_bad_input(kwargs, match):
  with pytest.raises(ValueError, match=match):
    trace(**kwargs)


def test_traced_nesterov_arguments_skip_the_check():
  g = {"w": jnp.ones(2)}
  out = jax.jit(lambda m: trace(m, nesterov=True).update(g, trace(0.5).init(g))[0])(0.0)
  chex.assert_trees_all_close(out, g)
