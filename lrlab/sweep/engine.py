"""The sweep engine: K hyperparameter settings trained as one ``jit(vmap(scan))`` program.

The member axis is vmapped and sharded over a 1-D mesh of every device; members
run in chunks (one compilation per chunk size), and each chunk runs in segments
of evaluation windows (one compiled segment reused), so the sweep can report
progress and checkpoint between segments while its state stays on device.
"""

import math
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import jax
import numpy as np
from jax.typing import ArrayLike
from tqdm.auto import tqdm

from lrlab.sweep import arguments, checkpoint, chunking, hyperparameters
from lrlab.sweep import devices as devices_lib
from lrlab.sweep.grids import check_grid, product
from lrlab.sweep.programs import MakeTx, SeedRows, _compiled_for
from lrlab.sweep.result import SweepResult
from lrlab.sweep.storage import environment_metadata
from lrlab.train import Evaluation, History, Segment, Trainer
from lrlab.train.compiling import CompileClock

MAX_SEGMENTS, MIN_SEGMENTS = 50, 10


class Stopped(Exception):
  """``run`` stopped because ``should_stop()`` said so; ``.position`` is where it saved."""

  def __init__(self, position: dict[str, int], checkpoint_dir: str | None) -> None:
    saved = f"saved in {checkpoint_dir!r}" if checkpoint_dir else "not saved (no checkpoint_dir)"
    where = ", ".join(f"{name.replace('_', ' ')} {value}" for name, value in position.items())
    super().__init__(f"sweep stopped at {where}; progress {saved}.")
    self.position, self.checkpoint_dir = position, checkpoint_dir


