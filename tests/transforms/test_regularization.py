"""Tests for lrlab.transforms.add_l2, add_l1 and add_decayed_weights."""

import chex
import jax
import jax.numpy as jnp
import optax
import pytest

from lrlab.transforms import add_decayed_weights, add_l1, add_l2

PARAMS = {"w": jnp.array([[1.0, -2.0], [0.0, 0.5]]), "b": jnp.array([-3.0])}
GRADS = {"w": jnp.array([[0.1, 0.2], [0.3, 0.4]]), "b": jnp.array([1.0])}


def _apply(tx, params=PARAMS):
  return tx.update(GRADS, tx.init(PARAMS), params)[0]


def test_l2_adds_weight_times_params():
  expected = jax.tree.map(lambda g, p: g + 0.1 * p, GRADS, PARAMS)
  chex.assert_trees_all_close(_apply(add_l2(0.1)), expected)


def test_l1_adds_weight_times_sign():
  expected = jax.tree.map(lambda g, p: g + 0.1 * jnp.sign(p), GRADS, PARAMS)
  out = _apply(add_l1(0.1))
  chex.assert_trees_all_close(out, expected)
  assert out["w"][1, 0] == GRADS["w"][1, 0]  # sign(0) = 0: no pull at zero


def test_decayed_weights_match_optax():
  chex.assert_trees_all_close(
    _apply(add_decayed_weights(0.01)), _apply(optax.add_decayed_weights(0.01))
  )


@pytest.mark.parametrize("factory", [add_l2, add_l1, add_decayed_weights])
def test_traced_weight_and_low_precision(factory):
  params = jax.tree.map(lambda p: p.astype(jnp.bfloat16), PARAMS)
  grads = jax.tree.map(lambda g: g.astype(jnp.bfloat16), GRADS)

  @jax.jit
  def apply(weight):
    tx = factory(weight)
    return tx.update(grads, tx.init(params), params)[0]

  out = apply(jnp.float32(0.0))
  chex.assert_trees_all_equal(out, grads)
  assert all(leaf.dtype == jnp.bfloat16 for leaf in jax.tree.leaves(apply(jnp.float32(0.5))))


@pytest.mark.parametrize(
  ("factory", "name"), [(add_l2, "add_l2"), (add_l1, "add_l1"), (add_decayed_weights, "add_")]
)
def test_missing_params(factory, name):
  with pytest.raises(ValueError, match=f"{name}.* needs the parameters"):
    _apply(factory(0.1), params=None)


@pytest.mark.parametrize("factory", [add_l2, add_l1, add_decayed_weights])
@pytest.mark.parametrize("weight", [-0.1, float("nan")])
def test_bad_weight(factory, weight):
  with pytest.raises(ValueError, match="weight must be a finite number >= 0"):
    factory(weight)
