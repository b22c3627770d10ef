"""Hyperparameter grids: named columns of equal length, one row per sweep member.

A grid is a plain ``dict[str, np.ndarray]``: each entry is a 1-D array (float64,
or int64 for an integer axis) and member ``k`` of the sweep uses
``{name: values[k] for name, values in grid.items()}``. The helpers here build
the columns (log- or linearly spaced, log-uniform random), combine them
(Cartesian :func:`product`, aligned :func:`zipped`), and read them from the
command line (:func:`parse_axis`, :func:`parse_grid`).

Example:
  >>> grid = lrlab.sweep.product(lr=lrlab.sweep.log_grid(1e-3, 1e-1, 3), momentum=[0.0, 0.9])
  >>> grid["lr"].tolist(), grid["momentum"].tolist()
  ([0.001, 0.001, 0.01, 0.01, 0.1, 0.1], [0.0, 0.9, 0.0, 0.9, 0.0, 0.9])
"""

import itertools
import math
from collections.abc import Mapping, Sequence
from typing import Any

import jax
import numpy as np
from jax.typing import ArrayLike

from lrlab import _checks

Grid = dict[str, np.ndarray]

AXIS_SYNTAX = (
  "NAME=LO:HI:N:log (N log-spaced values from LO to HI, inclusive), "
  "NAME=LO:HI:N:lin (N linearly spaced values), or NAME=V1,V2,... (the values given), "
  "e.g. 'lr=1e-5:1:64:log' or 'momentum=0.8,0.9,0.99'"
)


def _check_count(n: Any) -> int:
  if isinstance(n, bool) or not isinstance(n, int | np.integer) or n < 1:
    raise ValueError(f"n must be an integer >= 1; got {n!r}.")
  return int(n)


def _check_bounds(lo: Any, hi: Any, *, positive: bool) -> tuple[float, float]:
  for name, value in (("lo", lo), ("hi", hi)):
    number = isinstance(value, int | float | np.integer | np.floating) or (
      isinstance(value, np.ndarray | jax.Array) and value.ndim == 0
    )
    if isinstance(value, bool) or not number:
      raise ValueError(f"{name} must be a number; got {value!r}.")
  if positive:
    _checks.check_positive("lo", lo)
  else:
    _checks.check("lo", lo, np.isfinite, "a finite number")
  _checks.check("hi", hi, np.isfinite, "a finite number")
  if not float(hi) > float(lo):
    raise ValueError(f"hi must be a number > lo; got lo={lo!r}, hi={hi!r}.")
  return float(lo), float(hi)


def log_grid(lo: float, hi: float, n: int) -> np.ndarray:
  """``n`` geometrically spaced values from ``lo`` to ``hi``, both included.

  ``values[i] = lo * (hi / lo) ** (i / (n - 1))`` (``np.geomspace``, whose ends are exactly
  ``lo`` and ``hi``; a value within 8 ulps of a power of ten is made exactly it, where
  geomspace gives ``9.999999999999999e-06`` for 1e-5). With ``n = 1`` the grid is ``[lo]``.
  Log spacing is the default for learning rates (Google's tuning playbook).

  Args:
    lo: the smallest value, > 0.
    hi: the largest value, > ``lo``.
    n: the number of values, >= 1.

  Returns:
    A float64 array of shape ``(n,)``, increasing.

  Example:
    >>> lrlab.sweep.log_grid(1e-4, 1.0, 5).tolist()
    [0.0001, 0.001, 0.01, 0.1, 1.0]
  """
  lo, hi = _check_bounds(lo, hi, positive=True)
  n = _check_count(n)
  values = np.geomspace(lo, hi, n, dtype=np.float64)
  decades = np.array([float(f"1e{e:.0f}") for e in np.round(np.log10(values))])
  snap = np.abs(values - decades) <= 8 * np.finfo(float).eps * decades
  snap[[0, -1]] = False  # the ends stay lo and hi
  return np.where(snap, decades, values)


def linear_grid(lo: float, hi: float, n: int) -> np.ndarray:
  """``n`` evenly spaced values from ``lo`` to ``hi``, both included (``np.linspace``).

  Args:
    lo: the smallest value (any finite number).
    hi: the largest value, > ``lo``.
    n: the number of values, >= 1 (``n = 1`` gives ``[lo]``).

  Returns:
    A float64 array of shape ``(n,)``, increasing.

  Example:
    >>> lrlab.sweep.linear_grid(0.0, 1.0, 5).tolist()
    [0.0, 0.25, 0.5, 0.75, 1.0]
  """
  lo, hi = _check_bounds(lo, hi, positive=False)
  n = _check_count(n)
  return np.linspace(lo, hi, n, dtype=np.float64)


