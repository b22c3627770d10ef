"""Tests for lrlab.transforms.scale_by_learning_rate."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from lrlab.transforms import ScaleByLearningRateState, scale_by_learning_rate

UPDATES = {"w": jnp.array([1.0, -2.0]), "b": jnp.array(3.0)}


def _steps(tx, n):
  state = tx.init(UPDATES)
  out = []
  for _ in range(n):
    updates, state = tx.update(UPDATES, state)
    out.append(updates)
  return out, state


def test_constant_rate_negates_and_scales():
  out, state = _steps(scale_by_learning_rate(0.1), 3)
  for updates in out:
    chex.assert_trees_all_close(updates, jax.tree.map(lambda u: -0.1 * u, UPDATES))
  assert isinstance(state, ScaleByLearningRateState)
  assert state.count.dtype == jnp.int32 and int(state.count) == 3


def test_schedule_is_evaluated_at_the_count_from_zero():
  schedule = lambda t: 0.5**t
  out, _ = _steps(scale_by_learning_rate(schedule), 4)
  for t, updates in enumerate(out):
    chex.assert_trees_all_close(updates["w"], -(0.5**t) * UPDATES["w"])
  expected, _ = _steps(optax.scale_by_learning_rate(schedule), 4)
  chex.assert_trees_all_close(out, expected)


def test_array_rate_is_traced_under_vmap():
  rates = jnp.array([0.0, 0.1, 1.0])

  def one(rate):
    tx = scale_by_learning_rate(rate)
    return tx.update(UPDATES, tx.init(UPDATES))[0]

  vmapped = jax.vmap(one)(rates)
  for i, rate in enumerate(rates):
    chex.assert_trees_all_close(jax.tree.map(lambda x, i=i: x[i], vmapped), one(rate))


def test_low_precision_updates_keep_their_dtype():
  updates = {"w": jnp.ones(3, jnp.bfloat16)}
  tx = scale_by_learning_rate(jnp.float32(0.1))
  out, state = tx.update(updates, tx.init(updates))
  assert out["w"].dtype == jnp.bfloat16
  assert state.count.dtype == jnp.int32


def test_count_saturates_instead_of_overflowing():
  tx = scale_by_learning_rate(0.1)
  state = ScaleByLearningRateState(
    count=jnp.asarray(np.iinfo(np.int32).max, jnp.int32), learning_rate=jnp.float32(0.1)
  )
  _, state = tx.update(UPDATES, state)
  assert int(state.count) == np.iinfo(np.int32).max


def test_state_records_the_rate_applied_by_the_latest_update():
  tx = scale_by_learning_rate(lambda step: 0.5**step)
  state = tx.init(UPDATES)
  assert float(state.learning_rate) == 1.0  # what the first update will apply
  for step in range(3):
    _, state = tx.update(UPDATES, state)
    assert float(state.learning_rate) == 0.5**step


@pytest.mark.parametrize("rate", [-0.1, float("nan"), float("inf"), np.array([0.1, -1.0])])
def test_bad_learning_rate(rate):
  with pytest.raises(ValueError, match="learning_rate must be a finite number >= 0"):
    scale_by_learning_rate(rate)


def test_traced_rate_skips_the_check():
  def one(rate):
    tx = scale_by_learning_rate(rate)
    return tx.update(UPDATES, tx.init(UPDATES))[0]

  out = jax.jit(one)(-1.0)  # no check inside jit: the value is unknown there
  chex.assert_trees_all_close(out, UPDATES)


def test_float64_updates_take_the_float64_rate():
  # Under jax_enable_x64 the rate is not rounded to float32 (0.1 would be 0.10000000149).
  with jax.enable_x64(True):
    updates = {"w": jnp.array([1.0, -3.0], jnp.float64)}
    for rate in (0.1, lambda step: 0.1 / (1 + step)):
      tx = scale_by_learning_rate(rate)
      out, state = tx.update(updates, tx.init(updates))
      np.testing.assert_array_equal(np.asarray(out["w"]), -0.1 * np.array([1.0, -3.0]))
      assert state.learning_rate.dtype == jnp.float64 and float(state.learning_rate) == 0.1
