"""Per-coordinate rates from squared-gradient statistics: Adagrad, RMSprop, Adadelta."""

import optax
from jax.typing import ArrayLike

from lrlab.optimizers._chain import check_common, momentum_buffer, penalties
from lrlab.transforms.adadelta import scale_by_adadelta
from lrlab.transforms.adagrad import scale_by_adagrad
from lrlab.transforms.learning_rate import LearningRate, scale_by_learning_rate
from lrlab.transforms.rms import scale_by_rms


def adagrad(
  learning_rate: LearningRate = 1e-2,
  *,
  eps: ArrayLike = 1e-10,
  initial_accumulator_value: ArrayLike = 0.0,
  weight_decay: ArrayLike = 0.0,
  l1: ArrayLike = 0.0,
) -> optax.GradientTransformationExtraArgs:
  r"""Adagrad, as ``torch.optim.Adagrad``.

  .. math::

    g_t \leftarrow g_t + \lambda p + \lambda_1 \operatorname{sign}(p), \qquad
    s_t = s_{t-1} + g_t^2, \qquad
    p \leftarrow p - \eta_t\, g_t / (\sqrt{s_t} + \epsilon).

  Defaults are PyTorch's (``lr=1e-2``, ``eps=1e-10``, accumulator from 0).
  PyTorch's ``lr_decay`` is the schedule ``lambda t: lr / (1 + t * lr_decay)``.
  ``optax.adagrad`` starts the sum at 0.1 and puts ``eps=1e-7`` inside the
  root. See :func:`lrlab.transforms.scale_by_adagrad`.

  Args:
    learning_rate: a rate ``>= 0``, an array, or a schedule ``step -> rate``.
    eps: :math:`\epsilon \ge 0`.
    initial_accumulator_value: :math:`s_0 \ge 0`.
    weight_decay: coupled L2 weight :math:`\lambda \ge 0`.
    l1: coupled L1 weight :math:`\lambda_1 \ge 0` (not in PyTorch).

  Returns:
    An ``optax.GradientTransformationExtraArgs``.

  Example:
    >>> from lrlab import optimizers
    >>> tx = optimizers.adagrad(0.1)

  References:
    Duchi, Hazan and Singer, `Adaptive Subgradient Methods for Online Learning
    and Stochastic Optimization <https://jmlr.org/papers/v12/duchi11a.html>`_,
    2011.
  """
  check_common(learning_rate, weight_decay, l1)
  return optax.chain(
    *penalties(weight_decay, l1),
    scale_by_adagrad(eps=eps, initial_accumulator_value=initial_accumulator_value),
    scale_by_learning_rate(learning_rate),
  )


def rmsprop(
  learning_rate: LearningRate = 1e-2,
  *,
  alpha: ArrayLike = 0.99,
  eps: ArrayLike = 1e-8,
  momentum: ArrayLike = 0.0,
  centered: bool = False,
  weight_decay: ArrayLike = 0.0,
  l1: ArrayLike = 0.0,
) -> optax.GradientTransformationExtraArgs:
  r"""RMSprop, optionally centered and with momentum, as ``torch.optim.RMSprop``.

  .. math::

    g_t \leftarrow g_t + \lambda p + \lambda_1 \operatorname{sign}(p), \qquad
    v_t = \alpha v_{t-1} + (1 - \alpha) g_t^2, \\
    b_t = \mu b_{t-1} + g_t / (\sqrt{v_t} + \epsilon) \ (b_0 = 0), \qquad
    p \leftarrow p - \eta_t b_t,

  with :math:`v_t - m_t^2` in the root when ``centered``. The chain is
  ``add_l2 -> add_l1 -> scale_by_rms -> trace -> scale_by_learning_rate``:
  PyTorch's zero-started buffer :math:`b_t = \mu b_{t-1} + u_t` equals
  :func:`~lrlab.transforms.trace`'s first-update-seeded buffer when there is
  no dampening. Defaults are PyTorch's (``lr=1e-2``, ``alpha=0.99``,
  ``eps=1e-8`` outside the root). ``optax.rmsprop`` defaults to
  ``decay=0.9`` with ``eps`` inside the root, and applies the learning rate
  *before* its momentum, which differs from PyTorch under a schedule.

  Args:
    learning_rate: a rate ``>= 0``, an array, or a schedule ``step -> rate``.
    alpha: :math:`\alpha \in [0, 1)` (Optax's ``decay``).
    eps: :math:`\epsilon \ge 0`.
    momentum: :math:`\mu \in [0, 1)`.
    centered: normalise by the estimated variance (Graves 2013).
    weight_decay: coupled L2 weight :math:`\lambda \ge 0`.
    l1: coupled L1 weight :math:`\lambda_1 \ge 0` (not in PyTorch).

  Returns:
    An ``optax.GradientTransformationExtraArgs``.

  Example:
    >>> from lrlab import optimizers
    >>> tx = optimizers.rmsprop(1e-3, momentum=0.9, centered=True)

  References:
    Hinton, `Neural Networks for Machine Learning, lecture 6e
    <https://www.cs.toronto.edu/~tijmen/csc321/slides/lecture_slides_lec6.pdf>`_,
    2012.

    Graves, `Generating Sequences With Recurrent Neural Networks
    <https://arxiv.org/abs/1308.0850>`_, 2013.
  """
  check_common(learning_rate, weight_decay, l1)
  return optax.chain(
    *penalties(weight_decay, l1),
    scale_by_rms(alpha=alpha, eps=eps, centered=centered),
    *momentum_buffer(momentum, False, 0.0),
    scale_by_learning_rate(learning_rate),
  )


def adadelta(
  learning_rate: LearningRate = 1.0,
  *,
  rho: ArrayLike = 0.9,
  eps: ArrayLike = 1e-6,
  weight_decay: ArrayLike = 0.0,
  l1: ArrayLike = 0.0,
) -> optax.GradientTransformationExtraArgs:
  r"""Adadelta, as ``torch.optim.Adadelta``.

  .. math::

    g_t \leftarrow g_t + \lambda p + \lambda_1 \operatorname{sign}(p), \qquad
    v_t = \rho v_{t-1} + (1 - \rho) g_t^2, \\
    u_t = \frac{\sqrt{a_{t-1} + \epsilon}}{\sqrt{v_t + \epsilon}} g_t, \qquad
    a_t = \rho a_{t-1} + (1 - \rho) u_t^2, \qquad
    p \leftarrow p - \eta_t u_t.

  Defaults are PyTorch's (``lr=1.0``, ``rho=0.9``, ``eps=1e-6``); Optax's
  ``adadelta`` is the same rule, with its learning rate optional.

  Args:
    learning_rate: a rate ``>= 0``, an array, or a schedule ``step -> rate``.
    rho: :math:`\rho \in [0, 1]`.
    eps: :math:`\epsilon \ge 0`.
    weight_decay: coupled L2 weight :math:`\lambda \ge 0`.
    l1: coupled L1 weight :math:`\lambda_1 \ge 0` (not in PyTorch).

  Returns:
    An ``optax.GradientTransformationExtraArgs``.

  Example:
    >>> from lrlab import optimizers
    >>> tx = optimizers.adadelta()

  References:
    Zeiler, `ADADELTA: An Adaptive Learning Rate Method
    <https://arxiv.org/abs/1212.5701>`_, 2012.
  """
  check_common(learning_rate, weight_decay, l1)
  return optax.chain(
    *penalties(weight_decay, l1),
    scale_by_adadelta(rho=rho, eps=eps),
    scale_by_learning_rate(learning_rate),
  )
