"""One way in: a task from a model, a dataset and a per-example loss.

:func:`from_nnx` takes a Flax NNX module's constructor; :func:`from_model` takes
the pure :class:`lrlab.models.Functional` contract, for models written without
Flax (equinox, plain functions). Both check the model on two examples, by
shapes alone, before anything is trained.
"""

from collections.abc import Callable, Mapping
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

from lrlab import models
from lrlab.data.dataset import Dataset, check_dataset
from lrlab.data.source import StreamedDataset
from lrlab.tasks.task import Batch, Metrics, ModelState, Params, Task

PerExample = Callable[[jax.Array, jax.Array], jax.Array]

LOSSES = ("cross_entropy", "mse")


def _float32(values: jax.Array) -> jax.Array:
  """Low-precision floats (bfloat16, float16) as float32, wider ones as they are: a loss taken
  and averaged in bfloat16 keeps 8 bits (2.656 for 2.659), tying nearby learning rates."""
  return values.astype(jnp.promote_types(values.dtype, jnp.float32))


def _per_example(values: jax.Array, batch_size: int) -> jax.Array:
  """Mean over every axis but the first (a sequence's tokens, a target's entries)."""
  return values.reshape(batch_size, -1).mean(axis=-1)


def cross_entropy(outputs: jax.Array, targets: jax.Array) -> jax.Array:
  r"""Per-example softmax cross-entropy :math:`-\log \mathrm{softmax}(f(x))_y` on logits.

  ``outputs`` are logits ``(B, ..., C)`` and ``targets`` integer labels
  ``(B, ...)``; extra axes (a sequence's positions) are averaged per example.
  At small random logits it is about ``log C``. PyTorch's ``CrossEntropyLoss``
  with ``reduction='none'`` (computed in float32 for bfloat16 logits, as under autocast).
  """
  values = optax.softmax_cross_entropy_with_integer_labels(_float32(outputs), targets)
  return _per_example(values, targets.shape[0])


def _residual(outputs: jax.Array, targets: jax.Array) -> jax.Array:
  """``f(x) - y`` in the targets' shape. The outputs' shape may differ from it only by axes of
  size 1 (``(B, 1)`` for ``(B,)``): a reshape across other axes (``(B, 4)`` for ``(B, 2, 2)``, a
  transposed ``(K, B)``) would pair outputs with the wrong targets, so it is refused."""
  if [n for n in outputs.shape if n != 1] != [n for n in targets.shape if n != 1]:
    raise ValueError(
      f"outputs must have the targets' shape {targets.shape}, up to axes of size 1; got "
      f"{outputs.shape}."
    )
  return outputs.reshape(targets.shape) - targets


def mse(outputs: jax.Array, targets: jax.Array) -> jax.Array:
  """Per-example squared error averaged over the target's entries, ``mean_j (f(x)_j - y_j)^2``.

  ``outputs`` must have the targets' shape up to axes of size 1 (``(B, 1)`` outputs for
  ``(B,)`` targets); any other shape raises ``ValueError``. PyTorch's ``MSELoss`` (its
  batch mean is the same number).
  """
  return _per_example(_residual(outputs, targets) ** 2, targets.shape[0])


def half_squared_error(outputs: jax.Array, targets: jax.Array) -> jax.Array:
  """Per-example ``1/2 ||f(x) - y||^2``, summed over the target's entries.

  The convention under which a linear model's Hessian is ``X^T X / n`` (so
  ``L`` and ``mu`` of :func:`lrlab.data.linear_regression` apply). Shapes as for :func:`mse`.
  """
  residual = _residual(outputs, targets).reshape(targets.shape[0], -1)
  return 0.5 * jnp.sum(residual**2, axis=-1)


def accuracy(outputs: jax.Array, targets: jax.Array) -> jax.Array:
  """Per-example accuracy, ``argmax f(x) == y`` (averaged over extra axes such as tokens)."""
  return _per_example(
    (jnp.argmax(outputs, axis=-1) == targets).astype(jnp.float32), targets.shape[0]
  )


def _check_loss(loss: Any, dataset: Dataset | StreamedDataset) -> PerExample:
  if loss == "cross_entropy":
    if dataset.num_classes is None:
      raise ValueError(
        f"loss 'cross_entropy' needs a classification dataset; {dataset.name!r} has "
        "num_classes=None (use loss='mse' or a callable)."
      )
    return cross_entropy
  if loss == "mse":
    return mse
  if isinstance(loss, str) or not callable(loss):
    raise ValueError(
      f"loss must be one of {', '.join(map(repr, LOSSES))} or a callable (outputs, targets) -> "
      f"per-example loss; got {loss!r}."
    )
  return loss


def _probe(dataset: Dataset | StreamedDataset) -> Batch:
  """Two training examples (or one), to check the model and loss by shape."""
  rows = np.arange(min(2, dataset.num_train))
  if dataset.streamed:
    return dataset.gather("train", rows, where="the shape check")
  x, y = dataset.split("train")
  return x[rows], y[rows]


