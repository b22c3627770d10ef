"""Tests for lrlab.transforms.scale_by_dog and lrlab.optimizers.dog (DoG)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from optax import contrib

from lrlab import optimizers, train
from lrlab.transforms import ScaleByDogState, eval_params, scale_by_dog
from tests.transforms import reference, reference_free
from tests.transforms.runners import assert_close
from tests.transforms.runners_free import quadratic_run, run, trajectory

PROBLEM = reference.make_problem(seed=21, steps=50)
X64 = {"rtol": 1e-10, "atol": 1e-12}
rate = lambda state, params: state.learning_rate


@pytest.mark.parametrize(
  "kwargs",
  [{}, {"lr": lambda t: 1.0 / (1 + 0.05 * t), "reps_rel": 1e-3}, {"d0": 0.5}],
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
  expected, _ = reference_free.dog(PROBLEM, d0=0.1)
  assert_close(run(scale_by_dog(d0=0.1), PROBLEM)[0], expected, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("eps", [1e-8, 0.0])
def test_matches_optax_contrib_dog(eps):
  # Optax adds eps under the root, the authors' package to G_0: the same rule (eps=0: the paper's).
  tx = contrib.dog(init_step=("heuristic", 1e-6), eps=eps)
  assert_close(run(tx, PROBLEM, x64=True)[0], reference_free.dog(PROBLEM, eps=eps)[0], **X64)
  assert_close(
    run(scale_by_dog(eps=eps), PROBLEM, x64=True)[0], run(tx, PROBLEM, x64=True)[0], **X64
  )


def test_averaging_zero_is_the_uniform_average_of_the_iterates():
  # gamma = 0: w_t = 1 / t, so the average after t updates is the mean of x_1 .. x_t.
  get = lambda state, params: eval_params(state, params)
  xs, average = run(scale_by_dog(averaging=0.0), PROBLEM, 20, get, x64=True)
  counts = np.arange(1, 21)
  means = {k: np.cumsum(v, 0) / counts.reshape(-1, *[1] * (v.ndim - 1)) for k, v in xs.items()}
  assert_close(average, means, **X64)
  plain = run(scale_by_dog(), PROBLEM, 20, get, x64=True)
  assert_close(plain[1], plain[0], **X64)  # without averaging, eval_params is the iterate
  assert_close(plain[0], xs, **X64)  # the average only watches


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
    ("d0", -1.0),
  ],
)
def test_bad_arguments_raise(name, value):
  with pytest.raises(ValueError, match=name):
    scale_by_dog(**{name: value})
  with pytest.raises(ValueError, match=name):
    optimizers.dog(**{name: value})
