"""The sweep's compiled chunk programs, and the cache that reuses them across calls.

:class:`_Compiled` holds a chunk's programs (initialize the members, evaluate them at step 0,
run one segment), compiled ahead of time from shapes, or, for a task whose data stream from the
host, its :class:`lrlab.train.StreamedRun`; :class:`SeedRows` shares a seed's minibatch indices
between its chunks; :func:`_compiled_for` and :func:`_member_footprint` look them (and a
member's memory footprint, for the automatic chunk size) up by everything they depend on,
keeping the last :data:`CACHE_SIZE` calls' (:mod:`lrlab.sweep.cache` shows and clears them).
"""

import collections
import concurrent.futures
import os
import time
from collections.abc import Callable, Iterable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

from lrlab.sweep import checkpoint, hyperparameters
from lrlab.sweep import devices as devices_lib
from lrlab.train import StreamedRun, Trainer, compiling
from lrlab.train.compiling import one_shot_options

MakeTx = Callable[[dict[str, jax.Array]], optax.GradientTransformation]

#: How many distinct calls' chunk programs :func:`lrlab.sweep.run` keeps for reuse
#: (see :func:`lrlab.sweep.clear_cache`).
CACHE_SIZE = 8


class _Compiled:
  """A chunk's programs: ``init(hp, key)`` (initialize and evaluate members at step 0) and
  ``segment(hp, key, state, first_window)``, compiled ahead of time (resident data) or on
  first use by a :class:`lrlab.train.StreamedRun` (streamed data).

  For resident data, :meth:`init_state` alone initializes (the threshold left at infinity)
  from the seed's :meth:`weights`; the initialization, the segment, the seed's weights and its
  minibatch draw are lowered here and
  compiled side by side by :func:`compile_all` (here, unless ``compile_now`` is false, so
  that the step-0 evaluation, lowered by :meth:`lower_first_evaluation`, compiles with them),
  else the step-0 evaluation on the first call of ``init`` (the chunk probe needs it once).
  """

  def __init__(
    self, trainer: Trainer, make_tx: MakeTx, mesh, windows: int, hp, key, compile_now=True
  ):
    members = devices_lib.member_sharding(mesh)
    everywhere = devices_lib.replicated(mesh)
    # Initialization runs once: compiled at a cheaper level (see lrlab.train.compiling).
    once = one_shot_options(mesh.devices.flat[0].platform)

    read: set[str] = set()

    def first_evaluation(hp, state):
      def one(h, s):
        _, fold = hyperparameters.split(h, read)
        return trainer.first_evaluation(s, fold)

      if trainer.folds is not None:  # each member's fold has its own training and val rows
        return jax.vmap(one)(hp, state)
      # Every member starts from the seed's parameters and model state (common random
      # numbers: only the optimizer state differs), so the step-0 evaluation, a pass over the
      # training, val and test sets, is the first member's, and its threshold and metrics are
      # copied to the others: one evaluation per device and chunk, not one per member.
      lead, evaluation = jax.vmap(one)(*jax.tree.map(lambda a: a[:1], (hp, state)))
      widen = lambda a: jnp.broadcast_to(a, (state.diverged.shape[0], *a.shape[1:]))
      return state._replace(threshold=widen(lead.threshold)), jax.tree.map(widen, evaluation)

    def segment(hp, key, state, first_window, rows):
      def one(h, s):
        h, fold = hyperparameters.split(h, read)
        tx = hyperparameters.make(make_tx, h)
        return trainer.segment(tx, key, s, first_window, windows, fold, rows=rows)

      return jax.vmap(one)(hp, state)

    spec = lambda x, sharding: jax.ShapeDtypeStruct(np.shape(x), x.dtype, sharding=sharding)
    hp_spec = {name: spec(column, members) for name, column in hp.items()}
    key_spec = spec(key, everywhere)
    self.history = jax.jit(jax.vmap(trainer.history))
    self.streamed, self._draw = trainer.task.streamed, None
    if trainer.task.streamed:
      with hyperparameters.explain_traced_hyperparameters():  # make_tx traces in both lowerings
        self._streamed(trainer, make_tx, members, everywhere, read, hp_spec, key_spec, once)
      return

    # Initialization and the step-0 evaluation are two programs, as for a streamed task (see
    # Trainer.first_evaluation); each device runs them on its own members.
    jit = devices_lib.jit_per_device

    # A seed's parameters and model state do not depend on the member: their own program draws
    # them (:meth:`weights`, once per seed for all its chunks; one program for every chunk width,
    # :data:`_shared`), and each width's program only builds the members' states around them.
    # The random draw is most of an initialization's compiling (1.1 of 1.4 CPU seconds for the
    # MNIST-1D MLP), which the chunk probe paid again for every width it tried.
    def start(hp, weights):
      def one(h):
        h, _ = hyperparameters.split(h, read)
        return trainer.state_from(hyperparameters.make(make_tx, h), *weights)

      return jax.vmap(one)(hp)

    weigh = jax.jit(trainer.init_weights, in_shardings=everywhere, out_shardings=everywhere)
    weights_shape = jax.tree.map(
      lambda a: jax.ShapeDtypeStruct(a.shape, a.dtype, sharding=everywhere),
      jax.eval_shape(weigh, key_spec),
    )
    start = jit(start, (members, everywhere))
    first_evaluation = jit(first_evaluation, (members, members))
    segment = jit(segment, (members, everywhere, members, everywhere, everywhere), donate_argnums=2)
    # Minibatch indices depend on the seed's key and the step, not on the member: their own
    # program draws them, so a sweep draws a seed's once per segment for all its chunks; one
    # program for every chunk width (:data:`_shared`), compiled once for the probe's widths.
    rows = None
    if trainer.batch_size is not None:
      draw = lambda key, first_window: trainer.minibatch_rows(key, first_window, windows)
      draw = jax.jit(draw, in_shardings=(everywhere, everywhere), out_shardings=everywhere)
      rows = jax.eval_shape(draw, key_spec, np.int32(0))
      rows = jax.ShapeDtypeStruct(rows.shape, rows.dtype, sharding=everywhere)
    # Lowered from shapes alone, so the programs do not depend on where the example values
    # live (with several processes, jit takes only global arrays).
    with hyperparameters.explain_traced_hyperparameters():
      state_shape = jax.eval_shape(start, hp_spec, weights_shape)
      weights_lowered = weigh.lower(key_spec)
      self._lowered = {
        "_start": (start.lower(hp_spec, weights_shape), once),
        "_segment": (segment.lower(hp_spec, key_spec, state_shape, np.int32(0), rows), None),
      }
    self.digest = checkpoint.program_digest(
      weights_lowered, *(lowered for lowered, _ in self._lowered.values())
    )
    # Programs of the task rather than of the chunk width, shared by every width (:data:`_shared`).
    self._shared_ids = {"_weights": (trainer.task, key_spec)}
    lowerings = {"_weights": lambda: (weights_lowered, once)}
    if rows is not None:
      draw_id = (windows, key_spec, trainer.eval_every, trainer.batch_size, trainer.num_train)
      self._shared_ids["_draw"] = draw_id
      lowerings["_draw"] = lambda: (draw.lower(key_spec, np.int32(0)), None)
    for name, ident in self._shared_ids.items():
      setattr(self, name, _shared.get((name, ident)))
      if getattr(self, name) is None:
        self._lowered[name] = lowerings[name]()
    self._seed_weights = None  # the last seed's (key, weights)
    self._lower_first = lambda: first_evaluation.lower(hp_spec, state_shape)
    self._first_evaluation = None
    # The last seed's step-0 evaluation, (key, threshold, metrics): the same for every chunk of
    # the seed, whose members all start from its parameters (not under folds: per member).
    self._shares_start, self._seed_start = trainer.folds is None, None
    self.init = self._init
    # Axes make_tx never read: members differing only there would train identically.
    self.unread = sorted(set(hp) - read - {"fold"})
    self.state_shape = state_shape
    if compile_now:
      compile_all([self])

  def lower_first_evaluation(self) -> None:
    """Lowers the step-0 evaluation now, for :func:`compile_all` to compile with the rest."""
    if self._first_evaluation is None and "_first_evaluation" not in self._lowered:
      self._lowered["_first_evaluation"] = (self._lower_first(), None)

  def _streamed(self, trainer, make_tx, members, everywhere, read, hp_spec, key_spec, once):
    """A streamed task's programs: one window per segment, data and evaluation from the host
    (:class:`lrlab.train.StreamedRun`); compiled on first use."""

    def init_state(hp, key):
      def one(h):
        h, _ = hyperparameters.split(h, read)
        return trainer.init_state(hyperparameters.make(make_tx, h), key)

      return jax.vmap(one)(hp)

    def segment(hp, key, state, first_window, data):
      def one(h, s):
        h, _ = hyperparameters.split(h, read)
        tx = hyperparameters.make(make_tx, h)
        return trainer.segment(tx, key, s, first_window, 1, data=data)

      return jax.vmap(one)(hp, state)

    self.state_shape = jax.eval_shape(init_state, hp_spec, key_spec)
    self.unread = sorted(set(hp_spec) - read - {"fold"})
    # The shardings of the resident programs, so both partition (and round) alike.
    jit = devices_lib.jit_per_device
    evaluate_chunk = jax.vmap(trainer.evaluate_chunk, in_axes=(0, 0, None, None))
    evaluate_chunks = jax.vmap(trainer.evaluate_chunks, in_axes=(0, 0, None, None))
    init_state = jit(init_state, (members, everywhere), compiler_options=once)
    segment = jit(segment, (members, everywhere, members, everywhere, everywhere), donate_argnums=2)
    run = StreamedRun(
      trainer,
      init_state=init_state,
      segment=segment,
      evaluate_chunk=jit(evaluate_chunk, (members, members, everywhere, everywhere)),
      evaluate_chunks=jit(evaluate_chunks, (members, members, everywhere, everywhere)),
      with_threshold=jit(jax.vmap(trainer.with_threshold), (members, members)),
      put=lambda tree: devices_lib.to_mesh(tree, everywhere),
    )
    self.init, self._segment = run.init, run.segment
    self._lowered = {}
    # Lowered only for the digest (they compile on first use), with one window's minibatches.
    spec, window = trainer.task.dataset.spec, (trainer.eval_every, trainer.batch_size)
    data = tuple(
      jax.ShapeDtypeStruct((*window, *shape), dtype, sharding=everywhere)
      for shape, dtype in ((spec.x_shape, spec.x_dtype), (spec.y_shape, spec.y_dtype))
    )
    lowered = segment.lower(hp_spec, key_spec, self.state_shape, np.int32(0), data)
    self.digest = checkpoint.program_digest(init_state.lower(hp_spec, key_spec), lowered)

  def weights(self, key: jax.Array) -> tuple[Any, Any]:
    """Seed ``key``'s initial ``(params, model_state)`` (:meth:`lrlab.train.Trainer.init_weights`),
    replicated; drawn once and kept while the calls pass the same ``key`` object (a seed's
    chunks), as every member of a seed starts from them (resident data)."""
    if self._seed_weights is None or self._seed_weights[0] is not key:
      self._seed_weights = (key, self._weights(key))
    return self._seed_weights[1]

  def init_state(self, hp, key: jax.Array):
    """The members' initial :class:`lrlab.train.RunState` for seed ``key``: its
    :meth:`weights` and each member's optimizer state (the threshold left at infinity)."""
    return self._start(hp, self.weights(key))

  def draw(self, key: jax.Array, first_window: Any) -> jax.Array | None:
    """The minibatch indices of the segment from ``first_window`` for a seed's ``key``
    (:meth:`lrlab.train.Trainer.minibatch_rows`), to hand to :meth:`segment` for every chunk
    of the seed; ``None`` where there is nothing to draw (full batch, streamed data)."""
    return None if self._draw is None else self._draw(key, first_window)

  def segment(self, hp, key: jax.Array, state, first_window: Any, rows: jax.Array | None = None):
    """Train a chunk through one segment from ``first_window``: ``(state, Segment)``. ``rows``:
    :meth:`draw`'s indices for this seed and segment, drawn here when ``None``."""
    if self.streamed:
      return self._segment(hp, key, state, first_window)
    if rows is None:
      rows = self.draw(key, first_window)
    return self._segment(hp, key, state, first_window, rows)

  def _init(self, hp, key):
    """Initialize and evaluate at step 0 (resident data); compiles the evaluation once. Every
    member of a seed starts from the seed's parameters, so the chunks after the first of a seed
    (the same ``key`` object) take its evaluation and threshold instead of evaluating again:
    a pass over the training, val and test sets saved per chunk."""
    if self._first_evaluation is None:
      self._first_evaluation = self._lower_first().compile()
    state = self.init_state(hp, key)
    if self._shares_start and self._seed_start is not None and self._seed_start[0] is key:
      _, threshold, first = self._seed_start
      return state._replace(threshold=jnp.copy(threshold)), first  # a segment donates its state
    state, first = self._first_evaluation(hp, state)
    if self._shares_start:
      self._seed_start = (key, jnp.copy(state.threshold), first)
    return state, first


