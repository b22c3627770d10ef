"""Issue 17's acceptance for lm-transformer, checked on the committed default-size results."""

import json

import numpy as np
import pytest

from experiments import common, task_lm_transformer
from lrlab.tasks.language import DEFAULT_BUDGET

OUT = common.RESULTS / "task_lm_transformer"


def test_committed_summary_meets_the_acceptance():
  summary = common.read_summary(OUT)
  numbers = summary["numbers"]
  assert summary["size"] == "default" and summary["verdict"] == "supported"
  assert summary["settings"]["steps"] == DEFAULT_BUDGET["steps"]
  assert numbers["seeds"] >= 5 and numbers["diverged"] == 0
  # Recomputed from the saved runs, not read from the summary's own gap.
  baselines = json.loads((OUT / "baselines.json").read_text())
  final = np.load(OUT / "adamw" / "curves.npz")["val_loss"][:, 0, -1]
  gaps = final - baselines["optimal_loss"]
  error = gaps.std(ddof=1) / np.sqrt(len(gaps))
  assert gaps.mean() + 2 * error <= task_lm_transformer.TOLERANCE
  assert np.all(gaps > 0)  # no seed beats the Bayes loss
  assert numbers["gap_mean"] == pytest.approx(gaps.mean(), rel=1e-6)
  # The unigram and bigram models stay far above the optimum and the trained model.
  assert baselines["bigram_loss"] - baselines["optimal_loss"] > 3 * task_lm_transformer.TOLERANCE
  assert baselines["unigram_loss"] > baselines["bigram_loss"] > final.max() + 0.2
  assert (OUT / "learning_curve.png").stat().st_size > 1000


@pytest.mark.slow  # an end-to-end run
def test_runs_at_tiny_size(tmp_path):
  assert common.main(task_lm_transformer, ["--tiny", "--out", str(tmp_path)]) == 0
  summary = common.read_summary(tmp_path)
  assert summary["numbers"]["seeds"] == 2
  assert np.isfinite(summary["numbers"]["gap_mean"])
  assert summary["numbers"]["unigram_loss"] > summary["numbers"]["optimal_loss"]


def test_the_verdict_needs_the_gap_beyond_2_standard_errors_of_the_tolerance():
  judge, tol = task_lm_transformer.judge, task_lm_transformer.TOLERANCE
  ngrams = dict(unigram_gap=0.7, bigram_gap=0.35)
  assert judge(np.array([0.03, 0.031, 0.029, 0.032, 0.03]), **ngrams) == "supported"
  # Mean 0.1 = the tolerance, SE 0.0035: within noise of it either way, not refuted.
  at_tolerance = np.array([0.095, 0.1, 0.105, 0.09, 0.11])
  se = at_tolerance.std(ddof=1) / np.sqrt(5)
  assert at_tolerance.mean() - 2 * se < tol < at_tolerance.mean() + 2 * se
  assert judge(at_tolerance, **ngrams) == "inconclusive"
  assert judge(np.array([0.2, 0.21, 0.19, 0.2, 0.2]), **ngrams) == "refuted"
  assert judge(np.array([0.03]), **ngrams) == "inconclusive"  # one seed: no spread
  assert judge(np.array([0.03, 0.031, 0.029]), unigram_gap=0.7, bigram_gap=0.2) == "refuted"
