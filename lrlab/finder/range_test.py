"""Smith's learning-rate range test, run the way fastai runs it, as one compiled scan.

One training run whose learning rate grows every step from ``start_lr`` to
``end_lr``; the minibatch loss is smoothed by a bias-corrected exponential
moving average, and the test stops once the smoothed loss exceeds
``divergence_factor`` times its best. The whole test is one ``jit``-compiled
``lax.scan``: minibatches are drawn on device (as in :mod:`lrlab.train`), and the
stop is a mask, so there is no host round-trip per step. A streamed task's test runs
the same scan over windows of :data:`WINDOW_STEPS` steps, each window's minibatches read
from the source while the previous window trains, and reads nothing after the stop. The
suggestions of
:mod:`lrlab.finder.suggestions` are computed on the host from the recorded curve.
"""

import concurrent.futures
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

from lrlab import _checks
from lrlab.finder import suggestions as suggestions_lib
from lrlab.finder._common import MakeTx, as_make_tx, as_task, check_batch_size
from lrlab.finder.result import STOP_REASONS, FinderResult
from lrlab.sweep import arguments
from lrlab.train import HostOrder, all_finite, applied_learning_rate, batch_indices, step_key

SPACINGS = ("exponential", "linear")
"""How the learning rate grows: geometrically (fastai's ``SchedExp``) or linearly (``SchedLin``).

Lightning's ``lr_find`` calls this choice ``mode``; lrlab keeps ``mode`` for the direction
(``"min"``/``"max"``) of a monitored value."""


def lr_sequence(
  start_lr: float, end_lr: float, steps: int, *, spacing: str = "exponential"
) -> np.ndarray:
  r"""The learning rates of a range test's steps, as fastai's ``LRFinder`` sets them.

  Step :math:`i = 0, \dots, n - 1` uses position :math:`p_i = i / n` of the way
  from ``start_lr`` to ``end_lr``:

  .. math::

    \eta_i = \eta_0 (\eta_1 / \eta_0)^{p_i} \ \text{(exponential)}, \qquad
    \eta_i = \eta_0 + p_i (\eta_1 - \eta_0) \ \text{(linear)},

  so the first step uses ``start_lr`` and the last one stops one grid step
  short of ``end_lr``. (Lightning's sequence differs slightly: its first two
  steps both use ``start_lr`` and its last one reaches ``end_lr``.)

  Args:
    start_lr: the first rate, > 0.
    end_lr: the rate the sequence grows towards, > ``start_lr``.
    steps: the number of steps, >= 1.
    spacing: ``"exponential"`` or ``"linear"``.

  Returns:
    A float64 array of ``steps`` rates.

  Example:
    >>> lrlab.finder.lr_sequence(1e-3, 1e1, 4).round(6).tolist()
    [0.001, 0.01, 0.1, 1.0]

  References:
    fastai, ``fastai.callback.schedule.LRFinder`` and ``SchedExp``.
  """
  _check_rates(start_lr, end_lr)
  if not isinstance(steps, int | np.integer) or steps < 1:
    raise ValueError(f"steps must be an integer >= 1; got {steps!r}.")
  _checks.check_choice("spacing", spacing, SPACINGS)
  position = np.arange(steps) / steps
  if spacing == "exponential":
    return start_lr * (end_lr / start_lr) ** position
  return start_lr + position * (end_lr - start_lr)


def _check_rates(start_lr: Any, end_lr: Any) -> None:
  for name, value in (("start_lr", start_lr), ("end_lr", end_lr)):
    if isinstance(value, bool) or not isinstance(value, int | float | np.integer | np.floating):
      raise ValueError(f"{name} must be a finite number > 0; got {value!r}.")
    _checks.check_positive(name, value)
  if start_lr >= end_lr:
    raise ValueError(
      f"start_lr must be < end_lr (the rate grows during the test); "
      f"got start_lr={start_lr!r}, end_lr={end_lr!r}."
    )


def _check_arguments(steps, smoothing, divergence_factor, key) -> None:
  arguments.check_key(key)
  # _checks lets None through (it means "not set" there); float(None) failed naming nothing.
  for name, value, allowed in (("smoothing", smoothing, "in [0.0, 1.0)"),
                               ("divergence_factor", divergence_factor, "> 1")):  # fmt: skip
    if value is None or np.ndim(value) != 0:
      raise ValueError(f"{name} must be a number {allowed}; got {value!r}.")
  least = suggestions_lib.min_steps()
  if not isinstance(steps, int | np.integer) or steps < least:
    raise ValueError(
      f"steps must be an integer >= {least}: fastai's rules skip steps // 10 points "
      f"at the start and {suggestions_lib.FASTAI_SKIP_END} at the end, and 'slide' needs 16 "
      f"points in between; got {steps!r}."
    )
  _checks.check_interval("smoothing", smoothing, 0.0, 1.0, closed_high=False)
  _checks.check("divergence_factor", divergence_factor, lambda x: np.isfinite(x) & (x > 1), "> 1")


