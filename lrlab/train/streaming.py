"""The host side of a run whose data stream from a source: gather, prefetch, evaluate in batches.

:class:`StreamedRun` gives ``init`` and ``segment`` with the signatures of a
resident run's compiled programs, so :func:`lrlab.train.train` and the sweep
engine drive both the same way. A segment is one evaluation window: the host
computes the window's example indices in the order a resident run draws them
(:class:`lrlab.train.order.HostOrder`), gathers them from the source while the
previous window computes (one window ahead, in a thread), and ships them; then
the val and test splits are evaluated in batches of ``eval_batch_size``,
combined as :meth:`lrlab.tasks.Task.evaluate` combines a resident split's.
Device memory holds O(window) examples, never the dataset.
"""

import concurrent.futures
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from lrlab.data.source import prefetch
from lrlab.tasks.task import chunk_weight
from lrlab.train.order import HostOrder
from lrlab.train.trainer import Evaluation, RunState, Segment, Trainer, evaluation_from


def _key_id(key: jax.Array) -> bytes:
  data = jax.random.key_data(key) if jnp.issubdtype(key.dtype, jax.dtypes.prng_key) else key
  return np.asarray(data).tobytes()


class StreamedRun:
  """``init(hp, key)`` and ``segment(hp, key, state, first_window)`` for a streamed task.

  The compiled parts are passed in, so the same driver serves one run
  (``hp`` unused) and a sweep's chunk (vmapped over members, sharded):

  Args:
    trainer: the run's :class:`lrlab.train.Trainer` (a streamed task).
    init_state: ``(hp, key) -> RunState`` (threshold not yet set).
    segment: ``(hp, key, state, first_window, data) -> (state, Segment)``, one window.
    evaluate_chunk: ``(state, average, batch, weight) -> average``
      (:meth:`Trainer.evaluate_chunk`).
    evaluate_chunks: the same over a stack of batches and their weights
      (:meth:`Trainer.evaluate_chunks`).
    with_threshold: ``(state, initial_loss) -> state``.
    put: host arrays -> device arrays as the programs take them (replicated).
  """

  def __init__(
    self,
    trainer: Trainer,
    *,
    init_state: Callable,
    segment: Callable,
    evaluate_chunk: Callable,
    evaluate_chunks: Callable,
    with_threshold: Callable,
    put: Callable[[Any], Any] = jax.device_put,
  ):
    self.trainer = trainer
    self.dataset = trainer.task.dataset
    self._init_state, self._segment = init_state, segment
    self._evaluate_chunk, self._with_threshold, self._put = evaluate_chunk, with_threshold, put
    self._evaluate_chunks = evaluate_chunks
    self._pool = concurrent.futures.ThreadPoolExecutor(max_workers=1)
    self._pending: dict[tuple[bytes, int], concurrent.futures.Future] = {}
    self._orders: dict[bytes, HostOrder] = {}
    self._start: tuple[jax.Array, jax.Array, Evaluation] | None = None  # the last key's start

  def _window_data(self, key_id: bytes, key: jax.Array, window: int) -> tuple[np.ndarray, ...]:
    """The minibatches of window ``window``, gathered from the source: ``(eval_every, B, ...)``."""
    trainer = self.trainer
    if key_id not in self._orders:
      _, data_key = jax.random.split(key)
      self._orders = {key_id: HostOrder(data_key, trainer.num_train, trainer.batch_size)}
    first = window * trainer.eval_every
    rows = self._orders[key_id].steps(first, trainer.eval_every)
    where = f"steps {first}-{first + trainer.eval_every - 1}"
    x, y = self.dataset.gather("train", rows.ravel(), where=where)
    shape = rows.shape
    return x.reshape(*shape, *x.shape[1:]), y.reshape(*shape, *y.shape[1:])

  def _fetch(self, key: jax.Array, window: int) -> concurrent.futures.Future:
    key_id = _key_id(key)
    future = self._pending.pop((key_id, window), None)
    if future is None:
      future = self._pool.submit(self._window_data, key_id, key, window)
    return future

  def evaluate(self, state: RunState, split: str) -> dict[str, jax.Array]:
    """The metrics of ``split`` at ``state``, streamed in evaluation batches.

    Whole batches travel in stacks of at most a window's examples, each stack evaluated by
    one program (one dispatch, its buffers reused across the stack); a last partial batch
    goes alone. Device memory still holds O(window) examples.
    """
    trainer = self.trainer
    size, n = trainer.eval_batch_size, len(self.dataset.source(split))
    per_stack = max(1, trainer.eval_every * trainer.batch_size // size)
    whole = n // size
    pieces = [
      np.arange(first * size, min(first + per_stack, whole) * size)
      for first in range(0, whole, per_stack)
    ]
    if n % size:
      pieces.append(np.arange(whole * size, n))

    def fetch(rows):
      x, y = self.dataset.gather(split, rows, where=f"{split} evaluation")
      if len(rows) % size == 0:  # a stack of whole batches
        x, y = x.reshape(-1, size, *x.shape[1:]), y.reshape(-1, size, *y.shape[1:])
      return self._put((x, y))

    average = None
    for rows, batch in zip(pieces, prefetch(fetch, pieces), strict=True):
      if len(rows) % size == 0:
        weights = np.float32([chunk_weight(start, size) for start in rows[::size]])
        average = self._evaluate_chunks(state, average, batch, weights)
      else:
        average = self._evaluate_chunk(state, average, batch, chunk_weight(rows[0], len(rows)))
    return average

  def _evaluation(self, state: RunState, train_loss: jax.Array) -> Evaluation:
    return evaluation_from(train_loss, self.evaluate(state, "val"), self.evaluate(state, "test"))

  def init(self, hp: Any, key: jax.Array) -> tuple[RunState, Evaluation]:
    """The initial state and the step-0 evaluation (a full, streamed pass over the training set).

    Every member of a seed starts from the seed's parameters, so a sweep's chunks after the
    first of a seed (the same ``key`` object) take its evaluation and threshold: a pass over
    the training, val and test sources saved per chunk, with the numbers it would give.
    """
    state = self._init_state(hp, key)
    if self._start is not None and self._start[0] is key:
      _, threshold, evaluation = self._start
      return state._replace(threshold=jnp.copy(threshold)), evaluation  # segments donate states
    initial_loss = self.evaluate(state, "train")["loss"]
    state = self._with_threshold(state, initial_loss)
    evaluation = self._evaluation(state, initial_loss)
    self._start = (key, jnp.copy(state.threshold), evaluation)
    return state, evaluation

  def segment(
    self, hp: Any, key: jax.Array, state: RunState, first_window: Any
  ) -> tuple[RunState, Segment]:
    """Train window ``first_window`` on its streamed minibatches, then evaluate."""
    window = int(first_window)
    data = self._put(self._fetch(key, window).result())
    state, part = self._segment(hp, key, state, np.int32(window), data)
    if window + 1 < self.trainer.num_windows:  # gather the next window while this one runs
      self._pending = {(_key_id(key), window + 1): self._fetch(key, window + 1)}
    evaluation = self._evaluation(state, part.evaluation.train_loss[..., 0])
    window_axis = jax.tree.map(lambda a: a[..., None], evaluation)
    return state, part._replace(evaluation=window_axis)
