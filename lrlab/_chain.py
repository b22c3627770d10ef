"""Pieces the named optimizers share when they build their chains."""

import optax
from jax.typing import ArrayLike

from lrlab import _checks
from lrlab.transforms.regularization import add_l1, add_l2


def penalties(weight_decay: ArrayLike, l1: ArrayLike) -> list[optax.GradientTransformation]:
  """The coupled penalties, first in a chain as PyTorch adds them to the gradient."""
  parts = []
  if not _checks.is_zero(weight_decay):
    parts.append(add_l2(weight_decay))
  if not _checks.is_zero(l1):
    parts.append(add_l1(l1))
  return parts
