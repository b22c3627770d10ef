"""Optuna studies evaluated ``parallel`` trials at a time, as one vmapped sweep.

Optuna keeps its samplers (TPE, CMA-ES, random), storage and dashboards; lrlab
supplies the batched evaluation: ``parallel`` trials are asked, trained as the
members of one compiled chunk program, reported to the study at every
evaluation (so Optuna's pruners act at the segment boundaries, and a pruned
trial stops costing compute at once), and told their final value.
Needs the optional extra ``lrlab[optuna]``.
"""

from collections.abc import Mapping, Sequence
from typing import Any

import jax
import numpy as np

from lrlab.search import driver
from lrlab.search.members import Ledger, Population
from lrlab.sweep.programs import MakeTx


def _optuna():
  try:
    import optuna
  except ImportError as error:  # pragma: no cover - the extra is installed in the tests
    raise ImportError(
      "lrlab.search.run_study needs Optuna: pip install 'lrlab[optuna]' (or pip install optuna)."
    ) from error
  return optuna


def _check_space(optuna, space: Any) -> dict[str, Any]:
  if not isinstance(space, Mapping) or not space:
    raise ValueError(
      f"space must be a non-empty dict of names to optuna distributions; got {space!r}."
    )
  numeric = (optuna.distributions.FloatDistribution, optuna.distributions.IntDistribution)
  for name, distribution in space.items():
    categorical = isinstance(distribution, optuna.distributions.CategoricalDistribution)
    if categorical and all(
      isinstance(c, int | float) and not isinstance(c, bool) for c in distribution.choices
    ):
      continue
    if not isinstance(distribution, numeric):
      raise ValueError(
        f"space[{name!r}] must be an optuna Float-, Int- or numeric CategoricalDistribution "
        f"(every hyperparameter is a traced number); got {distribution!r}."
      )
  return dict(space)


