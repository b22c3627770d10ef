"""Named optimizers: short chains of :mod:`lrlab.transforms` with PyTorch's defaults.

Each optimizer takes ``learning_rate`` as a number, an array or a schedule
(``step -> rate``) and follows the arithmetic of its ``torch.optim``
namesake, so a recipe ported from PyTorch gives the same trajectory to float32
precision. Every numeric argument may be a traced array, so a sweep can
``jax.vmap`` over learning rates, momenta, decays and weight decays; the
structural options (``nesterov``, ``amsgrad``, ``centered``,
``decoupled_weight_decay``) are static.

Every optimizer also takes ``l1`` (default 0), a coupled L1 penalty added to
the gradient beside PyTorch's ``weight_decay``; PyTorch has no such option.

A penalty or momentum given as the Python number 0 leaves its link out of the
chain (no state, no need for ``params``); given as an array, even a concrete
zero, the link stays, so all configurations of a sweep share one state
structure and an array 0 computes exactly what the missing link would.

The learning-rate-free and schedule-free optimizers (``dog``, ``prodigy``,
``dadapt_sgd``, ``dadapt_adamw``, ``sps``, ``schedule_free_sgd``,
``schedule_free_adamw``) live in :mod:`lrlab.optimizers_free` and are
re-exported and registered here; their ``learning_rate`` is a multiplier of
the step size the method chooses (default 1, as in the papers).

Look optimizers up by name with :func:`get` and list them with :func:`names`.
"""

from collections.abc import Callable
from typing import Any

import optax
from jax.typing import ArrayLike

from lrlab import _checks
from lrlab._chain import penalties
from lrlab._checks import is_zero
from lrlab.optimizers_free import (
  dadapt_adamw,
  dadapt_sgd,
  dog,
  prodigy,
  schedule_free_adamw,
  schedule_free_sgd,
  sps,
)
from lrlab.transforms.adadelta import scale_by_adadelta
from lrlab.transforms.adagrad import scale_by_adagrad
from lrlab.transforms.adam import scale_by_adam
from lrlab.transforms.adamax import scale_by_adamax
from lrlab.transforms.learning_rate import LearningRate, scale_by_learning_rate
from lrlab.transforms.momentum import trace
from lrlab.transforms.nadam import scale_by_nadam
from lrlab.transforms.regularization import add_decayed_weights
from lrlab.transforms.rms import scale_by_rms


def _check_common(learning_rate: LearningRate, weight_decay: ArrayLike, l1: ArrayLike) -> None:
  _checks.check_nonnegative("learning_rate", learning_rate)
  _checks.check_nonnegative("weight_decay", weight_decay)
  _checks.check_nonnegative("l1", l1)


def _momentum(
  momentum: ArrayLike, nesterov: bool, dampening: ArrayLike
) -> list[optax.GradientTransformation]:
  """The momentum buffer, left out only when momentum is a Python 0."""
  part = trace(momentum, nesterov=nesterov, dampening=dampening)  # validates
  return [] if is_zero(momentum) else [part]


