"""Turn a Flax NNX module into a pair of pure functions ``init`` and ``apply``."""

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
from flax import nnx

Params = Any  # a nested dict of arrays


class Functional(NamedTuple):
  """A model as pure functions on a plain parameter pytree.

  Attributes:
    init: ``init(key) -> params``, a nested dict of arrays (no Flax objects),
      so optimizers, ``jax.vmap`` over keys and checkpoints see a plain pytree.
    apply: ``apply(params, x) -> outputs``, pure; ``x`` may have any leading
      batch axes.
  """

  init: Callable[[jax.Array], Params]
  apply: Callable[[Params, jax.Array], jax.Array]


def functional(make: Callable[[nnx.Rngs], nnx.Module]) -> Functional:
  """Split an NNX module into graph definition and parameters, once, at the boundary.

  ``make(rngs)`` builds the module. Its structure is traced once abstractly
  (``nnx.eval_shape``, no arrays allocated) to get the static ``GraphDef``;
  ``init`` builds a fresh module from a key and returns its parameters as a
  pure dict (``nnx.to_pure_dict``); ``apply`` rebuilds the module with
  ``nnx.merge`` and calls it. Both are pure, so they work under ``jax.jit``,
  ``jax.vmap`` (over keys or parameters), ``jax.grad`` and ``lax.scan``.

  Args:
    make: ``rngs -> module``; the module's state must be ``nnx.Param`` only
      (no batch statistics or RNG streams), since ``apply`` keeps no state.

  Returns:
    A :class:`Functional` ``(init, apply)``.

  Raises:
    ValueError: if the module holds state other than ``nnx.Param``.

  Example:
    >>> model = lrlab.models.functional(lambda rngs: lrlab.models.MLP(4, (8,), 3, rngs=rngs))
    >>> params = jax.vmap(model.init)(jax.random.split(jax.random.key(0), 5))
    >>> jax.vmap(model.apply, in_axes=(0, None))(params, jnp.ones((2, 4))).shape
    (5, 2, 3)
  """
  if not callable(make):
    raise ValueError(f"make must be a callable rngs -> nnx.Module; got {make!r}.")
  abstract = nnx.eval_shape(lambda: make(nnx.Rngs(0)))
  graphdef, abstract_params, rest = nnx.split(abstract, nnx.Param, ...)
  other = jax.tree_util.tree_leaves_with_path(nnx.to_pure_dict(rest))
  if other:
    raise ValueError(
      "make must build a module whose only state is nnx.Param; got other state at "
      f"{[jax.tree_util.keystr(path) for path, _ in other]}."
    )

  def init(key: jax.Array) -> Params:
    return nnx.to_pure_dict(nnx.state(make(nnx.Rngs(key)), nnx.Param))

  def apply(params: Params, x: jax.Array) -> jax.Array:
    state = jax.tree.map(lambda leaf: leaf, abstract_params)  # a fresh copy to fill in
    nnx.replace_by_pure_dict(state, params)
    return nnx.merge(graphdef, state)(x)

  return Functional(init=init, apply=apply)
