"""The Dataset container, from_arrays and standardize."""

import dataclasses

import jax
import numpy as np
import pytest

from lrlab import data


def _arrays(n=50, d=3, seed=0):
  rng = np.random.default_rng(seed)
  return rng.normal(2.0, 3.0, size=(n, d)), np.arange(n) % 3


def test_from_arrays_splits_deterministically():
  x, y = _arrays()
  a = data.from_arrays(x, y, num_classes=3, seed=1)
  b = data.from_arrays(x, y, num_classes=3, seed=1)
  assert a.sizes == {"train": 36, "val": 4, "test": 10}
  np.testing.assert_array_equal(a.x_val, b.x_val)
  assert _multiset(a) == sorted(map(tuple, x.astype(np.float32).tolist()))


def _multiset(ds):
  return sorted(map(tuple, np.concatenate([ds.x_train, ds.x_val, ds.x_test]).tolist()))


def test_from_arrays_with_fixed_test_split():
  x, y = _arrays()
  ds = data.from_arrays(x[:40], y[:40], x_test=x[40:], y_test=y[40:], num_classes=3)
  np.testing.assert_array_equal(ds.x_test, x[40:].astype(np.float32))
  assert ds.sizes == {"train": 36, "val": 4, "test": 10}


def test_dataset_is_a_pytree_with_static_metadata():
  x, y = _arrays()
  ds = data.from_arrays(x, y, num_classes=3, name="toy")
  leaves = jax.tree.leaves(ds)
  assert len(leaves) == 6
  doubled = jax.tree.map(lambda a: a * 2, ds)
  assert doubled.num_classes == 3 and doubled.name == "toy"
  out = jax.jit(lambda d: d.x_train.sum() + d.num_classes)(ds)
  np.testing.assert_allclose(out, ds.x_train.sum() + 3, rtol=1e-5)


def test_split_rejects_unknown_name():
  x, y = _arrays()
  with pytest.raises(ValueError, match="split must be one of 'train', 'val', 'test'; got 'dev'"):
    data.from_arrays(x, y, num_classes=3).split("dev")


@pytest.mark.parametrize("where", ["x", "y"])
def test_nan_in_data_is_an_error(where):
  x, y = _arrays()
  y = y.astype(np.float64)
  (x if where == "x" else y)[7] = np.nan
  with pytest.raises(ValueError, match=rf"{where} must be finite; found \d+ NaN/inf"):
    data.from_arrays(x, y)


def test_nan_in_dataset_is_an_error_in_standardize():
  x, y = _arrays()
  ds = data.from_arrays(x, y, num_classes=3)
  bad = dataclasses.replace(ds, x_val=np.full_like(ds.x_val, np.nan))
  with pytest.raises(ValueError, match="x_val must be finite"):
    data.standardize(bad)


@pytest.mark.parametrize(
  ("kwargs", "match"),
  [
    ({"y": np.arange(49)}, "same length"),
    ({"y": np.arange(50) % 4}, r"labels must lie in \[0, 3\)"),
    ({"y": np.linspace(0, 2, 50)}, "integer class labels"),
    ({"val_fraction": 0.0}, "val_fraction"),
    ({"test_fraction": 0.001}, "test_fraction=0.001 of 50 examples leaves an empty split"),
    # The interval it offers is open and exact enough to pick from: 0.5 / 50 itself rounds
    # to an empty split (round half to even), 0.0101 does not.
    ({"test_fraction": 0.01}, r"leaves an empty split; choose test_fraction in \(0\.01, 0\.99\)"),
    ({"x_test": np.zeros((5, 3))}, "given together"),
    # A truthy string standardized the data; a column of test labels crashed at compile time
    # with a JAX message naming nothing ("indices and arr must have the same number of dims").
    ({"standardize": "no"}, r"^standardize must be True or False; got 'no'\.$"),
    (
      {"x_test": np.zeros((5, 3)), "y_test": np.zeros((5, 1), int)},
      r"^y_test must have the target shape of y_train \(\); got \(1,\)\.$",
    ),
  ],
)
def test_from_arrays_rejects_bad_input(kwargs, match):
  x, y = _arrays()
  kwargs = {"x": x, "y": y, "num_classes": 3, **kwargs}
  with pytest.raises(ValueError, match=match):
    data.from_arrays(**kwargs)


def test_standardize_fits_train_only():
  x, y = _arrays(200)
  raw = data.from_arrays(x, y, num_classes=3)
  ds = data.standardize(raw)
  np.testing.assert_allclose(ds.x_train.mean(0), 0.0, atol=1e-5)
  np.testing.assert_allclose(ds.x_train.std(0), 1.0, rtol=1e-5)
  assert np.abs(ds.x_val.mean(0)).max() > 1e-3
  expected = (raw.x_test - raw.x_train.mean(0)) / raw.x_train.std(0)
  np.testing.assert_allclose(ds.x_test, expected, rtol=1e-4, atol=1e-5)
  np.testing.assert_array_equal(ds.y_test, raw.y_test)
  assert data.from_arrays(x, y, num_classes=3, standardize=True).x_val.tolist() == ds.x_val.tolist()


