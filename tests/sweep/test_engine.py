"""The sweep engine: equal to separate runs, sharding, chunking, divergence isolation, resume."""

import dataclasses
import json
import os
import signal
import socket
import subprocess
import sys

import chex
import jax
import numpy as np
import pytest

from lrlab import optimizers, sweep, tasks, train
from lrlab.sweep import checkpoint
from lrlab.train.compiling import CompileClock
from tests.sweep import sweep_worker

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
WORKER_TIMEOUT = 600  # seconds; a worker that hangs fails its test instead of the suite
KEY = jax.random.key(0)


def _sgd(hp):
  return optimizers.sgd(hp["lr"])


@pytest.fixture(scope="module")
def task():
  return tasks.get("digits-logreg")


def test_sweep_equals_separate_train_calls(task):
  lrs = np.array([0.01, 0.1, 1.0])
  result = sweep.run(
    task,
    _sgd,
    {"lr": lrs},
    steps=20,
    batch_size=32,
    key=KEY,
    eval_every=10,
    chunk_size=1,
    progress=False,
  )
  for k, lr in enumerate(lrs):
    alone = train.train(
      task,
      optimizers.sgd(lr),
      steps=20,
      batch_size=32,
      key=jax.random.fold_in(KEY, 0),
      eval_every=10,
    )
    member = jax.tree.map(lambda a, k=k: a[0, k], result.history)
    chex.assert_trees_all_close(member, jax.device_get(alone), rtol=2e-5, atol=1e-6)


def test_chunked_equals_one_shot(task):
  grid = {"lr": np.geomspace(0.01, 1.0, 5)}
  run = lambda chunk: (
    sweep.run(
      task,
      _sgd,
      grid,
      steps=20,
      batch_size=32,
      key=KEY,
      eval_every=10,
      chunk_size=chunk,
      progress=False,
    ).history
  )
  chex.assert_trees_all_close(run(2), run(5), rtol=1e-5, atol=1e-7)


def test_diverging_members_leave_neighbours_bit_identical():
  quadratic = tasks.get("quadratic")
  run = lambda lrs: sweep.run(
    quadratic,
    _sgd,
    {"lr": np.array(lrs)},
    steps=40,
    batch_size=None,
    key=KEY,
    eval_every=10,
    chunk_size=4,
    progress=False,
  )
  healthy = run([0.5, 1.0, 1.5, 1.9]).history
  mixed = run([0.5, 1.0, 50.0, 1.9]).history
  assert mixed.diverged[0].tolist() == [False, False, True, False]
  for field in ("val_loss", "train_loss", "test_loss", "learning_rate"):
    kept = [0, 1, 3]
    np.testing.assert_array_equal(getattr(mixed, field)[0, kept], getattr(healthy, field)[0, kept])
  assert np.all(np.isfinite(mixed.val_loss))


def test_seeds_share_data_within_a_seed_and_differ_across(task):
  result = sweep.run(
    task,
    _sgd,
    {"lr": np.array([0.1, 0.1])},
    steps=10,
    batch_size=32,
    key=KEY,
    eval_every=5,
    seeds=[3, 7],
    progress=False,
  )
  np.testing.assert_array_equal(result.history.val_loss[:, 0], result.history.val_loss[:, 1])
  assert not np.array_equal(result.history.val_loss[0], result.history.val_loss[1])
  assert result.seeds.tolist() == [3, 7]


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


@pytest.mark.parametrize(
  ("kwargs", "match"),
  [
    (dict(grid={"lr": []}), "grid"),
    (dict(grid={"lr": [0.1, 0.2], "momentum": [0.9]}), "grid"),
    (dict(grid=[0.1, 0.2]), "grid"),
    (dict(seeds=0), "seeds"),
    (dict(seeds=[1, 1]), "seeds"),
    (dict(chunk_size=0), "chunk_size"),
    (dict(make_tx=None), "make_tx"),
    (dict(task="cifar"), "task must be an lrlab.tasks.Task or one of"),
    (dict(target=("val_f1", 0.5)), "target metric"),
    (dict(steps=0), "steps"),
    # make_tx receives float32 and int32: a value they would change is refused, not changed.
    (dict(grid={"lr": [0.1, 1e39]}), r"^grid\['lr'\] must hold numbers that float32 represents"),
    (dict(grid={"lr": [1e-50, 0.1]}), r"float32 represents .*; got \[1e-50\]\.$"),
    (dict(grid={"lr": [0.1, 0.2], "n": [1, 2**31]}), r"^grid\['n'\] must hold integers in "
     r"\[-2147483648, 2147483647\] \(make_tx receives them as int32\); got \[2147483648\]\.$"),
  ],
)  # fmt: skip
def test_bad_input(kwargs, match):
  arguments = (
    dict(
      task="quadratic",
      make_tx=_sgd,
      grid={"lr": [0.1, 0.2]},
      steps=10,
      batch_size=None,
      key=KEY,
      eval_every=5,
      progress=False,
    )
    | kwargs
  )
  with pytest.raises(ValueError, match=match):
    sweep.run(**arguments)


