"""Run a transformation on a reference Problem passing the loss as ``value=``, recording extras.

Like :func:`tests.transforms.runners.run_optax` (float32, one ``jit``), but every
update receives ``value=`` (the problem's stochastic loss, as lrlab's training
core passes it) and ``record(state, params)`` is stacked after every step.
"""

import jax
import jax.numpy as jnp
import numpy as np
import optax

from tests.transforms.reference import Problem


def run(tx, problem: Problem, steps=None, record=None, *, x64=False):
  """Return (parameters after every step, ``record(state, params)`` after every step).

  ``x64=True`` runs in float64 (under ``jax.enable_x64``), to compare an algorithm with
  its float64 transliteration where float32 rounding would dominate, e.g. while a
  learning-rate-free method's first steps move the parameters by 1e-7 of their size.
  """
  if x64:
    with jax.enable_x64(True):
      out = jax.jit(lambda: trajectory(tx, problem, steps, record, jnp.float64))()
      return jax.tree.map(np.asarray, out)
  return jax.tree.map(np.asarray, jax.jit(lambda: trajectory(tx, problem, steps, record))())


def trajectory(tx, problem, steps=None, record=None, dtype=jnp.float32):
  """Like :func:`run`, traceable (returns JAX arrays): vmap it over hyperparameters."""
  steps = steps or problem.steps
  cast = lambda tree: {k: jnp.asarray(v, dtype) for k, v in tree.items()}
  curvature, target = cast(problem.curvature), cast(problem.target)
  noise = cast({k: v[:steps] for k, v in problem.noise.items()})
  tx = optax.with_extra_args_support(tx)

  def loss(params, noise_t):
    return sum(
      jnp.sum(0.5 * curvature[k] * (params[k] - target[k]) ** 2 + noise_t[k] * params[k])
      for k in params
    )

  def step(carry, noise_t):
    params, state = carry
    value, grads = jax.value_and_grad(loss)(params, noise_t)
    updates, state = tx.update(grads, state, params, value=value)
    params = optax.apply_updates(params, updates)
    extra = record(state, params) if record is not None else ()
    return (params, state), (params, extra)

  params = cast(problem.params)
  return jax.lax.scan(step, (params, tx.init(params)), noise)[1]


def quadratic_run(tx, steps, *, curvature=(1.0, 10.0), dimension=8, value_offset=0.0):
  """Run ``tx`` on 0.5 sum(h (x - 1)^2) + offset from x = 0; return the losses after each step."""
  h = jnp.linspace(*curvature, dimension)
  loss = lambda x: 0.5 * jnp.sum(h * (x["x"] - 1.0) ** 2) + value_offset
  tx = optax.with_extra_args_support(tx)

  def step(carry, _):
    params, state = carry
    value, grads = jax.value_and_grad(loss)(params)
    updates, state = tx.update(grads, state, params, value=value)
    params = optax.apply_updates(params, updates)
    return (params, state), loss(params)

  @jax.jit
  def go():
    params = {"x": jnp.zeros(dimension)}
    return jax.lax.scan(step, (params, tx.init(params)), length=steps)[1]

  return np.asarray(go()) - value_offset, float(loss({"x": jnp.zeros(dimension)}) - value_offset)
