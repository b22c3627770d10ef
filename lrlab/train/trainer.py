"""One training run cut into segments of evaluation windows, pure and vmappable.

A :class:`Trainer` gives ``init`` (parameters, model state, optimizer state, the step-0
evaluation) and ``segment`` (``lax.scan`` over a few windows of steps). Minibatches of resident
data are drawn by index inside the scan; a streamed task's come in as an argument, its
evaluation batched by :mod:`lrlab.train.streaming`. A run that diverges (a non-finite loss,
parameter or model state, or a loss above ``divergence_factor`` times the initial training
loss) is frozen from that step on with ``jnp.where``.
"""

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.typing import ArrayLike

from lrlab import _checks
from lrlab.tasks.task import Metrics, accumulate
from lrlab.train.history import History, all_finite, applied_learning_rate
from lrlab.train.order import batch_indices, step_key
from lrlab.transforms.schedule_free import eval_params


def _check_run_arguments(trainer, steps, batch_size, eval_every, divergence_factor) -> None:
  task, num_train = trainer.task, trainer.num_train
  for name, value in (("steps", steps), ("eval_every", eval_every)):  # int32 step counters
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or not 0 < value < 2**31:
      raise ValueError(f"{name} must be a positive integer below 2**31; got {value!r}.")
  if steps % eval_every:
    raise ValueError(
      f"eval_every must divide steps so that every evaluation window has the same length; "
      f"got steps={steps}, eval_every={eval_every}."
    )
  if batch_size is None and task.streamed:
    raise ValueError(
      f"batch_size must be an integer for a task whose data are streamed ({task.name!r}); "
      "got None (full batch)."
    )
  not_int = isinstance(batch_size, bool) or not isinstance(batch_size, int | np.integer)
  if batch_size is not None and (not_int or not 0 < batch_size <= num_train):
    raise ValueError(
      f"batch_size must be None (full batch) or an integer in [1, {num_train}] "
      f"(the training examples of {task.name!r}); got {batch_size!r}."
    )
  _checks.check_given(divergence_factor=divergence_factor)
  _checks.check("divergence_factor", divergence_factor, lambda f: f > 1, "a number > 1")


class RunState(NamedTuple):
  """Everything a run carries from one segment to the next.

  Attributes:
    params: the model parameters (frozen once the run diverged).
    model_state: the model's other state, e.g. BatchNorm statistics (frozen with them).
    opt_state: the optimizer state (frozen with them).
    diverged: bool, whether the run has diverged.
    diverged_step: int32, the first diverging step, or -1.
    threshold: float32, the loss above which the run counts as diverged.
  """

  params: Any
  model_state: Any
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


def evaluation_from(train_loss: jax.Array, val: Metrics, test: Metrics) -> Evaluation:
  """An :class:`Evaluation` from the val and test splits' metrics (accuracy NaN if absent)."""
  metrics = {"train_loss": jnp.asarray(train_loss, jnp.float32)}
  for split, result in (("val", val), ("test", test)):
    metrics[f"{split}_loss"] = loss = jnp.asarray(result["loss"], jnp.float32)
    accuracy = jnp.asarray(result.get("accuracy", jnp.nan), jnp.float32)  # a member axis too
    metrics[f"{split}_accuracy"] = jnp.broadcast_to(accuracy, loss.shape)
  return Evaluation(**metrics)


