"""Crash-safe sweep progress: one ``.npz`` written to a temporary file, fsynced, then renamed.

A rename within a directory is atomic on POSIX, so a reader (or a resumed run
after SIGKILL) sees either the previous checkpoint or the new one, never a
partial file.
"""

import hashlib
import json
import os
import zipfile
import zlib
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from lrlab import _checks
from lrlab.sweep import storage

FILENAME = "sweep_checkpoint.npz"

# What reading a damaged file (truncated, overwritten, not an .npz) raises from np.load.
_UNREADABLE = (OSError, EOFError, ValueError, KeyError, zipfile.BadZipFile, zlib.error)


def _damaged(path: str, error: Exception) -> ValueError:
  return ValueError(
    f"checkpoint {path!r} cannot be read ({type(error).__name__}: {error}); it is damaged or "
    f"not a sweep checkpoint: delete {FILENAME} to start over."
  )


def fingerprint(config: dict[str, Any], grid: dict[str, np.ndarray], *extra: Any) -> str:
  """A hash of everything that determines a sweep's numbers but ``make_tx``'s code.

  Args:
    config: the sweep's settings (JSON-able).
    grid: the members.
    *extra: anything else to tell sweeps apart: NumPy arrays (hashed by dtype,
      shape and bytes) or values hashed by their ``repr``.
  """
  digest = hashlib.sha256(_json(config).encode())
  for name in sorted(grid):
    digest.update(name.encode())
    digest.update(np.ascontiguousarray(grid[name]).tobytes())
  for value in extra:
    if isinstance(value, np.ndarray):
      digest.update(f"{value.dtype.str}{value.shape}".encode())
      digest.update(np.ascontiguousarray(value).tobytes())
    else:
      digest.update(repr(value).encode())
  return digest.hexdigest()


def _json(config: dict[str, Any]) -> str:
  """``config`` as sorted JSON; a NumPy scalar as the number it holds (steps=np.int64(8) is
  the sweep of steps=8), anything else JSON does not know as its ``str``."""
  plain = lambda value: value.item() if isinstance(value, np.generic) else str(value)
  return json.dumps(config, sort_keys=True, default=plain)


def program_digest(*lowered: Any) -> str:
  """A SHA-256 of lowered programs' StableHLO text (``jax.stages.Lowered``, no source
  locations): what they compute, the model's and ``make_tx``'s code and their captured
  constants included. The same in every process; any edit that changes the arithmetic, or
  another JAX version, changes it."""
  digest = hashlib.sha256()
  for program in lowered:
    digest.update(program.as_text().encode())
  return digest.hexdigest()


def save(
  directory: str,
  fingerprint_: str,
  position: dict[str, int],
  trees: dict[str, Any],
  *,
  chunk_size: int | None = None,
  config: dict[str, Any] | None = None,
) -> None:
  """Save the sweep's position, its chunk size and pytrees of arrays (leaves in flattening order).

  ``trees`` may hold any subset of the names :func:`load` is given templates
  for: a checkpoint between chunks has no mid-chunk state, and one in the
  first chunk has no finished chunks. ``config``, the settings the fingerprint
  hashed, is kept so that :func:`load` can name the ones another sweep changed.
  """
  arrays = {"fingerprint": np.asarray(fingerprint_), "position": np.asarray(json.dumps(position))}
  if chunk_size is not None:
    arrays["chunk_size"] = np.asarray(chunk_size)
  if config is not None:
    arrays["config"] = np.asarray(_json(config))
  for name, tree in trees.items():
    leaves = jax.tree.leaves(jax.device_get(tree))
    arrays[f"{name}.count"] = np.asarray(len(leaves))
    for i, leaf in enumerate(leaves):
      arrays.update(_storable(f"{name}.{i}", leaf))
  os.makedirs(directory, exist_ok=True)
  storage.atomic_write(Path(directory) / FILENAME, lambda f: np.savez(f, **arrays), binary=True)
  storage.fsync_directory(Path(directory))


