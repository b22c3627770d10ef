"""What ``from_nnx`` / ``from_model`` refuse at build time, in one line, before any compute:
outputs ``mse`` would pair with the wrong targets, and a name that is not a string."""

import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

import lrlab


class _Transposed(nnx.Module):
  """Outputs ``(K, B)``: one row per output, the batch on the last axis."""

  def __init__(self, rngs):
    self.linear = nnx.Linear(4, 3, rngs=rngs)

  def __call__(self, x):
    return self.linear(x).T


def _regression(targets_shape):
  rng = np.random.default_rng(0)
  return lrlab.data.from_arrays(rng.normal(size=(40, 4)), rng.normal(size=(40, *targets_shape)))


@pytest.mark.parametrize(
  ("make", "targets", "outputs"),
  [
    (lambda rngs: nnx.Linear(4, 4, rngs=rngs), (2, 2), (2, 4)),  # were reshaped, unasked
    (_Transposed, (3,), (3, 2)),  # were reshaped, every target paired with another's output
  ],
  ids=["flat-for-2x2", "transposed"],
)
def test_mse_refuses_outputs_of_another_shape_than_the_targets(make, targets, outputs):
  shape = r"\(2, " + ", ".join(map(str, targets)) + r"\)"
  match = (
    rf"^loss must take the model's outputs \({outputs[0]}, {outputs[1]}\) float32 and the "
    rf"targets {shape} float32; it raised: outputs must have the targets' shape {shape}, up to "
    rf"axes of size 1; got \({outputs[0]}, {outputs[1]}\)\.$"
  )
  with pytest.raises(ValueError, match=match):
    lrlab.tasks.from_nnx(make, _regression(targets), loss="mse", name="r")


def test_mse_and_half_squared_error_take_axes_of_size_1_and_refuse_the_rest():
  rng = np.random.default_rng(1)
  outputs, targets = rng.normal(size=(5, 1)), rng.normal(size=5)
  residual = outputs[:, 0] - targets
  np.testing.assert_allclose(lrlab.tasks.mse(jnp.asarray(outputs), jnp.asarray(targets)),
                             residual**2, rtol=1e-6)  # fmt: skip
  np.testing.assert_allclose(lrlab.tasks.mse(jnp.asarray(targets), jnp.asarray(outputs)),
                             residual**2, rtol=1e-6)  # fmt: skip
  np.testing.assert_allclose(
    lrlab.tasks.half_squared_error(jnp.asarray(outputs), jnp.asarray(targets)),
    0.5 * residual**2, rtol=1e-6,
  )  # fmt: skip
  # A (n, 1) model on (n,) targets still builds (linreg's and teacher-student's shapes).
  lrlab.tasks.from_nnx(lambda rngs: nnx.Linear(4, 1, rngs=rngs), _regression(()), loss="mse",
                       name="r")  # fmt: skip
  for loss in (lrlab.tasks.mse, lrlab.tasks.half_squared_error):
    with pytest.raises(ValueError, match=r"^outputs must have the targets' shape \(5, 2, 2\)"):
      loss(jnp.zeros((5, 4)), jnp.zeros((5, 2, 2)))


@pytest.mark.parametrize("name", [None, "", 3])
def test_a_name_that_is_not_a_non_empty_string_is_refused(name):
  # None gave Task(name=None), which a sweep's results and files then carried.
  with pytest.raises(ValueError, match=rf"^name must be a non-empty string; got {name!r}\.$"):
    lrlab.tasks.from_nnx(lambda rngs: nnx.Linear(4, 1, rngs=rngs), _regression(()),
                         loss="mse", name=name)  # fmt: skip
