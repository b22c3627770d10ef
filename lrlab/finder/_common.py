"""Argument handling shared by the range test and the parallel finder."""

from collections.abc import Callable
from typing import Any

import numpy as np
import optax

from lrlab import optimizers
from lrlab import tasks as tasks_lib

MakeTx = Callable[[dict[str, Any]], optax.GradientTransformation]


def as_task(task: Any) -> tasks_lib.Task:
  """A :class:`lrlab.tasks.Task`, built from the registry when ``task`` is a name."""
  if isinstance(task, str):
    return tasks_lib.get(task)
  if not isinstance(task, tasks_lib.Task):
    raise ValueError(f"task must be an lrlab.tasks.Task or a registered name; got {task!r}.")
  return task


def as_make_tx(make_tx: MakeTx | str, *, range_test: bool = False) -> MakeTx:
  """``hp -> optimizer``; a name gives ``lambda hp: get(name, learning_rate=hp['lr'])`` (for the
  range test, not a learning-rate-free one: see :func:`refuse_learning_rate_free`)."""
  if isinstance(make_tx, str):
    name = make_tx
    if name not in optimizers.names():
      allowed = ", ".join(repr(n) for n in optimizers.names())
      raise ValueError(f"make_tx must be a callable or one of {allowed}; got {name!r}.")
    if range_test:
      refuse_learning_rate_free(name, "make_tx")
    return lambda hp: optimizers.get(name, learning_rate=hp["lr"])
  if not callable(make_tx):
    raise ValueError(
      f"make_tx must be a callable hp -> optax.GradientTransformation or an optimizer name; "
      f"got {make_tx!r}."
    )
  return make_tx


def refuse_learning_rate_free(name: str, argument: str) -> None:
  """Raise for an optimizer of :mod:`lrlab.optimizers.lr_free` (DoG, Prodigy, D-Adaptation, SPS):
  its ``learning_rate`` multiplies the step size it chooses, so a range test cannot scan it."""
  if getattr(optimizers, name).__module__ == optimizers.lr_free.__name__:
    raise ValueError(
      f"{argument} must be an optimizer whose learning rate the range test can scan; {name!r} "
      "is learning-rate-free (its learning_rate multiplies the step size it chooses): sweep "
      "that multiplier instead (find_lr_parallel, lrlab sweep)."
    )


def check_batch_size(task: tasks_lib.Task, batch_size: Any) -> int | None:
  """``batch_size`` as an ``int`` (a NumPy integer too, as :class:`lrlab.train.Trainer` takes
  it), or ``None`` (full batch of resident data); a one-line error for anything else."""
  num_train = task.num_train
  if batch_size is None and task.streamed:
    raise ValueError(
      f"batch_size must be an integer for a task whose data are streamed ({task.name!r}); "
      "got None (full batch)."
    )
  if batch_size is not None and (
    not isinstance(batch_size, int | np.integer)
    or isinstance(batch_size, bool)
    or not 0 < batch_size <= num_train
  ):
    raise ValueError(
      f"batch_size must be None (full batch) or an integer in [1, {num_train}] "
      f"(the training set of {task.name!r}); got {batch_size!r}."
    )
  return None if batch_size is None else int(batch_size)
