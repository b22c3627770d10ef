"""What ``make_tx`` receives in a sweep, and the errors that explain its contract.

``make_tx(hp)`` is called while tracing, with ``hp`` mapping each grid axis to
the member's value as a traced scalar. The mapping records which axes it read,
so the engine can flag an axis that ``make_tx`` ignores, and a missing axis
names the grid's. JAX's errors about a traced value used as a Python number
are restated in the sweep's terms.
"""

import contextlib
from typing import Any

import jax
import optax


class UnusedAxisWarning(UserWarning):
  """A grid axis that ``make_tx`` never reads: its members are copies of one another."""


class Axes(dict):
  """The ``hp`` that ``make_tx`` receives. It records which axes were read into ``read``,
  and a missing axis raises an error that names the grid's axes."""

  def __init__(self, values: dict[str, jax.Array], read: set[str]):
    super().__init__(values)
    self.read = read

  def __getitem__(self, name: str) -> jax.Array:
    self.read.add(name)
    return super().__getitem__(name)

  def get(self, name: str, default: Any = None) -> Any:
    """``dict.get``, recording ``name`` as read."""
    self.read.add(name)
    return super().get(name, default)

  def _read_all(self) -> None:
    self.read.update(super().keys())

  def __iter__(self):
    self._read_all()
    return super().__iter__()

  def keys(self):
    """``dict.keys``, recording every axis as read."""
    self._read_all()
    return super().keys()

  def values(self):
    """``dict.values``, recording every axis as read."""
    self._read_all()
    return super().values()

  def items(self):
    """``dict.items``, recording every axis as read."""
    self._read_all()
    return super().items()

  def copy(self) -> dict[str, jax.Array]:
    """A plain ``dict`` of the axes, recording every axis as read."""
    self._read_all()
    return dict(super().items())

  def __or__(self, other: Any) -> dict[str, jax.Array]:
    return self.copy() | other

  def __missing__(self, name: str):
    # Lists the axes without recording them as read: a make_tx that catches the KeyError for
    # an optional axis must still be told about the axes it never reads.
    raise KeyError(
      f"make_tx asked for hp[{name!r}], but the grid's axes are "
      f"{', '.join(repr(k) for k in dict.keys(self))}; name the grid's axes as make_tx reads them."
    )


@contextlib.contextmanager
def explain_traced_hyperparameters():
  """Turn JAX's errors about a traced value used as a concrete one into the sweep's terms."""
  try:
    yield
  except (
    jax.errors.ConcretizationTypeError,
    jax.errors.TracerIntegerConversionError,
    jax.errors.TracerArrayConversionError,
  ) as error:
    raise TypeError(
      "make_tx or its optimizer needs a concrete value of a hyperparameter, but in a sweep "
      "every member's hyperparameters are traced scalars, so that one program serves them "
      "all: use them in jnp arithmetic, never in float(), int(), an if or NumPy. JAX said: "
      + str(error).splitlines()[0]
    ) from error


def split(hp: dict[str, jax.Array], read: set[str]) -> tuple[Axes, jax.Array | int]:
  """``make_tx``'s hyperparameters and the fold: with k-fold cross-validation, ``"fold"`` is
  a grid axis the trainer reads, not ``make_tx``."""
  return Axes({k: v for k, v in hp.items() if k != "fold"}, read), hp.get("fold", 0)


def make(make_tx: Any, hp: Axes) -> optax.GradientTransformation:
  """``make_tx(hp)``, checked to be an Optax ``GradientTransformation``."""
  tx = make_tx(hp)
  if not isinstance(tx, optax.GradientTransformation):
    raise TypeError(
      "make_tx must return an optax.GradientTransformation (e.g. lrlab.optimizers.adam(hp['lr'])"
      f" or an optax.chain); it returned {type(tx).__name__}: {tx!r:.80}."
    )
  return tx
