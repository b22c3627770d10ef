"""The training core: one run as a compiled program, pure and vmappable over hyperparameters.

The run is a pure function of ``(tx, key)`` so that a sweep can ``jax.vmap``
it over hyperparameters unchanged::

    run = lrlab.train.make_train_fn(task, steps=1000, batch_size=128, eval_every=100)
    histories = jax.jit(jax.vmap(lambda hp: run(make_tx(hp), key)))(grid)

Minibatches are drawn by index from per-epoch permutations of the training
set, derived from the key (:func:`batch_indices`): inside the scan for resident
data, on the host for streamed data, the same order either way. A run that
diverges (a non-finite loss, parameter or model state, or a loss above
``divergence_factor`` times the initial training loss) is frozen from that
step on: its parameters, model state and optimizer state stop changing and
the step is recorded. Non-finite parameters or model state are never kept; but
a loss is only known for the parameters an update already made, so a run
detected by its loss is frozen at the parameters that gave that loss, and its
later metrics (and the diverging window's mean ``train_loss``) may be huge, inf
or NaN.
"""

from lrlab.train.history import METRICS as METRICS
from lrlab.train.history import History as History
from lrlab.train.history import all_finite as all_finite
from lrlab.train.history import applied_learning_rate as applied_learning_rate
from lrlab.train.history import steps_to_target as steps_to_target
from lrlab.train.order import HostOrder as HostOrder
from lrlab.train.order import batch_indices as batch_indices
from lrlab.train.order import step_key as step_key
from lrlab.train.run import make_train_fn as make_train_fn
from lrlab.train.run import train as train
from lrlab.train.streaming import StreamedRun as StreamedRun
from lrlab.train.trainer import Evaluation as Evaluation
from lrlab.train.trainer import RunState as RunState
from lrlab.train.trainer import Segment as Segment
from lrlab.train.trainer import Trainer as Trainer

__all__ = [
  "METRICS",
  "Evaluation",
  "History",
  "HostOrder",
  "RunState",
  "Segment",
  "StreamedRun",
  "Trainer",
  "all_finite",
  "applied_learning_rate",
  "batch_indices",
  "make_train_fn",
  "step_key",
  "steps_to_target",
  "train",
]
