"""The gradient noise scale: the batch size at which a step's noise matches its signal.

McCandlish et al. (2018) model the steps ``S`` and examples ``E`` needed to reach a
target as ``S = S_min (1 + B_noise / B)``: below the noise scale ``B_noise`` doubling
the batch nearly halves the steps, above it the steps stop falling. Its simple form

    B_simple = tr(Sigma) / |G|^2,

with ``G`` the mean (full-batch) gradient and ``Sigma`` the covariance of one
example's gradient, equals ``B_noise`` when the Hessian is a multiple of the
identity, and is measured from gradient norms alone: the mean of ``B`` independent
example gradients has ``E |G_B|^2 = |G|^2 + tr(Sigma) / B``, so the squared norms
at two batch sizes give unbiased estimates of both parts.
"""

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from jax.typing import ArrayLike

from lrlab import _checks

Params = Any
Batch = Any


class NoiseScale(NamedTuple):
  """An estimate of the simple gradient noise scale and its two parts.

  Attributes:
    b_simple: ``tr(Sigma) / |G|^2`` (``inf`` where the estimate of ``|G|^2`` is not
      positive: the gradient is lost in the noise at the batch sizes measured; NaN where
      either estimate is not finite, as from a non-finite loss or gradient).
    trace_covariance: the estimate of ``tr(Sigma)``, the per-example gradient variance.
    gradient_sq_norm: the estimate of ``|G|^2``, the squared norm of the mean gradient.
  """

  b_simple: jax.Array
  trace_covariance: jax.Array
  gradient_sq_norm: jax.Array


def noise_scale(
  small_sq_norm: ArrayLike,
  big_sq_norm: ArrayLike,
  small_batch_size: ArrayLike,
  big_batch_size: ArrayLike,
) -> NoiseScale:
  r"""The simple noise scale from mean squared gradient norms measured at two batch sizes.

  With :math:`|G_b|^2` the squared norm of a gradient averaged over ``b`` independent
  examples (averaged over several draws), McCandlish et al.'s Appendix A estimators are

  .. math::

    |G|^2 \approx \frac{B_{big} |G_{big}|^2 - B_{small} |G_{small}|^2}{B_{big} - B_{small}},
    \qquad
    \operatorname{tr}(\Sigma) \approx \frac{|G_{small}|^2 - |G_{big}|^2}
                                          {1 / B_{small} - 1 / B_{big}},

  both unbiased because :math:`E|G_b|^2 = |G|^2 + \operatorname{tr}(\Sigma) / b`;
  :math:`B_{simple} = \operatorname{tr}(\Sigma) / |G|^2` is their ratio (average the
  norms over draws first, then divide, as the paper does with moving averages).
  Every argument may be an array (traced included); they broadcast.

  Args:
    small_sq_norm: mean of :math:`|G_{small}|^2` over draws.
    big_sq_norm: mean of :math:`|G_{big}|^2` over draws.
    small_batch_size: :math:`B_{small}`, > 0.
    big_batch_size: :math:`B_{big}`, > ``small_batch_size``.

  Returns:
    A :class:`NoiseScale`.

  Example:
    >>> # |G|^2 = 1 and tr(Sigma) = 8: E|G_b|^2 = 1 + 8 / b.
    >>> lrlab.analysis.noise_scale(1 + 8 / 2, 1 + 8 / 32, 2, 32).b_simple
    Array(8., dtype=float32)

  References:
    McCandlish, Kaplan, Amodei and OpenAI Dota Team, "An Empirical Model of
    Large-Batch Training", 2018, Appendix A. https://arxiv.org/abs/1812.06162
  """
  _checks.check_positive("small_batch_size", small_batch_size)
  _checks.check_positive("big_batch_size", big_batch_size)
  sizes = (small_batch_size, big_batch_size)
  if not _checks.is_traced(sizes) and np.any(np.asarray(sizes[1]) <= np.asarray(sizes[0])):
    raise ValueError(
      f"big_batch_size must be > small_batch_size={small_batch_size!r}; got {big_batch_size!r}."
    )
  small, big = (jnp.asarray(v, jnp.float32) for v in (small_sq_norm, big_sq_norm))
  b_small, b_big = (jnp.asarray(v, jnp.float32) for v in (small_batch_size, big_batch_size))
  gradient_sq_norm = (b_big * big - b_small * small) / (b_big - b_small)
  trace_covariance = (small - big) / (1 / b_small - 1 / b_big)
  positive = gradient_sq_norm > 0
  # A non-finite norm (a NaN loss, an overflow) measures nothing: NaN, not "lost in the noise".
  measured = jnp.isfinite(gradient_sq_norm) & jnp.isfinite(trace_covariance)
  ratio = trace_covariance / jnp.where(positive, gradient_sq_norm, 1.0)
  b_simple = jnp.where(measured, jnp.where(positive, ratio, jnp.inf), jnp.nan)
  return NoiseScale(b_simple, trace_covariance, gradient_sq_norm)