#: The most bytes of one seed's minibatch indices a sweep keeps on each device to share
#: between its chunks (above, each chunk draws its own, as a lone run does).
SHARED_ROWS_BYTES = 64 * 2**20


class SeedRows:
  """One seed's minibatch indices by first window (:meth:`_Compiled.draw`), drawn when a chunk
  first needs them and kept for the seed's other chunks: drawing sorts a random key per example
  for each epoch, 8.6 ms for a 200-step segment of the MNIST-1D MLP on the 2-core CPU, about an
  eighth of a chunk of 8 members' segment (``benchmarks/cpu-2core/shared_rows_ab.json``). Kept
  only for a run (``trainer``) of at most :data:`SHARED_ROWS_BYTES` of indices, its steps times
  its batch; ``None`` (drawn in the segment) above, and where there is nothing to draw."""

  def __init__(self, compiled: _Compiled, seed_key: jax.Array, trainer: Trainer):
    self.compiled, self.key, self.rows = compiled, seed_key, {}
    self.keep = 4 * trainer.steps * (trainer.batch_size or 0) <= SHARED_ROWS_BYTES

  def __getitem__(self, first_window: int) -> jax.Array | None:
    if not self.keep:
      return None
    if first_window not in self.rows:
      self.rows[first_window] = self.compiled.draw(self.key, np.int32(first_window))
    return self.rows[first_window]


