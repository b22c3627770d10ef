"""A seed's minibatch indices are drawn once per segment and shared by its chunks, bit for bit."""

import chex
import jax
import numpy as np
import pytest

from lrlab import optimizers, search, sweep, tasks, train
from lrlab.sweep import programs

KEY = jax.random.key(0)
GRID = {"lr": np.geomspace(0.01, 0.5, 6)}
SETTINGS = dict(steps=24, batch_size=32, eval_every=4, key=KEY, chunk_size=2, progress=False)


def _sgd(hp):
  return optimizers.sgd(hp["lr"], momentum=0.9)


@pytest.fixture(scope="module")
def task():
  return tasks.get("digits-logreg")


def test_the_rows_are_the_run_order_and_a_segment_given_them_trains_as_one_drawing_them(task):
  """Trainer.minibatch_rows is batch_indices of the key's data half; a segment handed them is
  the segment that draws them; rows of another shape are refused in one line."""
  trainer = train.Trainer(task, steps=24, batch_size=32, eval_every=4)
  rows = trainer.minibatch_rows(KEY, 2, 3)
  expected = train.batch_indices(jax.random.split(KEY)[1], 8, 12, task.num_train, 32)
  np.testing.assert_array_equal(rows, expected)
  tx = _sgd({"lr": 0.1})
  state, _ = trainer.init(tx, KEY)
  drawn = trainer.segment(tx, KEY, state, 2, 3)
  given = trainer.segment(tx, KEY, state, 2, 3, rows=rows)
  chex.assert_trees_all_equal(drawn, given)
  with pytest.raises(
    ValueError, match=r"^rows must be the segment's \(12, 32\) .* got shape \(12, 16\)\.$"
  ):
    trainer.segment(tx, KEY, state, 2, 3, rows=rows[:, :16])


def _counting_draws(monkeypatch):
  """Count the calls of the compiled draw programs (per first window)."""
  calls = []
  draw = programs._Compiled.draw

  def counted(self, key, first_window):
    calls.append(int(first_window))
    return draw(self, key, first_window)

  monkeypatch.setattr(programs._Compiled, "draw", counted)
  return calls


def test_a_sweep_draws_each_seeds_rows_once_per_segment_for_all_chunks(task, monkeypatch):
  """3 chunks, 2 seeds, 6 segments (24 steps, a window of 4 steps a segment): 12 draws, one per
  seed and segment, not 36; and the result equals, bit for bit, the sweep whose chunks each
  draw their own."""
  sweep.clear_cache()
  calls = _counting_draws(monkeypatch)
  shared = sweep.run(task, _sgd, GRID, seeds=2, **SETTINGS)
  assert shared.config["windows_per_segment"] == 1 and sorted(calls) == sorted(2 * [*range(6)])
  calls.clear()
  monkeypatch.setattr(programs, "SHARED_ROWS_BYTES", 0)  # over the budget: each chunk draws
  own = sweep.run(task, _sgd, GRID, seeds=2, **SETTINGS)
  assert sorted(calls) == sorted(6 * [*range(6)])
  chex.assert_trees_all_equal(shared.history, own.history)


def test_a_search_shares_its_rows_between_chunks_too(task, monkeypatch):
  """Successive halving's first rung: 3 chunks, one draw per call window, and the same
  result as with every chunk drawing."""
  sweep.clear_cache()
  calls = _counting_draws(monkeypatch)
  kwargs = dict(steps=24, min_steps=8, eta=2, batch_size=32, eval_every=4, key=KEY, chunk_size=2)
  shared = search.successive_halving(task, _sgd, GRID, **kwargs)
  first_rung = [w for w in calls if w < 2]
  assert len(first_rung) == len(set(first_rung))  # drawn once, not once per chunk
  monkeypatch.setattr(programs, "SHARED_ROWS_BYTES", 0)
  own = search.successive_halving(task, _sgd, GRID, **kwargs)
  chex.assert_trees_all_equal(shared.sweep.history, own.sweep.history)


def test_a_seeds_chunks_share_its_step_0_evaluation(task):
  """Every member of a seed starts from its parameters: the seed's first chunk evaluates at step
  0 and its other chunks take that evaluation and threshold (2 evaluations for 2 seeds of 3
  chunks, not 6), with the same result, bit for bit, as every chunk evaluating."""
  sweep.clear_cache()
  first = sweep.run(task, _sgd, GRID, seeds=2, **SETTINGS)  # compiles, and caches the programs
  (compiled,) = programs._compiled_cache.values()
  evaluate, calls = compiled._first_evaluation, []
  compiled._first_evaluation = lambda *a: calls.append(1) or evaluate(*a)
  shared = sweep.run(task, _sgd, GRID, seeds=2, **SETTINGS)
  assert len(calls) == 2
  calls.clear()
  compiled._shares_start = False  # as under folds: every chunk evaluates
  own = sweep.run(task, _sgd, GRID, seeds=2, **SETTINGS)
  assert len(calls) == 6
  chex.assert_trees_all_equal(first.history, shared.history, own.history)


def test_every_chunk_width_shares_one_compiled_draw_and_initialization(task):
  """The draw and the seed's weights do not depend on the chunk's width (the chunk probe times
  several widths): sweeps in chunks of 2 and of 6 compile each once, and train as each did with
  its own."""
  sweep.clear_cache()
  narrow = sweep.run(task, _sgd, GRID, **SETTINGS)
  shared = dict(programs._shared)
  assert sorted(name for name, _ in shared) == ["_draw", "_weights"]
  wide = sweep.run(task, _sgd, GRID, **{**SETTINGS, "chunk_size": 6})
  assert programs._shared == shared
  assert sweep.cache_info().programs == 2  # two widths' programs, one draw and one init
  sweep.clear_cache()
  alone = sweep.run(task, _sgd, GRID, **{**SETTINGS, "chunk_size": 6})  # compiles its own
  assert not set(programs._shared.values()) & set(shared.values())
  chex.assert_trees_all_equal(wide.history, alone.history)
  np.testing.assert_allclose(narrow.history.val_loss, wide.history.val_loss, rtol=1e-5)
