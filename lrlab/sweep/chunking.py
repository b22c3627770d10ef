"""Chunk sizes chosen by measurement: ``lrlab.sweep.run(..., chunk_size="auto")``.

The heuristic :func:`lrlab.sweep.devices.auto_chunk_size` reads cache sizes
that a virtual machine's share of a CPU need not match, so ``"auto"`` times a
few chunk sizes on a short probe, keeps the fastest and remembers it on disk,
per machine (:func:`machine_key`) and per sweep shape (the task's data, the
members' state by structure and shape, the batch, the member count), in
``chunk_sizes.json`` under :func:`lrlab.data.default_cache_dir`
(``$LRLAB_CACHE_DIR``, else ``~/.cache/lrlab``). A later sweep of the same
shape on the same machine starts at once with the remembered size.

The probe climbs a ladder of sizes (the heuristic's choice, then powers of two
times the device count, within the memory limit and the member count): from
the heuristic's size down, then from it up only where no smaller size beat it
(the large sizes are the dear ones to time), each way until two sizes in a row
are no faster than the best of that way (:data:`PATIENCE`), and stops after
:data:`MAX_CANDIDATES` sizes; then it times each of those sizes once more and
keeps the lesser estimate, so a burst of load during the climb does not decide
(:mod:`lrlab.sweep.chunk_choice`). A size's
estimate is ``ceil(K / c)`` chunks times the best time of one probe call of
``c`` members (padding members cost as much as real ones), each call from a
freshly initialized state, as each chunk of the sweep starts. A size is
compiled when the climb first reaches it, without its step-0 evaluation, which
the sweep compiles for the size it keeps (XLA's CPU compiler already spreads one
program over the cores, so compiling sizes side by side ahead of the climb saved
nothing, and compiled sizes it never timed: see
:func:`lrlab.sweep.programs.compile_all`).
"""

import collections
import dataclasses
import hashlib
import json
import math
import os
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from lrlab.data.dataset import Dataset
from lrlab.sweep import devices as devices_lib
from lrlab.sweep import hyperparameters, programs
from lrlab.sweep.chunk_choice import FILENAME as FILENAME
from lrlab.sweep.chunk_choice import MAX_CANDIDATES as MAX_CANDIDATES
from lrlab.sweep.chunk_choice import PATIENCE as PATIENCE
from lrlab.sweep.chunk_choice import cache_path as cache_path
from lrlab.sweep.chunk_choice import climb as climb
from lrlab.sweep.chunk_choice import ladder as ladder
from lrlab.sweep.chunk_choice import machine_key as machine_key
from lrlab.sweep.chunk_choice import measured_chunk_size as measured_chunk_size
from lrlab.tasks import Task
from lrlab.train import Trainer

#: Steps of one probe call when the sweep's own segment is longer than :data:`REUSE_STEPS`.
PROBE_STEPS = 16
#: A sweep whose segment has at most this many steps is probed with its own programs, and the
#: kept size's programs serve the real run (a longer segment would make the probe slow).
REUSE_STEPS = 64
#: Calls timed per chunk size on the climb (the best counts; the first also warms the program
#: up); the climb's second pass over the timed sizes makes one more call each.
PROBE_CALLS = 2