class Trainer:
  """One training run cut into segments: ``init``, then ``segment`` as often as needed.

  A segment is ``num_windows`` evaluation windows of ``eval_every`` steps; its
  first window is a traced argument, so one compiled segment serves the whole
  run. Running all windows in one segment is exactly
  :func:`lrlab.train.make_train_fn`; the sweep engine runs shorter segments to
  report progress and checkpoint between them. Every method is pure and
  vmappable over hyperparameters (build ``tx`` inside the mapped function).

  Each step draws its minibatch, computes the training loss in the model's
  training mode with the key :func:`step_key` ``(key, t)`` (dropout), updates
  the parameters with ``tx`` and keeps the model state the loss returned
  (BatchNorm statistics). Evaluation uses the evaluation mode.

  Args:
    task: an :class:`lrlab.tasks.Task`.
    steps: number of updates, > 0.
    batch_size: examples per minibatch, or ``None`` for full-batch training
      (resident data only).
    eval_every: steps between evaluations; must divide ``steps``.
    divergence_factor: a run diverges when its minibatch loss exceeds this
      multiple of the initial training loss (> 1; may be traced).
    folds: ``k`` for k-fold cross-validation: the ``n`` training and validation
      examples are pooled and the first ``k * (n // k)`` of a fixed permutation cut
      into ``k`` equal folds (the other ``n % k`` are left out of every fold); a run
      given ``fold=f`` trains on the other ``k - 1`` folds and reports its val
      metrics on fold ``f`` (the test split is unchanged). ``None``: the task's
      own splits. Resident data only.
    eval_batch_size: examples per evaluation batch; ``None`` evaluates a
      resident split in one batch and a streamed one in batches of 1024.
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
    eval_batch_size: int | None = None,
  ):
    if folds is not None and (not isinstance(folds, int | np.integer) or folds < 2):
      raise ValueError(f"folds must be None or an integer >= 2; got {folds!r}.")
    if folds is not None and task.streamed:
      raise ValueError(
        f"folds must be None for a task whose data are streamed ({task.name!r}); got {folds!r}."
      )
    if eval_batch_size is not None and (
      isinstance(eval_batch_size, bool)
      or not isinstance(eval_batch_size, int | np.integer)
      or eval_batch_size < 1
    ):
      raise ValueError(f"eval_batch_size must be None or an integer >= 1; got {eval_batch_size!r}.")
    self.task = task
    self.folds = folds
    if task.streamed:
      self._pool = self._train_rows = self._held_out = None
      self.num_train = task.num_train
    elif folds is None:
      self._pool = task.split("train")
      self._train_rows = self._held_out = None
      self.num_train = task.num_train
    else:
      # k-fold cross-validation over train ∪ val: a fixed permutation cut into k folds;
      # fold f trains on the other k - 1 and validates on fold f.
      (x_train, y_train), (x_val, y_val) = task.split("train"), task.split("val")
      pooled = x_train.shape[0] + x_val.shape[0]
      if folds > pooled:
        what = f"the {pooled} training and validation examples of {task.name!r}"
        raise ValueError(f"folds must be at most {what}; got {folds!r}.")
      self._pool = (jnp.concatenate([x_train, x_val]), jnp.concatenate([y_train, y_val]))
      size = pooled // folds
      order = np.random.default_rng(0).permutation(pooled)
      table = order[: folds * size].reshape(folds, size)
      self._held_out = jnp.asarray(table, jnp.int32)
      self._train_rows = jnp.asarray(
        np.stack([np.concatenate(np.delete(table, f, axis=0)) for f in range(folds)]), jnp.int32
      )
      self.num_train = (folds - 1) * size
    _check_run_arguments(self, steps, batch_size, eval_every, divergence_factor)
    self.steps = steps
    self.batch_size = batch_size
    self.eval_every = eval_every
    self.num_windows = steps // eval_every
    self.divergence_factor = divergence_factor
    if eval_batch_size is None and task.streamed:
      eval_batch_size = 1024
    self.eval_batch_size = None if eval_batch_size is None else int(eval_batch_size)

  def _train_batch(self, rows: jax.Array | None, fold: ArrayLike) -> tuple[jax.Array, jax.Array]:
    """Training examples ``rows`` (indices into this fold's training set; ``None``: all)."""
    x, y = self._pool
    if self.folds is not None:
      fold_rows = self._train_rows[fold]
      rows = fold_rows if rows is None else fold_rows[rows]
    return (x, y) if rows is None else (x[rows], y[rows])

  def _split_metrics(self, params: Any, model_state: Any, split: str, fold: ArrayLike) -> Metrics:
    if self.folds is not None and split in ("train", "val"):
      x, y = self._pool
      rows = self._held_out[fold] if split == "val" else self._train_rows[fold]
      batch = (x[rows], y[rows])
      return self.task.evaluate_batch(params, model_state, batch, batch_size=self.eval_batch_size)
    return self.task.evaluate(params, model_state, split, batch_size=self.eval_batch_size)

  def _evaluate(self, params, model_state, train_loss, fold) -> Evaluation:
    val = self._split_metrics(params, model_state, "val", fold)
    test = self._split_metrics(params, model_state, "test", fold)
    return evaluation_from(train_loss, val, test)

  def init_state(self, tx: optax.GradientTransformation, key: jax.Array) -> RunState:
    """Parameters, model state and optimizer state; the threshold is left at infinity."""
    return self.state_from(tx, *self.init_weights(key))

  def init_weights(self, key: jax.Array) -> tuple[Any, Any]:
    """The run's initial ``(params, model_state)``: the task's, from the first half of ``key``.

    They do not depend on the optimizer, so runs of one key that differ only in
    their optimizer may share them (see :meth:`state_from`).
    """
    init_key, _ = jax.random.split(key)
    return self.task.init(init_key)

  def state_from(self, tx: optax.GradientTransformation, params: Any, model_state: Any) -> RunState:
    """The :class:`RunState` that starts from ``params`` and ``model_state`` with ``tx``'s
    initial state; not diverged, the threshold left at infinity."""
    return RunState(
      params=params,
      model_state=model_state,
      opt_state=optax.with_extra_args_support(tx).init(params),
      diverged=jnp.bool_(False),
      diverged_step=jnp.int32(-1),
      threshold=jnp.float32(jnp.inf),
    )

  def with_threshold(self, state: RunState, initial_loss: jax.Array) -> RunState:
    """``state`` with its divergence threshold set from the initial training loss."""
    threshold = self.divergence_factor * jnp.abs(jnp.asarray(initial_loss, jnp.float32))
    return state._replace(threshold=threshold.astype(jnp.float32))

  def init(
    self, tx: optax.GradientTransformation, key: jax.Array, fold: ArrayLike = 0
  ) -> tuple[RunState, Evaluation]:
    """Initialize parameters, model state and optimizer; evaluate at step 0 (resident data).

    Args:
      tx: the optimizer.
      key: the run's key.
      fold: with ``folds``, the held-out fold (may be traced); ignored otherwise.

    Returns:
      The initial :class:`RunState` and the step-0 :class:`Evaluation` (its
      ``train_loss`` is the loss on the whole training set, in evaluation mode).
    """
    return self.first_evaluation(self.init_state(tx, key), fold)

  def first_evaluation(self, state: RunState, fold: ArrayLike = 0) -> tuple[RunState, Evaluation]:
    """The step-0 evaluation of :meth:`init_state`'s state, and the state with its threshold.

    :func:`lrlab.train.train` and the sweep engine compile this apart from
    :meth:`init_state`, so the evaluation reads the parameters as a program's
    input, laid out as a streamed run's evaluation reads them: XLA may lay out
    (and so round) an in-program value differently.
    """
    metrics = self._split_metrics(state.params, state.model_state, "train", fold)
    initial_loss = jnp.asarray(metrics["loss"], jnp.float32)
    evaluation = self._evaluate(state.params, state.model_state, initial_loss, fold)
    return self.with_threshold(state, initial_loss), evaluation

  def segment(
    self,
    tx: optax.GradientTransformation,
    key: jax.Array,
    state: RunState,
    first_window: ArrayLike,
    num_windows: int,
    fold: ArrayLike = 0,
    data: tuple[jax.Array, jax.Array] | None = None,
    rows: jax.Array | None = None,
  ) -> tuple[RunState, Segment]:
    """Run ``num_windows`` (static) evaluation windows from ``first_window`` (may be traced).

    ``data``: for a streamed task, the segment's minibatches ``(x, y)``, each
    ``(num_windows * eval_every, batch_size, ...)``; its evaluation is left
    to the caller (val and test fields NaN, ``train_loss`` measured).
    ``rows``: for resident data in minibatches, the segment's example indices as
    :meth:`minibatch_rows` draws them from ``key``, drawn once and handed in (a sweep's
    chunks of one seed share them); drawn here when ``None``.
    """
    tx = optax.with_extra_args_support(tx)
    task, batch_size, streamed = self.task, self.batch_size, data is not None
    num_steps = num_windows * self.eval_every
    first_step = jnp.asarray(first_window, jnp.int32) * self.eval_every
    t = first_step + jnp.arange(num_steps, dtype=jnp.int32)
    if streamed:
      inputs = data
    elif batch_size is None:
      inputs = jnp.zeros((num_steps, 0), jnp.int32)  # unused: every step sees the whole set
    elif rows is None:
      inputs = self.minibatch_rows(key, first_window, num_windows)
    elif tuple(rows.shape) != (num_steps, batch_size):
      raise ValueError(
        f"rows must be the segment's ({num_steps}, {batch_size}) example indices; "
        f"got shape {tuple(rows.shape)}."
      )
    else:
      inputs = rows

    def step_fn(state: RunState, step_inputs):
      t, rows = step_inputs
      params, opt_state = state.params, state.opt_state
      batch = rows if streamed else self._train_batch(None if batch_size is None else rows, fold)
      loss_fn = lambda p: task.loss(p, state.model_state, batch, step_key(key, t))
      (loss, (model_state, _)), grads = jax.value_and_grad(loss_fn, has_aux=True)(params)
      updates, new_opt_state = tx.update(grads, opt_state, params, value=loss)
      new_params = optax.apply_updates(params, updates)
      bad = ~jnp.isfinite(loss) | (loss > state.threshold) | ~all_finite((new_params, model_state))
      frozen = state.diverged | bad
      keep = lambda new, old: jax.tree.map(lambda n, o: jnp.where(frozen, o, n), new, old)
      state = RunState(
        params=keep(new_params, params),
        model_state=keep(model_state, state.model_state),
        opt_state=keep(new_opt_state, opt_state),
        diverged=frozen,
        diverged_step=jnp.where(bad & ~state.diverged, t, state.diverged_step),
        threshold=state.threshold,
      )
      return state, (loss.astype(jnp.float32), applied_learning_rate(new_opt_state))

    def window_fn(state: RunState, window_inputs):
      state, (losses, rates) = jax.lax.scan(step_fn, state, window_inputs)
      train_loss = jnp.mean(losses)
      if streamed:
        nan = {"loss": jnp.float32(jnp.nan)}
        return state, (evaluation_from(train_loss, nan, nan), rates)
      # Schedule-free optimizers train at y but must be evaluated at their average x.
      params = eval_params(state.opt_state, state.params)
      return state, (self._evaluate(params, state.model_state, train_loss, fold), rates)

    by_window = lambda a: a.reshape(num_windows, self.eval_every, *a.shape[1:])
    windows = (by_window(t), jax.tree.map(by_window, inputs))
    state, (evaluation, rates) = jax.lax.scan(window_fn, state, windows)
    return state, Segment(evaluation=evaluation, learning_rate=rates.reshape(num_steps))

  def minibatch_rows(self, key: jax.Array, first_window: ArrayLike, num_windows: int) -> jax.Array:
    """The ``(num_windows * eval_every, batch_size)`` example indices (into this fold's training
    set) of the ``num_windows`` windows from ``first_window``: :func:`batch_indices` of the
    second half of ``key``. They depend on the key and the step alone, not on the member, so
    a sweep draws them once per seed and segment for all its chunks (the draw sorts a random
    key per example for each epoch the segment touches: on the 2-core CPU, 8.6 ms for 200
    steps of the MNIST-1D MLP, about an eighth of a chunk of 8 members' segment)."""
    _, data_key = jax.random.split(key)
    first_step = jnp.asarray(first_window, jnp.int32) * self.eval_every
    num_steps = num_windows * self.eval_every
    return batch_indices(data_key, first_step, num_steps, self.num_train, self.batch_size)

  def evaluate_chunk(self, state: RunState, average: Metrics | None, batch, weight) -> Metrics:
    """Fold one evaluation batch's metrics into the running ``average`` (streamed data).

    Evaluates at :func:`lrlab.transforms.eval_params` in evaluation mode and
    combines as :func:`lrlab.tasks.accumulate` with ``weight`` from
    :func:`lrlab.tasks.chunk_weight`; ``average=None`` starts from zero.
    """
    params = eval_params(state.opt_state, state.params)
    loss, aux = self.task.eval_loss(params, state.model_state, batch)
    means = {"loss": loss, **aux}
    if average is None:
      average = jax.tree.map(jnp.zeros_like, means)
    return accumulate(average, means, weight)

  def evaluate_chunks(self, state: RunState, average: Metrics | None, batches, weights) -> Metrics:
    """:meth:`evaluate_chunk` over a stack of equal batches (a leading chunk axis), in order,
    in one program: the same running mean, so the same bits, with one dispatch per stack."""
    if average is None:
      first = jax.tree.map(lambda a: a[0], batches)
      shape = jax.eval_shape(lambda: self.evaluate_chunk(state, None, first, weights[0]))
      average = jax.tree.map(lambda a: jnp.zeros(a.shape, a.dtype), shape)
    step = lambda avg, inputs: (self.evaluate_chunk(state, avg, *inputs), None)
    return jax.lax.scan(step, average, (batches, weights))[0]

  def history(self, state: RunState, first: Evaluation, segment: Segment) -> History:
    """Assemble the :class:`lrlab.train.History` of a finished run from its step-0 evaluation
    and its segments joined along the window axis (a leading member axis is allowed)."""
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
