"""What a crash of :func:`lrlab.search.run_study` would lose, kept in its ``checkpoint_dir``."""

import base64
import json
import os
import pickle
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from lrlab import _checks
from lrlab.search.members import Ledger
from lrlab.sweep import checkpoint, storage


class _Progress:
  """What a crash of :func:`lrlab.search.run_study` would lose, kept in ``checkpoint_dir``.

  ``study_progress.json`` (written atomically after each batch is asked and after it is told)
  holds the call's settings and their hash with the data's (a resume with others is refused,
  naming the settings that changed), the trials done, the batch's numbers, the number the next
  trial gets and the sampler's state (pickled, as Optuna's FAQ saves a sampler for reproducible
  resumes); ``batch/`` holds the batch's checkpoint (:func:`lrlab.search.driver.drive`'s), and
  ``batch_outcome.npz`` what the trained batch measured, kept until it is told (a crash while
  telling it resumes by telling, not by training it again beside its trials told already). A crash
  between an ask and the record of it leaves trials RUNNING that no batch owns: a resume tells
  them ``FAIL`` (user attribute ``lrlab_orphan``) and asks again from the saved state, so the
  trials that complete are those of an uninterrupted run. Each trial is marked as this folder's
  when asked (:data:`MARK`), so that the running trials of other workers on a shared storage are
  never taken for orphans."""

  FILENAME = "study_progress.json"
  #: The user attribute that marks the trials this folder's run asked (its absolute path).
  MARK = "lrlab_checkpoint_dir"

  def __init__(self, directory, study, n_trials, parallel, settings: str, named: dict[str, Any]):
    self.path, self.named = Path(directory) / self.FILENAME, storage.normal_json("settings", named)
    self.mark = str(Path(directory).resolve())
    self.batch_dir = os.path.join(directory, "batch")
    self.study, self.mine = study, dict(study=study.study_name, n_trials=n_trials)
    self.mine.update(parallel=parallel, settings=settings)

  def resume(self, optuna) -> tuple[int, list | None, dict]:
    """``(trials done, the batch in training or None, that batch's trials as the storage has
    them: {number: FrozenTrial})``; restores the sampler."""
    if not self.path.exists():
      return 0, None, {}
    try:
      saved = json.loads(self.path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
      raise ValueError(
        f"{str(self.path)!r} is damaged ({error}): delete it to start over."
      ) from None
    theirs = {k: saved.get(k, v) for k, v in self.mine.items()}  # an older file: no settings
    if theirs != self.mine:  # name what changed (an older file kept only the settings' hash)
      there, here = {**theirs, **saved.get("named", {})}, {**self.mine, **self.named}
      if "named" in saved:
        there.pop("settings"), here.pop("settings")
      raise ValueError(
        f"checkpoint_dir {str(self.path.parent)!r} holds the progress of another run_study call "
        f"({_checks.differences(there, here) or 'the same settings, other data'}): resume with "
        "the same arguments, or clear it."
      )
    by_number = {t.number: t for t in self.study.get_trials(deepcopy=False)}
    if len(by_number) < saved["next_number"]:
      raise ValueError(
        f"study {self.study.study_name!r} has {len(by_number)} trials, fewer than the "
        f"{saved['next_number']} checkpoint_dir recorded: pass the study loaded from its "
        "storage (optuna.load_study)."
      )
    # A live trial is Trial(study, its storage id), which Optuna reads from the FrozenTrial too.
    live = lambda number: optuna.trial.Trial(self.study, by_number[number]._trial_id)
    for number, trial in sorted(by_number.items()):
      ours = trial.user_attrs.get(self.MARK) == self.mark  # not another worker's on the storage
      if number >= saved["next_number"] and trial.state.name == "RUNNING" and ours:
        live(number).set_user_attr("lrlab_orphan", True)  # asked, never recorded
        self.study.tell(number, state=optuna.trial.TrialState.FAIL)
    self.study.sampler = pickle.loads(base64.b64decode(saved["sampler"]))
    if saved["batch"] is None:
      return saved["done"], None, {}
    return (
      saved["done"],
      [live(n) for n in saved["batch"]],
      {n: by_number[n] for n in saved["batch"]},
    )

  def ask(self, space: Mapping[str, Any]) -> Any:
    """``study.ask(space)``, the trial marked as this run's at once (:data:`MARK`)."""
    trial = self.study.ask(space)
    trial.set_user_attr(self.MARK, self.mark)
    return trial

  def asked(self, done: int, trials: list) -> None:
    """Record a batch just asked (and clear the previous batch's checkpoint)."""
    if os.path.isdir(self.batch_dir):
      checkpoint.clear(self.batch_dir)
    self._outcome_path().unlink(missing_ok=True)
    self._write(done, [t.number for t in trials])

  def told(self, done: int) -> None:
    """Record that the batch in training was told."""
    self._write(done, None)
    self._outcome_path().unlink(missing_ok=True)

  def _outcome_path(self) -> Path:
    return self.path.parent / "batch_outcome.npz"

  def trained(self, ledger: Ledger, pruned: np.ndarray) -> None:
    """Keep what the batch measured before it is told (a crash mid-tell must not retrain it:
    the pruner would then see the batch's own trials told)."""
    arrays = {**ledger.arrays(), "pruned": pruned}
    storage.atomic_write(self._outcome_path(), lambda f: np.savez(f, **arrays), binary=True)

  def outcome(self) -> tuple[Ledger, np.ndarray] | None:
    """What :meth:`trained` kept for the batch in training, or ``None``."""
    if not self._outcome_path().exists():
      return None
    with np.load(self._outcome_path()) as saved:
      arrays = {k: saved[k] for k in saved.files}
    pruned = arrays.pop("pruned")
    return Ledger.from_arrays(arrays), pruned

  def clear(self) -> None:
    """Remove what the finished study no longer needs, with any killed write's temporaries."""
    if os.path.isdir(self.batch_dir):
      checkpoint.clear(self.batch_dir)
    storage.remove(self.path)
    storage.remove(self._outcome_path())

  def _write(self, done: int, batch: list[int] | None) -> None:
    sampler = base64.b64encode(pickle.dumps(self.study.sampler)).decode("ascii")
    record = {**self.mine, "named": self.named, "done": done, "batch": batch, "sampler": sampler}
    record["next_number"] = len(self.study.get_trials(deepcopy=False))
    self.path.parent.mkdir(parents=True, exist_ok=True)
    storage.atomic_write(self.path, lambda f: json.dump(record, f))