def from_model(
  model: models.Functional,
  dataset: Dataset | StreamedDataset,
  *,
  loss: str | PerExample,
  metrics: Mapping[str, PerExample] | None = None,
  name: str,
  L: float | None = None,
  mu: float | None = None,
  optimum: Params | None = None,
  lr_multipliers_fn: Callable[[str], Params] | None = None,
) -> Task:
  r"""A :class:`Task` from a pure model ``(init, apply)``: the contract for models without Flax.

  The training loss of a batch is :math:`\frac1B \sum_i \ell(f(x_i), y_i)`
  with ``f`` in training mode (``apply(..., train=True, key=step_key)``, its
  new model state kept); the evaluation uses ``train=False``. Each metric is
  averaged over the batch the same way; classification datasets get
  ``accuracy``.

  Args:
    model: a :class:`lrlab.models.Functional`, ``init(key) -> (params,
      model_state)`` and ``apply(params, model_state, x, *, train, key) ->
      (outputs, model_state)``.
    dataset: a :class:`lrlab.data.Dataset` or a streamed
      :class:`lrlab.data.StreamedDataset`.
    loss: ``"cross_entropy"`` (:func:`cross_entropy`, on logits), ``"mse"``
      (:func:`mse`) or a callable ``(outputs, targets) -> (B,)`` per-example loss.
    metrics: more per-example callables by name, reported by
      :meth:`Task.evaluate` (``"loss"`` is reserved).
    name: the task's name, a non-empty string.
    L, mu, optimum: known curvature and minimiser of the training loss, if any.
    lr_multipliers_fn: ``optimizer -> pytree`` of the model's per-layer
      learning-rate multipliers (:meth:`Task.lr_multipliers`), if it has a
      parametrization.

  Returns:
    A :class:`Task`.

  Raises:
    ValueError: for a bad argument (a resident ``dataset`` is checked as
      :func:`lrlab.data.from_arrays` checks it: NaN or infinity anywhere, labels out
      of range, splits that disagree), or (checked on two examples by shape, before
      any compute) a loss that does not return one value per example, a loss or
      metric that cannot take the model's outputs (a built-in loss takes one
      array; ``"mse"`` one of the targets' shape up to axes of size 1), or a model
      whose training mode returns model state of another structure than ``init`` made.
  """
  if not isinstance(model, models.Functional):
    raise ValueError(
      f"model must be an lrlab.models.Functional (init, apply); got {type(model).__name__}."
    )
  if not isinstance(dataset, Dataset | StreamedDataset):
    raise ValueError(
      "dataset must be an lrlab.data.Dataset (lrlab.data.from_arrays) or a StreamedDataset "
      f"(lrlab.data.from_source); got {type(dataset).__name__}."
    )
  if not isinstance(name, str) or not name:  # the name labels results, files and plots
    raise ValueError(f"name must be a non-empty string; got {name!r}.")
  if isinstance(dataset, Dataset):  # one built by hand, not by from_arrays: NaN would go silent
    check_dataset(dataset)
  per_example = _check_loss(loss, dataset)
  metrics = dict(metrics or {})
  for metric, function in metrics.items():
    if metric == "loss" or not callable(function):
      raise ValueError(
        f"metrics must map names other than 'loss' to callables (outputs, targets) -> "
        f"per-example values; got {metric!r}: {function!r}."
      )
  if dataset.num_classes is not None:
    metrics.setdefault("accuracy", accuracy)

  def measure(outputs: jax.Array, y: jax.Array) -> tuple[jax.Array, Metrics]:
    mean = lambda f: _float32(f(outputs, y)).mean()  # a batch mean in at least float32
    return mean(per_example), {k: mean(f) for k, f in metrics.items()}

  def train_loss(params: Params, model_state: ModelState, batch: Batch, key: jax.Array | None):
    x, y = batch
    outputs, model_state = model.apply(params, model_state, x, train=True, key=key)
    value, aux = measure(outputs, y)
    return value, (model_state, aux)

  def eval_loss(params: Params, model_state: ModelState, batch: Batch):
    x, y = batch
    outputs, _ = model.apply(params, model_state, x, train=False)
    return measure(outputs, y)

  _check_shapes(model, per_example, metrics, _probe(dataset), dataset.num_classes)
  return Task(
    name=name,
    dataset=dataset,
    init=model.init,
    loss=train_loss,
    eval_loss=eval_loss,
    model=model,
    L=L,
    mu=mu,
    optimum=optimum,
    lr_multipliers_fn=lr_multipliers_fn,
  )


def _first_line(error: Exception) -> str:
  """An exception's first line of text, or its type's name when it has none."""
  text = str(error).strip()
  return text.splitlines()[0] if text else type(error).__name__


def _shaped(tree: Any) -> str:
  """An abstract array as ``(2, 3) float32``; anything else as its type and its arrays' shapes."""
  if isinstance(tree, jax.ShapeDtypeStruct):
    return f"{tree.shape} {tree.dtype}"
  leaves = ", ".join(f"{a.shape} {a.dtype}" for a in jax.tree.leaves(tree))
  return f"a {type(tree).__name__} of {leaves}"


