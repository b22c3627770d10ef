"""Feature scaling fitted on the training split only."""

import dataclasses

import numpy as np

from lrlab import _checks
from lrlab.data.dataset import Dataset, check_dataset


def standardize(dataset: Dataset, *, per_feature: bool = True, eps: float = 1e-6) -> Dataset:
  """Z-score the features of every split with the training split's mean and std.

  ``x' = (x - mean_train) / std_train`` for ``x`` in train, val and test. The
  statistics come from ``x_train`` alone, so no information leaks from the
  held-out splits: afterwards the training features have mean 0 and std 1 but
  the validation and test features do not, exactly. A feature whose training
  std is below ``eps`` (e.g. an always-blank pixel) is only centred.

  Scaling changes the curvature of the loss and with it the range of usable
  learning rates, so experiments compare standardized and raw data; the
  dataset constructors take ``standardize=False`` for the raw version.

  Args:
    dataset: the dataset to rescale; targets ``y`` are left alone.
    per_feature: statistics per feature (each pixel or time step separately);
      if False a single mean and std over all training features.
    eps: std below which a feature is only centred, >= 0.

  Returns:
    A new :class:`Dataset` with float32 features.

  Raises:
    ValueError: if any split holds NaN or infinity, if the features are integer ids
      (``x_dtype='int32'``; ids are not z-scored) or if ``dataset`` is a
      :class:`lrlab.data.StreamedDataset` (standardize its arrays before wrapping them).

  Example:
    >>> ds = lrlab.data.standardize(lrlab.data.digits(standardize=False))
    >>> round(float(abs(ds.x_train.mean(0)).max()), 6)
    0.0
  """
  _checks.check_nonnegative("eps", eps)
  per_feature = _checks.flag("per_feature", per_feature)
  if not isinstance(dataset, Dataset):
    raise ValueError(
      f"dataset must be an lrlab.data.Dataset of resident arrays; got {type(dataset).__name__} "
      "(standardize a streamed dataset's arrays before wrapping them in sources)."
    )
  check_dataset(dataset)
  for split in ("train", "val", "test"):
    x = dataset.split(split)[0]
    if not np.issubdtype(x.dtype, np.floating):  # z-scoring ids would silently make them floats
      raise ValueError(
        f"x_{split} must hold floating-point features to standardize; got dtype {x.dtype} "
        "(integer ids are not z-scored; cast features to float32 first)."
      )
  train = dataset.x_train.astype(np.float64)
  axis = 0 if per_feature else None
  mean = train.mean(axis=axis)
  std = train.std(axis=axis)
  scale = np.where(std > eps, std, 1.0)

  def apply(x: np.ndarray) -> np.ndarray:
    return ((x.astype(np.float64) - mean) / scale).astype(np.float32)

  return dataclasses.replace(
    dataset,
    x_train=apply(dataset.x_train),
    x_val=apply(dataset.x_val),
    x_test=apply(dataset.x_test),
  )