def memory_limit(devices: Sequence[jax.Device], working_set_bytes: int) -> int:
  """The most members a chunk may hold: half the free memory of each device (accelerators) or
  of the host (CPU devices share it) divided by a member's working set."""
  device = devices[0]
  if device.platform == "cpu":
    available = 8 * 2**30
    try:
      with open("/proc/meminfo") as f:
        fields = dict(line.split(":", 1) for line in f)
      available = int(fields["MemAvailable"].split()[0]) * 1024
    except (OSError, KeyError, ValueError):
      pass
    return max(1, available // 2 // max(1, working_set_bytes))
  stats = device.memory_stats() or {}
  free = stats.get("bytes_limit", 16 * 2**30) - stats.get("bytes_in_use", 0)
  return max(1, free // 2 // max(1, working_set_bytes)) * len(devices)


def chunk_limit(trainer: Trainer, make_tx, one: Mapping[str, Any], key, devices) -> int:
  """The most members a chunk of this sweep may hold (:func:`memory_limit`), a member's working
  set counted as 4 copies of its run state and 2 of one step's activations; ``one`` is one
  member's hyperparameter columns."""
  state_bytes, activation_bytes = programs._member_footprint(trainer, make_tx, one, key)
  return memory_limit(devices, 4 * state_bytes + 2 * activation_bytes)


def _shape_key(trainer: Trainer, make_tx, hp: Mapping[str, np.ndarray], key, windows, k) -> str:
  """A hash of what a chunk's speed depends on, besides the machine: the task's data shapes,
  one member's state (structure, shapes, dtypes), the batch and evaluation settings, ``K``."""
  one, _ = hyperparameters.split({n: jnp.asarray(v[0]) for n, v in hp.items()}, set())
  with hyperparameters.explain_traced_hyperparameters():
    state = jax.eval_shape(lambda: trainer.init_state(hyperparameters.make(make_tx, one), key))
  task, segment = trainer.task, windows * trainer.eval_every
  if task.streamed:  # its own programs: data handed in, evaluation on the host
    x_shape = ("streamed", task.dataset.sizes["train"], *task.dataset.spec.x_shape)
  else:
    x_shape = tuple(np.shape(task.split("train")[0]))
  described = [
    task.name,
    x_shape,
    str(jax.tree.structure(state)),
    [(tuple(a.shape), str(a.dtype)) for a in jax.tree.leaves(state)],
    trainer.batch_size,
    trainer.eval_batch_size,
    trainer.folds,
    segment if segment <= REUSE_STEPS else PROBE_STEPS,
    int(k),
  ]
  return hashlib.sha256(json.dumps(described, default=str).encode()).hexdigest()[:24]


def choose(
  trainer: Trainer, make_tx, mesh, windows: int, grid: Mapping[str, np.ndarray], key, heuristic
) -> dict[str, Any]:
  """The chunk size of ``chunk_size="auto"`` for a sweep, and how it was chosen.

  Falls back to ``heuristic`` (``method: "heuristic"``, with the reason) for a sweep
  over several processes, where every process would need to probe alike. Otherwise
  probes (or recalls) as :func:`measured_chunk_size`; each probe call
  runs :data:`PROBE_STEPS` steps of ``c`` members with the sweep's own task,
  batch and optimizer (or one of the sweep's own segments, when that is at
  most :data:`REUSE_STEPS` steps, so the kept size's programs are reused, and
  the step-0 evaluation, timed once, is added to every size's time). A streamed task is
  probed on :func:`stand_in`, its model on a few of its examples made resident, so the
  probe reads a few minibatches from the source, not a pass over it.

  Args:
    trainer, make_tx, mesh, windows, key: as the engine holds them.
    grid: the members' columns, as the engine casts them.
    heuristic: :func:`lrlab.sweep.devices.auto_chunk_size`'s choice, the first timed.

  Returns:
    :func:`measured_chunk_size`'s choice, with ``reused_programs`` (the real run
    runs the probe's programs) and ``compiled`` (the sizes compiled: those timed).
  """
  devices = list(mesh.devices.flat)
  if jax.process_count() > 1:
    why = "not probed: several processes"
    return {"chunk_size": int(heuristic), "method": "heuristic", "reason": why}
  num_members = len(next(iter(grid.values())))
  limit = chunk_limit(trainer, make_tx, {k: v[:1] for k, v in grid.items()}, key, devices)
  sizes = ladder(heuristic, num_members, len(devices), limit)
  heuristic = min(heuristic, sizes[-1])
  streamed = trainer.task.streamed
  reuse = windows * trainer.eval_every <= REUSE_STEPS and not streamed
  probe = trainer
  if not reuse:
    probe = Trainer(
      stand_in(trainer) if streamed else trainer.task, steps=PROBE_STEPS,
      batch_size=trainer.batch_size, eval_every=PROBE_STEPS,
      divergence_factor=trainer.divergence_factor, folds=trainer.folds,
      eval_batch_size=None if streamed else trainer.eval_batch_size,
    )  # fmt: skip
  members = devices_lib.member_sharding(mesh)
  columns = lambda c: {n: np.resize(v, c) for n, v in grid.items()}  # cycles the grid
  prepared: dict[int, programs._Compiled] = {}

  evaluation: list[float] = []  # the step-0 evaluation's seconds, per chunk

  def prepare(c: int) -> programs._Compiled:
    """The programs of size ``c``, compiled on first use; for the sweep's own segment, also
    the first size's step-0 evaluation (timed once)."""
    if c not in prepared:
      if reuse:  # kept in the engine's cache, so the kept size's programs serve the real run
        prepared[c] = programs._compiled_for(
          trainer, make_tx, mesh, windows, columns(c), key, evaluate=not evaluation
        )
      else:  # a probe's own programs, dropped after timing
        prepared[c] = programs._Compiled(probe, make_tx, mesh, 1, columns(c), key)
    return prepared[c]

  shared: list[Any] = []  # the probe's minibatch indices, drawn once as the sweep draws a seed's
  timed: set[int] = set()

  def seconds(c: int) -> float:
    """One probe timing of size ``c``: :data:`PROBE_CALLS` calls, one on the second pass."""
    calls = 1 if c in timed else PROBE_CALLS
    timed.add(c)
    compiled, hp = prepare(c), devices_lib.to_mesh(columns(c), members)
    if not shared:
      shared.append(jax.block_until_ready(compiled.draw(key, np.int32(0))))
    rows = shared[0]
    initialize = lambda: compiled.init_state(hp, key)
    jax.block_until_ready(initialize())  # warms it up (the first timed call warms the segment)
    if reuse and not evaluation:
      # A seed's first chunk also evaluates at step 0, one member's pass over the data (its
      # other members and chunks copy it): timed once, at the first size, and shared out over
      # the chunks of a seed in every size's estimate.
      jax.block_until_ready(compiled.init(hp, key))  # warms the evaluation up
      evaluation.append(_best_time(lambda s: compiled._first_evaluation(hp, s), initialize))
    # Each timed call starts from a freshly initialized state, as every chunk of the real sweep
    # does: the first segment on new buffers is the slower one, the more so the larger the
    # chunk, and timing a second segment on warm buffers favoured large chunks. Where the
    # sweep's own segment is probed, the initialization is timed with it.
    if reuse:
      run = lambda: compiled.segment(hp, key, initialize(), np.int32(0), rows)
      return _best_time(run, calls=calls) + evaluation[0] / math.ceil(num_members / c)
    run = lambda s: compiled.segment(hp, key, s, np.int32(0), rows)
    return _best_time(run, initialize, calls=calls)

  shape = _shape_key(trainer, make_tx, grid, key, windows, num_members)
  choice = measured_chunk_size(machine_key(devices), shape, sizes, heuristic, num_members, seconds)
  measured = choice["method"] == "measured"
  return {**choice, "reused_programs": reuse and measured, "compiled": sorted(prepared)}


def stand_in(trainer: Trainer) -> Task:
  """The resident task a streamed one's chunk sizes are probed on: the same model and loss,
  on its first ``batch_size`` examples of each split (``PROBE_STEPS`` steps of them train as
  the source's would; its evaluation, on the host, is left out of the probe)."""
  task = trainer.task
  arrays = []
  for split in ("train", "val", "test"):
    count = min(trainer.batch_size, task.dataset.sizes[split])
    arrays += task.dataset.gather(split, np.arange(count), where=f"the chunk probe's {split}")
  dataset = Dataset(*arrays, num_classes=task.dataset.num_classes, name=task.dataset.name)
  return dataclasses.replace(task, dataset=dataset)


def _best_time(
  run: Callable[..., Any], setup: Callable[[], Any] | None = None, calls: int = PROBE_CALLS
) -> float:
  """The least seconds of ``calls`` calls of ``run(setup())`` (``run()`` without ``setup``),
  each timed until its result is ready, ``setup`` not timed."""
  best = math.inf
  for _ in range(calls):
    args = () if setup is None else (jax.block_until_ready(setup()),)
    tic = time.perf_counter()
    jax.block_until_ready(run(*args))
    best = min(best, time.perf_counter() - tic)
  return best


#: :func:`automatic`'s answers in this process, by everything they depend on (see
#: :func:`_recall_signature`); the last :data:`lrlab.sweep.programs.CACHE_SIZE` are kept.
_recalled: collections.OrderedDict[tuple, tuple[int, dict[str, Any] | None]] = (
  collections.OrderedDict()
)


def _recall_signature(measure, trainer, make_tx, mesh, windows, grid, key) -> tuple:
  """What :func:`automatic`'s answer depends on: the task and ``make_tx`` (by identity, as the
  engine's program cache), the trainer's settings, the devices, the segment, the members'
  count and dtypes, the key; with ``measure``, also the remembered-sizes file as it is now
  (its path, size and modification time), so a file edited or deleted is read again."""
  signature = (
    measure, trainer.task, make_tx, trainer.steps, trainer.batch_size, trainer.eval_every,
    float(trainer.divergence_factor), trainer.folds, trainer.eval_batch_size,
    tuple(d.id for d in mesh.devices.flat), windows,
    tuple((n, len(v), np.asarray(v).dtype.str) for n, v in sorted(grid.items())),
    (tuple(key.shape), str(key.dtype)),
  )  # fmt: skip
  if not measure:
    return signature
  path = cache_path()
  try:
    found = os.stat(path)
    return (*signature, str(path), found.st_size, found.st_mtime_ns)
  except OSError:
    return (*signature, str(path), None, None)


def forget() -> None:
  """Forget :func:`automatic`'s answers in this process (:func:`lrlab.sweep.clear_cache` does)."""
  _recalled.clear()


def automatic(
  measure: bool, trainer: Trainer, make_tx, mesh, windows: int, grid: Mapping[str, np.ndarray], key
) -> tuple[int, dict[str, Any] | None]:
  """``(chunk_size, choice)`` of an automatic chunk size: the heuristic's estimate
  (:func:`lrlab.sweep.devices.auto_chunk_size`, choice ``None``), or with ``measure``
  the measured one (:func:`choose`, which starts from that estimate).

  A later call with the same signature (:func:`_recall_signature`) in the same process gets
  the same answer at once, without tracing the members' state for the shape key or reading
  the file again (50 ms a call on the 2-core development CPU, as much as a small sweep);
  a measured choice then reads ``method: "cached"``, as one recalled from the file does.
  """
  signature = _recall_signature(measure, trainer, make_tx, mesh, windows, grid, key)
  if signature in _recalled:
    _recalled.move_to_end(signature)
    size, choice = _recalled[signature]
    if choice is not None and choice.get("method") == "measured":
      choice = {**choice, "method": "cached", "probe_seconds": 0.0, "reused_programs": False}
    return size, choice
  size, choice = _automatic(measure, trainer, make_tx, mesh, windows, grid, key)
  # Keyed by the file as this call left it, so the next call's signature matches.
  _recalled[_recall_signature(measure, trainer, make_tx, mesh, windows, grid, key)] = (size, choice)
  while len(_recalled) > programs.CACHE_SIZE:
    _recalled.popitem(last=False)
  return size, choice


def _automatic(
  measure: bool, trainer: Trainer, make_tx, mesh, windows: int, grid: Mapping[str, np.ndarray], key
) -> tuple[int, dict[str, Any] | None]:
  """:func:`automatic` without recall."""
  one = {k: v[:1] for k, v in grid.items()}
  state_bytes, activation_bytes = programs._member_footprint(trainer, make_tx, one, key)
  num_members = len(next(iter(grid.values())))
  devices = list(mesh.devices.flat)
  heuristic = devices_lib.auto_chunk_size(
    state_bytes, num_members, devices, activation_bytes=activation_bytes
  )
  if not measure:
    return heuristic, None
  choice = choose(trainer, make_tx, mesh, windows, grid, key, heuristic)
  return choice["chunk_size"], choice
