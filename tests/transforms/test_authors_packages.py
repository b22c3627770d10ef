"""lrlab's learning-rate-free and schedule-free methods against their authors' PyTorch packages.

Each method runs 100 steps on one small deterministic problem (a tanh MLP on a
least-squares loss, the same initial weights and the same minibatches on both
sides, float64 on both sides) in lrlab and in the package its authors publish
(``schedulefree``, ``prodigyopt``, ``dadaptation``, ``dog-optimizer``; the
``reference`` extra). The parameters after every step, and the method's own
estimate (``d`` of Prodigy and D-Adaptation, DoG's distance and step size,
schedule-free's evaluation point, DoG's iterate average), must agree to float64
rounding. Each package is skipped where it is not installed.
"""

import inspect

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from lrlab import optimizers
from lrlab.transforms import (
  ScaleByDadaptAdamState,
  ScaleByDadaptSgdState,
  ScaleByDogState,
  ScaleByProdigyState,
  eval_params,
)

torch = pytest.importorskip("torch")

STEPS = 100
SIZES = (5, 16, 3)  # inputs, hidden units, outputs
BATCH = 8
# float64 on both sides. The estimates agree to ~1e-15 and most trajectories to ~1e-15 of
# the parameters' scale; at DAdaptAdam's defaults the steps (d = 0.16, Adam-sized) make the
# trajectory chaotic, and a 1e-16 rounding difference at step 10 grows tenfold every ~20
# steps to 2e-10 at step 100, so the parameters get 1e-8.
RTOL = 1e-9  # the estimates (d, DoG's distance and step)
PARAMS_RTOL = 1e-8  # the parameters and the evaluation points, relative to their scale
NAMES = ("w1", "b1", "w2", "b2")


def _problem():
  rng = np.random.default_rng(0)
  n_in, n_hidden, n_out = SIZES
  params = {
    "w1": rng.normal(size=(n_in, n_hidden)) / np.sqrt(n_in),
    "b1": 0.1 * rng.normal(size=n_hidden),
    "w2": rng.normal(size=(n_hidden, n_out)) / np.sqrt(n_hidden),
    "b2": np.zeros(n_out),
  }
  teacher = rng.normal(size=(n_in, n_out))
  inputs = rng.normal(size=(STEPS, BATCH, n_in))
  targets = np.tanh(inputs @ teacher) + 0.1 * rng.normal(size=(STEPS, BATCH, n_out))
  return params, inputs, targets


PARAMS, INPUTS, TARGETS = _problem()


def _loss(p, x, y, lib):
  hidden = lib.tanh(x @ p["w1"] + p["b1"])
  return 0.5 * lib.mean(lib.sum((hidden @ p["w2"] + p["b2"] - y) ** 2, -1))


class _Model(torch.nn.Module):
  def __init__(self):
    super().__init__()
    for name in NAMES:
      self.register_parameter(name, torch.nn.Parameter(torch.tensor(PARAMS[name])))

  def forward(self, x, y):
    return _loss({name: getattr(self, name) for name in NAMES}, x, y, torch)


def _numpy(model):
  return {name: getattr(model, name).detach().numpy().copy() for name in NAMES}


def run_package(make, record, *, averager=None, scheduler=None):
  """100 steps of ``make(parameters)``; the parameters and ``record(opt, model)`` after each."""
  model = _Model()
  opt = make(list(model.parameters()))
  schedule = scheduler(opt) if scheduler is not None else None
  if hasattr(opt, "train"):
    opt.train()  # schedule-free: the parameters are y
  average = averager(model) if averager is not None else None
  params, extras = [], []
  for t in range(STEPS):
    opt.zero_grad()
    model(torch.tensor(INPUTS[t]), torch.tensor(TARGETS[t])).backward()
    opt.step()
    if schedule is not None:
      schedule.step()
    if average is not None:
      average.step()
    params.append(_numpy(model))
    extras.append(record(opt, model, average))
  return params, extras


def _find(state, kind):
  if isinstance(state, kind):
    return state
  if isinstance(state, tuple):
    for child in state:
      found = _find(child, kind)
      if found is not None:
        return found
  return None


