"""Adam and its variants: Adam (AMSGrad), AdamW, Adamax, NAdam, RAdam, as in ``torch.optim``."""

import optax
from jax.typing import ArrayLike

from lrlab import _checks
from lrlab.optimizers._chain import check_common, decayed, penalties
from lrlab.transforms.adam import scale_by_adam
from lrlab.transforms.adamax import scale_by_adamax
from lrlab.transforms.learning_rate import LearningRate, scale_by_learning_rate
from lrlab.transforms.nadam import scale_by_nadam
from lrlab.transforms.radam import scale_by_radam


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
  check_common(learning_rate, weight_decay, l1)
  decoupled = _checks.flag("decoupled_weight_decay", decoupled_weight_decay)
  before, after = decayed(weight_decay, l1, decoupled)
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
  check_common(learning_rate, weight_decay, l1)
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
  check_common(learning_rate, weight_decay, l1)
  decoupled = _checks.flag("decoupled_weight_decay", decoupled_weight_decay)
  before, after = decayed(weight_decay, l1, decoupled)
  return optax.chain(
    *before,
    scale_by_nadam(b1=b1, b2=b2, eps=eps, momentum_decay=momentum_decay),
    *after,
    scale_by_learning_rate(learning_rate),
  )


def radam(
  learning_rate: LearningRate = 1e-3,
  *,
  b1: ArrayLike = 0.9,
  b2: ArrayLike = 0.999,
  eps: ArrayLike = 1e-8,
  weight_decay: ArrayLike = 0.0,
  decoupled_weight_decay: bool = False,
  l1: ArrayLike = 0.0,
) -> optax.GradientTransformationExtraArgs:
  r"""RAdam, Adam with a rectified adaptive step in place of a warmup, as ``torch.optim.RAdam``.

  .. math::

    g_t \leftarrow g_t + \lambda p + \lambda_1 \operatorname{sign}(p), \qquad
    p \leftarrow p - \eta_t \begin{cases}
      \hat m_t\, r_t \sqrt{1 - \beta_2^t} / (\sqrt{v_t} + \epsilon) & \rho_t > 5, \\
      \hat m_t & \text{otherwise},
    \end{cases}

  with :math:`\hat m_t = m_t / (1 - \beta_1^t)`, Adam's moments, and the rectifier
  :math:`r_t` and the length :math:`\rho_t` of
  :func:`lrlab.transforms.scale_by_radam`: the first steps (five with
  :math:`\beta_2 = 0.999`) are SGD with momentum, then the adaptive step grows
  towards Adam's as :math:`v_t` averages more gradients. As in PyTorch's default
  (``decoupled_weight_decay=False``) the weight decay is coupled L2; with
  ``decoupled_weight_decay=True`` it is :math:`p \leftarrow p - \eta_t (u_t + \lambda p)`
  (PyTorch's ``p *= 1 - lr * weight_decay``). Defaults are PyTorch's and Optax's;
  ``optax.radam`` has no weight decay, rectifies from :math:`\rho_t \ge 5`, and adds
  :math:`\epsilon` after the bias correction of :math:`v_t`.

  Args:
    learning_rate: a rate ``>= 0``, an array, or a schedule ``step -> rate``.
    b1: :math:`\beta_1 \in [0, 1)`.
    b2: :math:`\beta_2 \in [0, 1)`.
    eps: :math:`\epsilon \ge 0`.
    weight_decay: L2 weight :math:`\lambda \ge 0`.
    decoupled_weight_decay: decay the weights AdamW's way.
    l1: coupled L1 weight :math:`\lambda_1 \ge 0` (not in PyTorch).

  Returns:
    An ``optax.GradientTransformationExtraArgs``.

  Example:
    >>> import jax.numpy as jnp
    >>> import optax
    >>> from lrlab import optimizers
    >>> tx = optimizers.radam(0.1)
    >>> params = {"w": jnp.array([1.0, -2.0])}
    >>> state = tx.init(params)
    >>> updates, state = tx.update({"w": params["w"]}, state, params)
    >>> print(optax.apply_updates(params, updates)["w"])
    [ 0.9 -1.8]

  References:
    Liu, Jiang, He, Chen, Liu, Gao and Han, `On the Variance of the Adaptive Learning Rate
    and Beyond <https://arxiv.org/abs/1908.03265>`_, 2020.
  """
  check_common(learning_rate, weight_decay, l1)
  decoupled = _checks.flag("decoupled_weight_decay", decoupled_weight_decay)
  before, after = decayed(weight_decay, l1, decoupled)
  return optax.chain(
    *before,
    scale_by_radam(b1=b1, b2=b2, eps=eps),
    *after,
    scale_by_learning_rate(learning_rate),
  )
