"""Tests for lrlab.transforms.reduce_on_plateau."""

import functools

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from lrlab.transforms import ReduceOnPlateauState, reduce_on_plateau

LENGTH = 120  # every scripted torch comparison has this length, so it compiles once per mode


@functools.cache
def _runner(mode: str, threshold_mode: str):
  """A jitted scan returning the scale after each value; hyperparameters are traced."""

  def run(values, hp):
    tx = reduce_on_plateau(mode=mode, threshold_mode=threshold_mode, **hp)
    ones = jnp.ones(2)

    def step(state, value):
      updates, state = tx.update(ones, state, value=value)
      return state, (state.scale, updates, state.best)

    _, (scales, updates, best) = jax.lax.scan(step, tx.init(ones), values)
    return scales, updates, best

  return jax.jit(run)


def _traced_hp(**overrides):
  """Hyperparameters as arrays (ints as int32), defaults PyTorch's."""
  hp = dict(
    gamma=0.1,
    patience=10,
    threshold=1e-4,
    cooldown=0,
    min_scale=0.0,
    eps=1e-8,
    accumulation_steps=1,
  )
  hp.update(overrides)
  return {
    k: jnp.asarray(v, jnp.int32 if isinstance(v, int) else jnp.float32) for k, v in hp.items()
  }


def plateau_scales(values, *, mode="min", threshold_mode="rel", **hp):
  scales, updates, best = _runner(mode, threshold_mode)(
    jnp.asarray(values, jnp.float32), _traced_hp(**hp)
  )
  chex.assert_trees_all_close(updates, jnp.broadcast_to(scales[:, None], updates.shape))
  return np.asarray(scales), np.asarray(best)


def torch_scales(values, **kwargs):
  """lr / base_lr of torch's ReduceLROnPlateau after each ``step(value)`` (base_lr = 1).

  Takes PyTorch's argument names, except lrlab's ``gamma`` for PyTorch's ``factor``.
  """
  torch = pytest.importorskip("torch")
  if "gamma" in kwargs:
    kwargs["factor"] = kwargs.pop("gamma")
  param = torch.nn.Parameter(torch.zeros(1))
  optimizer = torch.optim.SGD([param], lr=1.0)
  scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, **kwargs)
  lrs = []
  for value in values:
    scheduler.step(float(value))
    lrs.append(optimizer.param_groups[0]["lr"])
  return np.asarray(lrs)


def _noisy_plateaus(seed: int, length: int = LENGTH) -> np.ndarray:
  """A positive loss that falls, stalls and wobbles; on a 1/32 grid, so ties happen."""
  rng = np.random.default_rng(seed)
  t = np.arange(length)
  loss = 1.0 + 3.0 * np.exp(-t / 15.0) + 0.15 * rng.standard_normal(length)
  return np.maximum(np.round(loss * 32) / 32, 1 / 32)


TORCH_CASES = [
  # (seed, mode, threshold_mode, factor, patience, cooldown, threshold, min_lr, eps)
  (0, "min", "rel", 0.1, 10, 0, 1e-4, 0.0, 1e-8),  # PyTorch's defaults
  (1, "min", "rel", 0.5, 2, 1, 0.0173, 0.01, 1e-8),
  (2, "min", "abs", 0.3, 0, 2, 0.037, 0.001, 1e-8),
  (3, "max", "rel", 0.5, 3, 0, 0.0173, 0.05, 1e-8),
  (4, "max", "abs", 0.7, 1, 3, 0.037, 0.2, 1e-8),
  (5, "min", "rel", 0.5, 1, 0, 1e-4, 0.3, 1e-8),  # runs into min_lr
  (6, "min", "abs", 0.5, 0, 0, 0.0, 0.0, 0.3),  # eps stops the reductions at 0.5
]


@pytest.mark.parametrize("case", TORCH_CASES)
def test_matches_torch_on_positive_losses(case):
  seed, mode, threshold_mode, factor, patience, cooldown, threshold, min_lr, eps = case
  values = _noisy_plateaus(seed)
  if mode == "max":  # an accuracy-like curve that rises and stalls
    values = 5.0 - values
  expected = torch_scales(
    values,
    mode=mode,
    factor=factor,
    patience=patience,
    threshold=threshold,
    threshold_mode=threshold_mode,
    cooldown=cooldown,
    min_lr=min_lr,
    eps=eps,
  )
  scales, _ = plateau_scales(
    values,
    mode=mode,
    threshold_mode=threshold_mode,
    gamma=factor,
    patience=patience,
    cooldown=cooldown,
    threshold=threshold,
    min_scale=min_lr,
    eps=eps,
  )
  assert len(np.unique(expected)) >= 2, "the scripted case should reduce"
  np.testing.assert_allclose(scales, expected, rtol=1e-6)


