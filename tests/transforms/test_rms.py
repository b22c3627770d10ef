"""Tests for lrlab.transforms.scale_by_rms (PyTorch RMSprop arithmetic)."""

import jax
import jax.numpy as jnp
import optax
import pytest

from lrlab.transforms import ScaleByRmsState, scale_by_learning_rate, scale_by_rms, trace
from tests.transforms import reference
from tests.transforms.runners import assert_close, run_optax

PROBLEM = reference.make_problem(seed=3)


def _rmsprop(lr, alpha=0.99, eps=1e-8, centered=False, momentum=0.0):
  parts = [scale_by_rms(alpha=alpha, eps=eps, centered=centered)]
  if momentum:
    parts.append(trace(momentum))
  return optax.chain(*parts, scale_by_learning_rate(lr))


@pytest.mark.parametrize("centered", [False, True])
@pytest.mark.parametrize("momentum", [0.0, 0.9])
def test_matches_reference(centered, momentum):
  ours = run_optax(_rmsprop(0.01, centered=centered, momentum=momentum), PROBLEM)
  expected = reference.rmsprop(PROBLEM, 0.01, centered=centered, momentum=momentum)
  assert_close(ours, expected)


@pytest.mark.parametrize("centered", [False, True])
@pytest.mark.parametrize("momentum", [None, 0.9])
def test_matches_optax_rmsprop_with_eps_outside_the_root(centered, momentum):
  # Optax's defaults differ (decay=0.9, eps inside the root); eps_in_sqrt=False maps them.
  theirs = optax.rmsprop(
    0.01, decay=0.99, eps=1e-8, eps_in_sqrt=False, centered=centered, momentum=momentum
  )
  ours = _rmsprop(0.01, centered=centered, momentum=momentum or 0.0)
  assert_close(run_optax(ours, PROBLEM), run_optax(theirs, PROBLEM))


def test_uncentered_state_holds_no_mean():
  state = scale_by_rms().init({"w": jnp.zeros(3)})
  assert isinstance(state, ScaleByRmsState) and state.grad_avg is None
  assert jax.tree.leaves(scale_by_rms(centered=True).init({"w": jnp.zeros(3)}).grad_avg)


def test_centered_variance_never_goes_negative():
  # A constant gradient has zero variance in the limit; rounding may push v - m^2 below 0.
  g = {"w": jnp.full(4, 0.3)}
  tx = scale_by_rms(alpha=0.5, eps=0.0, centered=True)

  def step(state, _):
    updates, state = tx.update(g, state)
    return state, updates["w"]

  _, updates = jax.lax.scan(step, tx.init(g), length=200)
  assert not jnp.any(jnp.isnan(updates))


@pytest.mark.parametrize(
  ("kwargs", "match"),
  [
    ({"alpha": 1.0}, r"alpha must be in \[0.0, 1.0\); got 1.0"),
    ({"alpha": -0.5}, r"alpha must be in \[0.0, 1.0\); got -0.5"),
    ({"eps": -1.0}, "eps must be a finite number >= 0; got -1.0"),
  ],
)
def test_bad_input(kwargs, match):
  with pytest.raises(ValueError, match=match):
    scale_by_rms(**kwargs)
