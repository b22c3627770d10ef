"""Data streamed from a host source: the same result as resident data, bit for bit, in O(window)
device memory; resumable after SIGKILL; bad batches named."""

import dataclasses
import json
import os
import signal
import subprocess
import sys

import flax
import jax
import numpy as np
import optax
import pytest

import lrlab
from lrlab.data.dataset import SPLITS
from lrlab.train.compiling import CompileClock
from tests import zoo
from tests.sweep import sweep_worker

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
KEY = jax.random.key(0)
SETTINGS = dict(steps=20, batch_size=32, eval_every=10, eval_batch_size=100)


class _Recording:
  """A source that records the indices it is asked for, and may poison one example."""

  def __init__(self, x, y, *, poison: int | None = None, reshape_from: int | None = None):
    self.x, self.y, self.calls = x.copy(), y, []
    if poison is not None:
      self.x[poison] = np.nan
    self.reshape_from = reshape_from

  def __len__(self):
    return len(self.x)

  def __getitem__(self, indices):
    self.calls.append(np.asarray(indices))
    x = self.x[indices]
    windows = sum(len(c) == len(indices) for c in self.calls)
    if self.reshape_from is not None and len(indices) == 320 and windows > self.reshape_from:
      x = x[:, :-1]  # a source that changes its shape part-way
    return x, self.y[indices]


def _streamed_task(train_source, dataset=None, dropout=0.2):
  dataset = dataset or zoo.digits(256)
  sources = [train_source] + [lrlab.data.ArraySource(*dataset.split(s)) for s in SPLITS[1:]]
  streamed = lrlab.data.from_source(*sources, num_classes=10, name="digits")
  make = lambda rngs: zoo.BatchNormCNN(dropout=dropout, rngs=rngs)
  return lrlab.tasks.from_nnx(make, streamed, loss="cross_entropy", name="digits-bn-cnn")


@pytest.fixture(scope="module")
def pair():
  return zoo.cnn_task(num_train=256), zoo.cnn_task(num_train=256, stream=True)


def test_train_streamed_equals_resident_bit_for_bit(pair):
  resident, streamed = pair
  run = lambda task: lrlab.train.train(task, optax.adam(3e-3), key=KEY, **SETTINGS)
  a, b = run(resident), run(streamed)
  assert zoo.tree_equal(jax.device_get(a), jax.device_get(b))
  assert float(a.val_accuracy[-1]) > 0.2  # it trained


def test_sweep_streamed_equals_resident_bit_for_bit(pair):
  make_tx = lambda hp: lrlab.optimizers.sgd(hp["lr"], momentum=0.9)
  run = lambda task: lrlab.sweep.run(
    task, make_tx, {"lr": np.array([0.01, 0.1, 1e4])}, key=KEY, seeds=2, chunk_size=2,
    progress=False, **SETTINGS,
  )  # fmt: skip
  lrlab.sweep.clear_cache()
  a, b = run(pair[0]), run(pair[1])
  assert zoo.tree_equal(a.history, b.history)
  assert a.history.diverged[:, 2].all() and not a.history.diverged[:, :2].any()
  # A streamed run compiles its programs on first use, inside the call: counted all the same
  # (JAX's own record of the same call's compiles), and nothing on a call that reuses them.
  with CompileClock() as clock:
    streamed = run(pair[1])
  assert streamed.metadata["compile_seconds"] == clock.seconds == 0.0
  lrlab.sweep.clear_cache()
  with CompileClock() as clock:
    streamed = run(pair[1])
  assert clock.compiles >= 3 and clock.seconds > 0.2
  assert streamed.metadata["compile_seconds"] == pytest.approx(clock.seconds, rel=0.1)