def test_matches_torch_for_negative_losses_where_the_rules_agree():
  # With an absolute threshold (or a zero one) both rules agree for every sign.
  values = _noisy_plateaus(7) - 3.0
  for threshold_mode, threshold in [("abs", 0.037), ("rel", 0.0)]:
    kwargs = dict(gamma=0.5, patience=2, cooldown=1, threshold=threshold)
    expected = torch_scales(values, threshold_mode=threshold_mode, **kwargs)
    scales, _ = plateau_scales(values, threshold_mode=threshold_mode, **kwargs)
    np.testing.assert_allclose(scales, expected, rtol=1e-6)


def test_hand_written_sequence():
  losses = [5, 4, 4, 4, 4, 4, 4, 3, 3, 3, 3]
  # t4: 3 bad evaluations > patience 2 -> halve, cooldown 1 swallows t5's bad
  # evaluation; t7 improves; t8..t10 are bad again -> halve at t10.
  expected = [1, 1, 1, 1, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.25]
  tx = reduce_on_plateau(gamma=0.5, patience=2, cooldown=1)
  state = tx.init(jnp.zeros(1))
  scales = []
  for loss in losses:
    _, state = tx.update(jnp.ones(1), state, value=loss)
    scales.append(float(state.scale))
  assert scales == expected
  assert float(state.best) == 3.0
  assert int(state.evaluation_count) == len(losses)


def test_flat_negative_loss_is_reduced_unlike_torch():
  values = np.full(LENGTH, -1.0)
  scales, _ = plateau_scales(values, patience=2)
  # Evaluations 1, 2, 3 are bad; the third exceeds patience 2.
  np.testing.assert_allclose(scales[:5], [1, 1, 1, 0.1, 0.1], rtol=1e-6)
  assert scales[-1] < 2e-8  # reduced until a step would change it by less than eps = 1e-8
  # PyTorch compares -1 < -1 * (1 - 1e-4) = -0.9999: always "better", never reduces.
  assert np.all(torch_scales(values, patience=2) == 1.0)


def test_flat_zero_loss_is_reduced():
  scales, best = plateau_scales(np.zeros(LENGTH), patience=2, gamma=0.5)
  np.testing.assert_allclose(scales[:5], [1, 1, 1, 0.5, 0.5])
  np.testing.assert_allclose(scales, torch_scales(np.zeros(LENGTH), patience=2, factor=0.5))
  assert np.all(best == 0.0)


def test_max_mode_flat_negative_accuracy_is_reduced():
  scales, _ = plateau_scales(np.full(LENGTH, -2.0), mode="max", patience=0, gamma=0.5)
  np.testing.assert_allclose(scales[:3], [1, 0.5, 0.25])


def test_accumulation_steps_average_the_values():
  values = [4.0, 2.0, 3.0, 3.0, 3.0, 3.0, 1.0, 1.0]
  # Means of pairs: 3, 3, 3, 1 -> the third (bad twice, patience 1) halves the scale.
  tx = reduce_on_plateau(gamma=0.5, patience=1, accumulation_steps=2)
  state = tx.init(jnp.zeros(1))
  scales = []
  for value in values:
    _, state = tx.update(jnp.ones(1), state, value=value)
    scales.append(float(state.scale))
  assert scales == [1, 1, 1, 1, 1, 0.5, 0.5, 0.5]
  assert float(state.best) == 1.0
  assert int(state.evaluation_count) == 4
  means = np.asarray(values).reshape(-1, 2).mean(axis=1)
  np.testing.assert_allclose(scales[1::2], torch_scales(means, factor=0.5, patience=1))


def test_accumulation_steps_may_be_traced():
  values = jnp.asarray(_noisy_plateaus(8))
  hp = dict(gamma=0.5, patience=1, threshold=0.0173)

  def run(steps):
    return plateau_scales(values, accumulation_steps=steps, **hp)[0]

  traced = jax.vmap(
    lambda steps: _runner("min", "rel")(values, {**_traced_hp(**hp), "accumulation_steps": steps})[
      0
    ]
  )(jnp.array([1, 3, 4], jnp.int32))
  for row, steps in zip(traced, [1, 3, 4], strict=True):
    np.testing.assert_allclose(row, run(steps))
  # With a window of 3 the scale only changes on every third call.
  changes = np.flatnonzero(np.diff(np.asarray(traced[1]))) + 1
  assert changes.size > 0 and np.all(changes % 3 == 2)


