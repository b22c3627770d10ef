"""B_simple for ``experiments/batch_size.py``: the gradient noise scale (McCandlish et al. 2018,
:func:`lrlab.analysis.gradient_noise_scale`) at initialisation and where SGD at the smallest batch
and its best rate first meets the target, on each seed; on the noisy quadratic also its closed
form."""

import json
import math
from collections.abc import Callable
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import optax

from experiments import _batch_size_fits as fits
from lrlab import analysis, sweep

# The training loss's key: the models here draw no random numbers that change the loss (the
# transformer's dropout is 0), but a module with random-number slots requires one.
KEY = jax.random.key(0)


def _batches(task, rows: np.ndarray):
  """Training examples ``rows`` (any shape) as a batch shaped ``rows.shape + example``."""
  flat = rows.reshape(-1)
  if task.streamed:
    x, y = task.dataset.gather("train", flat, where="batch_size noise scale")
  else:
    x, y = task.batch(jnp.asarray(flat))
  return tuple(jnp.asarray(a).reshape(*rows.shape, *a.shape[1:]) for a in (x, y))


def _trainer(task, tx):
  """``(params, state, opt_state, batch) -> (params, state, opt_state)``, one update, jitted."""

  @jax.jit
  def step(params, state, opt_state, batch):
    (_, (state, _)), grads = jax.value_and_grad(task.loss, has_aux=True)(params, state, batch, KEY)
    updates, opt_state = tx.update(grads, opt_state, params)
    return optax.apply_updates(params, updates), state, opt_state

  return step


def _noise_fn(task):
  """``(params, state, small, big) -> NoiseScale``, jitted."""

  def measure(params, state, small, big):
    loss_fn = lambda p, batch: task.loss(p, state, batch, KEY)[0]
    return analysis.gradient_noise_scale(loss_fn, params, small, big)

  return jax.jit(measure)


def measure_noise(out: Path, name: str, task, spec, target: float, make_tx: Callable) -> None:
  """B_simple at step 0 and where SGD at the smallest batch and its best rate meets the target,
  on each seed; examples are drawn uniformly with replacement (``spec["noise"]``: the small and
  big batch sizes and their numbers of draws); ``make_tx``: ``{"lr": lr} -> SGD``, as swept.
  Writes ``out / name / "noise_scale.json"``."""
  batch = spec["batch_sizes"][0]
  result = sweep.SweepResult.load(out / name / f"sgd-{batch}")
  history = result.history
  steps = fits.steps_to_target(
    np.asarray(history.step[0, 0]), history.val_loss, history.diverged_step, target
  )
  k = int(np.argmin(fits.log_steps(steps)))
  lr = float(np.asarray(result.grid["lr"], float)[k])
  tx = make_tx({"lr": lr})
  step, measure = _trainer(task, tx), _noise_fn(task)
  small, big, small_draws, big_draws = spec["noise"]
  records = []
  for seed in range(result.num_seeds):
    rng = np.random.default_rng(seed)

    def scale(params, state, rng=rng) -> dict:
      draw = lambda size, count: _batches(task, rng.integers(0, task.num_train, (count, size)))
      found = measure(params, state, draw(small, small_draws), draw(big, big_draws))
      return {field: float(value) for field, value in found._asdict().items()}

    params, state = task.init(jax.random.key(1000 + seed))
    opt_state = tx.init(params)
    record = {"init": scale(params, state)}
    reach = steps[seed, k]
    record["step"] = math.ceil(reach) if np.isfinite(reach) else int(spec["steps"][0])
    for _ in range(record["step"]):
      rows = rng.integers(0, task.num_train, batch)
      params, state, opt_state = step(params, state, opt_state, _batches(task, rows))
    record["target"] = scale(params, state)
    if name == "quadratic":
      record["exact"] = _quadratic_exact(task, params, spec["options"]["noise"])
    records.append(record)
  (out / name / "noise_scale.json").write_text(
    json.dumps({"lr": lr, "batch_size": batch, "seeds": records}) + "\n"
  )


def _quadratic_exact(task, params, sigma: float) -> dict:
  """The noisy quadratic's exact B_simple = sigma^2 tr(H) / |H e|^2 and B_noise =
  sigma^2 tr(H^2) / (e^T H^3 e) at ``params`` (example-gradient covariance sigma^2 H)."""
  h = np.asarray(
    jax.jacfwd(jax.grad(lambda p: task.loss(p, {}, task.split("train"), None)[0]))(params),
    np.float64,
  )
  e = np.asarray(params, np.float64) - np.asarray(task.optimum, np.float64)
  g = h @ e
  return {
    "b_simple": float(sigma**2 * np.trace(h) / (g @ g)),
    "b_noise": float(sigma**2 * np.trace(h @ h) / (g @ h @ g)),
  }
