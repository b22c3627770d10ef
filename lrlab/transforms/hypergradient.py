"""Hypergradient descent: learn the learning rate online from successive gradients."""

from typing import NamedTuple

import jax
import jax.numpy as jnp
import optax
from jax.typing import ArrayLike

from lrlab import _checks
from lrlab._numerics import default_float_dtype
from lrlab.transforms._tree import zeros_like

_BASES = ("sgd", "adam")


class ScaleByHypergradientState(NamedTuple):
  """State of :func:`scale_by_hypergradient`.

  Attributes:
    count: updates made so far (int32).
    learning_rate: the current learning rate :math:`\\alpha_t`; log it.
    direction: the previous update per unit of learning rate,
      :math:`\\partial u_{t-1} / \\partial \\alpha_{t-1}` (zeros at the start).
    mu: Adam's first moment (``None`` for ``base="sgd"``).
    nu: Adam's second moment (``None`` for ``base="sgd"``).
  """

  count: jax.Array
  learning_rate: jax.Array
  direction: optax.Updates
  mu: optax.Updates | None
  nu: optax.Updates | None


def _tree_dot(a: optax.Updates, b: optax.Updates, dtype: jnp.dtype) -> jax.Array:
  """Sum over all leaves of the elementwise product, computed in ``dtype``."""
  total = jnp.zeros((), dtype)
  for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
    total = total + jnp.sum(x.astype(dtype) * y.astype(dtype))
  return total


