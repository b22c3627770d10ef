"""The schedule cases every schedule test runs over.

Each case names an lrlab factory, its arguments, the NumPy reference that must
agree with it, enough steps to cross every phase boundary (and several cycles),
and, for the vmap rule, three alternative values of every numeric argument.
"""

import functools
from collections.abc import Callable
from typing import Any, NamedTuple

from lrlab import schedules
from tests.schedules import reference


class Case(NamedTuple):
  name: str
  factory: Callable[..., Any]
  kwargs: dict[str, Any]
  reference: Callable[..., Any]
  steps: int
  vmap_values: dict[str, list[Any]]


def _wrapped_cosine(**kwargs):
  return schedules.warmup(schedules.cosine_annealing(0.5, 40, min_lr=0.05), **kwargs)


def _wrapped_cosine_reference(t, **kwargs):
  inner = functools.partial(reference.cosine_annealing, lr=0.5, total_steps=40, min_lr=0.05)
  return reference.warmup(t, inner, **kwargs)


def _joined(boundaries):
  return schedules.sequence(
    [
      schedules.linear(0.0, 1.0, 10),
      schedules.cosine_annealing(1.0, 30, min_lr=0.1),
      schedules.step_decay(0.1, 5, 0.5),
    ],
    boundaries,
  )


def _joined_reference(t, boundaries):
  inners = [
    functools.partial(reference.linear, start_lr=0.0, end_lr=1.0, total_steps=10),
    functools.partial(reference.cosine_annealing, lr=1.0, total_steps=30, min_lr=0.1),
    functools.partial(reference.step_decay, lr=0.1, step_size=5, gamma=0.5),
  ]
  return reference.sequence(t, inners, boundaries)


def _case(name, factory, kwargs, ref, steps, vmap_values):
  return Case(name, factory, kwargs, ref, steps, vmap_values)


