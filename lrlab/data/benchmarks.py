"""Small real benchmarks, never downloaded: scikit-learn's digits and locally generated MNIST-1D."""

import contextlib
import functools
import importlib.metadata
import os
import pathlib
import random
import tempfile
import zipfile

import numpy as np

from lrlab import _checks
from lrlab.data.dataset import Dataset
from lrlab.data.splits import from_arrays

DIGITS_IMAGE_SHAPE = (8, 8)
MNIST1D_LENGTH = 40
_MNIST1D_CACHE_FORMAT = 1  # bump when the cached arrays change meaning


@functools.lru_cache(maxsize=1)
def _load_digits() -> tuple[np.ndarray, np.ndarray]:
  from sklearn.datasets import load_digits

  data = load_digits()
  x, y = data.data.astype(np.float32), data.target.astype(np.int32)
  x.setflags(write=False)
  y.setflags(write=False)
  return x, y


def digits(
  *,
  standardize: bool = True,
  val_fraction: float = 0.1,
  test_fraction: float = 0.2,
  seed: int = 0,
) -> Dataset:
  """The 1,797 8x8 digit images bundled with scikit-learn, split deterministically.

  Images are flattened to 64 features with raw values 0..16 (ink counts); ten
  classes. A random ``test_fraction`` of all images (359 by default) is the
  test split, a random ``val_fraction`` of the rest (144) the validation split
  and the remaining 1,294 the training split; the split depends only on
  ``seed``. The data ship with scikit-learn, so nothing is downloaded.

  Args:
    standardize: z-score each pixel with training-split statistics (blank
      pixels are only centred); False keeps the raw 0..16 values.
    val_fraction: fraction of the non-test images used for validation, in (0, 1).
    test_fraction: fraction of all images used for testing, in (0, 1).
    seed: seed of the split.

  Returns:
    A :class:`Dataset` with ``x`` float32 ``(n, 64)``, ``y`` int32 labels and
    ``num_classes=10``; reshape ``x`` to ``(n, 8, 8)`` for images.

  Example:
    >>> lrlab.data.digits().sizes
    {'train': 1294, 'val': 144, 'test': 359}

  References:
    Alpaydin & Kaynak, "Optical Recognition of Handwritten Digits", UCI Machine
    Learning Repository, 1998. https://doi.org/10.24432/C50P49
  """
  x, y = _load_digits()
  return from_arrays(
    x,
    y,
    val_fraction=val_fraction,
    test_fraction=test_fraction,
    num_classes=10,
    standardize=standardize,
    seed=seed,
    name="digits",
  )


# --- MNIST-1D -----------------------------------------------------------------------------------


def default_cache_dir() -> pathlib.Path:
  """``$LRLAB_CACHE_DIR`` if set, else ``~/.cache/lrlab``."""
  return pathlib.Path(os.environ.get("LRLAB_CACHE_DIR", pathlib.Path.home() / ".cache" / "lrlab"))


def _make(num_samples: int, seed: int) -> dict[str, np.ndarray]:
  """Run the reference generator; it reseeds NumPy's and Python's global RNGs, so restore them."""
  from mnist1d.data import get_dataset_args, make_dataset

  args = get_dataset_args()
  args.num_samples = num_samples
  args.seed = seed
  # The generator seeds and draws from the global RNGs; leave them as they were.
  numpy_state, python_state = np.random.get_state(), random.getstate()  # noqa: NPY002
  try:
    data = make_dataset(args)  # pure computation; get_dataset() would download
  finally:
    np.random.set_state(numpy_state)  # noqa: NPY002
    random.setstate(python_state)
  return {
    "x": data["x"].astype(np.float32),
    "y": data["y"].astype(np.int32),
    "x_test": data["x_test"].astype(np.float32),
    "y_test": data["y_test"].astype(np.int32),
  }


def _save_atomically(path: pathlib.Path, arrays: dict[str, np.ndarray]) -> None:
  path.parent.mkdir(parents=True, exist_ok=True)
  with tempfile.NamedTemporaryFile(dir=path.parent, suffix=".tmp", delete=False) as f:
    np.savez(f, **arrays)
  os.replace(f.name, path)


