"""Adaptive sensitivity (claim 6), issue 19: the committed summary follows from the saved sweeps.

The usable ranges (with the dead-network guard), their bootstrap standard errors, the paired
comparisons and Holm's adjustment are recomputed here with NumPy from the raw curves, not with
the module's helpers or :mod:`lrlab.sweep`.
"""

import math

import numpy as np
import pytest

from experiments import adaptive_sensitivity as experiment
from experiments import common
from lrlab import sweep
from lrlab.analysis import ALPHA
from tests.experiments import reference

OUT = common.RESULTS / "adaptive_sensitivity"


def _failed(result: sweep.SweepResult, chance: float) -> np.ndarray:
  """``(S, K)`` diverged runs, and runs above the best rate whose train loss sits at chance."""
  h = result.history
  accuracy = np.where(h.diverged, 0.0, h.val_accuracy[:, :, -1])
  best = int(np.argmax(accuracy.mean(0)))
  above = result.grid["lr"] > result.grid["lr"][best]
  dead = ~h.diverged & (h.train_loss[:, :, -1] >= 0.95 * chance) & above[None, :]
  return h.diverged | dead


def _width(accuracy: np.ndarray, lrs: np.ndarray) -> float:
  """Decades of the contiguous run of rates around the best within 0.05 of its seed mean."""
  mean = accuracy.mean(0)
  best = int(np.argmax(mean))
  ok = mean >= mean[best] - experiment.TOLERANCE
  lo = hi = best
  while lo > 0 and ok[lo - 1]:
    lo -= 1
  while hi < len(ok) - 1 and ok[hi + 1]:
    hi += 1
  return math.log10(lrs[hi] / lrs[lo])


def test_committed_summary_follows_from_the_saved_sweeps():
  summary = common.read_summary(OUT)
  numbers = summary["numbers"]
  assert summary["size"] == "default" and numbers["seeds"] >= 5
  assert numbers["chance_loss"] == pytest.approx(math.log(10), rel=0.01)  # 10 balanced classes
  accuracy, lrs = {}, None
  for name in numbers["optimizers"]:
    result = sweep.SweepResult.load(OUT / name)
    lrs = result.grid["lr"]
    failed = _failed(result, numbers["chance_loss"])
    accuracy[name] = np.where(failed, 0.0, result.history.val_accuracy[:, :, -1].astype(float))
    entry = numbers["optimizers"][name]
    assert entry["usable_decades"] == pytest.approx(_width(accuracy[name], lrs))
    assert entry["dead_runs"] == int((failed & ~result.history.diverged).sum())
  seeds = numbers["seeds"]
  draws = np.random.default_rng(0).integers(0, seeds, (experiment.BOOTSTRAP, seeds))
  boot = {n: np.array([_width(a[d], lrs) for d in draws]) for n, a in accuracy.items()}
  for name, widths in boot.items():
    assert numbers["optimizers"][name]["usable_decades_se"] == pytest.approx(widths.std(ddof=1))
  family, p_values = [], []
  for name, against in numbers["versus_baselines"].items():
    for base, entry in against.items():
      effect = _width(accuracy[name], lrs) - _width(accuracy[base], lrs)
      # The grid rounds the four ends of the two ranges, each uniform over one step
      # (variance step^2 / 12): step / sqrt(3) in all, as normalization and gradient_depth.
      rounding = numbers["grid_step_decades"] * math.sqrt(4 / 12)
      se = math.hypot((boot[name] - boot[base]).std(ddof=1), rounding)
      assert entry["extra_decades"] == pytest.approx(effect)
      assert entry["se"] == pytest.approx(se)
      family.append(entry)
      p_values.append(math.erfc(abs(effect / se) / math.sqrt(2)))
  assert numbers["comparisons"] == len(family) == 8
  for entry, p_holm in zip(family, reference.holm(p_values), strict=True):
    assert entry["p_holm"] == pytest.approx(p_holm)
    expected = "inconclusive"
    if p_holm <= ALPHA:
      expected = "supported" if entry["extra_decades"] > 0 else "refuted"
    assert entry["verdict"] == expected
