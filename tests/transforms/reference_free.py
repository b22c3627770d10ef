"""Slow NumPy transliterations of the learning-rate-free and schedule-free algorithms.

Each is the paper's algorithm as its authors' package computes it (``prodigyopt``,
``dadaptation``, ``dog-optimizer``, ``schedulefree``; the packages themselves are
compared in ``test_authors_packages.py`` where installed); a docstring says where
the package and the paper differ.

Float64, one step at a time, on all parameters of a :class:`reference.Problem`
flattened into one vector (these rules use norms and inner products over the
whole pytree). None of them calls lrlab or Optax. Each returns the parameters
after every step as a dict of arrays ``(steps, *shape)`` and a dict of
per-step diagnostics (the applied step size, ``d``, the evaluation point, ...).
``lr`` may be a number or a function of the 0-based step.

Where ``optax.contrib`` deviates, a keyword (``optax=True`` or a named flag)
switches the transliteration to Optax's variant, so a test can show which one
Optax computes; the authors' algorithm is always the default.
"""

import numpy as np

from tests.transforms.reference import Problem

KEYS = ("b", "w")  # the order of jax.tree.leaves for the problem's dicts


def flatten(tree):
  return np.concatenate([np.ravel(tree[k]).astype(np.float64) for k in KEYS])


def unflatten(vector, like):
  out, start = {}, 0
  for k in KEYS:
    size = np.size(like[k])
    out[k] = vector[start : start + size].reshape(np.shape(like[k]))
    start += size
  return out


def value(problem: Problem, params, t):
  """The stochastic loss whose gradient is ``problem.grad``: 0.5 h (p - c)^2 + n_t p."""
  return sum(
    float(
      np.sum(
        0.5 * problem.curvature[k] * (params[k] - problem.target[k]) ** 2
        + problem.noise[k][t] * params[k]
      )
    )
    for k in params
  )


def _rate(lr, t):
  return lr(t) if callable(lr) else lr


def _drive(problem, step, state, steps):
  """Run ``step(x, g, f, state, t) -> (x, state, info)``; stack trajectories and infos."""
  x = flatten(problem.params)
  xs, infos = [], []
  for t in range(steps or problem.steps):
    params = unflatten(x, problem.params)
    g = flatten(problem.grad(params, t))
    f = value(problem, params, t)
    x, state, info = step(x, g, f, state, t)
    xs.append(x.copy())
    infos.append(info)
  trajectory = {k: np.stack([unflatten(v, problem.params)[k] for v in xs]) for k in KEYS}
  keys = infos[0].keys()
  stacked = {}
  for key in keys:
    values = [info[key] for info in infos]
    if isinstance(values[0], np.ndarray):
      stacked[key] = {k: np.stack([unflatten(v, problem.params)[k] for v in values]) for k in KEYS}
    else:
      stacked[key] = np.asarray(values)
  return trajectory, stacked


def dog(problem, lr=1.0, reps_rel=1e-6, d0=None, eps=1e-8, steps=None):
  """Ivgi et al. 2023, Algorithm 1 (DoG), with a step multiplier ``lr``; G starts at ``eps``.

  The package's G_0 = ||g_0||^2 + eps (the paper has no eps: ``eps=0``).
  """
  x0 = flatten(problem.params)
  r_eps = d0 if d0 is not None else reps_rel * (1 + np.linalg.norm(x0))

  def step(x, g, f, state, t):
    rbar, big_g = state
    rbar = max(rbar, np.linalg.norm(x - x0))  # rbar_t = max(||x_t - x_0||, rbar_{t-1})
    big_g = big_g + g @ g  # G_t = G_{t-1} + ||g_t||^2
    eta = _rate(lr, t) * rbar / np.sqrt(big_g)  # eta_t = rbar_t / sqrt(G_t)
    return x - eta * g, (rbar, big_g), {"eta": eta}

  return _drive(problem, step, (r_eps, eps), steps)


