"""Acceptance on real data: default budgets reach the accuracy the literature reports.

MNIST-1D reference (Greydanus 2020, "Scaling down deep learning",
https://arxiv.org/abs/2011.14439): logistic regression 32%, MLP 68%, CNN 94%
test accuracy. lrlab trains on 3,600 of the 4,000 training examples (400 are
held out for validation), so the bands are set around those figures.
"""

import jax
import pytest

from lrlab import optimizers, tasks, train

# (task, Adam learning rate, steps, batch size, lowest and highest acceptable test accuracy)
BUDGETS = [
  ("digits-mlp", 1e-3, 500, 64, 0.95, 1.0),
  ("mnist1d-logreg", 1e-2, 2000, 100, 0.25, 0.40),
  ("mnist1d-mlp", 1e-2, 3000, 100, 0.60, 0.75),
  ("mnist1d-cnn", 1e-2, 3000, 100, 0.88, 0.97),
]


@pytest.mark.slow
@pytest.mark.parametrize(("name", "lr", "steps", "batch_size", "low", "high"), BUDGETS)
def test_default_budget_reaches_reported_accuracy(name, lr, steps, batch_size, low, high):
  history = train.train(
    tasks.get(name),
    optimizers.adam(lr),
    steps=steps,
    batch_size=batch_size,
    key=jax.random.key(0),
    eval_every=steps // 10,
  )
  assert not history.diverged
  assert low <= float(history.test_accuracy[-1]) <= high
