"""Tests for lrlab.transforms.scale_by_adadelta."""

import optax
import pytest

from lrlab.transforms import scale_by_adadelta, scale_by_learning_rate
from tests.transforms import reference
from tests.transforms.runners import assert_close, run_optax

PROBLEM = reference.make_problem(seed=4)


@pytest.mark.parametrize("kwargs", [{}, {"rho": 0.5, "eps": 1e-3}, {"rho": 1.0}])
def test_matches_reference(kwargs):
  tx = optax.chain(scale_by_adadelta(**kwargs), scale_by_learning_rate(1.0))
  assert_close(run_optax(tx, PROBLEM), reference.adadelta(PROBLEM, 1.0, **kwargs))


def test_matches_optax_adadelta():
  ours = optax.chain(scale_by_adadelta(rho=0.9, eps=1e-6), scale_by_learning_rate(2.0))
  theirs = optax.adadelta(2.0, rho=0.9, eps=1e-6)
  assert_close(run_optax(ours, PROBLEM), run_optax(theirs, PROBLEM))


@pytest.mark.parametrize(
  ("kwargs", "match"),
  [
    ({"rho": 1.5}, r"rho must be in \[0.0, 1.0\]; got 1.5"),
    ({"rho": -0.1}, r"rho must be in \[0.0, 1.0\]; got -0.1"),
    ({"eps": -1e-6}, "eps must be a finite number >= 0; got -1e-06"),
  ],
)
def test_bad_input(kwargs, match):
  with pytest.raises(ValueError, match=match):
    scale_by_adadelta(**kwargs)