def _check_params(task, params, like) -> None:
  """A one-line error unless ``params`` has the tree structure and leaf shapes of ``like``."""
  shapes = lambda tree: [np.shape(leaf) for leaf in jax.tree.leaves(tree)]
  if jax.tree.structure(params) != jax.tree.structure(like) or shapes(params) != shapes(like):
    raise ValueError(
      f"params must have the tree structure and shapes of the parameters of task "
      f"{task.name!r} (task.init(key)[0], without the model state); got "
      f"{jax.tree.structure(params)} with shapes {shapes(params)}."
    )


WINDOW_STEPS = 10
"""A streamed task's range test reads its minibatches this many steps at a time (the next
window while the current one trains), and none after the test stops."""


def _streamed(task, pieces, params, model_state, key, data_key, steps, batch_size):
  """The test of ``pieces`` (:func:`_scan`) over a streamed task, window by window."""
  start, window, finish = (jax.jit(f) for f in pieces)
  order = HostOrder(data_key, task.num_train, batch_size)

  def read(first: int):
    rows = order.steps(first, min(WINDOW_STEPS, steps - first))
    where = f"the range test's steps {first}-{first + len(rows) - 1}"
    x, y = task.dataset.gather("train", rows.ravel(), where=where)
    return x.reshape(*rows.shape, *x.shape[1:]), y.reshape(*rows.shape, *y.shape[1:])

  carry, outs = start(params, model_state), []
  with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
    pending = pool.submit(read, 0)
    for first in range(0, steps, WINDOW_STEPS):
      data = pending.result()
      if first + WINDOW_STEPS < steps:  # read the next window while this one trains
        pending = pool.submit(read, first + WINDOW_STEPS)
      counts = jnp.arange(first, first + len(data[0]), dtype=jnp.int32)
      carry, out = window(carry, key, counts, data)
      outs.append(out)
      if not bool(carry[5]):  # stopped: the later steps are NaN, their data never read
        nan = jnp.full((steps - first - len(data[0]),), jnp.nan, jnp.float32)
        outs.append((nan, nan, nan))
        break
  return *(jnp.concatenate(parts) for parts in zip(*outs, strict=True)), *finish(carry)


def _scan(task, tx, batch_size, smoothing, divergence_factor):
  """The pure test in three pieces: ``start(params, model_state) -> carry``, ``window(carry, key,
  counts, inputs) -> (carry, (losses, smoothed, applied))`` over steps ``counts`` (``inputs``:
  a streamed task's minibatches, or resident minibatch rows) and ``finish(carry) -> (recorded,
  reason)``."""
  beta = jnp.float32(smoothing)
  threshold = jnp.float32(divergence_factor)

  def window(carry, key, counts, inputs):
    def step(carry, inputs):
      params, model_state, opt_state, average, best, active, reason, recorded, poisoned = carry
      t, rows = inputs
      if task.streamed:
        batch = rows
      else:
        x_train, y_train = task.split("train")
        batch = (x_train, y_train) if batch_size is None else (x_train[rows], y_train[rows])
      loss_fn = lambda p: task.loss(p, model_state, batch, step_key(key, t))
      (loss, (new_model_state, _)), grads = jax.value_and_grad(loss_fn, has_aux=True)(params)
      loss = loss.astype(jnp.float32)
      updates, new_opt_state = tx.update(grads, opt_state, params, value=loss)
      new_params = optax.apply_updates(params, updates)
      new_average = beta * average + (1 - beta) * loss
      smooth = new_average / (1 - beta ** (t + 1).astype(jnp.float32))
      new_best = jnp.where(smooth < best, smooth, best)
      # As in fastai, parameters that turn non-finite are trained on for one more step, whose
      # loss (NaN or inf) is recorded; a finite loss from them stops the test all the same.
      non_finite = ~jnp.isfinite(smooth) | poisoned
      over = smooth > new_best + (threshold - 1) * jnp.abs(new_best)
      stop = active & (non_finite | over)
      go = active & ~stop
      keep = lambda new, old: jax.tree.map(lambda n, o: jnp.where(go, n, o), new, old)
      carry = (
        keep(new_params, params),
        keep(new_model_state, model_state),
        keep(new_opt_state, opt_state),
        jnp.where(go, new_average, average),
        jnp.where(go, new_best, best),
        go,
        jnp.where(stop, jnp.where(non_finite, 2, 1), reason).astype(jnp.int32),
        recorded + active.astype(jnp.int32),
        go & ~all_finite((new_params, new_model_state)),
      )
      nan = jnp.float32(jnp.nan)
      out = (
        jnp.where(active, loss, nan),
        jnp.where(active, smooth, nan),
        applied_learning_rate(new_opt_state),
      )
      return carry, out

    return jax.lax.scan(step, carry, (counts, inputs))

  def start(params, model_state):
    flags = (jnp.bool_(True), jnp.int32(0), jnp.int32(0), jnp.bool_(False))
    return (params, model_state, tx.init(params), jnp.float32(0.0), jnp.float32(jnp.inf), *flags)

  def finish(carry):
    return carry[7], jnp.where(carry[8], 2, carry[6])  # non-finite after the last step

  return start, window, finish