def scale_by_hypergradient(
  learning_rate: ArrayLike,
  *,
  hyper_lr: ArrayLike,
  base: str = "sgd",
  b1: ArrayLike = 0.9,
  b2: ArrayLike = 0.999,
  eps: ArrayLike = 1e-8,
) -> optax.GradientTransformation:
  r"""SGD or Adam whose learning rate follows its own hypergradient (SGD-HD, Adam-HD).

  Each step first moves the learning rate :math:`\alpha` down the derivative
  of the loss with respect to the previous step's learning rate, then takes an
  ordinary step with the new rate (the paper's SGD-HD and Adam-HD
  pseudocode, with :math:`\nabla_\alpha u_0 = 0`):

  .. math::

    h_t &= g_t \cdot \nabla_\alpha u_{t-1}, \qquad
    \alpha_t = \alpha_{t-1} - \beta\, h_t, \\
    \text{SGD-HD:}\quad \nabla_\alpha u_t &= -g_t, \\
    \text{Adam-HD:}\quad \nabla_\alpha u_t &= -\hat m_t / (\sqrt{\hat v_t} + \epsilon),
    \\ u_t &= \alpha_t\, \nabla_\alpha u_t,

  so for SGD :math:`\alpha_t = \alpha_{t-1} + \beta\, g_t \cdot g_{t-1}`: the
  rate grows while successive gradients agree and shrinks when they oppose
  (overshooting). :math:`\hat m_t, \hat v_t` are Adam's bias-corrected moments
  and the dot product runs over the whole pytree. The transform returns the
  final update :math:`u_t` (learning rate and sign included: add it to the
  parameters), so it ends a chain rather than preceding ``optax.sgd``.

  If :math:`h_t` (or the new rate) is not finite, typically because a
  gradient is, the rate is kept as it was; the learning rate never turns into
  NaN. The non-finite gradient itself flows into the update (and into Adam's
  moments) as it would in ``optax.sgd``/``optax.adam``: handling a diverged
  gradient is the optimizer's business. The rate is not clipped, as in the
  paper; a very large ``hyper_lr`` can drive it negative.

  PyTorch and Optax have no hypergradient optimizer; with ``hyper_lr=0`` this
  is SGD / Adam (PyTorch's and Optax's defaults ``b1=0.9,
  b2=0.999, eps=1e-8``, with ``eps`` outside the square root), equal to
  ``optax.sgd``/``optax.adam`` up to float32 rounding (the bias corrections are
  computed in another order).

  Args:
    learning_rate: the initial learning rate :math:`\alpha_0`; >= 0.
    hyper_lr: the hypergradient learning rate :math:`\beta`; >= 0. The paper
      uses 1e-3 for SGD-HD and 1e-7 for Adam-HD on its neural networks; the
      right value scales with 1 / (gradient norm)^2.
    base: ``"sgd"`` (SGD-HD) or ``"adam"`` (Adam-HD); static.
    b1: Adam's first-moment decay, in [0, 1); ignored for ``"sgd"``.
    b2: Adam's second-moment decay, in [0, 1); ignored for ``"sgd"``.
    eps: Adam's denominator offset, >= 0; ignored for ``"sgd"``.

  Returns:
    An ``optax.GradientTransformation`` whose state is a
    :class:`ScaleByHypergradientState`.

  Example:
    >>> import jax
    >>> import jax.numpy as jnp
    >>> import optax
    >>> from lrlab.transforms import scale_by_hypergradient
    >>> loss = lambda x: 0.5 * jnp.sum(x**2)
    >>> tx = scale_by_hypergradient(0.01, hyper_lr=0.01)
    >>> params = jnp.array([1.0, -2.0])
    >>> state = tx.init(params)
    >>> for _ in range(5):
    ...   updates, state = tx.update(jax.grad(loss)(params), state, params)
    ...   params = optax.apply_updates(params, updates)
    >>> bool(state.learning_rate > 0.01)  # gradients agree, so the rate grows
    True

  References:
    Baydin, Cornish, Martínez Rubio, Schmidt, Wood, "Online Learning Rate
    Adaptation with Hypergradient Descent", ICLR 2018,
    https://arxiv.org/abs/1703.04782
  """
  if callable(learning_rate):
    raise ValueError(
      f"learning_rate must be a number (the initial rate; hypergradient descent "
      f"adapts it), not a schedule; got {learning_rate!r}."
    )
  _checks.check_nonnegative("learning_rate", learning_rate)
  _checks.check_nonnegative("hyper_lr", hyper_lr)
  _checks.check_choice("base", base, _BASES)
  _checks.check_betas(b1=b1, b2=b2)
  _checks.check_nonnegative("eps", eps)
  adam = base == "adam"

  def init_fn(params: optax.Params) -> ScaleByHypergradientState:
    dtype = default_float_dtype()
    zeros = lambda: zeros_like(params)
    return ScaleByHypergradientState(
      count=jnp.zeros((), jnp.int32),
      learning_rate=jnp.asarray(learning_rate).astype(dtype),
      direction=zeros(),
      mu=zeros() if adam else None,
      nu=zeros() if adam else None,
    )

  def update_fn(
    updates: optax.Updates,
    state: ScaleByHypergradientState,
    params: optax.Params | None = None,
  ) -> tuple[optax.Updates, ScaleByHypergradientState]:
    del params
    old_rate = state.learning_rate
    hypergradient = _tree_dot(updates, state.direction, old_rate.dtype)
    candidate = (old_rate - hyper_lr * hypergradient).astype(old_rate.dtype)
    rate = jnp.where(jnp.isfinite(candidate), candidate, old_rate)

    count = optax.safe_increment(state.count)
    if adam:
      mu = jax.tree.map(lambda m, g: b1 * m + (1 - b1) * g, state.mu, updates)
      nu = jax.tree.map(lambda v, g: b2 * v + (1 - b2) * g * g, state.nu, updates)
      t = count.astype(old_rate.dtype)
      correction1 = 1 - b1**t
      correction2 = 1 - b2**t
      direction = jax.tree.map(
        lambda m, v, g: (-(m / correction1) / (jnp.sqrt(v / correction2) + eps)).astype(g.dtype),
        mu,
        nu,
        updates,
      )
      mu = jax.tree.map(lambda m, g: m.astype(g.dtype), mu, state.mu)
      nu = jax.tree.map(lambda v, g: v.astype(g.dtype), nu, state.nu)
    else:
      mu, nu = None, None
      strong = lambda g: jnp.negative(g).astype(jnp.result_type(g))  # a weak g turns strong
      direction = jax.tree.map(strong, updates)

    new_updates = jax.tree.map(lambda d: (rate * d).astype(d.dtype), direction)
    new_state = ScaleByHypergradientState(
      count=count, learning_rate=rate, direction=direction, mu=mu, nu=nu
    )
    return new_updates, new_state

  return optax.GradientTransformation(init_fn, update_fn)