@functools.lru_cache(maxsize=8)
def _generate(num_samples: int, seed: int, cache_dir: str | None) -> dict[str, np.ndarray]:
  """Arrays of one MNIST-1D draw, from memory, then disk, then the generator."""
  path = None
  if cache_dir is not None:
    version = importlib.metadata.version("mnist1d")
    path = (
      pathlib.Path(cache_dir)
      / f"mnist1d-{version}-f{_MNIST1D_CACHE_FORMAT}-n{num_samples}-s{seed}.npz"
    )
  arrays = None
  if path is not None and path.exists():
    try:
      with np.load(path) as stored:
        arrays = {key: stored[key] for key in ("x", "y", "x_test", "y_test")}
    except (OSError, KeyError, ValueError, EOFError, zipfile.BadZipFile):
      arrays = None  # unreadable cache: regenerate and overwrite
  if arrays is None:
    arrays = _make(num_samples, seed)
    if path is not None:
      with contextlib.suppress(OSError):  # a read-only home still works, only slower
        _save_atomically(path, arrays)
  for array in arrays.values():
    array.setflags(write=False)
  return arrays


def mnist1d(
  num_samples: int = 5000,
  *,
  standardize: bool = True,
  val_fraction: float = 0.1,
  seed: int = 42,
  disk_cache: bool = True,
  cache_dir: str | os.PathLike | None = None,
) -> Dataset:
  """MNIST-1D: ten classes of 40-sample 1-D signals, generated locally.

  Calls the reference generator ``mnist1d.data.make_dataset`` with the default
  ``get_dataset_args()`` except ``num_samples`` and ``seed``; it never touches
  the network. ``num_samples // 10`` signals per class are shuffled and split
  80/20 into train and test as in the reference (4,000 / 1,000 by default); a
  random ``val_fraction`` of the training part (400) becomes the validation
  split, leaving 3,600 for training. The generator already centres and scales
  the whole set by one scalar; ``standardize`` additionally z-scores each time
  step with training-split statistics.

  Generation takes about a second for 5,000 signals; results are cached in
  memory and, with ``disk_cache``, as ``.npz`` files (written atomically) under
  ``cache_dir``, default :func:`default_cache_dir`.

  Args:
    num_samples: total number of signals before the train/test split, >= 20.
    standardize: z-score each time step with training-split statistics.
    val_fraction: fraction of the training signals held out, in (0, 1).
    seed: seed of the generator (42 is the reference dataset's) and of the
      validation split, an integer in ``[0, 2**32)``.
    disk_cache: read and write the on-disk cache.
    cache_dir: directory of the on-disk cache.

  Returns:
    A :class:`Dataset` with ``x`` float32 ``(n, 40)``, int32 labels and
    ``num_classes=10``.

  Example:
    >>> lrlab.data.mnist1d().sizes
    {'train': 3600, 'val': 400, 'test': 1000}

  References:
    Greydanus, "Scaling down Deep Learning", 2020.
    https://arxiv.org/abs/2011.14439
  """
  num_samples = _checks.count("num_samples", num_samples, 20)
  seed = _checks.count("seed", seed, 0)  # None would fail in int(), naming nothing
  if seed >= 2**32:  # the generator seeds NumPy's global RNG, which takes 32 bits
    raise ValueError(f"seed must be an integer in [0, 2**32); got {seed!r}.")
  _checks.flag("standardize", standardize)  # checked again by from_arrays, after generating
  if val_fraction is None:  # _checks lets None through; from_arrays refuses it after generating
    raise ValueError("val_fraction must be in (0, 1); got None.")
  _checks.check_interval("val_fraction", val_fraction, 0, 1, closed_low=False, closed_high=False)
  disk_cache = _checks.flag("disk_cache", disk_cache)  # "no" would write the cache
  directory = None
  if disk_cache:
    directory = str(pathlib.Path(cache_dir if cache_dir is not None else default_cache_dir()))
  arrays = _generate(int(num_samples), int(seed), directory)
  return from_arrays(
    arrays["x"],
    arrays["y"],
    x_test=arrays["x_test"],
    y_test=arrays["y_test"],
    val_fraction=val_fraction,
    num_classes=10,
    standardize=standardize,
    seed=seed,
    name="mnist1d",
  )
