"""Tests for lrlab.transforms.loss_feedback (the bold driver)."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from lrlab.transforms import LossFeedbackState, loss_feedback


def feedback_scales(values, **kwargs):
  """The scale after each value, run eagerly with Python hyperparameters."""
  tx = loss_feedback(**kwargs)
  state = tx.init(jnp.zeros(2))
  scales = []
  for value in values:
    updates, state = tx.update(jnp.ones(2), state, value=value)
    chex.assert_trees_all_close(updates, jnp.full(2, state.scale))
    chex.assert_tree_all_finite((state.scale, state.accumulated_value))
    scales.append(float(state.scale))
  return np.asarray(scales), state


def test_raises_then_cuts_on_a_scripted_sequence():
  scales, state = feedback_scales([3.0, 2.0, 1.0, 1.0, 4.0, 0.5], increase=1.1, decrease=0.5)
  # reference, better, better, flat (= worse), worse, better
  expected = np.cumprod([1.0, 1.1, 1.1, 0.5, 0.5, 1.1])
  np.testing.assert_allclose(scales, expected, rtol=1e-6)
  assert float(state.reference) == 0.5
  assert int(state.evaluation_count) == 6


def test_relative_threshold():
  # 9.5 is not below 10 - 0.1 * 10 = 9; 8 is below 9.5 - 0.95 = 8.55.
  scales, _ = feedback_scales([10.0, 9.5, 8.0], increase=2.0, decrease=0.5, threshold=0.1)
  np.testing.assert_allclose(scales, [1.0, 0.5, 1.0])


def test_clips_to_the_bounds():
  falling = [10.0 - i for i in range(6)]
  rising = [5.0 + i for i in range(1, 7)]
  kwargs = dict(increase=2.0, decrease=0.5, min_scale=0.25, max_scale=4.0)
  scales, _ = feedback_scales(falling + rising, **kwargs)
  expected = [1, 2, 4, 4, 4, 4, 2, 1, 0.5, 0.25, 0.25, 0.25]  # falling, then rising
  np.testing.assert_allclose(scales, expected)


def test_initial_scale_is_clipped_into_the_bounds():
  tx = loss_feedback(min_scale=2.0, max_scale=8.0)
  assert float(tx.init(jnp.zeros(1)).scale) == 2.0


def test_negative_losses_use_the_magnitude_of_the_reference():
  values = [-1.0, -2.0, -3.0, -3.0, -2.0]
  scales, _ = feedback_scales(values, increase=2.0, decrease=0.5, threshold=0.1)
  # -2 < -1.1 and -3 < -2.2 improve; the flat -3 and the rise to -2 do not.
  np.testing.assert_allclose(scales, [1, 2, 4, 2, 1])
  # (The rule p * (1 - threshold) would call the flat -3 an improvement: -3 < -2.7.)


def test_flat_zero_loss_decreases():
  scales, _ = feedback_scales([0.0] * 4, decrease=0.5)
  np.testing.assert_allclose(scales, [1, 0.5, 0.25, 0.125])


def test_non_finite_losses_count_as_worse_and_never_become_the_reference():
  values = [1.0, np.nan, 0.5, np.inf, 2.0, -np.inf]
  scales, state = feedback_scales(values, increase=2.0, decrease=0.5)
  # nan: worse (reference stays 1); 0.5 < 1: better; inf: worse; 2 > 0.5: worse; -inf: worse.
  np.testing.assert_allclose(scales, [1, 0.5, 1, 0.5, 0.25, 0.125])
  assert float(state.reference) == 2.0


def test_non_finite_first_loss_decreases_and_sets_no_reference():
  scales, state = feedback_scales([np.nan, 1.0, 0.5], increase=2.0, decrease=0.5)
  np.testing.assert_allclose(scales, [0.5, 0.5, 1.0])
  assert float(state.reference) == 0.5


def test_non_finite_updates_pass_through_scaled():
  tx = loss_feedback(decrease=0.5)
  state = tx.init(jnp.zeros(2))
  _, state = tx.update(jnp.ones(2), state, value=1.0)
  updates, state = tx.update(jnp.array([np.inf, 4.0]), state, value=2.0)
  assert np.isinf(updates[0]) and float(updates[1]) == 2.0
  chex.assert_tree_all_finite(state)


def test_accumulation_steps_average_the_values():
  # Means of pairs: 3, 2, 2.5 -> better, then worse, applied on every second call.
  scales, state = feedback_scales(
    [4.0, 2.0, 1.0, 3.0, 2.0, 3.0], increase=2.0, decrease=0.5, accumulation_steps=2
  )
  np.testing.assert_allclose(scales, [1, 1, 1, 2, 2, 1])
  assert float(state.reference) == 2.5


def test_vmap_over_hyperparameters_equals_a_python_loop():
  rng = np.random.default_rng(0)
  values = jnp.asarray(np.cumsum(rng.standard_normal(40)) - 5.0, jnp.float32)
  settings = [(1.05, 0.5, 1), (1.2, 0.7, 2), (1.5, 0.9, 3)]
  increases, decreases, steps = (jnp.asarray(col) for col in zip(*settings, strict=True))

  def run(increase, decrease, accumulation_steps):
    tx = loss_feedback(
      increase=increase, decrease=decrease, accumulation_steps=accumulation_steps, threshold=0.01
    )

    def step(state, value):
      _, state = tx.update(jnp.ones(1), state, value=value)
      return state, state.scale

    return jax.lax.scan(step, tx.init(jnp.ones(1)), values)[1]

  vmapped = jax.jit(jax.vmap(run, in_axes=(0, 0, 0)))(increases, decreases, steps)
  for i, setting in enumerate(settings):
    looped = jax.jit(run, static_argnums=(0, 1, 2))(*setting)
    np.testing.assert_allclose(vmapped[i], looped, rtol=1e-6)
  assert len(set(np.asarray(vmapped[:, -1]).tolist())) == 3


def test_chains_with_optax_under_jit():
  tx = optax.chain(optax.sgd(1.0), loss_feedback(increase=2.0, decrease=0.5))
  params = {"w": jnp.ones(2)}
  update = jax.jit(tx.update)
  state = tx.init(params)
  for loss in [2.0, 1.0]:
    updates, state = update({"w": jnp.ones(2)}, state, params, value=loss)
  assert isinstance(state[1], LossFeedbackState)
  chex.assert_trees_all_close(updates, {"w": -2.0 * jnp.ones(2)})


@pytest.mark.parametrize(
  ("name", "value"),
  [
    ("increase", 1.0),
    ("increase", 0.5),
    ("increase", float("inf")),
    ("decrease", 0.0),
    ("decrease", 1.0),
    ("decrease", 1.5),
    ("threshold", -0.1),
    ("min_scale", -1.0),
    ("max_scale", 0.0),
    ("max_scale", float("nan")),
    ("accumulation_steps", 0),
    ("accumulation_steps", 1.5),
  ],
)
def test_bad_arguments_raise(name, value):
  with pytest.raises(ValueError, match=name):
    loss_feedback(**{name: value})


def test_min_scale_above_max_scale_raises():
  with pytest.raises(ValueError, match="min_scale must be <= max_scale"):
    loss_feedback(min_scale=2.0, max_scale=1.0)


def test_infinite_max_scale_is_allowed():
  scales, _ = feedback_scales([5.0, 4.0, 3.0], increase=2.0, max_scale=float("inf"))
  np.testing.assert_allclose(scales, [1, 2, 4])
