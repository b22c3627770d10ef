"""The sweep's step-0 evaluation: one per chunk (the members of a seed share their initial
parameters), equal to each member's own evaluation; per member where folds differ."""

import jax
import numpy as np

from lrlab import optimizers, sweep, tasks, train

KEY = jax.random.key(3)
FIELDS = ("train_loss", "val_loss", "val_accuracy", "test_loss", "test_accuracy")


def _sgd(hp):
  return optimizers.sgd(hp["lr"], momentum=0.9)


def test_every_member_gets_the_seeds_own_step_0_evaluation_and_threshold():
  task = tasks.get("digits-logreg")
  lrs = np.array([0.01, 0.1, 1.0, 30.0], np.float32)
  result = sweep.run(task, _sgd, {"lr": lrs}, steps=4, batch_size=16, key=KEY, eval_every=2,
                     chunk_size=len(jax.devices()) * 2, seeds=2, progress=False)  # fmt: skip
  trainer = train.Trainer(task, steps=4, batch_size=16, eval_every=2)
  for s in range(2):
    state = trainer.init_state(optimizers.sgd(0.1, momentum=0.9), jax.random.fold_in(KEY, s))
    _, alone = jax.jit(trainer.first_evaluation)(state)  # one member, on its own
    for field in FIELDS:
      column = np.asarray(getattr(result.history, field))[s, :, 0]
      assert np.all(column == column[0]), field  # one evaluation, copied to every member
      np.testing.assert_allclose(column[0], getattr(alone, field), rtol=1e-6, err_msg=field)
  # The threshold the copy sets still flags the member whose loss blows up (30 on logreg).
  assert result.history.diverged[:, -1].all() and not result.history.diverged[:, 0].any()


def test_with_folds_each_member_is_evaluated_on_its_own_fold():
  task = tasks.get("digits-logreg")
  result = sweep.run(task, _sgd, {"lr": np.array([0.05], np.float32)}, steps=2, batch_size=16,
                     key=KEY, eval_every=2, folds=2, chunk_size=2, progress=False)  # fmt: skip
  step0 = np.asarray(result.history.val_loss)[0, :, 0]
  assert step0.shape == (2,) and step0[0] != step0[1]  # two folds, two held-out sets
