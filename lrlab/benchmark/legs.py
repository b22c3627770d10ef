"""The legs of the benchmark, each training the same K members: lrlab's sweep, ``jit(vmap)``
on one device or sharded, a loop of jitted runs, and a PyTorch loop; and the timing of one leg
at one K (:func:`measure_leg`)."""

import math
import time
from typing import Any

from lrlab.benchmark.probes import (
  device_peak_mib,
  load_average,
  peak_rss_mib,
  reset_peak_rss,
)
from lrlab.benchmark.torch_legs import torch_func_leg, torch_leg
from lrlab.benchmark.workload import (
  LEG_TITLES,
  LEGS,
  TASK,
  TORCH_LEGS,
  Config,
  executed_per_model_step,
  learning_rates,
  make_tx,
  member_sharding,
  run_key,
  workload,
)
from lrlab.train.compiling import CompileClock


def _lrlab_leg(leg: str, task, lrs, config: Config, make_tx=make_tx):
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
          chunk_size=config.chunk_size,
        )  # fmt: skip
        jax.block_until_ready(result)
        chunk = int(result.config["chunk_size"])
        choice = info.setdefault("chunk_choice", result.metadata.get("chunk_choice"))
        info["chunk_size"] = chunk
        info["padded_members"] = -(-k // chunk) * chunk - k
        # The step-0 evaluation runs once per device for the leg's one seed, not per member.
        info["start_evaluations"] = len(jax.devices())
        compiled = info.setdefault("compile_s_per_call", [])
        compiled.append(result.metadata["compile_seconds"])
        how = "given" if config.chunk_size not in (None, "auto") else "the heuristic's"
        if choice and choice.get("method") in ("measured", "cached"):
          probe = ", ".join(f"{p['chunk_size']}: {p['seconds']:.3g} s" for p in choice["probe"])
          how = (
            f"auto, {choice['method']} (heuristic's {choice['heuristic']}; probe "
            f"{choice['probe_seconds']:.1f} s; estimated s for K: {probe})"
          )
        info["note"] = (
          f"chunk_size {chunk} ({how}): {-(-k // chunk)} chunk(s), "
          f"{info['padded_members']} padding member(s); run() compiled for "
          f"{compiled[0]:.2f} s on its first call, "
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


def measure_leg(
  leg: str, k: int, config: Config, task=None, *, make_tx=make_tx, lrs=None, flops=None
) -> dict[str, Any]:
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
    make_tx, lrs, flops: another workload's optimizer (``hp -> tx``), its K rates and its
      FLOPs per model-step (:mod:`lrlab.benchmark.tasks`); the MLP's by default. The
      lrlab legs only.

  Returns:
    A dict of the measurements (see ``BENCHMARKS.md`` for each key).
  """
  import jax

  import lrlab

  load = load_average()
  if leg not in LEGS:
    raise ValueError(f"leg must be one of {LEGS}; got {leg!r}.")
  task = task if task is not None else lrlab.tasks.get(TASK)
  lrs = learning_rates(k) if lrs is None else lrs
  counted = workload(config, task) if flops is None else None
  flops = counted["per_model_step"] if flops is None else flops
  log = CompileClock()
  reset = reset_peak_rss()
  baseline = peak_rss_mib()
  if leg in TORCH_LEGS:
    try:
      import torch  # noqa: F401
    except ImportError:
      return {
        "leg": leg,
        "k": k,
        "skipped": 'PyTorch is not installed (pip install "lrlab[torch]"): leg skipped',
      }
    if leg == "torch":
      warm_up, run, compiles, used, info = torch_leg(task, lrs, config)
    else:
      compiled = leg == "torch_compiled"
      warm_up, run, compiles, used, info = torch_func_leg(task, lrs, config, compiled=compiled)
  else:
    warm_up, run, compiles, used, info = _lrlab_leg(leg, task, lrs, config, make_tx)
  log.start()
  start = time.perf_counter()
  try:
    warm_up()
  except Exception as error:
    log.stop()
    if leg not in TORCH_LEGS[1:]:
      raise
    # torch.compile (or torch.func) may not work on this build: the row says why.
    why = f"{type(error).__name__}: {(str(error).strip().splitlines() or [''])[0][:300]}"
    return {"leg": leg, "k": k, "skipped": f"{LEG_TITLES[leg]} failed, skipped: {why}"}
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
  if counted is not None and "start_evaluations" in info:  # the sweep: FLOPs it executed
    flops = executed_per_model_step(flops, counted["evaluation_start_per_run"], k,
                                    config.steps, info["start_evaluations"])  # fmt: skip
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
    "flops_per_model_step": flops,
    "gflops_per_s": k * config.steps * flops / steady / 1e9,
    "peak_rss_mib": peak,
    "leg_rss_mib": None if peak is None or baseline is None or not reset else peak - baseline,
    "device_peak_mib": device_peak_mib(jax.devices()) if leg not in TORCH_LEGS else None,
    "final_val_loss": None if losses is None else [v if math.isfinite(v) else None for v in losses],
    "num_nonfinite": None if losses is None else k - len(finite),
    **info,
  }
