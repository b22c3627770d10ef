"""Tests for lrlab.optimizers: torch.optim parity, NumPy references, registry, bad input."""

import dataclasses
import inspect

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from lrlab import optimizers
from tests.transforms import reference
from tests.transforms.runners import assert_close, run_optax, run_torch
from tests.transforms.runners_free import run as run_free

PROBLEM = reference.make_problem(seed=10)

# (lrlab name, lrlab kwargs, torch class name, torch kwargs); 60 float32 steps each.
TORCH_CASES = [
  ("sgd", {"learning_rate": 0.05}, "SGD", {"lr": 0.05}),
  ("sgd", {"learning_rate": 0.05, "momentum": 0.9}, "SGD", {"lr": 0.05, "momentum": 0.9}),
  (
    "sgd",
    {"learning_rate": 0.05, "momentum": 0.8, "dampening": 0.3, "weight_decay": 0.1},
    "SGD",
    {"lr": 0.05, "momentum": 0.8, "dampening": 0.3, "weight_decay": 0.1},
  ),
  (
    "sgd",
    {"learning_rate": 0.05, "momentum": 0.9, "nesterov": True, "weight_decay": 0.01},
    "SGD",
    {"lr": 0.05, "momentum": 0.9, "nesterov": True, "weight_decay": 0.01},
  ),
  ("adagrad", {}, "Adagrad", {}),
  (
    "adagrad",
    {"learning_rate": 0.1, "initial_accumulator_value": 0.1, "weight_decay": 0.05, "eps": 1e-6},
    "Adagrad",
    {"lr": 0.1, "initial_accumulator_value": 0.1, "weight_decay": 0.05, "eps": 1e-6},
  ),
  ("rmsprop", {}, "RMSprop", {}),
  ("rmsprop", {"momentum": 0.9}, "RMSprop", {"momentum": 0.9}),
  ("rmsprop", {"centered": True}, "RMSprop", {"centered": True}),
  (
    "rmsprop",
    {"learning_rate": 3e-3, "alpha": 0.9, "momentum": 0.5, "centered": True, "weight_decay": 0.1},
    "RMSprop",
    {"lr": 3e-3, "alpha": 0.9, "momentum": 0.5, "centered": True, "weight_decay": 0.1},
  ),
  ("adadelta", {}, "Adadelta", {}),
  (
    "adadelta",
    {"learning_rate": 0.5, "rho": 0.8, "eps": 1e-4, "weight_decay": 0.1},
    "Adadelta",
    {"lr": 0.5, "rho": 0.8, "eps": 1e-4, "weight_decay": 0.1},
  ),
  ("adam", {"learning_rate": 0.05}, "Adam", {"lr": 0.05}),
  ("adam", {"learning_rate": 0.05, "amsgrad": True}, "Adam", {"lr": 0.05, "amsgrad": True}),
  (
    "adam",
    {"learning_rate": 0.05, "b1": 0.8, "b2": 0.99, "eps": 1e-6, "weight_decay": 0.1},
    "Adam",
    {"lr": 0.05, "betas": (0.8, 0.99), "eps": 1e-6, "weight_decay": 0.1},
  ),
  (
    "adam",
    {"learning_rate": 0.05, "weight_decay": 0.1, "decoupled_weight_decay": True},
    "Adam",
    {"lr": 0.05, "weight_decay": 0.1, "decoupled_weight_decay": True},
  ),
  ("adamw", {"learning_rate": 0.05}, "AdamW", {"lr": 0.05}),
  (
    "adamw",
    {"learning_rate": 0.05, "weight_decay": 0.2, "amsgrad": True},
    "AdamW",
    {"lr": 0.05, "weight_decay": 0.2, "amsgrad": True},
  ),
  ("adamax", {"learning_rate": 0.05}, "Adamax", {"lr": 0.05}),
  (
    "adamax",
    {"learning_rate": 0.05, "b1": 0.5, "weight_decay": 0.1},
    "Adamax",
    {"lr": 0.05, "betas": (0.5, 0.999), "weight_decay": 0.1},
  ),
  ("nadam", {"learning_rate": 0.05}, "NAdam", {"lr": 0.05}),
  (
    "nadam",
    {"learning_rate": 0.05, "weight_decay": 0.1, "momentum_decay": 0.01},
    "NAdam",
    {"lr": 0.05, "weight_decay": 0.1, "momentum_decay": 0.01},
  ),
  (
    "nadam",
    {"learning_rate": 0.05, "weight_decay": 0.1, "decoupled_weight_decay": True},
    "NAdam",
    {"lr": 0.05, "weight_decay": 0.1, "decoupled_weight_decay": True},
  ),
  # RAdam rectifies from step 6 at b2 = 0.999 and 0.99 (rho_6 = 5.99, 5.94), never at b2 = 0.5
  # (rho_inf = 3): each case runs the momentum branch, then the rectified one, or only the first.
  ("radam", {"learning_rate": 0.05}, "RAdam", {"lr": 0.05}),
  (
    "radam",
    {"learning_rate": 0.05, "b1": 0.8, "b2": 0.99, "eps": 1e-6, "weight_decay": 0.1},
    "RAdam",
    {"lr": 0.05, "betas": (0.8, 0.99), "eps": 1e-6, "weight_decay": 0.1},
  ),
  (
    "radam",
    {"learning_rate": 0.05, "weight_decay": 0.1, "decoupled_weight_decay": True},
    "RAdam",
    {"lr": 0.05, "weight_decay": 0.1, "decoupled_weight_decay": True},
  ),
  ("radam", {"learning_rate": 0.05, "b2": 0.5}, "RAdam", {"lr": 0.05, "betas": (0.9, 0.5)}),
]


