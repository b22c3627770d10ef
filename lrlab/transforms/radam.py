"""RAdam: Adam whose adaptive step is rectified while its second moment is still unreliable."""

from typing import NamedTuple

import jax
import jax.numpy as jnp
import optax
from jax.typing import ArrayLike

from lrlab import _checks
from lrlab.transforms import _tree
from lrlab.transforms.adam import _bias_correction

# The rectified step is taken once the approximated simple moving average is longer than 5
# (PyTorch's test, rho_t > 5); before that the step is the bias-corrected momentum.
_THRESHOLD = 5.0


class ScaleByRadamState(NamedTuple):
  """State of :func:`scale_by_radam`.

  Attributes:
    count: updates made so far (int32).
    mu: first moment (moving average of the gradients), per parameter.
    nu: second moment (moving average of the squared gradients).
  """

  count: jax.Array
  mu: optax.Updates
  nu: optax.Updates


# rho_t = 1 + (t - 1) sum_n c_n h_n(t u, u) for t u < 2 pi, with u = -log(b2),
# h_n(x, u) = (x^n - u^n) / (x - u) and c_n = -2 B_n / n! (B_n the Bernoulli numbers).
_SERIES = {
  1: 1.0,
  2: -1 / 6,
  4: 1 / 360,
  6: -1 / 15120,
  8: 1 / 604800,
  10: -1 / 23950080,
  12: 691 / 653837184000,
  14: -1 / 37362124800,
}
_SERIES_LIMIT = 0.5  # below it, the first term left out (n = 16) is under 4e-16 relative


def _length(b2: ArrayLike, count: jax.Array) -> tuple[ArrayLike, jax.Array]:
  r"""Return :math:`(\rho_\infty, \rho_t)`, the longest and the current length of the simple
  moving average that the exponential one approximates.

  :math:`\rho_t = \rho_\infty - 2 t \beta_2^t / (1 - \beta_2^t)` is the difference of two
  numbers near :math:`2 / (1 - \beta_2)`, which in float32 is off by up to 5e-4 at
  :math:`\beta_2 = 0.999` (where :math:`\rho_6 \approx 6`), and the rectifier by up to 4e-5
  relative (8e-3 and 4e-4 at :math:`\beta_2 = 0.9999`). While :math:`t u < 0.5`, with
  :math:`u = -\log \beta_2`, it is the series in ``_SERIES`` instead, which has no such
  cancellation: :math:`\rho_t = t - (t^2 - 1) u / 6 + \dots`. For a Python-float ``b2``,
  :math:`1 - \beta_2` is formed before float32, as in
  :func:`~lrlab.transforms.adam._bias_correction`, and :math:`\rho_\infty` stays a Python
  float (PyTorch's float64).
  """
  rho_inf = 2 / (1 - b2) - 1
  log_b2 = jnp.log1p(-(1 - b2))
  power = count * log_b2
  difference = rho_inf - 2 * count * jnp.exp(power) / _bias_correction(b2, count)
  u = -log_b2
  x = jnp.minimum(count * u, _SERIES_LIMIT)  # the other branch is taken beyond it
  h, total = jnp.zeros_like(x), jnp.zeros_like(x)
  for n in range(1, max(_SERIES) + 1):
    h = x * h + u ** (n - 1)
    total = total + _SERIES.get(n, 0.0) * h
  series = 1 + (count - 1) * total
  return rho_inf, jnp.where(count * u < _SERIES_LIMIT, series, difference)


