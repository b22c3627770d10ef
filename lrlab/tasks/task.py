"""The :class:`Task` contract between a problem and the training core: pure functions plus data.

A task's model may carry state beyond its parameters (BatchNorm statistics)
and draw random numbers (Dropout), so its functions take that state and a key
explicitly and return the new state; the optimizer sees the parameters only.
Resident data live on the task as device arrays (a loop draws minibatches on
device with :meth:`Task.batch`); streamed data stay on the host as sources.

Example:
  >>> task = lrlab.tasks.get("digits-mlp")
  >>> params, model_state = task.init(jax.random.key(0))
  >>> idx = jax.random.choice(jax.random.key(1), task.num_train, (128,))
  >>> loss, (model_state, aux) = task.loss(params, model_state, task.batch(idx), None)
  >>> sorted(task.evaluate(params, model_state, "val"))
  ['accuracy', 'loss']
"""

import dataclasses
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from jax.typing import ArrayLike

from lrlab import _checks
from lrlab.data.dataset import SPLITS, Dataset, Split
from lrlab.data.source import StreamedDataset

Params = Any
ModelState = Any
Batch = tuple[jax.Array, jax.Array]
Metrics = dict[str, jax.Array]
LossFn = Callable[
  [Params, ModelState, Batch, jax.Array | None], tuple[jax.Array, tuple[Any, Metrics]]
]
EvalLossFn = Callable[[Params, ModelState, Batch], tuple[jax.Array, Metrics]]


