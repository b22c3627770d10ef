"""One training run as one compiled program: ``jit`` + ``lax.scan``, data resident on device.

The run is written as a pure function of ``(tx, key)`` so that a sweep can
``jax.vmap`` it over hyperparameters unchanged::

    run = lrlab.train.make_train_fn(task, steps=1000, batch_size=128, eval_every=100)
    histories = jax.jit(jax.vmap(lambda hp: run(make_tx(hp), key)))(grid)

Minibatches are drawn by index inside the scan from per-epoch permutations of
the training set (one permutation per epoch, derived from the key), so there is
no host round-trip per step. A run that diverges (a non-finite loss or
parameter, or a loss above ``divergence_factor`` times the initial training
loss) is frozen from that step on with ``jnp.where``: its parameters and
optimizer state stop changing, nothing non-finite escapes, and the step is
recorded.
"""

import math
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.typing import ArrayLike

from lrlab import _checks


class History(NamedTuple):
  """What one run measured. Under ``vmap`` every field gains a leading member axis.

  Evaluation points are step 0 (before training) and every ``eval_every`` steps
  after it, ``E = steps // eval_every + 1`` points in all.

  Attributes:
    step: ``(E,)`` int32, the number of updates made at each evaluation point.
    train_loss: ``(E,)`` mean minibatch loss over the window of steps ending at
      each evaluation point (at step 0: the loss on the whole training set).
    val_loss, val_accuracy, test_loss, test_accuracy: ``(E,)`` metrics of the
      held-out splits; accuracies are NaN for tasks that have none.
    learning_rate: ``(steps,)`` the learning rate applied at each step, read from
      the optimizer state (see :func:`applied_learning_rate`).
    diverged: bool, whether the run diverged and was frozen.
    diverged_step: int32, the first diverging step, or -1.
  """

  step: jax.Array
  train_loss: jax.Array
  val_loss: jax.Array
  val_accuracy: jax.Array
  test_loss: jax.Array
  test_accuracy: jax.Array
  learning_rate: jax.Array
  diverged: jax.Array
  diverged_step: jax.Array


METRICS = ("train_loss", "val_loss", "val_accuracy", "test_loss", "test_accuracy")


def applied_learning_rate(opt_state: Any) -> jax.Array:
  """The learning rate an lrlab optimizer state says it applied at its last update.

  The product of every ``learning_rate`` field (the rate of
  :func:`lrlab.transforms.scale_by_learning_rate` or of an adaptive rule that
  owns its rate) and every ``scale`` field (the multiplier of a loss-driven
  controller such as :func:`lrlab.transforms.reduce_on_plateau`) found in the
  state. A state with neither, such as one of Optax's own optimizers, gives NaN.

  Args:
    opt_state: the state of an optimizer (any nesting of tuples, NamedTuples,
      lists and dicts).

  Returns:
    A float32 scalar.
  """
  rates = []

  def visit(node):
    if isinstance(node, tuple) and hasattr(node, "_fields"):
      rates.extend(getattr(node, f) for f in ("learning_rate", "scale") if f in node._fields)
      children = tuple(node)
    elif isinstance(node, list | tuple):
      children = node
    elif isinstance(node, dict):
      children = node.values()
    else:
      return
    for child in children:
      visit(child)

  visit(opt_state)
  if not rates:
    return jnp.float32(jnp.nan)
  return math.prod(jnp.asarray(r, jnp.float32) for r in rates)


def _all_finite(tree: Any) -> jax.Array:
  leaves = jax.tree.leaves(tree)
  return jnp.all(jnp.stack([jnp.all(jnp.isfinite(x)) for x in leaves])) if leaves else True


