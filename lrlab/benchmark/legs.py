"""The legs of the benchmark, each training the same K members: lrlab's sweep, ``jit(vmap)``
on one device or sharded, a loop of jitted runs, and a PyTorch loop; and the timing of one leg
at one K (:func:`measure_leg`)."""

import math
import time
from typing import Any

from lrlab.benchmark.probes import (
  compile_log,
  device_peak_mib,
  load_average,
  peak_rss_mib,
  reset_peak_rss,
)
from lrlab.benchmark.workload import (
  LAYERS,
  LEG_TITLES,
  LEGS,
  MOMENTUM,
  TASK,
  Config,
  learning_rates,
  make_tx,
  member_sharding,
  minibatch_order,
  run_key,
  workload,
)


def _lrlab_leg(leg: str, task, lrs, config: Config):
  """``(warm_up, run, compiles, devices_used, info)`` for an lrlab leg.

  ``warm_up()`` compiles (and runs all or one member); ``run()`` does the whole
  K-member job and returns each member's final validation loss; ``info`` (a
  dict, filled in by ``run`` where it learns more) joins the row.
  """
  import jax
  import jax.numpy as jnp
  import numpy as np

  import lrlab

  k = len(lrs)
  train_fn = lrlab.train.make_train_fn(
    task, steps=config.steps, batch_size=config.batch_size, eval_every=config.steps
  )
  key = run_key(config.seed)
  final = lambda history: np.asarray(history.val_loss[..., -1])
  info = {"note": ""}
  if leg == "sweep":
    try:
      import lrlab.sweep as sweep
    except ImportError:
      sweep = None
    if sweep is not None and hasattr(sweep, "run"):

      def run():
        result = sweep.run(
          task, make_tx, {"lr": lrs}, steps=config.steps, batch_size=config.batch_size,
          seeds=1, key=jax.random.key(config.seed), eval_every=config.steps, progress=False,
        )  # fmt: skip
        jax.block_until_ready(result)
        chunk = int(result.config["chunk_size"])
        info["chunk_size"] = chunk
        info["padded_members"] = -(-k // chunk) * chunk - k
        compiled = info.setdefault("compile_s_per_call", [])
        compiled.append(result.metadata["compile_seconds"])
        info["note"] = (
          f"chunk_size {chunk}: {-(-k // chunk)} chunk(s), {info['padded_members']} padding "
          f"member(s); run() compiled for {compiled[0]:.2f} s on its first call, "
          f"{max(compiled[1:], default=0.0):.2f} s at most on later calls"
        )
        return _sweep_final_val_loss(result)

      return run, run, True, len(jax.devices()), info
    leg = "vmap_sharded"
    info["note"] = "lrlab.sweep.run absent: ran jit(vmap) sharded over all devices"
  if leg in ("vmap", "vmap_sharded"):
    sharding = member_sharding(k) if leg == "vmap_sharded" else None
    many = jax.jit(jax.vmap(lambda lr: train_fn(make_tx({"lr": lr}), key)))
    rates = jax.device_put(jnp.asarray(lrs), sharding) if sharding else jnp.asarray(lrs)
    run = lambda: final(jax.block_until_ready(many(rates)))
    used = len(sharding.device_set) if sharding else 1
    if leg == "vmap_sharded" and sharding is None:
      split = f"K={k} does not split evenly over the devices: ran on one"
      info["note"] += ("; " if info["note"] else "") + split
    return run, run, True, used, info
  if leg == "sequential":
    one = jax.jit(lambda lr: train_fn(make_tx({"lr": lr}), key))
    rates = [jnp.float32(lr) for lr in lrs]
    warm_up = lambda: final(jax.block_until_ready(one(rates[0])))

    def run():
      histories = [one(lr) for lr in rates]  # dispatched asynchronously, as a user's loop
      return np.stack([final(h) for h in jax.block_until_ready(histories)])

    return warm_up, run, True, 1, info
  raise ValueError(f"leg must be one of {LEGS}; got {leg!r}.")


def _sweep_final_val_loss(result):
  """Each member's final validation loss from a ``SweepResult``, if it exposes one."""
  import numpy as np

  for name in ("history", "histories"):
    history = getattr(result, name, None)
    if history is not None and hasattr(history, "val_loss"):
      return np.asarray(history.val_loss)[..., -1].reshape(-1)
  if hasattr(result, "val_loss"):
    return np.asarray(result.val_loss)[..., -1].reshape(-1)
  return None


def _torch_leg(task, lrs, config: Config):
  """``(warm_up, run, False, 1, info)``: K PyTorch runs, one after another (eager, no compile)."""
  import jax
  import numpy as np
  import torch
  from torch import nn
  from torch.nn import functional as F

  torch.set_num_threads(config.threads)
  init_key, data_key = jax.random.split(run_key(config.seed))
  params = jax.tree.map(np.asarray, task.init(init_key)[0])
  order = minibatch_order(data_key, task.num_train, config.batch_size, config.steps)
  order = torch.tensor(order, dtype=torch.int64)
  splits = {
    s: (torch.tensor(np.asarray(x)), torch.tensor(np.asarray(y), dtype=torch.int64))
    for s, (x, y) in ((s, task.split(s)) for s in ("train", "val", "test"))
  }
  x_train, y_train = splits["train"]
  names = ("dense_0", "dense_1", "head")

  def model():
    layers = [nn.Linear(i, o) for i, o in LAYERS]
    with torch.no_grad():
      for layer, name in zip(layers, names, strict=True):
        layer.weight.copy_(torch.tensor(params[name]["weight"]))  # both (out, in)
        layer.bias.copy_(torch.tensor(params[name]["bias"]))
    return nn.Sequential(layers[0], nn.ReLU(), layers[1], nn.ReLU(), layers[2])

  def evaluate(net, splits_):
    with torch.no_grad():
      return [F.cross_entropy(net(splits[s][0]), splits[s][1]).item() for s in splits_]

  def one_run(lr: float, steps: int) -> float:
    net = model()
    opt = torch.optim.SGD(net.parameters(), lr=lr, momentum=MOMENTUM)
    evaluate(net, ("train", "val", "test"))
    for t in range(steps):
      batch = order[t]
      loss = F.cross_entropy(net(x_train[batch]), y_train[batch])
      opt.zero_grad(set_to_none=True)
      loss.backward()
      opt.step()
    return evaluate(net, ("val", "test"))[0]

  warm_up = lambda: one_run(float(lrs[0]), min(config.steps, 10))
  run = lambda: np.array([one_run(float(lr), config.steps) for lr in lrs])
  note = f"torch {torch.__version__}, {torch.get_num_threads()} threads"
  return warm_up, run, False, 1, {"note": note, "torch_threads": torch.get_num_threads()}


def measure_leg(leg: str, k: int, config: Config, task=None) -> dict[str, Any]:
  """Time one leg at one K in this process: compile, steady state, throughput, memory.

  The first call (``warm_up``) compiles; then the whole K-member job runs
  ``config.repeats`` times (fewer once their walls pass ``config.budget_s``).
  Compile time is what JAX's monitoring events report for tracing, lowering
  and compiling during the warm-up. The steady state is the best repeat's wall
  time less any compile time inside it, and ``recompiles`` counts the backend
  compilations there (0 for a program compiled once and reused, as
  ``lrlab.sweep.run`` reuses its chunk programs); ``wall_all_s`` keeps the raw
  walls.

  Args:
    leg: one of :data:`LEGS`.
    k: the number of learning rates.
    config: sizes and timing policy.
    task: the ``mnist1d-mlp`` task, built here if ``None``.

  Returns:
    A dict of the measurements (see ``BENCHMARKS.md`` for each key).
  """
  import jax

  import lrlab

  load = load_average()
  if leg not in LEGS:
    raise ValueError(f"leg must be one of {LEGS}; got {leg!r}.")
  task = task if task is not None else lrlab.tasks.get(TASK)
  lrs = learning_rates(k)
  flops = workload(config, task)["per_model_step"]
  log = compile_log()
  reset = reset_peak_rss()
  baseline = peak_rss_mib()
  if leg == "torch":
    try:
      import torch  # noqa: F401
    except ImportError:
      return {
        "leg": leg,
        "k": k,
        "skipped": 'PyTorch is not installed (pip install "lrlab[torch]"): leg skipped',
      }
    warm_up, run, compiles, used, info = _torch_leg(task, lrs, config)
  else:
    warm_up, run, compiles, used, info = _lrlab_leg(leg, task, lrs, config)
  log.start()
  start = time.perf_counter()
  warm_up()
  first = time.perf_counter() - start
  compile_s, _ = log.stop()
  walls, times, recompiles, losses = [], [], 0, None
  while len(walls) < max(config.repeats, 1) and (not walls or sum(walls) < config.budget_s):
    log.start()
    start = time.perf_counter()
    losses = run()
    walls.append(time.perf_counter() - start)
    seconds, count = log.stop()
    times.append(walls[-1] - seconds)
    recompiles += count
  steady = min(times)
  peak = peak_rss_mib()
  losses = None if losses is None else [float(v) for v in losses]
  finite = None if losses is None else [v for v in losses if math.isfinite(v)]
  return {
    "leg": leg,
    "title": LEG_TITLES[leg],
    "k": k,
    "steps": config.steps,
    "model_steps": k * config.steps,
    "devices_used": used,
    "load_1min": load,
    "first_call_s": first,
    "compile_s": compile_s if compiles else None,
    "steady_s": steady,
    "steady_all_s": times,
    "wall_all_s": walls,
    "recompiles": recompiles,
    "model_steps_per_s": k * config.steps / steady,
    "gflops_per_s": k * config.steps * flops / steady / 1e9,
    "peak_rss_mib": peak,
    "leg_rss_mib": None if peak is None or baseline is None or not reset else peak - baseline,
    "device_peak_mib": device_peak_mib(jax.devices()) if leg != "torch" else None,
    "final_val_loss": None if losses is None else [v if math.isfinite(v) else None for v in losses],
    "num_nonfinite": None if losses is None else k - len(finite),
    **info,
  }
