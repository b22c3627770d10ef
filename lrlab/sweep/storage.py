"""How a sweep's results are stored: plain files a person can open, written atomically.

``results.csv`` (one row per run), ``curves.npz`` (every curve) and
``sweep.json`` (grid, seeds, config, metadata, the summary and the SHA-256 of
the other two files), each written to a temporary file in the same folder,
fsynced and renamed into place, the JSON last. So a reader never sees a
half-written file, and :func:`load` recognises a folder whose overwrite was
interrupted (new curves beside an old ``sweep.json``) instead of mixing two
results. ``sweep.json`` is strict JSON (RFC 8259), which any language reads: a non-finite
number in it (``divergence_factor=inf``) is spelled ``"inf"``, ``"-inf"`` or ``"nan"``
(:func:`spell_non_finite`) and read back as the float.
"""

import contextlib
import csv
import functools
import hashlib
import importlib.metadata
import json
import os
import platform
import sys
import tempfile
import zipfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import IO, Any

import jax
import numpy as np

from lrlab import _checks, train
from lrlab.sweep import metrics

FILES = ("results.csv", "curves.npz", "sweep.json")
"""The files :meth:`lrlab.sweep.SweepResult.save` writes; ``sweep.json`` is written last and
records the SHA-256 of the others."""

FORMAT = 2
"""The ``"format"`` that :func:`save` writes into ``sweep.json``. Format 1 (before the
checksums) is still read, without the check for an interrupted overwrite."""

_FORMATS = (1, 2)


@functools.cache
def _versions() -> dict[str, str | None]:
  """The installed versions :func:`environment_metadata` records, read once per process: the
  package metadata lookups take 10 to 40 ms, a few percent of a small sweep's call."""
  versions = {}
  for package in ("lrlab", "jax", "jaxlib", "optax", "flax", "chex", "numpy", "matplotlib"):
    try:
      versions[package] = importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
      versions[package] = None
  versions["python"] = platform.python_version()
  return versions


