"""Random-access sources: from_source's checks, gather's checks, and prefetch's order."""

import operator
import textwrap
import threading
import warnings

import jax
import numpy as np
import pytest

import lrlab
from lrlab.data.source import prefetch

RNG = np.random.default_rng(0)


def _split(n, features=3, classes=2, dtype=np.float32, first_label=0):
  x = RNG.normal(size=(n, features)).astype(dtype)
  y = (np.arange(n) % classes).astype(np.int32)
  y[:1] = first_label
  return lrlab.data.ArraySource(x, y)


def test_from_source_reads_sizes_and_the_example_spec():
  dataset = lrlab.data.from_source(_split(100), _split(20), _split(30), num_classes=2, name="toy")
  assert dataset.sizes == {"train": 100, "val": 20, "test": 30}
  assert dataset.spec.x_shape == (3,) and dataset.spec.y_dtype == np.int32
  assert dataset.streamed and not lrlab.data.digits().streamed
  x, _ = dataset.gather("val", np.array([4, 2]), where="here")
  np.testing.assert_array_equal(x, dataset.val.x[[4, 2]])


def test_a_memmap_is_a_source(tmp_path):
  x = np.lib.format.open_memmap(tmp_path / "x.npy", mode="w+", dtype=np.float32, shape=(50, 4))
  x[:] = RNG.normal(size=(50, 4))
  y = np.arange(50, dtype=np.int32) % 5
  source = lrlab.data.ArraySource(np.load(tmp_path / "x.npy", mmap_mode="r"), y)
  dataset = lrlab.data.from_source(source, source, source, num_classes=5)
  got, _ = dataset.gather("train", np.array([49, 0]), where="here")
  np.testing.assert_array_equal(got, x[[49, 0]])


def test_a_non_finite_regression_target_is_warned_of_as_an_input_is():
  # A NaN target makes the loss NaN as a NaN input does: the member is flagged as diverged, so
  # the user must be told the data did it, not the learning rate.
  x, y = RNG.normal(size=(20, 3)).astype(np.float32), RNG.normal(size=20).astype(np.float32)
  y[3] = np.nan
  split = lrlab.data.ArraySource(x, y)
  dataset = lrlab.data.from_source(split, split, split)  # its first example is finite
  with pytest.warns(RuntimeWarning, match="train source returned non-finite targets at step 7"):
    dataset.gather("train", np.array([5, 3]), where="step 7")
  with warnings.catch_warnings():
    warnings.simplefilter("error")
    dataset.gather("train", np.array([5, 4]), where="step 8")  # finite: no warning


class _IncreasingOnly:
  """An array that, like an h5py dataset, reads only strictly increasing index arrays."""

  def __init__(self, array):
    self.array, self.shape, self.dtype = array, array.shape, array.dtype

  def __len__(self):
    return len(self.array)

  def __getitem__(self, indices):
    if np.any(np.diff(indices) <= 0):
      raise TypeError("Indexing elements must be in increasing order")
    return self.array[indices]


def test_an_array_read_in_increasing_order_only_is_a_source():
  # The README names HDF5 (h5py) among ArraySource's arrays: a window's shuffled indices, with
  # repeats, come back in the order asked for, as from NumPy arrays.
  x, y = RNG.normal(size=(40, 3)).astype(np.float32), np.arange(40, dtype=np.int32) % 2
  source = lrlab.data.ArraySource(_IncreasingOnly(x), _IncreasingOnly(y))
  indices = np.array([7, 3, 39, 3, 0])
  got_x, got_y = source[indices]
  np.testing.assert_array_equal(got_x, x[indices])
  np.testing.assert_array_equal(got_y, y[indices])
  dataset = lrlab.data.from_source(source, source, source, num_classes=2)
  order = lrlab.train.HostOrder(jax.random.key(0), 40, 8).steps(0, 10).ravel()
  got_x, _ = dataset.gather("train", order, where="steps 0-9")
  np.testing.assert_array_equal(got_x, x[order])