def scale_by_radam(
  *,
  b1: ArrayLike = 0.9,
  b2: ArrayLike = 0.999,
  eps: ArrayLike = 1e-8,
) -> optax.GradientTransformation:
  r"""Rescale updates by RAdam's rectified moment estimates.

  PyTorch's ``torch.optim.RAdam`` arithmetic: Adam's moments
  :math:`m_t = \beta_1 m_{t-1} + (1 - \beta_1) g_t`,
  :math:`v_t = \beta_2 v_{t-1} + (1 - \beta_2) g_t^2` from :math:`m_0 = v_0 = 0`, the
  lengths of the simple moving average they approximate

  .. math::

    \rho_\infty = \frac{2}{1 - \beta_2} - 1, \qquad
    \rho_t = \rho_\infty - \frac{2 t \beta_2^t}{1 - \beta_2^t},

  and, with :math:`\hat m_t = m_t / (1 - \beta_1^t)`,

  .. math::

    u_t = \begin{cases}
      \hat m_t\, r_t \dfrac{\sqrt{1 - \beta_2^t}}{\sqrt{v_t} + \epsilon},
        \quad r_t = \sqrt{\dfrac{(\rho_t - 4)(\rho_t - 2)\rho_\infty}
          {(\rho_\infty - 4)(\rho_\infty - 2)\rho_t}}
        & \text{if } \rho_t > 5, \\
      \hat m_t & \text{otherwise (SGD with momentum).}
    \end{cases}

  :math:`\epsilon` is added to :math:`\sqrt{v_t}`, before the bias correction (Adam adds it
  after). With :math:`\beta_2 = 0.999` the first rectified step is :math:`t = 6`; for
  :math:`\beta_2 \le 2/3`, :math:`\rho_t < \rho_\infty \le 5` and no step is rectified. The
  branch is a ``jnp.where`` on the step, so every argument may be traced.

  Defaults are PyTorch's and Optax's. ``optax.scale_by_radam`` rectifies from
  :math:`\rho_t \ge 5` (its ``threshold``) rather than :math:`\rho_t > 5`, adds
  :math:`\epsilon` after the bias correction,
  :math:`\hat m_t r_t / (\sqrt{v_t / (1 - \beta_2^t)} + \epsilon)`, and forms
  :math:`1 - \beta_2^t` in float32 (see :func:`~lrlab.transforms.scale_by_adam`); with
  :math:`\epsilon = 0` and a :math:`\beta_2` exact in float32 the two rules agree.

  Args:
    b1: :math:`\beta_1`, the first-moment decay, in ``[0, 1)``.
    b2: :math:`\beta_2`, the second-moment decay, in ``[0, 1)``.
    eps: :math:`\epsilon \ge 0`, added to :math:`\sqrt{v_t}`.

  Returns:
    An ``optax.GradientTransformation`` with state :class:`ScaleByRadamState`.

  Example:
    The first steps are the bias-corrected momentum, :math:`\hat m_1 = g_1` (to float32's
    rounding of :math:`1 - \beta_1`):

    >>> import jax.numpy as jnp
    >>> from lrlab.transforms import scale_by_radam
    >>> tx = scale_by_radam()
    >>> state = tx.init({"w": jnp.zeros(2)})
    >>> updates, state = tx.update({"w": jnp.array([3.0, -0.5])}, state)
    >>> print(updates["w"])
    [ 3.  -0.5]

  References:
    Liu, Jiang, He, Chen, Liu, Gao and Han, `On the Variance of the Adaptive Learning Rate
    and Beyond <https://arxiv.org/abs/1908.03265>`_, 2020.

    PyTorch, `torch.optim.RAdam
    <https://pytorch.org/docs/stable/generated/torch.optim.RAdam.html>`_.
  """
  _checks.check_given(b1=b1, b2=b2, eps=eps)
  _checks.check_betas(b1=b1, b2=b2)
  _checks.check_nonnegative("eps", eps)

  def init_fn(params):
    zeros = lambda: _tree.zeros_like(params)
    return ScaleByRadamState(count=jnp.zeros([], jnp.int32), mu=zeros(), nu=zeros())

  def update_fn(updates, state, params=None):
    del params
    count = optax.safe_int32_increment(state.count)
    mu = jax.tree.map(lambda g, m: (m + (1 - b1) * (g - m)).astype(m.dtype), updates, state.mu)
    nu = jax.tree.map(lambda g, v: (b2 * v + (1 - b2) * (g * g)).astype(v.dtype), updates, state.nu)
    correction1 = _bias_correction(b1, count)
    correction2 = _bias_correction(b2, count)
    rho_inf, rho = _length(b2, count)
    rectified = rho > _THRESHOLD
    # Unrectified steps take the other branch; 6 keeps its ratio finite (rho_inf may be 4).
    rho, rho_inf = (jnp.where(rectified, x, _THRESHOLD + 1) for x in (rho, rho_inf))
    rectifier = jnp.sqrt((rho - 4) * (rho - 2) * rho_inf / ((rho_inf - 4) * (rho_inf - 2) * rho))
    scale = rectifier * jnp.sqrt(correction2)

    def direction(g, m, v):
      momentum = m / correction1
      adaptive = momentum * scale / (jnp.sqrt(v) + eps)
      return jnp.where(rectified, adaptive, momentum).astype(g.dtype)

    updates = jax.tree.map(direction, updates, mu, nu)
    return updates, ScaleByRadamState(count=count, mu=mu, nu=nu)

  return optax.GradientTransformation(init_fn, update_fn)
