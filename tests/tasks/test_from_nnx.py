"""A researcher's own NNX model (BatchNorm, Dropout, LayerNorm, attention) through train, sweep
and the finder, checked against a hand-written Flax NNX loop."""

import functools

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx

import lrlab
from tests import zoo

KEY = jax.random.key(0)


@pytest.fixture(scope="module")
def cnn():
  return zoo.cnn_task(dropout=0.0)


def _final_state(task, tx, *, steps, batch_size=32, key=KEY):
  """The run's final :class:`lrlab.train.RunState` and its history."""
  trainer = lrlab.train.Trainer(task, steps=steps, batch_size=batch_size, eval_every=steps)

  def run(key):
    state, first = trainer.init(tx, key)
    state, segment = trainer.segment(tx, key, state, 0, 1)
    return state, trainer.history(state, first, segment)

  return jax.jit(run)(key)


def test_state_is_split_into_params_and_batch_statistics(cnn):
  params, model_state = cnn.init(KEY)
  assert sorted(model_state) == ["norm_0", "norm_1"]
  assert sorted(model_state["norm_0"]) == ["mean", "var"]
  assert "norm_0" in params and sorted(params["norm_0"]) == ["bias", "scale"]
  np.testing.assert_array_equal(model_state["norm_1"]["var"], np.ones(8))


def test_train_equals_a_hand_written_nnx_loop(cnn):
  """Dropout off: 200 steps of lrlab.train against nnx.Optimizer with model.train()/eval()."""
  steps, batch_size, tx = 200, 32, optax.sgd(0.05, momentum=0.9)
  state, history = _final_state(cnn, tx, steps=steps, batch_size=batch_size)

  init_key, data_key = jax.random.split(KEY)
  model = zoo.BatchNormCNN(dropout=0.0, rngs=nnx.Rngs(init_key))
  optimizer = nnx.Optimizer(model, tx, wrt=nnx.Param)
  x, y = (jnp.asarray(a) for a in cnn.dataset.split("train"))
  order = lrlab.train.batch_indices(data_key, 0, steps, cnn.num_train, batch_size)

  @nnx.jit
  def step(model, optimizer, x, y):
    loss = lambda m: optax.softmax_cross_entropy_with_integer_labels(m(x), y).mean()
    value, grads = nnx.value_and_grad(loss)(model)
    optimizer.update(model, grads)
    return value

  model.train()
  losses = [step(model, optimizer, x[rows], y[rows]) for rows in order]
  model.eval()
  x_val, y_val = cnn.dataset.split("val")
  val_loss = optax.softmax_cross_entropy_with_integer_labels(model(x_val), y_val).mean()

  # Two compiled programs round differently, and 200 steps of momentum SGD amplify it: the
  # largest difference in a weight was under 2e-5 on the Xeon VM and 1.0e-4 on a 2-core AMD
  # EPYC (weights of 0.01 to 1). A 1% change of the rate in the hand-written loop moves them
  # by more than 1e-3.
  tolerance = dict(rtol=2e-4, atol=3e-4)
  chex.assert_trees_all_close(
    state.params, nnx.to_pure_dict(nnx.state(model, nnx.Param)), **tolerance
  )
  chex.assert_trees_all_close(
    state.model_state, nnx.to_pure_dict(nnx.state(model, nnx.BatchStat)), **tolerance
  )
  np.testing.assert_allclose(history.train_loss[-1], np.mean(losses), rtol=1e-4)
  np.testing.assert_allclose(history.val_loss[-1], val_loss, rtol=1e-4)
  # The running statistics moved away from their initial (0, 1).
  assert float(jnp.abs(state.model_state["norm_0"]["mean"]).max()) > 1e-2


def test_evaluation_uses_running_statistics_whatever_the_batching(cnn):
  state, _ = _final_state(cnn, optax.adam(1e-2), steps=50)
  evaluate = lambda size: cnn.evaluate(state.params, state.model_state, "val", batch_size=size)
  whole = evaluate(None)
  for size in (7, 32, 100):
    chex.assert_trees_all_close(evaluate(size), whole, rtol=1e-5, atol=1e-6)
  # Batch statistics (training mode) would make the loss depend on the batch: they differ.
  x, y = cnn.split("val")
  in_training_mode = cnn.loss(state.params, state.model_state, (x[:7], y[:7]), KEY)[0]
  in_eval_mode = cnn.eval_loss(state.params, state.model_state, (x[:7], y[:7]))[0]
  assert abs(float(in_training_mode - in_eval_mode)) > 1e-3


