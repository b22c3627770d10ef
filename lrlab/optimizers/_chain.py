"""Pieces the named optimizers share when they build their chains.

The checks of the arguments every optimizer has, the coupled penalties that
start a chain, the momentum buffer, and the decoupled weight decay. A link
whose weight is the Python number 0 is left out (:func:`lrlab._checks.is_zero`);
an array, even a concrete zero, keeps it, so a sweep's configurations share
one state structure.
"""

import optax
from jax.typing import ArrayLike

from lrlab import _checks
from lrlab.transforms.learning_rate import LearningRate
from lrlab.transforms.momentum import trace
from lrlab.transforms.regularization import add_decayed_weights, add_l1, add_l2


def check_common(learning_rate: LearningRate, weight_decay: ArrayLike, l1: ArrayLike) -> None:
  """Check the arguments every classic optimizer has."""
  _checks.check_given(learning_rate=learning_rate, weight_decay=weight_decay, l1=l1)
  _checks.check_nonnegative("learning_rate", learning_rate)
  _checks.check_nonnegative("weight_decay", weight_decay)
  _checks.check_nonnegative("l1", l1)


def penalties(weight_decay: ArrayLike, l1: ArrayLike) -> list[optax.GradientTransformation]:
  """The coupled penalties, first in a chain as PyTorch adds them to the gradient."""
  parts = []
  if not _checks.is_zero(weight_decay):
    parts.append(add_l2(weight_decay))
  if not _checks.is_zero(l1):
    parts.append(add_l1(l1))
  return parts


def coupled(
  weight_decay: ArrayLike, l1: ArrayLike, *, decoupled: bool = False
) -> list[optax.GradientTransformation]:
  """Check the penalties of a rule that owns its step size; return the coupled ones.

  A decoupled ``weight_decay`` is the rule's own business and is left out here.
  """
  _checks.check_given(weight_decay=weight_decay, l1=l1)
  _checks.check_nonnegative("weight_decay", weight_decay)
  _checks.check_nonnegative("l1", l1)
  return penalties(0.0 if decoupled else weight_decay, l1)


def momentum_buffer(
  momentum: ArrayLike, nesterov: bool, dampening: ArrayLike
) -> list[optax.GradientTransformation]:
  """The momentum buffer, left out only when momentum is a Python 0."""
  part = trace(momentum, nesterov=nesterov, dampening=dampening)  # validates
  return [] if _checks.is_zero(momentum) else [part]


def decayed(
  weight_decay: ArrayLike, l1: ArrayLike, decoupled: bool
) -> tuple[list[optax.GradientTransformation], list[optax.GradientTransformation]]:
  """The penalties before the rule and the decoupled decay after it."""
  if not decoupled:
    return penalties(weight_decay, l1), []
  after = [] if _checks.is_zero(weight_decay) else [add_decayed_weights(weight_decay)]
  return penalties(0.0, l1), after
