"""A successive-halving search killed by SIGKILL part-way, for the crash test.

  python -m tests.search.search_worker CHECKPOINT_DIR KILL_AT

Runs the search of :func:`settings` with a checkpoint after every segment, and
sends itself SIGKILL on the ``KILL_AT``-th segment boundary, before that
boundary's checkpoint: the newest checkpoint on disk is the previous one.
"""

import os
import signal
import sys

from tests import workers


def settings():
  """The search both the worker and the test run: ``(task, make_tx, grid, kwargs)``."""
  import jax
  import numpy as np

  from lrlab import tasks

  task = tasks.get("quadratic", dim=8, noise=1.0, num_train=64)
  kwargs = dict(steps=36, min_steps=4, eta=3, key=jax.random.key(3), seeds=2, batch_size=8,
                eval_every=2, chunk_size=3, checkpoint_interval=0.0)  # fmt: skip
  return task, _sgd, {"lr": np.geomspace(0.05, 2.5, 9)}, kwargs


def _sgd(hp):
  from lrlab import optimizers

  return optimizers.sgd(hp["lr"])


def main() -> None:
  # One device, whatever the caller's XLA_FLAGS asked for (a test worker's environment may
  # hold another test's device count): chunk_size 3 must divide over the devices.
  workers.start_jax(1)
  from lrlab import search

  directory, kill_at = sys.argv[1], int(sys.argv[2])
  calls = [0]

  def should_stop() -> bool:
    calls[0] += 1
    if calls[0] == kill_at:
      os.kill(os.getpid(), signal.SIGKILL)
    return False

  from tests.search import search_worker  # not __main__: make_tx's name is in the fingerprint

  task, make_tx, grid, kwargs = search_worker.settings()
  search.successive_halving(task, make_tx, grid, checkpoint_dir=directory,
                            should_stop=should_stop, **kwargs)  # fmt: skip


if __name__ == "__main__":
  main()
