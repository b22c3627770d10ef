"""Turn a Flax NNX module into a pair of pure functions ``init`` and ``apply``.

The one idea: split the module once, abstractly, into its graph definition and
three kinds of state. Parameters (``nnx.Param``) are what the optimizer trains;
random streams (``nnx.RngState``, e.g. Dropout's) are not carried at all but
refilled from the caller's key on every call; everything else (BatchNorm's
``nnx.BatchStat``, a user's own ``nnx.Variable``) is the *model state*, carried
from call to call as a plain dict of arrays. The module's own ``train()`` and
``eval()`` modes give the two graph definitions ``apply`` chooses between.
"""

import functools
import inspect
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

Params = Any  # a nested dict of arrays
ModelState = Any  # a nested dict of arrays, often empty


class Functional(NamedTuple):
  """A model as pure functions on plain pytrees: the contract for models written without Flax.

  Attributes:
    init: ``init(key) -> (params, model_state)``: two pytrees of arrays (plain
      dicts for NNX modules; ``model_state`` is ``{}`` for a model whose only
      state is its parameters).
    apply: ``apply(params, model_state, x, *, train, key) -> (outputs,
      model_state)``, pure. ``train=True`` is the training mode (BatchNorm uses
      and updates batch statistics, Dropout drops with randomness from ``key``);
      ``train=False`` the evaluation mode (running statistics, no dropout,
      ``key`` unused and may be ``None``). ``x`` may have any leading batch axes.

  Example (a model without Flax: a linear map with a call counter as its state)::

    init = lambda key: ({"w": jax.random.normal(key, (4, 3))}, {"calls": jnp.int32(0)})

    def apply(params, state, x, *, train, key=None):
      new_state = {"calls": state["calls"] + 1} if train else state
      return x @ params["w"], new_state

    model = lrlab.models.Functional(init, apply)
  """

  init: Callable[[jax.Array], tuple[Params, ModelState]]
  apply: Callable[..., tuple[jax.Array, ModelState]]


def _keystr(path: tuple) -> str:
  return "/".join(str(getattr(p, "key", p)) for p in path) or "<root>"


def _check_carriable(kind: str, state: nnx.State, *, floating: bool) -> None:
  """Raise unless every leaf of ``state`` is an array lrlab can carry through jit/vmap/scan."""
  for path, leaf in jax.tree_util.tree_leaves_with_path(nnx.to_pure_dict(state)):
    dtype = getattr(leaf, "dtype", None)
    if dtype is None or not hasattr(leaf, "shape"):
      raise ValueError(
        f"make must build a module whose {kind} are arrays: lrlab carries them through "
        f"jit, vmap and scan; got a {type(leaf).__name__} at {_keystr(path)}."
      )
    numeric = jnp.issubdtype(dtype, jnp.floating if floating else np.number) or (
      not floating and dtype == jnp.bool_
    )
    if not numeric:
      allowed = "floating-point (the optimizer trains them)" if floating else "numeric"
      raise ValueError(
        f"make must build a module whose {kind} are {allowed} arrays; got dtype {dtype} at "
        f"{_keystr(path)}."
      )


def _signature(make: Callable) -> tuple[inspect.Signature, tuple, dict] | None:
  """``make``'s signature, read through ``functools.partial`` and classes (NNX's metaclass hides
  the constructor's), with the arguments already bound to it (the partials', a class's
  ``self``); ``None`` where it cannot be read."""
  func, args, keywords = make, (), {}
  while isinstance(func, functools.partial):
    func, args, keywords = func.func, (*func.args, *args), {**func.keywords, **keywords}
  if isinstance(func, type):
    func, args = func.__init__, (None, *args)
  try:
    return inspect.signature(func), args, keywords
  except (TypeError, ValueError):
    return None


def _rngs_keyword_only(make: Callable) -> bool:
  """Whether ``make`` takes ``rngs`` as a keyword-only argument (NNX's own convention,
  ``def __init__(self, ..., *, rngs)``)."""
  read = _signature(make)
  parameter = read[0].parameters.get("rngs") if read else None
  return parameter is not None and parameter.kind is inspect.Parameter.KEYWORD_ONLY


def _check_takes_rngs(make: Callable, keyword_only: bool) -> None:
  """A one-line error unless ``make`` can be called as lrlab calls it, ``make(rngs)`` (or
  ``make(rngs=rngs)``): else the call raises a ``TypeError`` that names no argument."""
  read = _signature(make)
  if read is None:
    return
  signature, args, keywords = read
  call = ((), {"rngs": None}) if keyword_only else ((None,), {})
  try:
    signature.bind(*args, *call[0], **{**keywords, **call[1]})
  except TypeError as error:
    raise ValueError(
      f"make must take the random streams, as make(rngs) or make(rngs=rngs); it takes "
      f"{signature} ({error})."
    ) from None


