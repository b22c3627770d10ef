"""The sweep's arguments, checked once at the boundary, and what fingerprints a sweep.

Each check raises a one-line ``ValueError`` naming the argument, its value and
what is allowed, before anything is compiled or trained.
"""

import json
from collections.abc import Mapping, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from lrlab import _checks
from lrlab import tasks as tasks_lib
from lrlab.sweep.metrics import TABLE_COLUMNS
from lrlab.train import METRICS


def check_axis_names(grid: Mapping[str, Any], name: str = "grid") -> None:
  """A one-line error for an axis named as a column of the results table (``member``,
  ``seed``, a measurement), which :class:`lrlab.sweep.SweepResult` refuses: raised before
  anything is compiled or trained, not once every member has trained."""
  reserved = sorted(set(grid) & {"member", "seed", *TABLE_COLUMNS})
  if reserved:
    raise ValueError(
      f"{name} names must differ from the table's columns (member, seed, "
      f"{', '.join(TABLE_COLUMNS)}); got {reserved}."
    )


def seed_values(seeds: int | Sequence[int]) -> np.ndarray:
  """The sweep's seeds as an integer array: ``0, ..., seeds - 1`` for a count, else the
  sequence itself (distinct integers in ``[0, 2**32)``); a one-line error otherwise."""
  allowed = f"a count >= 1 or a sequence of distinct integers in [0, {2**32})"
  if isinstance(seeds, int | np.integer) and not isinstance(seeds, bool):
    if seeds < 1:
      raise ValueError(f"seeds must be {allowed}; got {seeds!r}.")
    return np.arange(int(seeds))
  values = np.asarray(seeds)
  if (
    values.ndim != 1
    or values.size == 0
    or not np.issubdtype(values.dtype, np.integer)
    or np.any(values < 0)
    or np.any(values >= 2**32)
    or len(set(values.tolist())) != values.size
  ):
    raise ValueError(f"seeds must be {allowed}; got {seeds!r}.")
  return values


def check_task(task: Any) -> tasks_lib.Task:
  """``task`` itself if it is a :class:`lrlab.tasks.Task`, the registered task of that name
  if it is one of :func:`lrlab.tasks.names`; a one-line error otherwise."""
  if isinstance(task, tasks_lib.Task):
    return task
  if isinstance(task, str) and task in tasks_lib.names():
    return tasks_lib.get(task)
  known = ", ".join(repr(n) for n in tasks_lib.names())
  raise ValueError(f"task must be an lrlab.tasks.Task or one of {known}; got {task!r}.")


def check_key(key: Any) -> None:
  """Raises a one-line error unless ``key`` is one JAX random key: a typed key of shape ``()``
  (``jax.random.key``) or a raw ``uint32`` vector (``jax.random.PRNGKey``)."""
  typed = isinstance(key, jax.Array) and jnp.issubdtype(key.dtype, jax.dtypes.prng_key)
  raw = isinstance(key, jax.Array) and key.dtype == jnp.uint32 and key.ndim == 1
  if not ((typed and key.ndim == 0) or raw):
    raise ValueError(f"key must be one jax.random key, e.g. jax.random.key(0); got {key!r}.")


def check_functions(make_tx: Any, should_stop: Any) -> None:
  """Raises a one-line error unless ``make_tx`` is a hashable function (the sweep keeps its
  programs by ``make_tx``, as ``jax.jit`` keys functions) and ``should_stop`` is ``None`` or a
  function, before anything is compiled or trained."""
  try:
    hashable = callable(make_tx) and hash(make_tx) is not None
  except TypeError:
    hashable = False
  if not hashable:
    raise ValueError(
      "make_tx must be a hashable function hp -> GradientTransformation (a dataclass: frozen=True "
      f"or eq=False); got {make_tx!r}."
    )
  if should_stop is not None and not callable(should_stop):
    raise ValueError(f"should_stop must be None or a function () -> bool; got {should_stop!r}.")


def check_chunk_size(chunk_size: Any, num_devices: int, others: str = "None") -> None:
  """A one-line error unless ``chunk_size`` is a positive multiple of ``num_devices`` (``others``:
  the other values the caller takes, for the message)."""
  if (
    isinstance(chunk_size, bool)
    or not isinstance(chunk_size, int | np.integer)
    or chunk_size <= 0
    or chunk_size % num_devices
  ):
    raise ValueError(
      f"chunk_size must be {others} or a positive multiple of the number of devices "
      f"({num_devices}); got {chunk_size!r}."
    )


def check_settings(
  checkpoint_interval: Any, divergence_factor: Any, checkpoint_dir: Any = None
) -> None:
  """A one-line error unless both are real numbers and ``checkpoint_interval`` is finite and
  >= 0 (the trainer checks ``divergence_factor > 1``), and ``checkpoint_dir`` is ``None`` or
  a folder to create or reuse. :func:`lrlab._checks.check` lets ``None`` through (it means
  "not set" there) and reads ``"30"`` as 30: either one failed later with a ``TypeError``
  naming nothing, ``checkpoint_interval`` after the first segment had compiled and trained;
  a ``checkpoint_dir`` that is a file (or lies inside one) failed at the first checkpoint,
  after the first chunk had trained, with a ``FileExistsError``."""
  for name, value in (
    ("checkpoint_interval", checkpoint_interval),
    ("divergence_factor", divergence_factor),
  ):
    number = isinstance(value, int | float | np.integer | np.floating) or (
      isinstance(value, np.ndarray | jax.Array) and value.ndim == 0 and value.dtype.kind in "iuf"
    )
    if isinstance(value, bool) or not number:
      raise ValueError(f"{name} must be a number; got {value!r}.")
  _checks.check_nonnegative("checkpoint_interval", checkpoint_interval)
  if checkpoint_dir is not None:
    _checks.check_folder("checkpoint_dir", checkpoint_dir)