def compile_all(chunks: Iterable[_Compiled]) -> list[_Compiled]:
  """Compiles the programs ``chunks`` lowered, side by side, one thread per core this process
  may use. XLA's CPU compiler already spreads one program over the cores (1.8 of the 2-core
  VM's for an MLP segment), so this gains 5% for a chunk's initialization and segment, nothing
  for two segments. A chunk's programs start compiling as soon as the iteration reaches it, so a
  generator that lowers chunks one by one overlaps lowering with compiling. Returns the chunks,
  compiled; the wait is charged to this thread's :class:`~lrlab.train.compiling.CompileClock`."""
  cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
  done, futures = [], []
  with concurrent.futures.ThreadPoolExecutor(max(1, cores or 1)) as pool:
    for chunk in chunks:
      done.append(chunk)
      for name, (lowered, options) in chunk._lowered.items():
        futures.append((chunk, name, pool.submit(lowered.compile, options)))
      chunk._lowered = {}
    tic = time.perf_counter()
    for chunk, name, future in futures:
      program = future.result()
      setattr(chunk, name, program)
      if name in chunk._shared_ids:
        _remember(_shared, (name, chunk._shared_ids[name]), lambda program=program: program)
    if futures:  # compiled in the pool's threads, where this thread's clocks do not listen
      compiling.charge(time.perf_counter() - tic, len(futures))
  return done


