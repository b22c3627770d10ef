"""Learning-rate-free optimizers: DoG, Prodigy, D-Adaptation (SGD, AdamW) and SPS.

Each is a short chain: the coupled penalties (``weight_decay`` where the method
couples it, and lrlab's ``l1``) followed by one rule of :mod:`lrlab.transforms`
that owns its step size and ends the chain. There is no trailing
:func:`~lrlab.transforms.scale_by_learning_rate`: ``learning_rate`` is the
rule's multiplier (1 in the papers, whose defaults these are; a number, an
array or a schedule), so the chain's state holds exactly one ``learning_rate``
field, the step size actually applied, and
:func:`lrlab.train.applied_learning_rate` reports it. Every numeric argument may
be a traced array.
"""

import jax
import jax.numpy as jnp
import optax
from jax.typing import ArrayLike

from lrlab._numerics import default_float_dtype
from lrlab.optimizers._chain import coupled
from lrlab.transforms.dadaptation import scale_by_dadapt_adam, scale_by_dadapt_sgd
from lrlab.transforms.dog import scale_by_dog
from lrlab.transforms.learning_rate import LearningRate
from lrlab.transforms.polyak import scale_by_polyak
from lrlab.transforms.prodigy import scale_by_prodigy


def dog(
  learning_rate: LearningRate = 1.0,
  *,
  reps_rel: ArrayLike = 1e-6,
  eps: ArrayLike = 1e-8,
  d0: ArrayLike | None = None,
  averaging: ArrayLike | None = None,
  weight_decay: ArrayLike = 0.0,
  l1: ArrayLike = 0.0,
) -> optax.GradientTransformationExtraArgs:
  r"""DoG, "Distance over Gradients": SGD with :math:`\eta_t = \bar r_t / \sqrt{G_t}`.

  The chain is ``add_l2 -> add_l1 -> scale_by_dog``; see
  :func:`lrlab.transforms.scale_by_dog` for the rule and how it differs from
  ``optax.contrib.dog``. ``weight_decay`` is coupled (added to the gradient),
  as in the authors' implementation. Needs ``params`` at every update and the
  real starting parameters at ``init``. Defaults are the authors' ``DoG``'s;
  ``averaging=8.0`` adds the iterate averaging they recommend (evaluate at
  :func:`lrlab.transforms.eval_params`; the training core does).

  Args:
    learning_rate: multiplier of the DoG step (default 1, the paper's).
    reps_rel: :math:`r_\epsilon / (1 + \lVert x_0 \rVert)` (paper: 1e-6).
    eps: :math:`\epsilon \ge 0` added to the sum of squared gradient norms.
    d0: :math:`r_\epsilon` itself (the initial distance estimate, as Prodigy's
      and D-Adaptation's ``d0``), overriding ``reps_rel``.
    averaging: :math:`\gamma` of the polynomial-decay iterate average, or
      ``None`` for none.
    weight_decay: coupled L2 weight :math:`\ge 0`.
    l1: coupled L1 weight :math:`\ge 0`.

  Returns:
    An ``optax.GradientTransformationExtraArgs``.

  Example:
    >>> from lrlab import optimizers
    >>> tx = optimizers.dog()

  References:
    Ivgi, Hinder and Carmon, `DoG is SGD's Best Friend: A Parameter-Free
    Dynamic Step Size Schedule <https://arxiv.org/abs/2302.12022>`_, 2023.
  """
  penalties = coupled(weight_decay, l1)
  return optax.chain(
    *penalties,
    scale_by_dog(
      learning_rate,
      reps_rel=reps_rel,
      eps=eps,
      d0=d0,
      averaging=averaging,
    ),
  )


