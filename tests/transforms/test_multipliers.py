"""scale_by_multipliers: per-parameter factors, against NumPy products computed by hand."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from lrlab import optimizers
from lrlab.transforms import scale_by_multipliers

RNG = np.random.default_rng(0)
PARAMS = {
  "dense_0": {"weight": RNG.normal(size=(4, 3)), "bias": RNG.normal(size=4)},
  "head": {"weight": RNG.normal(size=(2, 4)), "bias": RNG.normal(size=2)},
}
GRADS = jax.tree.map(lambda p: RNG.normal(size=p.shape), PARAMS)
as_f32 = lambda tree: jax.tree.map(lambda a: jnp.asarray(a, jnp.float32), tree)


def test_each_leaf_times_its_multiplier():
  row = np.array([1.0, 0.5, 2.0, 0.0])[:, None]  # one factor per output row of dense_0
  multipliers = {"dense_0": {"weight": row, "bias": 3.0}, "head": {"weight": 0.25, "bias": 1.0}}
  tx = scale_by_multipliers(jax.tree.map(jnp.asarray, multipliers))
  updates, state = tx.update(as_f32(GRADS), tx.init(as_f32(PARAMS)))
  g = GRADS
  expected = {
    "dense_0": {"weight": g["dense_0"]["weight"] * row, "bias": 3.0 * g["dense_0"]["bias"]},
    "head": {"weight": 0.25 * g["head"]["weight"], "bias": g["head"]["bias"]},
  }
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-6), updates, expected)
  assert state == optax.EmptyState()


def test_a_prefix_tree_covers_whole_subtrees():
  tx = scale_by_multipliers({"dense_0": 0.1, "head": 2.0})
  updates, _ = tx.update(as_f32(GRADS), tx.init(as_f32(PARAMS)))
  for layer, factor in (("dense_0", 0.1), ("head", 2.0)):
    for name in ("weight", "bias"):
      np.testing.assert_allclose(updates[layer][name], factor * GRADS[layer][name], rtol=1e-6)
  # A single leaf is the shortest prefix: one factor for everything.
  updates, _ = scale_by_multipliers(0.5).update(as_f32(GRADS), optax.EmptyState())
  jax.tree.map(lambda u, g: np.testing.assert_allclose(u, 0.5 * g, rtol=1e-6), updates, GRADS)


def test_in_a_chain_each_layer_moves_at_its_own_rate():
  lr, factors = 0.1, {"dense_0": 0.5, "head": 4.0}
  tx = optax.chain(optimizers.sgd(lr), scale_by_multipliers(factors))
  params = as_f32(PARAMS)
  updates, _ = tx.update(as_f32(GRADS), tx.init(params), params)
  new = optax.apply_updates(params, updates)
  for layer, factor in factors.items():
    for name in ("weight", "bias"):
      expected = PARAMS[layer][name] - lr * factor * GRADS[layer][name]
      np.testing.assert_allclose(new[layer][name], expected, rtol=1e-5, atol=1e-6)


def test_vmapped_over_a_batch_of_multiplier_trees_equals_a_loop():
  batch = {"dense_0": jnp.array([0.0, 0.5, 1.0]), "head": jnp.array([2.0, 1.0, 0.1])}
  grads = as_f32(GRADS)

  def step(multipliers):
    tx = scale_by_multipliers(multipliers)
    return tx.update(grads, tx.init(grads))[0]

  vmapped = jax.jit(jax.vmap(step))(batch)
  for k in range(3):
    looped = step({name: float(factors[k]) for name, factors in batch.items()})
    for layer in looped:
      for name in looped[layer]:
        np.testing.assert_allclose(vmapped[layer][name][k], looped[layer][name], rtol=1e-6)


def test_keeps_the_update_dtype():
  grads = {"w": jnp.ones(3, jnp.bfloat16)}
  updates, _ = scale_by_multipliers({"w": jnp.float32(0.5)}).update(grads, optax.EmptyState())
  assert updates["w"].dtype == jnp.bfloat16
  np.testing.assert_array_equal(np.asarray(updates["w"], np.float32), 0.5)


def test_a_tree_that_is_not_a_prefix_is_refused_in_one_line():
  tx = scale_by_multipliers({"dense_0": 1.0, "output": 1.0})
  with pytest.raises(ValueError, match=r"^multipliers must have the parameters' tree") as e:
    tx.init(as_f32(PARAMS))
  assert "\n" not in str(e.value)
  with pytest.raises(ValueError, match="prefix"):
    tx.update(as_f32(GRADS), optax.EmptyState())


def test_a_leaf_that_would_change_the_update_shape_is_refused():
  with pytest.raises(ValueError, match=r"multipliers\['head'\]\['bias'\] must be a scalar or an"):
    scale_by_multipliers({"dense_0": 1.0, "head": {"weight": 1.0, "bias": jnp.ones((2, 1))}}).init(
      as_f32(PARAMS)
    )


@pytest.mark.parametrize("bad", [-1.0, float("nan"), float("inf")])
def test_negative_or_non_finite_multipliers_are_refused_at_construction(bad):
  with pytest.raises(ValueError, match=r"multipliers\['head'\] must be a finite number >= 0"):
    scale_by_multipliers({"dense_0": 1.0, "head": bad})