def sgd(
  learning_rate: LearningRate = 1e-3,
  *,
  momentum: ArrayLike = 0.0,
  nesterov: bool = False,
  dampening: ArrayLike = 0.0,
  weight_decay: ArrayLike = 0.0,
  l1: ArrayLike = 0.0,
) -> optax.GradientTransformationExtraArgs:
  r"""Stochastic gradient descent with optional (Nesterov) momentum, as ``torch.optim.SGD``.

  With :math:`\lambda` the weight decay, :math:`\mu` the momentum and
  :math:`\tau` the dampening:

  .. math::

    g_t \leftarrow g_t + \lambda p + \lambda_1 \operatorname{sign}(p), \qquad
    b_t = \mu b_{t-1} + (1 - \tau) g_t \ (b_1 = g_t), \qquad
    p \leftarrow p - \eta_t \,(b_t \text{ or } g_t + \mu b_t).

  The chain is ``add_l2 -> add_l1 -> trace -> scale_by_learning_rate``;
  a link whose weight is a Python number 0 is left out, while an array (traced
  or not) always keeps it, so a sweep's configurations share one state
  structure; an array momentum of 0 then gives plain SGD, as PyTorch. Defaults are
  PyTorch's, including ``lr=1e-3``; ``optax.sgd`` has no default rate, no
  dampening and no weight decay, and its momentum buffer starts at 0, which
  is the same trajectory when ``dampening=0``.

  Args:
    learning_rate: a rate ``>= 0``, an array, or a schedule ``step -> rate``.
    momentum: :math:`\mu \in [0, 1)`.
    nesterov: Nesterov momentum; requires ``momentum > 0`` and
      ``dampening == 0``.
    dampening: :math:`\tau \in [0, 1]`.
    weight_decay: coupled L2 weight :math:`\lambda \ge 0`.
    l1: coupled L1 weight :math:`\lambda_1 \ge 0` (not in PyTorch).

  Returns:
    An ``optax.GradientTransformationExtraArgs``.

  Example:
    >>> import jax.numpy as jnp
    >>> import optax
    >>> from lrlab import optimizers
    >>> tx = optimizers.sgd(0.1, momentum=0.9, nesterov=True)
    >>> params = {"w": jnp.array([1.0, -2.0])}
    >>> state = tx.init(params)
    >>> updates, state = tx.update({"w": params["w"]}, state, params)
    >>> print(optax.apply_updates(params, updates)["w"])
    [ 0.81 -1.62]

  References:
    Sutskever et al., `On the importance of initialization and momentum in
    deep learning <https://proceedings.mlr.press/v28/sutskever13.html>`_, 2013.

    PyTorch, `torch.optim.SGD
    <https://pytorch.org/docs/stable/generated/torch.optim.SGD.html>`_.
  """
  _check_common(learning_rate, weight_decay, l1)
  return optax.chain(
    *penalties(weight_decay, l1),
    *_momentum(momentum, nesterov, dampening),
    scale_by_learning_rate(learning_rate),
  )


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
  _check_common(learning_rate, weight_decay, l1)
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
  _check_common(learning_rate, weight_decay, l1)
  return optax.chain(
    *penalties(weight_decay, l1),
    scale_by_rms(alpha=alpha, eps=eps, centered=centered),
    *_momentum(momentum, False, 0.0),
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
  _check_common(learning_rate, weight_decay, l1)
  return optax.chain(
    *penalties(weight_decay, l1),
    scale_by_adadelta(rho=rho, eps=eps),
    scale_by_learning_rate(learning_rate),
  )


def _decayed(
  weight_decay: ArrayLike, l1: ArrayLike, decoupled: bool
) -> tuple[list[optax.GradientTransformation], list[optax.GradientTransformation]]:
  """The penalties before the rule and the decoupled decay after it."""
  if not decoupled:
    return penalties(weight_decay, l1), []
  after = [] if is_zero(weight_decay) else [add_decayed_weights(weight_decay)]
  return penalties(0.0, l1), after


def adam(
  learning_rate: LearningRate = 1e-3,
  *,
  b1: ArrayLike = 0.9,
  b2: ArrayLike = 0.999,
  eps: ArrayLike = 1e-8,
  amsgrad: bool = False,
  weight_decay: ArrayLike = 0.0,
  decoupled_weight_decay: bool = False,
  l1: ArrayLike = 0.0,
) -> optax.GradientTransformationExtraArgs:
  r"""Adam (optionally AMSGrad), as ``torch.optim.Adam``.

  .. math::

    g_t \leftarrow g_t + \lambda p + \lambda_1 \operatorname{sign}(p), \qquad
    p \leftarrow p - \eta_t\, \frac{m_t / (1 - \beta_1^t)}
      {\sqrt{v_t} / \sqrt{1 - \beta_2^t} + \epsilon},

  with :math:`m_t, v_t` Adam's moments (see
  :func:`lrlab.transforms.scale_by_adam`). ``weight_decay`` is coupled L2,
  as PyTorch's Adam; with ``decoupled_weight_decay=True`` it is AdamW's
  :math:`p \leftarrow p - \eta_t (u_t + \lambda p)` instead (as PyTorch's
  flag of the same name). Defaults are PyTorch's and Optax's; ``optax.adam``
  has no weight decay, and ``optax.amsgrad`` takes the maximum of the
  bias-corrected second moment where PyTorch takes it of the raw one.

  Args:
    learning_rate: a rate ``>= 0``, an array, or a schedule ``step -> rate``.
    b1: :math:`\beta_1 \in [0, 1)`.
    b2: :math:`\beta_2 \in [0, 1)`.
    eps: :math:`\epsilon \ge 0`.
    amsgrad: use AMSGrad's running maximum of the second moment.
    weight_decay: L2 weight :math:`\lambda \ge 0`.
    decoupled_weight_decay: decay the weights AdamW's way.
    l1: coupled L1 weight :math:`\lambda_1 \ge 0` (not in PyTorch).

  Returns:
    An ``optax.GradientTransformationExtraArgs``.

  Example:
    >>> import jax.numpy as jnp
    >>> import optax
    >>> from lrlab import optimizers
    >>> tx = optimizers.adam(0.1)
    >>> params = {"w": jnp.array([1.0, -2.0])}
    >>> state = tx.init(params)
    >>> updates, state = tx.update({"w": params["w"]}, state, params)
    >>> print(optax.apply_updates(params, updates)["w"])
    [ 0.9 -1.9]

  References:
    Kingma and Ba, `Adam: A Method for Stochastic Optimization
    <https://arxiv.org/abs/1412.6980>`_, 2014.

    Reddi, Kale and Kumar, `On the Convergence of Adam and Beyond
    <https://arxiv.org/abs/1904.09237>`_, 2018.
  """
  _check_common(learning_rate, weight_decay, l1)
  before, after = _decayed(weight_decay, l1, decoupled_weight_decay)
  return optax.chain(
    *before,
    scale_by_adam(b1=b1, b2=b2, eps=eps, amsgrad=amsgrad),
    *after,
    scale_by_learning_rate(learning_rate),
  )


def adamw(
  learning_rate: LearningRate = 1e-3,
  *,
  b1: ArrayLike = 0.9,
  b2: ArrayLike = 0.999,
  eps: ArrayLike = 1e-8,
  amsgrad: bool = False,
  weight_decay: ArrayLike = 1e-2,
  l1: ArrayLike = 0.0,
) -> optax.GradientTransformationExtraArgs:
  r"""AdamW: Adam with decoupled weight decay, as ``torch.optim.AdamW``.

  .. math::

    p \leftarrow p - \eta_t \Bigl(\frac{m_t / (1 - \beta_1^t)}
      {\sqrt{v_t} / \sqrt{1 - \beta_2^t} + \epsilon} + \lambda p\Bigr),

  which is PyTorch's ``p *= 1 - lr * weight_decay`` followed by the Adam
  step. The chain is ``scale_by_adam -> add_decayed_weights ->
  scale_by_learning_rate``, so the decay follows the learning rate's
  schedule. Defaults are PyTorch's (``weight_decay=1e-2``); ``optax.adamw``
  has the same chain but ``weight_decay=1e-4``.

  Args:
    learning_rate: a rate ``>= 0``, an array, or a schedule ``step -> rate``.
    b1: :math:`\beta_1 \in [0, 1)`.
    b2: :math:`\beta_2 \in [0, 1)`.
    eps: :math:`\epsilon \ge 0`.
    amsgrad: use AMSGrad's running maximum of the second moment.
    weight_decay: decoupled decay :math:`\lambda \ge 0`.
    l1: coupled L1 weight :math:`\lambda_1 \ge 0` (not in PyTorch).

  Returns:
    An ``optax.GradientTransformationExtraArgs``.

  Example:
    >>> from lrlab import optimizers
    >>> tx = optimizers.adamw(3e-4, weight_decay=0.1)

  References:
    Loshchilov and Hutter, `Decoupled Weight Decay Regularization
    <https://arxiv.org/abs/1711.05101>`_, 2019.
  """
  return adam(
    learning_rate,
    b1=b1,
    b2=b2,
    eps=eps,
    amsgrad=amsgrad,
    weight_decay=weight_decay,
    decoupled_weight_decay=True,
    l1=l1,
  )


def adamax(
  learning_rate: LearningRate = 2e-3,
  *,
  b1: ArrayLike = 0.9,
  b2: ArrayLike = 0.999,
  eps: ArrayLike = 1e-8,
  weight_decay: ArrayLike = 0.0,
  l1: ArrayLike = 0.0,
) -> optax.GradientTransformationExtraArgs:
  r"""Adamax, as ``torch.optim.Adamax``.

  .. math::

    g_t \leftarrow g_t + \lambda p + \lambda_1 \operatorname{sign}(p), \qquad
    n_t = \max(\beta_2 n_{t-1}, |g_t| + \epsilon), \qquad
    p \leftarrow p - \eta_t\, \frac{m_t}{(1 - \beta_1^t)\, n_t}.

  Defaults are PyTorch's (``lr=2e-3``); ``optax.adamax`` is the same rule
  with no default rate and no weight decay.

  Args:
    learning_rate: a rate ``>= 0``, an array, or a schedule ``step -> rate``.
    b1: :math:`\beta_1 \in [0, 1)`.
    b2: :math:`\beta_2 \in [0, 1)`.
    eps: :math:`\epsilon \ge 0`.
    weight_decay: coupled L2 weight :math:`\lambda \ge 0`.
    l1: coupled L1 weight :math:`\lambda_1 \ge 0` (not in PyTorch).

  Returns:
    An ``optax.GradientTransformationExtraArgs``.

  Example:
    >>> from lrlab import optimizers
    >>> tx = optimizers.adamax()

  References:
    Kingma and Ba, `Adam: A Method for Stochastic Optimization
    <https://arxiv.org/abs/1412.6980>`_, 2014 (section 7.1).
  """
  _check_common(learning_rate, weight_decay, l1)
  return optax.chain(
    *penalties(weight_decay, l1),
    scale_by_adamax(b1=b1, b2=b2, eps=eps),
    scale_by_learning_rate(learning_rate),
  )


def nadam(
  learning_rate: LearningRate = 2e-3,
  *,
  b1: ArrayLike = 0.9,
  b2: ArrayLike = 0.999,
  eps: ArrayLike = 1e-8,
  momentum_decay: ArrayLike = 4e-3,
  weight_decay: ArrayLike = 0.0,
  decoupled_weight_decay: bool = False,
  l1: ArrayLike = 0.0,
) -> optax.GradientTransformationExtraArgs:
  r"""NAdam with Dozat's momentum schedule, as ``torch.optim.NAdam``.

  .. math::

    g_t \leftarrow g_t + \lambda p + \lambda_1 \operatorname{sign}(p), \qquad
    p \leftarrow p - \eta_t u_t,

  with :math:`u_t` from :func:`lrlab.transforms.scale_by_nadam`. As in
  PyTorch's default (``decoupled_weight_decay=False``) the weight decay is
  coupled L2; with ``decoupled_weight_decay=True`` it is
  :math:`p \leftarrow p - \eta_t (u_t + \lambda p)` (PyTorch's
  ``p *= 1 - lr * weight_decay``). Defaults are PyTorch's (``lr=2e-3``,
  ``momentum_decay=4e-3``); ``optax.nadam`` has no momentum schedule.

  Args:
    learning_rate: a rate ``>= 0``, an array, or a schedule ``step -> rate``.
    b1: :math:`\beta_1 \in [0, 1)`.
    b2: :math:`\beta_2 \in [0, 1)`.
    eps: :math:`\epsilon \ge 0`.
    momentum_decay: :math:`\psi \ge 0`.
    weight_decay: L2 weight :math:`\lambda \ge 0`.
    decoupled_weight_decay: decay the weights AdamW's way.
    l1: coupled L1 weight :math:`\lambda_1 \ge 0` (not in PyTorch).

  Returns:
    An ``optax.GradientTransformationExtraArgs``.

  Example:
    >>> from lrlab import optimizers
    >>> tx = optimizers.nadam()

  References:
    Dozat, `Incorporating Nesterov Momentum into Adam
    <https://openreview.net/forum?id=OM0jvwB8jIp57ZJjtNEZ>`_, 2016.
  """
  _check_common(learning_rate, weight_decay, l1)
  before, after = _decayed(weight_decay, l1, decoupled_weight_decay)
  return optax.chain(
    *before,
    scale_by_nadam(b1=b1, b2=b2, eps=eps, momentum_decay=momentum_decay),
    *after,
    scale_by_learning_rate(learning_rate),
  )


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


__all__ = [
  "adadelta",
  "adagrad",
  "adam",
  "adamax",
  "adamw",
  "dadapt_adamw",
  "dadapt_sgd",
  "dog",
  "get",
  "nadam",
  "names",
  "prodigy",
  "rmsprop",
  "schedule_free_adamw",
  "schedule_free_sgd",
  "sgd",
  "sps",
]