def test_vmap_over_hyperparameters_equals_a_python_loop():
  values = jnp.asarray(_noisy_plateaus(9, 60))
  factors = jnp.array([0.1, 0.5, 0.8])
  patiences = jnp.array([0, 2, 5], jnp.int32)

  def run(factor, patience):
    tx = reduce_on_plateau(gamma=factor, patience=patience, cooldown=1)

    def step(state, value):
      _, state = tx.update(jnp.ones(3), state, value=value)
      return state, state.scale

    return jax.lax.scan(step, tx.init(jnp.ones(3)), values)[1]

  vmapped = jax.jit(jax.vmap(run, in_axes=(0, 0)))(factors, patiences)
  for i, (factor, patience) in enumerate([(0.1, 0), (0.5, 2), (0.8, 5)]):
    np.testing.assert_allclose(vmapped[i], jax.jit(run, static_argnums=(0, 1))(factor, patience))
  assert len(set(np.asarray(vmapped[:, -1]).tolist())) == 3


class JitTest(chex.TestCase):
  @chex.variants(with_jit=True, without_jit=True)
  def test_jit_and_no_jit_agree_and_chain_with_optax(self):
    tx = optax.chain(optax.sgd(1.0), reduce_on_plateau(gamma=0.5, patience=0))
    params = {"w": jnp.ones(2), "b": jnp.zeros(())}
    grads = {"w": jnp.array([1.0, -2.0]), "b": jnp.array(3.0)}
    update = self.variant(tx.update)
    state = tx.init(params)
    for loss in [2.0, 2.0, 2.0]:
      updates, state = update(grads, state, params, value=jnp.asarray(loss))
    assert isinstance(state[1], ReduceOnPlateauState)
    chex.assert_trees_all_close(updates, jax.tree.map(lambda g: -0.25 * g, grads))
    assert state[1].num_bad_evaluations.dtype == jnp.int32


def test_non_finite_losses_count_as_bad_and_never_become_best():
  values = [1.0, np.nan, np.inf, -np.inf, 0.5, np.nan, 0.25]
  tx = reduce_on_plateau(gamma=0.5, patience=1)
  state = tx.init(jnp.zeros(1))
  scales, bests = [], []
  for value in values:
    _, state = tx.update(jnp.ones(1), state, value=value)
    scales.append(float(state.scale))
    bests.append(float(state.best))
  # nan, inf: two bad evaluations > patience 1 -> halve; -inf is bad again.
  assert scales == [1, 1, 0.5, 0.5, 0.5, 0.5, 0.5]
  assert bests == [1, 1, 1, 1, 0.5, 0.5, 0.25]
  # PyTorch would take -inf as its best (-inf < 1 * (1 - 1e-4)) and never improve again.


def test_non_finite_value_in_a_window_spoils_only_that_evaluation():
  tx = reduce_on_plateau(patience=0, gamma=0.5, accumulation_steps=2)
  state = tx.init(jnp.zeros(1))
  for value in [2.0, 2.0, np.nan, 1.0, 1.0, 1.0]:
    _, state = tx.update(jnp.ones(1), state, value=value)
  assert float(state.best) == 1.0
  assert float(state.scale) == 0.5
  assert float(state.accumulated_value) == 0.0


def test_non_finite_updates_pass_through_scaled():
  tx = reduce_on_plateau(patience=0, gamma=0.5)
  state = tx.init(jnp.zeros(2))
  _, state = tx.update(jnp.ones(2), state, value=1.0)
  updates, state = tx.update(jnp.array([np.nan, 4.0]), state, value=1.0)
  assert np.isnan(updates[0]) and float(updates[1]) == 2.0
  chex.assert_tree_all_finite(state)


def test_keeps_the_update_dtype():
  tx = reduce_on_plateau(patience=0)
  state = tx.init(jnp.zeros(2, jnp.bfloat16))
  updates, _ = tx.update(jnp.ones(2, jnp.bfloat16), state, value=1.0)
  assert updates.dtype == jnp.bfloat16


def test_rejects_a_batch_of_losses():
  tx = reduce_on_plateau()
  with pytest.raises(ValueError, match="value must be a scalar"):
    tx.update(jnp.ones(1), tx.init(jnp.zeros(1)), value=jnp.ones(3))


@pytest.mark.parametrize(
  ("name", "value"),
  [
    ("gamma", 0.0),
    ("gamma", 1.0),
    ("gamma", -0.5),
    ("gamma", float("nan")),
    ("patience", -1),
    ("patience", 1.5),
    ("threshold", -1e-4),
    ("threshold_mode", "relative"),
    ("cooldown", -2),
    ("min_scale", -0.1),
    ("min_scale", 1.5),
    ("eps", -1e-8),
    ("mode", "minimize"),
    ("accumulation_steps", 0),
    ("accumulation_steps", 2.5),
  ],
)
def test_bad_arguments_raise(name, value):
  with pytest.raises(ValueError, match=name):
    reduce_on_plateau(**{name: value})
