"""The vocabulary of README.md: one name per concept across the public signatures."""

import inspect

import pytest

from lrlab import finder, optimizers, schedules, sweep, train, transforms

MODULES = (schedules, transforms, optimizers, finder, sweep, train)
# Names lrlab retired for a concept it spells otherwise (README.md, "Vocabulary").
RETIRED = {
  "decay_rate": "gamma",
  "factor": "gamma",
  "end_value": "min_lr",
  "min_value": "min_lr",
  "transition_steps": "step_size",
  "anneal": "anneal_strategy",
  "decay": "anneal_strategy (a curve) or alpha (RMSprop)",
  "beta1": "b1",
  "beta2": "b2",
  "beta3": "b3",
  "initial_accumulator": "initial_accumulator_value",
  "max_abs": "clip_value",
  "num_steps": "steps",
  "diverge_threshold": "divergence_factor",
  "initial_distance": "d0",
}


def _public_callables():
  for module in MODULES:
    for name in module.__all__:
      value = getattr(module, name)
      if inspect.isfunction(value):
        yield f"{module.__name__}.{name}", inspect.signature(value).parameters


@pytest.mark.parametrize(("where", "parameters"), list(_public_callables()))
def test_no_retired_names(where, parameters):
  for name in parameters:
    assert name not in RETIRED, f"{where} takes {name}; the vocabulary says {RETIRED[name]}"


def test_mode_is_only_the_direction_of_a_monitored_value():
  takers = {where for where, parameters in _public_callables() if "mode" in parameters}
  assert takers == {"lrlab.transforms.reduce_on_plateau"}
  with pytest.raises(ValueError, match="mode must be one of 'min', 'max'"):
    transforms.reduce_on_plateau(mode="exponential")


def test_decay_steps_is_only_a_phase_length():
  takers = {where for where, parameters in _public_callables() if "decay_steps" in parameters}
  assert takers == {"lrlab.schedules.warmup_stable_decay"}


def test_every_adamw_decays_the_weights_as_adamw():
  default = inspect.signature(optimizers.adamw).parameters["weight_decay"].default
  assert default == 1e-2  # torch.optim.AdamW's
  for name in optimizers.names():
    if name.endswith("adamw"):
      assert inspect.signature(getattr(optimizers, name)).parameters["weight_decay"].default == (
        default
      ), name


def test_cosine_is_spelled_cos_wherever_a_curve_is_chosen():
  assert schedules.one_cycle(1.0, 10, anneal_strategy="cos")(0) == schedules.one_cycle(1.0, 10)(0)
  schedules.warmup_stable_decay(1.0, 10, warmup_steps=2, decay_steps=4, anneal_strategy="cos")
  for make in (
    lambda: schedules.one_cycle(1.0, 10, anneal_strategy="cosine"),
    lambda: schedules.warmup_stable_decay(
      1.0, 10, warmup_steps=2, decay_steps=4, anneal_strategy="cosine"
    ),
  ):
    with pytest.raises(ValueError, match="anneal_strategy must be one of"):
      make()