@pytest.mark.parametrize(
  "splits, kwargs, match",
  [
    ((object(), _split(5), _split(5)), {}, r"train must be a random-access source .* got object"),
    ((_split(5), _split(0), _split(5)), {}, r"val must hold at least one example; got len 0"),
    (
      (_split(5), _split(5, features=4), _split(5)),
      {},
      r"the val source must return .* \(x \(n, 3\)",
    ),
    ((_split(5), _split(5), _split(5, dtype=np.float64)), {}, r"test source .* float64"),
    (
      (_split(5, first_label=3), _split(5), _split(5)),
      {"num_classes": 2},
      r"labels must lie in \[0, 2\)",
    ),
    ((_split(5), _split(5), _split(5)), {"num_classes": 0}, r"num_classes must be an integer >= 1"),
    # True was taken as 1 class, refused as 'labels must lie in [0, 1)'.
    ((_split(5), _split(5), _split(5)), {"num_classes": True}, r"integer >= 1; got True\.$"),
    # Arrays given as sources: 'not enough values to unpack (expected 2, got 1)'.
    (
      (_split(5).x, _split(5), _split(5)),
      {},
      r"^the train source must return a pair \(x, y\) .* returned ndarray \(wrap arrays as",
    ),
    (
      (_split(5), _split(5), _split(5).y),
      {},
      r"^the test source must return a pair \(x, y\) for source\[indices\]; at its first ex",
    ),
  ],
)
def test_from_source_refuses_bad_sources(splits, kwargs, match):
  with pytest.raises(ValueError, match=match):
    lrlab.data.from_source(*splits, **kwargs)


def test_gather_names_a_label_out_of_range_and_where():
  train = _split(10)
  dataset = lrlab.data.from_source(train, _split(5), _split(5), num_classes=2)
  train.y[7] = 2
  with pytest.raises(ValueError, match=r"labels must lie in \[0, 2\); at steps 3-4 it returned"):
    dataset.gather("train", np.array([6, 7]), where="steps 3-4")


def test_prefetch_keeps_order_runs_ahead_and_raises_what_fetch_raises():
  # The next item is fetched while this one is in use, before it is asked for: a plain
  # sequential generator fails here (the old test set its event before anything ran).
  started, second = [], threading.Event()

  def fetch(i):
    started.append(i)
    if i == 1:
      second.set()
    return i * 10

  items = prefetch(fetch, [0, 1, 2])
  assert next(items) == 0
  assert second.wait(5)
  assert list(items) == [10, 20]
  assert started == [0, 1, 2]

  def broken(i):
    if i == 1:
      raise KeyError("missing shard")
    return i

  with pytest.raises(KeyError, match="missing shard"):
    list(prefetch(broken, [0, 1, 2]))


def test_a_source_of_several_inputs_is_refused_in_one_line():
  x = {"dense": np.zeros((20, 3), np.float32), "ids": np.zeros(20, np.int32)}

  class Source:
    def __len__(self):
      return 20

    def __getitem__(self, rows):
      return {k: v[rows] for k, v in x.items()}, np.zeros(len(rows), np.int32)

  with pytest.raises(ValueError, match=r"^the train source's x must be one array"):
    lrlab.data.from_source(Source(), Source(), Source(), num_classes=2)


class _OneAtATime:
  """Examples read one integer at a time, ``ds[i] -> (x_i, y_i)``, as a grain MapDataset."""

  def __init__(self, x, y):
    self.x, self.y = x, y

  def __len__(self):
    return len(self.x)

  def __getitem__(self, i):
    i = operator.index(i)  # an index array raises TypeError, as in grain
    return self.x[i], self.y[i]


def test_a_source_of_single_examples_is_refused_in_one_line_and_the_documented_adapter_fits():
  # The README and the module docstring said a grain MapDataset fits as it is; its ds[indices]
  # raised a bare TypeError from inside from_source.
  x, y = RNG.normal(size=(12, 3)).astype(np.float32), np.arange(12, dtype=np.int32) % 3
  single = _OneAtATime(x, y)
  with pytest.raises(ValueError, match=r"^train must return \(x, y\) for an array of indices"):
    lrlab.data.from_source(single, single, single, num_classes=3)
  block = lrlab.data.Source.__doc__.split("::\n", 1)[1]
  namespace = {"np": np}
  exec(textwrap.dedent(block), namespace)  # the adapter exactly as documented
  source = namespace["GrainSource"](single)
  dataset = lrlab.data.from_source(source, source, source, num_classes=3)
  indices = np.array([7, 2, 7, 0, 11])
  got_x, got_y = dataset.gather("train", indices, where="here")
  np.testing.assert_array_equal(got_x, x[indices])
  np.testing.assert_array_equal(got_y, y[indices])


def test_a_source_returning_a_scalar_label_is_named_in_one_line():
  # x.shape[0] of a 0-d array raised a bare IndexError ("tuple index out of range") from gather.
  x = RNG.normal(size=(10, 3)).astype(np.float32)

  class ScalarLabel:
    def __len__(self):
      return 10

    def __getitem__(self, rows):
      return x[rows], np.int32(1)

  match = r"^the train source must return \(x, y\) with 1 examples .* at its first example it "
  with pytest.raises(ValueError, match=match + r"returned x \(1, 3\) float32, y \(\) int32\.$"):
    lrlab.data.from_source(ScalarLabel(), _split(5), _split(5), num_classes=2)
