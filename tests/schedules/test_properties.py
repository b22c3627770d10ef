"""Hypothesis properties: bounds, periodicity, continuity at phase boundaries, monotone pieces."""

import jax.numpy as jnp
import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from lrlab import schedules

rates = st.floats(1e-4, 10.0)
fractions = st.floats(0.0, 1.0)
lengths = st.integers(1, 200)
steps = st.integers(0, 2000)
SETTINGS = settings(max_examples=25, deadline=None)
TOL = 1e-5


def _values(schedule, t):
  return np.asarray(schedule(jnp.asarray(t, jnp.float32)), np.float64)


@SETTINGS
@given(lr=rates, fraction=fractions, total=lengths, t=st.lists(steps, min_size=1, max_size=20))
def test_annealers_stay_between_min_and_max(lr, fraction, total, t):
  low = lr * fraction
  t = t + t[-1:] * (20 - len(t))  # one length for every example: eager ops compile once
  for schedule in (
    schedules.cosine_annealing(lr, total, min_lr=low),
    schedules.warm_restarts(lr, total, min_lr=low, period_mult=2),
    schedules.polynomial_decay(lr, total, min_lr=low, power=1.7),
    schedules.cyclical(low, lr, total, policy="triangular2"),
    # WSD's warmup ramps up from 0, so the floor holds from the stable phase on.
    schedules.warmup_stable_decay(lr, 2 * total + 1, warmup_steps=0, decay_steps=total, min_lr=low),
    schedules.exponential_decay(lr, 0.97, min_lr=low),
  ):
    values = _values(schedule, t)
    assert np.all(values >= low * (1 - TOL) - 1e-7), schedule
    assert np.all(values <= lr * (1 + TOL)), schedule


@SETTINGS
@given(max_lr=rates, total=st.integers(10, 500), pct=st.floats(0.05, 0.45), t=steps)
def test_one_cycle_between_final_and_max(max_lr, total, pct, t):
  value = _values(schedules.one_cycle(max_lr, total, pct_start=pct, three_phase=True), [t])[0]
  assert max_lr / 25 / 1e4 * (1 - TOL) <= value <= max_lr * (1 + TOL)


@SETTINGS
@given(up=lengths, down=lengths, t=steps, cycles=st.integers(1, 5))
def test_cyclical_is_periodic(up, down, t, cycles):
  schedule = schedules.cyclical(0.1, 1.0, up, step_size_down=down)
  later = t + cycles * (up + down)
  np.testing.assert_allclose(_values(schedule, [t]), _values(schedule, [later]), rtol=1e-4)


@SETTINGS
@given(period=lengths, t=steps, cycles=st.integers(1, 5))
def test_warm_restarts_are_periodic(period, t, cycles):
  schedule = schedules.warm_restarts(1.0, period, min_lr=0.01)
  later = t + cycles * period
  np.testing.assert_allclose(_values(schedule, [t]), _values(schedule, [later]), rtol=1e-4)


@SETTINGS
@given(period=st.integers(1, 20), mult=st.integers(2, 3), cycle=st.integers(0, 4))
def test_warm_restarts_restart_exactly_at_cycle_starts(period, mult, cycle):
  start = period * (mult**cycle - 1) // (mult - 1)
  schedule = schedules.warm_restarts(1.0, period, period_mult=mult)
  np.testing.assert_allclose(_values(schedule, [start]), 1.0, rtol=1e-6)


EPS = 1e-3


def _continuous_at(schedule, boundary, scale):
  left, right = _values(schedule, [boundary - EPS, boundary + EPS])
  assert abs(left - right) <= 1e-2 * scale, (boundary, left, right)


@SETTINGS
@given(lr=rates, total=st.integers(5, 300), warm=st.integers(1, 100), pct=st.floats(0.1, 0.9))
def test_continuous_at_phase_boundaries(lr, total, warm, pct):
  _continuous_at(schedules.cosine_annealing(lr, total, min_lr=lr / 10), total, lr)
  _continuous_at(schedules.polynomial_decay(lr, total), total, lr)
  _continuous_at(schedules.linear(0.0, lr, total), total, lr)
  _continuous_at(schedules.inverse_sqrt(lr, warm), warm, lr)
  _continuous_at(schedules.warmup(schedules.cosine_annealing(lr, total), warm), warm, lr)
  wsd = schedules.warmup_stable_decay(
    lr, warm + 2 * total, warmup_steps=warm, decay_steps=total, anneal_strategy="cos"
  )
  _continuous_at(wsd, warm, lr)
  _continuous_at(wsd, warm + total, lr)
  one_cycle = schedules.one_cycle(lr, 1000 + total, pct_start=pct)
  _continuous_at(one_cycle, pct * (1000 + total) - 1, lr)
  _continuous_at(schedules.cyclical(0.0, lr, total, step_size_down=warm), total, lr)


def _monotone(values, increasing):
  diffs = np.diff(values) * (1 if increasing else -1)
  return np.all(diffs >= -1e-6 * np.max(np.abs(values)))


@SETTINGS
@given(lr=rates, total=st.integers(10, 300), gamma=st.floats(0.05, 1.0), pct=st.floats(0.1, 0.8))
def test_monotone_pieces(lr, total, gamma, pct):
  # One length for every example (sliced below), so eager dispatch compiles each op once.
  t, n = np.arange(600), 2 * total
  for decreasing in (
    schedules.step_decay(lr, max(1, total // 7), gamma),
    schedules.multistep_decay(lr, [total // 3, total // 2], gamma),
    schedules.exponential_decay(lr, gamma),
    schedules.inverse_time_decay(lr, gamma),
    schedules.cosine_annealing(lr, total),
    schedules.polynomial_decay(lr, total, power=2.0),
  ):
    assert _monotone(_values(decreasing, t)[:n], increasing=False), decreasing
  one_cycle = _values(schedules.one_cycle(lr, total, pct_start=pct), t)[:n]
  peak = int(np.floor(pct * total - 1))  # the last step of the warmup phase
  assert _monotone(one_cycle[: peak + 1], increasing=True)
  assert _monotone(one_cycle[peak + 1 :], increasing=False)
  restarts = _values(schedules.warm_restarts(lr, total), t)[:n]
  assert _monotone(restarts[:total], increasing=False)
  assert _monotone(restarts[total:], increasing=False)
