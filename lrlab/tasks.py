"""Tasks: data, a model's pure ``init`` and ``loss``, and metrics; and a registry of named tasks.

A :class:`Task` is the contract between the problems and the training loop.
Everything on it is a pure function of explicit arrays, so a sweep can
``jax.vmap`` ``init`` over keys and ``loss`` / ``evaluate`` over parameters, and
``lax.scan`` over steps. The data live on the task as device arrays; a loop
draws minibatches on device with :meth:`Task.batch`.

Example:
  >>> task = lrlab.tasks.get("digits-mlp")
  >>> params = task.init(jax.random.key(0))
  >>> idx = jax.random.choice(jax.random.key(1), task.num_train, (128,))
  >>> loss, aux = task.loss(params, task.batch(idx))
  >>> sorted(task.evaluate(params, "val"))
  ['accuracy', 'loss']
"""

import dataclasses
import inspect
import math
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import optax
from jax import lax

from lrlab import _checks, data, models
from lrlab.data.benchmarks import DIGITS_IMAGE_SHAPE, MNIST1D_LENGTH
from lrlab.data.dataset import SPLITS, Dataset, Split

Params = Any
Batch = tuple[jax.Array, jax.Array]
LossFn = Callable[[Params, Batch], tuple[jax.Array, dict[str, jax.Array]]]


@dataclasses.dataclass(frozen=True, eq=False)
class Task:
  """A learning problem: data, parameter initialisation, loss and metrics, all pure.

  Contract:
    - ``init(key) -> params``: a pytree of float arrays (a dict for Flax models,
      one array for the quadratic); ``jax.vmap(task.init)(keys)`` gives a stack.
    - ``loss(params, batch) -> (loss, aux)``: ``batch = (x, y)`` with the
      example axis first (``x`` of shape ``(B, *x_train.shape[1:])``, ``y`` of
      shape ``(B, *y_train.shape[1:])``); ``loss`` is a scalar, the mean over
      the batch, and ``aux`` a dict of scalar batch means (``{'accuracy': ...}``
      for classification, ``{}`` otherwise).
    - :meth:`evaluate` ``(params, split) -> {'loss': ..., **aux}`` on a whole
      split; ``split`` is static (a Python string).

  The task is hashable by identity, so it can be a static argument of
  ``jax.jit``; it is not a pytree.

  Attributes:
    name: registry name, e.g. ``"digits-mlp"``.
    dataset: the host-side :class:`lrlab.data.Dataset`.
    init: ``key -> params``.
    loss: ``(params, (x, y)) -> (scalar loss, dict of scalar metrics)``.
    apply: ``(params, x) -> model output`` (logits, predictions), or ``None``
      for the quadratic.
    L: the largest Hessian eigenvalue of the full-batch training loss where it
      is known and constant (quadratic, linear regression), else ``None``.
      Gradient descent is stable iff ``lr < 2 / L``.
    mu: the smallest such eigenvalue, else ``None``; ``2 / (L + mu)`` is the
      fastest constant learning rate.
    optimum: the minimiser of the full-batch training loss where known, else ``None``.
  """

  name: str
  dataset: Dataset
  init: Callable[[jax.Array], Params]
  loss: LossFn
  apply: Callable[[Params, jax.Array], jax.Array] | None = None
  L: float | None = None
  mu: float | None = None
  optimum: Params | None = None
  _arrays: dict[str, Batch] = dataclasses.field(init=False, repr=False)

  def __post_init__(self):
    # Device copies made once, outside any trace, so closures see concrete arrays.
    arrays = {s: tuple(jnp.asarray(a) for a in self.dataset.split(s)) for s in SPLITS}
    object.__setattr__(self, "_arrays", arrays)

  def __repr__(self) -> str:
    return (
      f"Task(name={self.name!r}, sizes={self.dataset.sizes}, "
      f"num_classes={self.num_classes}, L={self.L}, mu={self.mu})"
    )

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
    return self._arrays["train"][0]

  @property
  def y_train(self) -> jax.Array:
    """Training targets on device, ``(num_train, ...)``."""
    return self._arrays["train"][1]

  def split(self, split: Split) -> Batch:
    """The whole of ``split`` (``'train'``, ``'val'``, ``'test'``) as a device batch ``(x, y)``."""
    _checks.check_choice("split", split, SPLITS)
    return self._arrays[split]

  def batch(self, indices: jax.Array, split: Split = "train") -> Batch:
    """The examples ``indices`` (an int array, may be traced) of ``split`` as a batch ``(x, y)``."""
    x, y = self.split(split)
    return x[indices], y[indices]

  def evaluate(
    self, params: Params, split: Split, *, batch_size: int | None = None
  ) -> dict[str, jax.Array]:
    """Loss and metrics of ``params`` on a whole split: ``{'loss': ..., **aux}``.

    Pure and jit/vmap-able with ``split`` static. With ``batch_size`` the split
    is processed in chunks of that many examples (``lax.map``, less memory)
    and the chunk means are combined weighted by size, which is exact because
    ``loss`` and ``aux`` are batch means.

    Args:
      params: the parameters, as returned by ``init``.
      split: ``'train'``, ``'val'`` or ``'test'``.
      batch_size: examples per chunk, a static int >= 1; ``None`` evaluates in one batch.

    Returns:
      A dict of scalar arrays: ``'loss'`` and, for classification, ``'accuracy'``.
    """
    x, y = self.split(split)
    n = x.shape[0]

    def metrics(batch: Batch) -> dict[str, jax.Array]:
      loss, aux = self.loss(params, batch)
      return {"loss": loss, **aux}

    if batch_size is None or batch_size >= n:
      return metrics((x, y))
    _checks.check_positive("batch_size", batch_size)
    size = int(batch_size)
    chunks, rest = divmod(n, size)
    head = (
      x[: chunks * size].reshape(chunks, size, *x.shape[1:]),
      y[: chunks * size].reshape(chunks, size, *y.shape[1:]),
    )
    totals = jax.tree.map(lambda m: m.sum(0) * size, lax.map(metrics, head))
    if rest:
      tail = metrics((x[chunks * size :], y[chunks * size :]))
      totals = jax.tree.map(lambda t, m: t + m * rest, totals, tail)
    return jax.tree.map(lambda t: t / n, totals)