def test_dropout_is_reproducible_and_changes_with_the_key():
  task = zoo.cnn_task(dropout=0.5, num_train=256)
  train_fn = lrlab.train.make_train_fn(task, steps=20, batch_size=32, eval_every=10)
  run = jax.jit(lambda key: train_fn(optax.adam(1e-3), key))
  first, again, other = run(KEY), run(KEY), run(jax.random.key(1))
  assert zoo.tree_equal(first, again)
  assert not np.array_equal(first.train_loss[1:], other.train_loss[1:])
  # The masks are drawn per step: a key of step 0 and step 1 differ.
  assert not np.array_equal(
    jax.random.key_data(lrlab.train.step_key(KEY, 0)),
    jax.random.key_data(lrlab.train.step_key(KEY, 1)),
  )


def test_members_of_a_seed_share_dropout_masks():
  """Two members with the same rate are bit-identical only if they drew the same masks."""
  task = zoo.cnn_task(dropout=0.5, num_train=256)
  result = lrlab.sweep.run(
    task,
    lambda hp: lrlab.optimizers.adam(hp["lr"]),
    {"lr": np.array([1e-3, 1e-3, 3e-3])},
    steps=20,
    batch_size=32,
    key=KEY,
    eval_every=10,
    chunk_size=3,
    progress=False,
  )
  twin = lambda k: jax.tree.map(lambda a: a[0, k], result.history)
  assert zoo.tree_equal(twin(0), twin(1))
  assert not np.array_equal(twin(0).train_loss, twin(2).train_loss)


@pytest.mark.parametrize("build", [zoo.cnn_task, zoo.transformer_task], ids=["cnn", "transformer"])
def test_sweep_member_equals_a_single_run(build):
  """Dropout on: a member's masks are the single run's (else the losses would differ by far
  more than the float rounding of a vmapped convolution, amplified over 20 Adam steps)."""
  task = build()
  lrs = np.array([3e-3, 1e-2])
  result = lrlab.sweep.run(
    task,
    lambda hp: lrlab.optimizers.adam(hp["lr"]),
    {"lr": lrs},
    steps=20,
    batch_size=32,
    key=KEY,
    eval_every=10,
    chunk_size=2,
    progress=False,
  )
  train_fn = lrlab.train.make_train_fn(task, steps=20, batch_size=32, eval_every=10)
  alone = jax.jit(
    jax.vmap(lambda lr: train_fn(lrlab.optimizers.adam(lr), jax.random.fold_in(KEY, 0)))
  )
  single = jax.device_get(alone(jnp.asarray(lrs, jnp.float32)))
  chex.assert_trees_all_close(
    jax.tree.map(lambda a: a[0], result.history), single, rtol=1e-4, atol=1e-5
  )
  # Both models learn the digits in 20 steps: the better rate is well above chance (10%).
  assert float(result.history.val_accuracy[0, :, -1].max()) > 0.3


def test_divergence_leaves_batchnorm_neighbours_bit_identical():
  task = zoo.cnn_task(dropout=0.2, num_train=256)
  make_tx = lambda hp: lrlab.optimizers.sgd(hp["lr"], momentum=0.9)
  run = lambda lrs: (
    lrlab.sweep.run(
      task,
      make_tx,
      {"lr": np.array(lrs)},
      steps=20,
      batch_size=32,
      key=KEY,
      eval_every=10,
      chunk_size=4,
      progress=False,
    ).history
  )
  healthy, mixed = run([0.01, 0.03, 0.1, 0.05]), run([0.01, 0.03, 1e4, 0.05])
  assert mixed.diverged[0].tolist() == [False, False, True, False]
  kept = [0, 1, 3]
  for field in ("val_loss", "train_loss", "test_loss", "val_accuracy", "learning_rate"):
    np.testing.assert_array_equal(getattr(mixed, field)[0, kept], getattr(healthy, field)[0, kept])
  assert np.all(np.isfinite(mixed.val_loss))


