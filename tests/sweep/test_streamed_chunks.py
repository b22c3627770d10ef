"""A streamed sweep's chunks: chunk_size="auto" probed on a few examples, not a pass over them,
and one step-0 evaluation per seed, not per chunk."""

import chex
import jax
import numpy as np

from lrlab import data, optimizers, sweep, tasks
from lrlab.sweep import chunking

KEY = jax.random.key(0)
BATCH = 32


class CountingSource(data.ArraySource):
  """An :class:`lrlab.data.ArraySource` that counts the examples read from it."""

  def __init__(self, x, y):
    super().__init__(x, y)
    self.read = 0

  def __getitem__(self, indices):
    self.read += len(np.asarray(indices))
    return super().__getitem__(indices)


def _streamed():
  resident = tasks.get("digits-logreg")
  sources = [CountingSource(*resident.dataset.split(s)) for s in ("train", "val", "test")]
  dataset = data.from_source(*sources, num_classes=10, name="digits")
  return tasks.from_model(resident.model, dataset, loss="cross_entropy", name="digits-streamed")


def _run(task, chunk_size, **kwargs):
  grid = {"lr": np.geomspace(0.01, 1.0, 6)}
  make_tx = lambda hp: optimizers.sgd(hp["lr"], momentum=0.9)
  settings = dict(steps=20, batch_size=BATCH, key=KEY, eval_every=5, progress=False)
  return sweep.run(task, make_tx, grid, chunk_size=chunk_size, **(settings | kwargs))


def test_a_streamed_sweep_is_probed_on_a_few_of_its_examples(tmp_path, monkeypatch):
  monkeypatch.setenv("LRLAB_CACHE_DIR", str(tmp_path))
  task = _streamed()
  sources = [task.dataset.source(s) for s in ("train", "val", "test")]
  for s in sources:  # building the task read a few examples
    s.read = 0
  measured = _run(task, "auto")
  choice = measured.metadata["chunk_choice"]
  # It used to take the cache heuristic's size ("not probed: a streamed task").
  assert choice["method"] == "measured" and not choice["reused_programs"]
  best = min(choice["probe"], key=lambda p: p["seconds"])
  assert best["chunk_size"] == choice["chunk_size"] == measured.config["chunk_size"]
  with_probe = [s.read for s in sources]
  for s in sources:
    s.read = 0
  fixed = _run(task, choice["chunk_size"])  # the same sweep at the size the probe kept
  chex.assert_trees_all_equal(measured.history, fixed.history)
  # The probe read one batch of each split (the stand-in's examples), nothing more.
  probe_reads = [a - b.read for a, b in zip(with_probe, sources, strict=True)]
  assert probe_reads == [BATCH, BATCH, BATCH]
  again = _run(task, "auto")
  assert again.metadata["chunk_choice"]["method"] == "cached"


def test_the_stand_in_is_the_task_on_its_first_examples():
  task = _streamed()
  trainer = sweep.engine.Trainer(task, steps=20, batch_size=BATCH, eval_every=5)
  stand_in = chunking.stand_in(trainer)
  assert not stand_in.streamed and stand_in.model is task.model and stand_in.loss is task.loss
  for split in ("train", "val", "test"):
    x, y = stand_in.dataset.split(split)
    want = task.dataset.gather(split, np.arange(BATCH), where="the test")
    np.testing.assert_array_equal(x, want[0])
    np.testing.assert_array_equal(y, want[1])


def test_the_chunks_of_a_seed_share_its_step_0_evaluation():
  # Each chunk used to evaluate its members at step 0, a pass over the training source each.
  task = _streamed()
  train = task.dataset.source("train")
  reads = {}
  for chunk_size in (2, 6):  # three chunks of each seed, then one
    train.read = 0
    _run(task, chunk_size, seeds=2)
    reads[chunk_size] = train.read
  # Every chunk reads its windows' minibatches (20 steps of BATCH); the pass over the
  # training set at step 0 is read once per seed either way.
  assert reads[2] - reads[6] == 2 * (3 - 1) * 20 * BATCH
