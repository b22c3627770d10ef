"""run_study: an Optuna study evaluated in parallel batches gives a sequential study's trials."""

import json
import os

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
        key=key, eval_every=EVAL_EVERY, chunk_size=1, devices=jax.devices()[:1], progress=False,
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


def test_a_trial_diverging_late_reports_its_healthy_evaluations_with_or_without_pruning(task):
  """lr = 2.1 > 2 / L diverges after step 24 (loss above 10x the first): its reports before then
  are made alike by both paths, the one reporting during training and the one reporting after."""
  space = {"lr": optuna.distributions.CategoricalDistribution([2.1])}
  reported = {}
  for prune in (True, False):
    study = optuna.create_study(pruner=optuna.pruners.NopPruner())
    search.run_study(study, task, _sgd, space, n_trials=1, parallel=1, steps=40, eval_every=4,
                     key=jax.random.key(0), prune=prune, chunk_size=1)  # fmt: skip
    (trial,) = study.trials
    assert trial.user_attrs["diverged"] and trial.value == np.inf
    reported[prune] = trial.intermediate_values
  full = sweep.run(task, _sgd, {"lr": np.array([2.1])}, steps=40, batch_size=None,
                   key=jax.random.key(0), eval_every=4, chunk_size=1, progress=False)  # fmt: skip
  first = int(full.history.diverged_step[0, 0])
  assert 0 < first < 36
  expected = [t for t in range(4, 40, 4) if t <= first]
  assert sorted(reported[True]) == sorted(reported[False]) == expected
  assert reported[True] == reported[False]


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


