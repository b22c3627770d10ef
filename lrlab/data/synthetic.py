"""Synthetic problems with known answers: a quadratic with a chosen spectrum, linear regression."""

from typing import NamedTuple

import numpy as np

from lrlab import _checks
from lrlab.data.dataset import Dataset


class Quadratic(NamedTuple):
  """``f(x) = 1/2 (x - x*)^T H (x - x*)`` with known eigenvalues, plus noisy targets.

  Attributes:
    hessian: ``H``, float32 ``(dim, dim)``, symmetric positive definite.
    x_star: the minimiser ``x*``, float32 ``(dim,)``.
    eigenvalues: the spectrum of ``H``, float64 ``(dim,)``, ascending.
    L: the largest eigenvalue (smoothness constant).
    mu: the smallest eigenvalue (strong-convexity constant).
    noise: the gradient-noise scale ``sigma``.
    dataset: per-sample targets ``t_i`` in ``x`` (``y`` is unused zeros); see
      :func:`quadratic`.
  """

  hessian: np.ndarray
  x_star: np.ndarray
  eigenvalues: np.ndarray
  L: float
  mu: float
  noise: float
  dataset: Dataset


def _orthogonal(dim: int, rng: np.random.Generator) -> np.ndarray:
  """A Haar-random orthogonal matrix (QR of a Gaussian with the sign fix)."""
  q, r = np.linalg.qr(rng.standard_normal((dim, dim)))
  return q * np.sign(np.diag(r))


def quadratic(
  dim: int,
  *,
  eigenvalues: np.ndarray | None = None,
  min_curvature: float = 0.01,
  max_curvature: float = 1.0,
  noise: float = 0.0,
  num_train: int = 1000,
  num_eval: int = 250,
  seed: int = 0,
) -> Quadratic:
  """A strongly convex quadratic with a prescribed spectrum and optional noisy targets.

  ``f(x) = 1/2 (x - x*)^T H (x - x*)`` with ``H = Q diag(lambda) Q^T``, ``Q``
  Haar-random orthogonal and ``x* ~ N(0, I)``. By default the eigenvalues
  ``lambda`` are log-spaced from ``min_curvature`` (``mu``) to
  ``max_curvature`` (``L``). Gradient descent ``x <- x - lr * H (x - x*)``
  converges iff ``0 < lr < 2 / L``, fastest at ``lr = 2 / (L + mu)`` where the
  error contracts by ``(L - mu) / (L + mu)`` per step.

  Noise follows the noisy quadratic model: sample ``i`` has its own target
  ``t_i = x* + sigma H^{-1/2} z_i`` with ``z_i ~ N(0, I)``, and loss
  ``l_i(x) = 1/2 (x - t_i)^T H (x - t_i)``. Its gradient ``H (x - x*) -
  sigma H^{1/2} z_i`` is unbiased with covariance ``sigma^2 H``; the mean of a
  batch of ``B`` samples has covariance ``sigma^2 H / B``. The training
  ``z_i`` are centred, so the full-batch gradient is exactly ``H (x - x*)``;
  with ``noise=0`` every target equals ``x*``.

  Args:
    dim: dimension, >= 1.
    eigenvalues: the spectrum, ``dim`` finite values > 0 (any order); overrides
      ``min_curvature`` and ``max_curvature``.
    min_curvature: smallest eigenvalue ``mu`` of the log-spaced default, > 0.
    max_curvature: largest eigenvalue ``L``, >= ``min_curvature``.
    noise: gradient-noise scale ``sigma``, >= 0.
    num_train: number of training targets, >= 1.
    num_eval: number of validation targets and of test targets, >= 1.
    seed: seed of ``Q``, ``x*`` and the targets.

  Returns:
    A :class:`Quadratic`; its ``dataset`` holds the targets ``t_i`` as ``x``
    (float32 ``(n, dim)``) and zeros as ``y``.

  Example:
    >>> q = lrlab.data.quadratic(10, min_curvature=0.1, max_curvature=10.0)
    >>> q.L, q.mu, 2 / (q.L + q.mu)
    (10.0, 0.1, 0.19801980198019803)

  References:
    Zhang et al., "Which Algorithmic Choices Matter at Which Batch Sizes?
    Insights From a Noisy Quadratic Model", NeurIPS 2019.
    https://arxiv.org/abs/1907.04164
  """
  # count refuses None and bools, which check lets through (int(None) failed naming nothing).
  dim = _checks.count("dim", dim, 1)
  num_train = _checks.count("num_train", num_train, 1)
  num_eval = _checks.count("num_eval", num_eval, 1)
  _checks.check_given(noise=noise)
  _checks.check_nonnegative("noise", noise)
  seed = _checks.count("seed", seed, 0)  # None would draw another problem on every call
  if eigenvalues is None:
    _checks.check_given(min_curvature=min_curvature, max_curvature=max_curvature)
    _checks.check_positive("min_curvature", min_curvature)
    _checks.check_positive("max_curvature", max_curvature)
    _checks.check_le("min_curvature", min_curvature, "max_curvature", max_curvature)
    spectrum = np.geomspace(min_curvature, max_curvature, dim)
  else:
    spectrum = np.sort(np.asarray(eigenvalues, np.float64).ravel())
    _checks.check_positive("eigenvalues", spectrum)
    if spectrum.shape != (dim,):
      raise ValueError(f"eigenvalues must hold dim={dim} values; got {spectrum.size}.")

  rng = np.random.default_rng(seed)
  q = _orthogonal(dim, rng)
  hessian = (q * spectrum) @ q.T
  hessian = (hessian + hessian.T) / 2
  x_star = rng.standard_normal(dim)
  noise_map = (q * (noise / np.sqrt(spectrum))) @ q.T  # sigma H^{-1/2}

  def targets(count: int, centre: bool) -> np.ndarray:
    z = rng.standard_normal((count, dim))
    if centre:
      z -= z.mean(axis=0)
    return (x_star + z @ noise_map).astype(np.float32)

  dataset = Dataset(
    x_train=targets(int(num_train), centre=True),
    y_train=np.zeros(int(num_train), np.float32),
    x_val=targets(int(num_eval), centre=False),
    y_val=np.zeros(int(num_eval), np.float32),
    x_test=targets(int(num_eval), centre=False),
    y_test=np.zeros(int(num_eval), np.float32),
    num_classes=None,
    name="quadratic",
  )
  return Quadratic(
    hessian=hessian.astype(np.float32),
    x_star=x_star.astype(np.float32),
    eigenvalues=spectrum,
    L=float(spectrum[-1]),
    mu=float(spectrum[0]),
    noise=float(noise),
    dataset=dataset,
  )


