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
from lrlab.transforms.schedule_free import eval_params


class History(NamedTuple):
  """What one run measured. Under ``vmap`` every field gains a leading member axis.

  Evaluation points are step 0 (before training) and every ``eval_every`` steps
  after it, ``E = steps // eval_every + 1`` points in all.

  Attributes:
    step: ``(E,)`` int32, the number of updates made at each evaluation point.
    train_loss: ``(E,)`` mean minibatch loss over the window of steps ending at
      each evaluation point (at step 0: the loss on the whole training set).
      It is measured at the training parameters; held-out metrics are measured
      at the evaluation point, which differs for schedule-free optimizers
      (see :func:`lrlab.transforms.eval_params`).
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


def all_finite(tree: Any) -> jax.Array:
  """Whether every entry of ``tree`` is finite, as a bool scalar (``True`` for an empty tree).

  Computed as the finiteness of the float32 sum of all entries: a NaN or an
  infinity anywhere makes the sum non-finite, and a float sum vectorizes far
  better on CPU than a reduction of booleans (about 5% of a sweep's step; see
  BENCHMARKS.md). The one difference from checking entry by entry: finite
  entries whose sum overflows float32 (magnitudes around 1e38 / size) also
  count as non-finite, which for a training run is divergence all the same.
  Complex entries count by their real and imaginary parts.
  """
  leaves = [x.real + x.imag if jnp.iscomplexobj(x) else x for x in jax.tree.leaves(tree)]
  if not leaves:
    return jnp.bool_(True)
  return jnp.isfinite(sum(jnp.sum(x, dtype=jnp.float32) for x in leaves))


def batch_indices(
  data_key: jax.Array, first_step: ArrayLike, num_steps: int, num_train: int, batch_size: int
) -> jax.Array:
  """``(num_steps, batch_size)`` example indices of steps ``first_step, first_step + 1, ...``.

  Epoch ``e`` visits the training set in the order of a permutation drawn from
  ``fold_in(data_key, e)``, so the minibatch of a step depends only on the key
  and the step, never on how the run is cut into segments. The last partial
  batch of an epoch is dropped (PyTorch's ``drop_last=True``). This is the
  order every lrlab run draws from its data key; use it to feed another
  framework the same minibatches.

  Args:
    data_key: the run's data-order key.
    first_step: the first step (may be traced).
    num_steps: how many steps (static).
    num_train: training examples.
    batch_size: examples per minibatch, at most ``num_train``.

  Returns:
    An int32 array of shape ``(num_steps, batch_size)``.

  Example:
    >>> order = lrlab.train.batch_indices(jax.random.key(0), 0, 4, 10, 5)
    >>> order.shape, sorted(order[:2].ravel().tolist()) == list(range(10))
    ((4, 5), True)
  """
  per_epoch = num_train // batch_size
  first_epoch = first_step // per_epoch
  span = num_steps // per_epoch + 2  # a static bound on the epochs the steps touch
  epochs = first_epoch + jnp.arange(span)
  permute = lambda e: jax.random.permutation(jax.random.fold_in(data_key, e), num_train)
  batches = jax.vmap(permute)(epochs)[:, : per_epoch * batch_size]
  batches = batches.reshape(span * per_epoch, batch_size)
  return jax.lax.dynamic_slice_in_dim(batches, first_step - first_epoch * per_epoch, num_steps)


def _check_run_arguments(task, steps, batch_size, eval_every, divergence_factor, num_train) -> None:
  for name, value in (("steps", steps), ("eval_every", eval_every)):
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value <= 0:
      raise ValueError(f"{name} must be a positive integer; got {value!r}.")
  if steps % eval_every:
    raise ValueError(
      f"eval_every must divide steps so that every evaluation window has the same length; "
      f"got steps={steps}, eval_every={eval_every}."
    )
  if batch_size is not None and (
    isinstance(batch_size, bool)
    or not isinstance(batch_size, int | np.integer)
    or not 0 < batch_size <= num_train
  ):
    raise ValueError(
      f"batch_size must be None (full batch) or an integer in [1, {num_train}] "
      f"(the training examples of {task.name!r}); got {batch_size!r}."
    )
  _checks.check("divergence_factor", divergence_factor, lambda f: f > 1, "a number > 1")


class RunState(NamedTuple):
  """Everything a run carries from one segment to the next.

  Attributes:
    params: the model parameters (frozen once the run diverged).
    opt_state: the optimizer state (frozen with them).
    diverged: bool, whether the run has diverged.
    diverged_step: int32, the first diverging step, or -1.
    threshold: float32, the loss above which the run counts as diverged.
  """

  params: Any
  opt_state: Any
  diverged: jax.Array
  diverged_step: jax.Array
  threshold: jax.Array


class Evaluation(NamedTuple):
  """Metrics at evaluation points; each field is a scalar or has a leading window axis."""

  train_loss: jax.Array
  val_loss: jax.Array
  val_accuracy: jax.Array
  test_loss: jax.Array
  test_accuracy: jax.Array


class Segment(NamedTuple):
  """What a run of ``W`` evaluation windows measured.

  Attributes:
    evaluation: an :class:`Evaluation` of ``(W,)`` arrays, one per window end.
    learning_rate: ``(W * eval_every,)`` the rate applied at each step.
  """

  evaluation: Evaluation
  learning_rate: jax.Array


class Trainer:
  """One training run cut into segments: ``init``, then ``segment`` as often as needed.

  A segment is ``num_windows`` evaluation windows of ``eval_every`` steps; its
  first window is a traced argument, so one compiled segment serves the whole
  run. Running all windows in one segment is exactly :func:`make_train_fn`; the
  sweep engine runs shorter segments to report progress and checkpoint between
  them. Every method is pure and vmappable over hyperparameters (build ``tx``
  inside the mapped function).

  Args:
    task: an :class:`lrlab.tasks.Task`.
    steps: number of updates, > 0.
    batch_size: examples per minibatch, or ``None`` for full-batch training.
    eval_every: steps between evaluations; must divide ``steps``.
    divergence_factor: a run diverges when its minibatch loss exceeds this
      multiple of the initial training loss (> 1; may be traced).
    folds: ``k`` for k-fold cross-validation: the training and validation
      examples are pooled and cut into ``k`` folds by a fixed permutation; a run
      given ``fold=f`` trains on the other ``k - 1`` folds and reports its val
      metrics on fold ``f`` (the test split is unchanged). ``None``: the task's
      own splits.
  """

  def __init__(
    self,
    task: Any,
    *,
    steps: int,
    batch_size: int | None,
    eval_every: int,
    divergence_factor: ArrayLike = 10.0,
    folds: int | None = None,
  ):
    if folds is not None and (not isinstance(folds, int | np.integer) or folds < 2):
      raise ValueError(f"folds must be None or an integer >= 2; got {folds!r}.")
    self.task = task
    self.folds = folds
    if folds is None:
      self._pool = task.split("train")
      self._train_rows = self._held_out = None
      num_train = task.dataset.num_train
    else:
      # k-fold cross-validation over train ∪ val: a fixed permutation cut into k folds;
      # fold f trains on the other k - 1 and validates on fold f.
      x_val, y_val = task.split("val")
      x_train, y_train = task.split("train")
      self._pool = (jnp.concatenate([x_train, x_val]), jnp.concatenate([y_train, y_val]))
      size = self._pool[0].shape[0] // folds
      order = np.random.default_rng(0).permutation(self._pool[0].shape[0])
      table = order[: folds * size].reshape(folds, size)
      self._held_out = jnp.asarray(table, jnp.int32)
      self._train_rows = jnp.asarray(
        np.stack([np.concatenate(np.delete(table, f, axis=0)) for f in range(folds)]), jnp.int32
      )
      num_train = (folds - 1) * size
    _check_run_arguments(task, steps, batch_size, eval_every, divergence_factor, num_train)
    self.num_train = num_train
    self.steps = steps
    self.batch_size = batch_size
    self.eval_every = eval_every
    self.num_windows = steps // eval_every
    self.divergence_factor = divergence_factor

  def _train_batch(self, rows: jax.Array | None, fold: ArrayLike) -> tuple[jax.Array, jax.Array]:
    """Training examples ``rows`` (indices into this fold's training set; ``None``: all)."""
    x, y = self._pool
    if self.folds is not None:
      fold_rows = self._train_rows[fold]
      rows = fold_rows if rows is None else fold_rows[rows]
    return (x, y) if rows is None else (x[rows], y[rows])

  def _split_metrics(self, params: Any, split: str, fold: ArrayLike) -> dict[str, jax.Array]:
    if self.folds is not None and split in ("train", "val"):
      x, y = self._pool
      rows = self._held_out[fold] if split == "val" else self._train_rows[fold]
      loss, aux = self.task.loss(params, (x[rows], y[rows]))
      return {"loss": loss, **aux}
    return self.task.evaluate(params, split)

  def _evaluate(self, params: Any, train_loss: jax.Array, fold: ArrayLike) -> Evaluation:
    metrics = {"train_loss": jnp.asarray(train_loss, jnp.float32)}
    for split in ("val", "test"):
      result = self._split_metrics(params, split, fold)
      metrics[f"{split}_loss"] = jnp.asarray(result["loss"], jnp.float32)
      metrics[f"{split}_accuracy"] = jnp.asarray(result.get("accuracy", jnp.nan), jnp.float32)
    return Evaluation(**metrics)

  def init(
    self, tx: optax.GradientTransformation, key: jax.Array, fold: ArrayLike = 0
  ) -> tuple[RunState, Evaluation]:
    """Initialize parameters and optimizer; evaluate at step 0.

    Args:
      tx: the optimizer.
      key: the run's key.
      fold: with ``folds``, the held-out fold (may be traced); ignored otherwise.

    Returns:
      The initial :class:`RunState` and the step-0 :class:`Evaluation` (its
      ``train_loss`` is the loss on the whole training set).
    """
    init_key, _ = jax.random.split(key)
    params = self.task.init(init_key)
    opt_state = optax.with_extra_args_support(tx).init(params)
    initial_loss = jnp.asarray(self._split_metrics(params, "train", fold)["loss"], jnp.float32)
    state = RunState(
      params=params,
      opt_state=opt_state,
      diverged=jnp.bool_(False),
      diverged_step=jnp.int32(-1),
      threshold=(self.divergence_factor * jnp.abs(initial_loss)).astype(jnp.float32),
    )
    return state, self._evaluate(params, initial_loss, fold)

  def segment(
    self,
    tx: optax.GradientTransformation,
    key: jax.Array,
    state: RunState,
    first_window: ArrayLike,
    num_windows: int,
    fold: ArrayLike = 0,
  ) -> tuple[RunState, Segment]:
    """Run ``num_windows`` (static) evaluation windows from ``first_window`` (may be traced)."""
    tx = optax.with_extra_args_support(tx)
    task, batch_size = self.task, self.batch_size
    num_steps = num_windows * self.eval_every
    first_step = jnp.asarray(first_window, jnp.int32) * self.eval_every
    t = first_step + jnp.arange(num_steps, dtype=jnp.int32)
    if batch_size is None:
      indices = jnp.zeros((num_steps, 0), jnp.int32)  # unused: every step sees the whole set
    else:
      _, data_key = jax.random.split(key)
      indices = batch_indices(data_key, first_step, num_steps, self.num_train, batch_size)

    def step_fn(state: RunState, inputs):
      t, rows = inputs
      params, opt_state = state.params, state.opt_state
      batch = self._train_batch(None if batch_size is None else rows, fold)
      (loss, _), grads = jax.value_and_grad(task.loss, has_aux=True)(params, batch)
      updates, new_opt_state = tx.update(grads, opt_state, params, value=loss)
      new_params = optax.apply_updates(params, updates)
      bad = ~jnp.isfinite(loss) | (loss > state.threshold) | ~all_finite(new_params)
      frozen = state.diverged | bad
      keep = lambda new, old: jax.tree.map(lambda n, o: jnp.where(frozen, o, n), new, old)
      state = RunState(
        params=keep(new_params, params),
        opt_state=keep(new_opt_state, opt_state),
        diverged=frozen,
        diverged_step=jnp.where(bad & ~state.diverged, t, state.diverged_step),
        threshold=state.threshold,
      )
      return state, (loss.astype(jnp.float32), applied_learning_rate(new_opt_state))

    def window_fn(state: RunState, window_inputs):
      state, (losses, rates) = jax.lax.scan(step_fn, state, window_inputs)
      # Schedule-free optimizers train at y but must be evaluated at their average x.
      params = eval_params(state.opt_state, state.params)
      return state, (self._evaluate(params, jnp.mean(losses), fold), rates)

    by_window = lambda a: a.reshape(num_windows, self.eval_every, *a.shape[1:])
    state, (evaluation, rates) = jax.lax.scan(window_fn, state, (by_window(t), by_window(indices)))
    return state, Segment(evaluation=evaluation, learning_rate=rates.reshape(num_steps))

  def history(self, state: RunState, first: Evaluation, segment: Segment) -> History:
    """Assemble the :class:`History` of a finished run from its step-0 evaluation and
    its segments joined along the window axis (a leading member axis is allowed)."""
    join = lambda a, b: jnp.concatenate([jnp.asarray(a)[..., None], b], axis=-1)
    evaluation = jax.tree.map(join, first, segment.evaluation)
    num_points = evaluation.val_loss.shape[-1]
    step = jnp.arange(num_points, dtype=jnp.int32) * self.eval_every
    return History(
      step=jnp.broadcast_to(step, evaluation.val_loss.shape),
      learning_rate=segment.learning_rate,
      diverged=state.diverged,
      diverged_step=state.diverged_step,
      **evaluation._asdict(),
    )


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
  trainer = Trainer(
    task,
    steps=steps,
    batch_size=batch_size,
    eval_every=eval_every,
    divergence_factor=divergence_factor,
  )

  def train_fn(tx: optax.GradientTransformation, key: jax.Array) -> History:
    state, first = trainer.init(tx, key)
    state, segment = trainer.segment(tx, key, state, 0, trainer.num_windows)
    return trainer.history(state, first, segment)

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
