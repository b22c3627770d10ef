"""Overfitting (claim 3), issue 19: the label noise, and the committed default-size results."""

import math

import numpy as np
import pytest

from experiments import common, overfitting_gap
from lrlab import analysis, sweep

OUT = common.RESULTS / "overfitting_gap"


def test_symmetric_label_noise_flips_the_fraction_to_other_classes_uniformly():
  labels = np.repeat(np.arange(10), 5000)
  noisy = overfitting_gap.noisy_labels(labels, 0.2, 10, np.random.default_rng(1))
  flipped = noisy != labels
  assert flipped.mean() == pytest.approx(0.2, abs=0.01)  # every flip lands on another class
  offsets = (noisy[flipped] - labels[flipped]) % 10
  counts = np.bincount(offsets, minlength=10)
  assert counts[0] == 0 and np.all(np.abs(counts[1:] / flipped.sum() - 1 / 9) < 0.01)


def test_committed_summary_follows_from_the_saved_sweep():
  summary = common.read_summary(OUT)
  assert summary["size"] == "default"
  (name, numbers), *others = summary["numbers"].items()
  assert not others and numbers["seeds"] >= 5
  result = sweep.SweepResult.load(OUT / name)
  h = result.history
  lr = result.grid["lr"]
  # The task does not interpolate: no rate fits the noisy training labels.
  train_accuracy = h.val_accuracy[..., -1].astype(float)
  assert np.nanmax(train_accuracy) < 0.9 and numbers["max_train_accuracy"] < 0.9
  # Dead runs: train loss at chance, above the best-fitting rate, never flagged by training.
  train_loss = h.train_loss[..., -1].astype(float)
  chance = numbers["chance_loss"]
  assert chance == pytest.approx(math.log(10), abs=0.01)
  fit = int(np.argmin(np.where(h.diverged, np.inf, h.val_loss[..., -1]).mean(0)))
  dead = np.any(~h.diverged & (train_loss >= 0.95 * chance), axis=0) & (lr > lr[fit])
  assert numbers["dead_lrs"] == pytest.approx(lr[dead].tolist())
  assert lr[fit] == pytest.approx(numbers["best_fit_lr"])
  # Each gap difference, recomputed in NumPy from the curves (same seeds: paired).
  failed = np.any(h.diverged, axis=0) | dead
  test_accuracy = h.test_accuracy[..., -1].astype(float)
  gaps = {
    "accuracy_gap": train_accuracy - test_accuracy,
    "loss_gap": h.test_loss[..., -1].astype(float) - h.val_loss[..., -1].astype(float),
  }
  high = int(np.flatnonzero(np.isclose(lr, numbers["fitting_lrs"][1]))[0])
  n, num_test = result.num_seeds, numbers["num_test"]
  for measure, gap in gaps.items():
    for test in numbers["tests"][measure]:
      low = int(np.flatnonzero(np.isclose(lr, test["lower_lr"]))[0])
      assert not failed[low] and low < high
      d = gap[:, high] - gap[:, low]
      se = d.std(ddof=1) / math.sqrt(n)
      if measure == "accuracy_gap":
        a, b = test_accuracy[:, high].mean(), test_accuracy[:, low].mean()
        se = math.hypot(se, math.sqrt((a * (1 - a) + b * (1 - b)) / num_test))
      assert test["difference"] == pytest.approx(d.mean()) and test["se"] == pytest.approx(se)
  # Holm over every comparison, and each part's rule.
  flat = [t for group in numbers["tests"].values() for t in group]
  assert numbers["comparisons"] == len(flat)
  np.testing.assert_allclose([t["p_holm"] for t in flat], analysis.holm([t["p"] for t in flat]))
  for part, group in (
    ("low_underfits", "underfit"),
    ("high_overfits", "accuracy_gap"),
    ("high_overfits_by_loss", "loss_gap"),
  ):
    tests = numbers["tests"][group]
    significant = [t["p_holm"] <= overfitting_gap.ALPHA for t in tests]
    if any(s and t["difference"] < 0 for s, t in zip(significant, tests, strict=True)):
      assert numbers["parts"][part] == "refuted"
    elif all(s and t["difference"] > 0 for s, t in zip(significant, tests, strict=True)):
      assert numbers["parts"][part] == "supported"
    else:
      assert numbers["parts"][part] == "inconclusive"
  assert (OUT / f"gap_{name}.png").stat().st_size > 1000
