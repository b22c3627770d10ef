"""Per-parameter learning-rate multipliers: muP's per-layer rates and discriminative rates."""

from typing import Any

import jax
import jax.numpy as jnp
import optax

from lrlab import _checks

Multipliers = Any  # a pytree of scalars or arrays: the parameters' structure or a prefix of it


class _Covered:
  """A multiplier leaf and the subtree it covers (a plain object, so a pytree leaf)."""

  def __init__(self, multiplier: Any, subtree: Any):
    self.multiplier, self.subtree = multiplier, subtree


def _broadcast_over(multipliers: Multipliers, tree: Any) -> list[tuple[Any, Any, Any]]:
  """``(path, multiplier, subtree)`` for each multiplier leaf and the part of ``tree`` it covers.

  Raises a one-line ``ValueError`` where ``multipliers`` is not a prefix of ``tree``.
  """
  try:
    pairs = jax.tree.map(_Covered, multipliers, tree)
  except ValueError:
    raise ValueError(
      "multipliers must have the parameters' tree structure or a prefix of it; got "
      f"{jax.tree.structure(multipliers)} for parameters {jax.tree.structure(tree)}."
    ) from None
  flat, _ = jax.tree_util.tree_flatten_with_path(pairs)
  return [(jax.tree_util.keystr(path), c.multiplier, c.subtree) for path, c in flat]


def _check(multipliers: Multipliers, tree: Any) -> None:
  """Structure, broadcast shapes and (for concrete values) finite, >= 0 multipliers."""
  for path, m, sub in _broadcast_over(multipliers, tree):
    shape = jnp.shape(m)
    for leaf in jax.tree.leaves(sub):
      try:
        fits = jnp.broadcast_shapes(shape, jnp.shape(leaf)) == jnp.shape(leaf)
      except ValueError:
        fits = False
      if not fits:
        raise ValueError(
          f"multipliers{path} must be a scalar or an array broadcastable to the parameter's "
          f"shape {jnp.shape(leaf)}; got shape {shape}."
        )
    _checks.check_nonnegative(f"multipliers{path}", m)


def scale_by_multipliers(multipliers: Multipliers) -> optax.GradientTransformation:
  r"""Multiply each update by its own factor: per-layer (per-parameter) learning rates.

  For every parameter tensor :math:`p` with multiplier :math:`c_p`,

  .. math::

    u_p \leftarrow c_p \, u_p,

  so in ``optax.chain(rule(learning_rate), scale_by_multipliers(c))`` tensor
  :math:`p` moves at rate :math:`c_p \eta`. ``multipliers`` is a pytree with
  the parameters' structure or a prefix of it (a leaf then covers the whole
  subtree: ``{"dense_0": 0.1, "head": 1.0}`` for a model whose layers hold
  ``{"weight", "bias"}``); each leaf is a scalar or an array broadcastable to
  the parameters it covers (a per-row factor, say). Leaves may be traced
  arrays, so a sweep can ``vmap`` over a batch of multiplier trees. Stateless.
  Optax has no such transform (``optax.multi_transform`` assigns whole
  transforms to labelled groups, not factors); in PyTorch it is a parameter
  group per rate.

  Uses: muP's per-layer rates, ``task.lr_multipliers("adam")`` of a task built
  with ``parametrization="mup"`` (Yang et al. 2022); discriminative fine-tuning,
  e.g. ``{"layer_l": 2.6 ** -(L - l)}`` (Howard and Ruder 2018).

  Weight decay: after ``adamw(lr, weight_decay=wd)`` the factor scales the decay term too,
  :math:`c_p \eta \lambda p`, so under muP a hidden matrix decays ``m`` times slower at ``m``
  times the base width. The ``mup`` package's ``MuAdamW`` keeps :math:`\eta \lambda` the
  same at every width instead (it multiplies ``weight_decay`` by ``m``, unless
  ``decoupled_wd=True``); for that, decay after the factors: ``optax.chain(scale_by_adam(),
  scale_by_multipliers(c), add_decayed_weights(wd), scale_by_learning_rate(lr))``.

  Args:
    multipliers: the pytree of factors :math:`c_p`, each finite and >= 0
      (checked where concrete).

  Returns:
    A stateless ``optax.GradientTransformation``. ``init`` and ``update`` raise a
    one-line ``ValueError`` for a tree that is not a prefix of the parameters' or
    a leaf that does not broadcast to its parameters, before any compute.

  Example:
    >>> import jax.numpy as jnp
    >>> from lrlab.transforms import scale_by_multipliers
    >>> params = {"hidden": {"w": jnp.ones(2), "b": jnp.ones(1)}, "head": jnp.ones(2)}
    >>> tx = scale_by_multipliers({"hidden": 0.5, "head": jnp.array([1.0, 3.0])})
    >>> updates, _ = tx.update(params, tx.init(params))
    >>> print(updates["hidden"]["w"], updates["head"])
    [0.5 0.5] [1. 3.]

  References:
    Yang et al., `Tensor Programs V: Tuning Large Neural Networks via Zero-Shot
    Hyperparameter Transfer <https://arxiv.org/abs/2203.03466>`_, 2022.

    Howard and Ruder, `Universal Language Model Fine-tuning for Text
    Classification <https://arxiv.org/abs/1801.06146>`_, 2018.
  """
  for path, m in jax.tree_util.tree_flatten_with_path(multipliers)[0]:
    _checks.check_nonnegative(f"multipliers{jax.tree_util.keystr(path)}", m)

  def init_fn(params):
    _check(multipliers, params)
    return optax.EmptyState()

  def update_fn(updates, state, params=None):
    del params
    _check(multipliers, updates)

    def scale(m, sub):
      return jax.tree.map(lambda u: (u * m).astype(u.dtype), sub)

    return jax.tree.map(scale, multipliers, updates), state

  return optax.GradientTransformation(init_fn, update_fn)
