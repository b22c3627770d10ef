"""run_study: an Optuna study evaluated in parallel batches gives a sequential study's trials."""

import jax
import numpy as np
import pytest

from lrlab import data, optimizers, search, sweep, tasks

optuna = pytest.importorskip("optuna")
optuna.logging.set_verbosity(optuna.logging.WARNING)

SPACE = {"lr": optuna.distributions.FloatDistribution(1e-3, 3.0, log=True)}
STEPS, EVAL_EVERY = 20, 4


def _sgd(hp):
  return optimizers.sgd(hp["lr"])


@pytest.fixture(scope="module")
def task():
  return tasks.quadratic_task(data.quadratic(3, eigenvalues=np.array([0.05, 0.2, 1.0]), seed=0))


def _sequential(study, task, n_trials, batch, key):
  """A user's loop: ask ``batch`` trials, train each alone with lrlab's sweep of one member,
  tell; repeat."""
  done = 0
  while done < n_trials:
    trials = [study.ask(SPACE) for _ in range(min(batch, n_trials - done))]
    for trial in trials:
      result = sweep.run(
        task, _sgd, {"lr": np.array([trial.params["lr"]])}, steps=STEPS, batch_size=None,
        key=key, eval_every=EVAL_EVERY, chunk_size=1, progress=False,
      )  # fmt: skip
      loss = float(result.history.val_loss[0, 0, -1])
      study.tell(trial, np.inf if result.history.diverged[0, 0] else loss)
    done += len(trials)
  return study


@pytest.mark.parametrize(
  ("sampler", "sequential_batch"),
  [
    (lambda: optuna.samplers.RandomSampler(seed=0), 1),  # a random sampler learns nothing
    (lambda: optuna.samplers.TPESampler(seed=0, n_startup_trials=4), 4),  # TPE: same batches
  ],
)
def test_same_trials_and_values_as_a_sequential_study(task, sampler, sequential_batch):
  key = jax.random.key(0)
  batched = optuna.create_study(sampler=sampler())
  search.run_study(batched, task, _sgd, SPACE, n_trials=12, parallel=4, steps=STEPS, key=key,
                   eval_every=EVAL_EVERY, prune=False, chunk_size=4)  # fmt: skip
  alone = _sequential(optuna.create_study(sampler=sampler()), task, 12, sequential_batch, key)
  assert len(batched.trials) == len(alone.trials) == 12
  for ours, theirs in zip(batched.trials, alone.trials, strict=True):
    assert ours.params == theirs.params
    assert ours.state == theirs.state == optuna.trial.TrialState.COMPLETE
    np.testing.assert_allclose(ours.value, theirs.value, rtol=1e-5)
  diverged = [t for t in batched.trials if t.user_attrs.get("diverged")]
  assert all(t.value == np.inf and t.params["lr"] > 2.0 for t in diverged)  # lr > 2 / L
  assert all(t.user_attrs["stopped_step"] == STEPS for t in batched.trials)
  finite = [t for t in batched.trials if not t.user_attrs.get("diverged")]
  assert all(sorted(t.intermediate_values) == [4, 8, 12, 16] for t in finite)  # reported after


def test_the_pruner_acts_at_each_evaluation_and_stops_compute(task):
  """ThresholdPruner(upper=u) prunes a trial whose reported loss exceeds u: the trials it
  pruned are exactly those whose curve first exceeds u at a report, stopped there."""
  key = jax.random.key(0)
  upper = 0.26
  study = optuna.create_study(
    sampler=optuna.samplers.RandomSampler(seed=1),
    pruner=optuna.pruners.ThresholdPruner(upper=upper),
  )
  search.run_study(study, task, _sgd, SPACE, n_trials=8, parallel=8, steps=STEPS, key=key,
                   eval_every=EVAL_EVERY, chunk_size=8)  # fmt: skip
  lrs = np.array([t.params["lr"] for t in study.trials])
  full = sweep.run(task, _sgd, {"lr": lrs}, steps=STEPS, batch_size=None, key=key,
                   eval_every=EVAL_EVERY, chunk_size=8, progress=False)  # fmt: skip
  curves = full.history.val_loss[0]
  pruned = 0
  for k, trial in enumerate(study.trials):
    reports = curves[k, 1:-1]  # the reports at steps 4, 8, 12, 16 (the last is told instead)
    above = np.flatnonzero(~(reports <= upper))
    if above.size:
      pruned += 1
      assert trial.state == optuna.trial.TrialState.PRUNED
      assert trial.user_attrs["stopped_step"] == (above[0] + 1) * EVAL_EVERY
      assert max(trial.intermediate_values) == (above[0] + 1) * EVAL_EVERY
    else:
      assert trial.state == optuna.trial.TrialState.COMPLETE
      assert trial.user_attrs["stopped_step"] == STEPS
  assert 0 < pruned < 8


@pytest.mark.parametrize(
  ("change", "message"),
  [
    (dict(space={}), r"^space must be a non-empty dict"),
    (dict(space={"opt": optuna.distributions.CategoricalDistribution(["sgd", "adam"])}),
     r"^space\['opt'\] must be an optuna Float-, Int- or numeric"),
    (dict(n_trials=0), r"^n_trials must be a positive integer; got 0\.$"),
    (dict(parallel=-1), r"^parallel must be a positive integer; got -1\.$"),
    (dict(metric="val_accuracy"), r"^study must maximize 'val_accuracy'"),
    (dict(metric="loss"), r"^metric must be one of"),
    (dict(eval_every=3), r"^eval_every must divide steps; got eval_every=3, steps=20\.$"),
    (dict(study="not a study"), r"^study must be an optuna\.Study; got str\.$"),
  ],
)  # fmt: skip
def test_bad_input_is_one_line_before_any_compute(task, change, message):
  def never(hp):
    raise AssertionError("make_tx was called before the input was checked")

  kwargs = dict(study=optuna.create_study(), space=SPACE, n_trials=4, parallel=2, steps=STEPS,
                key=jax.random.key(0))  # fmt: skip
  kwargs.update(change)
  study, space = kwargs.pop("study"), kwargs.pop("space")
  with pytest.raises(ValueError, match=message) as error:
    search.run_study(study, task, never, space, **kwargs)
  assert "\n" not in str(error.value)
  if isinstance(study, optuna.Study):
    assert not study.trials
