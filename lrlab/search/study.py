"""Optuna studies evaluated ``parallel`` trials at a time, as one vmapped sweep.

Optuna keeps its samplers (TPE, CMA-ES, random), storage and dashboards; lrlab
supplies the batched evaluation: ``parallel`` trials are asked, trained as the
members of one compiled chunk program, reported to the study at every
evaluation (so Optuna's pruners act at the segment boundaries, and a pruned
trial stops costing compute at once), and told their final value.
Needs the optional extra ``lrlab[optuna]``.

With ``checkpoint_dir`` a study survives a crash: Optuna's storage keeps the
trials told, and the folder keeps what it does not (:class:`_Progress`): the
trials of the batch in training, the sampler's state and the batch's own
checkpoint, so a study in persistent storage resumes to the trials an
uninterrupted run gives.
"""

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import jax
import numpy as np

from lrlab.search import driver
from lrlab.search.members import Ledger, Population
from lrlab.search.study_progress import _Progress
from lrlab.sweep import arguments, checkpoint
from lrlab.sweep import devices as devices_lib
from lrlab.sweep.engine import Stopped
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
  """Report every live trial's metric at each evaluation; drop those the pruner prunes.

  ``before``: a resumed batch's trials as the storage had them (``{number: FrozenTrial}``,
  empty for a new batch); the steps they reported then are not reported again.
  """

  def __init__(self, members, trials, metric, eval_every, prune, before):
    self.members, self.trials, self.metric = members, trials, metric
    self.reported = {n: set(t.intermediate_values) for n, t in before.items()}
    # The first run went on past every reported step but the last: it did not prune there.
    self.last = {n: max(t.intermediate_values, default=-1) for n, t in before.items()}
    self.eval_every, self.prune = eval_every, prune
    self.final_members = len(trials)
    self.extra = {"pruned": np.zeros(len(trials), bool)}  # saved with a batch's checkpoint

  @property
  def pruned(self) -> np.ndarray:
    return self.extra["pruned"]

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
      if step not in self.reported.get(trial.number, ()):
        trial.report(float(value), step)
      if self.prune and step >= self.last.get(trial.number, -1) and trial.should_prune():
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
  checkpoint_dir: str | None = None,
  checkpoint_interval: float = 30.0,
  should_stop: Callable[[], bool] | None = None,
) -> Any:
  """Run ``n_trials`` trials of an ``optuna.Study``, ``parallel`` at a time as one sweep.

  Each batch asks ``parallel`` trials (``study.ask(space)``), trains them as the members of one
  compiled chunk program (the engine's, with seed ``seed`` of ``key``: every trial sees the same
  initial parameters and minibatches, so its value does not depend on its batch), reports ``metric``
  at every evaluation before the budget (``trial.report``) and, with ``prune``, stops the trials
  Optuna's pruner prunes there (told ``PRUNED``, valued at the last report); the rest are told
  ``metric`` at the budget. A diverged trial is told the worst value (``inf`` for a loss, ``-inf``
  for an accuracy) and gets the user attribute ``diverged``. Every trial gets ``stopped_step``. Only
  the batching differs from a user's loop of ``ask``/train/``tell``: with a sampler that does not
  learn between asks (random, or TPE during its startup trials) and a pruner that judges each trial
  alone (``ThresholdPruner``) or none, the trials are those of a sequential study, and their
  values too up to float rounding (a batch of another width rounds its products otherwise: 3e-5
  relative was seen for one trial; bit for bit where the widths agree). A
  pruner that compares a trial with finished ones (``MedianPruner``, Optuna's default, and its kin)
  sees a batch's trials only once it is told, as ``parallel`` workers in step would: it may keep a
  trial a sequential study prunes. TPE past its startup sees the results batch by batch (and, as a
  constant liar, Optuna 5's default, the batch's earlier asks as running trials, which spreads a
  batch out).

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
    checkpoint_dir: a folder that keeps what a crash would lose (:class:`_Progress`); called again
      with the same arguments and the study from its storage (``optuna.load_study``, or
      ``create_study(..., load_if_exists=True)``), the search resumes: the batch in training from
      its last checkpoint, the sampler from its saved state (replacing the one the study was loaded
      with), and it runs the ``n_trials`` of the first call, not ``n_trials`` more. A study in
      memory resumes only in the process that ran it (after :class:`lrlab.sweep.Stopped`). One
      process only. Cleared at the end.
    checkpoint_interval: seconds between the batch's checkpoints (at segment boundaries).
    should_stop: called at every segment boundary and between batches; ``True``:
      save and raise :class:`lrlab.sweep.Stopped` (needs ``checkpoint_dir`` to resume).

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
  if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or not 0 <= seed < 2**32:
    raise ValueError(f"seed must be an integer in [0, 4294967296); got {seed!r}.")
  if not isinstance(prune, bool | np.bool_):
    raise ValueError(f"prune must be True or False; got {prune!r}.")
  example = {
    k: np.zeros(1, np.int64 if _is_int(optuna, d) else np.float64) for k, d in space.items()
  }
  eval_every = steps if eval_every is None else eval_every
  task, _, seeds, eval_every = driver.check_common(
    task, make_tx, example, metric, steps, eval_every, eval_every, [seed], key,
    checkpoint_interval, "eval_every", "space", should_stop=should_stop,
    divergence_factor=divergence_factor, checkpoint_dir=checkpoint_dir,
  )  # fmt: skip
  driver.check_run(task, steps, batch_size, eval_every, divergence_factor, devices, chunk_size)
  if checkpoint_dir is not None and jax.process_count() > 1:
    raise ValueError(
      f"checkpoint_dir works with one process; got {jax.process_count()} (each process asks "
      "its own study, which a shared storage would mix): pass checkpoint_dir=None."
    )
  wanted = "MAXIMIZE" if metric.endswith("accuracy") else "MINIMIZE"
  if study.direction.name != wanted:
    raise ValueError(
      f"study must {wanted.lower()} {metric!r}; got a study that {study.direction.name.lower()}s."
    )
  arguments.check_accuracy(task, metric)
  worst = -np.inf if wanted == "MAXIMIZE" else np.inf
  progress = None
  if checkpoint_dir is not None:  # a resume must train what the first call trained
    named = dict(task=task.name, make_tx=arguments.qualified_name(make_tx), space=repr(space),
      steps=steps, metric=metric, seed=seed, key=arguments.key_data(key), batch_size=batch_size,
      eval_every=eval_every, prune=prune, divergence_factor=divergence_factor)  # fmt: skip
    settings = tuple(named.values())  # hashed as before the settings were named
    digest = checkpoint.fingerprint({"run_study": settings}, {}, *arguments.task_arrays(task))
    progress = _Progress(checkpoint_dir, study, n_trials, parallel, digest[:16], named)
  done, trials, before = (0, None, {}) if progress is None else progress.resume(optuna)
  asked = []  # a stop asked at a batch's last segment boundary holds: no next batch starts
  stop = None if should_stop is None else lambda: asked.append(bool(should_stop())) or any(asked)
  while done < n_trials:
    if trials is None:
      ask = study.ask if progress is None else progress.ask
      trials = [ask(space) for _ in range(min(parallel, n_trials - done))]
      if progress is not None:
        progress.asked(done, trials)
    members = {k: np.asarray([t.params[k] for t in trials], example[k].dtype) for k in space}
    plan = _Pruning(members, trials, metric, eval_every, prune, before)
    outcome = None if progress is None else progress.outcome()
    if outcome is not None:  # trained before a crash while it was told: tell what it measured
      ledger, plan.extra["pruned"] = outcome
    else:
      try:
        (ledger,), _, _, _ = driver.drive(
          plan, task, make_tx, steps=steps, segment_steps=eval_every if prune else steps,
          batch_size=batch_size, eval_every=eval_every, seeds=seeds, key=key, devices=devices,
          chunk_size=chunk_size, divergence_factor=divergence_factor,
          checkpoint_dir=None if progress is None else progress.batch_dir,
          checkpoint_interval=checkpoint_interval, should_stop=stop,
          config={"method": "run_study", "metric": metric},
        )  # fmt: skip
      except Stopped as stopped:
        raise Stopped({"trials_done": done, **stopped.position}, checkpoint_dir) from None
      if progress is not None:
        progress.trained(ledger, plan.pruned)
    _tell(optuna, study, trials, before, plan, ledger, metric, steps, eval_every, prune, worst)
    done += len(trials)
    trials, before = None, {}
    if progress is not None:
      progress.told(done)
    if done < n_trials and stop is not None and devices_lib.in_any_process(stop())[0]:
      raise Stopped({"trials_done": done}, checkpoint_dir)
  if progress is not None:
    progress.clear()
  return study


def _tell(
  optuna, study, trials, before, plan, ledger, metric, steps, eval_every, prune, worst
) -> None:
  """Tell the study how a batch's trials ended; a trial told before a crash (finished in
  ``before``, :class:`_Pruning`'s) is left alone."""
  final = ledger.evaluations[metric][:, -1]
  for k, trial in enumerate(trials):
    if trial.number in before and before[trial.number].state.name != "RUNNING":
      continue
    if not prune:  # one segment: report every evaluation but the last now, for dashboards
      for e in range(1, steps // eval_every):
        value = ledger.evaluations[metric][k, e]
        if np.isfinite(value) and not 0 <= ledger.diverged_step[k] < e * eval_every:  # healthy
          trial.report(float(value), e * eval_every)
    trial.set_user_attr("stopped_step", int(ledger.stopped_step[k]))
    if plan.pruned[k]:
      study.tell(trial, state=optuna.trial.TrialState.PRUNED)
    elif ledger.diverged[k] or not np.isfinite(final[k]):
      trial.set_user_attr("diverged", True)
      study.tell(trial, float(worst))
    else:
      study.tell(trial, float(final[k]))


def _is_int(optuna, distribution) -> bool:
  if isinstance(distribution, optuna.distributions.IntDistribution):
    return True
  if isinstance(distribution, optuna.distributions.CategoricalDistribution):
    return all(isinstance(c, int) for c in distribution.choices)
  return False
