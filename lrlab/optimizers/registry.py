"""The optimizers by name: :func:`names` lists them, :func:`get` builds one."""

from collections.abc import Callable
from typing import Any

import optax

from lrlab import _checks
from lrlab.optimizers.adam_family import adam, adamax, adamw, nadam, radam
from lrlab.optimizers.adaptive import adadelta, adagrad, rmsprop
from lrlab.optimizers.gradient_descent import sgd
from lrlab.optimizers.lr_free import dadapt_adamw, dadapt_sgd, dog, prodigy, sps
from lrlab.optimizers.schedule_free import schedule_free_adamw, schedule_free_sgd

_REGISTRY: dict[str, Callable[..., optax.GradientTransformationExtraArgs]] = {
  "adadelta": adadelta,
  "adagrad": adagrad,
  "adam": adam,
  "adamax": adamax,
  "adamw": adamw,
  "dadapt_adamw": dadapt_adamw,
  "dadapt_sgd": dadapt_sgd,
  "dog": dog,
  "nadam": nadam,
  "prodigy": prodigy,
  "radam": radam,
  "rmsprop": rmsprop,
  "schedule_free_adamw": schedule_free_adamw,
  "schedule_free_sgd": schedule_free_sgd,
  "sgd": sgd,
  "sps": sps,
}


def names() -> tuple[str, ...]:
  """Return the names :func:`get` knows, sorted.

  Example:
    >>> from lrlab import optimizers
    >>> "adamw" in optimizers.names()
    True
  """
  return tuple(sorted(_REGISTRY))


def get(name: str, **kwargs: Any) -> optax.GradientTransformationExtraArgs:
  """Build the optimizer called ``name`` with keyword arguments ``kwargs``.

  Args:
    name: one of :func:`names`.
    **kwargs: the optimizer's arguments, e.g. ``learning_rate=0.1``.

  Returns:
    The optimizer, an ``optax.GradientTransformationExtraArgs``.

  Raises:
    ValueError: for an unknown name (the message lists the known ones), or
      from the optimizer's own checks.

  Example:
    >>> from lrlab import optimizers
    >>> tx = optimizers.get("sgd", learning_rate=0.1, momentum=0.9)
  """
  _checks.check_choice("name", name, names())
  return _REGISTRY[name](**kwargs)
