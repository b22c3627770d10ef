"""The ``Dataset`` container: train / validation / test arrays plus static metadata."""

import dataclasses
from collections.abc import Mapping
from typing import Any, Literal

import jax
import numpy as np

from lrlab import _checks

Split = Literal["train", "val", "test"]
SPLITS: tuple[str, ...] = ("train", "val", "test")


@dataclasses.dataclass(frozen=True, eq=False)
class Dataset:
  """Three splits of ``(x, y)`` arrays, a pytree whose metadata is static.

  Every split holds host NumPy arrays with the example axis first: ``x`` is
  float32 (or int32 ids, for an embedding) of shape ``(n, *feature_shape)`` and
  ``y`` is int32 ``(n,)`` class labels for classification (``num_classes`` set)
  or float32 ``(n, ...)`` targets for regression (``num_classes`` is ``None``).
  Images and signals are stored flat, ``(n, features)``; convolutional models
  reshape them.

  The class is registered as a pytree: the six arrays are its leaves and
  ``name`` and ``num_classes`` are static, so a ``Dataset`` can pass through
  ``jax.jit`` or ``jax.device_put``. It is immutable; derive variants with
  ``dataclasses.replace`` or :func:`lrlab.data.standardize`.

  Attributes:
    x_train, y_train: the examples a model is trained on.
    x_val, y_val: held-out examples for choosing hyperparameters.
    x_test, y_test: held-out examples for the final report.
    num_classes: number of classes, or ``None`` for regression.
    name: a short label such as ``"digits"``.

  Example:
    >>> ds = lrlab.data.digits()
    >>> x, y = ds.split("val")
    >>> ds.num_train, x.shape[1], ds.num_classes
    (1294, 64, 10)
  """

  x_train: np.ndarray
  y_train: np.ndarray
  x_val: np.ndarray
  y_val: np.ndarray
  x_test: np.ndarray
  y_test: np.ndarray
  num_classes: int | None = None
  name: str = "dataset"

  streamed = False  # the splits are resident arrays (see lrlab.data.StreamedDataset)

  def split(self, split: Split) -> tuple[np.ndarray, np.ndarray]:
    """The ``(x, y)`` arrays of ``split``, one of ``'train'``, ``'val'``, ``'test'``."""
    _checks.check_choice("split", split, SPLITS)
    return getattr(self, f"x_{split}"), getattr(self, f"y_{split}")

  @property
  def num_train(self) -> int:
    """Number of training examples."""
    return int(self.x_train.shape[0])

  @property
  def sizes(self) -> dict[str, int]:
    """Number of examples per split, e.g. ``{'train': 1294, 'val': 144, 'test': 359}``."""
    return {s: int(self.split(s)[0].shape[0]) for s in SPLITS}


jax.tree_util.register_dataclass(
  Dataset,
  data_fields=["x_train", "y_train", "x_val", "y_val", "x_test", "y_test"],
  meta_fields=["num_classes", "name"],
)


def check_finite(name: str, array: np.ndarray) -> None:
  """Raise ``ValueError`` if ``array`` holds NaN or infinity, naming where."""
  array = np.asarray(array)
  if np.issubdtype(array.dtype, np.inexact) and not np.all(np.isfinite(array)):
    bad = np.argwhere(~np.isfinite(array))
    raise ValueError(
      f"{name} must be finite; found {len(bad)} NaN/inf value(s), the first at index "
      f"{tuple(int(i) for i in bad[0])}."
    )


def one_array(name: str, value: Any) -> np.ndarray:
  """``value`` as one NumPy array; a one-line error for a dict, tuple or list of arrays (a
  model with several inputs) or anything else that is not numbers."""
  parts = value if isinstance(value, tuple | list) else ()
  if isinstance(value, Mapping) or len({getattr(part, "shape", None) for part in parts}) > 1:
    raise ValueError(
      f"{name} must be one array with the examples on its first axis; got a "
      f"{type(value).__name__} of {len(value)} arrays. lrlab hands the model one array: pack "
      "several inputs into one (np.concatenate along a feature axis) and split it in __call__."
    )
  array = np.asarray(value)
  if not (np.issubdtype(array.dtype, np.number) or array.dtype == np.bool_):
    raise ValueError(f"{name} must be a numeric array; got {type(value).__name__} {array.dtype}.")
  return array


def check_dataset(dataset: Dataset) -> None:
  """Validate types (NumPy or JAX arrays), shapes, lengths and finiteness of every split of
  ``dataset``."""
  for split in SPLITS:
    x, y = dataset.split(split)
    for what, array in ((f"x_{split}", x), (f"y_{split}", y)):
      if not isinstance(array, np.ndarray | jax.Array):  # a list has no shape to check
        raise ValueError(
          f"{what} must be a NumPy array; got {type(array).__name__} (pass np.asarray of it)."
        )
    if x.ndim < 1 or y.ndim < 1 or x.shape[0] != y.shape[0]:
      raise ValueError(
        f"x_{split} and y_{split} must have the same number of examples (first axis); "
        f"got shapes {x.shape} and {y.shape}."
      )
    if x.shape[0] == 0:
      raise ValueError(f"split {split!r} must hold at least one example; got 0.")
    if x.shape[1:] != dataset.x_train.shape[1:]:
      raise ValueError(
        f"x_{split} must have the feature shape of x_train {dataset.x_train.shape[1:]}; "
        f"got {x.shape[1:]}."
      )
    if y.shape[1:] != dataset.y_train.shape[1:]:  # (n, 1) labels would broadcast, or crash late
      raise ValueError(
        f"y_{split} must have the target shape of y_train {dataset.y_train.shape[1:]}; "
        f"got {y.shape[1:]}."
      )
    check_finite(f"x_{split}", x)
    check_finite(f"y_{split}", y)
    if dataset.num_classes is not None:
      if not np.issubdtype(y.dtype, np.integer):
        raise ValueError(f"y_{split} must hold integer class labels; got dtype {y.dtype}.")
      if y.size and (y.min() < 0 or y.max() >= dataset.num_classes):
        raise ValueError(
          f"y_{split} labels must lie in [0, {dataset.num_classes}); "
          f"got values in [{y.min()}, {y.max()}]."
        )
