"""Trainer(folds=k, eval_batch_size=b) evaluates the val fold and the fold's training rows in
batches of at most b, as it does every resident split without folds."""

import dataclasses

import jax
import numpy as np
import optax

import lrlab
from lrlab.train import Trainer


def _spied(task):
  seen = []
  inner = task.eval_loss

  def spy(params, model_state, batch):
    seen.append(batch[0].shape[0])
    return inner(params, model_state, batch)

  return dataclasses.replace(task, eval_loss=spy), seen


def test_folds_respect_eval_batch_size():
  task, seen = _spied(lrlab.tasks.get("digits-logreg"))
  trainer = Trainer(task, steps=2, batch_size=32, eval_every=1, folds=5, eval_batch_size=64)
  jax.eval_shape(lambda key: trainer.init(optax.sgd(0.1), key), jax.random.key(0))
  assert max(seen) <= 64, seen


def test_folds_batched_evaluation_agrees_with_one_batch():
  task = lrlab.tasks.get("digits-logreg")
  tx, key = optax.sgd(0.1), jax.random.key(0)
  runs = []
  for size in (None, 100):
    trainer = Trainer(task, steps=2, batch_size=32, eval_every=1, folds=4, eval_batch_size=size)
    _, first = jax.jit(lambda k, t=trainer: t.init(tx, k, 1))(key)
    runs.append(first)
  for a, b in zip(runs[0], runs[1], strict=True):
    np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-5)
