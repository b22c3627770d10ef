"""A checkpoint's fingerprint covers the chunk's programs: an edit to the model's or
``make_tx``'s code is refused, and the same sweep fingerprints alike in another process."""

import os
import subprocess
import sys
import textwrap

import jax
import numpy as np
import optax
import pytest

from lrlab import optimizers, search, sweep, tasks
from lrlab.sweep import checkpoint
from tests import zoo

SETTINGS = dict(steps=4, batch_size=16, key=jax.random.key(0), eval_every=2, progress=False)


def _sgd(hp):
  return optimizers.sgd(hp["lr"])


def _edited(hp):  # _sgd with its code edited, under the same name (set below): half the rate
  return optimizers.sgd(0.5 * hp["lr"])


_edited.__qualname__ = _sgd.__qualname__


def _stop_at_first(*_):
  return True


def test_a_streamed_model_edited_under_the_same_name_is_refused(tmp_path):
  grid = {"lr": np.array([0.01, 0.1])}
  kwargs = dict(chunk_size=2, checkpoint_dir=str(tmp_path), **SETTINGS)
  first = zoo.cnn_task(dropout=0.2, stream=True, num_train=64)
  with pytest.raises(sweep.Stopped):
    sweep.run(first, _sgd, grid, should_stop=_stop_at_first, **kwargs)
  edited = zoo.cnn_task(dropout=0.3, stream=True, num_train=64)  # same name, data and shapes
  with pytest.raises(ValueError, match="different sweep"):
    sweep.run(edited, _sgd, grid, **kwargs)
  assert sweep.run(first, _sgd, grid, **kwargs).metadata["resumed_from"] is not None


def test_a_refused_checkpoint_names_the_settings_that_differ(tmp_path):
  task, grid = tasks.get("digits-logreg"), {"lr": np.array([0.01, 0.1])}
  kwargs = {**SETTINGS, "checkpoint_dir": str(tmp_path), "chunk_size": 2}
  with pytest.raises(sweep.Stopped):
    sweep.run(task, _sgd, grid, should_stop=_stop_at_first, **kwargs)
  path = tmp_path / checkpoint.FILENAME
  with np.load(path) as saved:
    arrays = dict(saved)
  changed = {**kwargs, "steps": 6, "eval_every": 3, "seeds": (0, 1), "batch_size": 8}
  with pytest.raises(
    ValueError,
    match=r"different sweep \(batch_size 16 there, 8 here; "
    r"eval_every 2 there, 3 here; seeds \[0\] there, \[0, 1\] here; and 1 more\)",
  ):
    sweep.run(task, _sgd, grid, **changed)
  np.savez(path, **{k: v for k, v in arrays.items() if k != "config"})  # as saved before
  with pytest.raises(ValueError, match=r"different sweep \(other settings, other data, "):
    sweep.run(task, _sgd, grid, **changed)
  assert sweep.run(task, _sgd, grid, **kwargs).metadata["resumed_from"] is not None


def test_a_search_with_make_tx_edited_under_the_same_name_is_refused(tmp_path):
  task = tasks.get("quadratic", dim=4, noise=1.0, num_train=32)
  grid = {"lr": np.geomspace(0.05, 1.0, 4)}
  kwargs = dict(steps=8, min_steps=2, eta=2, key=jax.random.key(0), batch_size=8, eval_every=2,
                chunk_size=2, checkpoint_dir=str(tmp_path))  # fmt: skip
  with pytest.raises(sweep.Stopped):
    search.successive_halving(task, _sgd, grid, should_stop=_stop_at_first, **kwargs)
  with pytest.raises(ValueError, match=r"different sweep \(the same settings; "):
    search.successive_halving(task, _edited, grid, **kwargs)
  with pytest.raises(
    ValueError, match=r"\(eta 2 there, 4 here; rungs \[\[2, 4, 8\]\] there, \[\[2, 8\]\] here\)"
  ):
    search.successive_halving(task, _sgd, grid, **{**kwargs, "eta": 4})
  resumed = search.successive_halving(task, _sgd, grid, **kwargs)
  assert resumed.metadata["resumed_from"] == {"seed": 0, "segment": 1}


_FINGERPRINT = textwrap.dedent(
  """
  import sys
  import jax, numpy as np
  from lrlab import optimizers, sweep, tasks
  from lrlab.sweep import checkpoint
  scale = float(sys.argv[2])
  make_tx = lambda hp: optimizers.sgd(scale * hp["lr"])
  sweep.run(tasks.get("digits-logreg"), make_tx, {"lr": np.array([0.01, 0.1])}, steps=4,
            batch_size=16, key=jax.random.key(0), eval_every=2, progress=False,
            checkpoint_dir=sys.argv[1], keep_checkpoint=True)
  with np.load(f"{sys.argv[1]}/{checkpoint.FILENAME}") as saved:
    print(saved["fingerprint"])
  """
)


def _fingerprint_in_a_new_process(directory, scale: float) -> str:
  env = {**os.environ, "PYTHONPATH": os.getcwd()}
  out = subprocess.run(
    [sys.executable, "-c", _FINGERPRINT, str(directory), str(scale)],
    capture_output=True, text=True, check=True, env=env, timeout=300,
  )  # fmt: skip
  return out.stdout.strip().splitlines()[-1]


def test_the_same_sweep_fingerprints_alike_in_two_processes(tmp_path):
  # (An edit changes it: test_resume's optimizer_code and model_code cases, and those above.)
  first = _fingerprint_in_a_new_process(tmp_path / "a", 1.0)
  assert first == _fingerprint_in_a_new_process(tmp_path / "b", 1.0)
  assert len(first) == 64 and checkpoint.FILENAME in os.listdir(tmp_path / "a")


def _concrete_in_update(hp):  # the schedule is called in update only: traced at the segment
  return optax.sgd(lambda count: 0.1 if hp["lr"] > 0.05 else 0.01)


def test_a_streamed_sweep_explains_a_hyperparameter_used_as_a_number():
  task = zoo.cnn_task(stream=True, num_train=64)
  with pytest.raises(TypeError, match="every member's hyperparameters are traced scalars"):
    sweep.run(task, _concrete_in_update, {"lr": np.array([0.01, 0.1])}, chunk_size=2, **SETTINGS)
