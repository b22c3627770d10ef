"""Tests for lrlab.transforms.scale_by_dadapt_sgd / scale_by_dadapt_adam and their optimizers."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from optax import contrib

from lrlab import optimizers, train
from lrlab.transforms import scale_by_dadapt_adam, scale_by_dadapt_sgd
from tests.transforms import reference, reference_free
from tests.transforms.runners import assert_close
from tests.transforms.runners_free import quadratic_run, run, trajectory

PROBLEM = reference.make_problem(seed=23, steps=50)
X64 = {"rtol": 1e-10, "atol": 1e-12}
record = lambda state, params: (state.learning_rate, state.d)


def _error(actual, expected):
  scale = max(np.max(np.abs(expected[k])) for k in expected)
  return max(np.max(np.abs(actual[k] - expected[k])) for k in expected) / scale


@pytest.mark.parametrize(
  "kwargs", [{}, {"momentum": 0.9}, {"lr": lambda k: 1.0 - 0.01 * k, "momentum": 0.5, "d0": 0.1}]
)
def test_sgd_matches_the_papers_algorithm_for_50_steps(kwargs):
  expected, info = reference_free.dadapt_sgd(PROBLEM, **kwargs)
  lr = kwargs.pop("lr", 1.0)
  params, (steps, ds) = run(scale_by_dadapt_sgd(lr, **kwargs), PROBLEM, record=record, x64=True)
  assert_close(params, expected, **X64)
  np.testing.assert_allclose(steps, info["step"], rtol=1e-10)
  np.testing.assert_allclose(ds, info["d"], rtol=1e-10)
  assert ds[-1] > 10 * ds[0]  # d grew by itself


@pytest.mark.parametrize(
  "kwargs",
  [
    {},
    {"lr": lambda k: 0.5 + 0.01 * k, "b1": 0.5, "b2": 0.9, "weight_decay": 0.1, "eps": 1e-3},
    {"bias_correction": True, "b2": 0.99},
  ],
)
def test_adam_matches_the_authors_algorithm_for_50_steps(kwargs):
  expected, info = reference_free.dadapt_adam(PROBLEM, **kwargs)
  lr = kwargs.pop("lr", 1.0)
  params, (steps, ds) = run(scale_by_dadapt_adam(lr, **kwargs), PROBLEM, record=record, x64=True)
  assert_close(params, expected, **X64)
  np.testing.assert_allclose(steps, info["step"], rtol=1e-10)
  np.testing.assert_allclose(ds, info["d"], rtol=1e-10)
  assert ds[-1] > 10 * ds[0]  # d grew by itself


def test_float32_matches_the_reference():
  sgd, _ = reference_free.dadapt_sgd(PROBLEM)
  assert_close(run(scale_by_dadapt_sgd(), PROBLEM)[0], sgd, rtol=1e-4, atol=1e-5)
  adam, _ = reference_free.dadapt_adam(PROBLEM, d0=1e-2)
  assert_close(run(scale_by_dadapt_adam(d0=1e-2), PROBLEM)[0], adam, rtol=1e-4, atol=1e-5)


def test_optax_contrib_dadapt_adamw_is_the_bias_corrected_variant():
  # optax.contrib.dadapt_adamw always multiplies lambda_k by Adam's bias correction, which
  # the authors' DAdaptAdam leaves off by default; both weigh <g_k, s_k> with A_k.
  theirs = run(contrib.dadapt_adamw(weight_decay=0.1), PROBLEM, x64=True)[0]
  ours = run(scale_by_dadapt_adam(weight_decay=0.1, bias_correction=True), PROBLEM, x64=True)[0]
  corrected = reference_free.dadapt_adam(PROBLEM, weight_decay=0.1, bias_correction=True)[0]
  default = reference_free.dadapt_adam(PROBLEM, weight_decay=0.1)[0]
  assert _error(theirs, ours) < 1e-9 and _error(theirs, corrected) < 1e-9
  assert _error(theirs, default) > 1e-2


@pytest.mark.parametrize("tx", [scale_by_dadapt_sgd(), scale_by_dadapt_adam()], ids=["sgd", "adam"])
def test_converges_on_a_quadratic_without_tuning(tx):
  losses, start = quadratic_run(tx, 200)
  assert np.all(np.isfinite(losses)) and losses[-1] < 1e-6 * start


def test_applied_learning_rate_is_the_d_adapted_step():
  params = {"w": jnp.array([1.0, -2.0])}
  grads = lambda p: {"w": p["w"] - 3.0}
  for tx, expected in [
    (optimizers.dadapt_sgd(0.5, weight_decay=0.01), lambda d, g0: 0.5 * d / g0),
    (optimizers.dadapt_adamw(0.5, weight_decay=0.01), lambda d, g0: 0.5 * d),
  ]:
    state, p = tx.init(params), params
    g0 = float(jnp.linalg.norm(grads(p)["w"]))  # the raw gradient's, as in the package
    for _ in range(5):
      d_used = float(state[-1].d)
      updates, state = tx.update(grads(p), state, p)
      p = jax.tree.map(lambda a, b: a + b, p, updates)
    assert float(state[-1].d) > 1e-6
    np.testing.assert_allclose(train.applied_learning_rate(state), expected(d_used, g0), rtol=1e-5)


@pytest.mark.parametrize("rule", ["sgd", "adam"])
def test_vmap_over_hyperparameters_equals_a_loop(rule):
  if rule == "sgd":
    grid = {"momentum": [0.0, 0.5, 0.875], "d0": [2**-20, 2**-10, 1.0]}
    make = scale_by_dadapt_sgd
  else:
    grid = {"b1": [0.0, 0.5, 0.875], "b2": [0.5, 0.875, 0.9375], "d0": [2**-20, 2**-10, 1.0]}
    make = scale_by_dadapt_adam
  go = lambda hp: trajectory(make(**hp), PROBLEM, 10, record)
  vmapped = jax.jit(jax.vmap(go))({k: jnp.asarray(v, jnp.float32) for k, v in grid.items()})
  single = jax.jit(go)  # one compilation for the loop: the values are traced scalars
  for i in range(3):
    looped = single({k: jnp.float32(v[i]) for k, v in grid.items()})
    np.testing.assert_allclose(vmapped[1][1][i], looped[1][1], rtol=1e-5)


@pytest.mark.parametrize("make", [scale_by_dadapt_sgd, scale_by_dadapt_adam], ids=["sgd", "adam"])
def test_non_finite_gradients_keep_d_finite(make):
  tx = make()
  params = jnp.ones(2)
  state = tx.init(params)
  for grads in [jnp.ones(2), jnp.array([np.nan, 1.0]), jnp.ones(2)]:
    _, state = tx.update(grads, state, params)
  assert np.isfinite(float(state.d))


def test_zero_first_gradient_waits_for_a_nonzero_one():
  tx = scale_by_dadapt_sgd()
  params = jnp.ones(2)
  state = tx.init(params)
  updates, state = tx.update(jnp.zeros(2), state, params)
  assert float(state.grad_norm0) == 0.0 and np.all(updates == 0)
  updates, state = tx.update(jnp.array([3.0, 4.0]), state, params)
  assert float(state.grad_norm0) == 5.0 and np.all(np.isfinite(updates))


def test_params_and_dtypes():
  params = {"w": jnp.zeros(3, jnp.bfloat16)}
  grads = {"w": jnp.ones(3, jnp.bfloat16)}
  sgd = scale_by_dadapt_sgd()
  updates, state = sgd.update(grads, sgd.init(params), params)
  assert updates["w"].dtype == jnp.bfloat16 and state.z["w"].dtype == jnp.bfloat16
  with pytest.raises(ValueError, match="scale_by_dadapt_sgd needs the parameters"):
    sgd.update(grads, sgd.init(params))
  adam = scale_by_dadapt_adam()
  updates, state = adam.update(grads, adam.init(params))  # no params needed without decay
  assert updates["w"].dtype == jnp.bfloat16 and state.d.dtype == jnp.float32
  with pytest.raises(ValueError, match="needs the parameters"):
    decayed = scale_by_dadapt_adam(weight_decay=0.1)
    decayed.update(grads, decayed.init(params))


@pytest.mark.parametrize(
  ("name", "kwargs"),
  [
    ("dadapt_sgd", {"learning_rate": -1.0}),
    ("dadapt_sgd", {"momentum": 1.0}),
    ("dadapt_sgd", {"d0": 0.0}),
    ("dadapt_sgd", {"growth_rate": -1.0}),
    ("dadapt_sgd", {"growth_rate": 0.5}),  # d would never leave d0
    ("dadapt_adamw", {"growth_rate": 0.5}),
    ("dadapt_sgd", {"weight_decay": -0.1}),
    ("dadapt_adamw", {"b1": 1.0}),
    ("dadapt_adamw", {"b2": 1.5}),
    ("dadapt_adamw", {"eps": -1.0}),
    ("dadapt_adamw", {"d0": -1e-6}),
    ("dadapt_adamw", {"weight_decay": -0.1}),
  ],
)
def test_bad_arguments_raise(name, kwargs):
  (argument,) = kwargs
  with pytest.raises(ValueError, match=argument):
    optimizers.get(name, **kwargs)
  make = scale_by_dadapt_sgd if name == "dadapt_sgd" else scale_by_dadapt_adam
  with pytest.raises(ValueError, match=argument):
    make(**kwargs)
