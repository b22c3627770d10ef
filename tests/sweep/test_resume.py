"""A sweep checkpointed, killed and resumed (SIGKILL or an exception, mid-chunk or between
chunks, mid-write), sharded over devices and run as two processes: each equal to one
uninterrupted process; a changed sweep's checkpoint refused."""

import dataclasses
import json
import os
import signal
import socket
import subprocess
import sys

import chex
import numpy as np
import pytest

from lrlab import optimizers, sweep, tasks
from lrlab.sweep import checkpoint
from tests import workers
from tests.sweep import sweep_worker
from tests.sweep.test_engine import KEY, _sgd

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
WORKER_TIMEOUT = 600  # seconds; a worker that hangs fails its test instead of the suite


@pytest.fixture(scope="module")
def task():
  return tasks.get("digits-logreg")


def _worker(out, *args):
  return [sys.executable, "-m", "tests.sweep.sweep_worker", str(out), *args]


def _run_worker(out, *args, check=True):
  """Run the worker to its end (or its kill); one that hangs fails the test, not the suite."""
  env = dict(os.environ, PYTHONPATH=ROOT)
  command = _worker(out, *args)
  return subprocess.run(command, check=check, cwd=ROOT, env=env, timeout=WORKER_TIMEOUT)


def _load(path):
  with np.load(path) as saved:
    return dict(saved)


def _facts(path):
  with open(os.path.splitext(path)[0] + ".json") as f:
    return json.load(f)


def _free_port() -> int:
  with socket.socket() as probe:
    probe.bind(("localhost", 0))
    return probe.getsockname()[1]


def _two_processes(tmp_path, *extra: list[str]) -> tuple[list[int], list[str]]:
  """Run the worker as two jax.distributed processes of one CPU device each, ``extra[i]``
  added to process ``i``'s arguments; their return codes and outputs. If process 0 dies
  of a signal, process 1 (left waiting in a collective) is killed too."""
  env = dict(os.environ, PYTHONPATH=ROOT)
  coordinator = f"localhost:{_free_port()}"

  def launch(i: int) -> subprocess.Popen:
    args = ["--processes", "2", "--process-id", str(i), "--coordinator", coordinator]
    command = _worker(tmp_path / f"p{i}.npz", *args, *extra[i])
    return subprocess.Popen(
      command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )

  processes = [launch(i) for i in range(2)]
  try:
    first = processes[0].communicate(timeout=300)[0]
    if processes[0].returncode < 0:
      processes[1].kill()
    outputs = [first, processes[1].communicate(timeout=300)[0]]
  finally:
    for p in processes:
      p.kill()
  return [p.returncode for p in processes], outputs


@pytest.fixture(scope="module")
def one_process_two_devices(tmp_path_factory):
  """The worker's sweep in one process with two host devices, sharded over both: the two-process
  tests' reference and the sharded side of the single-device comparison."""
  out = tmp_path_factory.mktemp("one") / "one.npz"
  _run_worker(out, "--devices", "2")
  assert _facts(out)["num_devices"] == 2  # the member mesh spans every device
  return _load(out)


@pytest.mark.slow  # a subprocess or an end-to-end run
def test_sharded_equals_single_device(tmp_path, one_process_two_devices):
  # Two devices, not more: the sharded run is the two-process tests' reference, so this test
  # starts one process (the single device's) instead of two.
  _run_worker(tmp_path / "b.npz", "--devices", "2", "--one-device")
  assert _facts(tmp_path / "b.npz")["num_devices"] == 1  # of the two, as devices= said
  sharded, single = one_process_two_devices, _load(tmp_path / "b.npz")
  # Two members per device against four on one: the same program up to float ordering,
  # which a few dozen steps at learning rates up to 3 amplify to ~1e-5.
  np.testing.assert_array_equal(sharded["diverged"], single["diverged"])
  for field in sharded:
    np.testing.assert_allclose(sharded[field], single[field], rtol=1e-4, atol=1e-6, err_msg=field)


@pytest.mark.slow  # a subprocess or an end-to-end run
def test_two_processes_killed_and_resumed_equal_one_process(tmp_path, one_process_two_devices):
  # The member mesh spans both processes (one device each), process 0 writes the checkpoints,
  # a SIGKILL of process 0 mid-sweep leaves one, the same call again resumes from it, and each
  # process ends with the whole result of one process with as many devices. (The resumed run
  # trains every position after the kill with the two-process programs, so an uninterrupted
  # two-process run is not run separately: it would repeat these programs from position 0.)
  ckpt = ["--checkpoint", str(tmp_path / "ckpt")]
  # Process 1's clock never finds a checkpoint due, process 0's always does: saving gathers the
  # members' state from both, so they must agree (any process's "due" counts) or both hang.
  never = ["--checkpoint-interval", "1e9"]
  codes, outputs = _two_processes(tmp_path, [*ckpt, "--kill-at", "1,1,3"], [*ckpt, *never])
  assert codes[0] == -signal.SIGKILL, outputs
  assert (tmp_path / "ckpt" / checkpoint.FILENAME).exists()
  codes, outputs = _two_processes(tmp_path, ckpt, ckpt)  # the same call again
  assert codes == [0, 0], outputs
  one = one_process_two_devices
  for i in range(2):
    facts = _facts(tmp_path / f"p{i}.npz")
    assert facts["num_devices"] == 2
    assert facts["resumed_from"] == {"seed": 1, "chunk": 1, "segment": 3}
    each = _load(tmp_path / f"p{i}.npz")
    for field in one:
      np.testing.assert_array_equal(each[field], one[field], err_msg=f"process {i}: {field}")
  assert os.listdir(tmp_path / "ckpt") == []  # cleared once the sweep ended


