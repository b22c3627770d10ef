"""muP on the MLP (Tensor Programs V, Table 8): equal to SP at the base width, a coordinate check.

The coordinate check is the one of Yang et al. 2022 (Section 7 and the ``mup``
package's ``coord_check``): train a few steps at one rate at several widths and
watch the size of each layer's activations. Under muP every coordinate is
Theta(1) in the width; under SP with Adam the output's change after a step grows
like the width (each of the readout's ``n`` entries moves by about the rate, and
they add up coherently over the ``n`` hidden features).
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import lrlab
from lrlab import models
from lrlab.transforms import scale_by_multipliers

BASE = 100  # mnist1d-mlp's default hidden width, hence its default base_width
WIDTHS = (64, 256, 1024)


@functools.cache
def _task(width: int, parametrization: str) -> lrlab.tasks.Task:
  return lrlab.tasks.get("mnist1d-mlp", hidden=(width, width), parametrization=parametrization)


def _numpy_forward(params, x: np.ndarray, output_multiplier: float):
  """Pre-activations of both hidden layers and the logits, in float64 NumPy."""
  p = jax.tree.map(lambda a: np.asarray(a, np.float64), params)
  z1 = x @ p["dense_0"]["weight"].T + p["dense_0"]["bias"]
  z2 = np.maximum(z1, 0) @ p["dense_1"]["weight"].T + p["dense_1"]["bias"]
  logits = (np.maximum(z2, 0) * output_multiplier) @ p["head"]["weight"].T + p["head"]["bias"]
  return z1, z2, logits


def _chain(optimizer: str, lr: float, multipliers) -> optax.GradientTransformation:
  """The issue's muP recipe: the optimizer, then each layer's multiplier."""
  make = {"adam": lrlab.optimizers.adam, "sgd": lrlab.optimizers.sgd}[optimizer]
  return optax.chain(make(lr), scale_by_multipliers(multipliers))


@functools.cache
def _step(optimizer: str, lr: float):
  """One jitted step; the multipliers are arrays, so SP and muP of one width share its program."""

  @jax.jit
  def step(grads, state, params, multipliers):
    updates, state = _chain(optimizer, lr, multipliers).update(grads, state, params)
    return optax.apply_updates(params, updates), state

  return step


@functools.cache
def _grad(task):
  return jax.jit(jax.grad(lambda p, s, batch: task.loss(p, s, batch, None)[0]))


def _train(task, optimizer: str, lr: float, key, steps: int, batch, multipliers=None):
  """``steps`` full-batch steps from ``task.init(key)``, each layer at ``lr`` times its multiplier.

  ``multipliers`` defaults to ``task.lr_multipliers(optimizer)``. Returns the
  initial and the final parameters.
  """
  if multipliers is None:
    multipliers = task.lr_multipliers(optimizer)
  multipliers = jax.tree.map(jnp.float32, multipliers)
  params, model_state = task.init(key)
  state = _chain(optimizer, lr, multipliers).init(params)
  current = params
  for _ in range(steps):
    grads = _grad(task)(current, model_state, batch)
    current, state = _step(optimizer, lr)(grads, state, current, multipliers)
  return params, current


def _coordinates(parametrization: str, optimizer: str, lr: float, *, steps=3, seeds=2):
  """Mean |coordinate| per width: ``[|z1|, |z2|, |dz2|, |dlogits|]`` after ``steps`` steps."""
  rows = []
  for width in WIDTHS:
    task = _task(width, parametrization)
    batch = task.batch(jnp.arange(256))
    x = np.asarray(batch[0], np.float64)
    multiplier = BASE / width if parametrization == "mup" else 1.0  # Table 8: 1/fan_in, relative
    per_seed = []
    for seed in range(seeds):
      first, last = _train(task, optimizer, lr, jax.random.key(seed), steps, batch)
      (_, z2_0, f_0), (z1, z2, f) = (_numpy_forward(p, x, multiplier) for p in (first, last))
      # The model's own logits agree with the NumPy forward, multiplier included.
      logits = task.model.apply(last, {}, batch[0], train=False)[0]
      np.testing.assert_allclose(logits, f, rtol=1e-4, atol=1e-4)
      absmean = lambda a: float(np.abs(a).mean())
      per_seed.append([absmean(z1), absmean(z2), absmean(z2 - z2_0), absmean(f - f_0)])
    rows.append(np.mean(per_seed, axis=0))
  return np.array(rows)


def test_coordinate_check_adam_mup_is_width_independent_and_sp_is_not():
  mup = _coordinates("mup", "adam", 1e-3)
  sp = _coordinates("sp", "adam", 1e-3)
  print("widths", WIDTHS, "\nmuP |z1| |z2| |dz2| |dlogits|\n", mup, "\nSP\n", sp)
  # muP: every coordinate Theta(1): within a factor 2 from 64 to 1024 wide.
  spread = mup.max(axis=0) / mup.min(axis=0)
  assert np.all(spread < 2.0), spread
  # SP + Adam: the logits' change grows like the width, 16x from 64 to 1024; at least half that.
  growth = sp[-1, 3] / sp[0, 3]
  assert growth > (WIDTHS[-1] / WIDTHS[0]) / 2, growth
  # At init (and so before training) the hidden pre-activations are Theta(1) in both.
  assert np.all(sp[:, :2].max(axis=0) / sp[:, :2].min(axis=0) < 2.0)


def test_coordinate_check_sgd_mup_is_width_independent_and_sp_is_not():
  # One step, the linear regime the scaling is about: SP's wide nets are already past their
  # stability limit at this rate, and their later steps oscillate.
  mup = _coordinates("mup", "sgd", 0.1, steps=1)
  sp = _coordinates("sp", "sgd", 0.1, steps=1)
  print("widths", WIDTHS, "\nmuP |z1| |z2| |dz2| |dlogits|\n", mup, "\nSP\n", sp)
  assert np.all(mup.max(axis=0) / mup.min(axis=0) < 2.0)
  # SP + SGD: the readout's step is -lr * delta h^T, so the logits move by lr * delta |h|^2 ~ n.
  assert sp[-1, 3] / sp[0, 3] > (WIDTHS[-1] / WIDTHS[0]) / 2


def test_at_the_base_width_mup_is_sp_bit_for_bit():
  sp, mup = _task(BASE, "sp"), _task(BASE, "mup")
  key = jax.random.key(3)
  params_sp, params_mup = sp.init(key)[0], mup.init(key)[0]
  jax.tree.map(np.testing.assert_array_equal, params_sp, params_mup)
  for optimizer in ("adam", "sgd"):
    assert set(jax.tree.leaves(mup.lr_multipliers(optimizer))) == {1.0}
  batch = sp.batch(jnp.arange(128))
  np.testing.assert_array_equal(
    sp.model.apply(params_sp, {}, batch[0], train=False)[0],
    mup.model.apply(params_mup, {}, batch[0], train=False)[0],
  )
  for optimizer in ("adam", "sgd"):
    sp_run = _train(sp, optimizer, 1e-2, key, 2, batch)[1]
    jax.tree.map(
      np.testing.assert_array_equal, sp_run, _train(mup, optimizer, 1e-2, key, 2, batch)[1]
    )


def test_mup_initialisation_variances():
  # Table 8 relative to the base width: input and hidden weights 1/fan_in (as SP), the readout
  # 1/fan_in * m = 1/base (its effective weight W/m then has variance 1/(fan_in * m)).
  width = 1024
  for parametrization, readout_std in (("sp", width**-0.5), ("mup", BASE**-0.5)):
    model = models.functional(
      lambda rngs, p=parametrization: models.MLP(
        40, (width, width), 10, parametrization=p, base_width=BASE, rngs=rngs
      )
    )
    params = model.init(jax.random.key(0))[0]
    np.testing.assert_allclose(np.std(params["dense_0"]["weight"]), 40**-0.5, rtol=0.05)
    np.testing.assert_allclose(np.std(params["dense_1"]["weight"]), width**-0.5, rtol=0.05)
    np.testing.assert_allclose(np.std(params["head"]["weight"]), readout_std, rtol=0.05)


def test_lr_multipliers_follow_the_table():
  hidden, base = (400, 200), 100
  m0, m1 = 400 / base, 200 / base
  adam = models.mlp_lr_multipliers(hidden, "adam", parametrization="mup", base_width=base)
  assert adam == {
    "dense_0": {"weight": 1.0, "bias": 1.0},  # input weights and biases: eta
    "dense_1": {"weight": 1 / m0, "bias": 1.0},  # hidden: eta / fan_in
    "head": {"weight": 1.0, "bias": 1.0},  # readout: eta (its 1/fan_in is in the forward)
  }
  sgd = models.mlp_lr_multipliers(hidden, "sgd", parametrization="mup", base_width=base)
  assert sgd == {
    "dense_0": {"weight": m0, "bias": m0},  # input weights and biases: eta * fan_out
    "dense_1": {"weight": m1 / m0, "bias": m1},  # hidden: eta * fan_out / fan_in
    "head": {"weight": m1, "bias": 1.0},  # readout: eta * fan_in
  }
  per_layer = models.mlp_lr_multipliers(hidden, "adam", parametrization="mup", base_width=(200, 50))
  assert per_layer["dense_1"]["weight"] == 0.5
  for optimizer in ("adam", "sgd"):
    ones = models.mlp_lr_multipliers(hidden, optimizer, parametrization="sp", base_width=base)
    assert set(jax.tree.leaves(ones)) == {1.0}


def test_task_lr_multipliers_set_each_layers_adam_step():
  # Adam's first step moves every entry by about the rate (g / |g|), so each layer's step is
  # the rate times its multiplier: lr for the input layer, lr / m for the hidden one.
  task, lr = _task(400, "mup"), 1e-3
  first, last = _train(task, "adam", lr, jax.random.key(0), 1, task.batch(jnp.arange(64)))
  step = jax.tree.map(lambda a, b: float(np.median(np.abs(np.asarray(b - a)))), first, last)
  np.testing.assert_allclose(step["dense_0"]["weight"], lr, rtol=0.01)
  np.testing.assert_allclose(step["dense_1"]["weight"], lr * BASE / 400, rtol=0.01)
  np.testing.assert_allclose(step["head"]["weight"], lr, rtol=0.01)


@pytest.mark.parametrize(
  ("build", "message"),
  [
    (
      lambda: lrlab.tasks.get("mnist1d-mlp", parametrization="ntk"),
      "parametrization must be one of 'sp', 'mup'; got 'ntk'.",
    ),
    (
      lambda: models.MLP(4, (8,), 2, parametrization="MuP", rngs=None),
      "parametrization must be one of 'sp', 'mup'; got 'MuP'.",
    ),
    (
      lambda: _task(BASE, "mup").lr_multipliers("lion"),
      "optimizer must be one of 'adam', 'sgd'; got 'lion'.",
    ),
    (
      lambda: lrlab.tasks.get("mnist1d-logreg").lr_multipliers("adam"),
      "task 'mnist1d-logreg' has no parametrization, so no lr_multipliers",
    ),
    (
      lambda: lrlab.tasks.get("mnist1d-mlp", parametrization="mup", base_width=(100, 100, 100)),
      "base_width must be an int >= 1 or one int >= 1 per hidden layer (2); got (100, 100, 100).",
    ),
    (
      lambda: lrlab.tasks.get("mnist1d-cnn", parametrization="mup"),
      "unknown option(s) ['parametrization'] for a 'cnn' model",
    ),
  ],
)
def test_bad_input_is_refused_in_one_line(build, message):
  with pytest.raises(ValueError) as error:
    build()
  assert str(error.value).startswith(message)
  assert "\n" not in str(error.value)


@pytest.mark.parametrize("base_width", ["64", "6", 1.5, (64.5, 64), True, (True, 64), [0, 64]])
def test_base_width_that_is_not_whole_numbers_is_refused_in_one_line(base_width):
  # A string was read digit by digit ("64" as the widths (6, 4)) and a fraction truncated or
  # refused with "'float' object is not iterable"; the MLP, its rates and the ResNet share the
  # check.
  message = (
    f"base_width must be an int >= 1 or one int >= 1 per hidden layer (2); got {base_width!r}."
  )
  for build in (
    lambda: models.mlp_lr_multipliers(
      (128, 128), "adam", parametrization="mup", base_width=base_width
    ),
    lambda: models.MLP(4, (128, 128), 2, parametrization="mup", base_width=base_width, rngs=None),
  ):
    with pytest.raises(ValueError) as error:
      build()
    assert str(error.value) == message
  with pytest.raises(
    ValueError, match=r"^base_width must be an int >= 1 or one int >= 1 per stage"
  ):
    models.ResNet((8,), 2, channels=(8, 8), parametrization="mup", base_width=base_width, rngs=None)


@pytest.mark.parametrize("hidden", [128, (-4,), (0, 8), (128.5,), ("64",)])
def test_mlp_lr_multipliers_refuse_hidden_widths_the_mlp_refuses(hidden):
  # The rates read hidden with int(): (-4,) under SGD gave every tensor the negative rate
  # -2 (gradient ascent), (128.5,) was truncated to 128 and 128 failed with "'int' object is
  # not iterable". The MLP itself refuses each of them with this line.
  message = f"hidden must be a sequence of integers >= 1; got {hidden!r}."
  with pytest.raises(ValueError) as error:
    models.mlp_lr_multipliers(hidden, "sgd", parametrization="mup", base_width=2)
  assert str(error.value) == message
  with pytest.raises(ValueError) as error:
    models.MLP(4, hidden, 2, rngs=None)
  assert str(error.value) == message


def test_base_width_of_integral_numbers_is_still_taken():
  rates = models.mlp_lr_multipliers((128, 128), "adam", parametrization="mup", base_width=64.0)
  assert rates == models.mlp_lr_multipliers(
    (128, 128), "adam", parametrization="mup", base_width=(64, np.int64(64))
  )
  assert rates["dense_1"]["weight"] == 0.5  # 1 / (128 / 64)
