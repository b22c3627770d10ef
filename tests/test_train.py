"""The training core: one jitted scan, theory on the quadratic, divergence, determinism."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from lrlab import optimizers, schedules, tasks, train, transforms


@pytest.fixture(scope="module")
def quadratic():
  return tasks.get("quadratic")


def _gd(task, lr, steps=1000, **kwargs):
  return train.train(
    task,
    optax.sgd(lr),
    steps=steps,
    batch_size=None,
    key=jax.random.key(0),
    eval_every=100,
    **kwargs,
  )


def test_gradient_descent_converges_below_two_over_L(quadratic):
  history = _gd(quadratic, 0.95 * 2 / quadratic.L)
  assert not history.diverged and history.diverged_step == -1
  # Every eigen-direction contracts by at most max(|1 - lr L|, 1 - lr mu) = 0.981 per step.
  assert history.val_loss[-1] < 1e-6 * history.val_loss[0]


def test_gradient_descent_diverges_above_two_over_L_and_is_frozen(quadratic):
  history = _gd(quadratic, 1.05 * 2 / quadratic.L)
  assert history.diverged
  step = int(history.diverged_step)
  assert 0 < step < 1000
  # Frozen from the diverging step on: held-out loss finite and constant after it.
  after = history.val_loss[history.step > step]
  assert np.all(np.isfinite(after)) and np.all(after == after[0])


def test_fastest_constant_rate_is_two_over_L_plus_mu(quadratic):
  # Theory: at lr = 2/(L+mu) every eigen-direction contracts by at most
  # (kappa-1)/(kappa+1) per step, the best worst case of any constant rate; the
  # loss (quadratic in the error) then shrinks by that factor squared per step.
  best = 2 / (quadratic.L + quadratic.mu)
  kappa = quadratic.L / quadratic.mu

  def loss_ratio_per_100_steps(lr):
    history = _gd(quadratic, lr, steps=400)
    return float(history.val_loss[-1] / history.val_loss[-2])

  at_best = loss_ratio_per_100_steps(best)
  np.testing.assert_allclose(at_best, ((kappa - 1) / (kappa + 1)) ** 200, rtol=0.25)
  assert at_best < loss_ratio_per_100_steps(0.8 * best)
  assert at_best < loss_ratio_per_100_steps(0.995 * 2 / quadratic.L)


def test_same_key_gives_bit_identical_history():
  task = tasks.get("digits-mlp")
  run = lambda: train.train(
    task, optax.adam(1e-3), steps=40, batch_size=32, key=jax.random.key(3), eval_every=20
  )
  first, second = run(), run()
  for a, b in zip(first, second, strict=True):
    np.testing.assert_array_equal(a, b)


def test_vmap_over_learning_rate_equals_loop(quadratic):
  train_fn = train.make_train_fn(quadratic, steps=50, batch_size=64, eval_every=25)
  key = jax.random.key(1)
  lrs = jnp.array([0.1, 1.0, 2.5])
  vmapped = jax.jit(jax.vmap(lambda lr: train_fn(optax.sgd(lr), key)))(lrs)
  run_one = jax.jit(lambda lr: train_fn(optax.sgd(lr), key))
  for i, lr in enumerate(lrs):
    member = jax.tree.map(lambda a, i=i: a[i], vmapped)
    chex.assert_trees_all_close(member, run_one(lr), rtol=1e-5)
  assert vmapped.diverged.tolist() == [False, False, True]


def test_diverging_neighbour_does_not_change_healthy_members(quadratic):
  train_fn = train.make_train_fn(quadratic, steps=100, batch_size=None, eval_every=50)
  run = jax.jit(jax.vmap(lambda lr: train_fn(optax.sgd(lr), jax.random.key(0))))
  alone = run(jnp.array([0.5, 1.0]))
  with_neighbour = run(jnp.array([0.5, 1.0, 50.0]))
  assert with_neighbour.diverged.tolist() == [False, False, True]
  for a, b in zip(alone, with_neighbour, strict=True):
    np.testing.assert_array_equal(a, b[:2])


def test_learning_rate_history_is_the_schedule_times_controller_scale(quadratic):
  schedule = schedules.cosine_annealing(0.5, 60)
  tx = optax.chain(transforms.scale_by_learning_rate(schedule))
  history = train.train(
    quadratic, tx, steps=60, batch_size=None, key=jax.random.key(0), eval_every=30
  )
  chex.assert_trees_all_close(history.learning_rate, schedule(jnp.arange(60)), rtol=1e-5, atol=1e-7)
  # A 50% relative threshold makes every evaluation after the first a bad one;
  # with patience 0 each bad one cuts the scale tenfold, down to PyTorch's eps.
  tx = optax.chain(
    transforms.scale_by_learning_rate(0.1),
    transforms.reduce_on_plateau(patience=0, threshold=0.5),
  )
  history = train.train(
    quadratic, tx, steps=20, batch_size=None, key=jax.random.key(0), eval_every=10
  )
  expected = 0.1 * np.maximum(10.0 ** -np.arange(20), 1e-8)
  np.testing.assert_allclose(history.learning_rate, expected, rtol=1e-5)


def test_applied_learning_rate_of_a_state_without_one_is_nan():
  assert np.isnan(train.applied_learning_rate(optax.sgd(0.1).init(jnp.zeros(2))))


def test_minibatches_are_epoch_permutations():
  indices = train.batch_indices(jax.random.key(0), 0, 7, 100, 30)  # 3 batches per epoch
  assert indices.shape == (7, 30)
  for epoch in range(2):
    seen = np.asarray(indices[3 * epoch : 3 * epoch + 3]).ravel()
    assert len(set(seen.tolist())) == 90
  assert not np.array_equal(indices[0], indices[3])


def test_minibatches_do_not_depend_on_segmentation():
  whole = train.batch_indices(jax.random.key(0), 0, 40, 100, 30)
  for first, length in [(0, 5), (5, 11), (16, 24), (39, 1)]:
    part = jax.jit(train.batch_indices, static_argnums=(2, 3, 4))(
      jax.random.key(0), first, length, 100, 30
    )
    np.testing.assert_array_equal(part, whole[first : first + length])


def test_segments_resume_exactly(quadratic):
  trainer = train.Trainer(quadratic, steps=60, batch_size=50, eval_every=10)
  tx, key = optax.adam(0.05), jax.random.key(2)
  train_fn = train.make_train_fn(quadratic, steps=60, batch_size=50, eval_every=10)
  expected = jax.jit(lambda: train_fn(tx, key))()
  state, first = trainer.init(tx, key)
  segment = jax.jit(lambda s, w: trainer.segment(tx, key, s, w, 2))
  parts = []
  for window in (0, 2, 4):
    state, part = segment(state, window)
    parts.append(part)
  joined = jax.tree.map(lambda *a: jnp.concatenate(a), *parts)
  chex.assert_trees_all_close(trainer.history(state, first, joined), expected, rtol=1e-6)


def test_steps_to_target():
  history = train.History(
    step=jnp.array([0, 10, 20, 30]),
    train_loss=jnp.array([3.0, 2.0, 1.0, 0.5]),
    val_loss=jnp.array([[3.0, 2.0, 1.0, 0.5], [3.0, 2.9, 2.8, 2.7]]),
    val_accuracy=jnp.array([0.1, 0.5, 0.9, 0.95]),
    test_loss=jnp.zeros(4),
    test_accuracy=jnp.zeros(4),
    learning_rate=jnp.zeros(30),
    diverged=jnp.bool_(False),
    diverged_step=jnp.int32(-1),
  )
  assert train.steps_to_target(history, "val_loss", 1.0).tolist() == [20.0, np.inf]
  assert float(train.steps_to_target(history, "val_accuracy", 0.9)) == 20.0
  assert float(train.steps_to_target(history, "train_loss", 10.0)) == 0.0
  with pytest.raises(ValueError, match="metric"):
    train.steps_to_target(history, "learning_rate", 0.1)


@pytest.mark.parametrize(
  ("kwargs", "argument"),
  [
    (dict(steps=0), "steps"),
    (dict(steps=-5), "steps"),
    (dict(eval_every=0), "eval_every"),
    (dict(eval_every=30), "eval_every"),
    (dict(eval_every=200), "eval_every"),
    (dict(batch_size=10_000), "batch_size"),
    (dict(batch_size=0), "batch_size"),
    (dict(divergence_factor=0.5), "divergence_factor"),
    (dict(divergence_factor=None), "^divergence_factor must be a number or an array; got None"),
    (dict(steps=2**31, eval_every=2**30), r"^steps must be a positive integer below 2\*\*31"),
    (dict(divergence_factor="10"), "^divergence_factor must be a number > 1; got '10'"),
  ],
)
def test_bad_arguments(quadratic, kwargs, argument):
  arguments = dict(steps=100, batch_size=None, eval_every=50) | kwargs
  with pytest.raises(ValueError, match=argument):
    train.make_train_fn(quadratic, **arguments)


def test_more_folds_than_examples_and_a_batch_larger_than_the_set_are_one_line(quadratic):
  # Both used to go on: folds=5000 trained and validated on empty folds (val loss 26.97),
  # a batch of 20 from 10 examples divided by zero epochs.
  with pytest.raises(ValueError, match=r"^folds must be at most the 1250 training and valid"):
    train.Trainer(quadratic, steps=100, batch_size=None, eval_every=50, folds=5000)
  with pytest.raises(ValueError, match=r"^batch_size must be an integer in \[1, num_train=10\]"):
    train.batch_indices(jax.random.key(0), 0, 4, 10, 20)


def test_schedule_free_runs_are_evaluated_at_the_averaged_point(quadratic):
  tx = optimizers.schedule_free_sgd(0.5)
  history = train.train(
    quadratic, tx, steps=30, batch_size=None, key=jax.random.key(0), eval_every=30
  )
  # Replay the run by hand: x (the average) is what must be evaluated, not y.
  params, model_state = quadratic.init(jax.random.split(jax.random.key(0))[0])
  state = tx.init(params)
  for _ in range(30):
    grads = jax.grad(lambda p: quadratic.loss(p, model_state, None, None)[0])(params)
    updates, state = tx.update(grads, state, params, value=0.0)
    params = optax.apply_updates(params, updates)
  x = transforms.eval_params(state, params)
  assert not np.allclose(x, params)
  at_x = quadratic.evaluate(x, model_state, "val")["loss"]
  np.testing.assert_allclose(history.val_loss[-1], at_x, rtol=1e-4)
  assert (
    abs(float(history.val_loss[-1] - quadratic.evaluate(params, model_state, "val")["loss"])) > 1e-6
  )


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_all_finite_finds_one_bad_entry_in_any_leaf(bad):
  tree = {"a": jnp.ones((3, 4)), "b": [jnp.zeros(5, jnp.bfloat16), jnp.arange(3.0)]}
  assert bool(train.all_finite(tree))
  for path in (("a",), ("b", 0), ("b", 1)):
    leaf = tree[path[0]] if len(path) == 1 else tree[path[0]][path[1]]
    spoiled = leaf.ravel().at[-1].set(bad).reshape(leaf.shape)
    broken = jax.tree.map(lambda x: x, tree)
    if len(path) == 1:
      broken[path[0]] = spoiled
    else:
      broken[path[0]][path[1]] = spoiled
    assert not bool(train.all_finite(broken)), path
  # float16 entries are summed in float32: 100 * 6e4 is past float16's range, not float32's.
  assert bool(train.all_finite(jnp.full(100, 6e4, jnp.float16)))
  # The documented exception: finite entries whose float32 sum overflows.
  assert not bool(train.all_finite(jnp.full(1000, 3e37, jnp.float32)))
  assert bool(train.all_finite({}))
  # Complex entries: a non-finite imaginary part counts too.
  assert bool(train.all_finite(jnp.array([1 + 2j, 3 - 1j])))
  assert not bool(train.all_finite(jnp.array([1 + 2j, 1 + 1j * bad])))
