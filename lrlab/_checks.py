"""Argument validation at the public boundary.

Every numeric hyperparameter may be a traced array (ARCHITECTURE.md), so a check only
runs on concrete values: a tracer cannot be inspected and passes through. A
failed check raises ``ValueError`` naming the argument, the value and what is
allowed.
"""

import json
import os
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import jax
import numpy as np


def is_traced(value: Any) -> bool:
  """True if any leaf of ``value`` is a JAX tracer (its value is unknown)."""
  return any(isinstance(leaf, jax.core.Tracer) for leaf in jax.tree.leaves(value))


def check(name: str, value: Any, ok: Callable[[np.ndarray], np.ndarray], allowed: str) -> None:
  """Raise ``ValueError`` unless ``ok`` holds for every element of a concrete ``value`` (a
  string never passes); ``None``, a callable (a schedule) and a traced value pass unchecked."""
  if value is None or callable(value) or is_traced(value):
    return
  if isinstance(value, str | bytes):  # NumPy would read "0.1" as 0.1, and the update fail later
    raise ValueError(f"{name} must be {allowed}; got {value!r}.")
  try:
    array = np.asarray(value, dtype=np.float64)
  except (TypeError, ValueError):
    raise ValueError(f"{name} must be {allowed}; got {value!r}.") from None
  if not np.all(ok(array)):
    raise ValueError(f"{name} must be {allowed}; got {value!r}.")


def check_given(**values: Any) -> None:
  """Refuse ``None`` for each required hyperparameter (``learning_rate=...``, ``b1=...``).

  :func:`check` lets ``None`` through, where it means "not set" (``d0``, ``averaging``); a
  required number given as ``None`` (an unset config field) would otherwise fail only inside
  ``update``, with a ``TypeError`` that names no argument.
  """
  for name, value in values.items():
    if value is None:
      what = "a number or an array" + (" or a schedule" if name == "learning_rate" else "")
      raise ValueError(f"{name} must be {what}; got None.")


def check_nonnegative(name: str, value: Any) -> None:
  """``value`` is finite and >= 0 (a learning rate, a weight, an epsilon)."""
  check(name, value, lambda x: np.isfinite(x) & (x >= 0), "a finite number >= 0")


def check_positive(name: str, value: Any) -> None:
  """``value`` is finite and > 0 (a step count, a period, a factor)."""
  check(name, value, lambda x: np.isfinite(x) & (x > 0), "a finite number > 0")


def check_interval(
  name: str,
  value: Any,
  low: float,
  high: float,
  *,
  closed_low: bool = True,
  closed_high: bool = True,
) -> None:
  """``value`` lies in the interval from ``low`` to ``high`` (ends as given)."""
  above = (lambda x: x >= low) if closed_low else (lambda x: x > low)
  below = (lambda x: x <= high) if closed_high else (lambda x: x < high)
  interval = f"{'[' if closed_low else '('}{low}, {high}{']' if closed_high else ')'}"
  check(name, value, lambda x: np.isfinite(x) & above(x) & below(x), f"in {interval}")


def check_betas(**coefficients: Any) -> None:
  """Each moving-average coefficient (``b1=...``, ``b2=...``) lies in ``[0, 1)``, PyTorch's rule."""
  for name, value in coefficients.items():
    check_interval(name, value, 0.0, 1.0, closed_high=False)


def is_zero(value: Any) -> bool:
  """True only for a Python number equal to 0: the link or term it weighs can be left out.

  The test is on the type, not the value of an array: any array, traced or a
  concrete zero, keeps its link, so every configuration of a sweep (``hp`` a dict
  of arrays) builds a chain with the same state structure.
  """
  return isinstance(value, int | float) and value == 0


def check_choice(name: str, value: Any, choices: Sequence[Any]) -> None:
  """``value`` is one of ``choices`` (a structural, static option)."""
  if value not in choices:
    allowed = ", ".join(repr(c) for c in choices)
    raise ValueError(f"{name} must be one of {allowed}; got {value!r}.")