@pytest.mark.slow  # a subprocess or an end-to-end run
def test_processes_that_disagree_raise_instead_of_hanging(tmp_path):
  codes, outputs = _two_processes(tmp_path, [], ["--chunk-size", "2"])
  assert codes != [0, 0]
  for output in outputs:
    assert "the processes of this sweep disagree on the chunk size" in output, output
    assert "[4, 2]" in output


@pytest.fixture(scope="module")
def uninterrupted():
  """The worker's sweep (12 members in 3 chunks of 4, 2 seeds, 10 segments a chunk) run whole,
  in this process: it tests nothing about processes, and its programs are the worker's."""
  return sweep_worker.history(sweep_worker.sweep())


@pytest.mark.slow  # a subprocess or an end-to-end run
@pytest.mark.parametrize(
  "kill_at",
  [
    (0, 0, 5),  # mid-chunk in the first chunk: no finished chunk saved yet
    (0, 1, 0),  # between chunks: only finished chunks saved
    (1, 2, 7),  # mid-chunk in the second seed: both
  ],
)
def test_resume_after_sigkill_equals_uninterrupted(tmp_path, uninterrupted, kill_at):
  ckpt = tmp_path / "ckpt"
  position = ",".join(map(str, kill_at))
  killed = _run_worker(
    tmp_path / "never.npz", "--checkpoint", str(ckpt), "--kill-at", position, check=False
  )
  assert killed.returncode == -signal.SIGKILL
  saved = ckpt / checkpoint.FILENAME
  assert saved.exists() and not (tmp_path / "never.npz").exists()
  # The same call again, here: the SIGKILL was real, and what it left on disk is all that
  # the resumed sweep sees (the same make_tx name, so the same fingerprint, in any process).
  resumed = sweep_worker.sweep(checkpoint_dir=str(ckpt), checkpoint_interval=0.0)
  # It picked up where it was killed (not from the start), and ended where the whole run did.
  resumed_from = resumed.metadata["resumed_from"]
  assert resumed_from == dict(zip(("seed", "chunk", "segment"), kill_at, strict=True))
  resumed = sweep_worker.history(resumed)
  for field in uninterrupted:
    np.testing.assert_array_equal(resumed[field], uninterrupted[field], err_msg=field)
  assert not saved.exists()  # a finished sweep removes its checkpoint
  assert not [p for p in os.listdir(ckpt) if p.startswith(".tmp-")]


class _Crash(Exception):
  pass


def _crash_after(monkeypatch, saves: int) -> None:
  """Make the sweep crash (an exception, in process) right after its ``saves``-th checkpoint."""
  save, count = checkpoint.save, [0]

  def save_then_crash(*args, **kwargs):
    save(*args, **kwargs)
    count[0] += 1
    if count[0] == saves:
      raise _Crash

  monkeypatch.setattr(checkpoint, "save", save_then_crash)


def _checkpointed(task, make_tx, directory, **kwargs):
  arguments = dict(
    grid={"lr": np.geomspace(0.01, 1.0, 6)},
    steps=20,
    batch_size=32,
    key=KEY,
    eval_every=2,
    checkpoint_dir=str(directory),
    checkpoint_interval=0.0,
    progress=False,
  )
  return sweep.run(task, make_tx, **(arguments | kwargs))


def test_resume_keeps_the_chunk_size_it_began_with(tmp_path, task, monkeypatch):
  with monkeypatch.context() as patch:
    _crash_after(patch, 3)
    with pytest.raises(_Crash):
      _checkpointed(task, _sgd, tmp_path, chunk_size=2)
  # The automatic choice (say, from free memory) now differs; the resumed sweep ignores it.
  monkeypatch.setattr(sweep.devices, "auto_chunk_size", lambda *_: 6)
  resumed = _checkpointed(task, _sgd, tmp_path)
  assert resumed.config["chunk_size"] == 2
  assert resumed.metadata["resumed_from"] == {"seed": 0, "chunk": 0, "segment": 3}
  whole = _checkpointed(task, _sgd, tmp_path / "whole", chunk_size=2)
  assert whole.metadata["resumed_from"] is None
  chex.assert_trees_all_equal(resumed.history, whole.history)


