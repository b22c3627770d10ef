"""muP's per-tensor learning-rate multipliers, read off the parameters' shapes as ``mup`` does.

The ``mup`` package (Yang et al. 2022) decides how a tensor scales from its
shape in three models: the one used, a base model (where muP equals SP) and a
"delta" model of another width. A dimension whose size differs between base
and delta is infinite-like (it grows with width), the others are finite.
:func:`shape_lr_multipliers` applies the same rule to pytrees of shapes, for
models whose matrices are stored ``(..., fan_in, fan_out)`` as Flax's kernels
are (convolutions included: the leading axes are the taps).
"""

from collections.abc import Callable, Sequence
from typing import Any

import jax
import numpy as np

from lrlab import _checks

PARAMETRIZATIONS = ("sp", "mup")
OPTIMIZER_KINDS = ("adam", "sgd")


def base_widths(
  widths: tuple[int, ...], base_width: int | Sequence[int] | None, *, unit: str = "hidden layer"
) -> tuple[int, ...]:
  """The base width of each ``unit`` (layer, stage): ``widths``, one int for all, or one each.

  Raises a one-line ``ValueError`` for anything else (a count other than ``len(widths)``, < 1,
  a fraction, a bool, a string).
  """
  if base_width is None:
    return widths
  try:  # integers >= 1 (no fraction, bool or string: "64" would read as (6, 4))
    if isinstance(base_width, Sequence | np.ndarray) and not isinstance(base_width, str):
      base = _checks.counts("base_width", base_width)
    else:
      base = (_checks.count("base_width", base_width),) * len(widths)
  except ValueError:
    base = None
  if base is None or len(base) != len(widths):
    raise ValueError(
      f"base_width must be an int >= 1 or one int >= 1 per {unit} ({len(widths)}); "
      f"got {base_width!r}."
    )
  return base


def _multiplier(shape, base, delta, optimizer: str, path: str) -> float:
  """One tensor's multiplier: Table 8 by its count of infinite-like dimensions."""
  if not len(shape) == len(base) == len(delta):
    raise ValueError(f"parameter {path} has shapes {shape}, {base}, {delta} of different ranks.")
  infinite = [i for i in range(len(shape)) if base[i] != delta[i]]
  ratios = [shape[i] / base[i] for i in infinite]
  if not infinite:  # finite: no width in it
    return 1.0
  if len(infinite) == 1:  # vector-like: biases, norms' gains, embeddings, the readout
    return 1.0 if optimizer == "adam" else ratios[0]
  if len(infinite) == 2:  # matrix-like: hidden weights, (..., fan_in, fan_out)
    fan_in, fan_out = ratios
    return 1.0 / fan_in if optimizer == "adam" else fan_out / fan_in
  raise ValueError(f"parameter {path} has {len(infinite)} width-like dimensions; muP allows 2.")


def shape_lr_multipliers(shapes: Any, base_shapes: Any, delta_shapes: Any, optimizer: str) -> Any:
  r"""muP's per-tensor learning-rate multipliers from the shapes of three models.

  For each parameter tensor, the dimensions whose size differs between
  ``base_shapes`` and ``delta_shapes`` grow with width; :math:`r_i` is the
  size in ``shapes`` over the size in ``base_shapes`` of such a dimension.
  The multiplier :math:`c` of the rate :math:`\eta` tuned at the base width
  (Yang et al. 2022, Table 8; the ``mup`` package's ``MuAdam`` and ``MuSGD``):

  - no such dimension (finite): 1;
  - one (vector-like: biases, normalisation gains, input embeddings, the
    readout): ``"adam"`` 1, ``"sgd"`` :math:`r`;
  - two, stored ``(..., fan_in, fan_out)`` (matrix-like, hidden weights):
    ``"adam"`` :math:`1 / r_{\mathrm{in}}`, ``"sgd"`` :math:`r_{\mathrm{out}} / r_{\mathrm{in}}`.

  Args:
    shapes: a pytree of shape tuples (or arrays, or ``jax.ShapeDtypeStruct``) of the model.
    base_shapes: the same tree at the base width.
    delta_shapes: the same tree at another width, with every width-like size
      different from the base's.
    optimizer: ``"adam"`` (every rule that normalises the gradient entrywise)
      or ``"sgd"`` (with or without momentum).

  Returns:
    The tree of Python floats, for :func:`lrlab.transforms.scale_by_multipliers`.

  Example:
    >>> shapes = {"hidden": (400, 800), "bias": (800,), "head": (800, 10)}
    >>> base = {"hidden": (100, 200), "bias": (200,), "head": (200, 10)}
    >>> delta = {"hidden": (200, 400), "bias": (400,), "head": (400, 10)}
    >>> lrlab.models.mup.shape_lr_multipliers(shapes, base, delta, "sgd")
    {'bias': 4.0, 'head': 4.0, 'hidden': 1.0}
  """
  _checks.check_choice("optimizer", optimizer, OPTIMIZER_KINDS)
  as_shape = lambda a: tuple(int(n) for n in getattr(a, "shape", a))
  is_leaf = lambda a: isinstance(a, tuple) and all(isinstance(n, int) for n in a)
  trees = [jax.tree.map(as_shape, t, is_leaf=is_leaf) for t in (shapes, base_shapes, delta_shapes)]
  flat, treedef = jax.tree_util.tree_flatten_with_path(trees[0], is_leaf=is_leaf)
  others = [treedef.flatten_up_to(t) for t in trees[1:]]
  rates = [
    _multiplier(shape, base, delta, optimizer, jax.tree_util.keystr(path))
    for (path, shape), base, delta in zip(flat, *others, strict=True)
  ]
  return jax.tree.unflatten(treedef, rates)


def model_lr_multipliers(
  param_shapes: Callable[[Any], Any],
  width: Any,
  base_width: Any,
  optimizer: str,
  parametrization: str,
) -> Any:
  """:func:`shape_lr_multipliers` of a model built at ``width``, its ``base_width`` and twice that.

  Args:
    param_shapes: ``width -> pytree of parameter shapes`` (e.g. through ``jax.eval_shape``).
    width, base_width: the model's width(s) and the base's, as ``param_shapes`` takes them.
    optimizer: ``"adam"`` or ``"sgd"``.
    parametrization: ``"sp"`` (every multiplier 1) or ``"mup"``.
  """
  _checks.check_choice("parametrization", parametrization, PARAMETRIZATIONS)
  _checks.check_choice("optimizer", optimizer, OPTIMIZER_KINDS)
  shapes = param_shapes(width)
  if parametrization == "sp":
    return jax.tree.map(lambda _: 1.0, shapes)
  delta = jax.tree.map(lambda b: 2 * b, base_width)
  return shape_lr_multipliers(shapes, param_shapes(base_width), param_shapes(delta), optimizer)