def functional(make: Callable[[nnx.Rngs], nnx.Module]) -> Functional:
  """Split an NNX module into graph definition and state, once, at the boundary.

  ``make(rngs)`` builds the module. Its structure is traced once abstractly
  (``nnx.eval_shape``, no arrays allocated) to get a ``GraphDef`` in the
  module's ``train()`` mode and one in its ``eval()`` mode. ``init(key)``
  builds a fresh module from ``nnx.Rngs(key)`` and returns its parameters and
  model state as pure dicts (``nnx.to_pure_dict``). ``apply`` rebuilds the
  module with ``nnx.merge`` and calls it:

  - ``train=True``: every random stream (``nnx.RngKey``) is refilled with
    ``fold_in(key, i)`` (``i`` its position in the state) and its counter reset,
    so the same key gives the same dropout masks, and the model state the call
    leaves behind (updated BatchNorm statistics) is returned;
  - ``train=False``: the evaluation mode; the model state is returned unchanged.

  Both are pure, so they work under ``jax.jit``, ``jax.vmap`` (over keys or
  parameters), ``jax.grad`` and ``lax.scan``.

  Args:
    make: ``rngs -> module``, called as ``make(rngs)``, or ``make(rngs=rngs)`` when its
      ``rngs`` is keyword-only (``functools.partial(lrlab.models.MLP, 4, (8,), 3)``).
      Its parameters must be floating-point arrays and its other state numeric arrays.

  Returns:
    A :class:`Functional` ``(init, apply)``.

  Raises:
    ValueError: if ``make`` is not callable, cannot be called as ``make(rngs)`` (read from
      its signature), or the module holds state lrlab cannot carry.

  Example:
    >>> model = lrlab.models.functional(lambda rngs: lrlab.models.MLP(4, (8,), 3, rngs=rngs))
    >>> params, state = jax.vmap(model.init)(jax.random.split(jax.random.key(0), 5))
    >>> outputs, _ = jax.vmap(lambda p: model.apply(p, {}, jnp.ones((2, 4)), train=False))(params)
    >>> outputs.shape
    (5, 2, 3)
  """
  if isinstance(make, nnx.Module):
    raise ValueError(
      f"make must be a callable rngs -> nnx.Module that builds a fresh module (its class, or "
      f"lambda rngs: {type(make).__name__}(..., rngs=rngs)); got a built "
      f"{type(make).__name__} instance."
    )
  if not callable(make):
    raise ValueError(f"make must be a callable rngs -> nnx.Module; got {make!r}.")
  keyword_only = _rngs_keyword_only(make)
  _check_takes_rngs(make, keyword_only)
  if keyword_only:
    build = make
    make = lambda rngs: build(rngs=rngs)
  try:
    abstract = nnx.eval_shape(lambda: make(nnx.Rngs(0)))
  except TypeError:
    # State that is not an array cannot even be traced: build the module once, concretely,
    # so the check below can say where it is.
    concrete = make(nnx.Rngs(0))
    _, params, _, state = nnx.split(concrete, nnx.Param, nnx.RngState, ...)
    _check_carriable("parameters (nnx.Param)", params, floating=True)
    _check_carriable("state beyond parameters and random streams", state, floating=False)
    raise
  if not isinstance(abstract, nnx.Module):
    raise ValueError(f"make must return an nnx.Module; got {type(abstract).__name__}.")
  graphdefs = {}
  for mode in (True, False):
    abstract.train() if mode else abstract.eval()
    graphdefs[mode], params_abs, rng_abs, state_abs = nnx.split(
      abstract, nnx.Param, nnx.RngState, ...
    )
  _check_carriable("parameters (nnx.Param)", params_abs, floating=True)
  _check_carriable("state beyond parameters and random streams", state_abs, floating=False)
  # (path, is a key) of every random stream's variables: RngKey or RngCount.
  rng_slots = [(path, isinstance(v, nnx.RngKey)) for path, v in nnx.to_flat_state(rng_abs)]

  def init(key: jax.Array) -> tuple[Params, ModelState]:
    _, params, _, state = nnx.split(make(nnx.Rngs(key)), nnx.Param, nnx.RngState, ...)
    return nnx.to_pure_dict(params), nnx.to_pure_dict(state)

  def fill(template: nnx.State, values: Any) -> nnx.State:
    state = jax.tree.map(lambda leaf: leaf, template)  # a fresh copy to fill in
    nnx.replace_by_pure_dict(state, values)
    return state

  def streams(key: jax.Array | None) -> dict:
    """The random streams' state: the ``i``-th key ``fold_in(key, i)``, every counter 0."""
    if key is None:
      key = jax.random.key(0)  # evaluation mode draws nothing; any key fills the slots
    pure: dict = {}
    for i, (path, is_key) in enumerate(rng_slots):
      node = pure
      for part in path[:-1]:
        node = node.setdefault(part, {})
      node[path[-1]] = jax.random.fold_in(key, i) if is_key else jnp.uint32(0)
    return pure

  def apply(
    params: Params,
    model_state: ModelState,
    x: jax.Array,
    *,
    train: bool,
    key: jax.Array | None = None,
  ) -> tuple[jax.Array, ModelState]:
    if train and rng_slots and key is None:
      raise ValueError("apply(train=True) needs a key: the module draws random numbers.")
    module = nnx.merge(
      graphdefs[bool(train)],
      fill(params_abs, params),
      fill(rng_abs, streams(key if train else None)),
      fill(state_abs, model_state),
    )
    outputs = module(x)
    if not train:
      return outputs, model_state
    return outputs, nnx.to_pure_dict(nnx.split(module, nnx.Param, nnx.RngState, ...)[3])

  return Functional(init=init, apply=apply)
