"""Activation functions by name, so model configs stay plain strings."""

from collections.abc import Callable

import jax
import jax.numpy as jnp

from lrlab import _checks

Activation = Callable[[jax.Array], jax.Array]

ACTIVATIONS: dict[str, Activation] = {
  "relu": jax.nn.relu,
  "gelu": jax.nn.gelu,
  "silu": jax.nn.silu,
  "tanh": jnp.tanh,
  "sigmoid": jax.nn.sigmoid,
  "elu": jax.nn.elu,
  "leaky_relu": jax.nn.leaky_relu,
  "softplus": jax.nn.softplus,
  "identity": lambda x: x,
}


def resolve(activation: str | Activation) -> Activation:
  """The function for ``activation``: a name in :data:`ACTIVATIONS` or a callable.

  Args:
    activation: e.g. ``"relu"``, ``"tanh"``, or any ``array -> array`` function.

  Returns:
    The activation function.

  Example:
    >>> float(lrlab.models.activations.resolve("relu")(-1.0))
    0.0
  """
  if callable(activation):
    return activation
  _checks.check_choice("activation", activation, sorted(ACTIVATIONS))
  return ACTIVATIONS[activation]
