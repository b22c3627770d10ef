"""The sweep engine: equal to separate runs, chunking, divergence isolation, folds, bad input
and its cache of compiled programs (checkpoints, devices and processes: test_resume.py)."""

import chex
import jax
import numpy as np
import pytest

from lrlab import optimizers, sweep, tasks, train
from lrlab.train.compiling import CompileClock

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
