"""Tests for lrlab.transforms.scale_by_adagrad."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from lrlab.transforms import ScaleByAdagradState, scale_by_adagrad, scale_by_learning_rate
from tests.transforms import reference
from tests.transforms.runners import assert_close, run_optax

PROBLEM = reference.make_problem(seed=2)


@pytest.mark.parametrize(
  "kwargs",
  [{}, {"initial_accumulator_value": 0.1}, {"eps": 1e-3, "initial_accumulator_value": 0.5}],
)
def test_matches_reference(kwargs):
  tx = optax.chain(scale_by_adagrad(**kwargs), scale_by_learning_rate(0.1))
  assert_close(run_optax(tx, PROBLEM), reference.adagrad(PROBLEM, 0.1, **kwargs))


def test_torch_lr_decay_is_a_schedule():
  schedule = lambda t: 0.1 / (1 + t * 0.05)
  tx = optax.chain(scale_by_adagrad(), scale_by_learning_rate(schedule))
  assert_close(run_optax(tx, PROBLEM), reference.adagrad(PROBLEM, 0.1, lr_decay=0.05))


def test_matches_optax_adagrad_with_its_accumulator_and_no_eps():
  # Optax starts the sum at 0.1 and puts eps inside the root; with eps=0 the rules coincide.
  ours = optax.chain(
    scale_by_adagrad(eps=0.0, initial_accumulator_value=0.1), scale_by_learning_rate(0.1)
  )
  theirs = optax.adagrad(0.1, initial_accumulator_value=0.1, eps=0.0)
  assert_close(run_optax(ours, PROBLEM), run_optax(theirs, PROBLEM))


def test_state_starts_at_the_initial_accumulator():
  state = scale_by_adagrad(initial_accumulator_value=0.25).init({"w": jnp.zeros((2, 3))})
  assert isinstance(state, ScaleByAdagradState)
  assert jnp.all(state.sum_of_squares["w"] == 0.25)


def test_state_keeps_its_dtype_for_python_and_mixed_precision_params():
  # A Python-float parameter (Optax's rules take them), and float32 gradients of bfloat16
  # parameters under lax.scan: the state keeps the parameters' dtype, as every other rule's.
  tx = scale_by_adagrad(initial_accumulator_value=0.5)
  updates, _ = tx.update({"w": jnp.asarray(2.0)}, tx.init({"w": 1.0}))
  np.testing.assert_allclose(updates["w"], 2.0 / (np.sqrt(0.5 + 2.0**2) + 1e-10), rtol=1e-6)

  def step(state, grads):
    updates, state = tx.update(grads, state)
    return state, updates

  grads = jnp.full((4, 3), 0.5, jnp.float32)
  state, out = jax.lax.scan(step, tx.init(jnp.ones(3, jnp.bfloat16)), grads)
  assert state.sum_of_squares.dtype == jnp.bfloat16
  expected = 0.5 / np.sqrt(0.5 + 0.5**2 * np.arange(1, 5))  # s_t = 0.5 + t g^2
  np.testing.assert_allclose(np.asarray(out[:, 0]), expected, rtol=1e-2)


@pytest.mark.parametrize(
  ("kwargs", "match"),
  [
    ({"eps": -1e-10}, "eps must be a finite number >= 0; got -1e-10"),
    (
      {"initial_accumulator_value": -0.1},
      "initial_accumulator_value must be a finite number >= 0; got -0.1",
    ),
    (
      {"initial_accumulator_value": float("inf")},
      "initial_accumulator_value must be a finite number >= 0",
    ),
  ],
)
def test_bad_input(kwargs, match):
  with pytest.raises(ValueError, match=match):
    scale_by_adagrad(**kwargs)
