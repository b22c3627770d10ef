"""The runs of ``warmup_length``: a grid x seeds through :class:`lrlab.train.Trainer`, one
evaluation window per call, so a run's state can be forked between any two windows."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np

from lrlab import data, sweep, tasks, train
from lrlab.train.trainer import evaluation_from

EVAL_BATCH = 256  # sequences per evaluation batch


def resident(task):
  """``task`` with its streamed splits gathered into arrays: the same sequences, and (by the
  engine's contract) the same minibatches in the same order."""
  ds = task.dataset
  arrays = [
    a for s in ("train", "val", "test") for a in ds.gather(s, np.arange(ds.sizes[s]), where=s)
  ]
  dataset = data.Dataset(*arrays, num_classes=ds.num_classes, name=ds.name)
  return dataclasses.replace(task, dataset=dataset)


def setup(overrides: dict, *, steps: int, batch_size: int, eval_every: int, seeds: int):
  """``lm-transformer`` with ``overrides``, its training split one epoch of ``steps`` steps of
  ``batch_size`` sequences, and that task made resident (:func:`resident`); the settings of
  :class:`Runs` (the key ``key(0)``) and the config every saved sweep of it shares:
  ``(lm, lm_resident, settings, config)``."""
  context = overrides.get("context", 64)
  lm = tasks.get("lm-transformer", num_tokens=steps * batch_size * context, **overrides)
  settings = dict(
    steps=steps, batch_size=batch_size, eval_every=eval_every, seeds=seeds, key=jax.random.key(0)
  )
  config = {"task": "lm-transformer", "task_overrides": overrides, "batch_size": batch_size,
            "eval_every": eval_every, "divergence_factor": 10.0}  # fmt: skip
  return lm, resident(lm), settings, config


_FIRST = {}  # id(task) -> (task, its compiled step 0): one program for every Runs on the task


def first_state(trainer):
  """Each seed's initial weights and their step-0 evaluation, ``keys (seeds,) -> (params,
  model_state, Evaluation)``, as :meth:`lrlab.train.Trainer.init` draws them.

  Neither needs the optimizer (every member of a seed starts from its seed's weights), so one
  compiled program serves every :class:`Runs` on ``task``: at the tiny size the initialisation
  and the evaluation are most of a start's compile time.
  """
  task = trainer.task
  if id(task) not in _FIRST:

    def first(key):
      params, model_state = trainer.init_weights(key)
      val = task.evaluate(params, model_state, "val", batch_size=EVAL_BATCH)
      test = task.evaluate(params, model_state, "test", batch_size=EVAL_BATCH)
      return params, model_state, evaluation_from(val["loss"], val, test)

    _FIRST[id(task)] = (task, jax.jit(jax.vmap(first)))
  return _FIRST[id(task)][1]


class Runs:
  """A grid of ``make_tx`` settings x ``seeds`` seeds on one task, an evaluation window per call.

  Seed ``s`` uses ``fold_in(key, s)``, as :func:`lrlab.sweep.run`; all members of a seed share
  the initialisation and the minibatches. ``start`` gives the step-0 state and evaluation,
  ``window(hp, state, w)`` trains window ``w`` (steps ``w * eval_every`` on) from ``state``
  with the settings ``hp``, which may differ from the ones the state was trained with (a fork).
  """

  def __init__(self, task, make_tx, *, steps, batch_size, eval_every, seeds, key):
    self.trainer = trainer = train.Trainer(
      task, steps=steps, batch_size=batch_size, eval_every=eval_every, eval_batch_size=EVAL_BATCH
    )
    self.keys = jnp.stack([jax.random.fold_in(key, s) for s in range(seeds)])
    over = lambda f, inner, outer: jax.jit(jax.vmap(jax.vmap(f, inner), outer))
    self._first = first_state(trainer)

    def start(hp, params, model_state, val_loss):
      """:meth:`lrlab.train.Trainer.init_state` on the seed's weights, with the threshold."""
      return trainer.with_threshold(trainer.state_from(make_tx(hp), params, model_state), val_loss)

    self._start = over(start, (0, None, None, None), (None, 0, 0, 0))
    segment = lambda hp, key, state, w: trainer.segment(make_tx(hp), key, state, w, 1)
    self._segment = over(segment, (0, None, 0, None), (None, 0, 0, None))

  def start(self, hp):
    params, model_state, first = self._first(self.keys)  # per seed: its members share them
    members = len(next(iter(hp.values())))
    state = self._start(hp, params, model_state, first.val_loss)
    return state, jax.tree.map(lambda a: jnp.repeat(a[:, None], members, axis=1), first)

  def window(self, hp, state, w):
    return self._segment(hp, self.keys, state, jnp.int32(w))

  def history(self, state, first, parts) -> train.History:
    joined = jax.tree.map(lambda *a: jnp.concatenate(a, axis=-1), *parts)
    return jax.device_get(jax.vmap(jax.vmap(self.trainer.history))(state, first, joined))


def columns(grid):
  """A grid's columns as the engine passes them: float32, or int32 for integer axes."""
  return {
    k: jnp.asarray(v, jnp.int32 if np.issubdtype(v.dtype, np.integer) else jnp.float32)
    for k, v in grid.items()
  }


def straight(runs, grid, steps):
  """Train every member of ``grid`` from step 0 to ``steps``: their :class:`lrlab.train.History`."""
  hp = columns(grid)
  state, first = runs.start(hp)
  parts = []
  for w in range(steps // runs.trainer.eval_every):
    state, part = runs.window(hp, state, w)
    parts.append(part)
  return runs.history(state, first, parts)


def result_of(grid, history, config):
  """A :class:`lrlab.sweep.SweepResult` of ``history`` (seeds first) over ``grid``."""
  seeds = np.arange(history.diverged.shape[0])
  return sweep.SweepResult({k: np.asarray(v) for k, v in grid.items()}, seeds, history, config)


def resample(result, draw: np.ndarray):
  """``result`` with its seeds drawn (with replacement) as ``draw``: one bootstrap replicate."""
  history = jax.tree.map(lambda a: np.asarray(a)[draw], result.history)
  return dataclasses.replace(result, seeds=result.seeds[draw], history=history)