def classification(dataset: Dataset, model: models.Functional, *, name: str) -> Task:
  """A classification task: softmax cross-entropy on the model's logits, plus accuracy.

  ``loss = mean_i -log softmax(f(x_i))[y_i]``; ``aux = {'accuracy': mean_i
  [argmax f(x_i) == y_i]}``. At a random initialisation with small logits the
  loss is near ``log(num_classes)``.

  Args:
    dataset: a classification :class:`lrlab.data.Dataset` (``num_classes`` set).
    model: pure ``(init, apply)`` from :func:`lrlab.models.functional`,
      mapping ``(B, features)`` to logits ``(B, num_classes)``.
    name: the task's name.

  Returns:
    A :class:`Task`.
  """
  if dataset.num_classes is None:
    raise ValueError(
      f"dataset must be a classification dataset; {dataset.name!r} has num_classes=None."
    )

  def loss(params: Params, batch: Batch) -> tuple[jax.Array, dict[str, jax.Array]]:
    x, y = batch
    logits = model.apply(params, x)
    value = optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()
    accuracy = (jnp.argmax(logits, axis=-1) == y).mean()
    return value, {"accuracy": accuracy}

  return Task(name=name, dataset=dataset, init=model.init, loss=loss, apply=model.apply)


def regression(
  dataset: Dataset,
  model: models.Functional,
  *,
  name: str,
  L: float | None = None,
  mu: float | None = None,
  optimum: Params | None = None,
) -> Task:
  """A regression task with loss ``1/2 mean_i ||f(x_i) - y_i||^2``.

  For a linear ``f`` without bias the Hessian is ``X^T X / n``.

  Args:
    dataset: a regression :class:`lrlab.data.Dataset`.
    model: pure ``(init, apply)``; its output is reshaped to the target's shape.
    name: the task's name.
    L, mu, optimum: known curvature and minimiser, if any.

  Returns:
    A :class:`Task` with ``aux = {}``.
  """

  def loss(params: Params, batch: Batch) -> tuple[jax.Array, dict[str, jax.Array]]:
    x, y = batch
    residual = model.apply(params, x).reshape(y.shape) - y
    return 0.5 * jnp.mean(jnp.sum(residual.reshape(y.shape[0], -1) ** 2, axis=-1)), {}

  return Task(
    name=name,
    dataset=dataset,
    init=model.init,
    loss=loss,
    apply=model.apply,
    L=L,
    mu=mu,
    optimum=optimum,
  )


