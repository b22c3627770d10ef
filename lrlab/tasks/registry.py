"""Named tasks: builders of :class:`lrlab.tasks.Task` by name, with keyword overrides of sizes."""

import functools
import inspect
import math
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp

from lrlab import _checks, data, models
from lrlab.data.benchmarks import DIGITS_IMAGE_SHAPE, MNIST1D_LENGTH
from lrlab.tasks import grokking, language, resnets, teacher
from lrlab.tasks.build import from_model, half_squared_error
from lrlab.tasks.task import Batch, Task


def quadratic_task(problem: data.Quadratic, *, name: str = "quadratic") -> Task:
  """The task of minimising a :class:`lrlab.data.Quadratic`; ``params`` is ``x``, shape ``(dim,)``.

  With ``noise == 0`` the loss ignores the batch and is exactly ``1/2 (x - x*)^T
  H (x - x*)``, so a gradient step is ``x <- x - lr * H (x - x*)``. With noise
  a batch ``(t, _)`` of targets gives ``1/2 mean_i (x - t_i)^T H (x - t_i)``,
  whose gradient is ``H (x - x*)`` plus noise of covariance ``sigma^2 H / B``
  (exactly ``H (x - x*)`` on the whole, centred, training split).
  ``init(key)`` draws ``x_0 ~ N(0, I)``; there is no model state. This is the
  pure-JAX contract written by hand (see :class:`lrlab.tasks.Task`).

  Args:
    problem: from :func:`lrlab.data.quadratic`.
    name: the task's name.

  Returns:
    A :class:`Task` with ``L``, ``mu`` and ``optimum = x*``.
  """
  hessian = jnp.asarray(problem.hessian)
  x_star = jnp.asarray(problem.x_star)
  dim = x_star.shape[0]

  def init(key: jax.Array) -> tuple[jax.Array, dict]:
    return jax.random.normal(key, (dim,), jnp.float32), {}

  if problem.noise == 0:

    def loss(params: jax.Array, model_state: dict, batch: Batch, key: Any):
      del batch, key  # every target is x*
      d = params - x_star
      return 0.5 * d @ (hessian @ d), (model_state, {})

  else:

    def loss(params: jax.Array, model_state: dict, batch: Batch, key: Any):
      d = params - batch[0]
      return 0.5 * jnp.mean(jnp.sum((d @ hessian) * d, axis=-1)), (model_state, {})

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
  return from_model(
    model,
    problem.dataset,
    loss=half_squared_error,
    name="linreg",
    L=problem.L,
    mu=problem.mu,
    optimum=optimum,
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
    model = _model(kind, DIGITS_IMAGE_SHAPE, **model_options)
    rates = _lr_multipliers_fn(kind, DIGITS_IMAGE_SHAPE, **model_options)
    dataset = data.digits(
      standardize=standardize, val_fraction=val_fraction, test_fraction=test_fraction, seed=seed
    )
    return from_model(
      model, dataset, loss="cross_entropy", name=f"digits-{kind}", lr_multipliers_fn=rates
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
    model = _model(kind, (MNIST1D_LENGTH,), **model_options)
    rates = _lr_multipliers_fn(kind, (MNIST1D_LENGTH,), **model_options)
    dataset = data.mnist1d(
      num_samples, standardize=standardize, val_fraction=val_fraction, seed=seed
    )
    return from_model(
      model, dataset, loss="cross_entropy", name=f"mnist1d-{kind}", lr_multipliers_fn=rates
    )

  return build


_MODEL_OPTIONS = {
  "logreg": set(),
  "mlp": {"hidden", "activation", "parametrization", "base_width"},
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
    hidden, parametrization, base_width = _mlp_widths(shape, **options)
    activation = options.get("activation", "relu")
    return models.functional(
      lambda rngs: models.MLP(
        features,
        hidden,
        classes,
        activation=activation,
        parametrization=parametrization,
        base_width=base_width,
        rngs=rngs,
      )
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


def _mlp_widths(
  shape: tuple[int, ...], **options: Any
) -> tuple[tuple[int, ...], str, int | tuple[int, ...]]:
  """An MLP's ``hidden``, ``parametrization`` and ``base_width`` (the default hidden width)."""
  default = (100, 100) if len(shape) == 1 else (128, 128)
  hidden = _checks.counts("hidden", options.get("hidden", default))
  parametrization = options.get("parametrization", "sp")
  _checks.check_choice("parametrization", parametrization, models.mup.PARAMETRIZATIONS)
  return hidden, parametrization, options.get("base_width", default[0])


def _lr_multipliers_fn(
  kind: str, shape: tuple[int, ...], **options: Any
) -> Callable[[str], Any] | None:
  """``optimizer -> per-layer learning-rate multipliers`` of an MLP task, ``None`` for the rest."""
  if kind != "mlp":
    return None
  hidden, parametrization, base_width = _mlp_widths(shape, **options)
  return functools.partial(
    models.mlp_lr_multipliers, hidden, parametrization=parametrization, base_width=base_width
  )


_REGISTRY: dict[str, Callable[..., Task]] = {
  "quadratic": _quadratic,
  "linreg": _linreg,
  **{f"digits-{kind}": _digits_task(kind) for kind in _MODEL_OPTIONS},
  **{f"mnist1d-{kind}": _mnist1d_task(kind) for kind in _MODEL_OPTIONS},
  **language.BUILDERS,
  **grokking.BUILDERS,
  **resnets.BUILDERS,
  **teacher.BUILDERS,
}


def names() -> tuple[str, ...]:
  """The names of all registered tasks, sorted."""
  return tuple(sorted(_REGISTRY))


def register(name: str, builder: Callable[..., Task], *, overwrite: bool = False) -> None:
  """Add a task builder ``builder(**options) -> Task`` under ``name``.

  Args:
    name: the new name, a non-empty string.
    builder: called by :func:`get` with the caller's keyword overrides.
    overwrite: replace an existing task of that name.
  """
  if not isinstance(name, str) or not name:  # another type breaks names()' sort for every caller
    raise ValueError(f"name must be a non-empty string; got {name!r}.")
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
  - ``digits-resnet``, ``mnist1d-resnet``: residual CNNs with BatchNorm on the
    same data (:func:`lrlab.tasks.resnets.digits_resnet`).
  - ``lm-transformer``: a decoder-only transformer on a synthetic language whose
    Bayes loss ``task.optimal_loss`` is exact (:func:`lrlab.tasks.language.lm_transformer`).
  - ``modular-addition``: ``(a + b) mod p`` from learned embeddings, the grokking
    benchmark (:func:`lrlab.tasks.grokking.modular_addition`).
  - ``teacher-student``: regression on a random teacher MLP's outputs, with
    ``optimal_loss`` the noise floor (:func:`lrlab.tasks.teacher.teacher_student`).

  Each builder's docstring lists its options and defaults.

  The MLP tasks also take ``parametrization`` ['sp'] or 'mup' (Yang et al. 2022,
  Tensor Programs V; see :class:`lrlab.models.MLP`) and ``base_width``, the
  hidden width at which muP equals SP [the default hidden width: 128 for
  digits, 100 for MNIST-1D]. Their :meth:`Task.lr_multipliers` give the
  per-layer rates: ``optax.chain(lrlab.optimizers.adam(lr),
  lrlab.transforms.scale_by_multipliers(task.lr_multipliers("adam")))`` is muP
  Adam; ``"sgd"`` gives MuSGD's. ``digits-resnet``, ``mnist1d-resnet`` and
  ``lm-transformer`` take ``parametrization`` and ``base_width`` too (the
  channels per stage, or the transformer's width [64]; see their builders) and
  give ``lr_multipliers`` the same way. Other tasks have no ``lr_multipliers``.

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
