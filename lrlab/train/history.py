"""What a run measured: its :class:`History`, and the helpers that read a run's state.

:func:`applied_learning_rate` reads the rate an optimizer state applied,
:func:`all_finite` is the divergence guard's finiteness test, and
:func:`steps_to_target` turns a history into AlgoPerf's time-to-result.
"""

import math
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

from lrlab import _checks


class History(NamedTuple):
  """What one run measured. Under ``vmap`` every field gains a leading member axis.

  Evaluation points are step 0 (before training) and every ``eval_every`` steps
  after it, ``E = steps // eval_every + 1`` points in all.

  Attributes:
    step: ``(E,)`` int32, the number of updates made at each evaluation point.
    train_loss: ``(E,)`` mean minibatch loss over the window of steps ending at
      each evaluation point (at step 0: the loss on the whole training set).
      It is measured at the training parameters; held-out metrics are measured
      at the evaluation point, which differs for schedule-free optimizers
      (see :func:`lrlab.transforms.eval_params`).
    val_loss, val_accuracy, test_loss, test_accuracy: ``(E,)`` metrics of the
      held-out splits; accuracies are NaN for tasks that have none.
    learning_rate: ``(steps,)`` the learning rate applied at each step, read from
      the optimizer state (see :func:`applied_learning_rate`). From ``diverged_step`` on
      no update is applied (the run is frozen): those entries are what the frozen
      optimizer state would apply next (for a schedule, its rate at ``diverged_step``, repeated)
      and mean nothing.
    diverged: bool, whether the run diverged and was frozen.
    diverged_step: int32, the first diverging step, or -1.
  """

  step: jax.Array
  train_loss: jax.Array
  val_loss: jax.Array
  val_accuracy: jax.Array
  test_loss: jax.Array
  test_accuracy: jax.Array
  learning_rate: jax.Array
  diverged: jax.Array
  diverged_step: jax.Array


METRICS = ("train_loss", "val_loss", "val_accuracy", "test_loss", "test_accuracy")


def applied_learning_rate(opt_state: Any) -> jax.Array:
  """The learning rate an lrlab optimizer state says it applied at its last update.

  The product of every ``learning_rate`` field (the rate of
  :func:`lrlab.transforms.scale_by_learning_rate` or of an adaptive rule that
  owns its rate) and every ``scale`` field (the multiplier of a loss-driven
  controller such as :func:`lrlab.transforms.reduce_on_plateau`) found in the
  state. A state with neither, such as one of Optax's own optimizers, gives NaN.

  Args:
    opt_state: the state of an optimizer (any nesting of tuples, NamedTuples,
      lists and dicts).

  Returns:
    A float32 scalar.
  """
  rates = []

  def visit(node):
    if isinstance(node, tuple) and hasattr(node, "_fields"):
      rates.extend(getattr(node, f) for f in ("learning_rate", "scale") if f in node._fields)
      children = tuple(node)
    elif isinstance(node, list | tuple):
      children = node
    elif isinstance(node, dict):
      children = node.values()
    else:
      return
    for child in children:
      visit(child)

  visit(opt_state)
  if not rates:
    return jnp.float32(jnp.nan)
  return math.prod(jnp.asarray(r, jnp.float32) for r in rates)


def all_finite(tree: Any) -> jax.Array:
  """Whether every entry of ``tree`` is finite, as a bool scalar (``True`` for an empty tree).

  Computed as the finiteness of the float32 sum of all entries: a NaN or an
  infinity anywhere makes the sum non-finite, and a float sum vectorizes far
  better on CPU than a reduction of booleans (about 5% of a sweep's step; see
  BENCHMARKS.md). The one difference from checking entry by entry: finite
  entries whose sum overflows float32 (magnitudes around 1e38 / size) also
  count as non-finite, which for a training run is divergence all the same.
  Complex entries count by their real and imaginary parts.
  """
  leaves = [x.real + x.imag if jnp.iscomplexobj(x) else x for x in jax.tree.leaves(tree)]
  if not leaves:
    return jnp.bool_(True)
  return jnp.isfinite(sum(jnp.sum(x, dtype=jnp.float32) for x in leaves))


def steps_to_target(history: History, metric: str, target: ArrayLike) -> jax.Array:
  """Steps until ``metric`` first reaches ``target``: AlgoPerf's time-to-result, in steps.

  A loss reaches the target when it is ``<= target``; an accuracy when it is
  ``>= target``. Works on batched histories (a leading member axis).

  Args:
    history: a :class:`History` (or a batch of them).
    metric: a per-evaluation field, e.g. ``"val_loss"`` or ``"val_accuracy"``.
    target: the value to reach.

  Returns:
    The first evaluation step at which the target is met, as float32, or
    ``inf`` where it is never met.

  References:
    Dahl et al., "Benchmarking Neural Network Training Algorithms", 2023.
    https://arxiv.org/abs/2306.07179
  """
  _checks.check_choice("metric", metric, METRICS)
  values = getattr(history, metric)
  hit = values <= target if metric.endswith("loss") else values >= target
  first = jnp.argmax(hit, axis=-1)
  steps = jnp.broadcast_to(history.step, values.shape)
  reached = jnp.take_along_axis(steps, first[..., None], axis=-1)[..., 0].astype(jnp.float32)
  return jnp.where(jnp.any(hit, axis=-1), reached, jnp.inf)
