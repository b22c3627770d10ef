"""Data that stay on the host: random-access sources, streamed to the device a segment at a time.

The one idea: a split is anything with ``len(source)`` and ``source[indices] ->
(x, y)`` (NumPy arrays, the example axis first), so a NumPy memmap pair or an
HDF5 file fit through :class:`ArraySource`; a grain ``MapDataset``, which reads
one example at a time, fits through a few lines (see :class:`Source`). The
training core draws the same index order it draws for resident arrays and asks
the source for exactly those examples, so where the data live never changes the
minibatches; the results agree bit for bit given the same ``eval_batch_size``
(its default, ``None``, evaluates a resident split in one batch but a streamed
one in batches of 1024, which may round a split of more than 1024 examples
differently).
"""

import concurrent.futures
import dataclasses
import warnings
from collections.abc import Callable, Iterator
from typing import Any, Protocol, runtime_checkable

import numpy as np

from lrlab import _checks
from lrlab.data.dataset import SPLITS, Split, one_array


@runtime_checkable
class Source(Protocol):
  """A random-access split: ``len(source)`` examples, ``source[indices] -> (x, y)``.

  ``indices`` is a 1-D int array; the result is two NumPy arrays whose first
  axis has ``len(indices)`` entries, with the same trailing shapes and dtypes
  for every call. Requests come from a background thread (the next training window is read
  while the current one trains) as well as from the caller's (evaluation), so the splits'
  sources may be read at the same time: sources that share one object that is not
  thread-safe (an open file handle) need a lock around its reads. A source of single
  examples, such as a grain ``MapDataset``
  of ``(x, y)`` pairs (``ds[i]`` takes one integer), fits by stacking them::

    class GrainSource:
      def __init__(self, ds):
        self.ds = ds

      def __len__(self):
        return len(self.ds)

      def __getitem__(self, indices):
        xs, ys = zip(*(self.ds[int(i)] for i in indices))
        return np.stack(xs), np.stack(ys)
  """

  def __len__(self) -> int: ...

  def __getitem__(self, indices: np.ndarray) -> tuple[np.ndarray, np.ndarray]: ...


