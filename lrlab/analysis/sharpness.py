"""Sharpness: the top Hessian eigenvalue, by power iteration on Hessian-vector products."""

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from lrlab import _checks

Params = Any


def hessian_vector_product(
  loss_fn: Callable[[Params], Any], params: Params, vector: Params, *, has_aux: bool = False
) -> Params:
  """``H v``, the Hessian of ``loss_fn`` at ``params`` times ``vector``, without forming ``H``.

  Forward-over-reverse differentiation: ``jax.jvp(jax.grad(loss_fn), (params,),
  (vector,))``, costing about two gradient evaluations.

  Args:
    loss_fn: ``params -> scalar loss`` (or ``(loss, aux)`` with ``has_aux``).
    params: the point, any pytree of float arrays.
    vector: a pytree with the structure and shapes of ``params``.
    has_aux: ``loss_fn`` returns ``(loss, aux)``; ``aux`` is ignored.

  Returns:
    ``H v`` as a pytree like ``params``.

  Example:
    >>> f = lambda x: 0.5 * x @ jnp.diag(jnp.array([1.0, 3.0])) @ x
    >>> lrlab.analysis.hessian_vector_product(f, jnp.zeros(2), jnp.array([1.0, 1.0]))
    Array([1., 3.], dtype=float32)
  """
  grad_fn = jax.grad(loss_fn, has_aux=has_aux)
  gradient = (lambda p: grad_fn(p)[0]) if has_aux else grad_fn
  return jax.jvp(gradient, (params,), (vector,))[1]


def _dot(a: Params, b: Params) -> jax.Array:
  return sum(jnp.vdot(x, y) for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True))


def _power_iteration(
  matvec: Callable[[Params], Params], v: Params, num_iterations: int, tol: float
) -> tuple[jax.Array, jax.Array]:
  """Rayleigh quotient ``v^T A v`` and ``||A v||`` (tends to the spectral radius), iterated."""

  def cond(state):
    i, _, eig, previous, _ = state
    converged = jnp.abs(eig - previous) <= tol * jnp.abs(eig)
    return (i < num_iterations) & ~(converged & (i > 1))

  def body(state):
    i, v, eig, _, _ = state
    w = matvec(v)
    new_eig = _dot(v, w)
    norm = jnp.sqrt(_dot(w, w))
    safe = jnp.where(norm > 0, norm, 1.0)
    v = jax.tree.map(lambda wi, vi: jnp.where(norm > 0, wi / safe, vi), w, v)
    return i + 1, v, new_eig, eig, norm

  eig0 = jnp.zeros((), jnp.result_type(*jax.tree.leaves(v)))
  state = (jnp.int32(0), v, eig0, eig0 + jnp.inf, eig0)
  _, _, eig, _, norm = lax.while_loop(cond, body, state)
  return eig, norm


def sharpness(
  loss_fn: Callable[[Params], Any],
  params: Params,
  *,
  key: jax.Array,
  num_iterations: int = 100,
  tol: float = 0.0,
  has_aux: bool = False,
) -> jax.Array:
  """The largest eigenvalue of the Hessian of ``loss_fn`` at ``params`` (the "sharpness").

  Power iteration ``v <- H v / ||H v||`` from a random Gaussian ``v`` (drawn
  with ``key``) over the whole parameter pytree, with Hessian-vector products
  (:func:`hessian_vector_product`); the estimate is the Rayleigh quotient
  ``v^T H v``. Power iteration finds the eigenvalue of largest magnitude, and
  ``||H v||`` tends to it (the spectral radius ``r``); where ``v^T H v`` falls short
  of ``r`` (by over 0.1%: the largest magnitude is negative, or a pair ``lambda`` and
  about ``-lambda``, where ``v`` swings between the two and ``v^T H v`` lands anywhere
  between), a second run on ``H + r I``, whose eigenvalues are all ``>= 0``, recovers
  the largest (most positive) one; the larger of the two runs' estimates is returned (each is
  a Rayleigh quotient, so at most ``lambda_max``). The error shrinks like
  ``(lambda_2 / lambda_1)^k``.

  Gradient descent on a quadratic is stable iff ``lr < 2 / sharpness``; on
  neural networks full-batch GD drives the sharpness up to about ``2 / lr``
  and hovers there (the edge of stability).

  Jit- and vmap-able: the loop is a ``lax.while_loop``. A non-finite loss or
  Hessian gives NaN rather than an error.

  Args:
    loss_fn: ``params -> scalar loss`` (close over a fixed batch), or
      ``(loss, aux)`` with ``has_aux``.
    params: the point, any pytree of float arrays.
    key: a ``jax.random`` key for the starting vector.
    num_iterations: maximum number of Hessian-vector products per run, an integer >= 1.
    tol: stop early once the estimate changes by at most ``tol`` relative
      between iterations, >= 0; 0 runs all ``num_iterations``.
    has_aux: ``loss_fn`` returns ``(loss, aux)``.

  Returns:
    A scalar array, the estimated top eigenvalue.

  Example:
    >>> f = lambda x: 0.5 * x @ jnp.diag(jnp.array([1.0, 4.0, 2.0])) @ x
    >>> round(float(lrlab.analysis.sharpness(f, jnp.ones(3), key=jax.random.key(0))), 4)
    4.0

  References:
    Cohen, Kaur, Li, Kolter & Talwalkar, "Gradient Descent on Neural Networks
    Typically Occurs at the Edge of Stability", ICLR 2021.
    https://arxiv.org/abs/2103.00065
  """
  _checks.check(
    "num_iterations",
    num_iterations,
    lambda n: (n >= 1) & (n == np.floor(n)),
    "an integer >= 1",
  )
  _checks.check_nonnegative("tol", tol)
  leaves, treedef = jax.tree.flatten(params)
  if not leaves:
    raise ValueError("params must contain at least one array; got an empty pytree.")
  keys = jax.random.split(key, len(leaves))
  v = treedef.unflatten(
    [
      jax.random.normal(k, jnp.shape(x), jnp.result_type(x))
      for k, x in zip(keys, leaves, strict=True)
    ]
  )
  norm = jnp.sqrt(_dot(v, v))
  v = jax.tree.map(lambda x: x / norm, v)
  hvp = lambda u: hessian_vector_product(loss_fn, params, u, has_aux=has_aux)
  dominant, radius = _power_iteration(hvp, v, int(num_iterations), tol)

  # ``radius`` = ||H v|| -> the spectral radius. A Rayleigh quotient below it means the top
  # of |spectrum| is negative or a +/- pair (eigenvalues lambda and about -lambda, where
  # v oscillates and v^T H v is anything in between): H + radius I has the same top
  # eigenvector with every eigenvalue >= 0, so its power iteration finds lambda_max + radius.
  # Both estimates are Rayleigh quotients of H at unit vectors, so both are <= lambda_max: keep
  # the larger. Where the run on H had not converged (a positive top eigenvalue close to the next
  # one), the shift was taken for nothing and its slower run alone fell further short.
  def shifted(radius):
    matvec = lambda u: jax.tree.map(lambda h, x: h + radius * x, hvp(u), u)
    return jnp.maximum(dominant, _power_iteration(matvec, v, int(num_iterations), tol)[0] - radius)

  needs_shift = dominant < (1 - 1e-3) * radius
  return lax.cond(needs_shift, shifted, lambda radius: dominant, radius)