def random_log(lo: float, hi: float, n: int, key: jax.Array) -> np.ndarray:
  """``n`` log-uniform random values in ``[lo, hi]``, sorted ascending (random search).

  ``values = exp(log(lo) + u * (log(hi) - log(lo)))`` with ``u ~ U[0, 1)`` drawn
  from ``key``; the same key gives the same values.

  Args:
    lo: the smallest possible value, > 0.
    hi: the largest possible value, > ``lo``.
    n: the number of values, >= 1.
    key: a ``jax.random`` key.

  Returns:
    A float64 array of shape ``(n,)``, sorted ascending.

  Example:
    >>> values = lrlab.sweep.random_log(1e-4, 1.0, 8, jax.random.key(0))
    >>> bool(np.all(np.diff(values) >= 0) and values[0] >= 1e-4 and values[-1] <= 1.0)
    True

  References:
    Bergstra and Bengio, "Random Search for Hyper-Parameter Optimization", JMLR 2012.
    https://jmlr.org/papers/v13/bergstra12a.html
  """
  lo, hi = _check_bounds(lo, hi, positive=True)
  n = _check_count(n)
  if not isinstance(key, jax.Array):
    raise ValueError(f"key must be a jax.random key (jax.random.key(seed)); got {key!r}.")
  u = np.asarray(jax.random.uniform(key, (n,)), dtype=np.float64)
  values = np.exp(math.log(lo) + u * (math.log(hi) - math.log(lo)))
  return np.sort(np.clip(values, lo, hi))


def _column(name: str, values: Any) -> np.ndarray:
  try:
    array = np.asarray(values)
  except (TypeError, ValueError):
    raise ValueError(f"grid axis {name!r} must be numbers; got {values!r}.") from None
  if array.ndim == 0:
    array = array.reshape(1)
  if array.dtype.kind in "iu":
    if array.size and array.dtype.kind == "u" and array.max() > np.iinfo(np.int64).max:
      raise ValueError(
        f"grid axis {name!r} must hold integers that fit int64; got {array.tolist()!r}."
      )
    array = array.astype(np.int64)
  elif array.dtype.kind == "f":
    array = array.astype(np.float64)
  else:
    raise ValueError(
      f"grid axis {name!r} must hold integers or floats; got dtype {array.dtype} ({values!r})."
    )
  return array


def check_grid(grid: Mapping[str, ArrayLike], name: str = "grid") -> Grid:
  """Validate a grid and return it as a ``dict`` of 1-D float64 / int64 NumPy arrays.

  A grid is a non-empty mapping from valid Python identifiers (they become
  keyword names in ``make_tx(hp)``) to 1-D arrays of finite numbers, all of the
  same non-zero length.

  Args:
    grid: the mapping to check.
    name: what to call it in error messages.

  Returns:
    A new ``dict`` with the same names, in the same order; integer columns are
    int64, the others float64. Scalars become length-1 columns.

  Raises:
    ValueError: naming the offending entry and what is allowed.

  Example:
    >>> lrlab.sweep.check_grid({"lr": [0.1, 0.2], "warmup": [0, 10]})
    {'lr': array([0.1, 0.2]), 'warmup': array([ 0, 10])}
  """
  if not isinstance(grid, Mapping) or not grid:
    raise ValueError(
      f"{name} must be a non-empty dict from hyperparameter names to 1-D arrays; got {grid!r}."
    )
  checked = {}
  for key, values in grid.items():
    if not isinstance(key, str) or not key.isidentifier():
      raise ValueError(f"{name} names must be valid Python identifiers; got {key!r}.")
    column = _column(key, values)
    if column.ndim != 1 or column.size == 0:
      raise ValueError(f"{name}[{key!r}] must be a non-empty 1-D array; got shape {column.shape}.")
    if not np.all(np.isfinite(column)):
      raise ValueError(f"{name}[{key!r}] must hold finite numbers; got {column.tolist()!r}.")
    checked[key] = column
  lengths = {key: len(column) for key, column in checked.items()}
  if len(set(lengths.values())) > 1:
    raise ValueError(f"{name} columns must all have the same length; got lengths {lengths}.")
  return checked


