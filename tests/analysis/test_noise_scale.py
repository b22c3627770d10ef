"""The simple gradient noise scale against brute force, NumPy and a closed form."""

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import lrlab
from lrlab.analysis import gradient_noise_scale, noise_scale


def _regression(n: int, d: int, seed: int):
  """A linear-regression problem and a point ``w``, float64 NumPy."""
  rng = np.random.default_rng(seed)
  x = rng.standard_normal((n, d))
  y = x @ rng.standard_normal(d) + 0.5 * rng.standard_normal(n)
  return x, y, rng.standard_normal(d)


def _example_gradients(x, y, w):
  """Per-example gradients of 1/2 (x_i . w - y_i)^2, ``(n, d)``."""
  return x * (x @ w - y)[:, None]


def _exact(grads):
  """``(tr(Sigma), |G|^2)`` of the per-example gradients (divisor n)."""
  mean = grads.mean(axis=0)
  return float(np.sum((grads - mean) ** 2) / len(grads)), float(mean @ mean)


def test_estimator_is_exact_in_expectation_by_brute_force():
  # Every batch of b examples drawn with replacement from n = 5, enumerated: the mean
  # squared norm is the exact expectation, so the estimator must give tr(Sigma) / |G|^2.
  x, y, w = _regression(5, 3, seed=0)
  grads = _example_gradients(x, y, w)
  trace, sq_norm = _exact(grads)

  def expected_sq_norm(b):
    batches = itertools.product(range(len(grads)), repeat=b)
    return np.mean([np.sum(grads[list(rows)].mean(axis=0) ** 2) for rows in batches])

  scale = noise_scale(expected_sq_norm(2), expected_sq_norm(4), 2, 4)
  np.testing.assert_allclose(scale.trace_covariance, trace, rtol=1e-5)
  np.testing.assert_allclose(scale.gradient_sq_norm, sq_norm, rtol=1e-5)
  np.testing.assert_allclose(scale.b_simple, trace / sq_norm, rtol=1e-5)


def test_measurement_matches_numpy_per_example_gradients():
  x, y, w = _regression(400, 6, seed=1)
  rng = np.random.default_rng(2)
  small_rows, big_rows = rng.integers(0, 400, (7, 4)), rng.integers(0, 400, (5, 32))
  grads = _example_gradients(x, y, w)

  def mean_sq_norm(rows):
    return np.mean([np.sum(grads[r].mean(axis=0) ** 2) for r in rows])

  s, b = mean_sq_norm(small_rows), mean_sq_norm(big_rows)
  sq_norm = (32 * b - 4 * s) / (32 - 4)
  trace = (s - b) / (1 / 4 - 1 / 32)

  loss_fn = lambda w, batch: 0.5 * jnp.mean((batch[0] @ w - batch[1]) ** 2)
  batches = lambda rows: (jnp.asarray(x[rows], jnp.float32), jnp.asarray(y[rows], jnp.float32))
  scale = jax.jit(gradient_noise_scale, static_argnums=0)(
    loss_fn, jnp.asarray(w, jnp.float32), batches(small_rows), batches(big_rows)
  )
  np.testing.assert_allclose(scale.gradient_sq_norm, sq_norm, rtol=1e-4)
  np.testing.assert_allclose(scale.trace_covariance, trace, rtol=1e-4)
  np.testing.assert_allclose(scale.b_simple, trace / sq_norm, rtol=2e-4)