def run_lrlab(tx, record):
  """100 steps of ``tx`` in float64; the parameters and ``record(state, params)`` after each."""
  with jax.enable_x64(True):
    return jax.tree.map(np.asarray, jax.jit(lambda: lrlab_trajectory(tx, record))())


def lrlab_trajectory(tx, record):
  """:func:`run_lrlab`'s scan, traceable (under ``jax.enable_x64``): vmap it over a setting."""
  params = {k: jnp.asarray(v, jnp.float64) for k, v in PARAMS.items()}
  data = (jnp.asarray(INPUTS), jnp.asarray(TARGETS))

  def step(carry, batch):
    params, state = carry
    grads = jax.grad(lambda p: _loss(p, *batch, jnp))(params)
    updates, state = tx.update(grads, state, params)
    params = optax.apply_updates(params, updates)
    return (params, state), (params, record(state, params))

  return jax.lax.scan(step, (params, tx.init(params)), data)[1]


def deviation(lrlab_params, package_params):
  """Largest deviation over all steps and parameters, relative to the parameters' scale.

  A non-finite value on either side is an infinite deviation (``max`` would drop a NaN);
  a parameter that is exactly 0 throughout the package's run is compared absolutely.
  """
  worst = 0.0
  for name in NAMES:
    ours = np.asarray(lrlab_params[name])
    theirs = np.stack([p[name] for p in package_params])
    if not (np.all(np.isfinite(ours)) and np.all(np.isfinite(theirs))):
      return np.inf
    error, scale = np.max(np.abs(ours - theirs)), np.max(np.abs(theirs))
    worst = max(worst, float(error / scale if scale > 0 else error))
  return worst


def test_deviation_flags_a_non_finite_trajectory():
  """A NaN on either side is an infinite deviation, never 0 (Python's max drops a NaN)."""
  clean = {name: np.asarray(PARAMS[name])[None] for name in NAMES}
  assert deviation(clean, [PARAMS]) == 0.0
  broken = {**clean, "w1": np.full_like(clean["w1"], np.nan)}
  assert deviation(broken, [PARAMS]) == np.inf
  assert deviation(clean, [{**PARAMS, "b2": np.full_like(PARAMS["b2"], np.nan)}]) == np.inf


def assert_trajectories_match(ours, theirs, our_estimates, their_estimates):
  assert deviation(ours, theirs) < PARAMS_RTOL
  for name, mine in our_estimates.items():
    np.testing.assert_allclose(mine, [e[name] for e in their_estimates], rtol=RTOL, err_msg=name)


def assert_moves(params):
  """It trained: the last parameters lie 1e-2 of the initial parameters' scale from the start.

  (Not :func:`deviation`, which divides by each parameter's own scale: ``b2`` starts at 0,
  so any move of it at all would count as infinitely far.)
  """
  assert all(np.all(np.isfinite(params[name])) for name in NAMES)  # max would drop a NaN
  scale = max(np.max(np.abs(PARAMS[name])) for name in NAMES)
  moved = max(np.max(np.abs(params[name][-1] - PARAMS[name])) for name in NAMES)
  assert moved > 1e-2 * scale


# ---------------------------------------------------------------- Prodigy (prodigyopt)

PRODIGY_CASES = {  # lrlab keyword arguments: the package's
  "defaults": ({}, {}),
  "weight_decay": ({"weight_decay": 0.1}, {"weight_decay": 0.1}),
  "bias_correction_safeguard": (  # from d0 = 1e-6 the safeguard moves the weights by 1e-4
    {"bias_correction": True, "safeguard_warmup": True, "learning_rate": 0.5, "d0": 3e-4},
    {"use_bias_correction": True, "safeguard_warmup": True, "lr": 0.5, "d0": 3e-4},
  ),
  "growth_rate_d_coef": (
    {"growth_rate": 1.05, "d_coef": 0.5, "b3": 0.99},
    {"growth_rate": 1.05, "d_coef": 0.5, "beta3": 0.99},
  ),
  "no_momentum": ({"b1": 0.0, "eps": 1e-4}, {"betas": (0.0, 0.999), "eps": 1e-4}),
}


