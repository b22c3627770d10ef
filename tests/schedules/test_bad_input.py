"""Invalid concrete arguments raise ValueError naming the argument; traced ones are not checked."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from lrlab import schedules
from tests.schedules.cases import CASES

S = schedules
BAD = [
    ("lr", lambda: S.constant(-0.1)),
    ("lr", lambda: S.constant(float("nan"))),
    ("lr", lambda: S.constant(float("inf"))),
    ("step_size", lambda: S.step_decay(0.1, 0)),
    ("step_size", lambda: S.step_decay(0.1, -3)),
    ("gamma", lambda: S.step_decay(0.1, 3, gamma=-0.5)),
    ("milestones", lambda: S.multistep_decay(0.1, [10, 5])),
    ("milestones", lambda: S.multistep_decay(0.1, [-1, 5])),
    ("gamma", lambda: S.exponential_decay(0.1, 0.0)),
    ("step_size", lambda: S.exponential_decay(0.1, 0.9, step_size=0)),
    ("min_lr", lambda: S.exponential_decay(0.1, 0.9, min_lr=0.5)),
    ("gamma", lambda: S.inverse_time_decay(0.1, -1.0)),
    ("total_steps", lambda: S.polynomial_decay(0.1, 0)),
    ("power", lambda: S.polynomial_decay(0.1, 10, power=0.0)),
    ("min_lr", lambda: S.polynomial_decay(0.1, 10, min_lr=-1.0)),
    ("total_steps", lambda: S.linear(0.0, 0.1, -5)),
    ("start_lr", lambda: S.linear(-0.1, 0.1, 5)),
    ("total_steps", lambda: S.cosine_annealing(0.1, 0)),
    ("min_lr", lambda: S.cosine_annealing(0.1, 10, min_lr=0.2)),
    ("period", lambda: S.warm_restarts(0.1, 0)),
    ("period_mult", lambda: S.warm_restarts(0.1, 10, period_mult=0.5)),
    ("max_lr", lambda: S.cyclical(0.1, 0.01, 10)),
    ("step_size_up", lambda: S.cyclical(0.01, 0.1, 0)),
    ("step_size_down", lambda: S.cyclical(0.01, 0.1, 5, step_size_down=0)),
    ("policy", lambda: S.cyclical(0.01, 0.1, 5, policy="sawtooth")),
    ("gamma", lambda: S.cyclical(0.01, 0.1, 5, policy="exp_range", gamma=1.5)),
    ("pct_start", lambda: S.one_cycle(0.1, 100, pct_start=0.0)),
    ("pct_start", lambda: S.one_cycle(0.1, 100, pct_start=1.0)),
    ("total_steps", lambda: S.one_cycle(0.1, 0)),
    ("div_factor", lambda: S.one_cycle(0.1, 100, div_factor=0.0)),
    ("final_div_factor", lambda: S.one_cycle(0.1, 100, final_div_factor=-1.0)),
    ("anneal_strategy", lambda: S.one_cycle(0.1, 100, anneal_strategy="cosine")),
    ("max_lr", lambda: S.one_cycle(-0.1, 100)),
    ("warmup_steps", lambda: S.inverse_sqrt(0.1, 0)),
    ("warmup_steps", lambda: S.warmup(S.constant(0.1), -1)),
    ("start_lr", lambda: S.warmup(S.constant(0.1), 5, start_lr=-1.0)),
    ("anneal_strategy", lambda: S.warmup_stable_decay(0.1, 100, warmup_steps=5, decay_steps=10,
                                             anneal_strategy="exp")),
    ("decay_steps", lambda: S.warmup_stable_decay(0.1, 100, warmup_steps=5, decay_steps=0)),
    ("total_steps", lambda: S.warmup_stable_decay(0.1, 10, warmup_steps=5, decay_steps=10)),
    ("boundaries", lambda: S.sequence([S.constant(0.1), S.constant(0.2)], [])),
    ("boundaries", lambda: S.sequence([S.constant(0.1)] * 3, [10, 5])),
    ("schedules", lambda: S.sequence([], [])),
    ("steps", lambda: S.plot(S.constant(0.1), 0, "/tmp/never.png")),
    ("steps", lambda: S.plot(S.constant(0.1), 0.5, "/tmp/never.png")),  # was an empty figure
    ("steps", lambda: S.plot(S.constant(0.1), 2.5, "/tmp/never.png")),  # was 2 steps, silently
    ("steps", lambda: S.plot(S.constant(0.1), None, "/tmp/never.png")),  # was a TypeError
]  # fmt: skip


@pytest.mark.parametrize(
  ("argument", "make"), BAD, ids=[f"{a}-{i}" for i, (a, _) in enumerate(BAD)]
)
def test_bad_input_raises_naming_the_argument(argument, make):
  with pytest.raises(ValueError, match=argument) as error:
    make()
  assert "got" in str(error.value)


def test_traced_arguments_are_not_checked():
  # A negative traced rate cannot be detected at trace time; the schedule just computes.
  values = jax.vmap(lambda lr: S.cosine_annealing(lr, 10)(0))(jnp.array([-1.0, 1.0]))
  assert values.tolist() == [-1.0, 1.0]


def test_wsd_phases_too_long_give_the_numbers_as_written():
  # The sum was shown as Array(12, dtype=int32, weak_type=True).
  with pytest.raises(ValueError) as error:
    S.warmup_stable_decay(1.0, 10, warmup_steps=8, decay_steps=4)
  assert str(error.value) == (
    "warmup_steps + decay_steps must be <= total_steps; "
    "got warmup_steps + decay_steps=12, total_steps=10."
  )


# A required number given as None (an unset config field) was accepted: exponential_decay's
# gamma and exp_range's gamma gave a NaN rate, the rest a TypeError naming nothing at the first
# call.
GIVEN = {
  S.constant: dict(lr=0.1),
  S.step_decay: dict(lr=0.1, step_size=3, gamma=0.5),
  S.multistep_decay: dict(lr=0.1, milestones=[3], gamma=0.5),
  S.exponential_decay: dict(lr=0.1, gamma=0.9, step_size=1, min_lr=0.0),
  S.inverse_time_decay: dict(lr=0.1, gamma=0.9, step_size=1),
  S.polynomial_decay: dict(lr=0.1, total_steps=10, power=1.0, min_lr=0.0),
  S.linear: dict(start_lr=0.1, end_lr=0.0, total_steps=10),
  S.cosine_annealing: dict(lr=0.1, total_steps=10, min_lr=0.0),
  S.warm_restarts: dict(lr=0.1, period=10, period_mult=1, min_lr=0.0),
  S.cyclical: dict(base_lr=0.01, max_lr=0.1, step_size_up=5, policy="exp_range", gamma=0.9),
  S.one_cycle: dict(
    max_lr=0.1, total_steps=10, pct_start=0.3, div_factor=25.0, final_div_factor=1e4
  ),
  S.inverse_sqrt: dict(lr=0.1, warmup_steps=5),
  S.warmup: dict(schedule=0.1, warmup_steps=5, start_lr=0.0),
  S.warmup_stable_decay: dict(lr=0.1, total_steps=20, warmup_steps=2, decay_steps=5, min_lr=0.0),
}
NONE = [
  pytest.param(factory, kwargs, name, id=f"{factory.__name__}-{name}")
  for factory, kwargs in GIVEN.items()
  for name, value in kwargs.items()
  if not isinstance(value, str)
]


@pytest.mark.parametrize(("factory", "kwargs", "name"), NONE)
def test_none_for_a_required_number_raises_naming_it(factory, kwargs, name):
  factory(**kwargs)  # the arguments as given are valid
  with pytest.raises(ValueError, match=rf"^{name} must be a number or an array; got None\.$"):
    factory(**{**kwargs, name: None})


# A concrete negative step was computed: negative rates (inverse_sqrt, warmup, WSD, sequence),
# rates above the peak (exponential, polynomial, cyclical) and NaN (warm_restarts at -5).
@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_negative_step_raises_naming_count_and_traced_ones_get_step_0(case):
  schedule = case.factory(**case.kwargs)
  for count in (-1, jnp.array([3, -5], jnp.int32), jnp.array([[0.0, float("nan")]])):
    with pytest.raises(ValueError, match=r"^count must be a finite step >= 0; got (-1|-5|nan)\.$"):
      schedule(count)
  jitted = jax.jit(schedule)
  at_zero = np.asarray(jitted(jnp.zeros(3, jnp.int32)))
  np.testing.assert_array_equal(np.asarray(jitted(jnp.array([-5, -1, 0], jnp.int32))), at_zero)