def prodigy(
  learning_rate: LearningRate = 1.0,
  *,
  b1: ArrayLike = 0.9,
  b2: ArrayLike = 0.999,
  b3: ArrayLike | None = None,
  eps: ArrayLike = 1e-8,
  d0: ArrayLike = 1e-6,
  d_coef: ArrayLike = 1.0,
  growth_rate: ArrayLike = float("inf"),
  weight_decay: ArrayLike = 0.0,
  l1: ArrayLike = 0.0,
  bias_correction: bool = False,
  safeguard_warmup: bool = False,
) -> optax.GradientTransformationExtraArgs:
  r"""Prodigy: Adam with a learning-rate-free step size :math:`\gamma_k d_k`.

  The chain is ``add_l1 -> scale_by_prodigy``; ``weight_decay`` is decoupled
  (AdamW-style, scaled by the applied step :math:`\gamma_k d_k`, times Adam's
  bias correction with ``bias_correction=True``), as in the authors' and
  Optax's implementations. Defaults are the authors' ``Prodigy``'s, which
  recommend ``bias_correction=True`` and, with a warmup schedule,
  ``safeguard_warmup=True``. See :func:`lrlab.transforms.scale_by_prodigy` for
  the rule and how it differs from ``optax.contrib.prodigy``.

  Args:
    learning_rate: multiplier :math:`\gamma` (default 1, the paper's).
    b1: :math:`\beta_1 \in [0, 1)`.
    b2: :math:`\beta_2 \in [0, 1)`.
    b3: :math:`\beta_3 \in [0, 1)`, or ``None`` for :math:`\sqrt{\beta_2}`.
    eps: :math:`\epsilon \ge 0`.
    d0: initial estimate :math:`d_0 > 0`.
    d_coef: multiplier :math:`> 0` of the estimate.
    growth_rate: largest growth factor :math:`\ge 1` of :math:`d` per step.
    weight_decay: decoupled weight decay :math:`\ge 0`.
    l1: coupled L1 weight :math:`\ge 0`.
    bias_correction: static; Adam's bias correction in the step.
    safeguard_warmup: static; the rate left out of the estimate's denominator.

  Returns:
    An ``optax.GradientTransformationExtraArgs``.

  Example:
    >>> from lrlab import optimizers
    >>> tx = optimizers.prodigy(weight_decay=0.01)

  References:
    Mishchenko and Defazio, `Prodigy: An Expeditiously Adaptive
    Parameter-Free Learner <https://arxiv.org/abs/2306.06101>`_, 2023.
  """
  penalties = coupled(weight_decay, l1, decoupled=True)
  return optax.chain(
    *penalties,
    scale_by_prodigy(
      learning_rate,
      b1=b1,
      b2=b2,
      b3=b3,
      eps=eps,
      d0=d0,
      d_coef=d_coef,
      growth_rate=growth_rate,
      weight_decay=weight_decay,
      bias_correction=bias_correction,
      safeguard_warmup=safeguard_warmup,
    ),
  )


def dadapt_sgd(
  learning_rate: LearningRate = 1.0,
  *,
  momentum: ArrayLike = 0.0,
  d0: ArrayLike = 1e-6,
  growth_rate: ArrayLike = float("inf"),
  weight_decay: ArrayLike = 0.0,
  l1: ArrayLike = 0.0,
) -> optax.GradientTransformationExtraArgs:
  r"""SGD with D-Adaptation: step :math:`d_k \gamma_k / \lVert g_0 \rVert`, momentum by averaging.

  The chain is ``add_l1 -> scale_by_dadapt_sgd``; ``weight_decay`` is
  coupled, inside the rule, as in the authors' ``DAdaptSGD``, whose defaults
  these are (no momentum). See :func:`lrlab.transforms.scale_by_dadapt_sgd`.
  Optax has no counterpart.

  Args:
    learning_rate: multiplier :math:`\gamma` (default 1, the paper's).
    momentum: :math:`\beta \in [0, 1)` of the primal averaging (default 0).
    d0: initial estimate :math:`d_0 > 0`.
    growth_rate: largest growth factor :math:`\ge 1` of :math:`d` per step.
    weight_decay: coupled L2 weight :math:`\ge 0`.
    l1: coupled L1 weight :math:`\ge 0`.

  Returns:
    An ``optax.GradientTransformationExtraArgs``.

  Example:
    >>> from lrlab import optimizers
    >>> tx = optimizers.dadapt_sgd(momentum=0.9)

  References:
    Defazio and Mishchenko, `Learning-Rate-Free Learning by D-Adaptation
    <https://arxiv.org/abs/2301.07733>`_, ICML 2023.
  """
  penalties = coupled(weight_decay, l1, decoupled=True)  # the rule adds weight_decay
  rule = scale_by_dadapt_sgd(
    learning_rate, momentum=momentum, d0=d0, growth_rate=growth_rate, weight_decay=weight_decay
  )
  return optax.chain(*penalties, rule)


