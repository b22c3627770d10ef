"""Independent references the experiments' tests recompute committed numbers with."""

import numpy as np
import pytest


def holm(p) -> np.ndarray:
  """Holm's (1979) step-down adjustment written out as a loop, apart from
  :func:`lrlab.analysis.holm`: the i-th smallest p-value becomes the largest of
  ``(m - j) p_(j)`` over ``j <= i``, capped at 1."""
  p = np.asarray(p, np.float64)
  adjusted, running = np.empty(len(p)), 0.0
  for rank, i in enumerate(np.argsort(p)):
    running = max(running, min(1.0, (len(p) - rank) * p[i]))
    adjusted[i] = running
  return adjusted


def check_verdicts(family: list[dict], p_values: list[float], alpha: float) -> None:
  """Each entry's ``p_holm`` is Holm's adjustment of ``p_values`` over the family, and its
  ``verdict`` "supported"/"refuted" (by the sign of ``gap``) where that is at most
  ``alpha``, else "inconclusive"."""
  for entry, p_holm in zip(family, holm(p_values), strict=True):
    assert entry["p_holm"] == pytest.approx(p_holm, rel=1e-6, abs=1e-12)
    expected = "inconclusive"
    if p_holm <= alpha:
      expected = "supported" if entry["gap"] > 0 else "refuted"
    assert entry["verdict"] == expected


def vertex(log_lrs: np.ndarray, scores: np.ndarray, *, larger_is_better: bool) -> float:
  """The grid's best (non-finite scores worst), moved to the vertex of the parabola through it
  and its neighbours by ``np.polyfit`` (not the package's closed form), at most half a step;
  the grid's best itself at the edge, next to a non-finite score or without a maximum."""
  s = np.asarray(scores, np.float64) * (1 if larger_is_better else -1)
  s = np.where(np.isfinite(s), s, -np.inf)
  k = int(np.argmax(s))
  if k in (0, len(s) - 1) or not np.all(np.isfinite(s[k - 1 : k + 2])):
    return float(log_lrs[k])
  a, b, _ = np.polyfit(log_lrs[k - 1 : k + 2], s[k - 1 : k + 2], 2)
  if a >= 0:
    return float(log_lrs[k])
  half = (log_lrs[1] - log_lrs[0]) / 2
  return float(np.clip(-b / (2 * a), log_lrs[k] - half, log_lrs[k] + half))


def rounding_sd(x, step: float) -> float:
  """The SD a least-squares slope against ``x`` gets from values each off by an independent
  error uniform on ``[-step/2, step/2]`` (variance ``step^2 / 12``): the slope is the second row
  of the design matrix's pseudo-inverse applied to the values, so its SD is that row's norm
  times the error's SD."""
  design = np.stack([np.ones(len(x)), np.asarray(x, np.float64)], axis=1)
  return float(np.linalg.norm(np.linalg.pinv(design)[1]) * step / np.sqrt(12))
