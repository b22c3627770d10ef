"""The sweep's arguments: a one-line ValueError naming each bad one, before any training; an
accuracy target only for a task with accuracy; NumPy integers are the same sweep as Python ints."""

import dataclasses
import os

import jax
import numpy as np
import pytest

from lrlab import optimizers, search, sweep

KEY = jax.random.key(0)
SETTINGS = dict(steps=4, batch_size=None, key=KEY, eval_every=2, progress=False)


def _sgd(hp):
  return optimizers.sgd(hp["lr"])


@dataclasses.dataclass  # eq=True and not frozen: unhashable
class _Sgd:
  scale: float = 1.0

  def __call__(self, hp):
    return optimizers.sgd(self.scale * hp["lr"])


@pytest.mark.parametrize(
  "bad, match",
  [
    (dict(make_tx=_Sgd()), "make_tx must be a hashable function"),
    (dict(should_stop=3), "should_stop must be None or a function"),
    (dict(devices="cpu"), "devices must be None or distinct jax devices"),
    (dict(devices=[jax.devices()[0]] * 2), "devices must be None or distinct jax devices"),
  ],
)
def test_bad_functions_and_devices_are_refused_before_training(bad, match, monkeypatch):
  trained = []
  seed_rows = sweep.engine.SeedRows  # built just before each seed trains
  monkeypatch.setattr(sweep.engine, "SeedRows", lambda *a: trained.append(a) or seed_rows(*a))
  bad = dict(bad)
  make_tx = bad.pop("make_tx", _sgd)
  with pytest.raises(ValueError, match=match):
    sweep.run("quadratic", make_tx, {"lr": np.array([0.1, 0.5])}, **SETTINGS, **bad)
  assert not trained


@pytest.mark.parametrize(
  "bad, match",
  [
    (dict(checkpoint_interval=None), r"^checkpoint_interval must be a number; got None\.$"),
    (dict(checkpoint_interval="30"), r"^checkpoint_interval must be a number; got '30'\.$"),
    (dict(checkpoint_interval=-1.0), r"^checkpoint_interval must be a finite number >= 0"),
    (dict(divergence_factor=None), r"^divergence_factor must be a number; got None\.$"),
    (dict(divergence_factor="10"), r"^divergence_factor must be a number; got '10'\.$"),
  ],
)
def test_settings_that_are_not_numbers_are_refused_before_training(bad, match, monkeypatch):
  # None and numeric strings passed the range checks, then failed with a TypeError naming
  # nothing (checkpoint_interval=None once the first segment had compiled and trained).
  trained = []
  seed_rows = sweep.engine.SeedRows
  monkeypatch.setattr(sweep.engine, "SeedRows", lambda *a: trained.append(a) or seed_rows(*a))
  with pytest.raises(ValueError, match=match):
    sweep.run("quadratic", _sgd, {"lr": np.array([0.1, 0.5])}, **SETTINGS, **bad)
  assert not trained


@pytest.mark.parametrize("inside", ["", "ckpt"])
def test_a_checkpoint_dir_that_is_a_file_is_refused_before_training(inside, monkeypatch):
  # It failed at the first checkpoint, after the first chunk had trained: FileExistsError.
  trained = []
  seed_rows = sweep.engine.SeedRows
  monkeypatch.setattr(sweep.engine, "SeedRows", lambda *a: trained.append(a) or seed_rows(*a))
  path = os.path.join(__file__, inside) if inside else __file__
  where = "inside a file" if inside else "which is a file"
  with pytest.raises(ValueError, match=rf"^checkpoint_dir must be a folder .*{where}\.$"):
    sweep.run("quadratic", _sgd, {"lr": np.array([0.1, 0.5])}, **SETTINGS, checkpoint_dir=path)
  assert not trained


def test_settings_given_as_numpy_or_jax_scalars_are_accepted():
  settings = dict(checkpoint_interval=np.float32(5.0), divergence_factor=jax.numpy.asarray(8.0))
  result = sweep.run("quadratic", _sgd, {"lr": np.array([0.1, 0.5])}, **SETTINGS, **settings)
  assert result.config["divergence_factor"] == 8.0


@pytest.mark.parametrize("axis", ["seed", "member", "diverged", "final_val_loss"])
@pytest.mark.parametrize("driver", ["run", "successive_halving"])
def test_an_axis_named_as_a_table_column_is_refused_before_training(axis, driver):
  # SweepResult refuses such a grid; the sweep and the searches must say so before training,
  # not after every member has trained.
  traced = []
  make_tx = lambda hp: traced.append(hp) or optimizers.sgd(hp["lr"] * (1 + 0 * hp[axis]))
  grid = {"lr": np.array([0.1, 0.5]), axis: np.array([1, 2])}
  settings = dict(steps=4, batch_size=None, key=KEY, eval_every=2)
  call = {
    "run": lambda: sweep.run("quadratic", make_tx, grid, progress=False, **settings),
    "successive_halving": lambda: search.successive_halving(
      "quadratic", make_tx, grid, min_steps=2, eta=2, **settings
    ),
  }[driver]
  with pytest.raises(ValueError, match=f"must differ from the table's columns.*{axis}"):
    call()
  assert not traced


# An accuracy target is refused for a task that reports no accuracy.
def test_an_accuracy_target_is_refused_for_a_task_without_accuracy():
  # quadratic's val_accuracy is NaN, so steps_to_target would be inf for every member.
  with pytest.raises(ValueError, match="target metric must be a loss for 'quadratic'"):
    sweep.run("quadratic", _sgd, {"lr": np.array([0.1, 0.5])}, steps=4, batch_size=None, key=KEY,
              eval_every=2, progress=False, target=("val_accuracy", 0.5))  # fmt: skip


def test_a_loss_target_is_kept_for_a_task_without_accuracy():
  result = sweep.run("quadratic", _sgd, {"lr": np.array([0.1, 0.5])}, steps=4, batch_size=None,
                     key=KEY, eval_every=2, progress=False, target=("val_loss", 1e9))  # fmt: skip
  assert result.config["target"] == {"metric": "val_loss", "value": 1e9}
  np.testing.assert_array_equal(result.metric("steps_to_target"), [[0.0, 0.0]])


# Integer arguments given as NumPy integers are the same sweep: its checkpoint resumes.
RESUMABLE = dict(steps=8, batch_size=None, key=jax.random.key(0), eval_every=2, chunk_size=2,
                progress=False)  # fmt: skip


@pytest.mark.parametrize(
  "numpy, python",
  [
    (dict(steps=np.int64(8)), dict(steps=8)),
    (dict(batch_size=np.int32(16)), dict(batch_size=16)),
    (dict(folds=np.int64(2)), dict(folds=2)),
  ],
)
def test_numpy_integer_arguments_resume_the_same_sweep(numpy, python, tmp_path):
  grid, folder = {"lr": np.array([0.1, 0.5])}, dict(checkpoint_dir=str(tmp_path))
  with pytest.raises(sweep.Stopped):
    sweep.run("digits-logreg", _sgd, grid, should_stop=lambda: True,
              **{**RESUMABLE, **numpy, **folder})  # fmt: skip
  resumed = sweep.run("digits-logreg", _sgd, grid, **{**RESUMABLE, **python, **folder})
  assert resumed.metadata["resumed_from"] == {"seed": 0, "chunk": 0, "segment": 1}
  whole = sweep.run("digits-logreg", _sgd, grid, **{**RESUMABLE, **python})
  for a, b in zip(resumed.history, whole.history, strict=True):
    np.testing.assert_array_equal(a, b)
