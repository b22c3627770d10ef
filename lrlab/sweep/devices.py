"""Where a sweep runs: a 1-D device mesh over the member axis, and how many members per chunk."""

import glob
import math
import os
from collections.abc import Callable, Sequence
from typing import Any

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

MEMBER_AXIS = "members"


def member_mesh(devices: Sequence[jax.Device] | None = None) -> Mesh:
  """A 1-D mesh named ``"members"`` over ``devices`` (default: every device JAX sees).

  On several hosts, call ``jax.distributed.initialize()`` first; ``jax.devices()``
  then lists the devices of every host and the member axis spans them all.
  """
  given = jax.devices() if devices is None else devices
  try:
    devices = [] if isinstance(given, str) else list(given)
  except TypeError:  # not iterable
    devices = []
  if (
    not devices
    or not all(isinstance(d, jax.Device) for d in devices)
    or len(set(devices)) < len(devices)
  ):
    raise ValueError(
      f"devices must be None or distinct jax devices, e.g. jax.devices(); got {given!r}."
    )
  return Mesh(np.asarray(devices), (MEMBER_AXIS,))


def member_sharding(mesh: Mesh) -> NamedSharding:
  """Shard the leading (member) axis of every array over the mesh."""
  return NamedSharding(mesh, PartitionSpec(MEMBER_AXIS))


def replicated(mesh: Mesh) -> NamedSharding:
  """Replicate an array on every device of the mesh."""
  return NamedSharding(mesh, PartitionSpec())


def jit_per_device(
  f: Callable, in_shardings: Sequence[NamedSharding], **jit_kwargs: Any
) -> Callable:
  """``jax.jit`` of ``f`` run by each device of the mesh on its own members alone.

  ``f`` takes arguments sharded as ``in_shardings`` (:func:`member_sharding` or
  :func:`replicated`, on one mesh) and returns arrays with a leading member axis,
  sharded by :func:`member_sharding`. Members are independent, so ``f`` is wrapped
  in ``jax.shard_map``: each device runs it on its slice of the member axis, and
  nothing crosses devices. Left to XLA's SPMD partitioner instead, a vmapped
  convolution all-gathered its operands at every step, and a program with several
  collectives can deadlock XLA's CPU runtime, whose host devices share one thread
  pool and may reach two collectives in opposite orders.
  """
  mesh = in_shardings[0].mesh
  specs = tuple(sharding.spec for sharding in in_shardings)
  members = member_sharding(mesh)
  # No collectives inside, so nothing for JAX's check of which values vary by device to guard
  # (and it would refuse a scan whose carry starts as a constant, as an evaluation's does).
  per_device = jax.shard_map(f, mesh=mesh, in_specs=specs, out_specs=members.spec, check_vma=False)
  return jax.jit(per_device, in_shardings=in_shardings, out_shardings=members, **jit_kwargs)


def _cpu_cache_bytes_per_core(root: str = "/sys/devices/system/cpu/cpu0/cache") -> int:
  """Each data cache of level 2 and up divided among the cores sharing it, summed: the
  private L2 plus a fair share of the last-level cache (Linux sysfs; 8 MiB if unknown)."""
  total = 0
  for index in glob.glob(os.path.join(root, "index*")):
    try:
      with open(os.path.join(index, "type")) as f:
        if f.read().strip() == "Instruction":
          continue
      with open(os.path.join(index, "level")) as f:
        if int(f.read()) < 2:
          continue
      with open(os.path.join(index, "size")) as f:
        size = f.read().strip()
      with open(os.path.join(index, "shared_cpu_list")) as f:
        shared = f.read().strip()
    except OSError:
      continue
    units = {"K": 2**10, "M": 2**20, "G": 2**30}
    size_bytes = int(size[:-1]) * units[size[-1]] if size[-1] in units else int(size)
    sharers = sum(
      (int(b) - int(a) + 1) if "-" in part else 1
      for part in shared.split(",")
      for a, _, b in [part.partition("-")]
    )
    total += size_bytes // max(sharers, 1)
  return total or 8 * 2**20


def tree_bytes(tree: Any) -> int:
  """Bytes of every array (or ``ShapeDtypeStruct``) leaf of ``tree``."""
  return sum(math.prod(x.shape) * np.dtype(x.dtype).itemsize for x in jax.tree.leaves(tree))


