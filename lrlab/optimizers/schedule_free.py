"""Schedule-free optimizers: SGD and AdamW without a decay schedule.

Like the learning-rate-free optimizers, each chain ends in the rule itself
(:func:`lrlab.transforms.scale_by_schedule_free`), whose state holds the
applied ``learning_rate``. Runs must be evaluated at
:func:`lrlab.transforms.eval_params`, not at ``params``.
"""

import optax
from jax.typing import ArrayLike

from lrlab.optimizers._chain import coupled
from lrlab.transforms.learning_rate import LearningRate
from lrlab.transforms.schedule_free import scale_by_schedule_free


def schedule_free_sgd(
  learning_rate: LearningRate = 1.0,
  *,
  b1: ArrayLike = 0.9,
  warmup_steps: ArrayLike = 0,
  weight_lr_power: ArrayLike = 2.0,
  weight_decay: ArrayLike = 0.0,
  l1: ArrayLike = 0.0,
) -> optax.GradientTransformationExtraArgs:
  r"""Schedule-free SGD: evaluate at :func:`lrlab.transforms.eval_params`, not at ``params``.

  The chain is ``add_l1 -> scale_by_schedule_free(base="sgd")``;
  ``weight_decay`` is applied at :math:`y` inside the rule (the paper's form,
  equal to a coupled L2 penalty for SGD). Defaults are the authors' (``lr=1``,
  ``b1=0.9``, no warmup, ``weight_lr_power=2``); the learning rate is a real
  one here, to be tuned as for SGD with momentum. See
  :func:`lrlab.transforms.scale_by_schedule_free` for the rule and how it
  differs from ``optax.contrib.schedule_free_sgd``.

  Args:
    learning_rate: :math:`\gamma \ge 0`, an array, or a schedule.
    b1: interpolation :math:`\beta \in [0, 1)`.
    warmup_steps: linear warmup length :math:`\ge 0`.
    weight_lr_power: power :math:`p \ge 0` of the averaging weights.
    weight_decay: weight decay :math:`\ge 0`, taken at :math:`y`.
    l1: coupled L1 weight :math:`\ge 0`.

  Returns:
    An ``optax.GradientTransformationExtraArgs``.

  Example:
    >>> from lrlab import optimizers
    >>> tx = optimizers.schedule_free_sgd(0.1, warmup_steps=100)

  References:
    Defazio et al., `The Road Less Scheduled
    <https://arxiv.org/abs/2405.15682>`_, 2024.
  """
  penalties = coupled(weight_decay, l1, decoupled=True)
  return optax.chain(
    *penalties,
    scale_by_schedule_free(
      learning_rate,
      base="sgd",
      b1=b1,
      warmup_steps=warmup_steps,
      weight_lr_power=weight_lr_power,
      weight_decay=weight_decay,
    ),
  )


def schedule_free_adamw(
  learning_rate: LearningRate = 0.0025,
  *,
  b1: ArrayLike = 0.9,
  b2: ArrayLike = 0.999,
  eps: ArrayLike = 1e-8,
  warmup_steps: ArrayLike = 0,
  weight_lr_power: ArrayLike = 2.0,
  weight_decay: ArrayLike = 1e-2,
  l1: ArrayLike = 0.0,
  bias_correction: str = "moment",
) -> optax.GradientTransformationExtraArgs:
  r"""Schedule-free AdamW: evaluate at :func:`lrlab.transforms.eval_params`, not at ``params``.

  The chain is ``add_l1 -> scale_by_schedule_free(base="adam")``, the
  authors' ``AdamWScheduleFree`` with decoupled ``weight_decay`` taken at :math:`y`.
  Defaults are the authors' ``AdamWScheduleFree``'s (``lr=0.0025``, ``b1=0.9``,
  ``b2=0.999``, ``eps=1e-8``, no warmup, ``weight_lr_power=2``, the second
  moment bias-corrected) and Optax's, except
  ``weight_decay``: 1e-2, :func:`~lrlab.optimizers.adamw`'s (PyTorch's ``AdamW``), as every
  ``*adamw`` in lrlab; the authors and Optax default to 0. See
  :func:`lrlab.transforms.scale_by_schedule_free` for how it differs from
  ``optax.contrib.schedule_free_adamw``.

  Args:
    learning_rate: :math:`\gamma \ge 0`, an array, or a schedule.
    b1: interpolation :math:`\beta \in [0, 1)`.
    b2: :math:`\beta_2 \in [0, 1)`.
    eps: :math:`\epsilon \ge 0`.
    warmup_steps: linear warmup length :math:`\ge 0`.
    weight_lr_power: power :math:`p \ge 0` of the averaging weights.
    weight_decay: decoupled weight decay :math:`\ge 0`, taken at :math:`y`.
    l1: coupled L1 weight :math:`\ge 0`.
    bias_correction: static; ``"moment"`` (the authors' ``AdamWScheduleFree``)
      or ``"rate"`` (the paper's, ``AdamWScheduleFreePaper``).

  Returns:
    An ``optax.GradientTransformationExtraArgs``.

  Example:
    >>> from lrlab import optimizers
    >>> tx = optimizers.schedule_free_adamw(1e-3, warmup_steps=1000, weight_decay=0.05)

  References:
    Defazio et al., `The Road Less Scheduled
    <https://arxiv.org/abs/2405.15682>`_, 2024.
  """
  penalties = coupled(weight_decay, l1, decoupled=True)
  return optax.chain(
    *penalties,
    scale_by_schedule_free(
      learning_rate,
      base="adam",
      b1=b1,
      b2=b2,
      eps=eps,
      warmup_steps=warmup_steps,
      weight_lr_power=weight_lr_power,
      weight_decay=weight_decay,
      bias_correction=bias_correction,
    ),
  )
