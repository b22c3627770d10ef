"""The dead-network guard on constructed sweeps and on a real dead ReLU network."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from lrlab import analysis, optimizers, sweep, tasks, train

LRS = np.array([1e-3, 1e-2, 1e-1, 1.0, 10.0])


def _result(final_loss, final_accuracy, diverged=None) -> sweep.SweepResult:
  """A one-evaluation-pair sweep over LRS with the given ``(S, K)`` final values."""
  final_loss, final_accuracy = np.asarray(final_loss, float), np.asarray(final_accuracy, float)
  s, k = final_loss.shape
  stack = lambda start, end: np.stack([np.full((s, k), start), end], axis=-1)
  loss, accuracy = stack(2.4, final_loss), stack(0.1, final_accuracy)
  diverged = np.zeros((s, k), bool) if diverged is None else np.asarray(diverged)
  history = train.History(
    step=np.array([0, 100]),
    train_loss=loss,
    val_loss=loss,
    val_accuracy=accuracy,
    test_loss=loss,
    test_accuracy=accuracy,
    learning_rate=np.ones((s, k, 100)) * LRS[:, None],
    diverged=diverged,
    diverged_step=np.where(diverged, 50, -1),
  )
  return sweep.SweepResult({"lr": LRS}, np.arange(s), history)


def test_chance_loss_is_the_entropy_of_the_labels_or_half_the_variance():
  assert analysis.chance_loss(np.arange(10).repeat(7), 10) == pytest.approx(math.log(10))
  labels = np.array([0] * 6 + [1] * 3 + [2] * 1)
  p = np.array([0.6, 0.3, 0.1])
  assert analysis.chance_loss(labels, 5) == pytest.approx(-np.sum(p * np.log(p)))
  targets = np.random.default_rng(0).normal(3.0, 2.0, size=(1000, 2))
  assert analysis.chance_loss(targets, None) == pytest.approx(0.5 * targets.var(0).sum())
  # The best constant softmax prediction (the label frequencies) has exactly this loss.
  logits = jnp.log(jnp.asarray(p))
  constant = -jnp.mean(jax.nn.log_softmax(logits)[labels])
  assert float(constant) == pytest.approx(analysis.chance_loss(labels, 3), rel=1e-6)


@pytest.mark.parametrize(
  ("labels", "num_classes", "match"),
  [([0, 3], 3, "labels must be integers in"), ([0.5], 2, "labels must be"), ([], 2, "non-empty")],
)
def test_chance_loss_rejects_bad_labels(labels, num_classes, match):
  with pytest.raises(ValueError, match=match):
    analysis.chance_loss(np.asarray(labels), num_classes)


def test_dead_runs_above_the_best_count_as_diverged():
  chance = math.log(10)
  # lr 1e-3 has not learned yet (at chance, below the best: slow, not failed); 1e-2 is best;
  # 1e-1 is fine; 1 died in seed 1 (loss at chance, accuracy 0.1); 10 diverged in seed 0.
  loss = [[2.30, 0.2, 0.4, 0.5, np.nan], [2.31, 0.2, 0.4, 2.302, 2.303]]
  accuracy = [[0.1, 0.95, 0.93, 0.92, 0.1], [0.1, 0.95, 0.93, 0.1, 0.1]]
  diverged = [[False, False, False, False, True], [False] * 5]
  result = _result(loss, accuracy, diverged)
  dead = analysis.at_chance(result, chance)
  np.testing.assert_array_equal(dead, [[1, 0, 0, 0, 0], [1, 0, 0, 1, 1]])
  guarded = analysis.fail_at_chance(result, chance, select="final_val_accuracy")
  np.testing.assert_array_equal(guarded.history.diverged, [[0, 0, 0, 0, 1], [0, 0, 0, 1, 1]])
  assert guarded.history.diverged_step[1, 3] == 100 and guarded.history.diverged_step[0, 4] == 50
  assert guarded.config["dead_guard"]["runs"] == 2
  # Unguarded, the dead seed only lowers lr 1's mean accuracy to 0.51: the threshold is 10.
  assert result.divergence_threshold() == 10.0
  assert guarded.divergence_threshold() == 1.0
  # Within 0.47 of the best (0.95), lr 1 is usable unguarded (mean 0.51), not guarded (0.46).
  assert result.usable_range("final_val_accuracy", 0.47) == (1e-2, 1.0)
  assert guarded.usable_range("final_val_accuracy", 0.47) == (1e-2, 1e-1)
  # The guard leaves everything else as it was.
  np.testing.assert_array_equal(guarded.history.val_loss, result.history.val_loss)


def test_the_tolerance_and_the_metric_decide_what_sits_at_chance():
  result = _result([[0.2, 0.2, 2.0, 2.2, 2.3]], [[0.9, 0.95, 0.3, 0.2, 0.1]])
  np.testing.assert_array_equal(analysis.at_chance(result, 2.3), [[0, 0, 0, 1, 1]])
  np.testing.assert_array_equal(analysis.at_chance(result, 2.3, rtol=0.2), [[0, 0, 1, 1, 1]])
  np.testing.assert_array_equal(analysis.at_chance(result, 2.3, rtol=0.0), [[0, 0, 0, 0, 1]])
  for bad, match in (({"rtol": 1.0}, "rtol must be"), ({"metric": "final_val_accuracy"}, "loss")):
    with pytest.raises(ValueError, match=match):
      analysis.at_chance(result, 2.3, **bad)
  with pytest.raises(ValueError, match="chance must be"):
    analysis.at_chance(result, 0.0)
  with pytest.raises(ValueError, match="axis must be one of"):
    analysis.fail_at_chance(result, 2.3, axis="momentum")


def test_a_real_relu_network_that_dies_is_caught():
  """Plain SGD at a huge rate kills a ReLU MLP on digits without tripping the divergence guard."""
  task = tasks.get("digits-mlp", hidden=(16, 16))
  result = sweep.run(
    task,
    lambda hp: optimizers.sgd(hp["lr"]),
    {"lr": [0.3, 30.0]},
    steps=60,
    batch_size=100,
    key=jax.random.key(0),
    eval_every=30,
    progress=False,
    divergence_factor=1e6,  # only a non-finite loss trips the training loop's guard
  )
  chance = analysis.chance_loss(task.dataset.y_train, task.num_classes)
  final = result.metric("final_train_loss", diverged_as_worst=False)[0]
  assert not result.history.diverged[0, 1] and final[1] >= 0.95 * chance  # dead, not diverged
  assert final[0] < 0.9 * chance  # the small rate learned
  guarded = analysis.fail_at_chance(result, chance)
  assert result.divergence_threshold() is None and guarded.divergence_threshold() == 30.0


def test_chance_loss_refuses_a_fractional_class_count_and_a_scalar_target():
  # num_classes=2.5 passed the "integer >= 1" check (and was truncated to 2); a scalar
  # regression target failed with an IndexError that named nothing.
  with pytest.raises(ValueError, match=r"num_classes must be an integer >= 1 or None; got 2\.5"):
    analysis.chance_loss([0, 1], 2.5)
  with pytest.raises(ValueError, match=r"labels must be a non-empty array \(n, \.\.\.\); got"):
    analysis.chance_loss(3.0, None)
  assert analysis.chance_loss([0, 1], 2.0) == pytest.approx(math.log(2))  # a whole float is fine