def auto_chunk_size(
  member_state_bytes: int,
  num_members: int,
  devices: Sequence[jax.Device],
  *,
  activation_bytes: int = 0,
) -> int:
  """Members per chunk: as many as fit each device's fast memory, times the device count.

  A member's working set during a step is about four times its run state
  (parameters and optimizer state, plus gradients, updates and the new state)
  plus twice the activations the step keeps for its backward pass (those
  activations and their gradients). On CPU the budget is the cache one core
  can use (its L2 plus its share of the last-level cache): once a chunk
  outgrows it, every step streams its state from main memory and throughput
  falls. On an accelerator the budget is half the device's free memory.

  Measured on a 2-core CPU (17 MiB of cache per core), K = 512 members of the
  MNIST-1D MLP run fastest in chunks of 16 per device, which counting the
  activations chooses (18); counting the state alone chose 32, 7% slower.

  Args:
    member_state_bytes: bytes of one member's run state.
    num_members: members in the sweep.
    devices: the devices of the mesh.
    activation_bytes: bytes of one member's activations saved for the backward
      pass of one step (the engine takes the residuals of ``jax.vjp``).

  Returns:
    A multiple of ``len(devices)``, balanced so the last chunk needs little padding.
  """
  num_devices = len(devices)
  device = devices[0]
  if device.platform == "cpu":
    budget = _cpu_cache_bytes_per_core()
  else:
    stats = device.memory_stats() or {}
    limit = stats.get("bytes_limit", 16 * 2**30)
    budget = (limit - stats.get("bytes_in_use", 0)) // 2
  working_set = 4 * member_state_bytes + 2 * activation_bytes
  largest = max(1, budget // max(1, working_set)) * num_devices

  # Even chunks, padded to a multiple of the device count, with the least padding;
  # then the fewest chunks: 64 members with room for 46 run as two chunks of 32
  # (not 46 + 18 padded to 46), and 512 with room for 36 per chunk as 16 chunks
  # of 32 (not 15 of 36, 28 of them padding).
  def chunk(num_chunks: int) -> int:
    per_chunk = -(-num_members // num_chunks)
    return -(-per_chunk // num_devices) * num_devices

  fewest = -(-num_members // largest)
  candidates = range(fewest, min(2 * fewest, num_members) + 1)
  return int(chunk(min(candidates, key=lambda n: (n * chunk(n), n))))


# --- several processes (jax.distributed) ---------------------------------------------------------


def to_mesh(tree: Any, sharding: NamedSharding) -> Any:
  """Host values, the same in every process, as global arrays laid out by ``sharding``.

  In a single process the tree is returned as it is (``jit`` places host
  arrays itself). When the mesh spans processes, ``jit`` accepts only global
  arrays, so each process builds the shards its own devices hold
  (``jax.make_array_from_callback``); PRNG keys travel as their key data, and
  arrays that are global already pass through.
  """
  if sharding.is_fully_addressable:
    return tree

  def place(leaf):
    if isinstance(leaf, jax.Array) and not leaf.is_fully_addressable:
      return leaf  # already global
    if jax.dtypes.issubdtype(getattr(leaf, "dtype", None), jax.dtypes.prng_key):
      data = np.asarray(jax.random.key_data(leaf))
      placed = jax.make_array_from_callback(data.shape, sharding, lambda index: data[index])
      return jax.random.wrap_key_data(placed, impl=jax.random.key_impl(leaf))
    host = np.asarray(leaf)
    return jax.make_array_from_callback(host.shape, sharding, lambda index: host[index])

  return jax.tree.map(place, tree)


def to_host(tree: Any) -> Any:
  """Arrays as NumPy, whole, in every process: ``jax.device_get``, and an all-gather across
  processes for the arrays whose shards live on other processes' devices (host values in
  the tree are returned as they are, not gathered).

  Every process must call it at the same point of the program (a collective).
  """
  leaves, structure = jax.tree.flatten(tree)
  spread = [i for i, leaf in enumerate(leaves) if not getattr(leaf, "is_fully_addressable", True)]
  if spread:
    from jax.experimental import multihost_utils

    gathered = multihost_utils.process_allgather([leaves[i] for i in spread], tiled=True)
    for i, value in zip(spread, gathered, strict=True):
      leaves[i] = np.asarray(value)
  return jax.tree.unflatten(structure, jax.device_get(leaves))  # the rest is whole already


def agree(value: tuple[int, ...], what: str) -> tuple[int, ...]:
  """``value`` after checking that every process computed the same one (a collective).

  ``value`` must have the same length in every process.

  Raises:
    ValueError: naming ``what`` and the values the processes hold.
  """
  if jax.process_count() == 1:
    return value
  from jax.experimental import multihost_utils

  gathered = multihost_utils.process_allgather(np.asarray(value, np.int64)[None], tiled=True)
  values = [tuple(row) for row in np.asarray(gathered).tolist()]
  if len(set(values)) > 1:
    shown = [v[0] if len(v) == 1 else v for v in values]
    raise ValueError(
      f"the processes of this sweep disagree on {what}: {shown} (one per process). "
      "Give every process the same arguments, and a checkpoint_dir on a file system they share."
    )
  return value


def in_any_process(*flags: bool) -> tuple[bool, ...]:
  """Each flag, true if it is true in any process: a collective with several processes (every
  process must call it at the same point), the flags themselves with one.

  A sweep's decisions that start a collective (saving a checkpoint gathers the members' state)
  must agree across processes, though each process's clock, or its ``should_stop``, may say
  otherwise.
  """
  if jax.process_count() == 1:
    return flags
  from jax.experimental import multihost_utils

  gathered = multihost_utils.process_allgather(np.asarray(flags, np.int32)[None], tiled=True)
  return tuple(bool(v) for v in np.asarray(gathered).any(axis=0))