@pytest.mark.parametrize("build", [zoo.cnn_task, zoo.transformer_task], ids=["cnn", "transformer"])
def test_the_finder_runs_on_stateful_models(build):
  found = lrlab.finder.find_lr(build(), "adam", batch_size=32, key=KEY, end_lr=10.0)
  assert found.num_recorded > 50
  # The loss fell from its start (about log 10) on the way up the rates.
  assert np.nanmin(found.smoothed) < found.smoothed[0] - 0.1
  assert 1e-5 < found.suggestions["minimum"] < 10.0


def test_a_loss_of_the_wrong_shape_is_refused_before_training():
  with pytest.raises(ValueError, match=r"loss must return one value per example, shape \(2,\)"):
    lrlab.tasks.from_nnx(
      lambda rngs: zoo.BatchNormCNN(rngs=rngs),
      zoo.digits(),
      loss=lambda outputs, targets: jnp.mean(outputs),
      name="bad",
    )


class _Counter(nnx.Variable):
  pass


class _WithText(nnx.Module):
  def __init__(self, rngs):
    self.linear = nnx.Linear(64, 10, rngs=rngs)
    self.label = _Counter("not an array")

  def __call__(self, x):
    return self.linear(x)


class _IntegerParams(nnx.Module):
  def __init__(self, rngs):
    self.table = nnx.Param(jnp.zeros((64, 10), jnp.int32))

  def __call__(self, x):
    return x @ self.table.value


@pytest.mark.parametrize(
  "module, match",
  [
    (_WithText, r"state beyond parameters .* are arrays.*got a str at label"),
    (_IntegerParams, r"parameters \(nnx.Param\) are floating-point .* int32 at table"),
  ],
)
def test_state_lrlab_cannot_carry_is_named(module, match):
  with pytest.raises(ValueError, match=match):
    lrlab.tasks.from_nnx(module, zoo.digits(), loss="cross_entropy", name="bad")


@pytest.mark.parametrize(
  "kwargs, match",
  [
    (dict(loss="hinge"), r"loss must be one of 'cross_entropy', 'mse' or a callable"),
    (dict(loss="cross_entropy", metrics={"loss": zoo.jnp.abs}), r"metrics must map names other"),
  ],
)
def test_bad_arguments(kwargs, match):
  with pytest.raises(ValueError, match=match):
    lrlab.tasks.from_nnx(
      lambda rngs: lrlab.models.MLP(64, (8,), 10, rngs=rngs), zoo.digits(), name="t", **kwargs
    )


def test_a_model_that_does_not_take_the_data_is_named_with_the_examples_shape():
  # An MLP of 5 inputs on digits' 64 features used to fail with einsum's own message.
  with pytest.raises(ValueError, match=r"^model must accept the dataset's examples, x \(\d+, 64\)"):
    lrlab.tasks.from_nnx(
      lambda rngs: lrlab.models.MLP(5, (8,), 10, rngs=rngs), zoo.digits(), name="t",
      loss="cross_entropy",
    )  # fmt: skip


def test_cross_entropy_needs_classes_and_mse_matches_torch_convention():
  x = np.random.default_rng(0).normal(size=(50, 3)).astype(np.float32)
  regression = lrlab.data.from_arrays(x, x[:, :2] * 2.0)
  make = lambda rngs: lrlab.models.Linear(3, 2, rngs=rngs)
  with pytest.raises(ValueError, match="needs a classification dataset"):
    lrlab.tasks.from_nnx(make, regression, loss="cross_entropy", name="r")
  outputs, targets = jnp.asarray(x[:4, :2]), jnp.zeros((4, 2))
  np.testing.assert_allclose(lrlab.tasks.mse(outputs, targets), np.mean(x[:4, :2] ** 2, axis=1))


def _classes(k=10, n=120):
  rng = np.random.default_rng(0)
  return lrlab.data.from_arrays(rng.normal(size=(n, 5)), rng.integers(0, k, n), num_classes=k)


