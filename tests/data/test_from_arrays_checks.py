"""from_arrays refuses bad sizes, labels, fractions and seeds on one line, before splitting."""

import numpy as np
import pytest

from lrlab import data


def _arrays(n=50):
  return np.random.default_rng(0).normal(size=(n, 3)), np.arange(n) % 2


@pytest.mark.parametrize("num_classes", [2.5, 0.5])
def test_from_arrays_refuses_a_non_integer_num_classes(num_classes):
  x, y = _arrays()
  with pytest.raises(ValueError, match=r"num_classes must be an integer >= 1; got"):
    data.from_arrays(x, y, num_classes=num_classes)


def test_from_arrays_refuses_labels_that_int32_would_wrap():
  x, y = _arrays()
  y = y.astype(np.int64)
  y[0] = 2**32 + 1  # int32 would store it as 1, a valid label
  with pytest.raises(ValueError, match=r"y labels must lie in \[0, 2\)"):
    data.from_arrays(x, y, num_classes=2)


def test_valid_labels_still_pass():
  x, y = _arrays()
  ds = data.from_arrays(x, y.astype(np.int64), num_classes=2)
  assert ds.y_train.dtype == np.int32 and ds.num_classes == 2


@pytest.mark.parametrize(
  ("kwargs", "match"),
  [
    ({"val_fraction": None}, r"^val_fraction must be in \(0, 1\); got None\.$"),
    ({"test_fraction": None}, r"^test_fraction must be in \(0, 1\); got None\.$"),
    ({"seed": None}, r"^seed must be an integer >= 0; got None\.$"),
    ({"seed": 1.5}, r"^seed must be an integer >= 0; got 1\.5\.$"),
    ({"seed": -1}, r"^seed must be an integer >= 0; got -1\.$"),
    (
      {"x": np.zeros((0, 3)), "y": np.zeros(0, int)},
      r"^x must hold at least 3 examples .* got 0\.$",
    ),
  ],
)
def test_from_arrays_bad_input_is_one_line_naming_the_argument(kwargs, match):
  x, y = _arrays()
  with pytest.raises(ValueError, match=match):
    data.from_arrays(**{"x": x, "y": y, "num_classes": 2, **kwargs})


def test_test_fraction_none_is_fine_with_a_fixed_test_split():
  x, y = _arrays()
  ds = data.from_arrays(
    x[:40], y[:40], x_test=x[40:], y_test=y[40:], test_fraction=None, num_classes=2
  )
  assert ds.sizes == {"train": 36, "val": 4, "test": 10}