@pytest.mark.parametrize("case", list(PRODIGY_CASES))
def test_prodigy_matches_prodigyopt(case):
  prodigyopt = pytest.importorskip("prodigyopt")
  ours, theirs = PRODIGY_CASES[case]
  params, d = run_lrlab(
    optimizers.prodigy(**{"weight_decay": 0.0, **ours}),
    lambda state, _: _find(state, ScaleByProdigyState).d,
  )
  package, their_d = run_package(
    lambda p: prodigyopt.Prodigy(p, **theirs), lambda opt, *_: {"d": opt.param_groups[0]["d"]}
  )
  assert_trajectories_match(params, package, {"d": d}, their_d)
  assert d[-1] > 5 * d[0]  # the estimate grew by itself
  assert_moves(params)


def test_prodigy_with_cosine_annealing_matches_prodigyopt():
  # The authors' recommended use: a cosine over the whole run (torch's CosineAnnealingLR,
  # stepped after each update) multiplies Prodigy's step; in lrlab, a schedule of the count.
  prodigyopt = pytest.importorskip("prodigyopt")
  # From d0 = 1e-6 the safeguard moves the weights by 1e-4 in 100 steps; from 3e-4, by 4e-2.
  cosine = lambda k: 0.5 * (1 + jnp.cos(jnp.pi * k / STEPS))
  params, d = run_lrlab(
    optimizers.prodigy(cosine, safeguard_warmup=True, bias_correction=True, d0=3e-4),
    lambda state, _: _find(state, ScaleByProdigyState).d,
  )
  package, their_d = run_package(
    lambda p: prodigyopt.Prodigy(p, safeguard_warmup=True, use_bias_correction=True, d0=3e-4),
    lambda opt, *_: {"d": opt.param_groups[0]["d"]},
    scheduler=lambda opt: torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=STEPS),
  )
  assert_trajectories_match(params, package, {"d": d}, their_d)
  assert_moves(params)


def test_prodigy_swept_over_b1_matches_prodigyopt_at_b1_0():
  # A sweep traces b1. Its member b1 = 0 must be the package's b1 = 0 (no first moment, a step
  # along d_{k+1} g), as prodigy(b1=0.0) is, not an Adam step with m = d_k g.
  prodigyopt = pytest.importorskip("prodigyopt")
  record = lambda state, _: _find(state, ScaleByProdigyState).d
  with jax.enable_x64(True):
    sweep = lambda b1: lrlab_trajectory(optimizers.prodigy(b1=b1), record)
    params, d = jax.jit(jax.vmap(sweep))(jnp.asarray([0.0, 0.9]))
    params, d = jax.tree.map(lambda x: np.asarray(x[0]), (params, d))
  package, their_d = run_package(
    lambda p: prodigyopt.Prodigy(p, betas=(0.0, 0.999)),
    lambda opt, *_: {"d": opt.param_groups[0]["d"]},
  )
  assert_trajectories_match(params, package, {"d": d}, their_d)
  assert_moves(params)


# ------------------------------------------------------- D-Adaptation (dadaptation)

DADAPT_ADAM_CASES = {
  "defaults": ({"weight_decay": 0.0}, {}),
  "decoupled_weight_decay": ({"weight_decay": 0.1}, {"weight_decay": 0.1, "decouple": True}),
  "bias_correction_growth": (
    {"weight_decay": 0.0, "bias_correction": True, "growth_rate": 1.1, "b1": 0.8},
    {"use_bias_correction": True, "growth_rate": 1.1, "betas": (0.8, 0.999)},
  ),
}


@pytest.mark.parametrize("case", list(DADAPT_ADAM_CASES))
def test_dadapt_adamw_matches_dadaptation(case):
  dadaptation = pytest.importorskip("dadaptation")
  ours, theirs = DADAPT_ADAM_CASES[case]
  params, d = run_lrlab(
    optimizers.dadapt_adamw(**ours), lambda state, _: _find(state, ScaleByDadaptAdamState).d
  )
  package, their_d = run_package(
    lambda p: dadaptation.DAdaptAdam(p, **theirs), lambda opt, *_: {"d": opt.param_groups[0]["d"]}
  )
  assert_trajectories_match(params, package, {"d": d}, their_d)
  assert d[-1] > 100 * 1e-6
  assert_moves(params)