def _windows_per_segment(num_windows: int) -> int:
  """The smallest divisor ``w`` of ``num_windows`` giving at most :data:`MAX_SEGMENTS` segments;
  if under :data:`MIN_SEGMENTS` (53 windows: one, no checkpoint), the largest giving that many."""
  divisors = [w for w in range(1, num_windows + 1) if num_windows % w == 0]
  w = next(w for w in divisors if num_windows // w <= MAX_SEGMENTS)
  if num_windows // w >= min(MIN_SEGMENTS, num_windows):
    return w
  return max(w for w in divisors if num_windows // w >= MIN_SEGMENTS)


def _shapes(tree: Any) -> Any:
  return jax.tree.map(lambda leaf: (tuple(leaf.shape), str(leaf.dtype)), tree)


def _pad(grid: dict[str, np.ndarray], size: int) -> dict[str, np.ndarray]:
  """Repeat the last member so every column has ``size`` entries (padding is dropped later)."""
  return {k: np.concatenate([v, np.repeat(v[-1:], size - len(v))]) for k, v in grid.items()}


def _concat(trees: Sequence[Any], axis: int = 0) -> Any:
  return jax.tree.map(lambda *leaves: np.concatenate(leaves, axis=axis), *trees)


def _next_position(seed: int, chunk: int, num_chunks: int) -> dict[str, int]:
  last = chunk + 1 == num_chunks
  return {"seed": seed + last, "chunk": 0 if last else chunk + 1, "segment": 0}


def _templates(state_shape: Any) -> dict[str, Any]:
  """Tree structures of what a checkpoint holds (shapes come from the file)."""
  evaluation = Evaluation(*[0] * len(Evaluation._fields))
  return {
    "done": History(*[0] * len(History._fields)),
    "state": state_shape,
    "first": evaluation,
    "segments": Segment(evaluation, 0),
  }


def run(
  task: Any,
  make_tx: MakeTx,
  grid: Mapping[str, ArrayLike],
  *,
  steps: int,
  batch_size: int | None,
  key: jax.Array,
  eval_every: int,
  seeds: int | Sequence[int] = 1,
  devices: Sequence[jax.Device] | None = None,
  chunk_size: int | str | None = None,
  checkpoint_dir: str | None = None,
  checkpoint_interval: float = 30.0,
  progress: bool = True,
  target: tuple[str, float] | None = None,
  divergence_factor: float = 10.0,
  folds: int | None = None,
  tx_config: Mapping[str, Any] | None = None,
  eval_batch_size: int | None = None,
  should_stop: Callable[[], bool] | None = None,
  keep_checkpoint: bool = False,
) -> SweepResult:
  """Train every member of ``grid`` on ``task`` for every seed, in one compiled program per chunk.

  Member ``k`` trains with ``make_tx(hp_k)``, where ``hp_k`` maps each grid
  axis to the member's value as a traced scalar (float32, or int32 for integer
  axes): write ``make_tx`` as for a single run, following the vmap rule.
  Reading an axis the grid lacks raises a ``KeyError`` naming the grid's axes;
  an axis ``make_tx`` never reads gives an :class:`lrlab.sweep.UnusedAxisWarning` (its
  members would be copies); using a hyperparameter as a Python number raises a
  ``TypeError`` that says why it cannot be one.

  - Common random numbers: all members of a seed share the initial parameters
    and the minibatch order (seed ``s`` uses ``fold_in(key, s)``), so two
    members differ only by their hyperparameters; seeds vary both.
  - Devices: the member axis is sharded over a 1-D mesh of ``devices`` (default:
    every device, across hosts after ``jax.distributed.initialize()``), padding
    the grid with copies of its last member to a multiple of the chunk size.
  - Several processes (``jax.distributed``): call ``run`` with the same
    arguments in every process. Each process places its own devices' shards,
    every process returns the whole result, and only process 0 shows progress
    and writes checkpoints, so ``checkpoint_dir`` must be on a file system all
    processes share; a mismatch (another chunk size, another checkpoint seen)
    raises instead of hanging. On CPU, collectives need
    ``jax.config.update("jax_cpu_collectives_implementation", "gloo")``.
  - Chunks: ``chunk_size`` members run at once (default:
    :func:`lrlab.sweep.devices.auto_chunk_size`; ``"auto"`` measures the
    fastest, :mod:`lrlab.sweep.chunking`); the chunk programs are
    compiled once, ahead of time, and reused for every chunk and seed, and
    by later calls with the same task object, ``make_tx`` and settings
    (see :func:`~lrlab.sweep.clear_cache`).
  - Segments: each chunk runs in at most 50 segments of whole evaluation
    windows; between segments the engine updates the progress bar and
    checkpoints, while the members' state stays on device.
  - Model state and streamed data: each member carries its own model state
    (BatchNorm statistics) beside its parameters, and the members of a seed
    share the dropout masks (:func:`lrlab.train.step_key`). A task whose data
    stream from a source (:func:`lrlab.data.from_source`) runs one evaluation
    window per segment: the seed's minibatches, shared by the chunk's members,
    are gathered on the host one window ahead while the current one computes,
    and evaluation streams in batches of ``eval_batch_size``; the result equals
    the resident one at the same ``eval_batch_size``, bit for bit for chunks of a few
    members, to float rounding for wide ones (the two are different programs, and XLA may
    order a wide chunk's reductions differently in each: 2.4e-7 in a loss near 1 for chunks
    of 64 to 512 MLP members on the 2-core CPU).
  - Divergence: a member whose loss is non-finite or above ``divergence_factor``
    times its initial loss is frozen and flagged; its neighbours' numbers are
    unchanged, bit for bit. (Bit for bit at the same chunk size: the chunk's
    width is part of the compiled program, so adding or removing members can
    change the float rounding of all of them, by about 1e-7, when the chunk
    size is automatic.)
  - Checkpoints: with ``checkpoint_dir``, progress is saved atomically after
    every chunk and, mid-chunk, at most every ``checkpoint_interval`` seconds;
    calling ``run`` again with the same arguments (after a crash, even SIGKILL)
    resumes, with the chunk size it began with, and gives the same result as
    an uninterrupted run; ``result.metadata["resumed_from"]`` says where it
    picked up. A checkpoint of a different sweep is refused: the fingerprint
    covers the settings, the grid, the task's data, the structure and shapes
    of the members' state, ``make_tx``'s qualified name, ``tx_config`` and the
    chunk's programs (:func:`lrlab.sweep.checkpoint.program_digest`), so an
    edit to the model's or ``make_tx``'s code that changes the arithmetic is
    caught (as is another JAX version).

  Args:
    task: an :class:`lrlab.tasks.Task` or a registered task name.
    make_tx: ``hp -> optax.GradientTransformation``.
    grid: the members, a mapping of axis name to a 1-D array (see
      :func:`lrlab.sweep.log_grid` and friends).
    steps: updates per member, > 0.
    batch_size: examples per minibatch, or ``None`` for full batch.
    key: one ``jax.random`` key (``jax.random.key(seed)``, or a raw uint32 key).
    eval_every: steps between evaluations; must divide ``steps``.
    seeds: the number of seeds, or the seed values (distinct integers in [0, 2**32)).
    devices: devices of the member mesh (default: all).
    chunk_size: members per compiled chunk, a multiple of the device count;
      ``None`` (default): :func:`lrlab.sweep.devices.auto_chunk_size`'s estimate;
      ``"auto"``: measured (:mod:`lrlab.sweep.chunking`), and remembered on disk
      per machine. Either way the checkpoint's when resuming; the choice is in
      ``result.metadata["chunk_choice"]``.
    checkpoint_dir: where to keep resumable progress; ``None`` for none.
    checkpoint_interval: minimum seconds between mid-chunk checkpoints, >= 0.
    progress: show a progress bar.
    target: ``(metric, value)`` for ``steps_to_target``, e.g. ``("val_accuracy", 0.6)``.
    divergence_factor: divergence threshold as a multiple of the initial loss.
    folds: ``k`` for k-fold cross-validation as one more vmapped axis: the
      task's ``n`` train and val examples are pooled and cut into ``k`` folds of
      ``n // k`` (:class:`lrlab.train.Trainer` says which ``n % k`` are left out); the
      grid gains an integer axis ``"fold"`` (last, so it varies fastest), and
      each member trains on the other folds and reports val metrics on its
      own. The cross-validated estimate of a setting is the mean over its
      folds. ``make_tx`` never sees the ``"fold"`` axis.
    tx_config: a JSON-able description of what ``make_tx`` builds beyond the
      grid (optimizer name, fixed arguments, schedule), stored in
      ``result.config["tx"]`` and part of the checkpoint's fingerprint.
    eval_batch_size: examples per evaluation batch (``None``: a resident
      split in one batch, a streamed one in batches of 1024).
    should_stop: called at every segment boundary; when it returns True, the
      sweep saves a checkpoint there (with ``checkpoint_dir``) and raises
      :class:`Stopped` (e.g. on SIGINT; with several processes, true in one stops all).
    keep_checkpoint: leave the finished sweep's checkpoint in ``checkpoint_dir`` (a call with
      the same arguments then returns the result without training), for a caller that
      removes it once the result is saved; by default it is removed on return.

  Returns:
    A :class:`lrlab.sweep.SweepResult` with every member's curves and summaries.

  Example:
    >>> result = lrlab.sweep.run(
    ...     "quadratic", lambda hp: lrlab.optimizers.sgd(hp["lr"]),
    ...     {"lr": np.array([0.5, 1.0, 1.9, 2.1])}, steps=100, batch_size=None,
    ...     key=jax.random.key(0), eval_every=50, progress=False)
    >>> result.history.diverged.tolist()  # 2/L = 2 on the default quadratic
    [[False, False, False, True]]
  """
  started, clock = time.perf_counter(), CompileClock().start()
  task = arguments.check_task(task)
  arguments.check_functions(make_tx, should_stop)
  grid = arguments.check_traceable(check_grid(grid))
  arguments.check_axis_names(grid)
  if "fold" in grid:  # the k-fold axis: the trainer reads it, make_tx never sees it
    raise ValueError(f"grid must not have an axis named 'fold' (folds= adds it); got {list(grid)}.")
  if folds is not None:
    if isinstance(folds, bool) or not isinstance(folds, int | np.integer) or folds < 2:
      raise ValueError(f"folds must be None or an integer >= 2; got {folds!r}.")
    grid = product(grid, fold=np.arange(folds))
  seed_values = arguments.seed_values(seeds)
  arguments.check_key(key)
  target = arguments.check_target(target, task)
  tx_config = arguments.check_tx_config(tx_config)
  arguments.check_settings(checkpoint_interval, divergence_factor, checkpoint_dir)
  trainer = Trainer(
    task,
    steps=steps,
    batch_size=batch_size,
    eval_every=eval_every,
    divergence_factor=divergence_factor,
    folds=folds,
    eval_batch_size=eval_batch_size,
  )
  mesh = devices_lib.member_mesh(devices)
  num_devices = mesh.devices.size
  num_members = len(next(iter(grid.values())))
  # A streamed task runs one window per segment: its evaluation streams from the host.
  windows = 1 if task.streamed else _windows_per_segment(trainer.num_windows)
  choice = None  # how an automatic chunk size was chosen (chunking.choose), for the metadata
  if chunk_size in (None, "auto") and checkpoint_dir is not None:
    saved = checkpoint.saved_chunk_size(checkpoint_dir, num_devices)  # resume as the sweep began
    chunk_size, choice = (chunk_size, None) if saved is None else (saved, {"method": "checkpoint"})
  if chunk_size is None or (isinstance(chunk_size, str) and chunk_size == "auto"):
    columns = {k: arguments.as_traced(v) for k, v in grid.items()}
    measure = chunk_size == "auto"
    chunk_size, choice = chunking.automatic(measure, trainer, make_tx, mesh, windows, columns, key)
  else:
    arguments.check_chunk_size(chunk_size, num_devices, "None, 'auto'")
  (chunk_size,) = devices_lib.agree((int(chunk_size),), "the chunk size (pass chunk_size=)")
  num_chunks = math.ceil(num_members / chunk_size)
  padded = _pad(grid, num_chunks * chunk_size)
  chunk_hp = lambda c: {
    k: arguments.as_traced(v[c * chunk_size : (c + 1) * chunk_size]) for k, v in padded.items()
  }
  num_segments = trainer.num_windows // windows
  compiled = _compiled_for(trainer, make_tx, mesh, windows, chunk_hp(0), key)
  if compiled.unread:
    warnings.warn(
      f"make_tx never reads the grid axis {', '.join(map(repr, compiled.unread))}: members "
      "that differ only there train identically. Read it as hp[name] in make_tx, or drop it.",
      hyperparameters.UnusedAxisWarning,
      stacklevel=2,
    )

  config = {
    "task": task.name,
    "make_tx": arguments.qualified_name(make_tx),
    "tx": tx_config,
    "steps": steps,
    "batch_size": batch_size,
    "eval_every": eval_every,
    "divergence_factor": float(divergence_factor),
    "target": target,
    "seeds": seed_values.tolist(),
    "key": arguments.key_data(key),
    "chunk_size": int(chunk_size),
    "num_devices": int(num_devices),
    "windows_per_segment": windows,
    "folds": folds,
    "eval_batch_size": trainer.eval_batch_size,
    "streamed": task.streamed,
  }
  # The data, the state's shapes, the programs (model, make_tx) tell same-named sweeps apart.
  fingerprint = checkpoint.fingerprint(
    config, grid, *arguments.task_arrays(task), task.L, task.mu, _shapes(compiled.state_shape),
    compiled.digest,
  )  # fmt: skip
  done: list[History] = []  # finished chunks, seed-major
  position = {"seed": 0, "chunk": 0, "segment": 0}
  resumed: dict[str, Any] = {}
  resumed_from = None
  # With several processes, process 0 writes the checkpoints and every process reads them.
  writer = jax.process_index() == 0
  members, everywhere = devices_lib.member_sharding(mesh), devices_lib.replicated(mesh)
  if checkpoint_dir is not None:
    templates = _templates(compiled.state_shape)
    loaded = checkpoint.load(checkpoint_dir, fingerprint, templates, config=config)
    where = (-1, -1, -1) if loaded is None else tuple(loaded[0][k] for k in position)
    devices_lib.agree(where, "where to resume from (the checkpoint each process reads)")
    if loaded is not None:
      position, resumed = loaded
      resumed_from = dict(position)
      if "done" in resumed:
        finished = resumed.pop("done")
        count = position["seed"] * num_chunks + position["chunk"]
        done = [
          jax.tree.map(lambda a, i=i: a[i * chunk_size : (i + 1) * chunk_size], finished)
          for i in range(count)
        ]

  def save(position: dict[str, int], **mid_chunk: Any) -> None:
    trees = devices_lib.to_host(mid_chunk)  # a collective: every process takes part
    if done:
      trees["done"] = _concat(done)
    if writer:
      checkpoint.save(
        checkpoint_dir, fingerprint, position, trees, chunk_size=int(chunk_size), config=config
      )

  bar = tqdm(
    total=len(seed_values) * num_chunks * num_segments,
    initial=len(done) * num_segments + position["segment"],
    desc=f"{task.name}: {num_members} members x {len(seed_values)} seeds",
    unit="segment",
    disable=not progress or not writer,
  )
  last_save, stop = time.monotonic(), False
  real_members = lambda c: min(chunk_size, num_members - c * chunk_size)  # the rest is padding
  diverged_before = sum(
    int(np.sum(d.diverged[: real_members(i % num_chunks)])) for i, d in enumerate(done)
  )
  for s in range(position["seed"], len(seed_values)):
    seed_key = devices_lib.to_mesh(jax.random.fold_in(key, int(seed_values[s])), everywhere)
    rows = SeedRows(compiled, seed_key, trainer)
    for c in range(position["chunk"] if s == position["seed"] else 0, num_chunks):
      hp = devices_lib.to_mesh(chunk_hp(c), members)
      if "state" in resumed:
        state, first = devices_lib.to_mesh((resumed.pop("state"), resumed.pop("first")), members)
        parts, start = [resumed.pop("segments")], position["segment"]
      else:
        (state, first), parts, start = compiled.init(hp, seed_key), [], 0
      real = real_members(c)
      for g in range(start, num_segments):
        state, part = compiled.segment(
          hp, seed_key, state, np.int32(g * windows), rows[g * windows]
        )
        parts.append(devices_lib.to_host(part))
        bar.update(1)
        diverged = diverged_before + int(np.sum(devices_lib.to_host(state.diverged)[:real]))
        bar.set_postfix(diverged=diverged, refresh=False)
        stop = should_stop is not None and should_stop()
        due = stop or time.monotonic() - last_save >= checkpoint_interval
        stop, due = devices_lib.in_any_process(stop, due)  # each process's clock may differ
        where = {"seed": s, "chunk": c, "segment": g + 1}
        if checkpoint_dir is not None and g + 1 < num_segments and due:
          mid_chunk = {"state": state, "first": first, "segments": _concat(parts, axis=1)}
          save(where, **mid_chunk)
          last_save = time.monotonic()
        if stop and g + 1 < num_segments:
          bar.close()
          raise Stopped(where, checkpoint_dir)
      first, segments = devices_lib.to_mesh((first, _concat(parts, axis=1)), members)
      done.append(devices_lib.to_host(compiled.history(state, first, segments)))
      diverged_before += int(np.sum(done[-1].diverged[:real]))
      if checkpoint_dir is not None:
        save(_next_position(s, c, num_chunks))
        last_save = time.monotonic()
      if stop and (s + 1 < len(seed_values) or c + 1 < num_chunks):  # asked at its last segment
        bar.close()
        raise Stopped(_next_position(s, c, num_chunks), checkpoint_dir)
  bar.close()

  per_seed = [
    jax.tree.map(lambda a: a[:num_members], _concat(done[s * num_chunks : (s + 1) * num_chunks]))
    for s in range(len(seed_values))
  ]
  history = jax.tree.map(lambda *seeds: np.stack(seeds), *per_seed)
  metadata = environment_metadata()
  metadata.update(
    wall_seconds=time.perf_counter() - started,
    compile_seconds=clock.stop()[0],
    resumed_from=resumed_from,
    device_kind=mesh.devices.flat[0].device_kind,
    num_devices=int(num_devices),
    chunk_choice=choice,
  )
  result = SweepResult(
    grid=grid, seeds=seed_values, history=history, config=config, metadata=metadata
  )
  if checkpoint_dir is not None and writer and not keep_checkpoint:
    checkpoint.clear(checkpoint_dir)
  return result
