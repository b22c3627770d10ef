"""Pieces the named optimizers share when they build their chains."""

from collections.abc import Callable
from typing import Any

import jax
import optax
from jax.typing import ArrayLike

from lrlab.transforms.regularization import add_l1, add_l2

LearningRate = ArrayLike | Callable[[jax.Array], ArrayLike]
"""A learning rate: a number, an array (traced in a sweep) or a schedule ``step -> rate``."""


def is_zero(value: Any) -> bool:
  """True only for a Python number equal to 0: the link it weighs can be left out.

  The test is on the type, not the value of an array: any array, traced or a
  concrete zero, keeps its link, so every configuration of a sweep (``hp`` a dict
  of arrays) builds a chain with the same state structure.
  """
  return isinstance(value, int | float) and value == 0


def penalties(weight_decay: ArrayLike, l1: ArrayLike) -> list[optax.GradientTransformation]:
  """The coupled penalties, first in a chain as PyTorch adds them to the gradient."""
  parts = []
  if not is_zero(weight_decay):
    parts.append(add_l2(weight_decay))
  if not is_zero(l1):
    parts.append(add_l1(l1))
  return parts
