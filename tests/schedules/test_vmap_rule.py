"""The vmap rule: every numeric argument of every schedule may be a traced array."""

import inspect

import chex
import jax
import jax.numpy as jnp
import pytest

from lrlab import schedules
from tests.schedules.cases import CASES

VMAP_CASES = [
  pytest.param(case, name, values, id=f"{case.name}-{name}")
  for case in CASES
  for name, values in case.vmap_values.items()
]


@pytest.mark.parametrize(("case", "name", "values"), VMAP_CASES)
def test_vmap_over_argument_equals_loop(case, name, values):
  steps = jnp.arange(case.steps, dtype=jnp.int32)
  at = lambda value: case.factory(**{**case.kwargs, name: value})(steps)
  vmapped = jax.jit(jax.vmap(at))(jnp.asarray(values))
  looped = jnp.stack([at(value) for value in values])
  chex.assert_trees_all_close(vmapped, looped, rtol=1e-5, atol=1e-7)


def test_every_numeric_argument_is_covered():
  """Each factory's numeric parameters all appear in some case's vmap table."""
  static = {"policy", "anneal_strategy", "staircase", "three_phase", "schedule", "schedules"}
  covered = {}
  for case in CASES:
    covered.setdefault(case.factory.__name__, set()).update(case.vmap_values)
  missing = {}
  for factory in (
    schedules.constant,
    schedules.step_decay,
    schedules.multistep_decay,
    schedules.exponential_decay,
    schedules.inverse_time_decay,
    schedules.polynomial_decay,
    schedules.linear,
    schedules.cosine_annealing,
    schedules.warm_restarts,
    schedules.cyclical,
    schedules.one_cycle,
    schedules.inverse_sqrt,
    schedules.warmup_stable_decay,
  ):
    names = set(inspect.signature(factory).parameters)
    gap = names - static - covered.get(factory.__name__, set())
    if gap:
      missing[factory.__name__] = gap
  assert covered["_wrapped_cosine"] >= {"warmup_steps", "start_lr"}
  assert covered["_joined"] >= {"boundaries"}
  assert not missing, f"numeric arguments never vmapped: {missing}"


def test_issue_example():
  t = 5
  vmapped = jax.vmap(lambda p: schedules.cyclical(0.01, 0.1, p)(t))(jnp.array([4, 8, 16]))
  looped = jnp.stack([schedules.cyclical(0.01, 0.1, p)(t) for p in (4, 8, 16)])
  chex.assert_trees_all_close(vmapped, looped)