class LinearRegression(NamedTuple):
  """A linear-regression problem and its known answers.

  Attributes:
    dataset: features ``x`` float32 ``(n, d)``, targets ``y`` float32 ``(n,)``.
    w_true: the weights that generated the targets, float32 ``(d,)``.
    w_star: the least-squares optimum on the training split, float32 ``(d,)``.
    L: largest eigenvalue of the training Hessian ``X^T X / n``.
    mu: smallest eigenvalue of the training Hessian.
  """

  dataset: Dataset
  w_true: np.ndarray
  w_star: np.ndarray
  L: float
  mu: float


def linear_regression(
  n: int,
  d: int,
  *,
  noise: float,
  condition_number: float,
  num_eval: int | None = None,
  seed: int = 0,
) -> LinearRegression:
  """Gaussian features with a prescribed covariance spectrum and noisy linear targets.

  Rows are ``x ~ N(0, Sigma)`` with ``Sigma = V diag(s) V^T``, ``V`` Haar-random
  orthogonal and ``s`` log-spaced from ``1 / condition_number`` to 1; targets
  are ``y = x^T w_true + noise * eps`` with ``w_true ~ N(0, I / d)`` and ``eps ~
  N(0, 1)``. The loss ``1/2 mean_i (x_i^T w - y_i)^2`` (no bias) has Hessian
  ``X^T X / n`` on the training split, whose extreme eigenvalues are exposed as
  ``L`` and ``mu`` (for ``n >> d`` close to 1 and ``1 / condition_number``); its
  minimiser ``w_star`` solves the normal equations ``X^T X w = X^T y``.

  Args:
    n: number of training examples, >= ``d``.
    d: number of features, >= 1.
    noise: standard deviation of the target noise, >= 0.
    condition_number: ratio of the largest to the smallest eigenvalue of the
      feature covariance, >= 1.
    num_eval: number of validation and of test examples; default ``n // 4``
      (at least 1).
    seed: seed of everything random.

  Returns:
    A :class:`LinearRegression`.

  Example:
    >>> p = lrlab.data.linear_regression(1000, 10, noise=0.1, condition_number=100.0)
    >>> X, y = p.dataset.x_train, p.dataset.y_train
    >>> bool(np.allclose(X.T @ (X @ p.w_star - y) / len(y), 0, atol=1e-4))
    True
  """
  d = _checks.count("d", d, 1)  # refuses None and bools, which check lets through
  n = _checks.count("n", n, 1)
  if n < d:
    raise ValueError(f"n must be an integer >= d={d}; got {n!r}.")
  _checks.check_given(noise=noise, condition_number=condition_number)
  _checks.check_nonnegative("noise", noise)
  _checks.check("condition_number", condition_number, lambda c: np.isfinite(c) & (c >= 1), ">= 1")
  num_eval = _checks.count("num_eval", max(n // 4, 1) if num_eval is None else num_eval, 1)
  seed = _checks.count("seed", seed, 0)  # None would draw another problem on every call

  rng = np.random.default_rng(seed)
  spectrum = np.geomspace(1 / condition_number, 1.0, d)
  root = _orthogonal(d, rng) * np.sqrt(spectrum)  # Sigma = root @ root.T
  w_true = rng.standard_normal(d) / np.sqrt(d)

  def sample(count: int) -> tuple[np.ndarray, np.ndarray]:
    x = (rng.standard_normal((count, d)) @ root.T).astype(np.float32)
    y = x.astype(np.float64) @ w_true + noise * rng.standard_normal(count)
    return x, y.astype(np.float32)

  (x_train, y_train), (x_val, y_val), (x_test, y_test) = (
    sample(n),
    sample(num_eval),
    sample(num_eval),
  )
  x64 = x_train.astype(np.float64)
  w_star = np.linalg.lstsq(x64, y_train.astype(np.float64), rcond=None)[0]
  curvatures = np.linalg.eigvalsh(x64.T @ x64 / n)
  dataset = Dataset(
    x_train=x_train,
    y_train=y_train,
    x_val=x_val,
    y_val=y_val,
    x_test=x_test,
    y_test=y_test,
    num_classes=None,
    name="linreg",
  )
  return LinearRegression(
    dataset=dataset,
    w_true=w_true.astype(np.float32),
    w_star=w_star.astype(np.float32),
    L=float(curvatures[-1]),
    mu=float(curvatures[0]),
  )
