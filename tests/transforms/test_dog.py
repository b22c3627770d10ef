"""Tests for lrlab.transforms.scale_by_dog and lrlab.optimizers.dog (DoG)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from optax import contrib

from lrlab import optimizers, train
from lrlab.transforms import ScaleByDogState, scale_by_dog
from tests.transforms import reference, reference_free
from tests.transforms.runners import assert_close
from tests.transforms.runners_free import quadratic_run, run, trajectory

PROBLEM = reference.make_problem(seed=21, steps=50)
X64 = {"rtol": 1e-10, "atol": 1e-12}
rate = lambda state, params: state.learning_rate


@pytest.mark.parametrize(
  "kwargs",
  [{}, {"lr": lambda t: 1.0 / (1 + 0.05 * t), "reps_rel": 1e-3}, {"initial_distance": 0.5}],
)
def test_matches_the_papers_algorithm_for_50_steps(kwargs):
  # float64: while DoG's first steps move x by ~1e-6 of its size, float32 cannot resolve
  # ||x_t - x_0|| (Optax's DoG shares that), so the algorithm is checked in float64.
  expected, info = reference_free.dog(PROBLEM, **kwargs)
  tiny_start = not kwargs
  lr = kwargs.pop("lr", 1.0)
  params, etas = run(scale_by_dog(lr, **kwargs), PROBLEM, record=rate, x64=True)
  assert_close(params, expected, **X64)
  np.testing.assert_allclose(etas, info["eta"], rtol=1e-10)
  if tiny_start:
    assert etas[-1] > 1e3 * etas[0]  # the step size grew from r_eps = 1e-6 (1 + |x_0|)


def test_float32_matches_the_reference_once_the_movement_is_resolvable():
  expected, _ = reference_free.dog(PROBLEM, initial_distance=0.1)
  assert_close(run(scale_by_dog(initial_distance=0.1), PROBLEM)[0], expected, rtol=1e-4, atol=1e-5)


def test_matches_optax_contrib_dog_with_eps_zero():
  # Optax adds eps=1e-8 under the root (not in the paper); with eps=0 it is the same rule.
  tx = contrib.dog(init_step=("heuristic", 1e-6), eps=0.0)
  assert_close(run(tx, PROBLEM, x64=True)[0], reference_free.dog(PROBLEM)[0], **X64)


def test_converges_on_a_quadratic_without_tuning():
  losses, start = quadratic_run(scale_by_dog(), 300)
  assert np.all(np.isfinite(losses)) and losses[-1] < 1e-4 * start


def test_applied_learning_rate_is_the_dog_step():
  tx = optimizers.dog(weight_decay=0.01)
  params = {"w": jnp.array([1.0, -2.0])}
  state = tx.init(params)
  for _ in range(3):
    updates, state = tx.update({"w": params["w"] + 0.5}, state, params)
    params = jax.tree.map(lambda p, u: p + u, params, updates)
  dog_state = state[-1]
  assert isinstance(dog_state, ScaleByDogState)
  expected = dog_state.max_distance / jnp.sqrt(dog_state.sum_squared_norms)
  np.testing.assert_allclose(train.applied_learning_rate(state), expected, rtol=1e-6)
  assert float(train.applied_learning_rate(tx.init(params))) == 0.0


def test_vmap_over_reps_rel_and_learning_rate_equals_a_loop():
  grid = {"reps_rel": [2**-20, 2**-10, 0.125], "lr": [0.5, 1.0, 1.5]}
  go = lambda hp: trajectory(scale_by_dog(hp["lr"], reps_rel=hp["reps_rel"]), PROBLEM, 10, rate)
  vmapped = jax.jit(jax.vmap(go))({k: jnp.asarray(v, jnp.float32) for k, v in grid.items()})[1]
  single = jax.jit(go)  # one compilation for the loop: the values are traced scalars
  for i in range(3):
    looped = single({k: jnp.float32(v[i]) for k, v in grid.items()})[1]
    np.testing.assert_allclose(vmapped[i], looped, rtol=1e-5)


def test_non_finite_gradients_keep_the_statistics_finite():
  tx = scale_by_dog()
  params = jnp.ones(2)
  state = tx.init(params)
  for grads in [jnp.ones(2), jnp.array([np.nan, 1.0]), jnp.ones(2)]:
    updates, state = tx.update(grads, state, params)
  assert np.isfinite(float(state.sum_squared_norms)) and float(state.sum_squared_norms) == 4.0
  assert np.all(np.isfinite(updates))


def test_state_and_dtypes():
  params = {"w": jnp.zeros(3, jnp.bfloat16)}
  tx = scale_by_dog()
  state = tx.init(params)
  updates, new_state = tx.update({"w": jnp.ones(3, jnp.bfloat16)}, state, params)
  assert updates["w"].dtype == jnp.bfloat16 and state.count.dtype == jnp.int32
  assert new_state.learning_rate.dtype == jnp.float32
  with pytest.raises(ValueError, match="scale_by_dog needs the parameters"):
    tx.update({"w": jnp.ones(3, jnp.bfloat16)}, state)


@pytest.mark.parametrize(
  ("name", "value"),
  [
    ("learning_rate", -1.0),
    ("reps_rel", 0.0),
    ("reps_rel", float("nan")),
    ("initial_distance", -1.0),
  ],
)
def test_bad_arguments_raise(name, value):
  with pytest.raises(ValueError, match=name):
    scale_by_dog(**{name: value})
  with pytest.raises(ValueError, match=name):
    optimizers.dog(**{name: value})