DADAPT_SGD_CASES = {
  "defaults": ({}, {}),
  "momentum": ({"momentum": 0.9}, {"momentum": 0.9}),
  "weight_decay_growth": (
    {"weight_decay": 0.05, "growth_rate": 1.2, "learning_rate": 0.5},
    {"weight_decay": 0.05, "growth_rate": 1.2, "lr": 0.5},
  ),
}


@pytest.mark.parametrize("case", list(DADAPT_SGD_CASES))
def test_dadapt_sgd_matches_dadaptation(case):
  dadaptation = pytest.importorskip("dadaptation")
  ours, theirs = DADAPT_SGD_CASES[case]
  params, d = run_lrlab(
    optimizers.dadapt_sgd(**ours), lambda state, _: _find(state, ScaleByDadaptSgdState).d
  )
  package, their_d = run_package(
    lambda p: dadaptation.DAdaptSGD(p, **theirs), lambda opt, *_: {"d": opt.param_groups[0]["d"]}
  )
  assert_trajectories_match(params, package, {"d": d}, their_d)
  assert d[-1] > 100 * 1e-6
  assert_moves(params)


# ---------------------------------------------------------------- DoG (dog-optimizer)

DOG_CASES = {
  "defaults": ({}, {}),
  "weight_decay_reps_rel": (
    {"weight_decay": 0.01, "reps_rel": 1e-4},
    {"weight_decay": 0.01, "reps_rel": 1e-4},
  ),
  "averaging": ({"averaging": 8.0}, {}),
}


@pytest.mark.parametrize("case", list(DOG_CASES))
def test_dog_matches_dog_optimizer(case):
  dog = pytest.importorskip("dog")
  ours, theirs = DOG_CASES[case]
  averages = "averaging" in ours

  def ours_record(state, params):
    dog_state = _find(state, ScaleByDogState)
    return {
      "rbar": dog_state.max_distance,
      "eta": dog_state.learning_rate,
      "average": eval_params(state, params),
    }

  def their_record(opt, model, average):
    group = opt.param_groups[0]
    out = {"rbar": float(group["rbar"]), "eta": float(group["eta"][0])}
    out["average"] = _numpy(average.averaged_model) if average is not None else _numpy(model)
    return out

  params, estimates = run_lrlab(optimizers.dog(**ours), ours_record)
  package, their = run_package(
    lambda p: dog.DoG(p, **theirs),
    their_record,
    averager=(lambda m: dog.PolynomialDecayAverager(m, gamma=ours["averaging"]))
    if averages
    else None,
  )
  assert_trajectories_match(params, package, {k: estimates[k] for k in ("rbar", "eta")}, their)
  their_average = [e["average"] for e in their]
  assert deviation(estimates["average"], their_average) < PARAMS_RTOL
  assert estimates["eta"][-1] > 100 * estimates["eta"][0]  # the step grew from r_eps
  if averages:
    assert deviation(estimates["average"], package) > 1e-3  # the average is not the iterate
  assert_moves(params)


# ------------------------------------------------------------ schedule-free (schedulefree)

