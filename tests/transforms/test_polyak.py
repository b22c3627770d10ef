"""Tests for lrlab.transforms.scale_by_polyak and lrlab.optimizers.sps (SPS_max)."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from lrlab import optimizers, train
from lrlab.transforms import scale_by_polyak
from tests.transforms import reference, reference_free
from tests.transforms.runners import assert_close
from tests.transforms.runners_free import quadratic_run, run, trajectory

PROBLEM = reference.make_problem(seed=25, steps=50)
X64 = {"rtol": 1e-10, "atol": 1e-12}
record = lambda state, params: (state.learning_rate, state.f_star)


def _error(actual, expected):
  scale = max(np.max(np.abs(expected[k])) for k in expected)
  return max(np.max(np.abs(actual[k] - expected[k])) for k in expected) / scale


@pytest.mark.parametrize(
  "kwargs",
  [
    {"f_star": -5.0},
    {"f_star": -5.0, "c": 1.0, "max_step": 0.8},  # the bound binds on some steps
    {"f_star": -5.0, "lr": lambda t: 1.0 / (1 + 0.1 * t), "c": 0.25},
    {"f_star": None},
    {"f_star": None, "margin": 0.2, "c": 1.0},
  ],
)
def test_matches_the_papers_algorithm_for_50_steps(kwargs):
  expected, info = reference_free.sps(PROBLEM, **kwargs)
  lr = kwargs.pop("lr", 1.0)
  params, (steps, f_star) = run(scale_by_polyak(lr, **kwargs), PROBLEM, record=record, x64=True)
  assert_close(params, expected, **X64)
  np.testing.assert_allclose(steps, info["step"], rtol=1e-10)
  np.testing.assert_allclose(f_star, info["f_star"], rtol=1e-12)
  if kwargs.get("max_step") == 0.8:
    assert np.any(steps == 0.8) and np.any(steps < 0.8)


def test_float32_matches_the_reference():
  expected, _ = reference_free.sps(PROBLEM, f_star=-5.0)
  assert_close(run(scale_by_polyak(f_star=-5.0), PROBLEM)[0], expected, rtol=1e-4, atol=1e-5)


def test_matches_optax_polyak_sgd_at_c_1_and_scaling_1():
  theirs = run(optax.polyak_sgd(f_min=-5.0), PROBLEM, x64=True)[0]
  ours = run(scale_by_polyak(c=1.0, f_star=-5.0), PROBLEM, x64=True)[0]
  assert _error(theirs, ours) < 1e-6


def test_optax_applies_its_scaling_inside_the_polyak_step():
  # optax.polyak_sgd documents s * min(gap / |g|^2, gamma_max) but scales the gradient
  # first and computes the step from the scaled one: min(gap / (s |g|^2), s gamma_max).
  theirs = run(optax.polyak_sgd(f_min=-5.0, scaling=0.5), PROBLEM, x64=True)[0]
  scaled_inside = reference_free.sps(PROBLEM, f_star=-5.0, optax_scaling=0.5)[0]
  documented = run(scale_by_polyak(0.5, c=1.0, f_star=-5.0), PROBLEM, x64=True)[0]
  assert _error(theirs, scaled_inside) < 1e-6 < 1e-2 < _error(theirs, documented)


def test_a_loss_below_f_star_never_steps_uphill():
  tx = scale_by_polyak()  # f_star = 0
  params = jnp.array([1.0, 2.0])
  updates, state = tx.update(jnp.array([1.0, 1.0]), tx.init(params), params, value=-3.0)
  assert np.all(updates == 0) and float(state.learning_rate) == 0.0
  sps = optax.polyak_sgd()  # Optax's "sps" variant steps uphill here
  assert np.all(sps.update(jnp.array([1.0, 1.0]), sps.init(params), params, value=-3.0)[0] > 0)


@pytest.mark.parametrize("f_star", [0.0, None], ids=["known", "estimated"])
def test_converges_on_a_quadratic_without_tuning(f_star):
  losses, start = quadratic_run(scale_by_polyak(f_star=f_star), 200)
  assert np.all(np.isfinite(losses)) and losses[-1] < 1e-6 * start


def test_the_estimate_handles_negative_losses():
  # The quadratic shifted so that every loss is negative (from -1 down to -23): with the
  # default f* = 0 no step is ever taken; the estimate min_s (f_s - margin |f_s|) stays
  # below the losses and the run converges. Near the minimum the gap to the
  # under-estimate makes the Polyak step large, so max_step < 2 / L governs the last
  # phase (as in the paper's theory for a lower bound on f*).
  stuck, start = quadratic_run(scale_by_polyak(), 10, value_offset=-23.0)
  np.testing.assert_allclose(stuck, start)
  tx = scale_by_polyak(f_star=None, max_step=0.1)
  losses, start = quadratic_run(tx, 300, value_offset=-23.0)
  assert losses[-1] < 1e-6 * start


def test_applied_learning_rate_is_the_polyak_step():
  tx = optimizers.sps(0.5, c=0.25, max_step=10.0)
  params = {"w": jnp.array([1.0, -2.0])}
  grads = {"w": jnp.array([0.5, 1.5])}
  _, state = tx.update(grads, tx.init(params), params, value=2.0)
  expected = 0.5 * 2.0 / (0.25 * (0.25 + 2.25))
  np.testing.assert_allclose(train.applied_learning_rate(state), expected, rtol=1e-6)


def test_sps_adds_the_penalty_to_the_loss_it_sees():
  params = {"w": jnp.array([1.0, -2.0])}
  grads = {"w": jnp.array([0.5, 1.5])}
  tx = optimizers.sps(weight_decay=0.1, l1=0.2, max_step=10.0)
  updates, _ = tx.update(grads, tx.init(params), params, value=2.0)
  penalised = {"w": grads["w"] + 0.1 * params["w"] + 0.2 * jnp.sign(params["w"])}
  value = 2.0 + 0.05 * 5.0 + 0.2 * 3.0
  rule = scale_by_polyak(max_step=10.0)
  expected, _ = rule.update(penalised, rule.init(params), params, value=value)
  np.testing.assert_allclose(updates["w"], expected["w"], rtol=1e-6)
  with pytest.raises(ValueError, match="sps with a penalty needs the parameters"):
    tx.update(grads, tx.init(params), value=2.0)


def test_vmap_over_hyperparameters_equals_a_loop():
  grid = {"c": [0.25, 0.5, 1.0], "max_step": [0.25, 0.5, 1.0], "margin": [0.25, 0.5, 0.75]}
  go = lambda hp: trajectory(scale_by_polyak(f_star=None, **hp), PROBLEM, 8, record)
  vmapped = jax.jit(jax.vmap(go))({k: jnp.asarray(v, jnp.float32) for k, v in grid.items()})
  single = jax.jit(go)
  for i in range(3):
    looped = single({k: jnp.float32(v[i]) for k, v in grid.items()})
    np.testing.assert_allclose(vmapped[1][0][i], looped[1][0], rtol=1e-5)


def test_non_finite_losses_skip_the_step_and_keep_the_estimate():
  tx = scale_by_polyak(f_star=None)
  params = jnp.ones(2)
  state = tx.init(params)
  _, state = tx.update(jnp.ones(2), state, params, value=4.0)
  estimate = float(state.f_star)
  for bad in (np.nan, np.inf):
    updates, state = tx.update(jnp.ones(2), state, params, value=bad)
    assert np.all(updates == 0) and float(state.f_star) == estimate


def test_value_is_required_and_scalar():
  tx = scale_by_polyak()
  state = tx.init(jnp.ones(2))
  with pytest.raises(TypeError, match="value"):
    tx.update(jnp.ones(2), state)
  with pytest.raises(ValueError, match="value must be a scalar loss"):
    tx.update(jnp.ones(2), state, value=jnp.ones(3))


@pytest.mark.parametrize(
  ("name", "value"),
  [
    ("learning_rate", -1.0),
    ("c", 0.0),
    ("max_step", 0.0),
    ("max_step", float("nan")),
    ("f_star", float("inf")),
    ("margin", 0.0),
    ("margin", 1.0),
  ],
)
def test_bad_arguments_raise(name, value):
  with pytest.raises(ValueError, match=name):
    scale_by_polyak(**{name: value})
  with pytest.raises(ValueError, match=name):
    optimizers.sps(**{name: value})