def test_noisy_quadratic_against_its_closed_form():
  # lrlab's noisy quadratic: example gradients H (x - x*) - sigma H^(1/2) z_i, so
  # tr(Sigma) = sigma^2 tr(H) and |G|^2 = |H (x - x*)|^2 (exact on the centred training set,
  # up to the sample covariance of its z_i).
  sigma, dim, n = 2.0, 8, 20_000
  task = lrlab.tasks.get("quadratic", dim=dim, noise=sigma, num_train=n, min_curvature=0.1)
  point = jnp.asarray(task.optimum) + 1.0  # B_simple about 10
  error = np.asarray(point - task.optimum, np.float64)
  h = np.asarray(
    jax.jacfwd(jax.grad(lambda p: task.loss(p, {}, task.split("train"), None)[0]))(point),
    np.float64,
  )
  np.testing.assert_allclose(np.linalg.eigvalsh(h), np.geomspace(0.1, 1.0, dim), rtol=1e-4)
  closed = sigma**2 * np.trace(h) / np.sum((h @ error) ** 2)

  rng = np.random.default_rng(3)
  rows = lambda draws, b: jnp.asarray(rng.integers(0, n, (draws, b)))
  loss_fn = lambda p, rows: task.loss(p, {}, task.batch(rows), None)[0]
  scale = gradient_noise_scale(loss_fn, point, rows(4000, 2), rows(500, 64))
  np.testing.assert_allclose(scale.trace_covariance, sigma**2 * np.trace(h), rtol=0.05)
  np.testing.assert_allclose(scale.gradient_sq_norm, np.sum((h @ error) ** 2), rtol=0.05)
  np.testing.assert_allclose(scale.b_simple, closed, rtol=0.08)


def test_gradient_below_the_noise_gives_infinity():
  # The big batch's squared norm below B_small / B_big of the small one's: |G|^2 estimated < 0.
  assert noise_scale(2.0, 0.9, 1, 2).b_simple == np.inf
  assert np.isfinite(noise_scale(2.0, 1.2, 1, 2).b_simple)


@pytest.mark.parametrize(
  ("args", "message"),
  [
    ((1.0, 0.5, 0, 4), "small_batch_size must be a finite number > 0; got 0"),
    ((1.0, 0.5, 4, 4), "big_batch_size must be > small_batch_size=4; got 4"),
    ((1.0, 0.5, 8, 4), "big_batch_size must be > small_batch_size=8; got 4"),
  ],
)
def test_bad_batch_sizes_are_refused(args, message):
  with pytest.raises(ValueError, match=message):
    noise_scale(*args)


def test_bad_batches_are_refused():
  loss_fn = lambda w, b: jnp.mean(b @ w)
  ones = jnp.ones((3, 8, 2))
  with pytest.raises(ValueError, match="big_batches must hold more examples per draw"):
    gradient_noise_scale(loss_fn, jnp.zeros(2), ones, ones[:, :4])
  with pytest.raises(ValueError, match=r"small_batches must be arrays shaped \(draws, batch_size"):
    gradient_noise_scale(loss_fn, jnp.zeros(2), jnp.ones(8), ones)


def test_a_non_finite_norm_gives_nan_not_a_gradient_lost_in_the_noise():
  # A NaN squared norm (a diverged model's loss) made |G|^2's estimate NaN, which failed
  # `> 0` and was reported as B_simple = inf, the reading "the gradient is lost in the noise".
  for small, big in ((np.nan, 1.25), (5.0, np.nan), (np.inf, 1.25)):
    assert np.isnan(noise_scale(small, big, 2, 32).b_simple), (small, big)
  loss_fn = lambda w, b: jnp.mean(b @ w) * jnp.nan
  scale = gradient_noise_scale(loss_fn, jnp.zeros(2), jnp.ones((3, 2, 2)), jnp.ones((3, 4, 2)))
  assert np.isnan(scale.b_simple)
  # A finite estimate of |G|^2 <= 0 is still the documented infinity; an array mixes the cases.
  mixed = noise_scale(jnp.array([5.0, 2.0, np.nan]), jnp.array([1.25, 0.1, 1.0]), 2, 32).b_simple
  np.testing.assert_allclose(mixed[0], 8.0, rtol=1e-6)
  assert mixed[1] == np.inf and np.isnan(mixed[2])


def test_no_draws_are_refused():
  # An empty leading axis averaged no norms (NaN) and silently gave an estimate.
  loss_fn = lambda w, b: jnp.mean(b @ w)
  with pytest.raises(ValueError, match=r"small_batches must hold at least one draw .* got 0"):
    gradient_noise_scale(loss_fn, jnp.zeros(2), jnp.ones((0, 2, 2)), jnp.ones((3, 4, 2)))
  with pytest.raises(ValueError, match=r"big_batches must hold at least one draw .* got 0"):
    gradient_noise_scale(loss_fn, jnp.zeros(2), jnp.ones((3, 2, 2)), jnp.ones((0, 4, 2)))
