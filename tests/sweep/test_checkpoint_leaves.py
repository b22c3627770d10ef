"""What a sweep's checkpoint must hold beyond NumPy's own dtypes, and how long it is kept."""

import dataclasses
import re

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import lrlab

KW = dict(steps=8, eval_every=2, batch_size=None, key=jax.random.key(0), progress=False,
          chunk_size=2, checkpoint_interval=0.0)  # fmt: skip
GRID = {"lr": np.array([0.1, 0.2])}
QUADRATIC = lrlab.tasks.get("quadratic", dim=5)


def _stop_at(call: int):
  calls = []
  return lambda: calls.append(1) or len(calls) >= call


def _noisy(hp):
  """An optimizer whose state holds a typed PRNG key (optax.add_noise's)."""
  return optax.chain(optax.add_noise(0.01, 0.55, 0), lrlab.optimizers.sgd(hp["lr"]))


def _bfloat16():
  """The quadratic with bfloat16 parameters (np.savez alone stores them as raw |V2 bytes)."""

  def init(key):
    params, state = QUADRATIC.init(key)
    return jax.tree.map(lambda a: a.astype(jnp.bfloat16), params), state

  return dataclasses.replace(QUADRATIC, init=init, name="quadratic-bf16")


@pytest.mark.parametrize(
  ("task", "make_tx"),
  [(QUADRATIC, _noisy), (_bfloat16(), lambda hp: lrlab.optimizers.sgd(hp["lr"]))],
  ids=["prng key in the optimizer state", "bfloat16 parameters"],
)
def test_a_stopped_sweep_resumes_to_the_uninterrupted_one(tmp_path, task, make_tx):
  with pytest.raises(lrlab.sweep.Stopped):
    lrlab.sweep.run(task, make_tx, GRID, checkpoint_dir=str(tmp_path), should_stop=_stop_at(2),
                    **KW)  # fmt: skip
  resumed = lrlab.sweep.run(task, make_tx, GRID, checkpoint_dir=str(tmp_path), **KW)
  assert resumed.metadata["resumed_from"] is not None
  uninterrupted = lrlab.sweep.run(task, make_tx, GRID, **KW)
  jax.tree.map(np.testing.assert_array_equal, resumed.history, uninterrupted.history)


def test_keep_checkpoint_leaves_the_finished_sweep_for_the_caller_to_save(tmp_path):
  sgd = lambda hp: lrlab.optimizers.sgd(hp["lr"])
  first = lrlab.sweep.run(QUADRATIC, sgd, GRID, checkpoint_dir=str(tmp_path),
                          keep_checkpoint=True, **KW)  # fmt: skip
  assert any(tmp_path.iterdir())  # a crash before the caller saves loses nothing
  again = lrlab.sweep.run(QUADRATIC, sgd, GRID, checkpoint_dir=str(tmp_path), **KW)
  assert again.metadata["resumed_from"] is not None  # read, not trained
  jax.tree.map(np.testing.assert_array_equal, again.history, first.history)
  assert not any(tmp_path.iterdir())  # by default the finished sweep's checkpoint goes


def _not_a_checkpoint(path):
  np.savez(path, x=np.zeros(3))


@pytest.mark.parametrize(
  "damage",
  [
    lambda path: path.write_bytes(b""),
    lambda path: path.write_bytes(b"PK\x03\x04 a truncated zip"),
    _not_a_checkpoint,
  ],
  ids=["empty", "truncated", "an npz without a fingerprint"],
)
@pytest.mark.parametrize("chunk_size", [None, 2])
def test_a_damaged_checkpoint_is_named_in_one_line(tmp_path, damage, chunk_size):
  # A file that np.load cannot read as a checkpoint gets an error naming it and the way out,
  # not numpy's EOFError, BadZipFile or KeyError.
  path = tmp_path / lrlab.sweep.checkpoint.FILENAME
  damage(path)
  kwargs = KW | dict(chunk_size=chunk_size, checkpoint_dir=str(tmp_path))
  message = f"checkpoint {re.escape(repr(str(path)))} cannot be read .*delete {path.name} to start"
  with pytest.raises(ValueError, match=message):
    lrlab.sweep.run(QUADRATIC, lambda hp: lrlab.optimizers.sgd(hp["lr"]), GRID, **kwargs)
