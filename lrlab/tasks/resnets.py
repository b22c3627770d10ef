"""Residual networks with BatchNorm on the digits images (2-D) and MNIST-1D signals (1-D).

Both are :class:`lrlab.models.resnet.ResNet` built through the model-state path
(:func:`lrlab.tasks.from_model`): BatchNorm's running statistics are carried
from step to step as model state and used in evaluation. They are the
normalised, residual counterparts of ``digits-cnn`` and ``mnist1d-cnn`` on the
same data.
"""

import functools
from collections.abc import Callable, Sequence

from lrlab import data
from lrlab.data.benchmarks import DIGITS_IMAGE_SHAPE, MNIST1D_LENGTH
from lrlab.data.dataset import Dataset
from lrlab.models.functional import functional
from lrlab.models.resnet import ResNet, resnet_lr_multipliers
from lrlab.tasks.build import from_model
from lrlab.tasks.task import Task


def _task(
  name: str,
  load: Callable[[], Dataset],
  shape: tuple[int, ...],
  *,
  parametrization: str,
  base_width: int | Sequence[int] | None,
  **options,
) -> Task:
  """The ResNet task ``name``: ``ResNet(shape, 10, **options)`` on ``load()``, cross-entropy.

  The model is checked (built abstractly) before ``load`` makes the data, so a bad size is
  refused before any data are generated.
  """
  model = functional(
    lambda rngs: ResNet(
      shape, 10, parametrization=parametrization, base_width=base_width, rngs=rngs, **options
    )
  )
  layout = {k: options[k] for k in ("channels", "blocks", "kernel")}
  rates = functools.partial(
    resnet_lr_multipliers,
    shape,
    10,
    parametrization=parametrization,
    base_width=base_width,
    **layout,
  )
  return from_model(model, load(), loss="cross_entropy", name=name, lr_multipliers_fn=rates)


def _base_width(default: tuple[int, ...], channels, parametrization: str, base_width):
  """``base_width`` as given; under muP without one, the default model's channels ``default``,
  refused on one line for a model with another number of stages (they would not fit it)."""
  if base_width is not None or parametrization != "mup":
    return base_width
  if isinstance(channels, Sequence) and len(channels) != len(default):
    raise ValueError(
      f"base_width must be given with parametrization='mup' and channels={channels!r}: its "
      f"default, the default model's channels {default}, has {len(default)} stages."
    )
  return default


def digits_resnet(
  *,
  channels: Sequence[int] = (8, 16),
  blocks: int = 1,
  kernel: int = 3,
  momentum: float = 0.9,
  activation: str = "relu",
  parametrization: str = "sp",
  base_width: int | Sequence[int] | None = None,
  standardize: bool = True,
  val_fraction: float = 0.1,
  test_fraction: float = 0.2,
  seed: int = 0,
) -> Task:
  """A 2-D ResNet with BatchNorm on the 8x8 digits (:func:`lrlab.data.digits`).

  Stem conv 3x3/8, a residual block of 8 channels at 8x8, one of 16 at 4x4
  (stride 2, projected shortcut), global average pooling, a linear head:
  about 5k parameters, and about 1.6 times the multiply-adds of
  ``digits-cnn`` per example. Cross-entropy loss.

  Options (defaults in brackets): model ``channels`` [(8, 16)], ``blocks``
  [1] per stage, ``kernel`` [3], ``momentum`` [0.9] (BatchNorm, Flax's
  convention), ``activation`` ['relu']; data ``standardize`` [True],
  ``val_fraction`` [0.1], ``test_fraction`` [0.2], ``seed`` [0]; and
  ``parametrization`` ['sp'] or 'mup' (Yang et al. 2022; see
  :class:`lrlab.models.resnet.ResNet`) and ``base_width`` [(8, 16)], the channels
  at which muP equals SP; ``task.lr_multipliers("adam")`` or ``("sgd")`` gives
  the per-tensor rates (:func:`lrlab.models.resnet.resnet_lr_multipliers`).

  Returns:
    A :class:`lrlab.tasks.Task` named ``"digits-resnet"`` whose model state holds
    the BatchNorm statistics.
  """
  load = lambda: data.digits(
    standardize=standardize, val_fraction=val_fraction, test_fraction=test_fraction, seed=seed
  )
  return _task(
    "digits-resnet",
    load,
    DIGITS_IMAGE_SHAPE,
    channels=channels,
    blocks=blocks,
    kernel=kernel,
    momentum=momentum,
    activation=activation,
    parametrization=parametrization,
    base_width=_base_width((8, 16), channels, parametrization, base_width),
  )


def mnist1d_resnet(
  *,
  channels: Sequence[int] = (16, 32),
  blocks: int = 1,
  kernel: int = 3,
  momentum: float = 0.9,
  activation: str = "relu",
  parametrization: str = "sp",
  base_width: int | Sequence[int] | None = None,
  num_samples: int = 5000,
  standardize: bool = True,
  val_fraction: float = 0.1,
  seed: int = 42,
) -> Task:
  """A 1-D ResNet with BatchNorm on MNIST-1D signals of length 40 (:func:`lrlab.data.mnist1d`).

  Stem conv 3/16, a residual block of 16 channels at length 40, one of 32 at
  length 20 (stride 2, projected shortcut), global average pooling, a linear
  head: about 7k parameters. Cross-entropy loss.

  Options (defaults in brackets): model ``channels`` [(16, 32)], ``blocks``
  [1] per stage, ``kernel`` [3], ``momentum`` [0.9] (BatchNorm, Flax's
  convention), ``activation`` ['relu']; data ``num_samples`` [5000],
  ``standardize`` [True], ``val_fraction`` [0.1], ``seed`` [42]; and
  ``parametrization`` ['sp'] or 'mup' (Yang et al. 2022; see
  :class:`lrlab.models.resnet.ResNet`) and ``base_width`` [(16, 32)], the channels
  at which muP equals SP; ``task.lr_multipliers("adam")`` or ``("sgd")`` gives
  the per-tensor rates (:func:`lrlab.models.resnet.resnet_lr_multipliers`).

  Returns:
    A :class:`lrlab.tasks.Task` named ``"mnist1d-resnet"`` whose model state holds
    the BatchNorm statistics.
  """
  load = lambda: data.mnist1d(
    num_samples, standardize=standardize, val_fraction=val_fraction, seed=seed
  )
  return _task(
    "mnist1d-resnet",
    load,
    (MNIST1D_LENGTH,),
    channels=channels,
    blocks=blocks,
    kernel=kernel,
    momentum=momentum,
    activation=activation,
    parametrization=parametrization,
    base_width=_base_width((16, 32), channels, parametrization, base_width),
  )


BUILDERS: dict[str, Callable[..., Task]] = {
  "digits-resnet": digits_resnet,
  "mnist1d-resnet": mnist1d_resnet,
}