def _epoch_indices(key: jax.Array, num_train: int, batch_size: int, steps: int) -> jax.Array:
  """``(steps, batch_size)`` example indices, a fresh permutation each epoch.

  The last partial batch of an epoch is dropped, as PyTorch's ``drop_last=True``.
  """
  per_epoch = num_train // batch_size
  epochs = -(-steps // per_epoch)
  keys = jax.random.split(key, epochs)
  permutations = jax.vmap(lambda k: jax.random.permutation(k, num_train))(keys)
  batches = permutations[:, : per_epoch * batch_size].reshape(epochs * per_epoch, batch_size)
  return batches[:steps]


def _check_run_arguments(task, steps, batch_size, eval_every, divergence_factor) -> None:
  for name, value in (("steps", steps), ("eval_every", eval_every)):
    if not isinstance(value, int | np.integer) or value <= 0:
      raise ValueError(f"{name} must be a positive integer; got {value!r}.")
  if steps % eval_every:
    raise ValueError(
      f"eval_every must divide steps so that every evaluation window has the same length; "
      f"got steps={steps}, eval_every={eval_every}."
    )
  num_train = task.dataset.num_train
  if batch_size is not None and (
    not isinstance(batch_size, int | np.integer) or not 0 < batch_size <= num_train
  ):
    raise ValueError(
      f"batch_size must be None (full batch) or an integer in [1, {num_train}] "
      f"(the training set of {task.name!r}); got {batch_size!r}."
    )
  _checks.check("divergence_factor", divergence_factor, lambda f: f > 1, "a number > 1")


def make_train_fn(
  task: Any,
  *,
  steps: int,
  batch_size: int | None,
  eval_every: int,
  divergence_factor: ArrayLike = 10.0,
) -> Callable[[optax.GradientTransformation, jax.Array], History]:
  """Build the pure function ``(tx, key) -> History`` of one training run.

  The returned function is traceable end to end: ``jit`` it, or ``vmap`` it over
  hyperparameters by building ``tx`` inside the mapped function. ``key`` is split
  into an initialization key and a data-order key, so two runs with the same key
  see the same initial parameters and the same minibatches (common random
  numbers across a sweep).

  Each step computes ``(loss, aux), grads`` on its minibatch, then
  ``tx.update(grads, state, params, value=loss)``, so loss-driven controllers
  receive the minibatch loss.

  Args:
    task: an :class:`lrlab.tasks.Task`.
    steps: number of updates, > 0.
    batch_size: examples per minibatch, or ``None`` for full-batch training.
    eval_every: steps between evaluations; must divide ``steps``.
    divergence_factor: a run diverges when its minibatch loss exceeds this
      multiple of the initial training loss (> 1; may be traced).

  Returns:
    ``train_fn(tx, key) -> History``.
  """
  _check_run_arguments(task, steps, batch_size, eval_every, divergence_factor)
  x_train, y_train = task.split("train")
  num_windows = steps // eval_every

  def evaluate(params):
    metrics = {}
    for split in ("val", "test"):
      result = task.evaluate(params, split)
      metrics[f"{split}_loss"] = jnp.asarray(result["loss"], jnp.float32)
      accuracy = result.get("accuracy", jnp.nan)
      metrics[f"{split}_accuracy"] = jnp.asarray(accuracy, jnp.float32)
    return metrics

  def train_fn(tx: optax.GradientTransformation, key: jax.Array) -> History:
    tx = optax.with_extra_args_support(tx)
    init_key, data_key = jax.random.split(key)
    params = task.init(init_key)
    opt_state = tx.init(params)
    initial_loss = jnp.asarray(task.evaluate(params, "train")["loss"], jnp.float32)
    threshold = divergence_factor * jnp.abs(initial_loss)
    if batch_size is None:
      indices = jnp.zeros((steps, 0), jnp.int32)  # unused: every step sees the whole set
    else:
      indices = _epoch_indices(data_key, x_train.shape[0], batch_size, steps)

    def step_fn(carry, inputs):
      params, opt_state, diverged, diverged_step = carry
      t, batch_indices = inputs
      batch = (x_train, y_train) if batch_size is None else (
          x_train[batch_indices], y_train[batch_indices])  # fmt: skip
      (loss, _), grads = jax.value_and_grad(task.loss, has_aux=True)(params, batch)
      updates, new_opt_state = tx.update(grads, opt_state, params, value=loss)
      new_params = optax.apply_updates(params, updates)
      bad = ~jnp.isfinite(loss) | (loss > threshold) | ~_all_finite(new_params)
      frozen = diverged | bad
      keep = lambda new, old: jax.tree.map(lambda n, o: jnp.where(frozen, o, n), new, old)
      carry = (
        keep(new_params, params),
        keep(new_opt_state, opt_state),
        frozen,
        jnp.where(bad & ~diverged, t, diverged_step),
      )
      return carry, (loss.astype(jnp.float32), applied_learning_rate(new_opt_state))

    def window_fn(carry, window_inputs):
      carry, (losses, rates) = jax.lax.scan(step_fn, carry, window_inputs)
      return carry, (jnp.mean(losses), rates, evaluate(carry[0]))

    t = jnp.arange(steps, dtype=jnp.int32)
    windows = jax.tree.map(lambda a: a.reshape(num_windows, eval_every, *a.shape[1:]), (t, indices))
    carry = (params, opt_state, jnp.bool_(False), jnp.int32(-1))
    carry, (train_losses, rates, metrics) = jax.lax.scan(window_fn, carry, windows)
    first = evaluate(params)
    prepend = lambda a, b: jnp.concatenate([jnp.reshape(a, (1,)), b])
    return History(
      step=jnp.arange(num_windows + 1, dtype=jnp.int32) * eval_every,
      train_loss=prepend(initial_loss, train_losses),
      learning_rate=rates.reshape(steps),
      diverged=carry[2],
      diverged_step=carry[3],
      **{name: prepend(first[name], metrics[name]) for name in first},
    )

  return train_fn


def train(
  task: Any,
  tx: optax.GradientTransformation,
  *,
  steps: int,
  batch_size: int | None,
  key: jax.Array,
  eval_every: int,
  divergence_factor: ArrayLike = 10.0,
) -> History:
  """Train ``task`` with ``tx`` for ``steps`` updates as one jitted program.

  See :func:`make_train_fn` for the semantics; this compiles and runs it once.

  Args:
    task: an :class:`lrlab.tasks.Task`.
    tx: the optimizer (any ``optax.GradientTransformation``).
    steps: number of updates, > 0.
    batch_size: examples per minibatch, or ``None`` for full batch.
    key: a ``jax.random`` key; the same key gives a bit-identical history.
    eval_every: steps between evaluations; must divide ``steps``.
    divergence_factor: divergence threshold as a multiple of the initial loss.

  Returns:
    The run's :class:`History`.

  Example:
    >>> task = lrlab.tasks.get("quadratic")
    >>> history = lrlab.train.train(task, optax.sgd(0.01), steps=100, batch_size=None,
    ...                             key=jax.random.key(0), eval_every=50)
    >>> history.step.tolist(), bool(history.diverged)
    ([0, 50, 100], False)
  """
  train_fn = make_train_fn(
    task,
    steps=steps,
    batch_size=batch_size,
    eval_every=eval_every,
    divergence_factor=divergence_factor,
  )
  return jax.jit(lambda key: train_fn(tx, key))(key)


def steps_to_target(history: History, metric: str, target: ArrayLike) -> jax.Array:
  """Steps until ``metric`` first reaches ``target``: AlgoPerf's time-to-result, in steps.

  A loss reaches the target when it is ``<= target``; an accuracy when it is
  ``>= target``. Works on batched histories (a leading member axis).

  Args:
    history: a :class:`History` (or a batch of them).
    metric: a per-evaluation field, e.g. ``"val_loss"`` or ``"val_accuracy"``.
    target: the value to reach.

  Returns:
    The first evaluation step at which the target is met, as float32, or
    ``inf`` where it is never met.

  References:
    Dahl et al., "Benchmarking Neural Network Training Algorithms", 2023.
    https://arxiv.org/abs/2306.07179
  """
  _checks.check_choice("metric", metric, METRICS)
  values = getattr(history, metric)
  hit = values <= target if metric.endswith("loss") else values >= target
  first = jnp.argmax(hit, axis=-1)
  steps = jnp.broadcast_to(history.step, values.shape)
  reached = jnp.take_along_axis(steps, first[..., None], axis=-1)[..., 0].astype(jnp.float32)
  return jnp.where(jnp.any(hit, axis=-1), reached, jnp.inf)