class ArraySource:
  """Arrays ``x, y`` (NumPy arrays, memmaps, or anything indexed as they are, such as h5py
  datasets) as a :class:`Source`.

  Each request is read in increasing index order, once per distinct index, and put back in
  the order asked for: h5py accepts only increasing indices, and a memmap reads ahead.

  Example:
    >>> source = lrlab.data.ArraySource(np.arange(10.0)[:, None], np.arange(10) % 2)
    >>> x, y = source[np.array([3, 1])]
    >>> len(source), x.ravel().tolist(), y.tolist()
    (10, [3.0, 1.0], [1, 1])
  """

  def __init__(self, x: np.ndarray, y: np.ndarray):
    if len(x) != len(y):
      raise ValueError(f"x and y must have the same length; got {len(x)} and {len(y)}.")
    self.x, self.y = x, y

  def __len__(self) -> int:
    return len(self.x)

  def __getitem__(self, indices: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    distinct, where = np.unique(np.asarray(indices), return_inverse=True)
    return np.asarray(self.x[distinct])[where], np.asarray(self.y[distinct])[where]

  def __repr__(self) -> str:
    return f"ArraySource(x={self.x.shape}, y={self.y.shape})"


@dataclasses.dataclass(frozen=True)
class Spec:
  """Trailing shapes and dtypes every batch of a streamed dataset must have."""

  x_shape: tuple[int, ...]
  x_dtype: np.dtype
  y_shape: tuple[int, ...]
  y_dtype: np.dtype


@dataclasses.dataclass(frozen=True, eq=False)
class StreamedDataset:
  """Three splits that stay on the host as :class:`Source` objects; see :func:`from_source`.

  Attributes:
    train, val, test: the sources.
    num_classes: number of classes, or ``None`` for regression.
    name: a short label.
    spec: the example's shapes and dtypes, read from the first training example.
  """

  train: Source
  val: Source
  test: Source
  num_classes: int | None
  name: str
  spec: Spec

  streamed = True

  def source(self, split: Split) -> Source:
    """The :class:`Source` of ``split``."""
    _checks.check_choice("split", split, SPLITS)
    return getattr(self, split)

  @property
  def num_train(self) -> int:
    """Number of training examples."""
    return len(self.train)

  @property
  def sizes(self) -> dict[str, int]:
    """Number of examples per split."""
    return {s: len(self.source(s)) for s in SPLITS}

  def gather(
    self, split: Split, indices: np.ndarray, *, where: str
  ) -> tuple[np.ndarray, np.ndarray]:
    """``source[indices]`` of ``split``, checked against :attr:`spec`.

    A batch of another shape or dtype, or labels outside ``[0, num_classes)``,
    raise ``ValueError`` naming the split and ``where`` (e.g. ``"step 120"``).
    Non-finite inputs or targets are passed on (the members that train on them
    diverge and are flagged at that step) with a ``RuntimeWarning`` naming ``where``.
    """
    x, y = _pair(split, self.source(split)[indices], where)
    x, y = np.asarray(x), np.asarray(y)
    got = Spec(x.shape[1:], x.dtype, y.shape[1:], y.dtype)
    if (
      min(x.ndim, y.ndim) < 1
      or len(x) != len(indices)
      or len(y) != len(indices)
      or got != self.spec
    ):
      raise ValueError(
        f"the {split} source must return (x, y) with {len(indices)} examples shaped like its "
        f"first training example ({_describe(self.spec)}); at {where} it returned "
        f"x {x.shape} {x.dtype}, y {y.shape} {y.dtype}."
      )
    if self.num_classes is not None and y.size and (y.min() < 0 or y.max() >= self.num_classes):
      raise ValueError(
        f"the {split} source's labels must lie in [0, {self.num_classes}); at {where} it "
        f"returned labels in [{y.min()}, {y.max()}]."
      )
    for name, array in (("inputs", x), ("targets", y)):  # regression targets may be NaN too
      if np.issubdtype(array.dtype, np.inexact) and not np.all(np.isfinite(array)):
        warnings.warn(
          f"the {split} source returned non-finite {name} at {where}; members training on "
          "them diverge there and are flagged.",
          RuntimeWarning,
          stacklevel=2,
        )
    return x, y


def _pair(split: str, result: Any, where: str) -> tuple[Any, Any]:
  """``result`` of ``source[indices]`` as ``(x, y)``; a one-line error for anything else (an
  array passed as a source, whose rows are not a pair)."""
  if not (isinstance(result, tuple | list) and len(result) == 2):
    sequence = isinstance(result, tuple | list)
    got = f"a {type(result).__name__} of {len(result)}" if sequence else type(result).__name__
    raise ValueError(
      f"the {split} source must return a pair (x, y) for source[indices]; at {where} it returned "
      f"{got} (wrap arrays as lrlab.data.ArraySource(x, y))."
    )
  return result


def _describe(spec: Spec) -> str:
  shape = lambda trailing: "(n" + "".join(f", {d}" for d in trailing) + ")"
  return f"x {shape(spec.x_shape)} {spec.x_dtype}, y {shape(spec.y_shape)} {spec.y_dtype}"


def from_source(
  train: Source, val: Source, test: Source, *, num_classes: int | None = None, name: str = "source"
) -> StreamedDataset:
  """A dataset whose splits are streamed from the host instead of held on the device.

  Each split is a :class:`Source` (wrap arrays with :class:`ArraySource`). The
  first example of each split is read once here, to check that the sources
  agree on shapes and dtypes and that labels are integers in range; every
  batch drawn later is checked again as it is gathered.

  Args:
    train, val, test: the sources.
    num_classes: number of classes (labels must be integers in ``[0,
      num_classes)``), or ``None`` for regression.
    name: a short label.

  Returns:
    A :class:`StreamedDataset`, for :func:`lrlab.tasks.from_nnx` and friends.

  Example:
    >>> rng = np.random.default_rng(0)
    >>> split = lambda n: lrlab.data.ArraySource(rng.normal(size=(n, 3)).astype(np.float32),
    ...                                          rng.integers(0, 2, n).astype(np.int32))
    >>> lrlab.data.from_source(split(100), split(20), split(20), num_classes=2).sizes
    {'train': 100, 'val': 20, 'test': 20}
  """
  if num_classes is not None:  # True would read as 1 class
    num_classes = _checks.count("num_classes", num_classes)
  sources = {"train": train, "val": val, "test": test}
  for split, source in sources.items():
    if not (hasattr(source, "__len__") and hasattr(source, "__getitem__")):
      raise ValueError(
        f"{split} must be a random-access source (len(source) and source[indices] -> (x, y)); "
        f"got {type(source).__name__}."
      )
    if len(source) < 1:
      raise ValueError(f"{split} must hold at least one example; got len {len(source)}.")
  for split, source in sources.items():
    try:
      source[np.arange(1)]
    except (TypeError, IndexError) as error:  # e.g. a grain MapDataset: ds[i] for one int i
      raise ValueError(
        f"{split} must return (x, y) for an array of indices, source[np.arange(1)]; it raised "
        f"{type(error).__name__}: {error} (wrap a source of single examples as lrlab.data.Source "
        "shows)."
      ) from error
  x, y = _pair("train", train[np.arange(1)], "its first example")
  x, y = one_array("the train source's x", x), one_array("the train source's y", y)
  spec = Spec(x.shape[1:], x.dtype, y.shape[1:], y.dtype)
  if num_classes is not None and not np.issubdtype(spec.y_dtype, np.integer):
    raise ValueError(f"train must return integer class labels; got dtype {spec.y_dtype}.")
  dataset = StreamedDataset(**sources, num_classes=num_classes, name=name, spec=spec)
  for split in SPLITS:
    dataset.gather(split, np.arange(1), where="its first example")
  return dataset


def prefetch(fetch: Callable[[Any], Any], items: list) -> Iterator[Any]:
  """``fetch(item)`` for each item in order, the next one computed in a thread while this is used.

  NumPy gathers release the GIL, so a source's reads overlap the device's
  compute of the previous segment.
  """
  if not items:
    return
  with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
    pending = pool.submit(fetch, items[0])
    for item in items[1:]:
      current, pending = pending, pool.submit(fetch, item)
      yield current.result()
    yield pending.result()
