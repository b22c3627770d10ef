"""Issue 17's acceptance for modular-addition, the ResNets and teacher-student.

Checked on the committed default-size results, recomputed from the saved curves rather
than read from the summaries' own verdicts. Each experiment runs at its tiny size in
tests/experiments/test_experiments.py, which runs every experiment module.
"""

import numpy as np
import pytest

from experiments import common

RESULTS = common.RESULTS


def _curves(folder):
  return np.load(RESULTS / folder / "curves.npz")


def test_modular_addition_groks_with_weight_decay_only():
  summary = common.read_summary(RESULTS / "task_modular_addition")
  assert summary["size"] == "default" and summary["verdict"] == "supported"
  curves = _curves("task_modular_addition/sweep")
  decays = curves["grid.weight_decay"].tolist()
  assert len(curves["seeds"]) >= 5 and decays == [0.0, 1.0]
  val, train = curves["val_accuracy"], curves["test_accuracy"]  # the test split is train
  steps = curves["step"][0, 0]
  # With weight decay: every seed fits the training pairs and crosses 95% on held-out pairs.
  assert np.all(train[:, 1, -1] == 1.0) and np.all(val[:, 1, -1] >= 0.95)
  first = steps[np.argmax(val[:, 1] >= 0.95, axis=-1)]
  assert summary["numbers"]["weight_decay_1"]["crossing_step_mean"] == pytest.approx(first.mean())
  # Without: the same seeds fit the training pairs but never cross, at the same budget.
  assert np.all(train[:, 0, -1] == 1.0) and np.all(val[:, 0].max(axis=-1) < 0.95)
  assert not curves["diverged"].any()


def test_resnets_reach_at_least_the_cnns_accuracy():
  summary = common.read_summary(RESULTS / "task_resnets")
  assert summary["size"] == "default" and summary["verdict"] == "supported"
  for dataset in ("digits", "mnist1d"):
    cnn = _curves(f"task_resnets/{dataset}-cnn")
    resnet = _curves(f"task_resnets/{dataset}-resnet")
    assert len(resnet["seeds"]) >= 5 and np.array_equal(cnn["seeds"], resnet["seeds"])
    assert np.array_equal(cnn["step"], resnet["step"])  # the same budget
    # Correct test examples, summed over seeds: the ResNet's are at least the CNN's.
    size = {"digits": 359, "mnist1d": 1000}[dataset]
    ours, theirs = (np.round(c["test_accuracy"][:, 0, -1] * size).sum() for c in (resnet, cnn))
    assert ours >= theirs
    gain = (ours - theirs) / size / len(resnet["seeds"])
    entry = summary["numbers"][dataset]
    assert entry["resnet_minus_cnn"] == pytest.approx(gain, abs=1e-6)
    # Its error: the seeds' (ddof 1) and the test set's binomial error of two accuracies.
    a, b = (c["test_accuracy"][:, 0, -1].astype(float) for c in (resnet, cnn))
    seeds_se = np.std(a - b, ddof=1) / np.sqrt(a.size)
    binomial = np.sqrt((a.mean() * (1 - a.mean()) + b.mean() * (1 - b.mean())) / size)
    assert entry["test_examples"] == size
    assert entry["resnet_minus_cnn_se"] == pytest.approx(np.hypot(seeds_se, binomial))
    assert entry["resnet_minus_cnn_se_test_set"] == pytest.approx(binomial)
    # MNIST-1D: ahead beyond 2 SE after Holm over the 2 datasets; digits: a tie, not ahead.
    assert entry["ahead"] == (dataset == "mnist1d")
  assert summary["numbers"]["comparisons"] == 2


def test_teacher_student_loss_falls_below_a_thousandth_of_its_initial_value():
  summary = common.read_summary(RESULTS / "task_teacher_student")
  assert summary["size"] == "default" and summary["verdict"] == "supported"
  curves = _curves("task_teacher_student/sweep")
  best = curves["grid.lr"].tolist().index(summary["numbers"]["best_lr"])
  train = curves["test_loss"][:, best]  # the test split is the training split
  assert len(curves["seeds"]) >= 5 and not curves["diverged"].any()
  assert np.all(train[:, -1] / train[:, 0] < 1e-3)


def test_resnets_verdict_needs_an_effect_or_a_resolved_tie():
  from experiments import task_resnets

  # A noisy gap just above 0 is not evidence of "at least": inconclusive, not supported.
  assert task_resnets.judge(0.001, 0.05, 0.98) == "inconclusive"
  assert task_resnets.judge(0.0, 0.0086, 1.0) == "supported"  # digits' tie, resolved
  assert task_resnets.judge(0.06, 0.016, 2.1e-4) == "supported"  # MNIST-1D: ahead
  assert task_resnets.judge(-0.06, 0.016, 2.1e-4) == "refuted"
