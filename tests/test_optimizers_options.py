"""The optimizers' options against torch.optim: structural flags, and traced hyperparameters.

A structural option (``nesterov``, ``amsgrad``, ``centered``, ``decoupled_weight_decay``, ...)
must be ``True`` or ``False``: a string such as ``"False"`` is truthy and used to switch the
option on, and ``None`` off, without a word. The numeric hyperparameters may be traced: a
``jax.vmap`` over the learning rate and one other hyperparameter, with the structural options
that change the formula switched on, follows ``torch.optim`` member by member in float64.
"""

import dataclasses
import inspect

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from lrlab import optimizers, transforms
from tests.transforms import reference
from tests.transforms.runners import assert_close, run_torch
from tests.transforms.runners_free import trajectory

FLAGS = [  # every bool option of every registered optimizer
  (name, argument)
  for name in optimizers.names()
  for argument, parameter in inspect.signature(getattr(optimizers, name)).parameters.items()
  if isinstance(parameter.default, bool)
]


def test_the_flags_are_found():
  assert {"nesterov", "amsgrad", "centered", "decoupled_weight_decay"} <= {a for _, a in FLAGS}


@pytest.mark.parametrize(("name", "argument"), FLAGS)
@pytest.mark.parametrize("value", ["False", "no", None, 1, 0.0])
def test_a_flag_that_is_not_a_bool_is_refused(name, argument, value):
  with pytest.raises(ValueError, match=rf"^{argument} must be True or False; got {value!r}\.$"):
    optimizers.get(name, **{argument: value})


TRANSFORM_FLAGS = [
  (transforms.trace, {"momentum": 0.9}, "nesterov"),
  (transforms.scale_by_adam, {}, "amsgrad"),
  (transforms.scale_by_rms, {}, "centered"),
  (transforms.scale_by_prodigy, {}, "bias_correction"),
  (transforms.scale_by_prodigy, {}, "safeguard_warmup"),
  (transforms.scale_by_dadapt_adam, {}, "bias_correction"),
]


@pytest.mark.parametrize(
  ("make", "kwargs", "argument"), TRANSFORM_FLAGS, ids=lambda x: getattr(x, "__name__", None)
)
def test_a_transform_refuses_a_flag_that_is_not_a_bool(make, kwargs, argument):
  with pytest.raises(ValueError, match=rf"^{argument} must be True or False; got 'False'\.$"):
    make(**kwargs, **{argument: "False"})


@pytest.mark.parametrize(("name", "argument"), FLAGS)
def test_a_traced_flag_is_refused_before_tracing_an_update(name, argument):
  # It failed inside update with a TracerBoolConversionError naming no argument.
  with pytest.raises(ValueError, match=rf"^{argument} must be True or False; got "):
    jax.jit(lambda flag: optimizers.get(name, **{argument: flag}).init({"w": jnp.ones(2)}))(True)


@pytest.mark.parametrize(("name", "argument"), FLAGS)
def test_numpy_bools_are_flags(name, argument):
  kwargs = {"momentum": 0.9} if argument == "nesterov" else {}
  params = {"w": jnp.ones(2)}
  grads = {"w": jnp.array([0.5, -1.0])}
  update = lambda tx: tx.update(grads, tx.init(params), params, value=1.0)[0]
  for value in (np.True_, np.False_):
    ours = optimizers.get(name, **kwargs, **{argument: value})
    theirs = optimizers.get(name, **kwargs, **{argument: bool(value)})
    np.testing.assert_array_equal(update(ours)["w"], update(theirs)["w"])


PROBLEM = reference.make_problem(seed=21, steps=50, noise=0.5)
PROBLEM64 = reference.Problem(*(
  {k: v.astype(np.float64) for k, v in getattr(PROBLEM, f.name).items()}
  for f in dataclasses.fields(PROBLEM)
))  # fmt: skip