def grid_size(grid: Mapping[str, ArrayLike]) -> int:
  """The number of members ``K`` of a grid (the common length of its columns).

  Example:
    >>> lrlab.sweep.grid_size(lrlab.sweep.product(lr=[0.1, 0.2, 0.3], wd=[0.0, 1e-4]))
    6
  """
  return len(next(iter(check_grid(grid).values())))


def member(grid: Mapping[str, ArrayLike], index: int) -> dict[str, float | int]:
  """The hyperparameters of member ``index`` as a dict of Python numbers.

  Example:
    >>> lrlab.sweep.member({"lr": [0.1, 0.2], "warmup": [0, 10]}, 1)
    {'lr': 0.2, 'warmup': 10}
  """
  grid = check_grid(grid)
  size = len(next(iter(grid.values())))
  if isinstance(index, bool) or not isinstance(index, int | np.integer) or not 0 <= index < size:
    raise ValueError(f"index must be an integer in [0, {size - 1}]; got {index!r}.")
  return {key: column[index].item() for key, column in grid.items()}


def _axes(grids: Sequence[Mapping], axes: Mapping[str, Any]) -> list[Grid]:
  """Turn positional grids and keyword axes into a list of checked grids."""
  blocks = [check_grid(grid, name=f"grids[{i}]") for i, grid in enumerate(grids)]
  for key, values in axes.items():
    if isinstance(values, Mapping):
      if len(values) != 1:
        raise ValueError(
          f"axis {key!r} must be a sequence, an array or a single-axis grid; got a grid with "
          f"axes {list(values)} (pass a multi-axis grid positionally to keep its names)."
        )
      values = next(iter(values.values()))
    blocks.append(check_grid({key: values}))
  if not blocks:
    raise ValueError("at least one axis is required, e.g. product(lr=log_grid(1e-4, 1, 9)).")
  names = [key for block in blocks for key in block]
  duplicates = sorted({key for key in names if names.count(key) > 1})
  if duplicates:
    raise ValueError(f"every axis name must appear once; got {duplicates} more than once.")
  return blocks


def product(*grids: Mapping[str, ArrayLike], **axes: Any) -> Grid:
  """The Cartesian product of axes: every combination, the first axis varying slowest.

  Each keyword is one axis (a sequence, an array, a scalar or a single-axis
  grid, named by the keyword). Each positional argument is a grid whose
  columns vary together as one axis (e.g. a :func:`zipped` grid). Positional
  grids come first, then the keywords, in order; the member index is the
  row-major (C order) index over the axes, as ``itertools.product``.

  Args:
    *grids: grids whose members are kept together.
    **axes: named axes.

  Returns:
    A grid with ``prod(len(axis))`` members.

  Example:
    >>> grid = lrlab.sweep.product(lr=[0.1, 1.0], warmup=[0, 5, 10])
    >>> grid["lr"].tolist(), grid["warmup"].tolist()
    ([0.1, 0.1, 0.1, 1.0, 1.0, 1.0], [0, 5, 10, 0, 5, 10])
  """
  blocks = _axes(grids, axes)
  sizes = [len(next(iter(block.values()))) for block in blocks]
  rows = np.array(list(itertools.product(*map(range, sizes))), dtype=np.int64)
  rows = rows.reshape(-1, len(blocks))
  return {
    key: column[rows[:, i]] for i, block in enumerate(blocks) for key, column in block.items()
  }


def zipped(*grids: Mapping[str, ArrayLike], **axes: Any) -> Grid:
  """Axes of equal length side by side: member ``k`` takes the ``k``-th value of each.

  Use it for settings that move together (a learning rate with its own
  weight decay) or for random search (one random column per hyperparameter).

  Args:
    *grids: grids to place side by side.
    **axes: named axes (sequences, arrays or single-axis grids).

  Returns:
    A grid with the common length of its inputs.

  Raises:
    ValueError: if the inputs differ in length.

  Example:
    >>> grid = lrlab.sweep.zipped(lr=[0.1, 0.01], weight_decay=[1e-4, 1e-5])
    >>> lrlab.sweep.member(grid, 1)
    {'lr': 0.01, 'weight_decay': 1e-05}
  """
  blocks = _axes(grids, axes)
  lengths = {key: len(column) for block in blocks for key, column in block.items()}
  if len(set(lengths.values())) > 1:
    raise ValueError(f"zipped axes must all have the same length; got lengths {lengths}.")
  return {key: column for block in blocks for key, column in block.items()}