_compiled_cache: collections.OrderedDict[tuple, _Compiled] = collections.OrderedDict()
_state_bytes_cache: collections.OrderedDict[tuple, int] = collections.OrderedDict()
#: The programs every chunk width shares (a seed's weights, its minibatch indices), by
#: ``(name, what they depend on)``: :attr:`_Compiled._shared_ids`.
_shared: collections.OrderedDict[tuple, Any] = collections.OrderedDict()


def _remember(cache: collections.OrderedDict, signature: tuple, build: Callable[[], Any]):
  """``(cache[signature], False)``, or ``(build(), True)`` stored there; keeps the last
  :data:`CACHE_SIZE` signatures used."""
  if signature in cache:
    cache.move_to_end(signature)
    return cache[signature], False
  value = cache[signature] = build()
  while len(cache) > CACHE_SIZE:
    cache.popitem(last=False)
  return value, True


def _compiled_for(
  trainer: Trainer, make_tx: MakeTx, mesh, windows: int, hp, key, evaluate: bool = False
) -> _Compiled:
  """The chunk programs of a call, reused from an earlier call with the same signature.

  The signature is everything the programs depend on: the task and ``make_tx``
  (by identity, as ``jax.jit`` keys functions), the trainer's settings, the
  devices, the segment length and the shapes and dtypes of the chunk's
  hyperparameters and key. With ``evaluate``, new programs compile with their step-0
  evaluation (the chunk probe's first size, which times it).
  """

  def build() -> _Compiled:
    chunk = _Compiled(trainer, make_tx, mesh, windows, hp, key, compile_now=False)
    if evaluate:
      chunk.lower_first_evaluation()
    return compile_all([chunk])[0]

  signature = _signature(trainer, make_tx, mesh, windows, hp, key)
  return _remember(_compiled_cache, signature, build)[0]


