"""Digits and MNIST-1D: sizes, determinism, splits, caching; never downloaded."""

import random

import numpy as np
import pytest
from sklearn.datasets import load_digits

from lrlab import data
from lrlab.data import benchmarks


def _rows(*arrays):
  """The rows of the arrays as a sorted list of tuples (a multiset)."""
  return sorted(map(tuple, np.concatenate(arrays).tolist()))


def test_digits_sizes_and_union_is_the_whole_dataset():
  ds = data.digits(standardize=False)
  assert ds.sizes == {"train": 1294, "val": 144, "test": 359}
  assert sum(ds.sizes.values()) == 1797
  assert ds.num_classes == 10 and ds.x_train.shape[1] == 64
  assert ds.x_train.dtype == np.float32 and ds.y_train.dtype == np.int32
  reference = load_digits()
  full = np.concatenate([reference.data, reference.target[:, None]], axis=1)
  ours = [
    np.concatenate([x, y[:, None]], axis=1) for x, y in map(ds.split, ("train", "val", "test"))
  ]
  assert _rows(*ours) == _rows(full)
  assert ds.x_train.min() >= 0 and ds.x_train.max() <= 16


def test_digits_is_deterministic_and_seeded():
  a, b, c = data.digits(seed=0), data.digits(seed=0), data.digits(seed=1)
  for field in ("x_train", "y_train", "x_val", "y_val", "x_test", "y_test"):
    np.testing.assert_array_equal(getattr(a, field), getattr(b, field))
  assert not np.array_equal(a.y_test, c.y_test)


def test_digits_fractions():
  ds = data.digits(val_fraction=0.25, test_fraction=0.5)
  assert ds.sizes == {"train": 674, "val": 225, "test": 898}


def test_digits_standardized_with_train_statistics_only():
  raw = data.digits(standardize=False)
  ds = data.digits()
  mean = raw.x_train.astype(np.float64).mean(0)
  std = raw.x_train.astype(np.float64).std(0)
  scale = np.where(std > 1e-6, std, 1.0)
  np.testing.assert_allclose(ds.x_val, (raw.x_val - mean) / scale, rtol=1e-5, atol=1e-5)
  np.testing.assert_allclose(ds.x_train.mean(0), 0.0, atol=1e-5)
  varying = std > 1e-6
  np.testing.assert_allclose(ds.x_train.std(0)[varying], 1.0, rtol=1e-4)
  assert np.abs(ds.x_val.mean(0)).max() > 1e-3  # held-out splits are not exactly centred
  assert np.abs(ds.x_test.mean(0)).max() > 1e-3


def test_mnist1d_default_sizes_val_taken_from_train():
  ds = data.mnist1d(disk_cache=False)
  assert ds.sizes == {"train": 3600, "val": 400, "test": 1000}
  assert ds.x_train.shape[1] == 40 and ds.num_classes == 10
  raw = benchmarks._generate(5000, 42, None)
  assert raw["x"].shape == (4000, 40) and raw["x_test"].shape == (1000, 40)
  plain = data.mnist1d(standardize=False, disk_cache=False)
  np.testing.assert_array_equal(plain.x_test, raw["x_test"])  # mnist1d's own test split
  assert _rows(plain.x_train, plain.x_val) == _rows(raw["x"])


def test_mnist1d_matches_reference_generator_and_keeps_global_rngs():
  from mnist1d.data import get_dataset_args, make_dataset

  np.random.seed(123)  # noqa: NPY002 (the generator's global RNG must be left alone)
  random.seed(123)
  before = np.random.get_state()[1].copy(), random.getstate()  # noqa: NPY002
  benchmarks._generate.cache_clear()
  ds = data.mnist1d(200, standardize=False, seed=5, disk_cache=False)
  after = np.random.get_state()[1], random.getstate()  # noqa: NPY002
  np.testing.assert_array_equal(before[0], after[0])
  assert before[1] == after[1]
  args = get_dataset_args()
  args.num_samples, args.seed = 200, 5
  reference = make_dataset(args)
  np.testing.assert_allclose(ds.x_test, reference["x_test"].astype(np.float32))
  np.testing.assert_array_equal(ds.y_test, reference["y_test"])
  assert ds.sizes == {"train": 144, "val": 16, "test": 40}