def _resident(task, pieces, params, model_state, key, data_key, steps, batch_size):
  """The test of ``pieces`` (:func:`_scan`) over a resident task: one compiled scan, its
  minibatches drawn on device."""
  start, window, finish = pieces

  def run(params, model_state, key, data_key):
    if batch_size is None:
      rows = jnp.zeros((steps, 0), jnp.int32)  # unused: every step sees the whole set
    else:
      rows = batch_indices(data_key, 0, steps, task.num_train, batch_size)
    counts = jnp.arange(steps, dtype=jnp.int32)
    carry, outs = window(start(params, model_state), key, counts, rows)
    return *outs, *finish(carry)

  return jax.jit(run)(params, model_state, key, data_key)


def find_lr(
  task: Any,
  make_tx: MakeTx | str,
  *,
  start_lr: float = 1e-7,
  end_lr: float = 10.0,
  steps: int = 100,
  spacing: str = "exponential",
  smoothing: float = 0.98,
  divergence_factor: float = 4.0,
  batch_size: int | None,
  key: jax.Array,
  params: Any = None,
) -> FinderResult:
  r"""Smith's learning-rate range test as fastai runs it: one run, a growing rate, the loss curve.

  Step :math:`i` trains one minibatch at rate :math:`\eta_i` of
  :func:`lr_sequence` and records the minibatch loss :math:`\ell_i` (computed
  *before* that step's update, as fastai and Lightning record it) and its
  bias-corrected exponential moving average

  .. math::

    a_i = \beta a_{i-1} + (1 - \beta) \ell_i, \quad a_{-1} = 0, \qquad
    s_i = a_i / (1 - \beta^{i+1}),

  with :math:`\beta` = ``smoothing`` (fastai's ``AvgSmoothLoss``). The test stops
  at the first step where :math:`s_i > \tau\, b_i`, :math:`b_i = \min_{j \le i} s_j`,
  :math:`\tau` = ``divergence_factor`` (fastai's ``stop_div`` rule), or where the
  loss stops being finite; that step is still recorded, the later ones are NaN.
  Parameters (or model state) that turn non-finite are, as in fastai, trained
  on for one more step, whose loss is recorded and stops the test. (For a
  negative best loss the test uses :math:`b_i + (\tau - 1)|b_i|`, which equals
  :math:`\tau b_i` for a positive one.)
  The whole test is one compiled ``lax.scan`` with on-device minibatches; the
  stop is a mask. (A streamed task's test reads :data:`WINDOW_STEPS` steps' minibatches
  at a time, never the whole test's at once, and stops reading at the stop; its curve is
  the resident test's.) The caller's ``params`` are read, never changed.

  The optimizer is built once by ``make_tx({"lr": schedule})``, where
  ``schedule`` maps the optimizer's step count to :math:`\eta_i`: pass
  ``hp["lr"]`` straight on as the learning rate (every :mod:`lrlab.optimizers`
  optimizer, and every Optax optimizer, takes a schedule there). The same
  factory serves :func:`lrlab.sweep.run` and :func:`find_lr_parallel`, where
  ``hp["lr"]`` is a traced scalar instead. An optimizer name stands for
  ``lambda hp: lrlab.optimizers.get(name, learning_rate=hp["lr"])``.

  Args:
    task: an :class:`lrlab.tasks.Task` or a registered task name.
    make_tx: ``hp -> optax.GradientTransformation``, or an optimizer name (not a
      learning-rate-free one of :mod:`lrlab.optimizers.lr_free`, whose ``learning_rate``
      multiplies the step size it chooses).
    start_lr: the first rate, > 0 (fastai's default 1e-7).
    end_lr: the rate the test grows towards, > ``start_lr`` (fastai's 10).
    steps: planned steps, >= 23 so that every rule has points (fastai's 100).
    spacing: ``"exponential"`` (geometric) or ``"linear"`` growth.
    smoothing: :math:`\beta \in [0, 1)` (fastai's and Lightning's 0.98; 0 for none).
    divergence_factor: :math:`\tau > 1` (fastai's and Lightning's 4).
    batch_size: examples per minibatch, or ``None`` for full batch.
    key: a ``jax.random`` key, split as :func:`lrlab.train.train` splits it, so
      the same key gives the same initial parameters and minibatch order.
    params: parameters to start from, of the structure and shapes of ``task.init``'s
      (default: ``task.init`` of the key's initialization half); the model state
      always comes from there.

  Returns:
    A :class:`FinderResult` with the curve and every rule's suggestion.

  Raises:
    ValueError: for a bad argument, or when ``make_tx`` did not apply
      ``hp["lr"]`` as the learning rate.

  Example:
    >>> result = lrlab.finder.find_lr("quadratic", "sgd", end_lr=100.0, batch_size=None,
    ...                               key=jax.random.key(0))
    >>> result.stop_reason, result.stop_lr > 2.0  # gradient descent diverges above 2/L = 2
    ('diverged', True)

  References:
    Smith, `Cyclical Learning Rates for Training Neural Networks
    <https://arxiv.org/abs/1506.01186>`_, 2017 (section 3.3).

    Smith, `A disciplined approach to neural network hyper-parameters: Part 1
    <https://arxiv.org/abs/1803.09820>`_, 2018.

    fastai, `Learner.lr_find <https://docs.fast.ai/callback.schedule.html#lrfinder>`_.
  """
  task = as_task(task)
  make_tx = as_make_tx(make_tx, range_test=True)
  _check_rates(start_lr, end_lr)
  _checks.check_choice("spacing", spacing, SPACINGS)
  _check_arguments(steps, smoothing, divergence_factor, key)
  batch_size = check_batch_size(task, batch_size)
  rates = lr_sequence(start_lr, end_lr, int(steps), spacing=spacing)
  table = jnp.asarray(rates, jnp.float32)
  schedule = lambda count: table[jnp.clip(count, 0, steps - 1)]
  try:
    tx = make_tx({"lr": schedule})
  except TypeError as error:
    raise ValueError(
      "make_tx must pass hp['lr'] on as the optimizer's learning rate: in find_lr it is a "
      f"schedule (a callable step -> rate), not a number ({error})."
    ) from error
  tx = optax.with_extra_args_support(tx)
  init_key, data_key = jax.random.split(key)
  initial_params, model_state = task.init(init_key)
  if params is None:
    params = initial_params
  _check_params(task, params, initial_params)  # else a wrong shape gave NaN losses, silently
  pieces = _scan(task, tx, batch_size, float(smoothing), float(divergence_factor))
  run = _streamed if task.streamed else _resident
  outputs = run(task, pieces, params, model_state, key, data_key, int(steps), batch_size)
  losses, smoothed, applied, recorded, reason = jax.device_get(outputs)
  recorded = int(recorded)
  applied = np.asarray(applied[:recorded], np.float64)
  if np.all(np.isfinite(applied)) and not np.allclose(applied, rates[:recorded], rtol=1e-5):
    raise ValueError(
      "make_tx must pass hp['lr'] on, unchanged, as the optimizer's learning rate: the "
      f"optimizer applied {applied[:3].tolist()}... where the test scheduled "
      f"{rates[:3].tolist()}...."
    )
  config = {
    "task": task.name,
    "start_lr": float(start_lr),
    "end_lr": float(end_lr),
    "steps": int(steps),
    "spacing": spacing,
    "smoothing": float(smoothing),
    "divergence_factor": float(divergence_factor),
    "batch_size": batch_size,
  }
  return FinderResult(
    lrs=rates,
    losses=np.asarray(losses, np.float64),
    smoothed=np.asarray(smoothed, np.float64),
    num_recorded=recorded,
    stop_reason=STOP_REASONS[int(reason)],
    config=config,
  )
