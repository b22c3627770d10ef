"""Grids: spacing, product order, zipping, random search, the command-line syntax, validation."""

import itertools
import math

import jax
import numpy as np
import pytest

from lrlab import sweep


def test_log_grid_is_geometric_with_exact_ends():
  assert sweep.log_grid(1e-4, 1.0, 5).tolist() == [1e-4, 1e-3, 1e-2, 1e-1, 1.0]
  values = sweep.log_grid(3e-5, 0.7, 13)
  assert values.dtype == np.float64 and values.shape == (13,)
  assert values[0] == 3e-5 and values[-1] == 0.7
  expected = [3e-5 * (0.7 / 3e-5) ** (i / 12) for i in range(13)]
  np.testing.assert_allclose(values, expected, rtol=1e-13)
  np.testing.assert_allclose(values[1:] / values[:-1], (0.7 / 3e-5) ** (1 / 12), rtol=1e-12)
  assert sweep.log_grid(0.1, 1.0, 1).tolist() == [0.1]


def test_linear_grid():
  assert sweep.linear_grid(-1.0, 1.0, 5).tolist() == [-1.0, -0.5, 0.0, 0.5, 1.0]
  assert sweep.linear_grid(0, 1, 1).tolist() == [0.0]


@pytest.mark.parametrize(
  ("lo", "hi", "n", "match"),
  [
    (0.0, 1.0, 3, "lo must be a finite number > 0"),
    (-1.0, 1.0, 3, "lo must be"),
    (1.0, 1.0, 3, "hi must be a number > lo"),
    (1.0, 0.5, 3, "hi must be a number > lo"),
    (1e-3, np.inf, 3, "hi must be a finite number"),
    (1e-3, 1.0, 0, "n must be an integer >= 1"),
    (1e-3, 1.0, 2.5, "n must be an integer >= 1"),
    (1e-3, 1.0, True, "n must be an integer >= 1"),
  ],
)
def test_log_grid_rejects_bad_arguments(lo, hi, n, match):
  with pytest.raises(ValueError, match=match):
    sweep.log_grid(lo, hi, n)


def test_linear_grid_rejects_bad_arguments():
  with pytest.raises(ValueError, match="hi must be a number > lo"):
    sweep.linear_grid(2.0, 1.0, 3)
  with pytest.raises(ValueError, match="lo must be a finite number"):
    sweep.linear_grid(np.nan, 1.0, 3)


def test_product_varies_the_first_axis_slowest():
  lrs, momenta, warmups = [1e-3, 1e-2], [0.0, 0.5, 0.9], [0, 10]
  grid = sweep.product(lr=lrs, momentum=momenta, warmup=warmups)
  assert list(grid) == ["lr", "momentum", "warmup"]
  combos = list(itertools.product(lrs, momenta, warmups))
  assert list(zip(grid["lr"], grid["momentum"], grid["warmup"], strict=True)) == combos
  assert grid["lr"].dtype == np.float64 and grid["warmup"].dtype == np.int64
  assert sweep.grid_size(grid) == 12


def test_product_keeps_positional_grids_together_and_takes_single_axis_grids():
  pairs = sweep.zipped(lr=[0.1, 0.01], weight_decay=[1e-3, 1e-4])
  grid = sweep.product(pairs, momentum={"m": [0.0, 0.9]})
  assert grid["lr"].tolist() == [0.1, 0.1, 0.01, 0.01]
  assert grid["weight_decay"].tolist() == [1e-3, 1e-3, 1e-4, 1e-4]
  assert grid["momentum"].tolist() == [0.0, 0.9, 0.0, 0.9]
  assert sweep.product(lr=0.1) == {"lr": np.array([0.1])}


def test_product_errors():
  with pytest.raises(ValueError, match="at least one axis"):
    sweep.product()
  with pytest.raises(ValueError, match=r"\['lr'\] more than once"):
    sweep.product({"lr": [0.1]}, lr=[0.2])
  with pytest.raises(ValueError, match="single-axis grid"):
    sweep.product(a={"lr": [0.1], "wd": [0.0]})
  with pytest.raises(ValueError, match="integers or floats"):
    sweep.product(opt=["sgd", "adam"])


def test_zipped_pairs_values_and_requires_equal_lengths():
  grid = sweep.zipped(lr=[0.1, 0.01, 0.001], warmup=[0, 5, 10])
  assert sweep.member(grid, 2) == {"lr": 0.001, "warmup": 10}
  with pytest.raises(ValueError, match=r"same length; got lengths \{'lr': 3, 'warmup': 2\}"):
    sweep.zipped(lr=[0.1, 0.01, 0.001], warmup=[0, 5])


def test_random_log_is_log_uniform_sorted_and_reproducible():
  key = jax.random.key(3)
  values = sweep.random_log(1e-4, 1.0, 2000, key)
  assert values.dtype == np.float64 and values.shape == (2000,)
  assert np.all(np.diff(values) >= 0) and values[0] >= 1e-4 and values[-1] <= 1.0
  np.testing.assert_array_equal(values, sweep.random_log(1e-4, 1.0, 2000, key))
  # log10 is uniform on [-4, 0]: mean -2, a quarter in each decade pair.
  logs = np.log10(values)
  assert abs(logs.mean() + 2) < 0.1
  assert abs(np.mean(logs < -3) - 0.25) < 0.04
  assert not np.array_equal(values, sweep.random_log(1e-4, 1.0, 2000, jax.random.key(4)))
  with pytest.raises(ValueError, match=r"key must be a jax\.random key"):
    sweep.random_log(1e-4, 1.0, 3, 0)