def test_mnist1d_is_deterministic_across_cache_clears():
  first = data.mnist1d(200, seed=3, disk_cache=False)
  benchmarks._generate.cache_clear()
  second = data.mnist1d(200, seed=3, disk_cache=False)
  np.testing.assert_array_equal(first.x_train, second.x_train)
  np.testing.assert_array_equal(first.y_val, second.y_val)
  other = data.mnist1d(200, seed=4, disk_cache=False)
  assert not np.array_equal(first.x_test, other.x_test)


def test_mnist1d_disk_cache_is_written_and_reused(tmp_path, monkeypatch):
  monkeypatch.setenv("LRLAB_CACHE_DIR", str(tmp_path))
  assert data.default_cache_dir() == tmp_path
  first = data.mnist1d(100, seed=9)
  files = list(tmp_path.iterdir())
  assert len(files) == 1 and files[0].suffix == ".npz"  # no temporary file left behind
  benchmarks._generate.cache_clear()
  monkeypatch.setattr(benchmarks, "_make", lambda *a: pytest.fail("regenerated despite cache"))
  second = data.mnist1d(100, seed=9)
  np.testing.assert_array_equal(first.x_train, second.x_train)


def test_mnist1d_corrupt_cache_is_regenerated(tmp_path):
  data.mnist1d(100, seed=8, cache_dir=tmp_path)
  (path,) = tmp_path.iterdir()
  path.write_bytes(b"not an npz")
  benchmarks._generate.cache_clear()
  ds = data.mnist1d(100, seed=8, cache_dir=tmp_path)
  assert ds.sizes == {"train": 72, "val": 8, "test": 20}
  with np.load(path) as stored:
    assert stored["x"].shape == (80, 40)


def test_cached_arrays_are_read_only():
  raw = benchmarks._generate(100, 1, None)
  with pytest.raises(ValueError, match="read-only"):
    raw["x"][0, 0] = 1.0


@pytest.mark.parametrize(
  ("kwargs", "match"),
  [
    ({"num_samples": 10}, "num_samples"),
    ({"num_samples": 100.5}, "num_samples"),
    ({"val_fraction": 1.0}, "val_fraction"),
    ({"seed": -1}, "seed"),
    # None and 2**32 failed in int() or NumPy's seeding, naming neither argument nor value.
    ({"seed": None}, r"^seed must be an integer >= 0; got None\.$"),
    ({"seed": 2**32}, r"^seed must be an integer in \[0, 2\*\*32\); got 4294967296\.$"),
    ({"num_samples": None}, r"^num_samples must be an integer >= 20; got None\.$"),
    ({"standardize": "no"}, r"^standardize must be True or False; got 'no'\.$"),
  ],
)
def test_mnist1d_rejects_bad_arguments(kwargs, match):
  with pytest.raises(ValueError, match=match):
    data.mnist1d(**{"disk_cache": False, **kwargs})


@pytest.mark.parametrize(
  ("kwargs", "match"),
  [
    ({"val_fraction": 1.0}, r"^val_fraction must be in \(0, 1\)"),
    ({"val_fraction": None}, r"^val_fraction must be in \(0, 1\); got None\.$"),
    ({"disk_cache": "no"}, r"^disk_cache must be True or False; got 'no'\.$"),
  ],
)
def test_mnist1d_refuses_bad_arguments_before_generating(kwargs, match, monkeypatch, tmp_path):
  # val_fraction was checked by from_arrays only after the generator ran (seconds for tens of
  # thousands of signals), and disk_cache="no" read as true and wrote the cache.
  benchmarks._generate.cache_clear()
  monkeypatch.setattr(benchmarks, "_make", lambda *a: pytest.fail("generated before refusing"))
  with pytest.raises(ValueError, match=match):
    data.mnist1d(100, seed=11, cache_dir=tmp_path, **kwargs)
  assert list(tmp_path.iterdir()) == []