class _Pruning(driver.Plan):
  """Report every live trial's metric at each evaluation; drop those the pruner prunes."""

  def __init__(self, members, trials, metric, eval_every, prune):
    self.members, self.trials, self.metric = members, trials, metric
    self.eval_every, self.prune = eval_every, prune
    self.pruned = np.zeros(len(trials), bool)
    self.final_members = len(trials)
    self.extra = {}

  def begin(self, seed: int) -> np.ndarray:
    return np.arange(len(self.trials))

  def after(self, seed: int, step: int, population: Population, ledger: Ledger) -> None:
    alive = population.alive
    values = ledger.evaluations[self.metric][alive, step // self.eval_every]
    keep = np.ones(len(alive), bool)
    for i, (row, value) in enumerate(zip(alive, values, strict=True)):
      if not np.isfinite(value) or ledger.diverged[row]:
        continue  # a diverged trial is told at the end; Optuna refuses non-finite reports
      trial = self.trials[row]
      trial.report(float(value), step)
      if self.prune and trial.should_prune():
        keep[i], self.pruned[row] = False, True
    if not keep.all():
      positions = np.flatnonzero(keep)
      hp = {k: v[positions] for k, v in population.hp.items()}
      population.select(positions, alive[positions], hp)


def run_study(
  study: Any,
  task: Any,
  make_tx: MakeTx,
  space: Mapping[str, Any],
  *,
  n_trials: int,
  parallel: int,
  steps: int,
  key: jax.Array,
  metric: str = "val_loss",
  seed: int = 0,
  batch_size: int | None = None,
  eval_every: int | None = None,
  prune: bool = True,
  devices: Sequence[jax.Device] | None = None,
  chunk_size: int | None = None,
  divergence_factor: float = 10.0,
) -> Any:
  """Run ``n_trials`` trials of an ``optuna.Study``, ``parallel`` at a time as one sweep.

  Each batch asks ``parallel`` trials (``study.ask(space)``), trains them as
  the members of one compiled chunk program (the engine's, with seed ``seed``
  of ``key``: every trial sees the same initial parameters and minibatches,
  so its value does not depend on its batch), reports ``metric`` at every
  evaluation (``trial.report(value, step)``) and, with ``prune``, stops the
  trials Optuna's pruner prunes there (told ``PRUNED``); the rest are told
  ``metric`` at the budget. A diverged trial is told the worst value
  (``inf`` for a loss, ``-inf`` for an accuracy) and gets the user attribute
  ``diverged``. Every trial gets ``stopped_step``. Only the batching differs
  from a user's loop of ``ask``/train/``tell``: with a sampler that does not
  learn between asks (random, or TPE during its startup trials) the trials
  and values are those of a sequential study; TPE past its startup sees the
  results batch by batch.

  Args:
    study: an ``optuna.Study``, single objective, its direction that of
      ``metric`` (minimize a loss, maximize an accuracy).
    task: an :class:`lrlab.tasks.Task` or a registered task name.
    make_tx: ``hp -> optax.GradientTransformation``; ``hp`` has the names of ``space``.
    space: ``{name: optuna distribution}``, non-empty; float, int or numeric categorical.
    n_trials: trials to run, > 0.
    parallel: trials per batch, > 0.
    steps: updates per trial, > 0.
    key: a ``jax.random`` key.
    metric: ``"val_loss"`` (default), ``"val_accuracy"`` or ``"train_loss"``.
    seed: the seed all trials train with.
    batch_size: examples per minibatch, or ``None`` for full batch.
    eval_every: steps between evaluations and reports (default ``steps``); must divide it.
    prune: act on ``trial.should_prune()`` at each report (then every evaluation ends a
      segment); ``False``: each batch trains in one segment, and the reports are made after.
    devices, chunk_size, divergence_factor: as in :func:`lrlab.sweep.run`.

  Returns:
    The study, with the new trials.
  """
  optuna = _optuna()
  if not isinstance(study, optuna.Study):
    raise ValueError(f"study must be an optuna.Study; got {type(study).__name__}.")
  space = _check_space(optuna, space)
  for name, value in (("n_trials", n_trials), ("parallel", parallel)):
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
      raise ValueError(f"{name} must be a positive integer; got {value!r}.")
  if len(study.directions) != 1:
    raise ValueError(f"study must have one objective; got {len(study.directions)} directions.")
  example = {
    k: np.zeros(1, np.int64 if _is_int(optuna, d) else np.float64) for k, d in space.items()
  }
  eval_every = steps if eval_every is None else eval_every
  task, _, seeds, eval_every = driver.check_common(
    task, make_tx, example, metric, steps, eval_every, eval_every, [seed], key, 0.0, "eval_every"
  )  # fmt: skip
  wanted = "MAXIMIZE" if metric.endswith("accuracy") else "MINIMIZE"
  if study.direction.name != wanted:
    raise ValueError(
      f"study must {wanted.lower()} {metric!r}; got a study that {study.direction.name.lower()}s."
    )
  driver.check_accuracy(task, metric)
  worst = -np.inf if wanted == "MAXIMIZE" else np.inf
  done = 0
  while done < n_trials:
    trials = [study.ask(space) for _ in range(min(parallel, n_trials - done))]
    members = {
      k: np.asarray([t.params[k] for t in trials], example[k].dtype) for k in space
    }  # fmt: skip
    plan = _Pruning(members, trials, metric, eval_every, prune)
    (ledger,), _, _, _ = driver.drive(
      plan, task, make_tx, steps=steps, segment_steps=eval_every if prune else steps,
      batch_size=batch_size,
      eval_every=eval_every, seeds=seeds, key=key, devices=devices, chunk_size=chunk_size,
      divergence_factor=divergence_factor, checkpoint_dir=None, checkpoint_interval=0.0,
      should_stop=None, config={"method": "run_study", "metric": metric},
    )  # fmt: skip
    final = ledger.evaluations[metric][:, -1]
    for k, trial in enumerate(trials):
      if not prune:  # one segment: report every evaluation but the last now, for dashboards
        for e in range(1, steps // eval_every):
          value = ledger.evaluations[metric][k, e]
          if np.isfinite(value) and not ledger.diverged[k]:
            trial.report(float(value), e * eval_every)
      trial.set_user_attr("stopped_step", int(ledger.stopped_step[k]))
      if plan.pruned[k]:
        study.tell(trial, state=optuna.trial.TrialState.PRUNED)
      elif ledger.diverged[k] or not np.isfinite(final[k]):
        trial.set_user_attr("diverged", True)
        study.tell(trial, float(worst))
      else:
        study.tell(trial, float(final[k]))
    done += len(trials)
  return study


def _is_int(optuna, distribution) -> bool:
  if isinstance(distribution, optuna.distributions.IntDistribution):
    return True
  if isinstance(distribution, optuna.distributions.CategoricalDistribution):
    return all(isinstance(c, int) for c in distribution.choices)
  return False
