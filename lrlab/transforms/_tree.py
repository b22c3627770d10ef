"""Small pytree helpers shared by the adaptive rules."""

import jax
import jax.numpy as jnp
import optax


def zeros_like(params: optax.Params) -> optax.Params:
  """Zeros shaped like ``params``, strongly typed even where a leaf is weakly typed.

  A weakly typed zero would turn strong at the first update that meets a strong
  (e.g. traced float32) hyperparameter, changing the state's type under ``jit``
  and ``lax.scan``; a strong zero keeps it fixed.
  """
  return jax.tree.map(lambda p: jnp.zeros_like(p, dtype=jnp.result_type(p)), params)
