"""Slow NumPy references for the optimizers' rules (float64; none of them calls lrlab).

Each function transliterates the algorithm box of the PyTorch documentation
(https://pytorch.org/docs/stable/optim.html), which follows the papers, one
parameter at a time and one step at a time. Each runs ``steps`` steps of a
:class:`Problem` and returns the parameters after every step, as a dict of
arrays of shape ``(steps, *shape)``. ``lr`` may be a number or a function of
the 0-based step. ``l1`` adds ``l1 * sign(p)`` to the gradient (lrlab's extra
coupled penalty, not in PyTorch).
"""

import dataclasses

import numpy as np


@dataclasses.dataclass(frozen=True)
class Problem:
  """A quadratic with gradient noise: ``g_t = h * (p - c) + n_t`` per parameter."""

  params: dict[str, np.ndarray]
  curvature: dict[str, np.ndarray]
  target: dict[str, np.ndarray]
  noise: dict[str, np.ndarray]  # (steps, *shape)

  @property
  def steps(self) -> int:
    return next(iter(self.noise.values())).shape[0]

  def grad(self, params, t):
    return {k: self.curvature[k] * (params[k] - self.target[k]) + self.noise[k][t] for k in params}


def make_problem(seed=0, steps=60, noise=0.3, curvature=(0.5, 3.0)):
  """A two-parameter problem, ``{'w': (3, 2), 'b': (2,)}``, with float32 data."""
  rng = np.random.default_rng(seed)
  shapes = {"w": (3, 2), "b": (2,)}
  f32 = lambda x: np.asarray(x, np.float32)
  return Problem(
    params={k: f32(rng.normal(size=s)) for k, s in shapes.items()},
    curvature={k: f32(rng.uniform(*curvature, size=s)) for k, s in shapes.items()},
    target={k: f32(rng.normal(size=s)) for k, s in shapes.items()},
    noise={k: f32(noise * rng.normal(size=(steps, *s))) for k, s in shapes.items()},
  )


def _rate(lr, t):
  return lr(t) if callable(lr) else lr


def _run(problem, step, state, steps):
  """Drive ``step(p, g, state, t) -> (p, state)`` over every parameter."""
  params = {k: v.astype(np.float64) for k, v in problem.params.items()}
  states = {k: state(v) for k, v in params.items()}
  trajectory = {k: [] for k in params}
  for t in range(steps or problem.steps):
    grads = problem.grad(params, t)
    for k in params:
      params[k], states[k] = step(params[k], grads[k], states[k], t)
      trajectory[k].append(params[k].copy())
  return {k: np.stack(v) for k, v in trajectory.items()}


def _decayed_moments(p, g, m, v, lr, t, b1, b2, weight_decay, decoupled, l1):
  """Adam's weight decay (AdamW's ``p *= 1 - lr * weight_decay`` first when ``decoupled``, else
  coupled into ``g``) and moments: ``(p, m, v)``."""
  if decoupled:
    p = p - _rate(lr, t) * weight_decay * p
    g = _coupled(g, p, 0.0, l1)
  else:
    g = _coupled(g, p, weight_decay, l1)
  return p, b1 * m + (1 - b1) * g, b2 * v + (1 - b2) * g**2


def _coupled(g, p, weight_decay, l1):
  if weight_decay != 0:
    g = g + weight_decay * p
  if l1 != 0:
    g = g + l1 * np.sign(p)
  return g


def sgd(
  problem, lr, momentum=0.0, dampening=0.0, nesterov=False, weight_decay=0.0, l1=0.0, steps=None
):
  def step(p, g, buf, t):
    g = _coupled(g, p, weight_decay, l1)
    if momentum != 0:
      buf = g.copy() if t == 0 else momentum * buf + (1 - dampening) * g
      g = g + momentum * buf if nesterov else buf
    return p - _rate(lr, t) * g, buf

  return _run(problem, step, lambda p: None, steps)


def adagrad(
  problem,
  lr,
  eps=1e-10,
  initial_accumulator_value=0.0,
  lr_decay=0.0,
  weight_decay=0.0,
  l1=0.0,
  steps=None,
):
  def step(p, g, state_sum, t):
    g = _coupled(g, p, weight_decay, l1)
    clr = _rate(lr, t) / (1 + t * lr_decay)
    state_sum = state_sum + g * g
    return p - clr * g / (np.sqrt(state_sum) + eps), state_sum

  return _run(problem, step, lambda p: np.full_like(p, initial_accumulator_value), steps)


def rmsprop(
  problem,
  lr,
  alpha=0.99,
  eps=1e-8,
  momentum=0.0,
  centered=False,
  weight_decay=0.0,
  l1=0.0,
  steps=None,
):
  def step(p, g, state, t):
    v, g_ave, buf = state
    g = _coupled(g, p, weight_decay, l1)
    v = alpha * v + (1 - alpha) * g**2
    v_tilde = v
    if centered:
      g_ave = alpha * g_ave + (1 - alpha) * g
      v_tilde = v_tilde - g_ave**2
    if momentum > 0:
      buf = momentum * buf + g / (np.sqrt(v_tilde) + eps)
      p = p - _rate(lr, t) * buf
    else:
      p = p - _rate(lr, t) * g / (np.sqrt(v_tilde) + eps)
    return p, (v, g_ave, buf)

  zeros = lambda p: (np.zeros_like(p), np.zeros_like(p), np.zeros_like(p))
  return _run(problem, step, zeros, steps)


