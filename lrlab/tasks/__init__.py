"""Tasks: data, a model's pure ``init``, training loss and evaluation; a registry of named tasks.

A :class:`Task` is the contract between the problems and the training core
(see its docstring). A researcher's own Flax NNX module enters through
:func:`from_nnx`; a model written without Flax through :func:`from_model` with
the pure :class:`lrlab.models.Functional` contract; the registered tasks
(:func:`get`, :func:`names`) are built the same way.

Example:
  >>> task = lrlab.tasks.get("digits-mlp")
  >>> params, model_state = task.init(jax.random.key(0))
  >>> sorted(task.evaluate(params, model_state, "val"))
  ['accuracy', 'loss']
"""

from lrlab.tasks.build import LOSSES as LOSSES
from lrlab.tasks.build import accuracy as accuracy
from lrlab.tasks.build import cross_entropy as cross_entropy
from lrlab.tasks.build import from_model as from_model
from lrlab.tasks.build import from_nnx as from_nnx
from lrlab.tasks.build import half_squared_error as half_squared_error
from lrlab.tasks.build import mse as mse
from lrlab.tasks.registry import get as get
from lrlab.tasks.registry import names as names
from lrlab.tasks.registry import quadratic_task as quadratic_task
from lrlab.tasks.registry import register as register
from lrlab.tasks.task import Task as Task
from lrlab.tasks.task import accumulate as accumulate
from lrlab.tasks.task import chunk_weight as chunk_weight

__all__ = [
  "LOSSES",
  "Task",
  "accumulate",
  "accuracy",
  "chunk_weight",
  "cross_entropy",
  "from_model",
  "from_nnx",
  "get",
  "half_squared_error",
  "mse",
  "names",
  "quadratic_task",
  "register",
]