SCHEDULE_FREE_CASES = {  # (lrlab optimizer, its keywords, package class, its keywords)
  "sgd_defaults": ("schedule_free_sgd", {"learning_rate": 0.5}, "SGDScheduleFree", {"lr": 0.5}),
  "sgd_warmup_weight_decay": (
    "schedule_free_sgd",
    {"learning_rate": 0.5, "warmup_steps": 20, "weight_decay": 0.01, "b1": 0.8},
    "SGDScheduleFree",
    {"lr": 0.5, "warmup_steps": 20, "weight_decay": 0.01, "momentum": 0.8},
  ),
  "adamw_defaults": ("schedule_free_adamw", {"weight_decay": 0.0}, "AdamWScheduleFree", {}),
  "adamw_warmup_weight_decay": (
    "schedule_free_adamw",
    {"learning_rate": 0.01, "warmup_steps": 20, "weight_decay": 0.05, "b2": 0.99},
    "AdamWScheduleFree",
    {"lr": 0.01, "warmup_steps": 20, "weight_decay": 0.05, "betas": (0.9, 0.99)},
  ),
  "adamw_paper": (
    "schedule_free_adamw",
    {"learning_rate": 0.01, "warmup_steps": 20, "weight_decay": 0.0, "bias_correction": "rate"},
    "AdamWScheduleFreePaper",
    {"lr": 0.01, "warmup_steps": 20},
  ),
}


@pytest.mark.parametrize("case", list(SCHEDULE_FREE_CASES))
def test_schedule_free_matches_schedulefree(case):
  schedulefree = pytest.importorskip("schedulefree")
  name, ours, package_class, theirs = SCHEDULE_FREE_CASES[case]
  b1 = theirs.get("momentum", theirs.get("betas", (0.9,))[0])

  def their_record(opt, model, _):
    y = _numpy(model)
    z = {n: opt.state[getattr(model, n)]["z"].numpy() for n in NAMES}
    return {"x": {n: (y[n] - (1 - b1) * z[n]) / b1 for n in NAMES}}  # y = (1 - b1) z + b1 x

  params, x = run_lrlab(getattr(optimizers, name)(**ours), lambda s, p: eval_params(s, p))
  package, their = run_package(
    lambda p: getattr(schedulefree, package_class)(p, foreach=False, **theirs), their_record
  )
  assert deviation(params, package) < PARAMS_RTOL  # y, where the gradients are taken
  assert deviation(x, [e["x"] for e in their]) < PARAMS_RTOL  # x, recovered from y and z there
  assert deviation(x, package) > 1e-3
  assert_moves(params)


# ------------------------------------------------------------------------- defaults

DEFAULTS = [  # (lrlab optimizer, package, class, {lrlab argument: package argument})
  ("prodigy", "prodigyopt", "Prodigy", {"learning_rate": "lr", "b3": "beta3", "eps": "eps",
    "d0": "d0", "d_coef": "d_coef", "growth_rate": "growth_rate",
    "bias_correction": "use_bias_correction", "safeguard_warmup": "safeguard_warmup",
    "weight_decay": "weight_decay"}),
  ("dadapt_adamw", "dadaptation", "DAdaptAdam", {"learning_rate": "lr", "eps": "eps", "d0": "d0",
    "growth_rate": "growth_rate", "bias_correction": "use_bias_correction"}),
  ("dadapt_sgd", "dadaptation", "DAdaptSGD", {"learning_rate": "lr", "momentum": "momentum",
    "d0": "d0", "growth_rate": "growth_rate", "weight_decay": "weight_decay"}),
  ("dog", "dog", "DoG", {"learning_rate": "lr", "reps_rel": "reps_rel", "eps": "eps",
    "weight_decay": "weight_decay"}),
  ("schedule_free_sgd", "schedulefree", "SGDScheduleFree", {"learning_rate": "lr",
    "b1": "momentum", "warmup_steps": "warmup_steps", "weight_lr_power": "weight_lr_power",
    "weight_decay": "weight_decay"}),
  ("schedule_free_adamw", "schedulefree", "AdamWScheduleFree", {"learning_rate": "lr",
    "eps": "eps", "warmup_steps": "warmup_steps", "weight_lr_power": "weight_lr_power"}),
]  # fmt: skip


@pytest.mark.parametrize(
  ("name", "package", "cls", "names"), DEFAULTS, ids=[d[0] for d in DEFAULTS]
)
def test_defaults_are_the_packages(name, package, cls, names):
  # dadapt_adamw and schedule_free_adamw decay the weights by 1e-2 by default, as every *adamw
  # in lrlab (their docstrings say so); the packages default to 0, so weight_decay is left out.
  module = pytest.importorskip(package)
  ours = inspect.signature(getattr(optimizers, name)).parameters
  theirs = inspect.signature(getattr(module, cls).__init__).parameters
  for mine, their in names.items():
    assert ours[mine].default == theirs[their].default, (name, mine)
  if "betas" in theirs:
    assert (ours["b1"].default, ours["b2"].default) == theirs["betas"].default