def adadelta(problem, lr=1.0, rho=0.9, eps=1e-6, weight_decay=0.0, l1=0.0, steps=None):
  def step(p, g, state, t):
    v, u = state
    g = _coupled(g, p, weight_decay, l1)
    v = v * rho + g**2 * (1 - rho)
    delta = np.sqrt(u + eps) / np.sqrt(v + eps) * g
    u = u * rho + delta**2 * (1 - rho)
    return p - _rate(lr, t) * delta, (v, u)

  return _run(problem, step, lambda p: (np.zeros_like(p), np.zeros_like(p)), steps)


def adam(
  problem,
  lr,
  b1=0.9,
  b2=0.999,
  eps=1e-8,
  amsgrad=False,
  weight_decay=0.0,
  decoupled=False,
  l1=0.0,
  steps=None,
):
  """Adam, and AdamW with ``decoupled=True`` (``p *= 1 - lr * weight_decay`` first)."""

  def step(p, g, state, t):
    m, v, v_max = state
    n = t + 1
    p, m, v = _decayed_moments(p, g, m, v, lr, t, b1, b2, weight_decay, decoupled, l1)
    m_hat = m / (1 - b1**n)
    if amsgrad:
      v_max = np.maximum(v_max, v)
      v_hat = v_max / (1 - b2**n)
    else:
      v_hat = v / (1 - b2**n)
    return p - _rate(lr, t) * m_hat / (np.sqrt(v_hat) + eps), (m, v, v_max)

  zeros = lambda p: (np.zeros_like(p), np.zeros_like(p), np.zeros_like(p))
  return _run(problem, step, zeros, steps)


def adamax(problem, lr, b1=0.9, b2=0.999, eps=1e-8, weight_decay=0.0, l1=0.0, steps=None):
  def step(p, g, state, t):
    m, u = state
    g = _coupled(g, p, weight_decay, l1)
    m = b1 * m + (1 - b1) * g
    u = np.maximum(b2 * u, np.abs(g) + eps)
    return p - _rate(lr, t) * m / ((1 - b1 ** (t + 1)) * u), (m, u)

  return _run(problem, step, lambda p: (np.zeros_like(p), np.zeros_like(p)), steps)


def nadam(
  problem,
  lr,
  b1=0.9,
  b2=0.999,
  eps=1e-8,
  momentum_decay=4e-3,
  weight_decay=0.0,
  decoupled=False,
  l1=0.0,
  steps=None,
):
  """NAdam; the product of the momentum schedule is recomputed from scratch each step."""

  def mu(i):
    return b1 * (1 - 0.5 * 0.96 ** (i * momentum_decay))

  def step(p, g, state, t):
    m, v = state
    n = t + 1
    if decoupled:
      p = p - _rate(lr, t) * weight_decay * p
      g = _coupled(g, p, 0.0, l1)
    else:
      g = _coupled(g, p, weight_decay, l1)
    product = np.prod([mu(i) for i in range(1, n + 1)])
    m = b1 * m + (1 - b1) * g
    v = b2 * v + (1 - b2) * g**2
    m_hat = mu(n + 1) * m / (1 - product * mu(n + 1)) + (1 - mu(n)) * g / (1 - product)
    v_hat = v / (1 - b2**n)
    return p - _rate(lr, t) * m_hat / (np.sqrt(v_hat) + eps), (m, v)

  return _run(problem, step, lambda p: (np.zeros_like(p), np.zeros_like(p)), steps)


def radam(
  problem,
  lr,
  b1=0.9,
  b2=0.999,
  eps=1e-8,
  weight_decay=0.0,
  decoupled=False,
  l1=0.0,
  steps=None,
):
  """RAdam: the momentum step until rho_t > 5, then the rectified adaptive step."""
  rho_inf = 2 / (1 - b2) - 1

  def step(p, g, state, t):
    m, v = state
    n = t + 1
    p, m, v = _decayed_moments(p, g, m, v, lr, t, b1, b2, weight_decay, decoupled, l1)
    m_hat = m / (1 - b1**n)
    rho = rho_inf - 2 * n * b2**n / (1 - b2**n)
    if rho > 5:
      r = np.sqrt((rho - 4) * (rho - 2) * rho_inf / ((rho_inf - 4) * (rho_inf - 2) * rho))
      step = m_hat * r * np.sqrt(1 - b2**n) / (np.sqrt(v) + eps)
    else:
      step = m_hat
    return p - _rate(lr, t) * step, (m, v)

  return _run(problem, step, lambda p: (np.zeros_like(p), np.zeros_like(p)), steps)
