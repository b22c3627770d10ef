"""How a sweep's results are stored: plain files a person can open, written atomically.

``results.csv`` (one row per run), ``curves.npz`` (every curve) and
``sweep.json`` (grid, seeds, config, metadata and the summary), each written to
a temporary file in the same folder, fsynced and renamed into place, the JSON
last, so a reader never sees a half-written result.
"""

import contextlib
import csv
import importlib.metadata
import json
import os
import platform
import sys
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import IO, Any

import jax
import numpy as np

from lrlab import train

FILES = ("results.csv", "curves.npz", "sweep.json")


def environment_metadata() -> dict[str, Any]:
  """Versions, device and command line of this process, to store beside results.

  Nothing identifies the machine (no hostname, no user name beyond what the
  command line itself contains).

  Returns:
    A JSON-serialisable dict: ``versions`` (lrlab, jax, jaxlib, optax, flax,
    chex, numpy, matplotlib, python), ``platform`` (``"cpu"``, ``"gpu"``,
    ``"tpu"``), ``device_kind``, ``device_count``, ``process_count``, ``os``
    and ``command`` (``sys.argv``).

  Example:
    >>> meta = lrlab.sweep.environment_metadata()
    >>> sorted(meta["versions"])[:3], meta["platform"] in ("cpu", "gpu", "tpu")
    (['chex', 'flax', 'jax'], True)
  """
  versions = {}
  for package in ("lrlab", "jax", "jaxlib", "optax", "flax", "chex", "numpy", "matplotlib"):
    try:
      versions[package] = importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
      versions[package] = None
  versions["python"] = platform.python_version()
  device = jax.devices()[0]
  return {
    "versions": versions,
    "platform": device.platform,
    "device_kind": device.device_kind,
    "device_count": jax.device_count(),
    "process_count": jax.process_count(),
    "os": f"{platform.system()} {platform.machine()}",
    "command": list(sys.argv),
  }


def _json_ready(value: Any) -> Any:
  if isinstance(value, np.ndarray | np.generic):
    return value.tolist()
  if isinstance(value, Path):
    return str(value)
  raise TypeError(f"{type(value).__name__} is not JSON-serialisable")


def normal_json(name: str, value: Any) -> dict:
  """``value`` as plain JSON types (NumPy values become Python ones), or a ValueError naming it."""
  if not isinstance(value, Mapping):
    raise ValueError(f"{name} must be a dict; got {value!r}.")
  try:
    return json.loads(json.dumps(dict(value), default=_json_ready))
  except (TypeError, ValueError) as error:
    raise ValueError(f"{name} must be JSON-serialisable; got {value!r} ({error}).") from None


def finite_or_none(value: Any) -> Any:
  """Replace non-finite floats by ``None`` so that the JSON is strict."""
  if isinstance(value, dict):
    return {k: finite_or_none(v) for k, v in value.items()}
  if isinstance(value, list | tuple):
    return [finite_or_none(v) for v in value]
  if isinstance(value, float) and not np.isfinite(value):
    return None
  return value


def atomic_write(path: Path, write: Callable[[IO], None], *, binary: bool = False) -> None:
  """Write ``path`` via a temporary file in the same folder, fsync, then ``os.replace``.

  The temporary file is named ``.tmp-<random><name>``; one that a killed
  process left behind can be recognized by that pattern.
  """
  fd, temporary = tempfile.mkstemp(prefix=".tmp-", suffix=path.name, dir=path.parent)
  try:
    text = {} if binary else {"encoding": "utf-8", "newline": ""}
    with os.fdopen(fd, "wb" if binary else "w", **text) as file:
      write(file)
      file.flush()
      os.fsync(file.fileno())
    os.chmod(temporary, 0o644)
    os.replace(temporary, path)
  except BaseException:
    with contextlib.suppress(FileNotFoundError):
      os.unlink(temporary)
    raise


def fsync_directory(directory: Path) -> None:
  """Make a rename inside ``directory`` durable (best effort: skipped where unsupported)."""
  with contextlib.suppress(OSError):
    fd = os.open(directory, os.O_RDONLY)
    try:
      os.fsync(fd)
    finally:
      os.close(fd)


def write_csv(rows: list[dict[str, Any]], path: str | os.PathLike) -> Path:
  """Write ``rows`` (dicts with the same keys) as CSV, atomically; returns the path."""
  path = Path(path)

  def write(file: IO) -> None:
    writer = csv.DictWriter(file, fieldnames=list(rows[0]), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)

  path.parent.mkdir(parents=True, exist_ok=True)
  atomic_write(path, write)
  return path


def save(result: Any, directory: str | os.PathLike) -> Path:
  """Write a :class:`lrlab.sweep.SweepResult` into ``directory``; see its ``save``."""
  directory = Path(directory)
  directory.mkdir(parents=True, exist_ok=True)
  arrays = dict(result.history._asdict(), seeds=result.seeds)
  arrays.update({f"grid.{name}": column for name, column in result.grid.items()})
  atomic_write(directory / "curves.npz", lambda f: np.savez(f, **arrays), binary=True)
  result.to_csv(directory / "results.csv")
  document = {
    "format": 1,
    "grid": {name: column.tolist() for name, column in result.grid.items()},
    "seeds": result.seeds.tolist(),
    "config": result.config,
    "metadata": result.metadata,
    "summary": result.summary_dict(),
  }
  text = json.dumps(document, indent=2)
  atomic_write(directory / "sweep.json", lambda f: f.write(text + "\n"))
  fsync_directory(directory)
  return directory


def load(cls: type, directory: str | os.PathLike) -> Any:
  """Read a result written by :func:`save` as an instance of ``cls``."""
  directory = Path(directory)
  missing = [name for name in FILES[1:] if not (directory / name).is_file()]
  if missing:
    raise ValueError(f"directory {str(directory)!r} holds no saved sweep: missing {missing}.")
  document = json.loads((directory / "sweep.json").read_text(encoding="utf-8"))
  with np.load(directory / "curves.npz", allow_pickle=False) as arrays:
    history = train.History(**{name: arrays[name] for name in train.History._fields})
    grid = {name: arrays[f"grid.{name}"] for name in document["grid"]}
    seeds = arrays["seeds"]
  return cls(grid, seeds, history, document["config"], document["metadata"])