def test_standardize_global_and_constant_features():
  x, y = _arrays(100)
  x[:, 1] = 5.0  # constant feature: centred, not divided by zero
  raw = data.from_arrays(x, y, num_classes=3)
  per_feature = data.standardize(raw)
  np.testing.assert_array_equal(per_feature.x_train[:, 1], 0.0)
  single = data.standardize(raw, per_feature=False)
  np.testing.assert_allclose(single.x_train.mean(), 0.0, atol=1e-5)
  np.testing.assert_allclose(single.x_train.std(), 1.0, rtol=1e-5)


def test_integer_ids_stay_exact_with_x_dtype_int32():
  rng = np.random.default_rng(0)
  ids = rng.integers(0, 2**24 + 10, size=(60, 3))
  ids[0, 0] = 2**24 + 1  # float32 would round it to 2**24
  ds = data.from_arrays(ids, ids[:, 1] % 2, num_classes=2, x_dtype="int32")
  assert ds.x_train.dtype == np.int32
  assert _multiset(ds) == sorted(map(tuple, ids.tolist()))
  for x, message in [(ids + 0.5, r"x must hold integers in int32's range"),
                     (ids * 2**10, r"x must hold integers in int32's range")]:  # fmt: skip
    with pytest.raises(ValueError, match=message):
      data.from_arrays(x, ids[:, 1] % 2, num_classes=2, x_dtype="int32")
  with pytest.raises(ValueError, match="standardize must be False for x_dtype='int32'"):
    data.from_arrays(ids, ids[:, 1] % 2, num_classes=2, x_dtype="int32", standardize=True)
  with pytest.raises(ValueError, match="x_dtype"):
    data.from_arrays(ids, ids[:, 1] % 2, num_classes=2, x_dtype="int64")


def test_several_inputs_are_refused_in_one_line_naming_x():
  x, y = _arrays()
  with pytest.raises(ValueError, match=r"^x must be one array .* got a dict of 2 arrays"):
    data.from_arrays({"dense": x, "ids": y}, y, num_classes=3)
  with pytest.raises(ValueError, match=r"^x must be one array .* got a tuple of 2 arrays"):
    data.from_arrays((x, y), y, num_classes=3)


def test_standardize_refuses_a_per_feature_that_is_not_a_bool():
  ds = data.from_arrays(*_arrays(), num_classes=3)
  with pytest.raises(ValueError, match=r"^per_feature must be True or False; got 'no'\.$"):
    data.standardize(ds, per_feature="no")  # read as True: per-feature statistics


def test_regression_targets_of_another_shape_in_one_split_are_refused():
  x, _ = _arrays()
  y = x[:, 0]
  with pytest.raises(ValueError, match=r"^y_test must have the target shape of y_train"):
    data.from_arrays(x, y, x_test=x[:5], y_test=y[:5, None, None])
  ds = data.from_arrays(x, y[:, None], x_test=x[:5], y_test=y[:5, None])  # one shape: fine
  assert ds.y_train.shape[1:] == ds.y_test.shape[1:] == (1,)


def test_standardize_refuses_integer_ids_and_streamed_data():
  # from_arrays refuses standardize=True with x_dtype='int32'; standardize itself turned the ids
  # into float32 z-scores, and a StreamedDataset failed with an AttributeError naming 'split'.
  ids = np.random.default_rng(0).integers(0, 50, size=(40, 4))
  raw = data.from_arrays(ids, np.arange(40) % 2, num_classes=2, x_dtype="int32")
  with pytest.raises(ValueError, match=r"^x_train must hold floating-point features .* int32"):
    data.standardize(raw)
  assert raw.x_train.dtype == np.int32  # the dataset itself is untouched
  source = data.ArraySource(np.zeros((5, 2), np.float32), np.zeros(5, np.int32))
  streamed = data.from_source(source, source, source, num_classes=2)
  with pytest.raises(ValueError, match=r"^dataset must be an lrlab.data.Dataset .* StreamedData"):
    data.standardize(streamed)


@pytest.mark.parametrize("split", ["train", "test"])
def test_a_hand_built_dataset_of_lists_is_refused_naming_the_split(split):
  # A list failed with AttributeError: 'list' object has no attribute 'ndim'.
  arrays = dataclasses.asdict(data.from_arrays(*_arrays(), num_classes=3))
  arrays[f"x_{split}"] = arrays[f"x_{split}"].tolist()
  with pytest.raises(ValueError, match=rf"^x_{split} must be a NumPy array; got list \(pass np"):
    data.standardize(data.Dataset(**arrays))
