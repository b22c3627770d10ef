"""One run from start to end: :func:`make_train_fn` (a pure function) and :func:`train`.

Resident data make the whole run one ``jit`` + ``lax.scan`` program; a task
whose data stream from a source runs window by window from the host
(:class:`lrlab.train.streaming.StreamedRun`), with the same result bit for bit at the same
``eval_batch_size`` (``None`` means one batch for resident data but 1024 for streamed data).
"""

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import optax
from jax.typing import ArrayLike

from lrlab.train.compiling import one_shot_options
from lrlab.train.history import History
from lrlab.train.streaming import StreamedRun
from lrlab.train.trainer import Trainer


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

  A third key, :func:`lrlab.train.step_key` ``(key, t)``, feeds the model's
  randomness (dropout) at step ``t``; the model state (BatchNorm statistics)
  is carried from step to step and frozen with the parameters on divergence.

  Each step computes ``(loss, (model_state, aux)), grads`` on its minibatch,
  then ``tx.update(grads, state, params, value=loss)``, so loss-driven
  controllers receive the minibatch loss.

  Args:
    task: an :class:`lrlab.tasks.Task`.
    steps: number of updates, > 0.
    batch_size: examples per minibatch, or ``None`` for full-batch training.
    eval_every: steps between evaluations; must divide ``steps``.
    divergence_factor: a run diverges when its minibatch loss exceeds this
      multiple of the initial training loss (> 1; may be traced).

  Returns:
    ``train_fn(tx, key) -> History``.

  Raises:
    ValueError: for a task whose data are streamed (use :func:`train`).
  """
  if task.streamed:
    raise ValueError(
      f"task must hold its data on the device for make_train_fn; {task.name!r} streams them "
      "from the host, so use lrlab.train.train (or lrlab.sweep.run)."
    )
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
  eval_batch_size: int | None = None,
) -> History:
  """Train ``task`` with ``tx`` for ``steps`` updates as one jitted program.

  See :func:`make_train_fn` for the semantics; this compiles and runs it once.
  A task whose data stream from a source is trained window by window from the
  host instead, with the same minibatches and, given an explicit ``eval_batch_size``, the same
  result bit for bit (with ``None`` a split over 1024 examples is evaluated in one batch when
  resident and in batches of 1024 when streamed, which may round the last bit differently,
  the step-0 ``train_loss`` and the divergence threshold with it).

  Args:
    task: an :class:`lrlab.tasks.Task`.
    tx: the optimizer (any ``optax.GradientTransformation``).
    steps: number of updates, > 0.
    batch_size: examples per minibatch, or ``None`` for full batch.
    key: a ``jax.random`` key; the same key gives a bit-identical history.
    eval_every: steps between evaluations; must divide ``steps``.
    divergence_factor: divergence threshold as a multiple of the initial loss.
    eval_batch_size: examples per evaluation batch (``None``: a resident split
      in one batch, a streamed one in batches of 1024).

  Returns:
    The run's :class:`History`.

  Example:
    >>> task = lrlab.tasks.get("quadratic")
    >>> history = lrlab.train.train(task, optax.sgd(0.01), steps=100, batch_size=None,
    ...                             key=jax.random.key(0), eval_every=50)
    >>> history.step.tolist(), bool(history.diverged)
    ([0, 50, 100], False)
  """
  trainer = Trainer(
    task,
    steps=steps,
    batch_size=batch_size,
    eval_every=eval_every,
    divergence_factor=divergence_factor,
    eval_batch_size=eval_batch_size,
  )
  # Initialization runs once: compiled at a cheaper level (see lrlab.train.compiling).
  init_state = jax.jit(
    lambda _, key: trainer.init_state(tx, key), compiler_options=one_shot_options()
  )
  if not task.streamed:

    def rest(key: jax.Array, state, first) -> History:
      state, segment = trainer.segment(tx, key, state, 0, trainer.num_windows)
      return trainer.history(state, first, segment)

    # Three programs, as a streamed run compiles them (see Trainer.first_evaluation).
    state, first = jax.jit(trainer.first_evaluation)(init_state(None, key))
    return jax.jit(rest)(key, state, first)
  streamed = StreamedRun(
    trainer,
    init_state=init_state,
    segment=jax.jit(lambda _, key, s, w, data: trainer.segment(tx, key, s, w, 1, data=data)),
    evaluate_chunk=jax.jit(trainer.evaluate_chunk),
    evaluate_chunks=jax.jit(trainer.evaluate_chunks),
    with_threshold=jax.jit(trainer.with_threshold),
  )
  state, first = streamed.init(None, key)
  parts = []
  for window in range(trainer.num_windows):
    state, part = streamed.segment(None, key, state, window)
    parts.append(part)
  joined = jax.tree.map(lambda *a: jnp.concatenate(a, axis=-1), *parts)
  return jax.jit(trainer.history)(state, first, joined)