def _integral(value: Any) -> bool:
  numbers = int | float | np.integer | np.floating
  if isinstance(value, bool | np.bool_) or not isinstance(value, numbers):
    return False
  return bool(np.isfinite(value)) and float(value) == int(value)


def count(name: str, value: Any, low: int = 1) -> int:
  """``value`` as an ``int``: an integer >= ``low`` (a float of integral value is taken too);
  a one-line ``ValueError`` naming ``name`` for anything else (a fraction, a bool, a sequence)."""
  if not _integral(value) or value < low:
    raise ValueError(f"{name} must be an integer >= {low}; got {value!r}.")
  return int(value)


def flag(name: str, value: Any) -> bool:
  """``value`` as a ``bool``: ``True`` or ``False`` (NumPy's too); a one-line ``ValueError``
  naming ``name`` for anything else (``"no"`` or ``None`` would read as a truth value)."""
  if not isinstance(value, bool | np.bool_):
    raise ValueError(f"{name} must be True or False; got {value!r}.")
  return bool(value)


def counts(name: str, value: Any, low: int = 1, *, empty: bool = True) -> tuple[int, ...]:
  """``value`` as a tuple of ``int``: a sequence of integers >= ``low`` (non-empty unless
  ``empty``); a one-line ``ValueError`` naming ``name`` for anything else (one number, a
  fraction in it)."""
  sequence = isinstance(value, Sequence | np.ndarray) and not isinstance(value, str)
  items = tuple(value) if sequence else None
  if items is None or not all(_integral(v) and v >= low for v in items) or not (empty or items):
    what = "a sequence" if empty else "a non-empty sequence"
    raise ValueError(f"{name} must be {what} of integers >= {low}; got {value!r}.")
  return tuple(int(v) for v in items)


def check_le(name_low: str, low: Any, name_high: str, high: Any) -> None:
  """``low <= high`` for concrete values (e.g. ``base_lr <= max_lr``)."""
  if is_traced((low, high)) or callable(low) or callable(high):
    return
  if not np.all(np.asarray(low, np.float64) <= np.asarray(high, np.float64)):
    raise ValueError(
      f"{name_low} must be <= {name_high}; got {name_low}={low!r}, {name_high}={high!r}."
    )


def differences(before: Mapping[str, Any], now: Mapping[str, Any], most: int = 3) -> str:
  """The settings that differ between two dicts of JSON values, for an error message:
  ``'steps 8 there, 16 here; seeds [0] there, [0, 1] here'`` (``before`` is "there"; values
  cut at 40 characters, at most ``most`` named, then how many more); ``''`` if none do."""

  def short(value: Any) -> str:
    text = json.dumps(value)
    return text if len(text) <= 40 else text[:39] + "…"

  named = [
    f"{name} {short(before.get(name))} there, {short(now.get(name))} here"
    for name in sorted(set(before) | set(now))
    if before.get(name) != now.get(name)
  ]
  more = f"; and {len(named) - most} more" if len(named) > most else ""
  return "; ".join(named[:most]) + more


def check_folder(name: str, path: Any) -> None:
  """A one-line error unless ``path`` is a folder's path (``str`` or ``os.PathLike``) that is
  a folder or may be made one: neither a file nor inside one. Else the first file written
  there fails with the OS's error, which names no argument."""
  if not isinstance(path, str | os.PathLike):
    raise ValueError(f"{name} must be a folder's path; got {path!r}.")
  existing = os.path.abspath(path)
  while not os.path.exists(existing):  # the nearest folder above it that exists
    existing = os.path.dirname(existing)
  if not os.path.isdir(existing):
    where = "which is a file" if existing == os.path.abspath(path) else "inside a file"
    raise ValueError(f"{name} must be a folder to create or reuse; got {str(path)!r}, {where}.")
