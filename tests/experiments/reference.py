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
