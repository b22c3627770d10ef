"""Tests for lrlab.transforms.scale_by_prodigy and lrlab.optimizers.prodigy."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from optax import contrib

from lrlab import optimizers, train
from lrlab.transforms import ScaleByProdigyState, scale_by_prodigy
from tests.transforms import reference, reference_free
from tests.transforms.runners import assert_close
from tests.transforms.runners_free import quadratic_run, run, trajectory

PROBLEM = reference.make_problem(seed=22, steps=50)
X64 = {"rtol": 1e-10, "atol": 1e-12}
record = lambda state, params: (state.learning_rate, state.d)


def _error(actual, expected):
  scale = max(np.max(np.abs(expected[k])) for k in expected)
  return max(np.max(np.abs(actual[k] - expected[k])) for k in expected) / scale


@pytest.mark.parametrize(
  "kwargs",
  [
    {},
    {"lr": lambda k: 0.5 + 0.01 * k, "b1": 0.5, "b2": 0.9, "weight_decay": 0.1},
    {"b3": 0.8, "eps": 1e-3, "d0": 1e-3},
    {"bias_correction": True, "growth_rate": 1.5, "b2": 0.99},
  ],
)
def test_matches_the_authors_algorithm_for_50_steps(kwargs):
  expected, info = reference_free.prodigy(PROBLEM, **kwargs)
  lr = kwargs.pop("lr", 1.0)
  params, (steps, ds) = run(scale_by_prodigy(lr, **kwargs), PROBLEM, record=record, x64=True)
  assert_close(params, expected, **X64)
  np.testing.assert_allclose(steps, info["step"], rtol=1e-10)
  np.testing.assert_allclose(ds, info["d"], rtol=1e-10)
  assert ds[-1] > 100 * ds[0]  # d grew by itself


def test_float32_matches_the_reference_from_a_resolvable_start():
  # From d0=1e-6 the first steps move x by ~1e-6 of its size and float32 cannot resolve
  # <g, x0 - x>; from d0=1e-2 it can.
  expected, _ = reference_free.prodigy(PROBLEM, d0=1e-2)
  assert_close(run(scale_by_prodigy(d0=1e-2), PROBLEM)[0], expected, rtol=2e-4, atol=2e-5)


def test_optax_contrib_prodigy_is_the_bias_corrected_variant():
  # optax.contrib.prodigy always multiplies the step and the estimate's weights by Adam's
  # bias correction, which the authors' package leaves off by default.
  theirs = run(contrib.prodigy(weight_decay=0.1), PROBLEM, x64=True)[0]
  ours = run(scale_by_prodigy(weight_decay=0.1, bias_correction=True), PROBLEM, x64=True)[0]
  corrected = reference_free.prodigy(PROBLEM, weight_decay=0.1, bias_correction=True)[0]
  default = reference_free.prodigy(PROBLEM, weight_decay=0.1)[0]
  assert _error(theirs, ours) < 1e-9 and _error(theirs, corrected) < 1e-9
  assert _error(theirs, default) > 1e-2


def test_converges_on_a_quadratic_without_tuning():
  losses, start = quadratic_run(scale_by_prodigy(), 200)
  assert np.all(np.isfinite(losses)) and losses[-1] < 1e-6 * start


def test_applied_learning_rate_is_d_times_the_multiplier():
  tx = optimizers.prodigy(0.5, l1=0.01)
  params = {"w": jnp.array([1.0, -2.0])}
  state = tx.init(params)
  np.testing.assert_allclose(train.applied_learning_rate(state), 0.5e-6, rtol=1e-6)
  d_used = []
  for _ in range(5):
    d_used.append(float(state[-1].d))
    updates, state = tx.update({"w": params["w"] - 3.0}, state, params)
    params = jax.tree.map(lambda p, u: p + u, params, updates)
  assert isinstance(state[-1], ScaleByProdigyState) and float(state[-1].d) > d_used[0]
  np.testing.assert_allclose(train.applied_learning_rate(state), 0.5 * d_used[-1], rtol=1e-6)


def test_vmap_over_hyperparameters_equals_a_loop():
  grid = {"b2": [0.5, 0.875, 0.9375], "d0": [2**-20, 2**-10, 1.0], "eps": [1e-8, 1e-4, 0.5]}
  go = lambda hp: trajectory(scale_by_prodigy(**hp), PROBLEM, 10, record)
  vmapped = jax.jit(jax.vmap(go))({k: jnp.asarray(v, jnp.float32) for k, v in grid.items()})
  single = jax.jit(go)  # one compilation for the loop: the values are traced scalars
  for i in range(3):
    looped = single({k: jnp.float32(v[i]) for k, v in grid.items()})
    np.testing.assert_allclose(vmapped[1][1][i], looped[1][1], rtol=1e-5)


def test_non_finite_gradients_keep_d_finite():
  tx = scale_by_prodigy()
  params = jnp.ones(2)
  state = tx.init(params)
  for grads in [jnp.ones(2), jnp.array([np.inf, 1.0]), jnp.ones(2)]:
    _, state = tx.update(grads, state, params)
  assert np.isfinite(float(state.d)) and np.isfinite(float(state.numerator))


def test_needs_params_and_keeps_dtypes():
  params = {"w": jnp.zeros(3, jnp.bfloat16)}
  tx = scale_by_prodigy()
  state = tx.init(params)
  updates, new_state = tx.update({"w": jnp.ones(3, jnp.bfloat16)}, state, params)
  assert updates["w"].dtype == jnp.bfloat16 and new_state.mu["w"].dtype == jnp.bfloat16
  assert new_state.d.dtype == jnp.float32
  with pytest.raises(ValueError, match="scale_by_prodigy needs the parameters"):
    tx.update({"w": jnp.ones(3, jnp.bfloat16)}, state)


@pytest.mark.parametrize(
  ("name", "value"),
  [
    ("learning_rate", -1.0),
    ("b1", 1.0),
    ("b2", -0.1),
    ("b3", 1.0),
    ("eps", -1e-8),
    ("d0", 0.0),
    ("d_coef", 0.0),
    ("growth_rate", 0.0),
    ("growth_rate", 0.5),  # would shrink d to 0 by half each step
    ("weight_decay", -0.1),
  ],
)
def test_bad_arguments_raise(name, value):
  with pytest.raises(ValueError, match=name):
    scale_by_prodigy(**{name: value})
  with pytest.raises(ValueError, match=name):
    optimizers.prodigy(**{name: value})
