"""How a chunk size is chosen from a probe's timings, and remembered: the ladder of sizes,
the climb over it, and the file of measured sizes per machine and sweep shape.

:mod:`lrlab.sweep.chunking` times the sizes (its probe) and calls
:func:`measured_chunk_size`; these parts take the timing as a function, so they are tested on
fake timings.
"""

import datetime
import json
import math
import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import jax

from lrlab.data.benchmarks import default_cache_dir
from lrlab.sweep import storage

#: At most this many chunk sizes are timed.
MAX_CANDIDATES = 8
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
  climbing from ``first`` down, and from ``first`` up only where no smaller size was faster
  than ``first``; each way until :data:`PATIENCE` sizes in a row are no faster than the best of
  that way, timing at most ``max_candidates``. Then every timed size is timed once more, in
  ascending order, and keeps the lesser of its two estimates.

  The second pass is for bursts: on a shared machine (a VM's stolen time) a few seconds of
  slowdown during the climb inflate the sizes timed then, and the climb turns away from them.
  On the 2-core AMD EPYC one CNN probe at K = 512 estimated chunks of 4 and 8 at 20 s, which
  ran 12 s in the sweep, and chose 32 (1.18x the best fixed size). The pass costs one call per
  timed size, no compiling: about ``sum(c) / K`` of the sweep, most of it the larger sizes.

  Down comes first because it is cheaper: a probe call of ``c`` members costs about ``c / K``
  of the sweep, so the sizes above the heuristic's are the dear ones to time. A size below
  ``first`` that beats it says the estimates fall towards the small sizes, and the climb does
  not then pay for the large ones: on the 2-core VMs the MLP's and the CNN's fastest sizes lay
  at or below the heuristic's (which reads a cache the whole machine shares), and at K = 512 the
  CNN's calls of 256 and 512 members were 50 s of a 76 s probe. The transformer's heuristic
  size is the smallest, one member per device, so its climb goes up (to 4, its fastest).

  Args:
    sizes: the ladder (:func:`ladder`), ascending; ``first`` must be in it.
    first: where to start (the heuristic's size).
    num_members: the sweep's members ``K``.
    seconds: ``c -> `` seconds of one probe call of ``c`` members.
    max_candidates: the most sizes timed.

  Returns:
    ``(best, estimates)``: ``estimates`` maps every timed size to its estimated
    seconds for all ``K`` members (``ceil(K / c)`` calls), the lesser of its two passes.
  """
  estimates: dict[int, float] = {}

  def estimate(i: int) -> float:
    c = sizes[i]
    if c not in estimates:
      estimates[c] = math.ceil(num_members / c) * seconds(c)
    return estimates[c]

  start = sizes.index(first)
  estimate(start)
  for step in (-1, 1):  # down from the heuristic's size, then up if nothing below beat it
    if step == 1 and min(estimates.values()) < estimates[first]:
      break
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
  for c in sorted(estimates):  # the second pass
    estimates[c] = min(estimates[c], math.ceil(num_members / c) * seconds(c))
  return min(estimates, key=estimates.get), estimates


def _load(path: Path) -> dict[str, Any]:
  """The remembered sizes by machine, then shape; a file or a machine's entry that is not a
  JSON object (absent, unreadable, edited by hand) counts as nothing remembered."""
  try:
    with open(path, encoding="utf-8") as f:
      saved = json.load(f)
  except (OSError, ValueError):
    return {}  # absent or unreadable: measure again
  if not isinstance(saved, dict):
    return {}
  return {machine: shapes for machine, shapes in saved.items() if isinstance(shapes, dict)}


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
  size = remembered.get("chunk_size") if isinstance(remembered, dict) else None
  if isinstance(size, int) and not isinstance(size, bool) and size in sizes:
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
