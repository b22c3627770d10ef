"""run_study with Optuna's CMA-ES sampler (the ``cmaes`` package, in the ``optuna`` extra): the
batched study samples as a user's loop of the same batches does."""

import jax
import numpy as np
import pytest

from lrlab import data, optimizers, search, sweep, tasks

optuna = pytest.importorskip("optuna")
pytest.importorskip("cmaes")
optuna.logging.set_verbosity(optuna.logging.WARNING)

# CMA-ES needs two dimensions at least (on one, Optuna falls back to its random sampler).
SPACE = {
  "lr": optuna.distributions.FloatDistribution(1e-3, 1.0, log=True),
  "momentum": optuna.distributions.FloatDistribution(0.0, 0.9),
}
STEPS, EVAL_EVERY, PARALLEL, TRIALS = 20, 4, 4, 16


def _sgd(hp):
  return optimizers.sgd(hp["lr"], momentum=hp["momentum"])


def _cma():
  return optuna.samplers.CmaEsSampler(seed=0, n_startup_trials=PARALLEL, popsize=PARALLEL)


def test_cma_es_gives_a_sequential_studys_trials_and_values():
  """Asked and told in batches of 4 (a CMA-ES generation of 4 after 4 random startup trials),
  the batched study and a loop of single lrlab runs ask the same points and get the same
  values; the trials after the startup are CMA-ES's own (they carry its generation)."""
  task = tasks.quadratic_task(data.quadratic(3, eigenvalues=np.array([0.05, 0.2, 1.0]), seed=0))
  key = jax.random.key(0)
  batched = optuna.create_study(sampler=_cma())
  search.run_study(batched, task, _sgd, SPACE, n_trials=TRIALS, parallel=PARALLEL, steps=STEPS,
                   key=key, eval_every=EVAL_EVERY, prune=False, chunk_size=PARALLEL)  # fmt: skip

  alone = optuna.create_study(sampler=_cma())
  for _ in range(TRIALS // PARALLEL):
    trials = [alone.ask(SPACE) for _ in range(PARALLEL)]
    for trial in trials:
      result = sweep.run(
        task, _sgd, {name: np.array([value]) for name, value in trial.params.items()},
        steps=STEPS, batch_size=None, key=key, eval_every=EVAL_EVERY, chunk_size=1,
        devices=jax.devices()[:1], progress=False,
      )  # fmt: skip
      diverged = bool(result.history.diverged[0, 0])
      alone.tell(trial, np.inf if diverged else float(result.history.val_loss[0, 0, -1]))

  assert len(batched.trials) == len(alone.trials) == TRIALS
  for ours, theirs in zip(batched.trials, alone.trials, strict=True):
    assert ours.params == theirs.params
    np.testing.assert_allclose(ours.value, theirs.value, rtol=1e-5)
  generation = lambda t: next((v for k, v in t.system_attrs.items() if k.endswith("generation")))
  relative = batched.trials[PARALLEL:]
  assert all(generation(t) >= 0 for t in relative)
  assert len({generation(t) for t in relative}) == (TRIALS - PARALLEL) // PARALLEL