def _case_id(case):
  name, kwargs, _, _ = case
  return name + "".join(f"-{k}={v}" for k, v in kwargs.items() if k != "learning_rate")


@pytest.mark.parametrize("case", TORCH_CASES, ids=_case_id)
def test_matches_torch(case):
  torch = pytest.importorskip("torch")
  name, kwargs, torch_name, torch_kwargs = case
  expected = run_torch(
    torch, lambda p: getattr(torch.optim, torch_name)(p, **torch_kwargs), PROBLEM
  )
  assert_close(run_optax(optimizers.get(name, **kwargs), PROBLEM), expected)


def _float64(problem):
  return reference.Problem(*(
    {k: v.astype(np.float64) for k, v in getattr(problem, f.name).items()}
    for f in dataclasses.fields(problem)
  ))  # fmt: skip


@pytest.mark.parametrize("case", TORCH_CASES, ids=_case_id)
def test_matches_torch_in_float64(case):
  # Under jax_enable_x64 every rule, and the learning rate, must keep float64 precision.
  torch = pytest.importorskip("torch")
  name, kwargs, torch_name, torch_kwargs = case
  problem = _float64(PROBLEM)
  default = torch.get_default_dtype()
  torch.set_default_dtype(torch.float64)  # else NAdam keeps its mu_product in float32
  try:
    make = lambda p: getattr(torch.optim, torch_name)(p, **torch_kwargs)
    expected = run_torch(torch, make, problem)
  finally:
    torch.set_default_dtype(default)
  actual = run_free(optimizers.get(name, **kwargs), problem, x64=True)[0]
  assert_close(actual, expected, rtol=1e-11, atol=1e-13)