# A warmup from 0 (lrlab's `schedules.warmup` default, Hugging Face's linear warmup): the packages
# skip a step whose rate is 0 (no moments, no estimate, no k); lrlab must skip it too.
WARMUP_FROM_ZERO = {
  "prodigy": (lambda s: optimizers.prodigy(s), "prodigyopt", "Prodigy", {}, ScaleByProdigyState),
  "prodigy_safeguard_bias_correction": (
    lambda s: optimizers.prodigy(s, safeguard_warmup=True, bias_correction=True),
    "prodigyopt", "Prodigy", {"safeguard_warmup": True, "use_bias_correction": True},
    ScaleByProdigyState,
  ),
  "dadapt_adamw": (
    lambda s: optimizers.dadapt_adamw(s, weight_decay=0.0),
    "dadaptation", "DAdaptAdam", {}, ScaleByDadaptAdamState,
  ),
}  # fmt: skip


@pytest.mark.parametrize("case", list(WARMUP_FROM_ZERO))
def test_warmup_from_zero_matches_the_package(case):
  make, module, cls, theirs, kind = WARMUP_FROM_ZERO[case]
  package_module = pytest.importorskip(module)
  warmup = 10
  params, d = run_lrlab(
    make(lambda k: jnp.minimum(1.0, k / jnp.float64(warmup))), lambda state, _: _find(state, kind).d
  )
  package, their_d = run_package(
    lambda p: getattr(package_module, cls)(p, **theirs),
    lambda opt, *_: {"d": opt.param_groups[0]["d"]},
    scheduler=lambda opt: torch.optim.lr_scheduler.LambdaLR(opt, lambda t: min(1.0, t / warmup)),
  )
  assert_trajectories_match(params, package, {"d": d}, their_d)
  assert_moves(params)


# Gradients that are all zero until some step (a loss flat at the start): the packages return
# before the step while their s is 0 (`if d_denom == 0: return`), so their k, the clock of the
# bias correction, starts at the first nonzero gradient; lrlab's must too.
LEADING_ZEROS = {
  "prodigy": (
    lambda: optimizers.prodigy(bias_correction=True),
    "prodigyopt", "Prodigy", {"use_bias_correction": True}, ScaleByProdigyState,
  ),
  "dadapt_adamw": (
    lambda: optimizers.dadapt_adamw(weight_decay=0.0, bias_correction=True),
    "dadaptation", "DAdaptAdam", {"use_bias_correction": True}, ScaleByDadaptAdamState,
  ),
}  # fmt: skip


@pytest.mark.parametrize("case", list(LEADING_ZEROS))
def test_leading_zero_gradients_match_the_package(case):
  make, module, cls, theirs, kind = LEADING_ZEROS[case]
  package_module = pytest.importorskip(module)
  rng = np.random.default_rng(1)
  grads = np.concatenate([np.zeros((2, 4)), rng.normal(size=(20, 4))])
  x0 = rng.normal(size=4)
  p = torch.nn.Parameter(torch.tensor(x0))
  opt = getattr(package_module, cls)([p], **theirs)
  package = []
  for g in grads:
    p.grad = torch.tensor(g)
    opt.step()
    package.append(p.detach().numpy().copy())
  with jax.enable_x64(True):
    tx = make()
    x = jnp.asarray(x0)
    state = tx.init(x)
    ours = []
    for g in grads:
      updates, state = tx.update(jnp.asarray(g), state, x)
      x = optax.apply_updates(x, updates)
      ours.append(np.asarray(x))
    assert int(_find(state, kind).taken) == len(grads) - 2
  np.testing.assert_allclose(ours, package, rtol=0, atol=1e-12 * np.max(np.abs(x0)))
  assert np.max(np.abs(ours[-1] - x0)) > 1e-7  # it moved
