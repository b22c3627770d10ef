"""Run an lrlab/Optax transformation or a torch.optim optimizer on a reference Problem.

Both runners return the parameters after every step as a dict of float arrays
of shape ``(steps, *shape)``, like the functions of ``reference``.
"""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax

from tests.transforms.reference import Problem

TOLERANCE = {"rtol": 1e-5, "atol": 1e-6}  # float32 trajectories vs a float64 reference


def run_optax(tx: optax.GradientTransformation, problem: Problem, steps=None):
  """Run ``tx`` for ``steps`` steps under one ``jit``, float32 throughout."""
  steps = steps or problem.steps
  curvature, target = problem.curvature, problem.target
  noise = {k: v[:steps] for k, v in problem.noise.items()}

  def step(carry, noise_t):
    params, state = carry
    grads = jax.tree.map(lambda p, h, c, n: h * (p - c) + n, params, curvature, target, noise_t)
    updates, state = tx.update(grads, state, params)
    params = optax.apply_updates(params, updates)
    return (params, state), params

  @jax.jit
  def run(params):
    return jax.lax.scan(step, (params, tx.init(params)), noise)[1]

  params = jax.tree.map(jnp.asarray, problem.params)
  return jax.tree.map(np.asarray, run(params))


def run_torch(torch, make_optimizer, problem: Problem, steps=None, lr_lambda=None):
  """Run ``make_optimizer(list_of_tensors)``; ``lr_lambda`` drives a ``LambdaLR``."""
  steps = steps or problem.steps
  params = {k: torch.tensor(v) for k, v in problem.params.items()}
  curvature = {k: torch.tensor(v) for k, v in problem.curvature.items()}
  target = {k: torch.tensor(v) for k, v in problem.target.items()}
  noise = {k: torch.tensor(v) for k, v in problem.noise.items()}
  optimizer = make_optimizer(list(params.values()))
  scheduler = None
  if lr_lambda is not None:
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_lambda)
  trajectory = {k: [] for k in params}
  with torch.no_grad():
    for t in range(steps):
      for k, p in params.items():
        p.grad = curvature[k] * (p - target[k]) + noise[k][t]
      optimizer.step()
      if scheduler is not None:
        scheduler.step()
      for k, p in params.items():
        trajectory[k].append(p.detach().numpy().copy())
  return {k: np.stack(v) for k, v in trajectory.items()}


def assert_close(actual, expected, **tolerance):
  """Trajectories agree leaf by leaf (default: float32 precision)."""
  chex.assert_trees_all_close(actual, expected, **(tolerance or TOLERANCE))