def check_target(target: Any, task: tasks_lib.Task | None = None) -> dict[str, Any] | None:
  """A sweep's ``target``, ``None`` or a ``(metric, value)`` pair with ``metric`` in
  :data:`lrlab.train.METRICS` (an accuracy only for a ``task`` that classifies) and a finite
  ``value``, as ``{"metric": ..., "value": ...}``."""
  if target is None:
    return None
  if isinstance(target, str) or not isinstance(target, Sequence) or len(target) != 2:
    raise ValueError(
      f"target must be None or a (metric, value) pair such as ('val_accuracy', 0.6); "
      f"got {target!r}."
    )
  metric, value = target
  _checks.check_choice("target metric", metric, METRICS)
  if task is not None and task.num_classes is None and metric.endswith("accuracy"):
    raise ValueError(
      f"target metric must be a loss for {task.name!r}, which reports no accuracy (it does not "
      f"classify); got {metric!r}."
    )
  if isinstance(value, bool) or not isinstance(value, int | float | np.integer | np.floating):
    raise ValueError(f"target value must be a number; got {value!r}.")
  _checks.check("target value", value, np.isfinite, "a finite number")
  return {"metric": metric, "value": float(value)}


def check_tx_config(tx_config: Any) -> dict[str, Any] | None:
  """``tx_config`` as the JSON round trip of the dict (the form the sweep's config records),
  or ``None``; a one-line error for anything not JSON-able."""
  if tx_config is None:
    return None
  try:
    if not isinstance(tx_config, Mapping):
      raise TypeError
    return json.loads(json.dumps(dict(tx_config)))
  except (TypeError, ValueError):
    raise ValueError(
      "tx_config must be None or a JSON-able dict describing make_tx (e.g. "
      f"{{'optimizer': 'adam', 'b1': 0.9}}); got {tx_config!r}."
    ) from None


def as_traced(values: np.ndarray) -> np.ndarray:
  """A grid column as ``make_tx`` receives it: float32, or int32 for an integer axis."""
  return values.astype(np.int32 if np.issubdtype(values.dtype, np.integer) else np.float32)


def check_traceable(grid: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
  """``grid`` itself, or a one-line error for a value that :func:`as_traced` would change: an
  integer outside int32, a float that overflows float32 or a non-zero one that rounds to 0."""
  for name, column in grid.items():
    with np.errstate(over="ignore"):  # a float beyond float32 becomes inf: refused below
      cast = as_traced(column)
    if np.issubdtype(column.dtype, np.integer):
      bad = cast.astype(np.int64) != column
      allowed = f"integers in [{-(2**31)}, {2**31 - 1}] (make_tx receives them as int32)"
    else:
      bad = ~np.isfinite(cast) | ((cast == 0) & (column != 0))
      allowed = "numbers that float32 represents (make_tx receives them as float32)"
    if np.any(bad):
      raise ValueError(f"grid[{name!r}] must hold {allowed}; got {column[bad].tolist()!r}.")
  return grid


def qualified_name(function: Any) -> str:
  """``module.qualname`` of a function (``functools.partial``: of the function it wraps)."""
  function = getattr(function, "func", function)
  name = getattr(function, "__qualname__", type(function).__qualname__)
  return f"{getattr(function, '__module__', None) or '?'}.{name}"


def task_arrays(task: tasks_lib.Task) -> list[np.ndarray]:
  """The task's data, for the fingerprint; of a streamed task, its sizes and end examples."""
  if not task.streamed:
    return [np.asarray(a) for s in ("train", "val", "test") for a in task.dataset.split(s)]
  dataset, arrays = task.dataset, []
  for split, size in dataset.sizes.items():
    ends = np.unique([0, size - 1])
    arrays += [np.asarray([size]), *dataset.gather(split, ends, where="the fingerprint")]
  return arrays


def key_data(key: jax.Array) -> list[int]:
  """The integers of a key (typed or raw), flattened: how a sweep's config records its key,
  and what the searches seed NumPy's generators from."""
  data = jax.random.key_data(key) if jnp.issubdtype(key.dtype, jax.dtypes.prng_key) else key
  return np.asarray(data).ravel().tolist()


def check_accuracy(task: Any, metric: str) -> None:
  """A one-line error, before compute, if ``metric`` is an accuracy the task does not report."""
  if not metric.endswith("accuracy"):
    return
  # Shapes only: slicing the device arrays themselves would compile two programs; a streamed
  # task's example shapes are its spec's.
  if task.streamed:
    spec = task.dataset.spec
    x = jax.ShapeDtypeStruct((1, *spec.x_shape), spec.x_dtype)
    y = jax.ShapeDtypeStruct((1, *spec.y_shape), spec.y_dtype)
  else:
    one = lambda a: jax.ShapeDtypeStruct((1, *a.shape[1:]), a.dtype)
    x, y = (one(a) for a in task.split("val"))
  params, model_state = jax.eval_shape(task.init, jax.random.key(0))
  _, aux = jax.eval_shape(task.eval_loss, params, model_state, (x, y))
  if "accuracy" not in aux:
    raise ValueError(
      f"metric must be one the task {task.name!r} reports; it has no accuracy, so {metric!r} "
      "does not exist (use 'val_loss')."
    )