def prodigy(
  problem,
  lr=1.0,
  b1=0.9,
  b2=0.999,
  b3=None,
  eps=1e-8,
  d0=1e-6,
  weight_decay=0.0,
  bias_correction=False,
  growth_rate=np.inf,
  steps=None,
):
  """Mishchenko and Defazio 2023, Algorithm 4 (Prodigy, Adam version), as ``prodigyopt``.

  The package scales r and s by d_k / d_0 instead of (1 - b3) (it cancels in the
  ratio), uses the updated d_{k+1} in the denominator's d * eps (the paper: d_k) and
  bounds the growth of d. ``bias_correction=True`` multiplies the step and the
  weights by Adam's bias correction: the package's option, always on in Optax.
  """
  x0 = flatten(problem.params)
  b3 = np.sqrt(b2) if b3 is None else b3
  zeros = np.zeros_like(x0)

  def step(x, g, f, state, k):
    d, d_max, m, v, r, s = state
    gamma = _rate(lr, k)
    if bias_correction:
      gamma = gamma * np.sqrt(1 - b2 ** (k + 1)) / (1 - b1 ** (k + 1))
    m = b1 * m + (1 - b1) * d * g
    v = b2 * v + (1 - b2) * d**2 * g**2
    r = b3 * r + (d / d0) * gamma * d * (g @ (x0 - x))
    s = b3 * s + (d / d0) * gamma * d * g
    d_hat = r / np.sum(np.abs(s))
    d_max = max(d_max, d_hat)
    d_next = min(d_max, (max(d, d_hat) if d == d0 else d) * growth_rate)
    x = x - gamma * d * (m / (np.sqrt(v) + d_next * eps) + weight_decay * x)
    return x, (d_next, d_max, m, v, r, s), {"step": gamma * d, "d": d_next}

  return _drive(problem, step, (d0, d0, zeros, zeros, 0.0, zeros), steps)


def dadapt_sgd(problem, lr=1.0, momentum=0.0, d0=1e-6, steps=None):
  """Defazio and Mishchenko 2023, SGD with D-Adaptation (momentum by primal averaging).

  The paper's numerator ||s||^2 - sum lambda^2 ||g||^2; the package accumulates the
  equal 2 sum lambda <g, s> and defaults to no momentum.
  """
  x0 = flatten(problem.params)

  def step(x, g, f, state, k):
    d, s, z, weighted, g0 = state
    if g0 == 0:
      g0 = np.linalg.norm(g)  # G = ||g_0||
    lam = d * _rate(lr, k) / g0  # lambda_k = d_k gamma_k / G
    s = s + lam * g
    z = z - lam * g
    weighted = weighted + lam**2 * (g @ g)
    d_hat = (s @ s - weighted) / np.linalg.norm(s)
    d = max(d, d_hat)
    x = momentum * x + (1 - momentum) * z
    return x, (d, s, z, weighted, g0), {"step": lam, "d": d}

  return _drive(problem, step, (d0, np.zeros_like(x0), x0.copy(), 0.0, 0.0), steps)


def dadapt_adam(
  problem,
  lr=1.0,
  b1=0.9,
  b2=0.999,
  eps=1e-8,
  d0=1e-6,
  weight_decay=0.0,
  bias_correction=False,
  steps=None,
):
  """Defazio and Mishchenko 2023, Adam with D-Adaptation, as ``dadaptation.DAdaptAdam``.

  <g_k, s_k> is weighed with A_k, the second moment before g_k enters it, as the
  package's ``denom`` is taken before ``exp_avg_sq`` is updated. ``bias_correction=True``
  multiplies lambda_k by Adam's bias correction: the package's option, always on in Optax.
  """
  b3 = np.sqrt(b2)
  zeros = np.zeros_like(flatten(problem.params))

  def step(x, g, f, state, k):
    d, m, v, r, s = state
    lam = d * _rate(lr, k)
    if bias_correction:
      lam = lam * np.sqrt(1 - b2 ** (k + 1)) / (1 - b1 ** (k + 1))
    r = b3 * r + (1 - b3) * lam * (g @ (s / (np.sqrt(v) + eps)))  # A_k
    m = b1 * m + (1 - b1) * lam * g
    v = b2 * v + (1 - b2) * g**2
    s = b3 * s + (1 - b3) * lam * g
    d_next = max(d, r / ((1 - b3) * np.sum(np.abs(s))))
    x = x - m / (np.sqrt(v) + eps) - weight_decay * lam * x
    return x, (d_next, m, v, r, s), {"step": lam, "d": d_next}

  return _drive(problem, step, (d0, zeros, zeros, 0.0, zeros), steps)