@pytest.mark.parametrize(
  ("make_tx", "error", "match"),
  [
    (lambda hp: optimizers.sgd(hp["learning_rate"]), KeyError, r"hp\['learning_rate'\].*'lr'"),
    (lambda hp: optimizers.sgd(float(hp["lr"])), TypeError, "traced scalars"),
    (lambda hp: optimizers.sgd(0.1 if hp["lr"] > 0.15 else 0.2), TypeError, "traced scalars"),
  ],
)
def test_make_tx_against_the_grid_or_the_vmap_rule_is_explained(make_tx, error, match):
  with pytest.raises(error, match=match):
    sweep.run(
      "quadratic", make_tx, {"lr": [0.1, 0.2]}, steps=10, batch_size=None, key=KEY,
      eval_every=5, progress=False,
    )  # fmt: skip


def test_folds_partition_train_and_val():
  task = tasks.get("digits-logreg")
  trainer = train.Trainer(task, steps=10, batch_size=32, eval_every=5, folds=4)
  held_out, train_rows = np.asarray(trainer._held_out), np.asarray(trainer._train_rows)
  pool = task.dataset.num_train + task.dataset.sizes["val"]
  assert held_out.shape == (4, pool // 4) and train_rows.shape == (4, 3 * (pool // 4))
  assert len(set(held_out.ravel().tolist())) == held_out.size  # disjoint folds
  for f in range(4):
    assert not set(held_out[f].tolist()) & set(train_rows[f].tolist())
    assert sorted(train_rows[f].tolist()) == sorted(np.delete(held_out, f, 0).ravel().tolist())
  # The pool's other pool % 4 examples (2 of 1438) are in no fold, as the docstrings say.
  assert pool - held_out.size == pool % 4 == 2
  assert "the other ``n % k`` are left out of every fold" in " ".join(train.Trainer.__doc__.split())


def test_fold_member_equals_a_plain_run_on_that_fold(task):
  """Fold f of the sweep trains exactly like a task whose splits are that fold's rows."""
  from lrlab import data

  result = sweep.run(
    task,
    _sgd,
    {"lr": np.array([0.05, 0.5])},
    steps=20,
    batch_size=32,
    key=KEY,
    eval_every=10,
    folds=3,
    progress=False,
  )
  assert result.grid["lr"].tolist() == [0.05, 0.05, 0.05, 0.5, 0.5, 0.5]
  assert result.grid["fold"].tolist() == [0, 1, 2, 0, 1, 2]
  trainer = train.Trainer(task, steps=20, batch_size=32, eval_every=10, folds=3)
  x = np.concatenate([task.dataset.x_train, task.dataset.x_val])
  y = np.concatenate([task.dataset.y_train, task.dataset.y_val])
  for member, (lr, fold) in enumerate(zip(result.grid["lr"], result.grid["fold"], strict=True)):
    rows, held = np.asarray(trainer._train_rows[fold]), np.asarray(trainer._held_out[fold])
    fold_data = data.Dataset(
      x[rows],
      y[rows],
      x[held],
      y[held],
      task.dataset.x_test,
      task.dataset.y_test,
      num_classes=10,
      name="fold",
    )
    fold_task = tasks.from_model(task.model, fold_data, loss="cross_entropy", name="fold")
    alone = train.train(
      fold_task,
      optimizers.sgd(float(lr)),
      steps=20,
      batch_size=32,
      key=jax.random.fold_in(KEY, 0),
      eval_every=10,
    )
    chex.assert_trees_all_close(
      jax.tree.map(lambda a, m=member: a[0, m], result.history),
      jax.device_get(alone),
      rtol=2e-5,
      atol=1e-6,
    )


def test_cross_validated_result_averages_over_folds(task):
  result = sweep.run(
    task,
    _sgd,
    {"lr": np.array([0.05, 0.5])},
    steps=10,
    batch_size=32,
    key=KEY,
    eval_every=5,
    folds=3,
    seeds=2,
    progress=False,
  )
  cv = result.cross_validated()
  assert list(cv.grid) == ["lr"]
  np.testing.assert_array_equal(cv.grid["lr"], [0.05, 0.5])
  assert cv.seeds.tolist() == [0, 1, 2, 3, 4, 5]
  per_member = result.metric("final_val_loss")  # (seeds, lr x fold)
  expected = per_member.reshape(2, 2, 3).transpose(0, 2, 1).reshape(6, 2).mean(axis=0)
  np.testing.assert_allclose(cv.seed_mean("final_val_loss"), expected)
  assert result.edge_warning("final_val_loss", "fold") is None
  with pytest.raises(ValueError, match="folds="):
    cv.cross_validated()


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


def _compiles_during(fn):
  with CompileClock() as clock:
    return fn(), clock.compiles


def test_a_repeated_call_reuses_its_compiled_programs(task):
  sweep.clear_cache()
  run = lambda lrs, steps=20: sweep.run(
    task, _sgd, {"lr": lrs}, steps=steps, batch_size=32, key=KEY, eval_every=10,
    chunk_size=2, progress=False,
  )  # fmt: skip
  # Initialization, step-0 evaluation and segment: three programs, two compiled side by side
  # in other threads, whose wall time the clocks of this thread are charged.
  with CompileClock() as clock:
    first = run(np.array([0.01, 0.1, 1.0, 2.0]))
  assert clock.compiles >= 3 and 0 < first.metadata["compile_seconds"] <= clock.seconds
  assert first.metadata["compile_seconds"] == pytest.approx(clock.seconds, rel=0.1)
  # Another grid of the same size: the same programs, and the result of a fresh compilation.
  other = np.array([0.02, 0.2, 0.5, 3.0])
  again, recompiled = _compiles_during(lambda: run(other))
  assert recompiled == 0 and again.metadata["compile_seconds"] == 0
  sweep.clear_cache()
  fresh, compiled = _compiles_during(lambda: run(other))
  assert compiled >= 2
  chex.assert_trees_all_equal(again.history, fresh.history)
  # A different setting is a different program.
  _, compiled = _compiles_during(lambda: run(other, steps=30))
  assert compiled >= 2


def test_the_cache_keeps_the_most_recent_signatures(task):
  sweep.clear_cache()
  # A new make_tx function per call: every call is a new signature.
  run = lambda: sweep.run(
    task, lambda hp: optimizers.sgd(hp["lr"]), {"lr": np.array([0.1])}, steps=2, batch_size=32,
    key=KEY, eval_every=2, chunk_size=1, progress=False,
  )  # fmt: skip
  for _ in range(sweep.CACHE_SIZE + 2):
    _, compiled = _compiles_during(run)
    assert compiled >= 2
  info = sweep.cache_info()
  assert info.programs == info.maxsize == sweep.CACHE_SIZE  # chunk_size given: no footprints
  sweep.clear_cache()
  assert sweep.cache_info() == (0, 0, sweep.CACHE_SIZE)


@pytest.mark.parametrize(
  ("make_tx", "unread"),
  [
    (lambda hp: optimizers.sgd(hp["lr"]), ["momentum"]),
    (lambda hp: optimizers.sgd(hp["lr"], momentum=hp["momentum"]), []),
    (lambda hp: optimizers.sgd(hp.get("lr"), momentum=hp.get("momentum")), []),
    (lambda hp: (lambda d: optimizers.sgd(d["lr"], momentum=d["momentum"]))(hp.copy()), []),
    (lambda hp: optimizers.sgd(**{k.replace("lr", "learning_rate"): v for k, v in hp.items()}), []),
  ],
)
def test_an_axis_make_tx_never_reads_is_flagged(make_tx, unread):
  grid = sweep.product(lr=[0.1, 0.2], momentum=[0.0, 0.5])
  run = lambda: sweep.run(
    "quadratic", make_tx, grid, steps=4, batch_size=None, key=KEY, eval_every=2, progress=False
  )
  if unread:
    with pytest.warns(sweep.UnusedAxisWarning, match=repr(unread[0])):
      result = run()
    # The members differing only in the unread axis are copies of one another.
    np.testing.assert_array_equal(result.history.val_loss[:, 0], result.history.val_loss[:, 1])
  else:
    run()  # UserWarnings from lrlab are errors in this test suite


def test_a_grid_axis_named_fold_without_folds_is_refused():
  # make_tx never sees a "fold" axis (hyperparameters.split takes it for the trainer), so without
  # folds= it would vanish: no UnusedAxisWarning, and hp["fold"] a KeyError saying it is absent.
  grid = {"lr": np.array([0.1, 0.1]), "fold": np.array([0, 1])}
  with pytest.raises(ValueError, match=r"axis named 'fold'.*\['lr', 'fold'\]"):
    sweep.run("quadratic", _sgd, grid, steps=4, batch_size=None, key=KEY, eval_every=2,
              progress=False)  # fmt: skip


def test_a_missing_axis_that_make_tx_catches_does_not_mark_the_others_read():
  # make_tx may read an optional axis with try/except KeyError; the error's message lists the
  # grid's axes, which must not count as reading them, or an unread axis goes unflagged.
  read = set()
  hp = sweep.hyperparameters.Axes({"lr": 0.1, "momentum": 0.9, "wd": 1e-4}, read)
  assert hp["lr"] == 0.1
  with pytest.raises(KeyError, match=r"hp\['b1'\].*'lr', 'momentum', 'wd'"):
    hp["b1"]
  assert read == {"lr", "b1"}
