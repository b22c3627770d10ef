"""Synthetic problems: the quadratic's spectrum and noise, linear regression's optimum."""

import numpy as np
import pytest

from lrlab import data


def test_quadratic_default_spectrum_is_log_spaced_and_exact():
  q = data.quadratic(30, min_curvature=0.05, max_curvature=20.0, seed=3)
  expected = np.geomspace(0.05, 20.0, 30)
  np.testing.assert_allclose(q.eigenvalues, expected, rtol=1e-12)
  np.testing.assert_allclose(np.linalg.eigvalsh(q.hessian.astype(np.float64)), expected, atol=1e-5)
  np.testing.assert_array_equal(q.hessian, q.hessian.T)
  assert (q.L, q.mu) == (20.0, 0.05)


def test_quadratic_explicit_eigenvalues():
  eig = [3.0, 0.5, 7.0, 1.0]
  q = data.quadratic(4, eigenvalues=eig)
  np.testing.assert_allclose(
    np.linalg.eigvalsh(q.hessian.astype(np.float64)), sorted(eig), atol=1e-5
  )
  assert (q.L, q.mu) == (7.0, 0.5)


def test_quadratic_is_deterministic_and_seeded():
  a, b, c = (data.quadratic(8, noise=0.3, seed=s) for s in (1, 1, 2))
  for field in ("hessian", "x_star"):
    np.testing.assert_array_equal(getattr(a, field), getattr(b, field))
  np.testing.assert_array_equal(a.dataset.x_train, b.dataset.x_train)
  assert not np.array_equal(a.x_star, c.x_star)


def test_quadratic_without_noise_every_target_is_the_optimum():
  q = data.quadratic(5, num_train=7, num_eval=3)
  for split in ("train", "val", "test"):
    x, y = q.dataset.split(split)
    np.testing.assert_array_equal(x, np.broadcast_to(q.x_star, x.shape))
    assert y.shape == (x.shape[0],)
  assert q.dataset.sizes == {"train": 7, "val": 3, "test": 3}


def test_quadratic_noise_is_centred_on_train_with_covariance_sigma2_h():
  sigma = 0.5
  q = data.quadratic(3, eigenvalues=[0.5, 1.0, 4.0], noise=sigma, num_train=40_000, seed=0)
  shifts = q.dataset.x_train.astype(np.float64) - q.x_star
  np.testing.assert_allclose(shifts.mean(0), 0.0, atol=1e-6)
  gradient_noise = shifts @ q.hessian.astype(np.float64)  # H (t_i - x*)
  np.testing.assert_allclose(np.cov(gradient_noise.T), sigma**2 * q.hessian, atol=0.03)


@pytest.mark.parametrize(
  ("kwargs", "match"),
  [
    ({"dim": 0}, "dim"),
    ({"dim": 3, "min_curvature": 0.0}, "min_curvature"),
    ({"dim": 3, "min_curvature": 2.0, "max_curvature": 1.0}, "min_curvature must be <="),
    ({"dim": 3, "eigenvalues": [1.0, -1.0, 2.0]}, "eigenvalues"),
    ({"dim": 3, "eigenvalues": [1.0, 2.0]}, "eigenvalues must hold dim=3"),
    ({"dim": 3, "noise": -1.0}, "noise"),
    # None drew another problem on every call; -1 and 1.5 failed in NumPy, naming nothing.
    ({"dim": 3, "seed": None}, r"^seed must be an integer >= 0; got None\.$"),
    ({"dim": 3, "seed": -1}, r"^seed must be an integer >= 0; got -1\.$"),
    ({"dim": 3, "seed": 1.5}, r"^seed must be an integer >= 0; got 1\.5\.$"),
    # None passed the checks and failed in int() or arithmetic, naming nothing; True was 1.
    ({"dim": None}, r"^dim must be an integer >= 1; got None\.$"),
    ({"dim": True}, r"^dim must be an integer >= 1; got True\.$"),
    ({"dim": 3, "num_train": None}, r"^num_train must be an integer >= 1; got None\.$"),
    ({"dim": 3, "num_eval": None}, r"^num_eval must be an integer >= 1; got None\.$"),
    ({"dim": 3, "noise": None}, r"^noise must be a number or an array; got None\.$"),
    ({"dim": 3, "min_curvature": None}, r"^min_curvature must be a number"),
  ],
)
def test_quadratic_rejects_bad_arguments(kwargs, match):
  with pytest.raises(ValueError, match=match):
    data.quadratic(**kwargs)


def test_linear_regression_optimum_solves_normal_equations():
  p = data.linear_regression(500, 12, noise=0.2, condition_number=50.0, seed=1)
  x = p.dataset.x_train.astype(np.float64)
  y = p.dataset.y_train.astype(np.float64)
  gradient = x.T @ (x @ p.w_star - y) / len(y)
  np.testing.assert_allclose(gradient, 0.0, atol=1e-5)
  eig = np.linalg.eigvalsh(x.T @ x / len(y))
  np.testing.assert_allclose([p.mu, p.L], [eig[0], eig[-1]], rtol=1e-10)
  assert 25 < p.L / p.mu < 100  # population condition number 50
  assert p.dataset.num_classes is None
  assert p.dataset.sizes == {"train": 500, "val": 125, "test": 125}


def test_linear_regression_without_noise_recovers_true_weights():
  p = data.linear_regression(200, 5, noise=0.0, condition_number=10.0)
  np.testing.assert_allclose(p.w_star, p.w_true, atol=1e-4)


def test_linear_regression_is_deterministic():
  a = data.linear_regression(100, 4, noise=0.1, condition_number=5.0, seed=7)
  b = data.linear_regression(100, 4, noise=0.1, condition_number=5.0, seed=7)
  for x, y in zip(a.dataset.split("test"), b.dataset.split("test"), strict=True):
    np.testing.assert_array_equal(x, y)
  np.testing.assert_array_equal(a.w_star, b.w_star)


@pytest.mark.parametrize(
  ("kwargs", "match"),
  [
    ({"n": 3, "d": 5}, "n must be"),
    ({"n": 10, "d": 2, "condition_number": 0.5}, "condition_number"),
    ({"n": 10, "d": 2, "noise": -0.1}, "noise"),
    ({"n": 10, "d": 2, "seed": None}, r"^seed must be an integer >= 0; got None\.$"),
    ({"n": 10, "d": 2, "seed": -1}, r"^seed must be an integer >= 0; got -1\.$"),
    ({"n": None, "d": 2}, r"^n must be an integer >= 1; got None\.$"),
    ({"n": 10, "d": None}, r"^d must be an integer >= 1; got None\.$"),
    ({"n": 10, "d": 2, "noise": None}, r"^noise must be a number or an array; got None\.$"),
    ({"n": 10, "d": 2, "condition_number": None}, r"^condition_number must be a number"),
    ({"n": 10, "d": 2, "num_eval": True}, r"^num_eval must be an integer >= 1; got True\.$"),
  ],
)
def test_linear_regression_rejects_bad_arguments(kwargs, match):
  kwargs = {"noise": 0.1, "condition_number": 10.0, **kwargs}
  with pytest.raises(ValueError, match=match):
    data.linear_regression(**kwargs)
