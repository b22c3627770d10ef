"""Independent NumPy references for every schedule (float64; none of them calls lrlab).

Where PyTorch defines a schedule by stepping (warm restarts, one-cycle's phase
table, cyclical's fractional cycle position), the reference steps or computes
the way PyTorch's documentation describes, not the way lrlab does.
"""

import math

import numpy as np


def constant(t, lr):
  return np.full(len(t), lr, dtype=np.float64)


def step_decay(t, lr, step_size, gamma=0.1):
  return np.array([lr * gamma ** (s // step_size) for s in t])


def multistep_decay(t, lr, milestones, gamma=0.1):
  return np.array([lr * gamma ** sum(1 for m in milestones if m <= s) for s in t])


def exponential_decay(t, lr, gamma, step_size=1, staircase=False, min_lr=0.0):
  out = []
  for s in t:
    p = s // step_size if staircase else s / step_size
    out.append(max(lr * gamma**p, min_lr))
  return np.array(out)


def inverse_time_decay(t, lr, gamma, step_size=1, staircase=False):
  p = np.floor(t / step_size) if staircase else t / step_size
  return lr / (1 + gamma * p)


def polynomial_decay(t, lr, total_steps, power=1.0, min_lr=0.0):
  return np.array(
    [min_lr + (lr - min_lr) * (1 - min(s, total_steps) / total_steps) ** power for s in t]
  )


def linear(t, start_lr, end_lr, total_steps):
  return np.array([start_lr + (end_lr - start_lr) * min(s, total_steps) / total_steps for s in t])


def cosine_annealing(t, lr, total_steps, min_lr=0.0):
  return np.array(
    [
      min_lr + (lr - min_lr) * (1 + math.cos(math.pi * min(s, total_steps) / total_steps)) / 2
      for s in t
    ]
  )


def warm_restarts(t, lr, period, period_mult=1, min_lr=0.0):
  """PyTorch's stepping: T_cur += 1; on reaching T_i, restart and grow T_i."""
  out, t_cur, t_i = [], 0, period
  for _ in t:
    out.append(min_lr + (lr - min_lr) * (1 + math.cos(math.pi * t_cur / t_i)) / 2)
    t_cur += 1
    if t_cur >= t_i:
      t_cur -= t_i
      t_i *= period_mult
  return np.array(out)


def cyclical(t, base_lr, max_lr, step_size_up, step_size_down=None, policy="triangular", gamma=1.0):
  """PyTorch's CyclicLR formula, with the fractional position x of the cycle."""
  down = step_size_up if step_size_down is None else step_size_down
  total = step_size_up + down
  ratio = step_size_up / total
  out = []
  for s in t:
    cycle = math.floor(1 + s / total)
    x = 1.0 + s / total - cycle
    factor = x / ratio if x <= ratio else (x - 1) / (ratio - 1)
    scale = {"triangular": 1.0, "triangular2": 1 / 2.0 ** (cycle - 1), "exp_range": gamma**s}
    out.append(base_lr + (max_lr - base_lr) * factor * scale[policy])
  return np.array(out)


def one_cycle(
  t,
  max_lr,
  total_steps,
  pct_start=0.3,
  div_factor=25.0,
  final_div_factor=1e4,
  anneal_strategy="cos",
  three_phase=False,
):
  """PyTorch's phase table; steps past the end stay at the final rate."""
  initial = max_lr / div_factor
  final = initial / final_div_factor
  if three_phase:
    phases = [
      (pct_start * total_steps - 1, initial, max_lr),
      (2 * pct_start * total_steps - 2, max_lr, initial),
      (total_steps - 1, initial, final),
    ]
  else:
    phases = [(pct_start * total_steps - 1, initial, max_lr), (total_steps - 1, max_lr, final)]

  def interpolate(start, end, pct):
    if anneal_strategy == "cos":
      return end + (start - end) / 2 * (math.cos(math.pi * pct) + 1)
    return (end - start) * pct + start

  out = []
  for s in t:
    s = min(s, total_steps - 1)
    begin = 0.0
    for i, (end_step, start, end) in enumerate(phases):
      if s <= end_step or i == len(phases) - 1:
        out.append(interpolate(start, end, (s - begin) / (end_step - begin)))
        break
      begin = end_step
  return np.array(out)


def inverse_sqrt(t, lr, warmup_steps):
  return np.array([lr * min(s / warmup_steps, math.sqrt(warmup_steps / max(s, 1))) for s in t])


def warmup(t, inner, warmup_steps, start_lr=0.0):
  """``inner`` is a reference function of an array of steps."""
  peak = inner(np.array([0]))[0]
  out = []
  for s in t:
    if s < warmup_steps:
      out.append(start_lr + (peak - start_lr) * s / warmup_steps)
    else:
      out.append(inner(np.array([s - warmup_steps]))[0])
  return np.array(out)


def warmup_stable_decay(
  t, lr, total_steps, warmup_steps, decay_steps, min_lr=0.0, anneal_strategy="linear"
):
  shapes = {
    "linear": lambda p: 1 - p,
    "cos": lambda p: (1 + math.cos(math.pi * p)) / 2,
    "sqrt": lambda p: 1 - math.sqrt(p),
  }
  out = []
  for s in t:
    if s < warmup_steps:
      out.append(lr * s / warmup_steps)
    elif s < total_steps - decay_steps:
      out.append(lr)
    else:
      p = min((s - (total_steps - decay_steps)) / decay_steps, 1.0)
      out.append(min_lr + (lr - min_lr) * shapes[anneal_strategy](p))
  return np.array(out)


def sequence(t, inners, boundaries):
  starts = [0, *boundaries]
  out = []
  for s in t:
    i = max(k for k in range(len(inners)) if starts[k] <= s)
    out.append(inners[i](np.array([s - starts[i]]))[0])
  return np.array(out)
