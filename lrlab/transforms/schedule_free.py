"""Schedule-free SGD and AdamW: interpolated momentum and iterate averaging, no schedule."""

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax
from jax.typing import ArrayLike

from lrlab import _checks
from lrlab._numerics import default_float_dtype, safe_divide
from lrlab.transforms import _free
from lrlab.transforms.adam import _bias_correction
from lrlab.transforms.dog import ScaleByDogState
from lrlab.transforms.learning_rate import LearningRate

_BASES = ("sgd", "adam")
_CORRECTIONS = ("moment", "rate")


class ScaleByScheduleFreeState(NamedTuple):
  """State of :func:`scale_by_schedule_free`.

  Attributes:
    count: updates made so far (int32).
    learning_rate: :math:`\\gamma_t`, the step of :math:`z` taken by the
      latest update, warmup and (AdamW) bias correction included (before the
      first update, the one the first will take); log it.
    max_rate: :math:`\\max_{i \\le t} \\gamma_i`, the largest step so far.
    weight_sum: :math:`\\sum_{i \\le t} \\max_{j \\le i} \\gamma_j^p`, the
      averaging weights so far.
    z: the base sequence :math:`z_t` (SGD or Adam steps).
    x: the averaged sequence :math:`x_t`: evaluate the model here (see
      :func:`eval_params`).
    nu: Adam's second moment :math:`v_t` (``None`` for ``base="sgd"``).
  """

  count: jax.Array
  learning_rate: jax.Array
  max_rate: jax.Array
  weight_sum: jax.Array
  z: optax.Params
  x: optax.Params
  nu: optax.Updates | None