def _storable(name: str, leaf: Any) -> dict[str, np.ndarray]:
  """``leaf`` as ``.npz`` entries that :func:`_restored` reads back bit for bit: a typed PRNG key
  as its key data and implementation, a dtype NumPy's format does not know (bfloat16, float8:
  saved as raw bytes) with its name."""
  dtype = getattr(leaf, "dtype", None)
  if dtype is not None and jnp.issubdtype(dtype, jax.dtypes.prng_key):
    impl = str(jax.random.key_impl(leaf))
    return {name: np.asarray(jax.random.key_data(leaf)), f"{name}.key_impl": np.asarray(impl)}
  array = np.asarray(leaf)
  if array.dtype.type.__module__.startswith("numpy"):
    return {name: array}
  return {name: array, f"{name}.dtype": np.asarray(array.dtype.name)}


def _restored(saved: Any, name: str) -> Any:
  """The leaf :func:`_storable` saved under ``name``."""
  array = saved[name]
  if f"{name}.key_impl" in saved.files:
    return jax.random.wrap_key_data(array, impl=str(saved[f"{name}.key_impl"]))
  if f"{name}.dtype" in saved.files:
    return array.view(jnp.dtype(str(saved[f"{name}.dtype"])))
  return array


def load(
  directory: str,
  fingerprint_: str,
  templates: dict[str, Any],
  *,
  config: dict[str, Any] | None = None,
) -> tuple[dict[str, int], dict[str, Any]] | None:
  """The saved position and pytrees, or ``None`` if nothing is saved.

  Returns the pytrees of ``templates``' structures that the checkpoint holds
  (see :func:`save`); names it does not hold are left out.

  Raises:
    ValueError: the checkpoint belongs to a sweep with a different configuration (naming
      the settings that differ from ``config`` where the checkpoint kept its own), or the
      file cannot be read (damaged, or not a checkpoint).
  """
  path = os.path.join(directory, FILENAME)
  if not os.path.exists(path):
    return None
  try:
    with np.load(path) as saved:
      found = str(saved["fingerprint"])
      kept = json.loads(str(saved["config"])) if "config" in saved.files else None
      if found == fingerprint_:
        position = json.loads(str(saved["position"]))
        trees = {}
        for name, template in templates.items():
          if f"{name}.count" not in saved.files:
            continue
          count = int(saved[f"{name}.count"])
          leaves = [_restored(saved, f"{name}.{i}") for i in range(count)]
          trees[name] = jax.tree.unflatten(jax.tree.structure(template), leaves)
  except _UNREADABLE as error:
    raise _damaged(path, error) from None
  if found != fingerprint_:
    other = "other data, grid values, or code of the model or make_tx"
    if kept is None or config is None:  # no record of the settings: any of them
      differ = f"other settings, {other}"
    else:
      now = json.loads(_json(config))
      differ = _checks.differences(kept, now) or f"the same settings; {other}"
    raise _different(directory, differ)
  return position, trees


def _different(directory: str, differ: str) -> ValueError:
  return ValueError(
    f"checkpoint_dir {directory!r} holds a checkpoint of a different sweep ({differ}); use "
    f"another directory or delete {FILENAME} to start over."
  )


def saved_chunk_size(directory: str, num_devices: int | None = None) -> int | None:
  """The chunk size the checkpoint in ``directory`` was made with, or ``None``.

  A resumed sweep reuses it when the caller leaves ``chunk_size`` automatic:
  the automatic choice depends on free memory, which differs between processes.

  Raises:
    ValueError: the checkpoint was made over another number of devices than ``num_devices``
      (its chunks need not split over these; :func:`load` would refuse it anyway), or the
      file cannot be read.
  """
  path = os.path.join(directory, FILENAME)
  if not os.path.exists(path):
    return None
  try:
    with np.load(path) as saved:
      size = int(saved["chunk_size"]) if "chunk_size" in saved.files else None
      kept = json.loads(str(saved["config"])) if "config" in saved.files else {}
  except _UNREADABLE as error:
    raise _damaged(path, error) from None
  there = kept.get("num_devices")
  if num_devices is not None and there is not None and there != num_devices:
    raise _different(
      directory, _checks.differences({"num_devices": there}, {"num_devices": num_devices})
    )
  return size


def clear(directory: str) -> None:
  """Remove the checkpoint of a finished sweep, and any temporary file a killed writer left.

  A process killed in the middle of :func:`lrlab.sweep.storage.atomic_write` never renames (or
  removes) its temporary file; the sweep that finishes cleans it up.
  """
  storage.remove(Path(directory) / FILENAME)
