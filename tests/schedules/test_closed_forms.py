"""Every schedule equals its independent NumPy closed form, with and without jit."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from absl.testing import parameterized

from lrlab import schedules
from tests.schedules.cases import CASES


class ClosedFormTest(chex.TestCase):
  @chex.variants(with_jit=True, without_jit=True)
  @parameterized.named_parameters((case.name, case) for case in CASES)
  def test_matches_reference(self, case):
    schedule = self.variant(case.factory(**case.kwargs))
    steps = np.arange(case.steps)
    expected = case.reference(steps, **case.kwargs)
    chex.assert_trees_all_close(
      schedule(jnp.asarray(steps, jnp.int32)), expected.astype(np.float32), rtol=1e-5, atol=1e-7
    )

  @chex.variants(with_jit=True, without_jit=True)
  @parameterized.named_parameters((case.name, case) for case in CASES)
  def test_scalar_step_matches_array_of_steps(self, case):
    schedule = case.factory(**case.kwargs)
    scalar = self.variant(schedule)
    steps = jnp.arange(case.steps, dtype=jnp.int32)
    chex.assert_trees_all_close(
      jnp.stack([scalar(t) for t in steps[:: max(1, case.steps // 7)]]),
      schedule(steps)[:: max(1, case.steps // 7)],
      rtol=1e-5,
      atol=1e-7,
    )


@pytest.mark.parametrize("period", [3, 7, 97, 1000])
def test_exact_at_multiples_of_a_constant_period_under_jit(period):
  # XLA may turn division by a constant into a multiplication by its reciprocal;
  # floor(97 * (1 / 97)) is 0 in float32. Restarts and decays must still fire.
  t = jnp.arange(3 * period + 1, dtype=jnp.int32)
  restarts = jax.jit(schedules.warm_restarts(1.0, period))(t)
  np.testing.assert_allclose(restarts[::period], 1.0)
  decay = jax.jit(schedules.step_decay(1.0, period, 0.5))(t)
  np.testing.assert_allclose(decay[::period], [1.0, 0.5, 0.25, 0.125])
  cycle = jax.jit(schedules.cyclical(0.0, 1.0, period))(t)
  np.testing.assert_allclose(cycle[:: 2 * period], 0.0, atol=1e-7)