def scale_by_schedule_free(
  learning_rate: LearningRate,
  *,
  base: str = "sgd",
  b1: ArrayLike = 0.9,
  b2: ArrayLike = 0.999,
  eps: ArrayLike = 1e-8,
  warmup_steps: ArrayLike = 0,
  weight_lr_power: ArrayLike = 2.0,
  weight_decay: ArrayLike = 0.0,
  bias_correction: str = "moment",
) -> optax.GradientTransformation:
  r"""Schedule-free SGD or AdamW, as the authors' ``SGDScheduleFree`` and ``AdamWScheduleFree``.

  The parameters the training loop holds, and where gradients are taken, are
  :math:`y_t`; the state keeps :math:`z_t` and the average :math:`x_t`, all
  three equal at the start. With 1-based :math:`t`, :math:`\gamma` the
  ``learning_rate`` (a schedule is evaluated at the 0-based count
  :math:`t - 1`), :math:`\beta = ` ``b1`` and :math:`p = `
  ``weight_lr_power``:

  .. math::

    \gamma_t &= \gamma \cdot \min(1, t / T_{\text{warmup}})
      \cdot \bigl[\sqrt{1 - \beta_2^t}\bigr]_{\text{"rate"}}, \qquad
      v_t = \beta_2 v_{t-1} + (1 - \beta_2) g_t^2 \ \ (\text{AdamW}), \\
    z_{t+1} &= z_t - \gamma_t \bigl(u_t + \lambda y_t\bigr), \qquad
      u_t = g_t \ \ (\text{SGD}), \
      \frac{g_t}{\sqrt{v_t / (1 - \beta_2^t)} + \epsilon} \ \ (\text{"moment"}),
      \ \text{ or } \ \frac{g_t}{\sqrt{v_t} + \epsilon} \ \ (\text{"rate"}), \\
    c_{t+1} &= \frac{\hat\gamma_t^p}{\sum_{i=1}^t \hat\gamma_i^p}, \quad
      \hat\gamma_t = \max_{i \le t} \gamma_i, \qquad
    x_{t+1} = (1 - c_{t+1})\, x_t + c_{t+1} z_{t+1}, \\
    y_{t+1} &= (1 - \beta)\, z_{t+1} + \beta\, x_{t+1},

  and the transform returns :math:`y_{t+1} - y_t` (it ends a chain; ``params``
  are :math:`y_t` and are required). Evaluate the model at :math:`x`:
  :func:`eval_params` finds it in any optimizer state. This is the authors'
  code (``schedulefree`` package) step for step, which the tests reproduce to
  float64 rounding: the warmup is :math:`\min(1, t / T)` with 1-based
  :math:`t` (its first step :math:`\gamma / T`, never 0), the weights use the
  running maximum :math:`\hat\gamma_t` (``lr_max``), and AdamW's bias
  correction is ``bias_correction="moment"`` (``AdamWScheduleFree``, the
  package's default class: :math:`v` is corrected as in Adam) or ``"rate"``
  (``AdamWScheduleFreePaper``, the paper's Algorithm 1: :math:`\sqrt{1 -
  \beta_2^t}` folded into :math:`\gamma_t`, so it scales :math:`\epsilon`
  and enters the weights). The paper's :math:`c_{t+1}` uses :math:`\gamma_t`
  itself; the two agree while the rate never decreases. With a constant rate
  and no warmup :math:`c_{t+1} = 1 / t`, the uniform average of the paper's
  theory; ``weight_lr_power=2`` is the authors' weighting for warmup. A
  schedule ``learning_rate`` that starts at 0 makes the first steps 0 as the
  schedule asks; their weights are then 0 and :math:`x` stays at :math:`z`.
  :math:`\lambda` (``weight_decay``) is decoupled and taken at :math:`y`, as
  in the paper (for SGD it equals a coupled L2 penalty).

  Storing :math:`x` as well as :math:`z` costs one more parameter-sized
  buffer than Optax, which recovers :math:`x = (y - (1 - \beta) z) / \beta`;
  in exchange :math:`x` is exact, and ``b1`` may be 0 (then :math:`y = z`
  and :math:`x` is the weighted average of the SGD iterates), which Optax
  and the package cannot represent.

  Differences from Optax (``optax.contrib.schedule_free_sgd`` and
  ``schedule_free_adamw``): with ``warmup_steps`` Optax's linear warmup starts
  at 0 at count 0, so the first gradient moves nothing, and the averaging
  weights read the schedule one step ahead of the step actually taken
  (optax#1744). Without warmup, Optax's AdamW is ``"moment"``.

  Args:
    learning_rate: :math:`\gamma \ge 0`, an array, or a schedule
      ``step -> rate`` (best without decay: the averaging replaces it).
    base: ``"sgd"`` or ``"adam"`` (AdamW); static.
    b1: the interpolation :math:`\beta \in [0, 1)` between :math:`z` and
      :math:`x` (the paper's default 0.9).
    b2: Adam's :math:`\beta_2 \in [0, 1)`; ignored for ``"sgd"``.
    eps: Adam's :math:`\epsilon \ge 0`; ignored for ``"sgd"``.
    warmup_steps: :math:`T_{\text{warmup}} \ge 0`, the linear warmup's length.
    weight_lr_power: :math:`p \ge 0` in the averaging weights
      :math:`\hat\gamma_t^p`.
    weight_decay: :math:`\lambda \ge 0`, applied at :math:`y`.
    bias_correction: static, AdamW only: ``"moment"`` (default, the package's
      ``AdamWScheduleFree``) or ``"rate"`` (the paper's).

  Returns:
    An ``optax.GradientTransformation`` with state
    :class:`ScaleByScheduleFreeState`.

  Example:
    >>> import jax
    >>> import jax.numpy as jnp
    >>> import optax
    >>> from lrlab.transforms import eval_params, scale_by_schedule_free
    >>> loss = lambda y: 0.5 * jnp.sum((y - 1.0) ** 2)
    >>> tx = scale_by_schedule_free(0.5, warmup_steps=2)
    >>> y = jnp.zeros(2)
    >>> state = tx.init(y)
    >>> for _ in range(3):
    ...   updates, state = tx.update(jax.grad(loss)(y), state, y)
    ...   y = optax.apply_updates(y, updates)
    >>> print(y.round(4), eval_params(state, y).round(4))  # y; the evaluation point x
    [0.6982 0.6982] [0.6817 0.6817]

  References:
    Defazio, Yang, Mehta, Mishchenko, Khaled and Cutkosky, `The Road Less
    Scheduled <https://arxiv.org/abs/2405.15682>`_, 2024.
  """
  _free.check_learning_rate(learning_rate)
  _checks.check_choice("base", base, _BASES)
  _checks.check_given(
    b1=b1,
    b2=b2,
    eps=eps,
    warmup_steps=warmup_steps,
    weight_lr_power=weight_lr_power,
    weight_decay=weight_decay,
  )
  _checks.check_betas(b1=b1, b2=b2)
  _checks.check_nonnegative("eps", eps)
  _checks.check_nonnegative("warmup_steps", warmup_steps)
  _checks.check_nonnegative("weight_lr_power", weight_lr_power)
  _checks.check_nonnegative("weight_decay", weight_decay)
  _checks.check_choice("bias_correction", bias_correction, _CORRECTIONS)
  adam = base == "adam"
  in_rate = adam and bias_correction == "rate"

  def step_size(count: jax.Array) -> jax.Array:
    """:math:`\\gamma_t` for the 0-based ``count`` (``t = count + 1``)."""
    t = (count + 1).astype(default_float_dtype())
    warm = jnp.where(
      warmup_steps > 0, jnp.minimum(1, safe_divide(t, warmup_steps, fallback=0.0)), 1
    )
    gamma = _free.rate_at(learning_rate, count) * warm
    if in_rate:
      gamma = gamma * jnp.sqrt(_bias_correction(b2, t))
    return gamma.astype(default_float_dtype())

  def init_fn(params: optax.Params) -> ScaleByScheduleFreeState:
    dtype = default_float_dtype()
    return ScaleByScheduleFreeState(
      count=jnp.zeros([], jnp.int32),
      learning_rate=step_size(jnp.zeros([], jnp.int32)),
      max_rate=jnp.zeros([], dtype),
      weight_sum=jnp.zeros([], dtype),
      z=_free.strong_copy(params),
      x=_free.strong_copy(params),
      nu=_free.strong_copy(jax.tree.map(jnp.zeros_like, params)) if adam else None,
    )

  def update_fn(
    updates: optax.Updates, state: ScaleByScheduleFreeState, params: optax.Params | None = None
  ) -> tuple[optax.Updates, ScaleByScheduleFreeState]:
    _free.need_params("scale_by_schedule_free", params)
    gamma = step_size(state.count)
    cast = lambda value, like: value.astype(like.dtype)
    if adam:
      nu = jax.tree.map(lambda v, g: cast(b2 * v + (1 - b2) * g * g, v), state.nu, updates)
      correction = 1.0 if in_rate else _bias_correction(b2, (state.count + 1).astype(gamma.dtype))
      direction = jax.tree.map(lambda g, v: g / (jnp.sqrt(v / correction) + eps), updates, nu)
    else:
      nu, direction = None, updates
    z = jax.tree.map(
      lambda z, u, y: cast(z - gamma * (u + weight_decay * y), z), state.z, direction, params
    )
    max_rate = jnp.maximum(state.max_rate, gamma)  # the package's lr_max
    weight = jnp.power(max_rate, weight_lr_power)
    weight_sum = _free.keep_finite(state.weight_sum + weight, state.weight_sum)
    c = safe_divide(weight, weight_sum, fallback=0.0)
    x = jax.tree.map(lambda x, z: cast(x + c * (z - x), x), state.x, z)
    updates = jax.tree.map(
      lambda g, z, x, y: cast((1 - b1) * z + b1 * x - y, g), updates, z, x, params
    )
    new_state = ScaleByScheduleFreeState(
      count=optax.safe_int32_increment(state.count),
      learning_rate=gamma,
      max_rate=max_rate,
      weight_sum=weight_sum,
      z=z,
      x=x,
      nu=nu,
    )
    return updates, new_state

  return optax.GradientTransformation(init_fn, update_fn)


