"""Statistics of ``experiments/gradient_depth.py``: shrinks or vanishes, effects with their SE."""

import math

import numpy as np

VANISH = 2.0  # decades: a fall of more than 100x "vanishes", a smaller significant one "shrinks"


def mean_se(values) -> tuple[float, float]:
  """Mean over the finite values and its standard error (ddof=1); NaN SE for fewer than 2."""
  v = np.asarray(values, np.float64)
  v = v[np.isfinite(v)]
  if v.size == 0:
    return math.nan, math.nan
  return float(v.mean()), float(v.std(ddof=1) / np.sqrt(v.size)) if v.size > 1 else math.nan


def kind(fall: float, se: float) -> str:
  """Flat, shrinks or vanishes (grows or explodes for a rise): see the module's docstring."""
  if not abs(fall) > 2 * se:
    return "flat"
  if fall > 0:
    return "vanishes" if fall > VANISH else "shrinks"
  return "explodes" if -fall > VANISH else "grows"


def gradients(init_norms: np.ndarray) -> dict:
  """Shrink-or-vanish numbers of one network from its ``(seeds, layers)`` norms at init."""
  logs = np.log10(init_norms)
  decay = logs[:, -1] - logs[:, 0]  # decades from the last layer down to the first
  layers = np.arange(1, logs.shape[1] + 1)
  slope = np.polyfit(layers, logs.T, 1)[0]
  total = 0.5 * np.log10((init_norms**2).sum(-1))
  (d, d_se), (s, s_se), (g, g_se) = (mean_se(x) for x in (decay, slope, total))
  return {
    "layer_decay_decades": d,
    "layer_decay_se": d_se,
    "slope_decades_per_layer": s,
    "slope_se": s_se,
    "kind_across_layers": kind(d, d_se),
    "first_layer_norm": float(10 ** logs[:, 0].mean()),
    "last_layer_norm": float(10 ** logs[:, -1].mean()),
    "global_norm": float(10**g),
    "log10_global_norm": g,
    "log10_global_norm_se": g_se,
  }


def z(effect: float, se: float) -> dict:
  """``effect`` with its SE, ``z = effect / se`` and the two-sided normal p-value."""
  z = effect / se if se > 0 else math.nan
  p = math.erfc(abs(z) / math.sqrt(2.0)) if math.isfinite(z) else math.nan
  return {"effect": effect, "se": se, "z": z, "p": p}


def effect(values: np.ndarray, grid_se: float) -> dict:
  """An effect from per-seed values: mean, SE (seeds, and the grid's rounding), z, p."""
  mean, se_seeds = mean_se(values)
  return {**z(mean, math.hypot(se_seeds, grid_se)), "se_seeds": se_seeds}