def _sq_norm(tree: Params) -> jax.Array:
  return sum(jnp.sum(jnp.square(leaf.astype(jnp.float32))) for leaf in jax.tree.leaves(tree))


def gradient_noise_scale(
  loss_fn: Callable[[Params, Batch], jax.Array],
  params: Params,
  small_batches: Batch,
  big_batches: Batch,
) -> NoiseScale:
  r"""Measure the simple noise scale :math:`B_{simple}` of ``loss_fn`` at ``params``.

  Each batch's gradient ``jax.grad(loss_fn)(params, batch)`` is a mean over its
  examples; the squared norms are averaged over the draws of each size and passed
  to :func:`noise_scale`. The estimate is unbiased for the parts
  :math:`|G|^2` and :math:`\operatorname{tr}(\Sigma)` of the distribution the
  examples are drawn from when they are drawn independently, e.g. uniformly with
  replacement from a training set (then :math:`G` is the full-batch gradient and
  :math:`\Sigma` the per-example covariance with divisor ``n``). The draws are
  processed one at a time (``lax.map``), so memory is that of one big batch.
  Pure and jit-able.

  Args:
    loss_fn: ``(params, batch) -> scalar``, the mean loss over the batch's examples.
    params: the point at which to measure.
    small_batches: a pytree of arrays ``(draws, B_small, ...)``.
    big_batches: a pytree of arrays ``(draws', B_big, ...)`` with ``B_big > B_small``.

  Returns:
    A :class:`NoiseScale`.

  Example:
    >>> # Example gradients N(1, 4^2 I) in 4 dimensions: |G|^2 = 4, tr(Sigma) = 64, B_simple = 16.
    >>> loss_fn = lambda w, batch: jnp.mean(batch @ w)  # example i's gradient is batch[i]
    >>> big = 1.0 + 4.0 * jax.random.normal(jax.random.key(0), (256, 64, 4))  # 256 draws of 64
    >>> scale = lrlab.analysis.gradient_noise_scale(loss_fn, jnp.zeros(4), big[:, :4], big)
    >>> bool(14 < scale.b_simple < 19)
    True

  References:
    McCandlish, Kaplan, Amodei and OpenAI Dota Team, "An Empirical Model of
    Large-Batch Training", 2018, Appendix A. https://arxiv.org/abs/1812.06162
  """
  sizes = {}
  for name, batches in (("small_batches", small_batches), ("big_batches", big_batches)):
    shapes = {leaf.shape[:2] if leaf.ndim >= 2 else None for leaf in jax.tree.leaves(batches)}
    if len(shapes) != 1 or None in shapes:
      raise ValueError(
        f"{name} must be arrays shaped (draws, batch_size, ...) with the same two leading "
        f"sizes; got leading shapes {sorted(map(str, shapes))}."
      )
    sizes[name] = shapes.pop()
  (small_draws, b_small), (big_draws, b_big) = sizes["small_batches"], sizes["big_batches"]
  for name, draws in (("small_batches", small_draws), ("big_batches", big_draws)):
    if draws < 1:
      raise ValueError(f"{name} must hold at least one draw (its leading axis); got {draws}.")
  if b_big <= b_small:
    raise ValueError(
      f"big_batches must hold more examples per draw than small_batches ({b_small}); got {b_big}."
    )
  grad = jax.grad(loss_fn)
  mean_sq_norm = lambda batches: jnp.mean(lax.map(lambda b: _sq_norm(grad(params, b)), batches))
  return noise_scale(mean_sq_norm(small_batches), mean_sq_norm(big_batches), b_small, b_big)