def test_device_memory_holds_a_window_not_the_dataset():
  dataset = zoo.digits(256)
  source = _Recording(*dataset.split("train"))
  task = _streamed_task(source, dataset)
  lrlab.train.train(task, optax.adam(1e-3), key=KEY, **SETTINGS)
  sizes = [len(c) for c in source.calls]
  assert max(sizes) <= max(SETTINGS["eval_every"] * SETTINGS["batch_size"], 100)
  # After the checks and the step-0 pass over the training set (in evaluation batches),
  # the windows' requests follow the run's minibatch order exactly.
  windows = [c for c in source.calls if len(c) == SETTINGS["eval_every"] * SETTINGS["batch_size"]]
  order = lrlab.train.HostOrder(jax.random.split(KEY)[1], 256, SETTINGS["batch_size"])
  assert len(windows) == 2
  for w, requested in enumerate(windows):
    np.testing.assert_array_equal(requested, order.steps(10 * w, 10).ravel())


def test_nan_in_a_streamed_batch_diverges_that_step_with_a_warning():
  dataset = zoo.digits(256)
  order = lrlab.train.HostOrder(jax.random.split(KEY)[1], 256, SETTINGS["batch_size"])
  step = 5  # in the first epoch: the example is not in an earlier step
  poisoned = int(order.steps(step, 1)[0, 0])
  task = _streamed_task(_Recording(*dataset.split("train"), poison=poisoned), dataset, dropout=0)
  with pytest.warns(RuntimeWarning) as caught:
    history = lrlab.train.train(task, optax.adam(1e-3), key=KEY, **SETTINGS)
  assert bool(history.diverged) and int(history.diverged_step) == step
  # One warning for each read of the example, naming where: the step-0 pass over the training
  # set, and each window of steps whose batches hold it (an epoch is 8 steps, so it comes back).
  # pytest.warns(match=...) re-emitted the warnings it did not match, into the suite's summary.
  windows = sorted({s // 10 for s in range(20) if poisoned in order.steps(s, 1)[0]})
  assert len(windows) == 2  # steps 0-9 and 10-19
  where = [f"steps {10 * w}-{10 * w + 9}" for w in windows] + ["train evaluation"]
  assert sorted(str(w.message) for w in caught) == sorted(
    f"the train source returned non-finite inputs at {at}; members training on them diverge "
    "there and are flagged."
    for at in where
  )
  assert np.isnan(history.train_loss[0]) and np.all(np.isfinite(history.val_loss))


def test_a_source_that_changes_shape_is_named():
  dataset = zoo.digits(256)
  task = _streamed_task(_Recording(*dataset.split("train"), reshape_from=1), dataset)
  match = r"train source must return \(x, y\) with 320 examples .* at steps 10-19 it returned x"
  with pytest.raises(ValueError, match=match):
    lrlab.train.train(task, optax.adam(1e-3), key=KEY, **SETTINGS)


@pytest.mark.parametrize(
  "kwargs, match",
  [
    (dict(batch_size=None), r"batch_size must be an integer for a task whose data are streamed"),
    (dict(batch_size=257), r"batch_size must be None \(full batch\) or an integer in \[1, 256\]"),
  ],
)
def test_bad_batch_sizes_for_a_streamed_task(pair, kwargs, match):
  with pytest.raises(ValueError, match=match):
    lrlab.train.train(pair[1], optax.adam(1e-3), key=KEY, **(SETTINGS | kwargs))


def _regression_tasks():
  """A linear regression task, resident and streamed from the same arrays."""
  rng = np.random.default_rng(0)
  w = rng.normal(size=(3, 1)).astype(np.float32)
  xs = [rng.normal(size=(n, 3)).astype(np.float32) for n in (64, 16, 16)]
  make = lambda rngs: flax.nnx.Linear(3, 1, rngs=rngs)
  resident = lrlab.data.Dataset(*(a for x in xs for a in (x, x @ w)), None, "linear")
  streamed = lrlab.data.from_source(*(lrlab.data.ArraySource(x, x @ w) for x in xs), name="linear")
  return [lrlab.tasks.from_nnx(make, d, loss="mse", name="linear") for d in (resident, streamed)]


def test_a_streamed_regression_sweeps_and_searches_as_a_resident_one():
  # The streamed evaluation gave the missing accuracy as one NaN with no member axis: every
  # sweep or search of a streamed regression task crashed joining the chunks.
  make_tx = lambda hp: lrlab.optimizers.sgd(hp["lr"])
  grid, settings = {"lr": np.array([0.01, 0.1, 0.2, 0.05])}, dict(key=KEY, batch_size=8)
  runs = [lrlab.sweep.run(task, make_tx, grid, steps=4, eval_every=2, chunk_size=2,
                          progress=False, **settings) for task in _regression_tasks()]  # fmt: skip
  assert zoo.tree_equal(runs[0].history, runs[1].history)
  assert np.isnan(runs[1].history.val_accuracy).all() and runs[1].history.val_accuracy.shape == (
    1,
    4,
    3,
  )
  halving = lambda task, **kw: lrlab.search.successive_halving(
    task, make_tx, grid, steps=8, min_steps=2, eta=2, eval_every=2, **settings, **kw
  )
  resident, streamed = _regression_tasks()
  assert halving(streamed).best() == halving(resident).best()
  # and an accuracy it does not report is refused before training, as for resident data
  with pytest.raises(ValueError, match="it has no accuracy, so 'val_accuracy' does not exist"):
    halving(streamed, metric="val_accuracy")


def test_streamed_tasks_refuse_what_needs_resident_data(pair):
  streamed = pair[1]
  with pytest.raises(ValueError, match="folds must be None for a task whose data are streamed"):
    lrlab.sweep.run(
      streamed, lambda hp: optax.sgd(hp["lr"]), {"lr": [0.1]}, key=KEY, folds=2, **SETTINGS
    )
  with pytest.raises(ValueError, match=r"streams them from the host, so use lrlab\.train\.train"):
    lrlab.train.make_train_fn(streamed, steps=10, batch_size=8, eval_every=5)
  with pytest.raises(ValueError, match=r"instead of task.split\('val'\)"):
    streamed.split("val")


# 8 steps of eval_every=2 are 4 segments a chunk, so a kill at segment 2 of chunk 1 of seed 1
# is mid-chunk in a later seed; the best member's val accuracy is still 0.58 (20 steps: 0.92).
STEPS = 8


def _worker(out, *args, tasks=("bn-streamed",)):
  command = [sys.executable, "-m", "tests.sweep.sweep_worker", str(out), "--task", *tasks]
  return [*command, "--steps", str(STEPS), *args]


@pytest.mark.slow  # a subprocess or an end-to-end run
def test_sharded_streamed_equals_sharded_resident(tmp_path):
  """Over two devices the streamed programs partition the members as the resident ones do:
  the same training, bit for bit. The step-0 evaluation alone may differ by an ulp: the
  resident sweep evaluates a seed's first member in a program one member wide and copies the
  result to the others, the streamed sweep evaluates every member in a program as wide as the
  chunk, and XLA:CPU may round the two differently (on a 2-core AMD EPYC one seed's step-0
  test loss, by 2.4e-7; on the Xeon VM, nothing)."""
  env = dict(os.environ, PYTHONPATH=ROOT)
  # One process sweeps both (one JAX start fewer); each sweep builds its own task and programs.
  command = _worker(tmp_path / "out.npz", "--devices", "2", tasks=("bn-streamed", "bn-resident"))
  subprocess.run(command, cwd=ROOT, env=env, timeout=600, check=True)
  evaluated = {"train_loss", "val_loss", "val_accuracy", "test_loss", "test_accuracy"}
  with (
    np.load(tmp_path / "out-bn-streamed.npz") as a,
    np.load(tmp_path / "out-bn-resident.npz") as b,
  ):
    assert evaluated <= set(a) and set(a) == set(b)
    for field in a:
      streamed, resident = a[field], b[field]
      if field in evaluated:  # (seeds, members, evaluations): the step-0 column within an ulp
        np.testing.assert_allclose(streamed[..., 0], resident[..., 0], rtol=3e-7, atol=0)
        streamed, resident = streamed[..., 1:], resident[..., 1:]
      np.testing.assert_array_equal(streamed, resident, err_msg=field)


@pytest.mark.slow  # a subprocess or an end-to-end run
def test_resume_after_sigkill_with_model_state_and_streamed_data(tmp_path):
  env = dict(os.environ, PYTHONPATH=ROOT)
  run = lambda *args, **kwargs: subprocess.run(
    _worker(*args), cwd=ROOT, env=env, timeout=600, **kwargs
  )
  # The uninterrupted reference needs no process of its own: the worker's sweep, run here.
  whole = sweep_worker.history(sweep_worker.sweep("bn-streamed", STEPS))
  ckpt = str(tmp_path / "ckpt")
  killed = run(tmp_path / "never.npz", "--checkpoint", ckpt, "--kill-at", "1,1,2")
  assert killed.returncode == -signal.SIGKILL
  run(tmp_path / "resumed.npz", "--checkpoint", ckpt, check=True)
  with open(tmp_path / "resumed.json") as f:  # it resumed where the kill left it
    assert json.load(f)["resumed_from"] == {"seed": 1, "chunk": 1, "segment": 2}
  with np.load(tmp_path / "resumed.npz") as resumed:
    assert set(whole) == set(resumed)
    for field in whole:
      np.testing.assert_array_equal(resumed[field], whole[field], err_msg=field)
    assert np.all(np.isfinite(whole["val_loss"])) and whole["val_accuracy"].max() > 0.2


def test_the_range_test_streamed_equals_resident(pair):
  found = [lrlab.finder.find_lr(t, "adam", batch_size=32, key=KEY, end_lr=1.0) for t in pair]
  np.testing.assert_array_equal(found[0].losses, found[1].losses)
  assert found[0].num_recorded == found[1].num_recorded > 50


def test_a_streamed_run_equals_a_resident_one_with_an_rbg_key():
  # The resident order drew its epochs under vmap, which rbg keys do not draw alike: with
  # jax.random.key(0, impl="rbg") the two trained on different minibatches from the second epoch.
  key = jax.random.key(0, impl="rbg")
  run = lambda task: lrlab.train.train(
    task, optax.sgd(0.05), key=key, steps=24, batch_size=8, eval_every=12, eval_batch_size=5
  )
  resident, streamed = (run(task) for task in _regression_tasks())
  assert zoo.tree_equal(jax.device_get(resident), jax.device_get(streamed))
  assert resident.val_loss[-1] < 0.5 * resident.val_loss[0]  # it trained


def test_a_streamed_range_test_reads_a_window_at_a_time_and_nothing_after_its_stop():
  # It gathered all of its steps x batch examples at once (100 x 8 here; a range test of
  # 300 steps of 256 images would hold 77k images in memory), and read them all even when
  # the test stopped after a few.
  resident, plain = _regression_tasks()
  x, y = (np.asarray(a) for a in resident.dataset.split("train"))
  source = _Recording(x, y)
  sources = [source, *(lrlab.data.ArraySource(*resident.dataset.split(s)) for s in SPLITS[1:])]
  streamed = dataclasses.replace(plain, dataset=lrlab.data.from_source(*sources, name="linear"))
  before = len(source.calls)
  run = lambda task: lrlab.finder.find_lr(task, "sgd", batch_size=8, key=KEY, end_lr=1e4)
  found, expected = run(streamed), run(resident)
  np.testing.assert_array_equal(found.losses, expected.losses)
  assert found.stop_reason == "diverged" and found.num_recorded < 100
  calls = source.calls[before:]
  window = lrlab.finder.range_test.WINDOW_STEPS
  assert max(len(c) for c in calls) == window * 8
  read_ahead = -(-found.num_recorded // window) + 1  # the windows up to the stop, and one more
  assert len(calls) <= read_ahead < 100 // window, (found.num_recorded, len(calls))