@dataclasses.dataclass(frozen=True, eq=False)
class Task:
  """A learning problem: data, initialisation, a training loss and an evaluation, all pure.

  Contract (the pure-JAX one; :func:`lrlab.tasks.from_nnx` and
  :func:`lrlab.tasks.from_model` build it from a model):

  - ``init(key) -> (params, model_state)``: pytrees of arrays;
    ``model_state`` is ``{}`` when the model has none.
  - ``loss(params, model_state, batch, key) -> (loss, (model_state, aux))``, the
    training mode: ``batch = (x, y)`` with the example axis first, ``key`` the
    step's key for dropout (``None`` when nothing is random), ``loss`` the scalar
    batch mean, the new model state (updated statistics) and ``aux`` a dict of
    scalar batch means (``{'accuracy': ...}`` for classification). Its shape
    suits ``jax.value_and_grad(loss, has_aux=True)``.
  - ``eval_loss(params, model_state, batch) -> (loss, aux)``, the evaluation
    mode (running statistics, no dropout). Default: ``loss`` with no key, its
    new model state dropped, right for models whose modes do not differ.

  The task is hashable by identity, so it can be a static argument of
  ``jax.jit``; it is not a pytree.

  Attributes:
    name: registry name, e.g. ``"digits-mlp"``.
    dataset: a resident :class:`lrlab.data.Dataset` or a
      :class:`lrlab.data.StreamedDataset`.
    init, loss, eval_loss: as above.
    model: the :class:`lrlab.models.Functional` the functions were built from,
      or ``None`` (the quadratic).
    L: the largest Hessian eigenvalue of the full-batch training loss where it
      is known and constant (quadratic, linear regression), else ``None``.
      Gradient descent is stable iff ``lr < 2 / L``.
    mu: the smallest such eigenvalue, else ``None``; ``2 / (L + mu)`` is the
      fastest constant learning rate.
    optimum: the minimiser of the full-batch training loss where known, else ``None``.
    optimal_loss: the lowest loss any model can reach on the val split where it is
      known exactly (the Bayes-optimal cross-entropy of a synthetic language, a
      noise floor), else ``None``.
    lr_multipliers_fn: ``optimizer -> pytree`` of per-tensor learning-rate
      multipliers of the model's parametrization, or ``None``; read it through
      :meth:`lr_multipliers`.
  """

  name: str
  dataset: Dataset | StreamedDataset
  init: Callable[[jax.Array], tuple[Params, ModelState]]
  loss: LossFn
  eval_loss: EvalLossFn | None = None
  model: Any = None
  L: float | None = None
  mu: float | None = None
  optimum: Params | None = None
  optimal_loss: float | None = None
  lr_multipliers_fn: Callable[[str], Params] | None = None
  _arrays: dict[str, Batch] = dataclasses.field(init=False, repr=False)

  def __post_init__(self):
    if self.eval_loss is None:
      loss = self.loss

      def eval_loss(params: Params, model_state: ModelState, batch: Batch):
        value, (_, aux) = loss(params, model_state, batch, None)
        return value, aux

      object.__setattr__(self, "eval_loss", eval_loss)
    # Device copies made once, outside any trace, so closures see concrete arrays.
    arrays = {}
    if not self.streamed:
      arrays = {s: tuple(jnp.asarray(a) for a in self.dataset.split(s)) for s in SPLITS}
    object.__setattr__(self, "_arrays", arrays)

  def __repr__(self) -> str:
    return (
      f"Task(name={self.name!r}, sizes={self.dataset.sizes}, num_classes={self.num_classes}, "
      f"streamed={self.streamed}, L={self.L}, mu={self.mu})"
    )

  @property
  def streamed(self) -> bool:
    """Whether the data stay on the host (a :class:`lrlab.data.StreamedDataset`)."""
    return self.dataset.streamed

  @property
  def num_train(self) -> int:
    """Number of training examples (the range of minibatch indices)."""
    return self.dataset.num_train

  @property
  def num_classes(self) -> int | None:
    """Number of classes, or ``None`` for regression and the quadratic."""
    return self.dataset.num_classes

  @property
  def x_train(self) -> jax.Array:
    """Training inputs on device, ``(num_train, ...)``."""
    return self.split("train")[0]

  @property
  def y_train(self) -> jax.Array:
    """Training targets on device, ``(num_train, ...)``."""
    return self.split("train")[1]

  def lr_multipliers(self, optimizer: str) -> Params:
    """The model's per-layer learning-rate multipliers for ``optimizer`` (``"adam"`` or ``"sgd"``).

    A pytree shaped like the parameters, for
    :func:`lrlab.transforms.scale_by_multipliers`: with ``parametrization="mup"``,
    ``optax.chain(lrlab.optimizers.adam(lr), scale_by_multipliers(task.lr_multipliers("adam")))``
    is muP Adam (Yang et al. 2022); under ``"sp"`` every multiplier is 1. See
    :func:`lrlab.models.mlp_lr_multipliers` for the MLP's,
    :func:`lrlab.models.resnet.resnet_lr_multipliers` for the ResNets' and
    :func:`lrlab.models.transformer.transformer_lr_multipliers` for ``lm-transformer``'s.

    Raises:
      ValueError: if the task has no parametrization, or for an unknown ``optimizer``.
    """
    if self.lr_multipliers_fn is None:
      raise ValueError(
        f"task {self.name!r} has no parametrization, so no lr_multipliers; build an MLP, "
        "ResNet or transformer task with parametrization='sp' or 'mup' "
        "(e.g. lrlab.tasks.get('mnist1d-mlp', ...))."
      )
    return self.lr_multipliers_fn(optimizer)

  def split(self, split: Split) -> Batch:
    """The whole of ``split`` (``'train'``, ``'val'``, ``'test'``) as a device batch ``(x, y)``."""
    _checks.check_choice("split", split, SPLITS)
    if self.streamed:
      raise ValueError(
        f"task {self.name!r} streams its data from the host; read examples with "
        f"task.dataset.gather(split, indices, where=...) instead of task.split({split!r})."
      )
    return self._arrays[split]

  def batch(self, indices: jax.Array, split: Split = "train") -> Batch:
    """The examples ``indices`` (an int array, may be traced) of ``split`` as a batch ``(x, y)``."""
    x, y = self.split(split)
    return x[indices], y[indices]

  def evaluate(
    self, params: Params, model_state: ModelState, split: Split, *, batch_size: int | None = None
  ) -> Metrics:
    """Loss and metrics of ``params`` on a whole resident split, in evaluation mode.

    Pure and jit/vmap-able with ``split`` static. With ``batch_size`` the split
    is processed in chunks of that many examples (less memory); the chunks'
    means are combined by :func:`accumulate`, in order, which is right because
    the metrics are batch means and the evaluation mode does not depend on the
    batch (running statistics, not the batch's).

    Args:
      params: the parameters.
      model_state: the model state, as from ``init`` or training.
      split: ``'train'``, ``'val'`` or ``'test'``.
      batch_size: examples per chunk, a static int >= 1; ``None`` evaluates in one batch.

    Returns:
      A dict of scalar arrays: ``'loss'`` and the task's metrics.
    """
    return self.evaluate_batch(params, model_state, self.split(split), batch_size=batch_size)

  def evaluate_batch(
    self, params: Params, model_state: ModelState, batch: Batch, *, batch_size: int | None = None
  ) -> Metrics:
    """:meth:`evaluate` on the examples ``batch = (x, y)`` rather than a named split (e.g. a
    cross-validation fold), in chunks of ``batch_size`` combined the same way."""
    if batch_size is not None and (
      isinstance(batch_size, bool) or not isinstance(batch_size, int | np.integer) or batch_size < 1
    ):
      raise ValueError(f"batch_size must be None or an integer >= 1; got {batch_size!r}.")
    x, y = batch
    n = x.shape[0]

    def metrics(batch: Batch) -> Metrics:
      # Each chunk computed apart from the rest of the program, as a streamed chunk is.
      loss, aux = self.eval_loss(*lax.optimization_barrier((params, model_state, batch)))
      return {"loss": loss, **aux}

    if batch_size is None or batch_size >= n:
      loss, aux = self.eval_loss(params, model_state, (x, y))
      return {"loss": loss, **aux}
    _checks.check_positive("batch_size", batch_size)
    size = int(batch_size)
    chunks, rest = divmod(n, size)
    head = (
      x[: chunks * size].reshape(chunks, size, *x.shape[1:]),
      y[: chunks * size].reshape(chunks, size, *y.shape[1:]),
    )
    weights = jnp.asarray([chunk_weight(c * size, size) for c in range(chunks)], jnp.float32)
    average = jax.tree.map(jnp.zeros_like, jax.eval_shape(metrics, (head[0][0], head[1][0])))
    step = lambda avg, inputs: (accumulate(avg, metrics(inputs[0]), inputs[1]), None)
    average, _ = lax.scan(step, average, (head, weights))
    if rest:
      tail = metrics((x[chunks * size :], y[chunks * size :]))
      average = accumulate(average, tail, chunk_weight(chunks * size, rest))
    return average


def chunk_weight(seen: int, size: int) -> float:
  """The weight ``size / (seen + size)`` of a chunk of ``size`` examples after ``seen`` others."""
  return float(np.float32(size / (seen + size)))


def accumulate(average: Metrics, means: Metrics, weight: ArrayLike) -> Metrics:
  """The running mean over a split's chunks: ``average + (means - average) * weight``.

  ``weight`` is :func:`chunk_weight`; the first chunk's is 1, so a split in
  one chunk gives its mean exactly. The resident and the streamed evaluation
  both combine chunks with this, in the split's order, so they agree bit for bit.
  """
  # The barrier keeps XLA from fusing the sum into the metric's own reduction, which would
  # round differently in the two programs.
  means = lax.optimization_barrier(means)
  return jax.tree.map(lambda a, m: a + (m - a) * weight, average, means)
