"""Tests for lrlab.transforms.scale_by_adam (PyTorch Adam and AMSGrad arithmetic)."""

import jax.numpy as jnp
import numpy as np
import optax
import pytest

from lrlab.transforms import ScaleByAdamState, scale_by_adam, scale_by_learning_rate
from lrlab.transforms.adam import _bias_correction
from tests.transforms import reference
from tests.transforms.runners import assert_close, run_optax

PROBLEM = reference.make_problem(seed=5)


@pytest.mark.parametrize(
  "kwargs",
  [{}, {"amsgrad": True}, {"b1": 0.5, "b2": 0.9, "eps": 1e-3}, {"b1": 0.0, "amsgrad": True}],
)
def test_matches_reference(kwargs):
  tx = optax.chain(scale_by_adam(**kwargs), scale_by_learning_rate(0.05))
  assert_close(run_optax(tx, PROBLEM), reference.adam(PROBLEM, 0.05, **kwargs))


def test_matches_optax_adam():
  # Same quantity, m_hat / (sqrt(v_hat) + eps). b2 = 0.875 is exact in float32, so Optax's
  # float32 ``1 - b2**t`` is accurate too and only rounding differs.
  ours = optax.chain(scale_by_adam(b2=0.875), scale_by_learning_rate(0.05))
  assert_close(run_optax(ours, PROBLEM), run_optax(optax.adam(0.05, b2=0.875), PROBLEM))


def _error(trajectory, expected):
  return max(np.max(np.abs(trajectory[k] - expected[k])) for k in expected)


def test_closer_to_float64_than_optax_at_default_betas():
  # float32(0.999) makes Optax's 1 - b2**1 off by 1.3e-5 relative; PyTorch computes the
  # correction in float64, and so (to float32 precision) does lrlab.
  expected = reference.adam(PROBLEM, 0.05)
  ours = run_optax(optax.chain(scale_by_adam(), scale_by_learning_rate(0.05)), PROBLEM)
  theirs = run_optax(optax.adam(0.05), PROBLEM)
  assert _error(ours, expected) < 1e-6 < _error(theirs, expected)


def test_amsgrad_matches_optax_where_the_maxima_coincide():
  # Optax's amsgrad takes the max of the bias-corrected v, PyTorch's the max of the raw v;
  # with b2 = 0 there is no bias correction and the two rules coincide.
  ours = optax.chain(scale_by_adam(b2=0.0, amsgrad=True), scale_by_learning_rate(0.05))
  theirs = optax.amsgrad(0.05, b2=0.0)
  assert_close(run_optax(ours, PROBLEM), run_optax(theirs, PROBLEM))


def test_state_structure():
  params = {"w": jnp.zeros(3)}
  state = scale_by_adam().init(params)
  assert isinstance(state, ScaleByAdamState) and state.nu_max is None
  assert state.count.dtype == jnp.int32
  assert scale_by_adam(amsgrad=True).init(params).nu_max["w"].shape == (3,)


@pytest.mark.parametrize("decay", [0.0, 0.5, 0.9, 0.999, 0.99999])
def test_bias_correction_is_accurate_near_one(decay):
  steps = np.array([1, 2, 10, 1000, 100_000], np.int32)
  expected = 1 - decay ** steps.astype(np.float64)
  np.testing.assert_allclose(_bias_correction(decay, jnp.asarray(steps)), expected, rtol=2e-6)


@pytest.mark.parametrize(
  ("kwargs", "match"),
  [
    ({"b1": 1.0}, r"b1 must be in \[0.0, 1.0\); got 1.0"),
    ({"b1": -0.1}, r"b1 must be in \[0.0, 1.0\); got -0.1"),
    ({"b2": 1.0}, r"b2 must be in \[0.0, 1.0\); got 1.0"),
    ({"b2": float("nan")}, r"b2 must be in \[0.0, 1.0\)"),
    ({"eps": -1e-8}, "eps must be a finite number >= 0; got -1e-08"),
  ],
)
def test_bad_input(kwargs, match):
  with pytest.raises(ValueError, match=match):
    scale_by_adam(**kwargs)