def quadratic_task(problem: data.Quadratic, *, name: str = "quadratic") -> Task:
  """The task of minimising a :class:`lrlab.data.Quadratic`; ``params`` is ``x``, shape ``(dim,)``.

  With ``noise == 0`` the loss ignores the batch and is exactly ``1/2 (x - x*)^T
  H (x - x*)``, so a gradient step is ``x <- x - lr * H (x - x*)``. With noise
  a batch ``(t, _)`` of targets gives ``1/2 mean_i (x - t_i)^T H (x - t_i)``,
  whose gradient is ``H (x - x*)`` plus noise of covariance ``sigma^2 H / B``
  (exactly ``H (x - x*)`` on the whole, centred, training split).
  ``init(key)`` draws ``x_0 ~ N(0, I)``.

  Args:
    problem: from :func:`lrlab.data.quadratic`.
    name: the task's name.

  Returns:
    A :class:`Task` with ``L``, ``mu`` and ``optimum = x*``.
  """
  hessian = jnp.asarray(problem.hessian)
  x_star = jnp.asarray(problem.x_star)
  dim = x_star.shape[0]

  def init(key: jax.Array) -> jax.Array:
    return jax.random.normal(key, (dim,), jnp.float32)

  if problem.noise == 0:

    def loss(params: jax.Array, batch: Batch) -> tuple[jax.Array, dict[str, jax.Array]]:
      del batch  # every target is x*
      d = params - x_star
      return 0.5 * d @ (hessian @ d), {}

  else:

    def loss(params: jax.Array, batch: Batch) -> tuple[jax.Array, dict[str, jax.Array]]:
      d = params - batch[0]
      return 0.5 * jnp.mean(jnp.sum((d @ hessian) * d, axis=-1)), {}

  return Task(
    name=name,
    dataset=problem.dataset,
    init=init,
    loss=loss,
    L=problem.L,
    mu=problem.mu,
    optimum=x_star,
  )


# --- the registry -------------------------------------------------------------------------------


def _quadratic(
  *,
  dim: int = 100,
  min_curvature: float = 0.01,
  max_curvature: float = 1.0,
  eigenvalues: Any = None,
  noise: float = 0.0,
  num_train: int = 1000,
  num_eval: int = 250,
  seed: int = 0,
) -> Task:
  problem = data.quadratic(
    dim,
    eigenvalues=eigenvalues,
    min_curvature=min_curvature,
    max_curvature=max_curvature,
    noise=noise,
    num_train=num_train,
    num_eval=num_eval,
    seed=seed,
  )
  return quadratic_task(problem, name="quadratic")


def _linreg(
  *,
  n: int = 1000,
  d: int = 50,
  noise: float = 0.1,
  condition_number: float = 100.0,
  seed: int = 0,
) -> Task:
  problem = data.linear_regression(n, d, noise=noise, condition_number=condition_number, seed=seed)
  model = models.functional(lambda rngs: models.Linear(d, 1, use_bias=False, rngs=rngs))
  optimum = {"kernel": jnp.asarray(problem.w_star)[:, None]}
  return regression(
    problem.dataset, model, name="linreg", L=problem.L, mu=problem.mu, optimum=optimum
  )


def _digits_task(kind: str) -> Callable[..., Task]:
  def build(
    *,
    standardize: bool = True,
    val_fraction: float = 0.1,
    test_fraction: float = 0.2,
    seed: int = 0,
    **model_options: Any,
  ) -> Task:
    dataset = data.digits(
      standardize=standardize, val_fraction=val_fraction, test_fraction=test_fraction, seed=seed
    )
    return classification(
      dataset, _model(kind, DIGITS_IMAGE_SHAPE, **model_options), name=f"digits-{kind}"
    )

  return build


def _mnist1d_task(kind: str) -> Callable[..., Task]:
  def build(
    *,
    num_samples: int = 5000,
    standardize: bool = True,
    val_fraction: float = 0.1,
    seed: int = 42,
    **model_options: Any,
  ) -> Task:
    dataset = data.mnist1d(
      num_samples, standardize=standardize, val_fraction=val_fraction, seed=seed
    )
    model = _model(kind, (MNIST1D_LENGTH,), **model_options)
    return classification(dataset, model, name=f"mnist1d-{kind}")

  return build


_MODEL_OPTIONS = {
  "logreg": set(),
  "mlp": {"hidden", "activation"},
  "cnn": {"channels", "activation"},
}


