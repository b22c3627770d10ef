"""Building a :class:`Dataset` from arrays with deterministic train / val / test splits."""

import numpy as np

from lrlab import _checks
from lrlab.data.dataset import Dataset, check_dataset, check_finite, one_array
from lrlab.data.preprocessing import standardize as standardize_dataset


def _split_off(
  x: np.ndarray, y: np.ndarray, fraction: float, rng: np.random.Generator, name: str
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
  """Shuffle ``(x, y)`` and cut off ``round(fraction * n)`` examples: ``(x_a, y_a, x_b, y_b)``."""
  n = x.shape[0]
  count = round(fraction * n)
  if not 0 < count < n:
    raise ValueError(
      f"{name}={fraction!r} of {n} examples leaves an empty split; "
      f"choose {name} in ({0.5 / n:.6g}, {1 - 0.5 / n:.6g})."
    )
  order = rng.permutation(n)
  keep, cut = order[: n - count], order[n - count :]
  return x[keep], y[keep], x[cut], y[cut]


def from_arrays(
  x: np.ndarray,
  y: np.ndarray,
  *,
  x_test: np.ndarray | None = None,
  y_test: np.ndarray | None = None,
  val_fraction: float = 0.1,
  test_fraction: float = 0.2,
  num_classes: int | None = None,
  standardize: bool = False,
  seed: int = 0,
  name: str = "dataset",
  x_dtype: str = "float32",
) -> Dataset:
  """Build a :class:`Dataset` from arrays, splitting deterministically by ``seed``.

  Without ``x_test``, a random ``test_fraction`` of ``(x, y)`` becomes the test
  split; then a random ``val_fraction`` of what remains becomes the validation
  split and the rest the training split. The same ``seed`` always gives the
  same split. With ``standardize`` the features are z-scored with statistics
  fitted on the training split only (see :func:`lrlab.data.standardize`).

  Args:
    x: features, ``(n, *feature_shape)``; cast to ``x_dtype``.
    y: integer labels in ``[0, num_classes)`` (classification) or float targets.
    x_test, y_test: a fixed test split; if given, ``test_fraction`` is unused.
    val_fraction: fraction of the non-test examples held out for validation, in (0, 1).
    test_fraction: fraction of all examples held out for testing, in (0, 1).
    num_classes: number of classes; ``None`` makes a regression dataset.
    standardize: z-score features with training-split statistics.
    seed: seed of the shuffles.
    name: label stored in the dataset.
    x_dtype: ``"float32"`` (features), or ``"int32"`` for integer ids such as tokens for an
      ``nnx.Embed`` (every value must be an integer in int32's range; no ``standardize``).

  Returns:
    A validated :class:`Dataset` (no NaN or infinity anywhere).

  Raises:
    ValueError: on NaN/inf in the data, mismatched lengths, labels out of range
      or fractions that leave a split empty.

  Example:
    >>> x, y = np.random.default_rng(0).normal(size=(100, 3)), np.arange(100) % 2
    >>> lrlab.data.from_arrays(x, y, num_classes=2).sizes
    {'train': 72, 'val': 8, 'test': 20}
  """
  # _checks lets None through (an unset option): here it would fail late with a TypeError, or
  # for the seed silently draw a new split on every call.
  if val_fraction is None or (x_test is None and test_fraction is None):
    name = "val_fraction" if val_fraction is None else "test_fraction"
    raise ValueError(f"{name} must be in (0, 1); got None.")
  seed = _checks.count("seed", seed, 0)  # None would draw another split on every call
  standardize = _checks.flag("standardize", standardize)  # "no" would standardize
  _checks.check_interval("val_fraction", val_fraction, 0, 1, closed_low=False, closed_high=False)
  if num_classes is not None:
    num_classes = _checks.count("num_classes", num_classes)
  _checks.check_choice("x_dtype", x_dtype, ("float32", "int32"))
  if x_dtype == "int32" and standardize:
    raise ValueError("standardize must be False for x_dtype='int32' (ids are not z-scored).")
  if (x_test is None) != (y_test is None):
    raise ValueError("x_test and y_test must be given together; got only one of them.")
  arrays = (
    {"x": x, "y": y} if x_test is None else {"x": x, "y": y, "x_test": x_test, "y_test": y_test}
  )
  for key, value in arrays.items():
    arrays[key] = value = one_array(key, value)
    check_finite(key, value)
    if (
      key.startswith("y") and num_classes is not None and not np.issubdtype(value.dtype, np.integer)
    ):
      raise ValueError(f"{key} must hold integer class labels; got dtype {value.dtype}.")
    if key.startswith("x") and x_dtype == "int32" and value.size:
      info = np.iinfo(np.int32)
      if np.any(value != np.round(value)) or value.min() < info.min or value.max() > info.max:
        raise ValueError(
          f"{key} must hold integers in int32's range for x_dtype='int32'; got values in "
          f"[{value.min()}, {value.max()}] of dtype {value.dtype}."
        )
  x, y = arrays["x"], arrays["y"]
  if x.shape[:1] != y.shape[:1]:
    raise ValueError(f"x and y must have the same length; got shapes {x.shape} and {y.shape}.")
  least = 2 if x_test is not None else 3  # an example for each split x is cut into
  if x.shape[0] < least:
    splits = "train and val" if x_test is not None else "train, val and test"
    raise ValueError(f"x must hold at least {least} examples ({splits}); got {x.shape[0]}.")
  for key in ("y", "y_test") if num_classes is not None else ():
    # Checked before the cast to int32, which would wrap a label such as 2**32 + 1 to 1.
    labels = arrays.get(key)
    if labels is not None and labels.size and (labels.min() < 0 or labels.max() >= num_classes):
      raise ValueError(
        f"{key} labels must lie in [0, {int(num_classes)}); "
        f"got values in [{labels.min()}, {labels.max()}]."
      )
  rng = np.random.default_rng(seed)
  if x_test is None:
    _checks.check_interval(
      "test_fraction", test_fraction, 0, 1, closed_low=False, closed_high=False
    )
    x, y, x_test, y_test = _split_off(x, y, test_fraction, rng, "test_fraction")
  else:
    x_test, y_test = arrays["x_test"], arrays["y_test"]
  x_train, y_train, x_val, y_val = _split_off(x, y, val_fraction, rng, "val_fraction")
  y_dtype = np.int32 if num_classes is not None else np.float32
  dataset = Dataset(
    x_train=x_train.astype(x_dtype),
    y_train=y_train.astype(y_dtype),
    x_val=x_val.astype(x_dtype),
    y_val=y_val.astype(y_dtype),
    x_test=x_test.astype(x_dtype),
    y_test=y_test.astype(y_dtype),
    num_classes=None if num_classes is None else int(num_classes),
    name=name,
  )
  check_dataset(dataset)
  return standardize_dataset(dataset) if standardize else dataset
