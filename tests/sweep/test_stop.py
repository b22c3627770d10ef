"""``sweep.run(should_stop=...)``: stop at a segment boundary, checkpointed, and resume exactly."""

import chex
import jax
import numpy as np
import pytest

from lrlab import optimizers, sweep, tasks
from lrlab.sweep import checkpoint

GRID = {"lr": np.geomspace(0.01, 1.0, 6)}
SETTINGS = dict(steps=20, batch_size=32, key=jax.random.key(0), eval_every=2, progress=False)


def _sgd(hp):
  return optimizers.sgd(hp["lr"])


@pytest.fixture(scope="module")
def task():
  return tasks.get("digits-logreg")


@pytest.fixture(scope="module")
def uninterrupted(task):
  return sweep.run(task, _sgd, GRID, seeds=2, chunk_size=4, **SETTINGS)


def _after(calls: int):
  """A ``should_stop`` that says stop on its ``calls``-th call, and from then on."""
  count = [0]

  def should_stop() -> bool:
    count[0] += 1
    return count[0] >= calls

  return should_stop


# Chunks of 4 over 6 members: 2 chunks x 2 seeds, 10 windows = 10 segments a chunk.
@pytest.mark.parametrize(
  ("calls", "position"),
  [
    (1, {"seed": 0, "chunk": 0, "segment": 1}),  # after the first segment
    (10, {"seed": 0, "chunk": 1, "segment": 0}),  # at a chunk's end
    (25, {"seed": 1, "chunk": 0, "segment": 5}),  # in the second seed (10 + 10 + 5 calls)
  ],
)
def test_stops_where_asked_and_resumes_to_the_same_result(
  task, uninterrupted, tmp_path, calls, position
):
  kwargs = dict(seeds=2, chunk_size=4, checkpoint_dir=str(tmp_path), **SETTINGS)
  with pytest.raises(sweep.Stopped) as stopped:
    sweep.run(task, _sgd, GRID, should_stop=_after(calls), **kwargs)
  assert stopped.value.position == position
  assert stopped.value.checkpoint_dir == str(tmp_path)
  where = ", ".join(f"{k} {v}" for k, v in position.items())  # it read as a dict
  assert str(stopped.value) == f"sweep stopped at {where}; progress saved in {str(tmp_path)!r}."
  assert (tmp_path / checkpoint.FILENAME).exists()
  resumed = sweep.run(task, _sgd, GRID, **kwargs)
  assert resumed.metadata["resumed_from"] == position
  chex.assert_trees_all_equal(resumed.history, uninterrupted.history)


def test_a_stop_after_the_last_segment_returns_the_result(task, uninterrupted):
  # 40 segment boundaries in all: asked at the last one, there is nothing left to stop.
  result = sweep.run(task, _sgd, GRID, seeds=2, chunk_size=4, should_stop=_after(40), **SETTINGS)
  chex.assert_trees_all_equal(result.history, uninterrupted.history)


def test_without_a_checkpoint_dir_it_stops_and_says_nothing_was_saved(task):
  with pytest.raises(sweep.Stopped, match="not saved"):
    sweep.run(task, _sgd, GRID, seeds=1, chunk_size=4, should_stop=lambda: True, **SETTINGS)


@pytest.mark.parametrize(
  ("windows", "per_segment"),
  [(7, 1), (50, 1), (60, 2), (1000, 20), (51, 3), (53, 1), (106, 2), (997, 1)],
)
def test_a_prime_number_of_windows_still_gives_segments(windows, per_segment):
  # The smallest divisor giving at most 50 segments left 53 windows (a prime) one segment: no
  # progress, checkpoint or stop until the end. Under 10 segments, the largest giving 10 or more.
  assert sweep.engine._windows_per_segment(windows) == per_segment


def test_a_sweep_of_53_windows_stops_part_way_and_resumes_exactly(task, tmp_path):
  kwargs = dict(SETTINGS, steps=53, eval_every=1, chunk_size=6, checkpoint_dir=str(tmp_path))
  whole = sweep.run(task, _sgd, GRID, **{**kwargs, "checkpoint_dir": None})
  with pytest.raises(sweep.Stopped) as stopped:
    sweep.run(task, _sgd, GRID, should_stop=_after(5), **kwargs)
  assert stopped.value.position == {"seed": 0, "chunk": 0, "segment": 5}  # of 53
  resumed = sweep.run(task, _sgd, GRID, **kwargs)
  chex.assert_trees_all_equal(resumed.history, whole.history)