# A schedule changes lr between steps: PyTorch scales the whole momentum buffer and the decoupled
# decay by the current lr (LambdaLR: lr_t = base_lr * lr_lambda(t)).
SCHEDULE_CASES = [
  ("sgd", {"momentum": 0.9, "nesterov": True}, "SGD", {"momentum": 0.9, "nesterov": True}),
  ("rmsprop", {"momentum": 0.9}, "RMSprop", {"momentum": 0.9}),
  ("adamw", {"weight_decay": 0.5}, "AdamW", {"weight_decay": 0.5}),
  ("nadam", {}, "NAdam", {}),
  ("adagrad", {}, "Adagrad", {}),
  ("radam", {"weight_decay": 0.1}, "RAdam", {"weight_decay": 0.1}),
  (
    "radam",
    {"weight_decay": 0.5, "decoupled_weight_decay": True},
    "RAdam",
    {"weight_decay": 0.5, "decoupled_weight_decay": True},
  ),
]


_BASE_LR = 0.02
_FACTOR = lambda t: 0.5 ** (t // 10) * (1 + t % 3)  # steps and jumps


def _scheduled(name, kwargs, torch, torch_name, torch_kwargs):
  tx = optimizers.get(name, learning_rate=lambda t: _BASE_LR * _FACTOR(t), **kwargs)
  make = lambda p: getattr(torch.optim, torch_name)(p, lr=_BASE_LR, **torch_kwargs)
  return tx, make


@pytest.mark.parametrize("case", SCHEDULE_CASES, ids=_case_id)
def test_matches_torch_with_a_schedule(case):
  torch = pytest.importorskip("torch")
  name, kwargs, torch_name, torch_kwargs = case
  tx, make = _scheduled(name, kwargs, torch, torch_name, torch_kwargs)
  expected = run_torch(torch, make, PROBLEM, lr_lambda=_FACTOR)
  assert_close(run_optax(tx, PROBLEM), expected)


@pytest.mark.parametrize("case", SCHEDULE_CASES, ids=_case_id)
def test_matches_torch_with_a_schedule_in_float64(case):
  torch = pytest.importorskip("torch")
  name, kwargs, torch_name, torch_kwargs = case
  tx, make = _scheduled(name, kwargs, torch, torch_name, torch_kwargs)
  problem = _float64(PROBLEM)
  default = torch.get_default_dtype()
  torch.set_default_dtype(torch.float64)  # NAdam's mu_product
  try:
    expected = run_torch(torch, make, problem, lr_lambda=_FACTOR)
  finally:
    torch.set_default_dtype(default)
  assert_close(run_free(tx, problem, x64=True)[0], expected, rtol=1e-11, atol=1e-13)


def test_adagrad_lr_decay_is_a_schedule():
  torch = pytest.importorskip("torch")
  expected = run_torch(torch, lambda p: torch.optim.Adagrad(p, lr=0.1, lr_decay=0.05), PROBLEM)
  tx = optimizers.adagrad(lambda t: 0.1 / (1 + t * 0.05))
  assert_close(run_optax(tx, PROBLEM), expected)


# NumPy references, including lrlab's extra coupled L1 term (PyTorch has none).
REFERENCE_CASES = [
  ("sgd", {"momentum": 0.9, "nesterov": True}, reference.sgd, {"momentum": 0.9, "nesterov": True}),
  ("adagrad", {}, reference.adagrad, {}),
  (
    "rmsprop",
    {"momentum": 0.5, "centered": True},
    reference.rmsprop,
    {"momentum": 0.5, "centered": True},
  ),
  ("adadelta", {}, reference.adadelta, {}),
  ("adam", {"amsgrad": True}, reference.adam, {"amsgrad": True}),
  ("adamw", {}, reference.adam, {"decoupled": True}),
  ("adamax", {}, reference.adamax, {}),
  ("nadam", {"decoupled_weight_decay": True}, reference.nadam, {"decoupled": True}),
  ("radam", {}, reference.radam, {}),
  ("radam", {"decoupled_weight_decay": True}, reference.radam, {"decoupled": True}),
]


@pytest.mark.parametrize("case", REFERENCE_CASES, ids=_case_id)
def test_matches_reference_with_l1(case):
  name, kwargs, ref, ref_kwargs = case
  lr = 1.0 if name == "adadelta" else 0.02
  tx = optimizers.get(name, learning_rate=lr, weight_decay=0.05, l1=0.02, **kwargs)
  expected = ref(PROBLEM, lr, weight_decay=0.05, l1=0.02, **ref_kwargs)
  assert_close(run_optax(tx, PROBLEM), expected)


def test_matches_optax_sgd_and_adamw():
  assert_close(
    run_optax(optimizers.sgd(0.05, momentum=0.9, nesterov=True), PROBLEM),
    run_optax(optax.sgd(0.05, momentum=0.9, nesterov=True), PROBLEM),
  )
  # Optax's adamw defaults to weight_decay=1e-4 (PyTorch: 1e-2); b2 exact in float32.
  assert_close(
    run_optax(optimizers.adamw(0.05, b2=0.875, weight_decay=0.1), PROBLEM),
    run_optax(optax.adamw(0.05, b2=0.875, weight_decay=0.1), PROBLEM),
  )


def test_registry():
  assert optimizers.names() == (
    "adadelta",
    "adagrad",
    "adam",
    "adamax",
    "adamw",
    "dadapt_adamw",
    "dadapt_sgd",
    "dog",
    "nadam",
    "prodigy",
    "radam",
    "rmsprop",
    "schedule_free_adamw",
    "schedule_free_sgd",
    "sgd",
    "sps",
  )
  for name in optimizers.names():
    assert isinstance(optimizers.get(name), optax.GradientTransformation)
  with pytest.raises(ValueError, match=r"name must be one of 'adadelta', .*'sps'; got 'adamx'"):
    optimizers.get("adamx")
  with pytest.raises(TypeError):
    optimizers.get("sgd", momentum_decay=0.1)


def test_package_docstring_tells_multipliers_from_rates():
  # The docstring called schedule-free's learning_rate a multiplier with default 1 as well;
  # it is a real rate, and schedule_free_adamw's default is the authors' 0.0025.
  doc = " ".join(optimizers.__doc__.split())
  default = lambda name: inspect.signature(getattr(optimizers, name)).parameters["learning_rate"]
  assert "In ``lr_free``, ``learning_rate`` is a multiplier" in doc and "(default 1," in doc
  for name in ("dadapt_adamw", "dadapt_sgd", "dog", "prodigy", "sps"):
    assert default(name).default == 1
  for name in ("schedule_free_sgd", "schedule_free_adamw"):
    assert f"``{name}``: {default(name).default:g}" in doc


def test_defaults_are_pytorch_defaults():
  torch = pytest.importorskip("torch")
  pairs = {
    "sgd": "SGD",
    "adagrad": "Adagrad",
    "rmsprop": "RMSprop",
    "adadelta": "Adadelta",
    "adam": "Adam",
    "adamw": "AdamW",
    "adamax": "Adamax",
    "nadam": "NAdam",
    "radam": "RAdam",
  }
  renamed = {"lr": "learning_rate"}
  for name, torch_name in pairs.items():
    ours = inspect.signature(getattr(optimizers, name)).parameters
    theirs = inspect.signature(getattr(torch.optim, torch_name)).parameters
    for key, parameter in theirs.items():
      if key == "betas":
        assert (ours["b1"].default, ours["b2"].default) == parameter.default, name
      elif renamed.get(key, key) in ours:
        assert ours[renamed.get(key, key)].default == parameter.default, (name, key)


def test_python_zero_leaves_links_out_and_arrays_keep_them():
  params = {"w": jnp.ones(2)}
  assert len(optimizers.sgd(0.1).init(params)) == 1  # only the learning rate
  assert len(optimizers.sgd(0.1, momentum=0.9, weight_decay=0.1, l1=0.1).init(params)) == 4
  assert len(optimizers.adamw(weight_decay=0.0).init(params)) == 2
  # An array, even a concrete zero, keeps its link: a sweep's states share one structure.
  zero = jnp.float32(0.0)
  assert len(optimizers.sgd(0.1, momentum=zero, weight_decay=zero, l1=zero).init(params)) == 4
  assert len(optimizers.adamw(weight_decay=zero).init(params)) == 3
  grads = {"w": jnp.array([0.5, -1.0])}
  for name in optimizers.names():
    plain = optimizers.get(name, weight_decay=0.0)
    arrays = optimizers.get(name, weight_decay=zero, l1=zero)
    update = lambda tx: tx.update(grads, tx.init(params), params, value=1.0)[0]  # sps: the loss
    chex.assert_trees_all_equal(update(arrays), update(plain))
  # Without weight decay no params are needed, as in optax.
  tx = optimizers.adam()
  tx.update(params, tx.init(params))


def test_missing_params_with_weight_decay():
  params = {"w": jnp.ones(2)}
  tx = optimizers.sgd(0.1, weight_decay=0.1)
  with pytest.raises(ValueError, match="add_l2 needs the parameters"):
    tx.update(params, tx.init(params))


def _sgd_steps(params, steps=4, **kwargs):
  tx = optimizers.sgd(0.1, **kwargs)
  state = tx.init(params)
  for _ in range(steps):
    updates, state = tx.update(jax.tree.map(lambda p: 2.0 * p + 1.0, params), state, params)
    params = optax.apply_updates(params, updates)
  return params


def test_traced_momentum_and_weight_decay():
  params = {"w": jnp.array([1.0, -2.0, 0.5])}
  run = jax.jit(lambda m, wd: _sgd_steps(params, momentum=m, weight_decay=wd))
  chex.assert_trees_all_close(run(0.0, 0.0), _sgd_steps(params), rtol=1e-6)
  chex.assert_trees_all_close(
    run(0.9, 0.1), _sgd_steps(params, momentum=0.9, weight_decay=0.1), rtol=1e-6
  )
  nesterov = jax.jit(lambda m: _sgd_steps(params, momentum=m, nesterov=True))
  chex.assert_trees_all_close(nesterov(0.0), _sgd_steps(params), rtol=1e-6)
  damped = jax.jit(lambda m: _sgd_steps(params, momentum=m, dampening=0.5))
  chex.assert_trees_all_close(damped(0.0), _sgd_steps(params), rtol=1e-6)


NAMES_WITH_MOMENTUM = ["sgd", "rmsprop"]
WITHOUT_EPS = {(n, "eps") for n in ("sgd", "dadapt_sgd", "schedule_free_sgd", "sps")}


BAD_COMMON = [
  ("learning_rate", -0.1),
  ("learning_rate", float("nan")),
  ("learning_rate", float("inf")),
  ("weight_decay", -1e-4),
  ("l1", -1.0),
  ("eps", -1e-8),
]


@pytest.mark.parametrize(
  ("name", "argument", "value"),
  [(n, a, v) for n in optimizers.names() for a, v in BAD_COMMON if (n, a) not in WITHOUT_EPS],
)
def test_bad_common_arguments(name, argument, value):
  with pytest.raises(ValueError, match=f"{argument} must be a finite number >= 0; got {value}"):
    optimizers.get(name, **{argument: value})


@pytest.mark.parametrize("name", NAMES_WITH_MOMENTUM)
@pytest.mark.parametrize("momentum", [-0.1, 1.0, 1.5])
def test_bad_momentum(name, momentum):
  with pytest.raises(ValueError, match=rf"momentum must be in \[0.0, 1.0\); got {momentum}"):
    optimizers.get(name, momentum=momentum)


@pytest.mark.parametrize(
  ("kwargs", "match"),
  [
    ({"nesterov": True}, "momentum must be > 0 when nesterov=True; got 0.0"),
    (
      {"nesterov": True, "momentum": 0.9, "dampening": 0.5},
      "dampening must be 0 when nesterov=True; got 0.5",
    ),
    ({"momentum": 0.9, "dampening": 2.0}, r"dampening must be in \[0.0, 1.0\]; got 2.0"),
  ],
)
def test_bad_nesterov_and_dampening(kwargs, match):
  with pytest.raises(ValueError, match=match):
    optimizers.sgd(0.1, **kwargs)


TORCH_LIKE = ["sgd", "adagrad", "rmsprop", "adadelta", "adam", "adamw", "adamax", "nadam", "radam"]
NUMERIC = [  # every numeric argument of the torch-like and schedule-free optimizers
  (name, argument)
  for name in [*TORCH_LIKE, "schedule_free_sgd", "schedule_free_adamw"]
  for argument, parameter in inspect.signature(getattr(optimizers, name)).parameters.items()
  if isinstance(parameter.default, int | float) and not isinstance(parameter.default, bool)
]


@pytest.mark.parametrize(("name", "argument"), NUMERIC)
def test_none_is_refused_before_any_compute(name, argument):
  # An unset config field (None) used to pass every check and fail inside update with a
  # TypeError naming no argument.
  with pytest.raises(ValueError, match=f"^{argument} must be a number.*; got None.$"):
    optimizers.get(name, **{argument: None})
  # A numeric string was read as its number by NumPy and failed inside update.
  with pytest.raises(ValueError, match=f"^{argument} must be .*; got '0.5'.$"):
    optimizers.get(name, **{argument: "0.5"})


@pytest.mark.parametrize(
  ("name", "kwargs", "match"),
  [
    ("adagrad", {"initial_accumulator_value": -1.0}, "initial_accumulator_value must be"),
    ("rmsprop", {"alpha": 1.0}, r"alpha must be in \[0.0, 1.0\); got 1.0"),
    ("adadelta", {"rho": 1.1}, r"rho must be in \[0.0, 1.0\]; got 1.1"),
    ("adam", {"b1": 1.0}, r"b1 must be in \[0.0, 1.0\); got 1.0"),
    ("adamw", {"b2": -0.1}, r"b2 must be in \[0.0, 1.0\); got -0.1"),
    ("adamax", {"b1": 2.0}, r"b1 must be in \[0.0, 1.0\); got 2.0"),
    ("nadam", {"momentum_decay": -1.0}, "momentum_decay must be a finite number >= 0; got -1.0"),
    ("radam", {"b1": 1.0}, r"b1 must be in \[0.0, 1.0\); got 1.0"),
    ("radam", {"b1": -0.5}, r"b1 must be in \[0.0, 1.0\); got -0.5"),
    ("radam", {"b2": 1.5}, r"b2 must be in \[0.0, 1.0\); got 1.5"),
  ],
)
def test_bad_rule_arguments(name, kwargs, match):
  with pytest.raises(ValueError, match=match):
    optimizers.get(name, **kwargs)


@pytest.mark.parametrize("optimizer", ["prodigy", "dadapt_adamw"])
def test_decoupled_weight_decay_is_scaled_by_the_bias_corrected_step(optimizer):
  # The first step's decay is gamma d0 c_1 lambda x, with Adam's bias correction
  # c_1 = sqrt(1 - b2) / (1 - b1), as the docstrings say and the packages do.
  params = {"w": jnp.array([1.0, -2.0])}
  grads = {"w": jnp.array([0.5, 0.25])}
  make = lambda wd: optimizers.get(
    optimizer, learning_rate=0.5, weight_decay=wd, bias_correction=True
  )
  decayed, plain = make(0.25), make(0.0)
  with_decay = decayed.update(grads, decayed.init(params), params)[0]["w"]
  without = plain.update(grads, plain.init(params), params)[0]["w"]
  c1 = (1 - 0.999) ** 0.5 / (1 - 0.9)
  expected = -0.5 * 1e-6 * c1 * 0.25 * params["w"]
  chex.assert_trees_all_close(with_decay - without, expected, rtol=1e-4, atol=0.0)
