"""Tests for lrlab.transforms.scale_by_nadam (PyTorch NAdam arithmetic)."""

import jax.numpy as jnp
import numpy as np
import optax
import pytest

from lrlab.transforms import ScaleByNadamState, scale_by_learning_rate, scale_by_nadam
from tests.transforms import reference
from tests.transforms.runners import assert_close, run_optax

PROBLEM = reference.make_problem(seed=7)


@pytest.mark.parametrize(
  "kwargs", [{}, {"momentum_decay": 0.05}, {"b1": 0.5, "b2": 0.9, "eps": 1e-3}]
)
def test_matches_reference(kwargs):
  tx = optax.chain(scale_by_nadam(**kwargs), scale_by_learning_rate(0.05))
  assert_close(run_optax(tx, PROBLEM), reference.nadam(PROBLEM, 0.05, **kwargs))


def test_matches_optax_nadam_without_a_momentum_schedule():
  # optax.nadam keeps mu_t = b1; PyTorch's schedule reaches b1 as momentum_decay grows.
  # b2 = 0.875 is exact in float32, so Optax's float32 ``1 - b2**t`` is accurate too.
  ours = optax.chain(scale_by_nadam(b2=0.875, momentum_decay=1e6), scale_by_learning_rate(0.05))
  assert_close(run_optax(ours, PROBLEM), run_optax(optax.nadam(0.05, b2=0.875), PROBLEM))


def test_mu_product_tracks_the_schedule():
  params = {"w": jnp.ones(2)}
  tx = scale_by_nadam(b1=0.9, momentum_decay=4e-3)
  state = tx.init(params)
  assert isinstance(state, ScaleByNadamState) and float(state.mu_product) == 1.0
  for _ in range(3):
    _, state = tx.update(params, state)
  expected = np.prod([0.9 * (1 - 0.5 * 0.96 ** (t * 4e-3)) for t in (1, 2, 3)])
  np.testing.assert_allclose(state.mu_product, expected, rtol=1e-6)


@pytest.mark.parametrize(
  ("kwargs", "match"),
  [
    ({"b1": 1.0}, r"b1 must be in \[0.0, 1.0\); got 1.0"),
    ({"b2": 1.5}, r"b2 must be in \[0.0, 1.0\); got 1.5"),
    ({"eps": -1.0}, "eps must be a finite number >= 0; got -1.0"),
    ({"momentum_decay": -4e-3}, "momentum_decay must be a finite number >= 0; got -0.004"),
  ],
)
def test_bad_input(kwargs, match):
  with pytest.raises(ValueError, match=match):
    scale_by_nadam(**kwargs)