def _check_shapes(
  model: models.Functional,
  per_example: PerExample,
  metrics: Mapping[str, PerExample],
  batch: Batch,
  num_classes: int | None,
) -> None:
  key = jax.random.key(0)
  params, model_state = jax.eval_shape(model.init, key)
  x, y = (jax.ShapeDtypeStruct(a.shape, a.dtype) for a in batch)
  apply = lambda p, s, x: model.apply(p, s, x, train=True, key=key)
  try:
    outputs, new_state = jax.eval_shape(apply, params, model_state, x)
  except (TypeError, ValueError) as error:
    raise ValueError(
      f"model must accept the dataset's examples, x {tuple(x.shape)} {x.dtype}, in training "
      f"mode; model.apply raised: {_first_line(error)}"
    ) from error
  one_array = isinstance(outputs, jax.ShapeDtypeStruct)
  if per_example in (cross_entropy, mse) and not one_array:
    raise ValueError(
      f"loss {per_example.__name__!r} needs the model to return one array; got "
      f"{_shaped(outputs)} (return the outputs alone, or pass a callable loss that takes them)."
    )
  if per_example is cross_entropy and num_classes and outputs.shape[-1:] < (num_classes,):
    # Fewer logits than classes is no error to JAX: a missing class's logit reads as NaN.
    raise ValueError(
      f"loss 'cross_entropy' needs a logit for each of the {num_classes} classes on the model's "
      f"last axis; got outputs {outputs.shape} for targets {y.shape}."
    )
  # The metrics are tried too (accuracy's argmax among them): a metric that cannot take the
  # outputs failed only once a run was traced, in a message that named no metric.
  checked = {"loss": per_example, **{f"metric {k!r}": f for k, f in metrics.items()}}
  for what, function in checked.items():
    try:
      values = jax.eval_shape(function, outputs, y)
    except (TypeError, ValueError, AttributeError) as error:
      # (n, 1) labels, a column from a CSV or a DataFrame: the take-along-axis error says nothing.
      column = per_example is cross_entropy and what == "loss" and y.ndim > 1 and y.shape[-1] == 1
      hint = " (flatten the labels to shape (n,), one class per example)" if column else ""
      raise ValueError(
        f"{what} must take the model's outputs {_shaped(outputs)} and the targets "
        f"{y.shape} {y.dtype}; it raised: {_first_line(error)}{hint}"
      ) from error
    if what == "loss" and getattr(values, "shape", None) != (x.shape[0],):
      raise ValueError(
        f"loss must return one value per example, shape ({x.shape[0]},) for a batch of "
        f"{x.shape[0]}; got shape {getattr(values, 'shape', _shaped(values))} from outputs "
        f"{_shaped(outputs)} and targets {y.shape}."
      )
  shapes = lambda tree: jax.tree.map(lambda a: (a.shape, a.dtype), tree)
  if jax.tree.structure(new_state) != jax.tree.structure(model_state) or shapes(
    new_state
  ) != shapes(model_state):
    raise ValueError(
      "model.apply(train=True) must return model state shaped like init's, since lrlab carries "
      f"it from step to step; init gave {shapes(model_state)}, apply gave {shapes(new_state)}."
    )


def from_nnx(
  make_model: Callable[[nnx.Rngs], nnx.Module],
  dataset: Dataset | StreamedDataset,
  *,
  loss: str | PerExample,
  metrics: Mapping[str, PerExample] | None = None,
  name: str,
) -> Task:
  """A :class:`Task` from a Flax NNX module: BatchNorm, Dropout, LayerNorm, your own layers.

  The module is split once into graph definition and state
  (:func:`lrlab.models.functional`): parameters go to the optimizer; BatchNorm
  statistics and any other ``nnx.Variable`` are the model state, updated in
  training mode and used (never the batch's statistics) in evaluation mode, as
  the module's own ``train()`` / ``eval()`` do; Dropout draws from a key
  derived from the run's key, the step and the seed, so the same key gives the
  same masks, shared by every member of a seed in a sweep.

  Args:
    make_model: ``rngs -> nnx.Module``, called as ``make_model(nnx.Rngs(key))`` (or with
      ``rngs=`` when that argument is keyword-only, as in NNX's own layers).
    dataset: a :class:`lrlab.data.Dataset` or :class:`lrlab.data.StreamedDataset`.
    loss: ``"cross_entropy"``, ``"mse"`` or a callable ``(outputs, targets) -> (B,)``.
    metrics: more per-example metrics by name (accuracy is added for classification).
    name: the task's name.

  Returns:
    A :class:`Task`; see :func:`from_model`.

  Example:
    >>> dataset = lrlab.data.digits()
    >>> task = lrlab.tasks.from_nnx(lambda rngs: lrlab.models.MLP(64, (32,), 10, rngs=rngs),
    ...                             dataset, loss="cross_entropy", name="digits-small")
    >>> history = lrlab.train.train(task, optax.adam(1e-2), steps=200, batch_size=64,
    ...                             key=jax.random.key(0), eval_every=100)
    >>> bool(history.val_accuracy[-1] > 0.9)
    True
  """
  return from_model(models.functional(make_model), dataset, loss=loss, metrics=metrics, name=name)