# (lrlab name, fixed options, swept hyperparameter, its values, torch class, torch options).
VMAP_CASES = [
  (
    "sgd",
    {"momentum": 0.8, "nesterov": True},
    "momentum",
    [0.3, 0.6, 0.85],
    "SGD",
    {"nesterov": True},
  ),
  (
    "sgd",
    {"momentum": 0.8, "weight_decay": 0.1},
    "dampening",
    [0.0, 0.3, 0.7],
    "SGD",
    {"momentum": 0.8, "weight_decay": 0.1},
  ),
  ("adam", {"amsgrad": True}, "b2", [0.5, 0.9, 0.99], "Adam", {"amsgrad": True}),
  ("adam", {"weight_decay": 0.1}, "eps", [1e-8, 1e-3, 0.3], "Adam", {"weight_decay": 0.1}),
  ("adamw", {"amsgrad": True}, "weight_decay", [0.0, 0.1, 0.5], "AdamW", {"amsgrad": True}),
  ("adamax", {"weight_decay": 0.1}, "eps", [1e-8, 1e-2, 0.3], "Adamax", {"weight_decay": 0.1}),
  ("nadam", {"momentum_decay": 0.05}, "b1", [0.1, 0.5, 0.9], "NAdam", {"momentum_decay": 0.05}),
  (
    "nadam",
    {"decoupled_weight_decay": True},
    "weight_decay",
    [0.0, 0.1, 0.5],
    "NAdam",
    {"decoupled_weight_decay": True},
  ),
  # b2 = 0.5 is never rectified (rho_inf = 3), 0.9 from step 6, 0.999 from step 6 too.
  ("radam", {"weight_decay": 0.1}, "b2", [0.5, 0.9, 0.999], "RAdam", {"weight_decay": 0.1}),
  ("radam", {"b2": 0.99}, "eps", [1e-8, 1e-3, 0.3], "RAdam", {"betas": (0.9, 0.99)}),
  (
    "radam",
    {"decoupled_weight_decay": True},
    "weight_decay",
    [0.0, 0.1, 0.5],
    "RAdam",
    {"decoupled_weight_decay": True},
  ),
  (
    "adagrad",
    {"eps": 1e-3},
    "initial_accumulator_value",
    [0.0, 0.1, 1.0],
    "Adagrad",
    {"eps": 1e-3},
  ),
  (
    "rmsprop",
    {"centered": True, "momentum": 0.5},
    "alpha",
    [0.3, 0.6, 0.9],  # centered with alpha 0 divides by eps alone
    "RMSprop",
    {"centered": True, "momentum": 0.5},
  ),
  ("adadelta", {"weight_decay": 0.1}, "rho", [0.0, 0.5, 0.95], "Adadelta", {"weight_decay": 0.1}),
]


def _torch_kwargs(argument, value, options):
  if argument in ("b1", "b2"):
    betas = [0.9, 0.999]
    betas[argument == "b2"] = value
    return {**options, "betas": tuple(betas)}
  return {**options, argument: value}


@pytest.mark.parametrize("case", VMAP_CASES, ids=lambda case: f"{case[0]}-{case[2]}")
def test_vmap_over_the_rate_and_a_hyperparameter_matches_torch_in_float64(case):
  torch = pytest.importorskip("torch")
  name, fixed, argument, values, torch_name, options = case
  rates = [0.3, 0.7, 1.3] if name == "adadelta" else [0.01, 0.03, 0.05]

  def run(rate, value):
    tx = optimizers.get(name, learning_rate=rate, **{**fixed, argument: value})
    return trajectory(tx, PROBLEM64, dtype=jnp.float64)[0]

  with jax.enable_x64(True):
    swept = jax.jit(jax.vmap(run))(jnp.asarray(rates), jnp.asarray(values))
    swept = jax.tree.map(np.asarray, swept)
  default = torch.get_default_dtype()
  torch.set_default_dtype(torch.float64)  # NAdam's mu_product
  try:
    for i, (rate, value) in enumerate(zip(rates, values, strict=True)):
      kwargs = {"lr": rate, **_torch_kwargs(argument, value, options)}
      expected = run_torch(torch, lambda p, k=kwargs: getattr(torch.optim, torch_name)(p, **k),
                           PROBLEM64)  # fmt: skip
      assert_close({k: v[i] for k, v in swept.items()}, expected, rtol=1e-10, atol=1e-12)
  finally:
    torch.set_default_dtype(default)