# fmt: off
CASES = [
    _case("constant", schedules.constant, dict(lr=0.3), reference.constant, 10,
          dict(lr=[0.1, 0.2, 0.3])),
    _case("step_decay", schedules.step_decay, dict(lr=0.5, step_size=7, gamma=0.5),
          reference.step_decay, 40,
          dict(lr=[0.1, 0.2, 1.0], step_size=[3, 7, 11], gamma=[0.1, 0.5, 0.9])),
    _case("multistep_decay", schedules.multistep_decay,
          dict(lr=1.0, milestones=[5, 12, 12, 30], gamma=0.5), reference.multistep_decay, 40,
          dict(lr=[0.1, 0.2, 1.0], gamma=[0.1, 0.5, 0.9],
               milestones=[[1, 2, 3, 4], [5, 12, 12, 30], [10, 20, 25, 39]])),
    _case("exponential_decay", schedules.exponential_decay, dict(lr=1.0, gamma=0.9),
          reference.exponential_decay, 40,
          dict(lr=[0.1, 0.5, 1.0], gamma=[0.5, 0.9, 0.99])),
    _case("exponential_decay_staircase_floor", schedules.exponential_decay,
          dict(lr=1.0, gamma=0.5, step_size=4, staircase=True, min_lr=0.05),
          reference.exponential_decay, 40,
          dict(step_size=[2, 4, 8], min_lr=[0.0, 0.05, 0.2])),
    _case("inverse_time_decay", schedules.inverse_time_decay,
          dict(lr=1.0, gamma=0.5, step_size=3), reference.inverse_time_decay, 40,
          dict(lr=[0.1, 0.5, 1.0], gamma=[0.1, 0.5, 2.0], step_size=[1, 3, 10])),
    _case("inverse_time_decay_staircase", schedules.inverse_time_decay,
          dict(lr=1.0, gamma=0.5, step_size=3, staircase=True),
          reference.inverse_time_decay, 40, {}),
    _case("polynomial_decay", schedules.polynomial_decay,
          dict(lr=1.0, total_steps=25, power=2.0, min_lr=0.1), reference.polynomial_decay, 40,
          dict(lr=[0.5, 1.0, 2.0], total_steps=[5, 25, 39], power=[0.5, 1.0, 3.0],
               min_lr=[0.0, 0.1, 0.3])),
    _case("linear", schedules.linear, dict(start_lr=0.1, end_lr=1.0, total_steps=20),
          reference.linear, 30,
          dict(start_lr=[0.0, 0.1, 2.0], end_lr=[0.0, 0.5, 1.0], total_steps=[1, 20, 29])),
    _case("cosine_annealing", schedules.cosine_annealing,
          dict(lr=1.0, total_steps=25, min_lr=0.1), reference.cosine_annealing, 40,
          dict(lr=[0.5, 1.0, 2.0], total_steps=[5, 25, 39], min_lr=[0.0, 0.1, 0.4])),
    _case("warm_restarts", schedules.warm_restarts, dict(lr=1.0, period=6, min_lr=0.1),
          reference.warm_restarts, 40,
          dict(lr=[0.5, 1.0, 2.0], period=[3, 6, 10], min_lr=[0.0, 0.1, 0.4],
               period_mult=[1, 2, 3])),
    _case("warm_restarts_growing", schedules.warm_restarts,
          dict(lr=1.0, period=3, period_mult=2), reference.warm_restarts, 100,
          dict(period=[1, 3, 5], period_mult=[1, 2, 3])),
    _case("cyclical_triangular", schedules.cyclical,
          dict(base_lr=0.1, max_lr=1.0, step_size_up=4, step_size_down=6),
          reference.cyclical, 50,
          dict(base_lr=[0.0, 0.1, 0.5], max_lr=[0.5, 1.0, 2.0], step_size_up=[2, 4, 8],
               step_size_down=[3, 6, 9])),
    _case("cyclical_triangular2", schedules.cyclical,
          dict(base_lr=0.1, max_lr=1.0, step_size_up=5, policy="triangular2"),
          reference.cyclical, 50, dict(step_size_up=[2, 5, 7])),
    _case("cyclical_exp_range", schedules.cyclical,
          dict(base_lr=0.1, max_lr=1.0, step_size_up=5, policy="exp_range", gamma=0.97),
          reference.cyclical, 50, dict(gamma=[0.9, 0.97, 1.0], step_size_up=[2, 5, 7])),
    _case("one_cycle", schedules.one_cycle, dict(max_lr=1.0, total_steps=40),
          reference.one_cycle, 50,
          dict(max_lr=[0.1, 1.0, 3.0], total_steps=[20, 40, 50], pct_start=[0.1, 0.3, 0.5],
               div_factor=[5.0, 25.0, 100.0], final_div_factor=[10.0, 1e3, 1e4])),
    _case("one_cycle_linear_three_phase", schedules.one_cycle,
          dict(max_lr=1.0, total_steps=40, pct_start=0.25, anneal_strategy="linear",
               three_phase=True),
          reference.one_cycle, 50, dict(pct_start=[0.1, 0.25, 0.4], total_steps=[20, 40, 50])),
    _case("inverse_sqrt", schedules.inverse_sqrt, dict(lr=1.0, warmup_steps=8),
          reference.inverse_sqrt, 50, dict(lr=[0.1, 1.0, 2.0], warmup_steps=[1, 8, 20])),
    _case("warmup", _wrapped_cosine, dict(warmup_steps=5, start_lr=0.01),
          _wrapped_cosine_reference, 60,
          dict(warmup_steps=[0, 1, 5], start_lr=[0.0, 0.01, 0.1])),
    _case("warmup_one_step", _wrapped_cosine, dict(warmup_steps=1), _wrapped_cosine_reference,
          10, {}),
    _case("wsd_linear", schedules.warmup_stable_decay,
          dict(lr=1.0, total_steps=40, warmup_steps=5, decay_steps=10, min_lr=0.1),
          reference.warmup_stable_decay, 50,
          dict(lr=[0.5, 1.0, 2.0], total_steps=[30, 40, 50], warmup_steps=[0, 5, 10],
               decay_steps=[1, 10, 20], min_lr=[0.0, 0.1, 0.3])),
    _case("wsd_cosine", schedules.warmup_stable_decay,
          dict(lr=1.0, total_steps=40, warmup_steps=5, decay_steps=10, anneal_strategy="cos"),
          reference.warmup_stable_decay, 50, {}),
    _case("wsd_sqrt", schedules.warmup_stable_decay,
          dict(lr=1.0, total_steps=40, warmup_steps=5, decay_steps=10, anneal_strategy="sqrt"),
          reference.warmup_stable_decay, 50, {}),
    _case("sequence", _joined, dict(boundaries=[10, 40]), _joined_reference, 60,
          dict(boundaries=[[5, 20], [10, 40], [10, 10]])),
]
# fmt: on

CASES_BY_NAME = {case.name: case for case in CASES}