def dadapt_adamw(
  learning_rate: LearningRate = 1.0,
  *,
  b1: ArrayLike = 0.9,
  b2: ArrayLike = 0.999,
  eps: ArrayLike = 1e-8,
  d0: ArrayLike = 1e-6,
  growth_rate: ArrayLike = float("inf"),
  weight_decay: ArrayLike = 1e-2,
  l1: ArrayLike = 0.0,
  bias_correction: bool = False,
) -> optax.GradientTransformationExtraArgs:
  r"""Adam(W) with D-Adaptation: step :math:`d_k \gamma_k`, decoupled weight decay.

  The chain is ``add_l1 -> scale_by_dadapt_adam``. ``weight_decay`` is
  decoupled (AdamW-style, scaled by the applied step :math:`d_k \gamma_k`,
  times Adam's bias correction with ``bias_correction=True``), as in
  ``optax.contrib.dadapt_adamw``. Its default is :func:`~lrlab.optimizers.adamw`'s (PyTorch's
  ``AdamW``), 1e-2: every ``*adamw`` in lrlab decays the weights by default.
  The authors and Optax default to 0, the paper's Adam variant; pass
  ``weight_decay=0.0`` for it. The other defaults are the authors' ``DAdaptAdam``'s
  (no bias correction; Optax's has it: ``bias_correction=True``). See
  :func:`lrlab.transforms.scale_by_dadapt_adam` for the rule.

  Args:
    learning_rate: multiplier :math:`\gamma` (default 1, the paper's).
    b1: :math:`\beta_1 \in [0, 1)`.
    b2: :math:`\beta_2 \in [0, 1)`.
    eps: :math:`\epsilon \ge 0`.
    d0: initial estimate :math:`d_0 > 0`.
    growth_rate: largest growth factor :math:`\ge 1` of :math:`d` per step.
    weight_decay: decoupled weight decay :math:`\ge 0`.
    l1: coupled L1 weight :math:`\ge 0`.
    bias_correction: static; Adam's bias correction in the step.

  Returns:
    An ``optax.GradientTransformationExtraArgs``.

  Example:
    >>> from lrlab import optimizers
    >>> tx = optimizers.dadapt_adamw(weight_decay=0.0)

  References:
    Defazio and Mishchenko, `Learning-Rate-Free Learning by D-Adaptation
    <https://arxiv.org/abs/2301.07733>`_, ICML 2023.
  """
  penalties = coupled(weight_decay, l1, decoupled=True)
  return optax.chain(
    *penalties,
    scale_by_dadapt_adam(
      learning_rate,
      b1=b1,
      b2=b2,
      eps=eps,
      d0=d0,
      growth_rate=growth_rate,
      weight_decay=weight_decay,
      bias_correction=bias_correction,
    ),
  )


def _penalty_value(params: optax.Params, weight_decay: ArrayLike, l1: ArrayLike) -> jax.Array:
  """:math:`\\tfrac{\\lambda}{2} \\lVert p \\rVert^2 + \\lambda_1 \\lVert p \\rVert_1`."""
  dtype = default_float_dtype()  # as the rule's scalars: float64 under jax_enable_x64
  total = jnp.zeros((), dtype)
  for p in jax.tree.leaves(params):
    p = p.astype(dtype)
    total = total + 0.5 * weight_decay * jnp.sum(p * p) + l1 * jnp.sum(jnp.abs(p))
  return total


def sps(
  learning_rate: LearningRate = 1.0,
  *,
  c: ArrayLike = 0.5,
  max_step: ArrayLike = 1.0,
  f_star: ArrayLike | None = 0.0,
  margin: ArrayLike = 0.5,
  weight_decay: ArrayLike = 0.0,
  l1: ArrayLike = 0.0,
) -> optax.GradientTransformationExtraArgs:
  r"""SGD with the stochastic Polyak step size SPS_max; ``update`` needs ``value=loss``.

  The chain is ``add_l2 -> add_l1 -> scale_by_polyak``. The Polyak step
  needs the loss of the objective whose gradient it sees, so with a
  ``weight_decay`` or ``l1`` penalty the penalty's value
  :math:`\tfrac{\lambda}{2} \lVert p \rVert^2 + \lambda_1 \lVert p \rVert_1`
  is added to ``value`` before the step is computed. See
  :func:`lrlab.transforms.scale_by_polyak` for the rule, the estimate of
  :math:`f^\star` (``f_star=None``) and how it differs from
  ``optax.polyak_sgd``.

  Args:
    learning_rate: multiplier of the Polyak step (default 1, the paper's).
    c: :math:`c > 0` (paper's theory: 1/2).
    max_step: the bound :math:`\gamma_b > 0`.
    f_star: the known optimal value, or ``None`` to estimate it.
    margin: relative margin :math:`\delta \in (0, 1)` of the estimate.
    weight_decay: coupled L2 weight :math:`\ge 0`.
    l1: coupled L1 weight :math:`\ge 0`.

  Returns:
    An ``optax.GradientTransformationExtraArgs`` whose ``update`` takes the
    loss as the keyword ``value``.

  Example:
    >>> from lrlab import optimizers
    >>> tx = optimizers.sps(f_star=None)

  References:
    Loizou, Vaswani, Laradji and Lacoste-Julien, `Stochastic Polyak Step-size
    for SGD: An Adaptive Learning Rate for Fast Convergence
    <https://arxiv.org/abs/2002.10542>`_, AISTATS 2021.
  """
  penalties = coupled(weight_decay, l1)
  tx = optax.chain(
    *penalties, scale_by_polyak(learning_rate, c=c, max_step=max_step, f_star=f_star, margin=margin)
  )
  if not penalties:
    return tx

  def update_fn(updates, state, params=None, *, value, **extra_args):
    if params is None:
      raise ValueError("sps with a penalty needs the parameters: call update(..., params).")
    value = value + _penalty_value(params, weight_decay, l1)
    return tx.update(updates, state, params, value=value, **extra_args)

  return optax.GradientTransformationExtraArgs(tx.init, update_fn)
