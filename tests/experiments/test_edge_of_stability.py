"""Edge of stability (claim 12), issue 19: the committed numbers recomputed from the saved runs."""

import json
import math

import numpy as np
import pytest

from experiments import common, edge_of_stability
from lrlab import analysis

OUT = common.RESULTS / "edge_of_stability"
SUMMARY = common.read_summary(OUT)


@pytest.fixture(scope="module")
def runs():
  with np.load(OUT / "mse" / "runs.npz") as loaded:
    return dict(loaded)


def test_chance_level_is_the_closed_form_of_a_constant_prediction():
  # Squared error summed over one-hot outputs, predicting the label frequencies p:
  # sum_c p_c (1 - p_c) / 2 = (1 - sum_c p_c^2) / 2.
  task = edge_of_stability.make_task("mse", 1000)
  p = np.bincount(np.asarray(task.dataset.y_train), minlength=10) / task.num_train
  config = json.loads((OUT / "mse" / "config.json").read_text())
  assert config["chance"] == pytest.approx(0.5 * (1 - np.sum(p**2)), rel=1e-9)
  assert SUMMARY["numbers"]["chance_loss"]["mse"] == config["chance"]


def test_committed_hovering_follows_from_the_saved_sharpness(runs):
  numbers = SUMMARY["numbers"]["mse"]
  seeds = runs["sharpness"].shape[0]
  assert SUMMARY["size"] == "default" and seeds >= 5
  config = json.loads((OUT / "mse" / "config.json").read_text())
  final = runs["train_loss"][..., -1]
  failed = runs["diverged"] | ~(final < 0.95 * config["chance"])
  p = []
  for k, entry in enumerate(numbers.values()):
    ratio = runs["sharpness"][:, k] * runs["lr"][k] / 2  # sharpness / (2 / lr)
    medians, steps = [], []
    for s in range(seeds):
      low = int(np.argmin(ratio[s, : len(runs["step"]) // 4]))
      hit = low + np.flatnonzero(ratio[s, low:] >= 0.9)
      if hit.size and not failed[s, k]:
        medians.append(np.median(ratio[s, hit[0] :]))
        steps.append(runs["step"][hit[0]])
    assert entry["failed_runs"] == int(failed[:, k].sum())
    assert entry["reached_in_every_seed"] == (len(medians) == seeds)
    if len(medians) < seeds:
      assert entry["hovers"] == "not reached"
      p.append(math.nan)
      continue
    medians = np.array(medians)
    se = medians.std(ddof=1) / math.sqrt(seeds)
    margin = 0.2 - abs(medians.mean() - 1)
    assert entry["mean_median_ratio_after"] == pytest.approx(medians.mean(), rel=1e-6)
    assert entry["median_ratio_se"] == pytest.approx(se, rel=1e-5)
    assert entry["reached_at_step_mean"] == pytest.approx(np.mean(steps))
    p.append(math.erfc(abs(margin / se) / math.sqrt(2)))
  adjusted = analysis.holm(np.array(p))
  assert SUMMARY["numbers"]["comparisons"]["tests"] == int(np.isfinite(adjusted).sum())
  for entry, q in zip(numbers.values(), adjusted, strict=True):
    if math.isfinite(q):
      expected = "inconclusive"
      if q < analysis.ALPHA:
        expected = "supported" if entry["hover_margin"] > 0 else "refuted"
      assert entry["hovers"] == expected
  assert (OUT / "sharpness_mse.png").stat().st_size > 1000
