"""Tests for scale_by_schedule_free, eval_params and the schedule-free optimizers."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from optax import contrib

from lrlab import optimizers, train
from lrlab.transforms import ScaleByScheduleFreeState, eval_params, scale_by_schedule_free
from tests.transforms import reference, reference_free
from tests.transforms.runners import assert_close
from tests.transforms.runners_free import quadratic_run, run, trajectory

PROBLEM = reference.make_problem(seed=24, steps=50)
X64 = {"rtol": 1e-10, "atol": 1e-12}
record = lambda state, params: (state.learning_rate, eval_params(state, params))


def _error(actual, expected):
  scale = max(np.max(np.abs(expected[k])) for k in expected)
  return max(np.max(np.abs(actual[k] - expected[k])) for k in expected) / scale


@pytest.mark.parametrize(
  "kwargs",
  [
    {"lr": 0.2},
    {"lr": 0.2, "warmup_steps": 10, "weight_decay": 0.1, "b1": 0.5},
    {"lr": lambda k: 0.3 / (1 + 0.1 * k), "weight_lr_power": 1.0, "b1": 0.0},
    {"lr": 0.05, "base": "adam"},
    {"lr": 0.05, "base": "adam", "warmup_steps": 10, "weight_decay": 0.1, "b2": 0.9, "eps": 1e-3},
    {"lr": 0.05, "base": "adam", "warmup_steps": 10, "b2": 0.9, "bias_correction": "rate"},
  ],
)
def test_matches_the_authors_algorithm_for_50_steps(kwargs):
  expected, info = reference_free.schedule_free(PROBLEM, **kwargs)
  lr = kwargs.pop("lr")
  tx = scale_by_schedule_free(lr, **kwargs)
  y, (steps, x) = run(tx, PROBLEM, record=record, x64=True)
  assert_close(y, expected, **X64)  # y: where the gradients are taken (the params)
  assert_close(x, info["x"], **X64)  # x: the evaluation point, from eval_params
  np.testing.assert_allclose(steps, info["step"], rtol=1e-12)
  assert _error(y, x) > 1e-3  # evaluating at y is not evaluating at x


def test_float32_matches_the_reference():
  expected, info = reference_free.schedule_free(PROBLEM, 0.2, warmup_steps=5)
  y, (_, x) = run(scale_by_schedule_free(0.2, warmup_steps=5), PROBLEM, record=record)
  assert_close(y, expected)
  assert_close(x, info["x"])


def test_x_is_the_uniform_average_of_z_with_a_constant_rate():
  # The paper's c_{t+1} = 1/(t+1): x_t is the plain mean of z_1..z_t.
  get = lambda state, params: (state.z, state.x)
  _, (z, x) = run(scale_by_schedule_free(0.2, weight_lr_power=0.0), PROBLEM, 20, get, x64=True)
  means = {k: np.cumsum(z[k], axis=0) / np.arange(1, 21).reshape(-1, *[1] * (z[k].ndim - 1))
           for k in z}  # fmt: skip
  assert_close(x, means, **X64)


def test_evaluating_at_x_beats_y_on_a_noisy_problem():
  # Constant rate, no schedule: y keeps bouncing with the gradient noise, x averages it out.
  problem = reference.make_problem(seed=7, steps=300, noise=2.0)
  loss = lambda p: sum(
    float(np.sum(0.5 * problem.curvature[k] * (p[k][-1] - problem.target[k]) ** 2)) for k in p
  )
  y, x = run(optimizers.schedule_free_sgd(0.3), problem, record=eval_params)
  assert loss(x) < 0.5 * loss(y)


def test_optax_matches_the_paper_for_sgd_at_a_constant_rate_without_warmup():
  ours = run(scale_by_schedule_free(0.2), PROBLEM, x64=True)[0]
  theirs = run(contrib.schedule_free_sgd(0.2), PROBLEM, x64=True)[0]
  assert_close(theirs, ours, rtol=1e-9, atol=1e-10)


def test_optax_warmup_wastes_the_first_step_and_shifts_the_weights():
  # optax#1744: Optax's warmup is 0 at count 0, so its first update is exactly zero, and
  # its averaging weights read the schedule one step ahead of the step taken. The paper's
  # warmup is min(1, t / T) with 1-based t: the first step is lr / T.
  params = {"w": jnp.ones(3)}
  grads = {"w": jnp.full(3, 0.5)}
  first = lambda tx: jax.jit(lambda: tx.update(grads, tx.init(params), params)[0]["w"])()
  assert np.all(first(contrib.schedule_free_sgd(0.2, warmup_steps=10)) == 0)
  assert np.all(first(optimizers.schedule_free_sgd(0.2, warmup_steps=10)) < 0)

  optax_variant, _ = reference_free.schedule_free(PROBLEM, 0.2, warmup_steps=10, optax=True)
  paper, _ = reference_free.schedule_free(PROBLEM, 0.2, warmup_steps=10)
  with_optax = run(contrib.schedule_free_sgd(0.2, warmup_steps=10), PROBLEM, x64=True)[0]
  assert _error(with_optax, optax_variant) < 1e-6 < 1e-3 < _error(with_optax, paper)


def test_optax_adamw_is_the_authors_moment_correction_without_warmup():
  # Optax, like the authors' AdamWScheduleFree, divides by sqrt(v / (1 - b2^t)) + eps and
  # weighs the average without the correction; the paper folds sqrt(1 - b2^t) into gamma_t.
  kwargs = {"base": "adam", "b2": 0.9, "eps": 1e-3}
  paper, _ = reference_free.schedule_free(PROBLEM, 0.05, bias_correction="rate", **kwargs)
  with_optax = run(contrib.schedule_free_adamw(0.05, b2=0.9, eps=1e-3), PROBLEM, x64=True)[0]
  ours = run(scale_by_schedule_free(0.05, **kwargs), PROBLEM, x64=True)[0]
  assert _error(with_optax, ours) < 1e-9
  assert _error(with_optax, paper) > 1e-3


def test_converges_at_x_with_the_default_rate():
  # lr=1 (the authors' SGD default) on curvatures in [0.1, 1]; measured at x.
  h = jnp.linspace(0.1, 1.0, 8)
  loss = lambda x: 0.5 * jnp.sum(h * (x - 1.0) ** 2)
  tx = optimizers.schedule_free_sgd()

  def step(carry, _):
    y, state = carry
    updates, state = tx.update(jax.grad(loss)(y), state, y)
    y = optax.apply_updates(y, updates)
    return (y, state), loss(eval_params(state, y))

  losses = jax.jit(lambda y: jax.lax.scan(step, (y, tx.init(y)), length=300)[1])(jnp.zeros(8))
  assert losses[-1] < 1e-4 * loss(jnp.zeros(8))
  sf_adam, start = quadratic_run(scale_by_schedule_free(0.1, base="adam"), 300)
  assert sf_adam[-1] < 1e-4 * start  # at y


def test_eval_params_finds_the_state_anywhere_and_passes_others_through():
  params = {"w": jnp.ones(2, jnp.bfloat16)}
  grads = {"w": jnp.ones(2, jnp.bfloat16)}
  tx = optimizers.schedule_free_adamw(0.1, l1=0.01)
  state = tx.init(params)
  updates, state = tx.update(grads, state, params)
  new_params = optax.apply_updates(params, updates)
  x = eval_params(state, new_params)
  assert x["w"].dtype == jnp.bfloat16
  np.testing.assert_allclose(np.float32(x["w"]), np.float32(state[-1].x["w"]))
  for nested in ({"opt": [state]}, (optax.EmptyState(), {"a": state})):
    found = eval_params(nested, new_params)
    np.testing.assert_array_equal(np.float32(found["w"]), np.float32(x["w"]))
  sgd_state = optimizers.sgd(0.1).init(params)
  assert eval_params(sgd_state, params) is params


def test_eval_params_on_a_vmapped_state():
  go = lambda rate: trajectory(scale_by_schedule_free(rate), PROBLEM, 5, record)[1][1]
  rates = jnp.asarray([0.1, 0.2])
  vmapped = jax.jit(jax.vmap(go))(rates)
  single = jax.jit(go)(rates[1])
  np.testing.assert_allclose(vmapped["w"][1], single["w"], rtol=1e-6)


def test_applied_learning_rate_is_gamma_t():
  params = {"w": jnp.ones(2)}
  for tx, gamma in [
    (optimizers.schedule_free_sgd(0.2, warmup_steps=4), lambda t: 0.2 * min(1, t / 4)),
    (optimizers.schedule_free_adamw(0.1, b2=0.75, warmup_steps=4), lambda t: 0.1 * min(1, t / 4)),
    (
      optimizers.schedule_free_adamw(0.1, b2=0.75, warmup_steps=4, bias_correction="rate"),
      lambda t: 0.1 * min(1, t / 4) * np.sqrt(1 - 0.75**t),
    ),
  ]:
    state = tx.init(params)
    np.testing.assert_allclose(train.applied_learning_rate(state), gamma(1), rtol=1e-6)
    for t in range(1, 7):
      _, state = tx.update({"w": jnp.ones(2)}, state, params)
      np.testing.assert_allclose(train.applied_learning_rate(state), gamma(t), rtol=1e-6)
    assert isinstance(state[-1], ScaleByScheduleFreeState)


def test_vmap_over_hyperparameters_equals_a_loop():
  grid = {"b1": [0.0, 0.5, 0.875], "warmup_steps": [0, 2, 4], "weight_lr_power": [0, 1, 2]}
  go = lambda hp: trajectory(scale_by_schedule_free(0.2, base="adam", **hp), PROBLEM, 8, record)
  vmapped = jax.jit(jax.vmap(go))({k: jnp.asarray(v, jnp.float32) for k, v in grid.items()})
  single = jax.jit(go)
  for i in range(3):
    looped = single({k: jnp.float32(v[i]) for k, v in grid.items()})
    row = jax.tree.map(lambda a, i=i: a[i], vmapped)
    assert_close(row, looped, rtol=1e-5, atol=1e-6)


def test_params_are_required():
  tx = scale_by_schedule_free(0.1)
  with pytest.raises(ValueError, match="scale_by_schedule_free needs the parameters"):
    tx.update(jnp.ones(2), tx.init(jnp.ones(2)))


@pytest.mark.parametrize(
  ("name", "kwargs"),
  [
    ("schedule_free_sgd", {"learning_rate": -0.1}),
    ("schedule_free_sgd", {"b1": 1.0}),
    ("schedule_free_sgd", {"warmup_steps": -1}),
    ("schedule_free_sgd", {"weight_lr_power": -2.0}),
    ("schedule_free_sgd", {"weight_decay": -0.1}),
    ("schedule_free_adamw", {"b2": 1.0}),
    ("schedule_free_adamw", {"eps": -1e-8}),
    ("schedule_free_adamw", {"l1": -1.0}),
  ],
)
def test_bad_arguments_raise(name, kwargs):
  (argument,) = kwargs
  with pytest.raises(ValueError, match=argument):
    optimizers.get(name, **kwargs)


def test_bad_base_raises():
  with pytest.raises(ValueError, match="base must be one of 'sgd', 'adam'"):
    scale_by_schedule_free(0.1, base="rmsprop")
  with pytest.raises(ValueError, match="bias_correction must be one of 'moment', 'rate'"):
    scale_by_schedule_free(0.1, base="adam", bias_correction="paper")
