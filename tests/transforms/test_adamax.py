"""Tests for lrlab.transforms.scale_by_adamax."""

import optax
import pytest

from lrlab.transforms import scale_by_adamax, scale_by_learning_rate
from tests.transforms import reference
from tests.transforms.runners import assert_close, run_optax

PROBLEM = reference.make_problem(seed=6)


@pytest.mark.parametrize("kwargs", [{}, {"b1": 0.5, "b2": 0.9, "eps": 1e-2}])
def test_matches_reference(kwargs):
  tx = optax.chain(scale_by_adamax(**kwargs), scale_by_learning_rate(0.05))
  assert_close(run_optax(tx, PROBLEM), reference.adamax(PROBLEM, 0.05, **kwargs))


def test_matches_optax_adamax():
  ours = optax.chain(scale_by_adamax(), scale_by_learning_rate(0.05))
  assert_close(run_optax(ours, PROBLEM), run_optax(optax.adamax(0.05), PROBLEM))


@pytest.mark.parametrize(
  ("kwargs", "match"),
  [
    ({"b1": 1.0}, r"b1 must be in \[0.0, 1.0\); got 1.0"),
    ({"b2": -0.5}, r"b2 must be in \[0.0, 1.0\); got -0.5"),
    ({"eps": -1.0}, "eps must be a finite number >= 0; got -1.0"),
  ],
)
def test_bad_input(kwargs, match):
  with pytest.raises(ValueError, match=match):
    scale_by_adamax(**kwargs)