def _signature(trainer: Trainer, make_tx: MakeTx, mesh, windows: int, hp, key) -> tuple:
  """What a chunk's programs depend on (see :func:`_compiled_for`)."""
  return (
    trainer.task,
    make_tx,
    trainer.steps,
    trainer.batch_size,
    trainer.eval_every,
    float(trainer.divergence_factor),
    trainer.folds,
    trainer.eval_batch_size,
    tuple(d.id for d in mesh.devices.flat),
    windows,
    tuple((name, v.shape, v.dtype.str) for name, v in sorted(hp.items())),
    (key.shape, str(key.dtype)),
  )


def _member_footprint(trainer: Trainer, make_tx: MakeTx, hp, key) -> tuple[int, int]:
  """Bytes of one member's run state and of the activations one training step keeps for
  its backward pass (the residuals of ``jax.vjp`` of the loss on one minibatch); traced
  once per task, ``make_tx``, batch, training rows and axis dtypes, nothing is computed."""
  one, _ = hyperparameters.split({k: jnp.asarray(v[0]) for k, v in hp.items()}, set())
  signature = (
    trainer.task,
    make_tx,
    trainer.batch_size,
    trainer.num_train,  # a full batch's rows: the fold's under folds
    tuple((name, v.dtype.str) for name, v in sorted(one.items())),
    (key.shape, str(key.dtype)),
  )

  def footprint() -> tuple[int, int]:
    rows = trainer.batch_size or trainer.num_train  # under folds, more than the train split's
    if trainer.task.streamed:
      spec = trainer.task.dataset.spec
      shapes = ((spec.x_shape, spec.x_dtype), (spec.y_shape, spec.y_dtype))
    else:
      shapes = tuple((a.shape[1:], a.dtype) for a in trainer.task.split("train"))
    batch = tuple(jax.ShapeDtypeStruct((rows, *shape), dtype) for shape, dtype in shapes)
    with hyperparameters.explain_traced_hyperparameters():
      state = jax.eval_shape(lambda: trainer.init_state(hyperparameters.make(make_tx, one), key))
    loss = lambda params, ms, batch: trainer.task.loss(params, ms, batch, key)[0]
    vjp = lambda params, ms, batch: jax.vjp(lambda p: loss(p, ms, batch), params)[1]
    residuals = jax.eval_shape(vjp, state.params, state.model_state, batch)
    return devices_lib.tree_bytes(state), devices_lib.tree_bytes(residuals)

  return _remember(_state_bytes_cache, signature, footprint)[0]