def _number(text: str, spec: str) -> float | int:
  try:
    return int(text)
  except ValueError:
    pass
  try:
    return float(text)
  except ValueError:
    raise ValueError(
      f"cannot read {text!r} as a number in axis spec {spec!r}; expected {AXIS_SYNTAX}."
    ) from None


def parse_axis(spec: str) -> tuple[str, np.ndarray]:
  """Read one grid axis from its command-line form.

  ``"NAME=LO:HI:N:log"`` is :func:`log_grid` ``(LO, HI, N)``,
  ``"NAME=LO:HI:N:lin"`` is :func:`linear_grid` ``(LO, HI, N)``, and
  ``"NAME=V1,V2,..."`` lists the values (a single value is allowed). A list of
  integers (no decimal point or exponent) gives an integer axis.

  Args:
    spec: the axis specification.

  Returns:
    ``(name, values)`` with ``values`` a 1-D float64 (or int64) array.

  Raises:
    ValueError: for a malformed spec; the message shows the accepted syntax.

  Example:
    >>> lrlab.sweep.parse_axis("lr=1e-3:1e-1:3:log")
    ('lr', array([0.001, 0.01 , 0.1  ]))
    >>> lrlab.sweep.parse_axis("warmup=0,100,500")
    ('warmup', array([  0, 100, 500]))
  """
  if not isinstance(spec, str) or spec.count("=") != 1:
    raise ValueError(f"axis spec must look like {AXIS_SYNTAX}; got {spec!r}.")
  name, body = (part.strip() for part in spec.split("="))
  if not name.isidentifier():
    raise ValueError(
      f"axis name must be a valid Python identifier; got {name!r} in {spec!r} "
      f"(expected {AXIS_SYNTAX})."
    )
  if ":" in body:
    parts = [part.strip() for part in body.split(":")]
    if len(parts) != 4 or parts[3].lower() not in ("log", "lin"):
      raise ValueError(f"axis spec must look like {AXIS_SYNTAX}; got {spec!r}.")
    lo, hi, n = (_number(part, spec) for part in parts[:3])
    if not isinstance(n, int):
      raise ValueError(f"N must be an integer in axis spec {spec!r}; expected {AXIS_SYNTAX}.")
    build = log_grid if parts[3].lower() == "log" else linear_grid
    try:
      values = build(lo, hi, n)
    except ValueError as error:
      raise ValueError(
        f"bad range in axis spec {spec!r} ({str(error).rstrip('.')}); expected {AXIS_SYNTAX}."
      ) from None
    return name, values
  texts = [part.strip() for part in body.split(",")]
  if not all(texts):
    raise ValueError(f"axis spec must look like {AXIS_SYNTAX}; got {spec!r}.")
  values = [_number(text, spec) for text in texts]
  column = _column(name, values)
  if not np.all(np.isfinite(column)):
    raise ValueError(f"axis values must be finite numbers; got {spec!r} (expected {AXIS_SYNTAX}).")
  return name, column


def parse_grid(specs: Sequence[str]) -> Grid:
  """The :func:`product` of the axes given on the command line, in order.

  Args:
    specs: one :func:`parse_axis` spec per axis.

  Returns:
    The product grid (the first axis varies slowest).

  Example:
    >>> grid = lrlab.sweep.parse_grid(["lr=1e-2:1:3:log", "momentum=0.0,0.9"])
    >>> lrlab.sweep.grid_size(grid), grid["momentum"].tolist()
    (6, [0.0, 0.9, 0.0, 0.9, 0.0, 0.9])
  """
  if isinstance(specs, str) or not specs:
    raise ValueError(
      f"specs must be a non-empty list of axis specs ({AXIS_SYNTAX}); got {specs!r}."
    )
  axes = [parse_axis(spec) for spec in specs]
  names = [name for name, _ in axes]
  duplicates = sorted({name for name in names if names.count(name) > 1})
  if duplicates:
    raise ValueError(f"every axis name must appear once in specs; got {duplicates} more than once.")
  return product(**dict(axes))