def environment_metadata() -> dict[str, Any]:
  """Versions, device and command line of this process, to store beside results.

  Nothing identifies the machine (no hostname, no user name beyond what the
  command line itself contains).

  Returns:
    A JSON-serialisable dict: ``versions`` (lrlab, jax, jaxlib, optax, flax,
    chex, numpy, matplotlib, python), ``platform`` (``"cpu"``, ``"gpu"``,
    ``"tpu"``), ``device_kind``, ``device_count``, ``process_count``, ``os``,
    ``command`` (``sys.argv``) and ``compile_cache``: the folder of JAX's persistent
    compilation cache (``JAX_COMPILATION_CACHE_DIR``), or ``None`` when it is off; a result's
    compile seconds depend on it (a program found there is read, not compiled).

  Example:
    >>> meta = lrlab.sweep.environment_metadata()
    >>> sorted(meta["versions"])[:3], meta["platform"] in ("cpu", "gpu", "tpu")
    (['chex', 'flax', 'jax'], True)
  """
  device = jax.devices()[0]
  return {
    "versions": dict(_versions()),
    "platform": device.platform,
    "device_kind": device.device_kind,
    "device_count": jax.device_count(),
    "process_count": jax.process_count(),
    "os": f"{platform.system()} {platform.machine()}",
    "command": list(sys.argv),
    "compile_cache": jax.config.jax_compilation_cache_dir or None,
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


_SPELLED = {"inf": np.inf, "-inf": -np.inf, "nan": np.nan}


def spell_non_finite(value: Any) -> Any:
  """``value`` (JSON types, NumPy floats) with each non-finite float spelled ``"inf"``,
  ``"-inf"`` or ``"nan"``: strict JSON (RFC 8259) has no such numbers, and Python's
  ``Infinity`` breaks other readers (JavaScript, ``jq``). :func:`read_non_finite` reads them
  back."""
  if isinstance(value, dict):
    return {k: spell_non_finite(v) for k, v in value.items()}
  if isinstance(value, list | tuple):
    return [spell_non_finite(v) for v in value]
  if isinstance(value, np.floating):
    value = value.item()
  if isinstance(value, float) and not np.isfinite(value):
    return "nan" if np.isnan(value) else ("inf" if value > 0 else "-inf")
  return value


def read_non_finite(value: Any) -> Any:
  """The inverse of :func:`spell_non_finite`: ``"inf"``, ``"-inf"`` and ``"nan"`` as floats
  (so a string value of exactly one of those comes back as the float)."""
  if isinstance(value, dict):
    return {k: read_non_finite(v) for k, v in value.items()}
  if isinstance(value, list):
    return [read_non_finite(v) for v in value]
  return float(_SPELLED[value]) if isinstance(value, str) and value in _SPELLED else value


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


def remove(path: Path) -> None:
  """Remove ``path`` if it exists, and every temporary file a killed :func:`atomic_write` of it
  left in its folder (``.tmp-<random><name>``: a process killed mid-write never renames or
  removes its own)."""
  path = Path(path)
  path.unlink(missing_ok=True)
  if path.parent.is_dir():
    for stale in path.parent.glob(f".tmp-*{path.name}"):
      stale.unlink(missing_ok=True)


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


def sha256(path: str | os.PathLike) -> str:
  """The SHA-256 of the file at ``path``, as 64 hex digits (read in 1 MiB blocks)."""
  digest = hashlib.sha256()
  with open(path, "rb") as file:
    while block := file.read(1 << 20):
      digest.update(block)
  return digest.hexdigest()


def table(result: Any) -> list[dict[str, Any]]:
  """The rows of ``results.csv``; see :meth:`lrlab.sweep.SweepResult.table`."""
  columns = {c: result.metric(c, diverged_as_worst=False) for c in metrics.TABLE_COLUMNS[:-2]}
  columns["diverged"] = result.history.diverged
  columns["diverged_step"] = result.history.diverged_step
  rows = []
  for s, seed in enumerate(result.seeds.tolist()):
    for k in range(result.num_members):
      row = {"member": k, "seed": seed, **result.hyperparameters(k)}
      row.update({name: values[s, k].item() for name, values in columns.items()})
      rows.append(row)
  return rows


def write_curves(result: Any, directory: Path) -> Path:
  """Write ``curves.npz``: the history fields by name, ``seeds`` and ``grid.<name>`` columns."""
  arrays = dict(result.history._asdict(), seeds=result.seeds)
  arrays.update({f"grid.{name}": column for name, column in result.grid.items()})
  path = directory / "curves.npz"
  atomic_write(path, lambda f: np.savez(f, **arrays), binary=True)
  return path


def save(
  result: Any,
  directory: str | os.PathLike,
  *,
  metric: str | None = None,
  tolerance: float = 0.05,
  summary: bool = True,
) -> Path:
  """Write a :class:`lrlab.sweep.SweepResult` into ``directory``; see its ``save``.

  The summary (``result.summary_dict(metric, tolerance)``) is computed first, so a bad
  ``metric`` or ``tolerance`` raises before any file changes. ``summary=False`` stores
  ``None`` instead: a search's curves (:meth:`lrlab.search.SearchResult.save`), where a
  member stopped in some seed has no seed mean, and whose answers are the search's own.
  """
  _checks.check_folder("directory", directory)
  directory = Path(directory)
  summary = result.summary_dict(metric, tolerance) if summary else None
  directory.mkdir(parents=True, exist_ok=True)
  write_curves(result, directory)
  result.to_csv(directory / "results.csv")
  document = {
    "format": FORMAT,
    "files": {name: sha256(directory / name) for name in ("curves.npz", "results.csv")},
    "grid": {name: column.tolist() for name, column in result.grid.items()},
    "seeds": result.seeds.tolist(),
    "config": result.config,
    "metadata": result.metadata,
    "summary": summary,
  }
  text = json.dumps(spell_non_finite(document), indent=2, allow_nan=False)
  atomic_write(directory / "sweep.json", lambda f: f.write(text + "\n"))
  fsync_directory(directory)
  return directory


def _malformed(path: Path, problem: str) -> ValueError:
  return ValueError(
    f"{str(path)!r} is not a sweep.json that lrlab wrote: {problem}. "
    f"Save the result again (SweepResult.save)."
  )


def read_document(directory: Path) -> dict[str, Any]:
  """``directory / "sweep.json"``, checked to be a document :func:`save` wrote.

  Raises:
    ValueError: the file is not JSON, its ``"format"`` is missing or unknown,
      or a field is missing or has the wrong type; the message names it.
  """
  path = directory / "sweep.json"
  try:
    document = read_non_finite(json.loads(path.read_text(encoding="utf-8")))
  except (UnicodeDecodeError, json.JSONDecodeError) as error:
    raise _malformed(path, f"it is not valid JSON ({error})") from None
  if not isinstance(document, dict):
    raise _malformed(path, f"it holds a {type(document).__name__}, not an object")
  if "format" not in document:
    raise _malformed(path, "it has no 'format' field")
  if isinstance(document["format"], bool) or document["format"] not in _FORMATS:
    raise ValueError(
      f"{str(path)!r} has format {document['format']!r}, which this version of lrlab cannot "
      f"read (it reads formats {', '.join(map(str, _FORMATS))}); it was written by another "
      f"version of lrlab: load it with that version, or save the result again."
    )
  fields = {"grid": dict, "seeds": list, "config": dict, "metadata": dict}
  if document["format"] >= 2:
    fields["files"] = dict
  for name, kind in fields.items():
    if name not in document:
      raise _malformed(path, f"the field {name!r} is missing")
    if not isinstance(document[name], kind):
      raise _malformed(
        path, f"the field {name!r} must be a {kind.__name__}; got {type(document[name]).__name__}"
      )
  if not document["grid"]:
    raise _malformed(path, "the field 'grid' names no axis")
  for name, digest in document.get("files", {}).items():
    if name not in FILES[:-1] or not isinstance(digest, str):
      raise _malformed(path, f"'files' must map {' and '.join(FILES[:-1])} to SHA-256 digests")
  return document


def _check_files(directory: Path, document: dict[str, Any]) -> None:
  """Raise if a file that ``sweep.json`` describes is missing or is not the one it describes."""
  for name, digest in document.get("files", {}).items():
    path = directory / name
    if not path.is_file():
      raise ValueError(
        f"the sweep in {str(directory)!r} is incomplete: {name} is missing, but sweep.json "
        f"describes it; save again."
      )
    if sha256(path) != digest:
      raise ValueError(
        f"the sweep in {str(directory)!r} was interrupted while being overwritten (or a file "
        f"was changed after saving): {name} does not match sweep.json; save again."
      )


def load(cls: type, directory: str | os.PathLike) -> Any:
  """Read a result written by :func:`save` as an instance of ``cls``.

  Raises:
    ValueError: the folder holds no saved sweep; ``sweep.json`` is malformed or
      of an unknown format; or ``curves.npz`` or ``results.csv`` is not the
      file ``sweep.json`` describes (an interrupted overwrite).
  """
  directory = Path(directory)
  missing = [name for name in FILES[1:] if not (directory / name).is_file()]
  if missing:
    raise ValueError(f"directory {str(directory)!r} holds no saved sweep: missing {missing}.")
  document = read_document(directory)
  _check_files(directory, document)
  path = directory / "curves.npz"
  try:
    with np.load(path, allow_pickle=False) as arrays:
      history = train.History(**{name: arrays[name] for name in train.History._fields})
      grid = {name: arrays[f"grid.{name}"] for name in document["grid"]}
      seeds = arrays["seeds"]
  except KeyError as error:
    raise ValueError(f"{str(path)!r} lacks the array {error.args[0]}; save again.") from None
  except (OSError, ValueError, zipfile.BadZipFile) as error:
    raise ValueError(f"{str(path)!r} is not a readable .npz file ({error}); save again.") from None
  for name, column in grid.items():  # also catches a mixed folder of format 1 (no checksums)
    saved = np.asarray(document["grid"][name])
    if saved.shape != column.shape or not np.array_equal(saved, column):
      raise ValueError(
        f"the sweep in {str(directory)!r} was interrupted while being overwritten: the grid "
        f"axis {name!r} of curves.npz does not match sweep.json; save again."
      )
  return cls(grid, seeds, history, document["config"], document["metadata"])
