"""The parallel finder: the best constant rate after a budget, on the quadratic's known answer."""

import jax
import numpy as np
import pytest

from lrlab import finder, optimizers

KEY = jax.random.key(0)
LRS = [0.1, 0.5, 1.0, 1.5, 1.9, 2.1, 3.0]  # the default quadratic: 2/L = 2, 2/(L+mu) = 1.98


@pytest.fixture(scope="module")
def found():
  return finder.find_lr_parallel(
    "quadratic", lambda hp: optimizers.sgd(hp["lr"]), lrs=LRS, steps=60, batch_size=None, key=KEY
  )


def test_the_best_rate_is_the_largest_stable_one_on_the_quadratic(found):
  assert found.lr == 1.9 and found.metric == "final_val_loss"
  assert found.divergence_lr == 2.1 and not found.on_edge
  lo, hi = found.usable_range
  assert lo <= found.lr <= hi < 2.1


def test_the_answer_is_the_sweeps_and_serialises(found):
  assert found.sweep.grid["lr"].tolist() == LRS
  assert found.value == pytest.approx(found.sweep.seed_mean("final_val_loss")[4])
  d = found.to_dict()
  assert d["lr"] == 1.9 and d["candidates"] == LRS and d["steps"] == 60
  assert "best lr = 1.9" in found.summary()


def test_an_optimizer_name_and_an_edge_best(found):
  edge = finder.find_lr_parallel(
    "quadratic", "sgd", lrs=[0.01, 0.1], steps=20, batch_size=None, key=KEY
  )
  assert edge.lr == 0.1 and edge.on_edge and "widen" in edge.summary()


@pytest.mark.parametrize("lrs", [[], [0.1, -1.0], [[0.1, 0.2]], [0.1, np.nan]])
def test_bad_candidates_raise(lrs):
  with pytest.raises(ValueError, match="lrs must be a non-empty 1-D sequence"):
    finder.find_lr_parallel("quadratic", "sgd", lrs=lrs, steps=10, batch_size=None, key=KEY)


def test_bad_budget_raises():
  with pytest.raises(ValueError, match="steps must be a positive integer"):
    finder.find_lr_parallel("quadratic", "sgd", lrs=[0.1], steps=0, batch_size=None, key=KEY)


def test_when_every_candidate_diverges_the_best_is_on_the_edge():
  # Gradient descent on the default quadratic diverges above 2 / L = 2: every candidate
  # diverges, the "best" is the smallest candidate, and the answer lies below the candidates.
  found = finder.find_lr_parallel(
    "quadratic", "sgd", lrs=[3.0, 4.0, 5.0], steps=20, batch_size=None, key=jax.random.key(0)
  )
  assert found.sweep.history.diverged.all()
  assert found.lr == min(found.sweep.grid["lr"])
  assert found.on_edge
  # Not "best lr = 3 ... (final_val_loss = inf); usable range [nan, nan]": no rate trained.
  assert found.summary() == (
    "Parallel finder: every candidate diverged, the smallest (3) too: widen the candidates "
    "below it."
  )


@pytest.mark.parametrize(
  ("kwargs", "message"),
  [
    ({"metric": "val_acc"}, "metric must be one of"),
    ({"metric": "final_val_accuracy"}, "it has no accuracy"),
    ({"tolerance": -0.1}, "tolerance must be a finite number >= 0"),
    ({"tolerance": None}, "tolerance must be a number"),
  ],
)
def test_metric_and_tolerance_are_checked_before_training(monkeypatch, kwargs, message):
  # They were read only after the sweep: a misspelt metric cost the whole budget.
  monkeypatch.setattr(finder.parallel.sweep, "run", lambda *a, **k: pytest.fail("trained"))
  with pytest.raises(ValueError, match=message):
    finder.find_lr_parallel(
      "quadratic", "sgd", lrs=[0.1, 1.0], steps=10, batch_size=None, key=KEY, **kwargs
    )


def test_a_numpy_batch_size_is_taken():
  found = finder.find_lr_parallel(
    "digits-logreg", "sgd", lrs=[0.1, 1.0], steps=10, batch_size=np.int64(32), key=KEY
  )
  assert found.sweep.config["batch_size"] == 32
