"""Argument handling shared by the range test and the parallel finder."""

from collections.abc import Callable
from typing import Any

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


def as_make_tx(make_tx: MakeTx | str) -> MakeTx:
  """``hp -> optimizer``; a name gives ``lambda hp: get(name, learning_rate=hp['lr'])``."""
  if isinstance(make_tx, str):
    name = make_tx
    if name not in optimizers.names():
      allowed = ", ".join(repr(n) for n in optimizers.names())
      raise ValueError(f"make_tx must be a callable or one of {allowed}; got {name!r}.")
    return lambda hp: optimizers.get(name, learning_rate=hp["lr"])
  if not callable(make_tx):
    raise ValueError(
      f"make_tx must be a callable hp -> optax.GradientTransformation or an optimizer name; "
      f"got {make_tx!r}."
    )
  return make_tx


def check_batch_size(task: tasks_lib.Task, batch_size: Any) -> None:
  """Raise unless ``batch_size`` is ``None`` (resident data) or an int in ``[1, num_train]``."""
  num_train = task.num_train
  if batch_size is None and task.streamed:
    raise ValueError(
      f"batch_size must be an integer for a task whose data are streamed ({task.name!r}); "
      "got None (full batch)."
    )
  if batch_size is not None and (
    not isinstance(batch_size, int)
    or isinstance(batch_size, bool)
    or not 0 < batch_size <= num_train
  ):
    raise ValueError(
      f"batch_size must be None (full batch) or an integer in [1, {num_train}] "
      f"(the training set of {task.name!r}); got {batch_size!r}."
    )