def _optimizer(name, scale=None):
  def make_tx(hp):  # the same qualified name for every optimizer
    lr = hp["lr"] if scale is None else scale * hp["lr"]
    return getattr(optimizers, name)(lr)

  return make_tx


def _doubled_loss(task):
  """The same task (name, data, parameters) with its model's code edited: twice the loss."""

  def loss(params, model_state, batch, key=None):
    value, aux = task.loss(params, model_state, batch, key)
    return 2 * value, aux

  return dataclasses.replace(task, loss=loss)


@pytest.mark.parametrize(
  "change",
  [
    "data",  # a task of the same name built with other options
    "optimizer",  # another kind of optimizer (other state), under the same function name
    "tx_config",  # what make_tx builds, as described by the caller
    "optimizer_code",  # make_tx's code edited: the same name and state, other arithmetic
    "model_code",  # the model's code edited: the same task name, data and parameters
  ],
)
def test_checkpoint_of_a_changed_sweep_is_refused(tmp_path, monkeypatch, change):
  first = tasks.get("quadratic", dim=8)
  run = lambda task, make_tx, tx_config: _checkpointed(
    task, make_tx, tmp_path, batch_size=None, tx_config=tx_config
  )
  with monkeypatch.context() as patch:
    _crash_after(patch, 2)
    with pytest.raises(_Crash):
      run(first, _optimizer("sgd"), {"b": 1})
  task, make_tx, tx_config = first, _optimizer("sgd"), {"b": 1}
  if change == "data":
    task = tasks.get("quadratic", dim=8, max_curvature=2.0)
  elif change == "optimizer":
    make_tx = _optimizer("adam")
  elif change == "optimizer_code":
    make_tx = _optimizer("sgd", scale=0.5)
  elif change == "model_code":
    task = _doubled_loss(first)
  else:
    tx_config = {"b": 2}
  # The message names a setting that differs; the others leave the settings alike.
  named = r'\(tx \{"b": 1\} there, \{"b": 2\} here\)' if change == "tx_config" else ""
  with pytest.raises(ValueError, match=f"different sweep {named or r'.the same settings; '}"):
    run(task, make_tx, tx_config)
  result = run(first, _optimizer("sgd"), {"b": 1})  # unchanged, it resumes
  assert result.metadata["resumed_from"] == {"seed": 0, "chunk": 0, "segment": 2}
  assert result.config["tx"] == {"b": 1}
  assert result.config["make_tx"] == f"{__name__}._optimizer.<locals>.make_tx"


def test_finished_sweep_removes_a_killed_writers_temporary_file(tmp_path, task):
  stale = tmp_path / f".tmp-abc{checkpoint.FILENAME}"  # what SIGKILL mid-write leaves behind
  stale.write_bytes(b"partial")
  sweep.run(
    task,
    _sgd,
    {"lr": np.array([0.1])},
    steps=10,
    batch_size=32,
    key=KEY,
    eval_every=5,
    checkpoint_dir=str(tmp_path),
    progress=False,
  )
  assert not stale.exists() and not (tmp_path / checkpoint.FILENAME).exists()


_ON_TWO_DEVICES = """
import sys
from tests import workers
jax = workers.start_jax(2)
import numpy as np, optax
from lrlab import search, sweep
run = dict(sweep=sweep.run, halving=search.successive_halving)[sys.argv[1]]
extra = dict(sweep=dict(progress=False), halving=dict(min_steps=2))[sys.argv[1]]
args = ("digits-logreg", lambda hp: optax.sgd(hp["lr"]), {"lr": np.geomspace(0.01, 1.0, 5)})
kwargs = dict(steps=4, eval_every=2, batch_size=32, key=jax.random.key(0), **extra)
try:
  run(*args, **kwargs, devices=jax.devices()[:1], chunk_size=3, checkpoint_dir=sys.argv[2],
      should_stop=lambda: True)
except sweep.Stopped:
  pass
run(*args, **kwargs, checkpoint_dir=sys.argv[2])  # both devices, the chunk size automatic
"""


@pytest.mark.slow  # a subprocess
@pytest.mark.parametrize("method", ["sweep", "halving"])
def test_a_checkpoint_of_one_device_resumed_on_two_is_refused_in_one_line(tmp_path, method):
  # The saved chunk size (3) was reused on two devices: the sweep blamed a chunk_size=3 the
  # caller never gave, and the search failed deep in JAX (IndivisibleError from a sharding).
  done = subprocess.run(
    [sys.executable, "-c", _ON_TWO_DEVICES, method, str(tmp_path)],
    cwd=ROOT, env=workers.subprocess_env(PYTHONPATH=ROOT), capture_output=True, text=True,
    timeout=WORKER_TIMEOUT,
  )  # fmt: skip
  last = done.stderr.strip().splitlines()[-1]
  assert done.returncode == 1
  assert last.startswith("ValueError: checkpoint_dir "), last
  assert "different sweep (num_devices 1 there, 2 here)" in last, last