def schedule_free(
  problem,
  lr,
  base="sgd",
  b1=0.9,
  b2=0.999,
  eps=1e-8,
  warmup_steps=0,
  weight_lr_power=2.0,
  weight_decay=0.0,
  bias_correction="moment",
  optax=False,
  steps=None,
):
  """Defazio et al. 2024, Algorithm 1 (Schedule-Free AdamW) and its SGD form, as ``schedulefree``.

  The gradient is taken at y, the recorded parameters are y, and ``infos["x"]``
  is the evaluation point x. The weights use the running maximum of the step (the
  package's ``lr_max``; the paper's use the step itself). AdamW's
  ``bias_correction="moment"`` corrects v as Adam (the package's ``AdamWScheduleFree``);
  ``"rate"`` folds sqrt(1 - b2^t) into the step, the paper's (``AdamWScheduleFreePaper``).
  ``optax=True``: optax.contrib.schedule_free_sgd /
  _adamw's variant: its warmup schedule starts at 0 at count 0 for the step of
  z, the averaging weights read the schedule at count + 1 and use its running
  maximum, and AdamW bias-corrects the second moment (eps not scaled) and
  leaves the correction out of the weights.
  """

  def warm(t):  # t is 1-based
    return min(1.0, t / warmup_steps) if warmup_steps > 0 else 1.0

  def step(y, g, f, state, k):
    z, x, v, weight_sum, max_lr = state
    t = k + 1
    if optax:
      schedule = lambda count: (
        _rate(lr, count) * (min(1.0, count / warmup_steps) if warmup_steps > 0 else 1.0)
      )
      gamma = schedule(k)  # the base optimizer's own count starts at 0
      max_lr = max(max_lr, schedule(k + 1))  # the weights read step_count = count + 1
      weight = max_lr**weight_lr_power
    else:
      gamma = _rate(lr, k) * warm(t)
      if base == "adam" and bias_correction == "rate":
        gamma = gamma * np.sqrt(1 - b2**t)
      max_lr = max(max_lr, gamma)
      weight = max_lr**weight_lr_power
    if base == "adam":
      v = b2 * v + (1 - b2) * g**2
      corrected = optax or bias_correction == "moment"
      v_hat = v / (1 - b2**t) if corrected else v  # Adam's correction of v, or in gamma_t
      direction = g / (np.sqrt(v_hat) + eps)
    else:
      direction = g
    z = z - gamma * (direction + weight_decay * y)
    weight_sum = weight_sum + weight
    c = weight / weight_sum if weight_sum > 0 else 0.0
    x = (1 - c) * x + c * z
    y = (1 - b1) * z + b1 * x
    return y, (z, x, v, weight_sum, max_lr), {"x": x.copy(), "step": gamma}

  x0 = flatten(problem.params)
  return _drive(problem, step, (x0.copy(), x0.copy(), np.zeros_like(x0), 0.0, 0.0), steps)


def sps(
  problem,
  lr=1.0,
  c=0.5,
  max_step=1.0,
  f_star=0.0,
  margin=0.5,
  optax_scaling=None,
  steps=None,
):
  """Loizou et al. 2021, SGD with SPS_max: gamma = min((f - f*) / (c |g|^2), gamma_b).

  ``f_star=None`` estimates f* as min_s (f_s - margin |f_s|) (lrlab's documented
  estimate; the paper assumes f* known). ``optax_scaling=s``: optax.polyak_sgd
  with ``scaling=s`` (c = 1, the gap not clipped at 0, the scaling applied to the
  gradient before the Polyak step is computed from it).
  """

  def step(x, g, f, estimate, t):
    if optax_scaling is not None:
      s = optax_scaling
      u = -s * g
      gamma = min((f - f_star) / (u @ u), max_step)
      return x + gamma * u, estimate, {"step": gamma * s}
    if f_star is None:
      estimate = min(estimate, f - margin * abs(f))
      target = estimate
    else:
      target = f_star
    gamma = min(max(f - target, 0.0) / (c * (g @ g)), max_step)
    eta = _rate(lr, t) * gamma
    return x - eta * g, estimate, {"step": eta, "f_star": target}

  return _drive(problem, step, np.inf, steps)