def _evaluation_point(opt_state: Any) -> optax.Params | None:
  """The first evaluation point in a nested optimizer state (schedule-free's x, DoG's average)."""
  if isinstance(opt_state, ScaleByScheduleFreeState):
    return opt_state.x
  if isinstance(opt_state, ScaleByDogState) and opt_state.average is not None:
    return opt_state.average
  if isinstance(opt_state, dict):
    children = opt_state.values()
  elif isinstance(opt_state, list | tuple):
    children = opt_state
  else:
    return None
  for child in children:
    found = _evaluation_point(child)
    if found is not None:
      return found
  return None


def eval_params(opt_state: Any, params: optax.Params) -> optax.Params:
  r"""Where to evaluate a model: schedule-free's :math:`x`, DoG's average, or ``params``.

  A schedule-free run takes its gradients at :math:`y` (the parameters the
  training loop holds) but its guarantees, and usually its best losses, are
  at the average :math:`x`. This finds the first
  :class:`ScaleByScheduleFreeState` anywhere in ``opt_state`` (a chain's
  tuple, a NamedTuple, a list or a dict, at any depth) and returns its
  :math:`x` in the dtypes of ``params``, or, failing that, the iterate
  average of a :class:`~lrlab.transforms.ScaleByDogState` with ``averaging``
  (the authors' recommended DoG); for any other optimizer it returns
  ``params`` unchanged, so a training loop can always call it. :math:`x` and
  :math:`y` are related by :math:`y = (1 - \beta) z + \beta x`; the state
  keeps :math:`x` exactly, so no division by :math:`\beta` is needed. Works
  on a vmapped (stacked) state and parameters alike.

  Args:
    opt_state: an optimizer state.
    params: the parameters the training loop holds (:math:`y`).

  Returns:
    A pytree like ``params``.

  Example:
    >>> import jax.numpy as jnp
    >>> from lrlab import optimizers
    >>> from lrlab.transforms import eval_params
    >>> params = {"w": jnp.ones(2)}
    >>> state = optimizers.sgd(0.1).init(params)
    >>> eval_params(state, params) is params  # not schedule-free
    True

  References:
    Defazio et al., `The Road Less Scheduled
    <https://arxiv.org/abs/2405.15682>`_, 2024.
  """
  point = _evaluation_point(opt_state)
  if point is None:
    return params
  return jax.tree.map(lambda x, p: jnp.asarray(x).astype(jnp.result_type(p)), point, params)
