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


@pytest.mark.parametrize("impl", ["threefry2x32", "rbg", "unsafe_rbg"])
def test_the_order_does_not_depend_on_segments_or_on_where_it_is_drawn(impl):
  # batch_indices drew its epochs' permutations under vmap, and rbg's batched draws differ from
  # its single ones: with an rbg key the resident order changed with the segment length (epoch 1
  # drawn second of a batch or first) and a streamed run (HostOrder) trained on other batches.
  key, num_train, batch_size = jax.random.key(3, impl=impl), 50, 10  # 5 steps an epoch
  whole = np.asarray(batch_indices(key, 0, 20, num_train, batch_size))
  parts = [np.asarray(batch_indices(key, first, 4, num_train, batch_size)) for first in (0, 4, 8)]
  parts += [np.asarray(jax.jit(batch_indices, static_argnums=(2, 3, 4))(key, 12, 8, 50, 10))]
  np.testing.assert_array_equal(np.concatenate(parts), whole)
  np.testing.assert_array_equal(HostOrder(key, num_train, batch_size).steps(0, 20), whole)
  for epoch in range(4):  # epoch e is fold_in(key, e)'s permutation, drawn alone
    alone = np.asarray(jax.random.permutation(jax.random.fold_in(key, epoch), num_train))
    np.testing.assert_array_equal(whole[5 * epoch : 5 * epoch + 5].ravel(), alone)