def test_fewer_logits_than_classes_is_refused_before_training():
  # 9 logits for 10 classes: the tenth class's log-probability read as NaN, and every member
  # of a sweep "diverged" at step 0.
  with pytest.raises(
    ValueError, match=r"a logit for each of the 10 classes .* got outputs \(2, 9\)"
  ):
    lrlab.tasks.from_nnx(lambda rngs: nnx.Linear(5, 9, rngs=rngs), _classes(), name="t",
                         loss="cross_entropy")  # fmt: skip


def test_a_loss_that_cannot_take_the_outputs_is_one_line_naming_the_shapes():
  rng = np.random.default_rng(0)
  labels = lrlab.data.from_arrays(rng.normal(size=(60, 5)), rng.integers(0, 2, (60, 1)),
                                  num_classes=2)  # fmt: skip
  with pytest.raises(
    ValueError, match=r"^loss must take the model's outputs \(2, 2\) .* \(2, 1\)"
  ) as raised:
    lrlab.tasks.from_nnx(lambda rngs: nnx.Linear(5, 2, rngs=rngs), labels, name="t",
                         loss="cross_entropy")  # fmt: skip
  # (n, 1) labels, a column of a table: the inner error ("3 vs. 2") said nothing of the fix.
  assert str(raised.value).endswith("(flatten the labels to shape (n,), one class per example)")
  assert "\n" not in str(raised.value)


@pytest.mark.parametrize("keyword_only", [True, False])
def test_constructors_whose_rngs_is_keyword_only_build_the_same_model(keyword_only):
  # NNX's own layers take rngs by keyword only: functools.partial(nnx.Linear, 5, 10) failed.
  make = (
    functools.partial(lrlab.models.MLP, 5, (8,), 10)
    if keyword_only
    else functools.partial(
      lambda rngs, width: lrlab.models.MLP(5, (width,), 10, rngs=rngs), width=8
    )
  )
  task = lrlab.tasks.from_nnx(make, _classes(), loss="cross_entropy", name="t")
  reference = lrlab.tasks.from_nnx(
    lambda rngs: lrlab.models.MLP(5, (8,), 10, rngs=rngs), _classes(), loss="cross_entropy",
    name="t",
  )  # fmt: skip
  key = jax.random.key(0)
  chex.assert_trees_all_equal(task.init(key), reference.init(key))


def test_a_built_module_is_refused_in_one_line():
  built = lrlab.models.MLP(5, (8,), 10, rngs=nnx.Rngs(0))
  with pytest.raises(ValueError, match=r"^make must be a callable .* got a built MLP instance"):
    lrlab.tasks.from_nnx(built, _classes(), loss="cross_entropy", name="t")


class _Bfloat16(nnx.Module):
  def __init__(self, rngs):
    self.linear = nnx.Linear(5, 10, param_dtype=jnp.bfloat16, dtype=jnp.bfloat16, rngs=rngs)

  def __call__(self, x):
    return self.linear(x)


def test_losses_of_bfloat16_logits_are_taken_and_averaged_in_float32():
  # In bfloat16 the mean loss kept 8 bits (2.656 for 2.659), tying nearby learning rates.
  task = lrlab.tasks.from_nnx(_Bfloat16, _classes(), loss="cross_entropy", name="t")
  params, state = task.init(jax.random.key(0))
  logits = task.model.apply(params, state, jnp.asarray(task.dataset.x_val), train=False)[0]
  assert logits.dtype == jnp.bfloat16
  labels = task.dataset.y_val
  want = optax.softmax_cross_entropy_with_integer_labels(logits.astype(jnp.float32), labels)
  got = task.evaluate(params, state, "val")["loss"]
  assert got.dtype == jnp.float32
  np.testing.assert_allclose(got, want.mean(), rtol=1e-6)


class _Embedding(nnx.Module):
  def __init__(self, rngs):
    self.embed = nnx.Embed(50, 4, rngs=rngs)
    self.head = nnx.Linear(12, 2, rngs=rngs)

  def __call__(self, x):
    return self.head(self.embed(x).reshape(x.shape[0], -1))


