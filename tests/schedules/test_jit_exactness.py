"""Schedules under jit and vmap, where XLA may divide by multiplying by a reciprocal: exact ends
and restarts, small end values kept, long decays accurate (against PyTorch and closed forms)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from lrlab import schedules
from tests.schedules import reference
from tests.schedules.test_torch_parity import torch_rates

torch = pytest.importorskip("torch")


# polynomial_decay after total_steps under jit / vmap.
@pytest.mark.parametrize("power", [0.1, 0.5])
@pytest.mark.parametrize("total_steps", [3, 10, 49, 100])
def test_polynomial_decay_is_min_lr_from_total_steps_on_under_jit(total_steps, power):
  t = jnp.array([total_steps, total_steps + 1, 10 * total_steps])
  schedule = schedules.polynomial_decay(1.0, total_steps, power=power)
  np.testing.assert_array_equal(np.asarray(jax.jit(schedule)(t)), 0.0)
  swept = jax.jit(jax.vmap(lambda T: schedules.polynomial_decay(1.0, T, power=power)(t)))
  np.testing.assert_array_equal(np.asarray(swept(jnp.array([float(total_steps)]))), 0.0)


# warm_restarts with period_mult > 1 restarts on time under jit / vmap.
@pytest.mark.parametrize(("period", "period_mult"), [(10, 10), (5, 4), (7, 7), (3, 6), (100, 4)])
def test_warm_restarts_restart_on_time_under_jit(period, period_mult):
  steps = 30_000
  expected = reference.warm_restarts(np.arange(steps), 1.0, period, period_mult, min_lr=0.01)
  t = jnp.arange(steps, dtype=jnp.int32)
  schedule = schedules.warm_restarts(1.0, period, period_mult=period_mult, min_lr=0.01)
  np.testing.assert_allclose(np.asarray(jax.jit(schedule)(t)), expected, rtol=1e-5, atol=1e-6)
  swept = jax.jit(
    jax.vmap(lambda m: schedules.warm_restarts(1.0, period, period_mult=m, min_lr=0.01)(t))
  )
  got = np.asarray(swept(jnp.array([float(period_mult)])))[0]
  np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)


# straight lines keep a small end value (one_cycle's final rate, linear's end_lr).
@pytest.mark.filterwarnings("ignore::UserWarning")
@pytest.mark.parametrize("three_phase", [False, True])
@pytest.mark.parametrize("total_steps", [10, 40, 100])
def test_one_cycle_linear_matches_pytorch_in_relative_terms(total_steps, three_phase):
  expected = torch_rates(
    lambda o: torch.optim.lr_scheduler.OneCycleLR(
      o,
      max_lr=1.0,
      total_steps=total_steps,
      anneal_strategy="linear",
      three_phase=three_phase,
      cycle_momentum=False,
    ),
    total_steps,
  )
  schedule = schedules.one_cycle(
    1.0, total_steps, anneal_strategy="linear", three_phase=three_phase
  )
  t = jnp.arange(total_steps, dtype=jnp.int32)
  for got in (schedule(t), jax.jit(schedule)(t)):
    np.testing.assert_allclose(np.asarray(got, np.float64), expected, rtol=1e-5, atol=0)


@pytest.mark.parametrize("total_steps", [3, 7, 10, 100, 1000])
def test_linear_ends_exactly_at_end_lr(total_steps):
  t = jnp.array([total_steps, total_steps + 3])
  for end_lr in (0.0, 1e-4):
    schedule = schedules.linear(1.0, end_lr, total_steps)
    for got in (schedule(t), jax.jit(schedule)(t)):
      np.testing.assert_allclose(np.asarray(got, np.float64), end_lr, rtol=1e-6, atol=0)


# long exponential decays keep float32 relative accuracy (a concrete gamma).
def test_long_exponential_decays_keep_relative_accuracy():
  t = np.array([50_000, 250_000, 499_999])
  expected = 0.99999 ** t.astype(np.float64)
  got = schedules.exponential_decay(1.0, 0.99999)(jnp.asarray(t))
  np.testing.assert_allclose(np.asarray(got, np.float64), expected, rtol=1e-5)
  cyc = schedules.cyclical(0.0, 1.0, 1, policy="exp_range", gamma=0.99999)  # height 0 at even t
  t_odd = jnp.asarray(t | 1)
  expected = 0.99999 ** np.asarray(t_odd, np.float64)
  np.testing.assert_allclose(np.asarray(cyc(t_odd), np.float64), expected, rtol=1e-5)


# the error for a too large period_mult states the bound it broke.
@pytest.mark.parametrize("value", [1e6, float("inf")])
def test_warm_restarts_period_mult_error_states_the_upper_bound(value):
  with pytest.raises(ValueError, match=r"period_mult must be a number in \[1, 1e6\); got"):
    schedules.warm_restarts(0.1, 10, period_mult=value)


# step_decay and multistep_decay keep a concrete gamma in float64 too (StepLR with step_size=1
# and gamma 0.99995 was 0.08% off after 1e5 steps: float32(gamma) ** 1e5).
def test_long_step_decays_keep_relative_accuracy():
  t = np.array([20_000, 60_000, 99_999])
  expected = 0.99995 ** (t // 1).astype(np.float64)
  for schedule in (
    schedules.step_decay(1.0, 1, 0.99995),
    jax.jit(schedules.step_decay(1.0, 1, 0.99995)),
  ):
    np.testing.assert_allclose(
      np.asarray(schedule(jnp.asarray(t)), np.float64), expected, rtol=1e-5
    )
  expected = 0.9999 ** (t // 10).astype(np.float64)
  got = schedules.step_decay(1.0, 10, 0.9999)(jnp.asarray(t))
  np.testing.assert_allclose(np.asarray(got, np.float64), expected, rtol=1e-5)
  milestones = np.arange(1, 3001)
  got = schedules.multistep_decay(1.0, milestones, 0.9999)(jnp.asarray([1000, 3000]))
  np.testing.assert_allclose(
    np.asarray(got, np.float64), 0.9999 ** np.array([1000.0, 3000.0]), rtol=1e-6
  )
  # gamma = 0 (allowed) still gives lr before the first decay and 0 after it.
  zero = schedules.step_decay(0.1, 3, 0.0)(jnp.arange(7))
  np.testing.assert_allclose(np.asarray(zero), [0.1, 0.1, 0.1, 0.0, 0.0, 0.0, 0.0])


# warmup_stable_decay ends exactly at min_lr under jit.
@pytest.mark.parametrize("anneal_strategy", ["linear", "cos", "sqrt"])
@pytest.mark.parametrize("decay_steps", [3, 41, 47, 55, 97])
def test_wsd_is_min_lr_from_total_steps_on_under_jit(decay_steps, anneal_strategy):
  total_steps = decay_steps + 7
  t = jnp.array([total_steps, total_steps + 1, 3 * total_steps])
  schedule = schedules.warmup_stable_decay(
    1.0, total_steps, warmup_steps=2, decay_steps=decay_steps, anneal_strategy=anneal_strategy
  )
  np.testing.assert_array_equal(np.asarray(jax.jit(schedule)(t)), 0.0)
  np.testing.assert_array_equal(np.asarray(schedule(t)), 0.0)


# a non-integer period_mult restarts on a step that is exactly a cycle start.
@pytest.mark.parametrize(("period", "period_mult", "restart"), [(100, 1.01, 201), (100, 1.1, 331)])
def test_warm_restarts_restart_on_an_exact_boundary_with_a_decimal_period_mult(
  period, period_mult, restart
):
  # 100 + 101 = 201 and 100 + 110 + 121 = 331: restarts for the decimal period_mult written.
  t = jnp.array([restart - 1, restart, restart + 1])
  schedule = schedules.warm_restarts(1.0, period, period_mult=period_mult)
  first_cycles = np.cumsum([period * period_mult**i for i in range(3)])
  assert np.isclose(first_cycles, restart).any()
  for got in (schedule(t), jax.jit(schedule)(t)):
    assert float(got[1]) == pytest.approx(1.0)
    assert float(got[0]) < 1e-3 and float(got[2]) > 0.99


# warmup_stable_decay starts its decay at lr: 1 - sqrt(p) with p = 1 - (D / D) rounded by a
# reciprocal (eagerly too, for D = 41) was 2.4e-4 below lr at the decay's first step.
@pytest.mark.parametrize("anneal_strategy", ["linear", "cos", "sqrt"])
def test_wsd_decay_starts_at_lr(anneal_strategy):
  for decay_steps in range(1, 100):
    total_steps = decay_steps + 7
    t = jnp.array([total_steps - decay_steps - 1, total_steps - decay_steps])
    schedule = schedules.warmup_stable_decay(
      1.0, total_steps, warmup_steps=2, decay_steps=decay_steps, anneal_strategy=anneal_strategy
    )
    for got in (schedule(t), jax.jit(schedule)(t)):
      np.testing.assert_allclose(np.asarray(got, np.float64), 1.0, rtol=1e-6, err_msg=decay_steps)