def _model(kind: str, shape: tuple[int, ...], **options: Any) -> models.Functional:
  """Flax model ``kind`` for flat inputs of ``shape`` (a signal length or an image shape)."""
  unknown = sorted(set(options) - _MODEL_OPTIONS[kind])
  if unknown:
    raise ValueError(
      f"unknown option(s) {unknown} for a {kind!r} model; allowed: "
      f"{sorted(_MODEL_OPTIONS[kind])} and the dataset options."
    )
  features, classes = math.prod(shape), 10
  if kind == "logreg":
    return models.functional(lambda rngs: models.Linear(features, classes, rngs=rngs))
  if kind == "mlp":
    hidden = options.get("hidden", (100, 100) if len(shape) == 1 else (128, 128))
    activation = options.get("activation", "relu")
    return models.functional(
      lambda rngs: models.MLP(features, hidden, classes, activation=activation, rngs=rngs)
    )
  activation = options.get("activation", "relu")
  if len(shape) == 1:
    channels = options.get("channels", 25)
    return models.functional(
      lambda rngs: models.CNN1D(
        shape[0], classes, channels=channels, activation=activation, rngs=rngs
      )
    )
  channels = options.get("channels", (16, 32))
  return models.functional(
    lambda rngs: models.CNN2D(shape, classes, channels=channels, activation=activation, rngs=rngs)
  )


_REGISTRY: dict[str, Callable[..., Task]] = {
  "quadratic": _quadratic,
  "linreg": _linreg,
  **{f"digits-{kind}": _digits_task(kind) for kind in _MODEL_OPTIONS},
  **{f"mnist1d-{kind}": _mnist1d_task(kind) for kind in _MODEL_OPTIONS},
}


def names() -> tuple[str, ...]:
  """The names of all registered tasks, sorted."""
  return tuple(sorted(_REGISTRY))


def register(name: str, builder: Callable[..., Task], *, overwrite: bool = False) -> None:
  """Add a task builder ``builder(**options) -> Task`` under ``name``.

  Args:
    name: the new name.
    builder: called by :func:`get` with the caller's keyword overrides.
    overwrite: replace an existing task of that name.
  """
  if not callable(builder):
    raise ValueError(f"builder must be callable; got {builder!r}.")
  if name in _REGISTRY and not overwrite:
    raise ValueError(f"a task named {name!r} is already registered; pass overwrite=True.")
  _REGISTRY[name] = builder


def get(name: str, **overrides: Any) -> Task:
  """Build the registered task ``name``, with keyword ``overrides`` of its defaults.

  Tasks and their options (defaults in brackets):

  - ``quadratic``: ``dim`` [100], ``min_curvature`` [0.01], ``max_curvature``
    [1.0], ``eigenvalues`` [None], ``noise`` [0.0], ``num_train`` [1000],
    ``num_eval`` [250], ``seed`` [0]. See :func:`lrlab.data.quadratic`.
  - ``linreg``: ``n`` [1000], ``d`` [50], ``noise`` [0.1],
    ``condition_number`` [100.0], ``seed`` [0]; a bias-free linear model.
  - ``digits-{logreg,mlp,cnn}``: ``standardize`` [True], ``val_fraction``
    [0.1], ``test_fraction`` [0.2], ``seed`` [0]; MLP ``hidden`` [(128, 128)],
    CNN ``channels`` [(16, 32)], ``activation`` ['relu'].
  - ``mnist1d-{logreg,mlp,cnn}``: ``num_samples`` [5000], ``standardize``
    [True], ``val_fraction`` [0.1], ``seed`` [42]; MLP ``hidden`` [(100, 100)],
    CNN ``channels`` [25], ``activation`` ['relu'].

  Args:
    name: one of :func:`names`.
    **overrides: options of that task.

  Returns:
    A :class:`Task`.

  Raises:
    ValueError: for an unknown name (listing the known ones) or option.

  Example:
    >>> task = lrlab.tasks.get("quadratic", dim=10, max_curvature=10.0)
    >>> task.L
    10.0
  """
  if name not in _REGISTRY:
    raise ValueError(f"name must be one of {', '.join(repr(n) for n in names())}; got {name!r}.")
  builder = _REGISTRY[name]
  parameters = inspect.signature(builder).parameters
  if not any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values()):
    unknown = sorted(set(overrides) - set(parameters))
    if unknown:
      raise ValueError(
        f"unknown option(s) {unknown} for task {name!r}; allowed: {sorted(parameters)}."
      )
  return builder(**overrides)