def test_integer_ids_reach_an_embedding():
  rng = np.random.default_rng(0)
  ids = rng.integers(0, 50, size=(120, 3))
  dataset = lrlab.data.from_arrays(ids, ids[:, 0] % 2, num_classes=2, x_dtype="int32")
  task = lrlab.tasks.from_nnx(_Embedding, dataset, loss="cross_entropy", name="t")
  history = lrlab.train.train(task, optax.adam(0.05), steps=60, batch_size=32, eval_every=60,
                              key=jax.random.key(0))  # fmt: skip
  assert float(history.val_accuracy[-1]) > 0.9  # the parity of the first id, learned


@pytest.mark.parametrize(("split", "value"), [("val", np.nan), ("train", np.inf)])
def test_a_hand_built_dataset_with_nan_is_refused_before_training(split, value):
  # A Dataset built by hand skips from_arrays' checks; one NaN pixel made every member's
  # val_loss NaN, silently (a streamed source at least warns).
  dataset = zoo.digits(64)
  arrays = {s: [a.copy() for a in dataset.split(s)] for s in ("train", "val", "test")}
  arrays[split][0][5, 3] = value
  bad = lrlab.data.Dataset(*arrays["train"], *arrays["val"], *arrays["test"], num_classes=10)
  make = lambda rngs: nnx.Linear(64, 10, rngs=rngs)
  with pytest.raises(ValueError, match=rf"x_{split} must be finite; .* at index \(5, 3\)"):
    lrlab.tasks.from_nnx(make, bad, loss="cross_entropy", name="lin")
  lrlab.tasks.from_nnx(make, dataset, loss="cross_entropy", name="lin")  # the clean data are taken


class _LogitsAndFeatures(nnx.Module):
  def __init__(self, rngs):
    self.linear = nnx.Linear(5, 10, rngs=rngs)

  def __call__(self, x):
    return self.linear(x), x


def test_a_model_of_several_outputs_is_named_for_a_built_in_loss_and_for_accuracy():
  # A model returning (logits, features) raised AttributeError ('tuple' object has no attribute
  # 'shape') from from_nnx; under a callable loss, accuracy's argmax failed once a run was traced.
  with pytest.raises(ValueError, match=r"^loss 'cross_entropy' needs the model to return one arr"):
    lrlab.tasks.from_nnx(_LogitsAndFeatures, _classes(), loss="cross_entropy", name="t")
  loss = lambda outputs, targets: lrlab.tasks.cross_entropy(outputs[0], targets)
  with pytest.raises(ValueError, match=r"^metric 'accuracy' must take the model's outputs a tuple"):
    lrlab.tasks.from_nnx(_LogitsAndFeatures, _classes(), loss=loss, name="t")
  task = lrlab.tasks.from_nnx(  # the callable loss with a callable metric is taken
    _LogitsAndFeatures, _classes(), loss=loss, name="t",
    metrics={"accuracy": lambda outputs, targets: lrlab.tasks.accuracy(outputs[0], targets)},
  )  # fmt: skip
  params, state = task.init(jax.random.key(0))
  logits = task.model.apply(params, state, jnp.asarray(task.dataset.x_val), train=False)[0][0]
  want = np.mean(np.argmax(logits, axis=-1) == task.dataset.y_val)
  np.testing.assert_allclose(task.evaluate(params, state, "val")["accuracy"], want, rtol=1e-6)


def test_a_metric_that_cannot_take_the_outputs_is_named_before_training():
  # It failed only when train traced the run, with JAX's message and no metric named.
  # The probability of the true class, written for (n, 1) labels; these are (n,).
  p_true = lambda outputs, targets: jnp.take_along_axis(nnx.softmax(outputs), targets, -1)[:, 0]
  with pytest.raises(ValueError, match=r"^metric 'p_true' must take the model's outputs \(2, 10\)"):
    lrlab.tasks.from_nnx(lambda rngs: nnx.Linear(5, 10, rngs=rngs), _classes(), name="t",
                         loss="cross_entropy", metrics={"p_true": p_true})  # fmt: skip
