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
the heuristic's size up, then from it down, each way until two sizes in a row
are no faster than the best of that way (:data:`PATIENCE`), and stops after
:data:`MAX_CANDIDATES` sizes. A size's estimate is ``ceil(K / c)`` chunks times
the best time of one probe call of ``c`` members (padding members cost as much
as real ones), each call from a freshly initialized state, as each chunk of the
sweep starts.
"""

import collections
import datetime
import hashlib
import json
import math
import os
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from lrlab.data.benchmarks import default_cache_dir
from lrlab.sweep import devices as devices_lib
from lrlab.sweep import hyperparameters, programs, storage
from lrlab.train import Trainer

#: Steps of one probe call when the sweep's own segment is longer than :data:`REUSE_STEPS`.
PROBE_STEPS = 16
#: A sweep whose segment has at most this many steps is probed with its own programs, and the
#: kept size's programs serve the real run (a longer segment would make the probe slow).
REUSE_STEPS = 64
#: At most this many chunk sizes are timed.
MAX_CANDIDATES = 6
#: Calls timed per chunk size (the best counts; the first also warms the program up).
PROBE_CALLS = 2
#: The climb goes on past a size that is no faster than the best so far, and stops at the
#: second in a row: a probe's estimate is noisy (about 10%) and the times of neighbouring sizes
#: are often within that, so one estimate must not end the search.
PATIENCE = 2
FILENAME = "chunk_sizes.json"


def machine_key(devices: Sequence[jax.Device]) -> str:
  """What the measured chunk sizes hold for: the CPU model and the cores this process may use
  (CPU devices), or the accelerator kind; then the device count and the JAX version."""
  device = devices[0]
  if device.platform == "cpu":
    model = "unknown CPU"
    try:
      with open("/proc/cpuinfo") as f:
        model = next((ln.split(":", 1)[1].strip() for ln in f if "model name" in ln), model)
    except OSError:
      pass
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    what = f"cpu: {model}, {cores} cores"
  else:
    what = f"{device.platform}: {device.device_kind}"
  return f"{what}; {len(devices)} device(s); jax {jax.__version__}"


def cache_path() -> Path:
  """The file of remembered chunk sizes: ``chunk_sizes.json`` in the lrlab cache folder."""
  return default_cache_dir() / FILENAME


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


def ladder(first: int, num_members: int, num_devices: int, limit: int) -> list[int]:
  """The chunk sizes the probe may try, ascending: ``first`` and ``num_devices * 2**i``, each a
  multiple of ``num_devices``, at most ``limit`` (but never below one per device) and at most
  ``num_members`` rounded up to the device count."""
  top = min(max(limit, num_devices), -(-num_members // num_devices) * num_devices)
  top -= top % num_devices
  sizes = {min(first, top)}
  size = num_devices
  while size <= top:
    sizes.add(size)
    size *= 2
  return sorted(sizes)


def climb(
  sizes: Sequence[int],
  first: int,
  num_members: int,
  seconds: Callable[[int], float],
  max_candidates: int = MAX_CANDIDATES,
) -> tuple[int, dict[int, float]]:
  """The size of ``sizes`` with the least ``ceil(num_members / c) * seconds(c)``, found by
  climbing from ``first`` up, then from ``first`` down, each way until :data:`PATIENCE` sizes
  in a row are no faster than the best of that way, timing at most ``max_candidates``.

  Args:
    sizes: the ladder (:func:`ladder`), ascending; ``first`` must be in it.
    first: where to start (the heuristic's size).
    num_members: the sweep's members ``K``.
    seconds: ``c -> `` seconds of one probe call of ``c`` members.
    max_candidates: the most sizes timed.

  Returns:
    ``(best, estimates)``: ``estimates`` maps every timed size to its estimated
    seconds for all ``K`` members (``ceil(K / c)`` calls).
  """
  estimates: dict[int, float] = {}

  def estimate(i: int) -> float:
    c = sizes[i]
    if c not in estimates:
      estimates[c] = math.ceil(num_members / c) * seconds(c)
    return estimates[c]

  start = sizes.index(first)
  estimate(start)
  for step in (1, -1):  # both ways from the heuristic's size
    best, i = estimate(start), start
    misses = 0
    while 0 <= i + step < len(sizes) and len(estimates) < max_candidates:
      i += step
      if estimate(i) < best:
        best, misses = estimate(i), 0
      else:
        misses += 1
        if misses == PATIENCE:
          break
  return min(estimates, key=estimates.get), estimates


def _load(path: Path) -> dict[str, Any]:
  try:
    with open(path, encoding="utf-8") as f:
      saved = json.load(f)
    return saved if isinstance(saved, dict) else {}
  except (OSError, ValueError):
    return {}  # absent or unreadable: measure again


def _save(path: Path, document: dict[str, Any]) -> None:
  try:
    path.parent.mkdir(parents=True, exist_ok=True)
    storage.atomic_write(path, lambda f: json.dump(document, f, indent=1, sort_keys=True))
  except OSError:
    pass  # a read-only cache folder costs a probe next time, nothing else


def measured_chunk_size(
  machine: str,
  shape: str,
  sizes: Sequence[int],
  first: int,
  num_members: int,
  seconds: Callable[[int], float],
  *,
  path: Path | None = None,
  clock: Callable[[], float] = time.perf_counter,
) -> dict[str, Any]:
  """The remembered chunk size for ``(machine, shape)`` if one is in ``ladder``, else the
  fastest by :func:`climb`, remembered in ``path`` (default :func:`cache_path`).

  Returns:
    The choice, JSON-able: ``chunk_size``; ``method`` (``"measured"`` or
    ``"cached"``); ``heuristic`` (``first``); ``probe`` (one entry per timed size:
    ``chunk_size`` and ``seconds``, the estimate for all ``K`` members);
    ``probe_seconds`` (the wall time of probing, compiles included; 0 when cached);
    ``machine``, ``shape``, ``measured_at`` and ``load_1min`` (the load average then).
  """
  path = cache_path() if path is None else path
  document = _load(path)
  remembered = document.get(machine, {}).get(shape)
  if isinstance(remembered, dict) and remembered.get("chunk_size") in sizes:
    return {**remembered, "method": "cached", "probe_seconds": 0.0}
  tic = clock()
  best, estimates = climb(sizes, first, num_members, seconds)
  choice = {
    "chunk_size": int(best),
    "method": "measured",
    "heuristic": int(first),
    "probe": [{"chunk_size": int(c), "seconds": float(s)} for c, s in sorted(estimates.items())],
    "probe_seconds": float(clock() - tic),
    "machine": machine,
    "shape": shape,
    "measured_at": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
    # A busy machine times noise: delete the file (or the entry) to measure again.
    "load_1min": os.getloadavg()[0] if hasattr(os, "getloadavg") else None,
  }
  document = _load(path)  # another process may have written meanwhile
  document.setdefault(machine, {})[shape] = choice
  _save(path, document)
  return choice


def _shape_key(trainer: Trainer, make_tx, hp: Mapping[str, np.ndarray], key, windows, k) -> str:
  """A hash of what a chunk's speed depends on, besides the machine: the task's data shapes,
  one member's state (structure, shapes, dtypes), the batch and evaluation settings, ``K``."""
  one, _ = hyperparameters.split({n: jnp.asarray(v[0]) for n, v in hp.items()}, set())
  with hyperparameters.explain_traced_hyperparameters():
    state = jax.eval_shape(lambda: trainer.init_state(hyperparameters.make(make_tx, one), key))
  x, _ = trainer.task.split("train")
  segment = windows * trainer.eval_every
  described = [
    trainer.task.name,
    tuple(np.shape(x)),
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

  Falls back to ``heuristic`` (``method: "heuristic"``, with the reason) for a
  streamed task and for a sweep over several processes, where a probe would
  cost a pass over the host's data or need every process to probe alike.
  Otherwise probes (or recalls) as :func:`measured_chunk_size`; each probe call
  runs :data:`PROBE_STEPS` steps of ``c`` members with the sweep's own task,
  batch and optimizer (or one of the sweep's own segments, when that is at
  most :data:`REUSE_STEPS` steps, so the kept size's programs are reused).

  Args:
    trainer, make_tx, mesh, windows, key: as the engine holds them.
    grid: the members' columns, as the engine casts them.
    heuristic: :func:`lrlab.sweep.devices.auto_chunk_size`'s choice, the first timed.
  """
  devices = list(mesh.devices.flat)
  if trainer.task.streamed or jax.process_count() > 1:
    why = "a streamed task" if trainer.task.streamed else "several processes"
    return {"chunk_size": int(heuristic), "method": "heuristic", "reason": f"not probed: {why}"}
  num_members = len(next(iter(grid.values())))
  limit = chunk_limit(trainer, make_tx, {k: v[:1] for k, v in grid.items()}, key, devices)
  sizes = ladder(heuristic, num_members, len(devices), limit)
  heuristic = min(heuristic, sizes[-1])
  reuse = windows * trainer.eval_every <= REUSE_STEPS
  probe = trainer
  if not reuse:
    probe = Trainer(
      trainer.task, steps=PROBE_STEPS, batch_size=trainer.batch_size, eval_every=PROBE_STEPS,
      divergence_factor=trainer.divergence_factor, folds=trainer.folds,
      eval_batch_size=trainer.eval_batch_size,
    )  # fmt: skip
  members = devices_lib.member_sharding(mesh)

  def seconds(c: int) -> float:
    columns = {n: np.resize(v, c) for n, v in grid.items()}  # cycles the grid: real rates
    if reuse:  # kept in the engine's cache, so the kept size's programs serve the real run
      compiled = programs._compiled_for(trainer, make_tx, mesh, windows, columns, key)
    else:  # a probe's own programs, dropped after timing
      compiled = programs._Compiled(probe, make_tx, mesh, 1, columns, key)
    hp = devices_lib.to_mesh(columns, members)
    jax.block_until_ready(compiled.init(hp, key))  # compiles, and warms the programs up
    best = math.inf
    for _ in range(PROBE_CALLS):
      # Each timed call starts from a freshly initialized state, as every chunk of the real
      # sweep does: the first segment on new buffers is the slower one, the more so the
      # larger the chunk, and timing a second segment on warm buffers favoured large chunks.
      # Where the sweep's own segment is probed, the chunk's initialization is timed with it.
      tic = time.perf_counter()
      state, _ = compiled.init(hp, key)
      if not reuse:
        jax.block_until_ready(state)
        tic = time.perf_counter()
      state, part = compiled.segment(hp, key, state, np.int32(0))
      jax.block_until_ready((state, part))
      best = min(best, time.perf_counter() - tic)
    return best

  shape = _shape_key(trainer, make_tx, grid, key, windows, num_members)
  choice = measured_chunk_size(machine_key(devices), shape, sizes, heuristic, num_members, seconds)
  return {**choice, "reused_programs": reuse and choice["method"] == "measured"}


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