def test_a_pruner_that_compares_trials_sees_a_batch_only_once_it_is_told(task):
  """MedianPruner (Optuna's default) compares a trial with the COMPLETE ones: the batch's trials
  are pruned as ``parallel`` workers reporting in step would prune them (replayed with Optuna on
  the full curves), not as a sequential study does (the docstring says so)."""
  key = jax.random.key(0)
  space = {"lr": optuna.distributions.FloatDistribution(1e-3, 1.9, log=True)}  # none diverge
  make = lambda: optuna.create_study(
    sampler=optuna.samplers.RandomSampler(seed=0),
    pruner=optuna.pruners.MedianPruner(n_startup_trials=2, n_warmup_steps=0),
  )
  batched = make()
  search.run_study(batched, task, _sgd, space, n_trials=8, parallel=4, steps=STEPS, key=key,
                   eval_every=EVAL_EVERY, chunk_size=4)  # fmt: skip
  lrs = np.array([t.params["lr"] for t in batched.trials])
  full = sweep.run(task, _sgd, {"lr": lrs}, steps=STEPS, batch_size=None, key=key,
                   eval_every=EVAL_EVERY, chunk_size=4, progress=False)  # fmt: skip
  curves = full.history.val_loss[0]

  def replay(batch):  # workers that ask `batch` trials, report in step, then tell
    study = make()
    for first in range(0, 8, batch):
      trials, pruned = [study.ask(space) for _ in range(batch)], set()
      for e in range(1, STEPS // EVAL_EVERY):
        for k, trial in enumerate(trials):
          if k not in pruned:
            trial.report(float(curves[first + k, e]), e * EVAL_EVERY)
            pruned |= {k} if trial.should_prune() else set()
      for k, trial in enumerate(trials):
        if k in pruned:
          study.tell(trial, state=optuna.trial.TrialState.PRUNED)
        else:
          study.tell(trial, float(curves[first + k, -1]))
    return study.trials

  states = lambda trials: [t.state for t in trials]
  in_step, sequential = replay(4), replay(1)
  assert [t.params for t in in_step] == [t.params for t in batched.trials]
  assert states(batched.trials) == states(in_step)
  values = lambda trials: [t.value for t in trials]
  np.testing.assert_allclose(values(batched.trials), values(in_step), rtol=1e-5)
  assert optuna.trial.TrialState.PRUNED in states(in_step)
  assert states(sequential) != states(in_step)  # a sequential study prunes more here


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
    (dict(seed=-1), r"^seed must be an integer in \[0, 4294967296\); got -1\.$"),
    (dict(prune="no"), r"^prune must be True or False; got 'no'\.$"),
    (dict(space={"learning rate": SPACE["lr"]}),
     r"^space names must be valid Python identifiers; got 'learning rate'\.$"),
    (dict(space={"fold": SPACE["lr"]}), r"^space must not have an axis named 'fold'"),
    # Checked before the study is asked for trials (they were left RUNNING in its storage).
    (dict(chunk_size=0), r"^chunk_size must be None or a positive multiple of the number of devi"),
    (dict(batch_size=10**6), r"^batch_size must be None \(full batch\) or an integer in \[1, "),
    (dict(divergence_factor=1.0), r"^divergence_factor must be a number > 1; got 1\.0\.$"),
    (dict(devices=[]), r"^devices must be None or distinct jax devices"),
    (dict(should_stop=True), r"^should_stop must be None or a function \(\) -> bool; got True\.$"),
    (dict(checkpoint_interval=None), r"^checkpoint_interval must be a number; got None\.$"),
    (dict(checkpoint_interval="30"), r"^checkpoint_interval must be a number; got '30'\.$"),
    (dict(divergence_factor=None), r"^divergence_factor must be a number; got None\.$"),
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


# ---------------------------------------------------------------- checkpoint and resume
RESUMABLE = dict(n_trials=12, parallel=4, steps=STEPS, eval_every=EVAL_EVERY, chunk_size=4)


class _Crash(Exception):
  """Stands for SIGKILL: raised where the process would die, after what it saved."""


def _tpe(seed):
  return optuna.samplers.TPESampler(seed=seed, n_startup_trials=4)


def _journal(path):
  """Optuna's file storage: a study that outlives its Python object, as after a crash."""
  from optuna.storages import JournalStorage

  try:
    from optuna.storages.journal import JournalFileBackend
  except ImportError:  # Optuna 3, which pyproject allows, names it JournalFileStorage
    from optuna.storages import JournalFileStorage as JournalFileBackend

  return JournalStorage(JournalFileBackend(str(path)))


def _reference(task, key, sampler=None, pruner=None):
  """The uninterrupted study the resumed ones must equal: TPE (or ``sampler``), a pruner that
  prunes some."""
  sampler = _tpe(0) if sampler is None else sampler
  study = optuna.create_study(sampler=sampler, pruner=pruner or _threshold())
  return search.run_study(study, task, _sgd, SPACE, key=key, **RESUMABLE)


def _threshold():
  """A pruner that looks at each trial alone."""
  return optuna.pruners.ThresholdPruner(upper=0.26)


def _median():
  """A pruner that compares a trial with the finished ones, from its report at step 12 on."""
  return optuna.pruners.MedianPruner(n_startup_trials=4, n_warmup_steps=3 * EVAL_EVERY)


def _assert_same_trials(ours, theirs):
  assert len(ours) == len(theirs)
  states = [t.state for t in theirs]
  assert optuna.trial.TrialState.PRUNED in states and optuna.trial.TrialState.COMPLETE in states
  for a, b in zip(ours, theirs, strict=True):
    assert (a.params, a.state, a.value) == (b.params, b.state, b.value)
    assert a.intermediate_values == b.intermediate_values
    mark = search.study._Progress.MARK  # the checkpointed run's trials say whose they are
    assert {k: v for k, v in a.user_attrs.items() if k != mark} == b.user_attrs


def test_a_crash_mid_batch_resumes_to_the_uninterrupted_study(task, tmp_path):
  """Killed in batch 2 after its second segment's checkpoint (should_stop's 9th call: 5
  boundaries and one check between batches per batch), then resumed from the study's storage
  with a differently seeded sampler: the saved sampler state and the batch's checkpoint give
  the uninterrupted study's trials, reports and pruning."""
  key = jax.random.key(0)
  calls = []

  def crash_at_the_ninth(n=9):
    calls.append(1)
    if len(calls) == n:
      raise _Crash
    return False

  storage, ckpt = _journal(tmp_path / "journal"), tmp_path / "ckpt"
  pruner = optuna.pruners.ThresholdPruner(upper=0.26)
  study = optuna.create_study(study_name="lr", storage=storage, sampler=_tpe(0), pruner=pruner)
  with pytest.raises(_Crash):
    search.run_study(study, task, _sgd, SPACE, key=key, checkpoint_dir=str(ckpt),
                     checkpoint_interval=0.0, should_stop=crash_at_the_ninth,
                     **RESUMABLE)  # fmt: skip
  assert [t.state.name for t in study.trials].count("RUNNING") == 4  # batch 2, in training
  assert (ckpt / "batch" / "sweep_checkpoint.npz").exists()
  for name in ("study_progress.json", "batch_outcome.npz"):  # as a SIGKILL mid-write leaves
    (ckpt / f".tmp-abc{name}").write_bytes(b"{")
  again = optuna.load_study(study_name="lr", storage=storage, sampler=_tpe(99), pruner=pruner)
  search.run_study(again, task, _sgd, SPACE, key=key, checkpoint_dir=str(ckpt),
                   checkpoint_interval=0.0, **RESUMABLE)  # fmt: skip
  _assert_same_trials(again.trials, _reference(task, key).trials)
  assert sorted(os.listdir(ckpt)) == ["batch"] and os.listdir(ckpt / "batch") == []


def test_a_crash_between_ask_and_record_fails_the_orphans_and_asks_again(
  task, tmp_path, monkeypatch
):
  """Killed after batch 2 was asked, before it was recorded: the resume tells those 4 trials
  FAIL (lrlab_orphan), leaves another worker's running trial alone, and asks again from the
  saved sampler state, so the trials that finish are the uninterrupted study's. (A random
  sampler: TPE, a constant liar by default, would rightly sample around the other worker's
  running trial, which the uninterrupted study does not have.)"""
  key = jax.random.key(0)
  record = search.study._Progress.asked
  batches = []

  def crash_before_the_second_record(self, done, trials):
    batches.append(1)
    if len(batches) == 2:
      raise _Crash
    record(self, done, trials)

  storage, ckpt = _journal(tmp_path / "journal"), tmp_path / "ckpt"
  pruner = optuna.pruners.ThresholdPruner(upper=0.26)
  random = lambda seed: optuna.samplers.RandomSampler(seed=seed)
  study = optuna.create_study(study_name="lr", storage=storage, sampler=random(0), pruner=pruner)
  with monkeypatch.context() as patch:
    patch.setattr(search.study._Progress, "asked", crash_before_the_second_record)
    with pytest.raises(_Crash):
      search.run_study(study, task, _sgd, SPACE, key=key, checkpoint_dir=str(ckpt),
                       **RESUMABLE)  # fmt: skip
  # Another worker on the same storage has a trial running: not an orphan of this run.
  theirs = study.ask(SPACE).number
  again = optuna.load_study(study_name="lr", storage=storage, sampler=random(99), pruner=pruner)
  search.run_study(again, task, _sgd, SPACE, key=key, checkpoint_dir=str(ckpt), **RESUMABLE)
  orphans = [t for t in again.trials if t.user_attrs.get("lrlab_orphan")]
  assert [t.number for t in orphans] == [4, 5, 6, 7]
  assert all(t.state == optuna.trial.TrialState.FAIL for t in orphans)
  assert (theirs, again.trials[theirs].state.name) == (8, "RUNNING")
  kept = [t for t in again.trials if not t.user_attrs.get("lrlab_orphan") and t.number != theirs]
  _assert_same_trials(kept, _reference(task, key, random(0)).trials)


@pytest.mark.parametrize("make_pruner", [_threshold, _median])
def test_a_crash_while_a_batch_is_told_resumes_without_telling_twice(task, tmp_path, make_pruner):
  """Killed while batch 2 was being told, after 2 of its 4 trials (study.tell's 7th call):
  the storage has trials 4 and 5 finished and 6 and 7 running, and the folder still says
  batch 2 is in training. The resume tells the batch what it measured before the crash
  (kept in the folder before the first tell), leaves the two told trials alone (Optuna
  refuses to tell a finished trial twice) and tells the other two: the uninterrupted study's
  trials, reports and pruning. Training the batch again instead would let a pruner that
  compares trials (the median) see trials 4 and 5 finished, which it did not the first time."""
  key = jax.random.key(0)
  storage, ckpt = _journal(tmp_path / "journal"), tmp_path / "ckpt"
  pruner = make_pruner()
  study = optuna.create_study(study_name="lr", storage=storage, sampler=_tpe(0), pruner=pruner)
  tell, told = study.tell, []

  def crash_at_the_seventh_tell(*args, **kwargs):
    if len(told) == 6:
      raise _Crash
    told.append(tell(*args, **kwargs))
    return told[-1]

  study.tell = crash_at_the_seventh_tell
  with pytest.raises(_Crash):
    search.run_study(study, task, _sgd, SPACE, key=key, checkpoint_dir=str(ckpt),
                     checkpoint_interval=0.0, **RESUMABLE)  # fmt: skip
  states = [t.state.name for t in study.trials]
  assert states[:6] == [t.state.name for t in told] and states[6:] == ["RUNNING"] * 2
  assert json.loads((ckpt / "study_progress.json").read_text())["batch"] == [4, 5, 6, 7]
  assert (ckpt / "batch_outcome.npz").exists()  # what batch 2 measured, kept before the tells
  again = optuna.load_study(study_name="lr", storage=storage, sampler=_tpe(99), pruner=pruner)
  search.run_study(again, task, _sgd, SPACE, key=key, checkpoint_dir=str(ckpt),
                   checkpoint_interval=0.0, **RESUMABLE)  # fmt: skip
  _assert_same_trials(again.trials, _reference(task, key, pruner=make_pruner()).trials)
  assert not (ckpt / "batch_outcome.npz").exists()


def test_a_resume_from_before_the_last_reports_prunes_where_the_first_run_did(task, tmp_path):
  """Killed in batch 2 after its report at step 16, its checkpoints not yet due (a long
  checkpoint_interval): the resume trains the batch from step 0 while the storage holds its
  reports up to step 16. Optuna's pruners judge a trial at its last report, so asking them
  again at steps 4 to 12 would prune there trials the first run kept until 12 or later; the
  resume asks only from each trial's last report on, as the first run decided before."""
  key = jax.random.key(0)
  calls = []

  def crash_after_the_report_at_16(n=10):  # 5 calls in batch 1's; batch 2's 5th is step 16
    calls.append(1)
    if len(calls) == n:
      raise _Crash
    return False

  storage, ckpt = _journal(tmp_path / "journal"), tmp_path / "ckpt"
  study = optuna.create_study(study_name="lr", storage=storage, sampler=_tpe(0), pruner=_median())
  with pytest.raises(_Crash):
    search.run_study(study, task, _sgd, SPACE, key=key, checkpoint_dir=str(ckpt),
                     checkpoint_interval=1e9, should_stop=crash_after_the_report_at_16,
                     **RESUMABLE)  # fmt: skip
  assert not (ckpt / "batch" / "sweep_checkpoint.npz").exists()  # batch 2 starts over
  again = optuna.load_study(study_name="lr", storage=storage, sampler=_tpe(99), pruner=_median())
  search.run_study(again, task, _sgd, SPACE, key=key, checkpoint_dir=str(ckpt),
                   checkpoint_interval=1e9, **RESUMABLE)  # fmt: skip
  _assert_same_trials(again.trials, _reference(task, key, pruner=_median()).trials)


def test_stopped_between_batches_resumes_in_the_same_process(task, tmp_path):
  """should_stop says stop after batch 1 (its 6th call): Stopped names the trials done; the
  same in-memory study, run again, finishes as the uninterrupted study."""
  key = jax.random.key(0)
  calls = []
  stop_after_batch_one = lambda: calls.append(1) or len(calls) == 6
  study = optuna.create_study(sampler=_tpe(0), pruner=optuna.pruners.ThresholdPruner(upper=0.26))
  ckpt = str(tmp_path / "ckpt")
  with pytest.raises(sweep.Stopped) as stopped:
    search.run_study(study, task, _sgd, SPACE, key=key, checkpoint_dir=ckpt,
                     should_stop=stop_after_batch_one, **RESUMABLE)  # fmt: skip
  assert stopped.value.position == {"trials_done": 4}
  assert stopped.value.checkpoint_dir == ckpt
  # Another study, or other arguments, are refused in one line before any compute, naming what
  # changed: other steps too, which trained the rest of the study on another budget (and told
  # it as alike). (The message gave the settings' hash, not which of them changed.)
  other, longer = {**RESUMABLE, "n_trials": 8}, {**RESUMABLE, "steps": 2 * STEPS}
  wrongs = (
    (optuna.create_study(sampler=_tpe(0)), RESUMABLE, r'\(study "no-name-[^"]+ there, "'),
    (study, other, r"\(n_trials 12 there, 8 here\)"),
    (study, longer, rf"\(steps {STEPS} there, {2 * STEPS} here\)"),
  )
  for wrong, kwargs, changed in wrongs:
    with pytest.raises(
      ValueError, match=rf"^checkpoint_dir .* holds the progress of another .*{changed}"
    ):
      search.run_study(wrong, task, _sgd, SPACE, key=key, checkpoint_dir=ckpt, **kwargs)
  search.run_study(study, task, _sgd, SPACE, key=key, checkpoint_dir=ckpt, **RESUMABLE)
  _assert_same_trials(study.trials, _reference(task, key).trials)


def test_a_stop_asked_at_a_batchs_last_boundary_stops_before_the_next_batch(task, tmp_path):
  """should_stop says True once, at batch 1's last segment boundary (its 5th call): that batch
  has nothing left to train, so it is told, and the study stops before asking batch 2, as
  lrlab.sweep.run stops at a chunk's last segment when chunks remain. The resume finishes as
  the uninterrupted study."""
  key = jax.random.key(0)
  calls = []
  stop_at_the_fifth = lambda: calls.append(1) or len(calls) == 5
  study = optuna.create_study(sampler=_tpe(0), pruner=_threshold())
  ckpt = str(tmp_path / "ckpt")
  with pytest.raises(sweep.Stopped) as stopped:
    search.run_study(study, task, _sgd, SPACE, key=key, checkpoint_dir=ckpt,
                     should_stop=stop_at_the_fifth, **RESUMABLE)  # fmt: skip
  assert stopped.value.position == {"trials_done": 4}
  assert len(study.trials) == 4
  search.run_study(study, task, _sgd, SPACE, key=key, checkpoint_dir=ckpt, **RESUMABLE)
  _assert_same_trials(study.trials, _reference(task, key).trials)


def test_a_damaged_progress_file_is_refused_in_one_line(task, tmp_path):
  # A truncated study_progress.json raised json's JSONDecodeError, naming no file.
  (tmp_path / "study_progress.json").write_text('{"study": "s", "n_tr')
  study = optuna.create_study(sampler=_tpe(0))
  with pytest.raises(ValueError, match=r"study_progress.json' is damaged \(Unterminated string"):
    search.run_study(study, task, _sgd, SPACE, key=jax.random.key(0), checkpoint_dir=str(tmp_path),
                     **RESUMABLE)  # fmt: skip
  assert not study.trials  # refused before any trial was asked
