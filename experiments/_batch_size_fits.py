"""The fits of ``experiments/batch_size.py``: steps to a target, the best rate, the critical batch.

Everything here reads NumPy arrays of saved sweeps; nothing trains.
"""

import math

import numpy as np

from experiments import common
from lrlab import analysis

# log10 of the candidate noise scales for the fit S = S_min (1 + B_noise / B).
LOG_B_NOISE = np.linspace(-2.0, 6.0, 1601)


def steps_to_target(steps: np.ndarray, values: np.ndarray, diverged_step: np.ndarray, target):
  """Steps until a loss curve first reaches ``target``, linearly interpolated between evaluations.

  Args:
    steps: ``(E,)`` the evaluation steps.
    values: ``(..., E)`` the loss at each evaluation.
    diverged_step: ``(...)`` the first diverging step, or -1; evaluations after it do not count.
    target: the loss to reach (``<=``).

  Returns:
    ``(...)`` float64 steps, ``inf`` where the target is never reached.
  """
  values = np.asarray(values, np.float64)
  diverged = np.asarray(diverged_step)[..., None]
  valid = (diverged < 0) | (steps <= diverged)
  hit = valid & np.isfinite(values) & (values <= target)
  first = np.argmax(hit, axis=-1)
  reached = np.any(hit, axis=-1)
  out = np.full(first.shape, np.inf)
  for index in zip(*np.nonzero(reached), strict=True):
    j = first[index]
    if j == 0:
      out[index] = 0.0
      continue
    before, after = values[index][j - 1], values[index][j]
    fraction = (before - target) / (before - after) if before > after else 1.0
    out[index] = steps[j - 1] + np.clip(fraction, 0.0, 1.0) * (steps[j] - steps[j - 1])
  return out


def log_steps(steps: np.ndarray) -> np.ndarray:
  """log10 of steps to target, ``(seeds, lrs) -> (lrs,)`` seed means; ``inf`` if a seed missed."""
  with np.errstate(divide="ignore"):
    return np.log10(np.maximum(steps, 1.0)).mean(axis=0)


def best_rate(log_lrs: np.ndarray, steps: np.ndarray) -> tuple[float, float]:
  """``(log10 best rate, log10 steps at the grid's best)`` by the seed-mean log steps to target.

  The best rate is the grid's best moved to the vertex of the parabola through it and its
  neighbours (at most half a grid step); the steps are the grid best's.
  """
  score = log_steps(steps)
  if not np.any(np.isfinite(score)):
    return np.nan, np.inf
  return analysis.refine_best(log_lrs, score, larger_is_better=False), float(np.min(score))


def fit_critical_batch(batch_sizes: np.ndarray, steps: np.ndarray) -> tuple[float, float]:
  """Least squares in log steps of ``S = S_min (1 + B_noise / B)`` (McCandlish et al. 2018).

  Returns:
    ``(log10 B_noise, log10 S_min)``; NaN with fewer than two finite points. A
    ``B_noise`` at the ends of :data:`LOG_B_NOISE` means the data do not bound it.
  """
  b, s = np.asarray(batch_sizes, np.float64), np.asarray(steps, np.float64)
  keep = np.isfinite(s) & (s > 0)
  if keep.sum() < 2:
    return np.nan, np.nan
  b, log_s = b[keep], np.log10(s[keep])
  shape = np.log10(1 + 10 ** LOG_B_NOISE[:, None] / b)  # (candidates, batches)
  offset = (log_s - shape).mean(axis=1)  # the best log S_min for each candidate
  loss = np.sum((log_s - shape - offset[:, None]) ** 2, axis=1)
  k = int(np.argmin(loss))
  return float(LOG_B_NOISE[k]), float(offset[k])


def slope(batch_sizes: np.ndarray, log_best: np.ndarray) -> float:
  """The least-squares slope of log10(best rate) against log10(batch size)."""
  keep = np.isfinite(log_best)
  if keep.sum() < 2:
    return np.nan
  return float(np.polyfit(np.log10(np.asarray(batch_sizes, float)[keep]), log_best[keep], 1)[0])


def grid_slope_se(batch_sizes: np.ndarray, step: float) -> float:
  """The slope's SE from the grid alone: :func:`experiments.common.grid_slope_se` on
  log10(batch), each best rate off by a uniform error of half a grid step."""
  return common.grid_slope_se(np.log10(np.asarray(batch_sizes, float)), step)


def analyse(batch_sizes, log_lrs, steps_by_batch, draws) -> dict:
  """Best rate, steps and the critical batch for one (task, optimizer), with bootstrap SEs.

  The slopes' SEs add the grid's resolution (:func:`grid_slope_se`) in quadrature to the
  bootstrap's: where the best rate sits on one grid point for every draw of seeds, the
  bootstrap alone would say 0.

  Args:
    batch_sizes: ``(N,)``.
    log_lrs: ``(K,)`` log10 of the rate grid.
    steps_by_batch: ``N`` arrays ``(seeds, K)`` of steps to target.
    draws: ``(D, seeds)`` seed indices of the bootstrap, shared by every batch size.

  Returns:
    A dict of the estimates and their bootstrap standard errors (ddof=1).
  """

  def estimate(rows):
    best = [best_rate(log_lrs, s if rows is None else s[rows]) for s in steps_by_batch]
    log_best = np.array([b[0] for b in best])
    log_min_steps = np.array([b[1] for b in best])
    log_b_noise, log_s_min = fit_critical_batch(batch_sizes, 10**log_min_steps)
    fitted = slope(batch_sizes, log_best), slope(batch_sizes[:2], log_best[:2])
    return log_best, log_min_steps, fitted, log_b_noise, log_s_min

  log_best, log_min_steps, (fitted, first), log_b_noise, log_s_min = estimate(None)
  boot = [estimate(rows) for rows in draws]

  def se(values) -> float:  # over the bootstrap draws whose estimate is finite
    values = np.asarray(values, float)
    values = values[np.isfinite(values)]
    return float(values.std(ddof=1)) if values.size > 1 else np.nan

  step = float(log_lrs[1] - log_lrs[0])
  boot_best = np.array([b[0] for b in boot])
  boot_steps = np.array([b[1] for b in boot])
  return {
    "best_lr": (10**log_best).tolist(),
    "best_lr_se_decades": [se(boot_best[:, i]) for i in range(len(batch_sizes))],
    "best_on_grid_edge": [
      bool(np.isclose(v, log_lrs[0]) or np.isclose(v, log_lrs[-1])) for v in log_best
    ],
    "steps_to_target": (10**log_min_steps).tolist(),
    "steps_se_decades": [se(boot_steps[:, i]) for i in range(len(batch_sizes))],
    "reached": bool(np.all(np.isfinite(log_min_steps))),
    "lr_slope": fitted,
    "lr_slope_se": math.hypot(se([b[2][0] for b in boot]), grid_slope_se(batch_sizes, step)),
    "lr_slope_bootstrap_se": se([b[2][0] for b in boot]),
    "lr_slope_smallest": first,
    "lr_slope_smallest_se": math.hypot(
      se([b[2][1] for b in boot]), grid_slope_se(batch_sizes[:2], step)
    ),
    "critical_batch": 10**log_b_noise,
    "critical_batch_se_decades": se([b[3] for b in boot]),
    "critical_batch_bounded": bool(LOG_B_NOISE[0] < log_b_noise < LOG_B_NOISE[-1]),
    "critical_batch_within_batches": bool(
      np.min(batch_sizes) <= 10**log_b_noise <= np.max(batch_sizes)
    ),
    "min_steps": 10**log_s_min,
  }
