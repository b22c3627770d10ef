"""HostOrder refuses what batch_indices refuses, on one line naming the argument."""

import jax
import numpy as np
import pytest

from lrlab.train import HostOrder, batch_indices

KEY = jax.random.key(0)


@pytest.mark.parametrize(
  ("num_train", "batch_size", "match"),
  [
    (10, 11, r"^batch_size must be at most num_train \(10\); got 11\.$"),
    (10, 0, r"^batch_size must be an integer >= 1; got 0\.$"),
    (10, 2.5, r"^batch_size must be an integer >= 1; got 2\.5\.$"),
    (0, 1, r"^num_train must be an integer >= 1; got 0\.$"),
  ],
)
def test_host_order_refuses_bad_sizes_in_one_line(num_train, batch_size, match):
  with pytest.raises(ValueError, match=match):
    HostOrder(KEY, num_train, batch_size)


@pytest.mark.parametrize(
  ("first_step", "count", "match"),
  [
    (0, 0, r"^count must be an integer >= 1; got 0\.$"),
    (-1, 2, r"^first_step must be an integer >= 0; got -1\.$"),
  ],
)
def test_host_order_steps_refuses_bad_ranges(first_step, count, match):
  with pytest.raises(ValueError, match=match):
    HostOrder(KEY, 10, 3).steps(first_step, count)


def test_host_order_still_matches_batch_indices():
  np.testing.assert_array_equal(
    HostOrder(KEY, 17, 5).steps(2, 11), np.asarray(batch_indices(KEY, 2, 11, 17, 5))
  )


@pytest.mark.parametrize("first_step", [-3, 2.5])
def test_batch_indices_refuses_a_bad_first_step_as_host_order_does(first_step):
  match = rf"^first_step must be an integer >= 0; got {first_step}\.$"
  with pytest.raises(ValueError, match=match):
    batch_indices(KEY, first_step, 2, 10, 5)
  with pytest.raises(ValueError, match=match):
    HostOrder(KEY, 10, 5).steps(first_step, 2)