def test_parse_axis_ranges_and_lists():
  name, values = sweep.parse_axis("lr=1e-5:1:6:log")
  assert name == "lr"
  np.testing.assert_array_equal(values, sweep.log_grid(1e-5, 1.0, 6))
  assert sweep.parse_axis("lr=1e-5:1:64:log")[1].shape == (64,)
  name, values = sweep.parse_axis(" beta = 0 : 1 : 3 : LIN ")
  assert name == "beta" and values.tolist() == [0.0, 0.5, 1.0]
  name, values = sweep.parse_axis("momentum=0.8,0.9,0.99")
  assert name == "momentum" and values.tolist() == [0.8, 0.9, 0.99] and values.dtype == np.float64
  name, values = sweep.parse_axis("warmup=0,100,500")
  assert values.tolist() == [0, 100, 500] and values.dtype == np.int64
  assert sweep.parse_axis("lr=0.1")[1].tolist() == [0.1]


@pytest.mark.parametrize(
  "spec",
  [
    "lr",
    "lr=1e-5:1:64",
    "lr=1e-5:1:64:cubic",
    "lr=1e-5:1:64:log:extra",
    "lr=a,b",
    "lr=0.1,,0.2",
    "lr=",
    "lr=1=2",
    "2lr=0.1",
    "lr=1e-5:1:6.5:log",
    "lr=0:1:5:log",
    "lr=1:0.1:5:lin",
    "lr=0.1,nan",
  ],
)
def test_parse_axis_rejects_malformed_specs_showing_the_syntax(spec):
  with pytest.raises(ValueError, match=r"NAME=LO:HI:N:log") as error:
    sweep.parse_axis(spec)
  assert repr(spec) in str(error.value) or spec.split("=")[0] in str(error.value)


def test_parse_grid_is_the_product_in_order():
  grid = sweep.parse_grid(["lr=1e-2:1:3:log", "momentum=0.0,0.9"])
  expected = sweep.product(lr=sweep.log_grid(1e-2, 1.0, 3), momentum=[0.0, 0.9])
  assert list(grid) == ["lr", "momentum"]
  for name in grid:
    np.testing.assert_array_equal(grid[name], expected[name])
  with pytest.raises(ValueError, match="more than once"):
    sweep.parse_grid(["lr=0.1", "lr=0.2"])
  with pytest.raises(ValueError, match="non-empty list of axis specs"):
    sweep.parse_grid([])
  with pytest.raises(ValueError, match="non-empty list of axis specs"):
    sweep.parse_grid("lr=0.1")


def test_check_grid_normalises_and_validates():
  checked = sweep.check_grid({"lr": np.float32([0.5, 0.25]), "n": np.int32([1, 2])})
  assert checked["lr"].dtype == np.float64 and checked["n"].dtype == np.int64
  assert sweep.check_grid({"lr": 0.1})["lr"].tolist() == [0.1]
  bad = [
    ({}, "non-empty dict"),
    ([0.1, 0.2], "non-empty dict"),
    ({"learning rate": [0.1]}, "valid Python identifiers; got 'learning rate'"),
    ({1: [0.1]}, "valid Python identifiers"),
    ({"lr": [[0.1, 0.2]]}, r"grid\['lr'\] must be a non-empty 1-D array; got shape \(1, 2\)"),
    ({"lr": []}, "non-empty 1-D array"),
    ({"lr": [0.1, math.inf]}, "finite numbers"),
    ({"lr": [0.1, 0.2], "wd": [0.0]}, "same length"),
    ({"lr": ["a"]}, "integers or floats"),
    ({"lr": [True, False]}, "integers or floats"),
  ]
  for grid, match in bad:
    with pytest.raises(ValueError, match=match):
      sweep.check_grid(grid)


def test_grid_size_and_member():
  grid = sweep.product(lr=[0.1, 0.2, 0.3], warmup=[0, 5])
  assert sweep.grid_size(grid) == 6
  assert sweep.member(grid, 3) == {"lr": 0.2, "warmup": 5}
  assert isinstance(sweep.member(grid, 3)["warmup"], int)
  with pytest.raises(ValueError, match=r"index must be an integer in \[0, 5\]; got 6"):
    sweep.member(grid, 6)


@pytest.mark.parametrize(
  ("lo", "hi", "n"), [(1e-6, 1.0, 7), (1e-8, 1e-2, 7), (1e-7, 10.0, 9), (1e-6, 1.0, 13)]
)
def test_log_grid_whole_decades_are_exact(lo, hi, n):
  values = sweep.log_grid(lo, hi, n)
  exponents = np.log10(values)
  whole = np.abs(exponents - np.round(exponents)) < 1e-9
  expected = [float(f"1e{int(e)}") for e in np.round(exponents[whole])]
  assert values[whole].tolist() == expected
  assert values[0] == lo and values[-1] == hi and np.all(np.diff(values) > 0)
  np.testing.assert_allclose(values, np.geomspace(lo, hi, n), rtol=1e-14)
