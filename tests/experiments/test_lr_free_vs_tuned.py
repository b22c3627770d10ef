"""The learning-rate-free methods against tuned baselines (claim 13): the dead-network guard on
the committed baselines, recounted from the saved sweeps with NumPy."""

import json

import numpy as np
import pytest

from experiments import common, lr_free_vs_tuned
from lrlab import sweep, tasks

OUT = common.RESULTS / "lr_free_vs_tuned"


@pytest.mark.parametrize("task", ["digits-mlp", "mnist1d-mlp"])
def test_dead_runs_above_the_tuned_rate_are_counted_as_failed(task):
  numbers = common.read_summary(OUT)["numbers"][task]
  labels = tasks.get(task).dataset.y_train
  p = np.bincount(labels) / labels.size
  chance = -np.sum(p[p > 0] * np.log(p[p > 0]))  # the best constant prediction's loss
  info = json.loads((OUT / task / "target.json").read_text())
  assert info.get("chance_loss", chance) == pytest.approx(chance)
  for name in lr_free_vs_tuned.BASELINES:
    result = sweep.SweepResult.load(OUT / task / name)
    lrs = result.grid["lr"]
    val = result.metric("final_val_accuracy", diverged_as_worst=False)
    val = np.where(result.history.diverged, -np.inf, val).mean(axis=0)
    best = int(np.argmax(val))
    train = result.metric("final_train_loss", diverged_as_worst=False)
    dead = ~result.history.diverged & (train >= 0.95 * chance) & (lrs > lrs[best])[None, :]
    entry = numbers["baselines"][name]
    assert entry["tuned_lr"] == lrs[best]
    assert entry["dead_runs"] == int(dead.sum())
    failed = (result.history.diverged | dead).any(axis=0)
    threshold = entry["divergence_threshold"]
    assert threshold == (float(lrs[failed][0]) if failed.any() else None)


def test_each_method_matches_its_authors_package_on_this_problem():
  """scripts/authors_packages_mnist1d.py's committed result, as the report records it: every
  method with a package (all but SPS) follows it to float64 rounding on the MNIST-1D MLP."""
  numbers = common.read_summary(OUT)["numbers"]
  recorded = json.loads((OUT / "authors_packages.json").read_text())
  assert numbers["authors_packages"] == recorded and recorded["steps"] == 100
  assert set(recorded["methods"]) == set(lr_free_vs_tuned.METHODS) - {"sps"}
  for entry in recorded["methods"].values():
    assert entry["params_deviation"] < 1e-12 and entry["eval_deviation"] < 1e-12
    assert entry["weights_moved"] > 0.1  # the weights moved: the match is not trivial
