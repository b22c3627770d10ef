"""Throughput of lrlab's vmapped sweep against a loop of single runs and a PyTorch loop.

  PYTHONPATH=. python scripts/benchmark.py [--ks 1,8,64,512] [--steps 200] [--quick]

Every leg trains the same MLP (40 -> 100 -> 100 -> 10, ReLU) on MNIST-1D's
standardized training set, from the same initial parameters and with the same
minibatch order (batch 100), with SGD (momentum 0.9) at K log-spaced learning
rates in [1e-3, 1]; every leg evaluates the training loss at the start and the
validation and test losses at the start and the end, nothing in between.

Legs (``--legs``):

- ``sweep``: ``lrlab.sweep.run`` (falls back to ``vmap_sharded`` if absent, and says so).
- ``vmap``: ``jax.jit(jax.vmap(make_train_fn(...)))`` over all K rates, one chunk, one device.
- ``vmap_sharded``: the same program with the member axis sharded over every device.
- ``sequential``: ``lrlab.train``'s run jitted once with the rate traced, called K times.
- ``torch``: K ``nn.Sequential`` MLPs trained one after another with ``torch.optim.SGD``.

The CPU's cores are exposed to JAX as devices (``--devices``, default: every
core), so the sweep can shard over them; the sequential loop and ``vmap`` use
one device, as a user's loop would. Each (leg, K) runs in a fresh subprocess so
its peak memory is its own (``--in-process`` to skip that). Writes
``report.json``, ``report.md`` and ``throughput.png`` under ``--out``.
"""

import argparse
import dataclasses
import json
import math
import os
import platform
import subprocess
import sys
import textwrap
import time
from typing import Any

LEGS = ("sweep", "vmap", "vmap_sharded", "sequential", "torch")
LEG_TITLES = {
  "sweep": "lrlab.sweep.run",
  "vmap": "vmap, one chunk",
  "vmap_sharded": "vmap, sharded",
  "sequential": "lrlab loop",
  "torch": "PyTorch loop",
}
TASK = "mnist1d-mlp"
LAYERS = ((40, 100), (100, 100), (100, 10))
LR_RANGE = (1e-3, 1.0)
MOMENTUM = 0.9
# Targets of issue 5 on a 2-core CPU, at K = TARGET_K.
TARGET_K = 512
TARGETS = {"fraction_of_ceiling": 0.6, "sweep_over_sequential": 1.7, "sweep_over_torch": 6.0}
# Members per device of the ceiling's diagnostic MLP-shaped product (a cache-sized chunk).
MLP_SHAPED_PER_DEVICE = 32
# The final losses every leg is compared with: the first of these that ran.
AGREEMENT_REFERENCES = ("vmap", "sequential")
_WORKER_MARK = "BENCHMARK-RESULT "


@dataclasses.dataclass(frozen=True)
class Config:
  """What every leg trains and how it is timed.

  Attributes:
    ks: the numbers of learning rates (members) to train at once.
    steps: updates per member.
    batch_size: examples per minibatch.
    legs: which legs to run, a subset of :data:`LEGS`.
    devices: host CPU devices exposed to JAX.
    threads: PyTorch's intra-op threads.
    repeats: steady-state timings per (leg, K); the best is reported.
    budget_s: stop repeating once the steady-state timings of a (leg, K) exceed this.
    seed: the key of the initial parameters and the minibatch order.
    ceiling_sizes: square matrix sizes of the matmul ceiling.
  """

  ks: tuple[int, ...] = (1, 8, 64, 512)
  steps: int = 200
  batch_size: int = 100
  legs: tuple[str, ...] = LEGS
  devices: int = 1
  threads: int = 1
  repeats: int = 5
  budget_s: float = 30.0
  seed: int = 0
  ceiling_sizes: tuple[int, ...] = (256, 512, 1024, 2048)


def host_cores() -> int:
  """CPU cores this process may run on (its affinity), else ``os.cpu_count()``."""
  if hasattr(os, "sched_getaffinity"):
    return len(os.sched_getaffinity(0))
  return os.cpu_count() or 1


def xla_flags(count: int, flags: str = "") -> str:
  """``flags`` with XLA's host device count set to ``count`` (replacing any given)."""
  kept = [f for f in flags.split() if "host_platform_device_count" not in f]
  return " ".join([*kept, f"--xla_force_host_platform_device_count={count}"])


def set_host_devices(count: int) -> None:
  """Ask XLA for ``count`` host CPU devices; only effective before JAX is imported."""
  os.environ["XLA_FLAGS"] = xla_flags(count, os.environ.get("XLA_FLAGS", ""))


# --- measuring -----------------------------------------------------------------------------------


def analytic_flops(batch_size: int, steps: int, split_sizes: dict[str, int]) -> dict[str, float]:
  """Matmul FLOPs of one run of the MLP, counted by hand, and their share per model-step.

  A training step does the forward ``2 B sum(in*out)`` and the backward ``2 B
  in*out`` for each weight gradient and for each input gradient but the first
  layer's (the data need none). A run also evaluates, forward only, the
  training set once and the validation and test sets twice (start and end).
  Biases, activations, the loss and the optimizer are left out (a few percent).

  Returns:
    ``{"train_step", "evaluation_per_run", "per_model_step"}``: the last is what
    GFLOP/s are computed from, ``train_step + evaluation_per_run / steps``.
  """
  macs = sum(i * o for i, o in LAYERS)
  train_step = 2 * batch_size * (3 * macs - LAYERS[0][0] * LAYERS[0][1])
  examples = split_sizes["train"] + 2 * (split_sizes["val"] + split_sizes["test"])
  evaluation = 2 * macs * examples
  return {
    "train_step": float(train_step),
    "evaluation_per_run": float(evaluation),
    "per_model_step": train_step + evaluation / steps,
  }


_XLA_STEP_FLOPS: dict[int, float | None] = {}


def workload(config: Config, task=None) -> dict[str, Any]:
  """The FLOPs of the workload: by hand, and XLA's count of one training step for comparison."""
  import lrlab

  task = task if task is not None else lrlab.tasks.get(TASK)
  sizes = {s: int(task.split(s)[0].shape[0]) for s in ("train", "val", "test")}
  flops = analytic_flops(config.batch_size, config.steps, sizes)
  if config.batch_size not in _XLA_STEP_FLOPS:
    _XLA_STEP_FLOPS[config.batch_size] = _xla_step_flops(task, config.batch_size)
  return {"split_sizes": sizes, **flops, "xla_train_step": _XLA_STEP_FLOPS[config.batch_size]}


def _xla_step_flops(task, batch_size: int) -> float | None:
  """XLA's cost analysis of one training step (gradient and SGD-momentum update), FLOPs."""
  import jax

  params, model_state = task.init(jax.random.key(0))
  tx = _make_tx({"lr": 0.1})
  batch = task.batch(jax.numpy.arange(batch_size))

  def step(params, state):
    grads = jax.grad(lambda p: task.loss(p, model_state, batch, None)[0])(params)
    updates, state = tx.update(grads, state, params)
    return jax.tree.map(lambda p, u: p + u, params, updates), state

  cost = jax.jit(step).lower(params, tx.init(params)).compile().cost_analysis()
  cost = cost[0] if isinstance(cost, list | tuple) else cost
  return (cost or {}).get("flops")


def _peak_rss_mib() -> float | None:
  """Peak resident memory of this process (``VmHWM``), MiB; ``ru_maxrss`` off Linux."""
  try:
    with open("/proc/self/status") as f:
      for line in f:
        if line.startswith("VmHWM:"):
          return int(line.split()[1]) / 1024
  except OSError:
    pass
  try:
    import resource

    scale = 1 if sys.platform == "darwin" else 1024  # bytes on macOS, KiB on Linux
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale / 2**20
  except ImportError:
    return None


def _reset_peak_rss() -> bool:
  """Reset ``VmHWM`` to the current RSS (Linux ``clear_refs`` 5); whether it worked."""
  try:
    with open("/proc/self/clear_refs", "w") as f:
      f.write("5")
    return True
  except OSError:
    return False


def _device_peak_mib(devices) -> float | None:
  """Largest ``peak_bytes_in_use`` over ``devices`` (GPU/TPU), MiB; ``None`` on CPU."""
  peaks = [(d.memory_stats() or {}).get("peak_bytes_in_use") for d in devices]
  peaks = [p for p in peaks if p is not None]
  return max(peaks) / 2**20 if peaks else None


class _CompileLog:
  """Sums JAX's tracing, lowering and backend-compile durations while active."""

  def __init__(self):
    import jax

    self.seconds = 0.0
    self.compiles = 0
    self.active = False
    jax.monitoring.register_event_duration_secs_listener(self._listen)

  def _listen(self, event: str, duration: float, **_: Any) -> None:
    if self.active and event.startswith("/jax/core/compile/"):
      self.seconds += duration
      self.compiles += event.endswith("backend_compile_duration")

  def start(self) -> None:
    self.seconds, self.compiles, self.active = 0.0, 0, True

  def stop(self) -> tuple[float, int]:
    self.active = False
    return self.seconds, self.compiles


_COMPILE_LOG: _CompileLog | None = None


def _compile_log() -> _CompileLog:
  global _COMPILE_LOG
  if _COMPILE_LOG is None:
    _COMPILE_LOG = _CompileLog()
  return _COMPILE_LOG


def learning_rates(k: int):
  """``k`` log-spaced learning rates in :data:`LR_RANGE`, float32."""
  import numpy as np

  return np.logspace(np.log10(LR_RANGE[0]), np.log10(LR_RANGE[1]), k, dtype=np.float32)


def _make_tx(hp):
  from lrlab import optimizers

  return optimizers.sgd(hp["lr"], momentum=MOMENTUM)


def _member_sharding(k: int):
  """Shard a leading axis of length ``k`` over every device, or ``None`` if it does not divide."""
  import jax
  import numpy as np
  from jax.sharding import Mesh, NamedSharding, PartitionSpec

  devices = jax.devices()
  if len(devices) == 1 or k % len(devices):
    return None
  return NamedSharding(Mesh(np.array(devices), ("members",)), PartitionSpec("members"))


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
  key = _run_key(config.seed)
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
          task, _make_tx, {"lr": lrs}, steps=config.steps, batch_size=config.batch_size,
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
    sharding = _member_sharding(k) if leg == "vmap_sharded" else None
    many = jax.jit(jax.vmap(lambda lr: train_fn(_make_tx({"lr": lr}), key)))
    rates = jax.device_put(jnp.asarray(lrs), sharding) if sharding else jnp.asarray(lrs)
    run = lambda: final(jax.block_until_ready(many(rates)))
    used = len(sharding.device_set) if sharding else 1
    if leg == "vmap_sharded" and sharding is None:
      split = f"K={k} does not split evenly over the devices: ran on one"
      info["note"] += ("; " if info["note"] else "") + split
    return run, run, True, used, info
  if leg == "sequential":
    one = jax.jit(lambda lr: train_fn(_make_tx({"lr": lr}), key))
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


def _run_key(seed: int):
  """The key of every run: ``lrlab.sweep.run`` trains seed 0 with ``fold_in(key, 0)``."""
  import jax

  return jax.random.fold_in(jax.random.key(seed), 0)


def _minibatch_order(data_key, num_train: int, batch_size: int, steps: int):
  """``(steps, batch_size)`` example indices in lrlab's order (``lrlab.train.batch_indices``)."""
  import numpy as np

  import lrlab

  return np.asarray(lrlab.train.batch_indices(data_key, 0, steps, num_train, batch_size))


def _torch_leg(task, lrs, config: Config):
  """``(warm_up, run, False, 1, info)``: K PyTorch runs, one after another (eager, no compile)."""
  import jax
  import numpy as np
  import torch
  from torch import nn
  from torch.nn import functional as F

  torch.set_num_threads(config.threads)
  init_key, data_key = jax.random.split(_run_key(config.seed))
  params = jax.tree.map(np.asarray, task.init(init_key)[0])
  order = _minibatch_order(data_key, task.num_train, config.batch_size, config.steps)
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

  load = _load_average()
  if leg not in LEGS:
    raise ValueError(f"leg must be one of {LEGS}; got {leg!r}.")
  task = task if task is not None else lrlab.tasks.get(TASK)
  lrs = learning_rates(k)
  flops = workload(config, task)["per_model_step"]
  log = _compile_log()
  reset = _reset_peak_rss()
  baseline = _peak_rss_mib()
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
  peak = _peak_rss_mib()
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
    "device_peak_mib": _device_peak_mib(jax.devices()) if leg != "torch" else None,
    "final_val_loss": None if losses is None else [v if math.isfinite(v) else None for v in losses],
    "num_nonfinite": None if losses is None else k - len(finite),
    **info,
  }


OPERAND_LAYOUTS = {
  "A B": "bnk,bkm->bnm",
  "A^T B": "bkn,bkm->bnm",
  "A B^T": "bnk,bmk->bnm",
  "A^T B^T": "bkn,bmk->bnm",
}
"""Each member's product ``A @ B`` with either operand stored transposed, as einsum forms.

A dense layer's step needs three products: the forward ``h W``, the input
gradient ``dz W^T`` and the weight gradient ``h^T dz``. With activations
stored batch-major (``h`` is ``(batch, features)``), the weight gradient sums
over the batch, the major dimension of both operands: the ``A^T B`` form."""


def matmul_ceiling(sizes=(256, 512, 1024, 2048), *, repeats: int = 5) -> dict[str, Any]:
  """Best float32 matmul GFLOP/s on this machine, measured as the sweep uses it.

  ``single``: ``jnp.dot`` of two square ``n x n`` matrices on the default device.
  ``sharded``: a batch of such products, one per device, sharded over all
  devices (how a sweep occupies the machine). ``mlp_shaped``: the sweep's own
  hidden-layer product, :data:`MLP_SHAPED_PER_DEVICE` members per device of
  ``(100, 100) @ (100, 100)`` (a cache-sized chunk) sharded over the devices, a
  diagnostic of how fast this shape can go; ``mlp_shaped_layouts``: the same
  product with each operand stored as is or transposed (:data:`OPERAND_LAYOUTS`),
  since a training step needs all of them. ``ceiling`` is the best of
  ``single`` and ``sharded``; the 60% target refers to it.

  Args:
    sizes: the square sizes to try.
    repeats: timings per size; the best counts.

  Returns:
    ``{"single": {n: GFLOP/s}, "sharded": {...}, "mlp_shaped": x,
    "mlp_shaped_layouts": {form: x}, "ceiling": x, ...}``.
  """
  import jax
  import jax.numpy as jnp

  def best_time(f, *args):
    jax.block_until_ready(f(*args))
    times = []
    for _ in range(repeats):
      start = time.perf_counter()
      jax.block_until_ready(f(*args))
      times.append(time.perf_counter() - start)
    return min(times)

  def batched(b, n, m, k, form="bnk,bkm->bnm"):
    sharding = _member_sharding(b)
    lhs, rhs = form.split("->")[0].split(",")
    size = dict(b=b, n=n, m=m, k=k)
    x = jnp.ones(tuple(size[d] for d in lhs), jnp.float32)
    y = jnp.ones(tuple(size[d] for d in rhs), jnp.float32)
    if sharding is not None:
      x, y = jax.device_put(x, sharding), jax.device_put(y, sharding)
    f = jax.jit(lambda x, y: jnp.einsum(form, x, y))
    return 2 * b * n * m * k / best_time(f, x, y) / 1e9

  count = len(jax.devices())
  dot = jax.jit(jnp.dot)
  single, sharded = {}, {}
  for n in sizes:
    a = jnp.ones((n, n), jnp.float32)
    single[n] = 2 * n**3 / best_time(dot, a, a) / 1e9
    sharded[n] = batched(count, n, n, n)
  return {
    "single": single,
    "sharded": sharded,
    "mlp_shaped": batched(MLP_SHAPED_PER_DEVICE * count, 100, 100, 100),
    "mlp_shaped_layouts": {
      name: batched(MLP_SHAPED_PER_DEVICE * count, 100, 100, 100, form)
      for name, form in OPERAND_LAYOUTS.items()
    },
    "ceiling": max(*single.values(), *sharded.values()),
    "devices": count,
  }


def linear_sgd_step(x, weights, lr):
  """One SGD step of a stack of linear networks on the loss ``0.5 |W_L ... W_1 x^T|^2``, by hand.

  ``x`` is ``(B, n_0)``, shared by every member; ``weights[l]`` is
  ``(K, n_{l+1}, n_l)``, stored ``(out, in)`` and run feature-major as
  :class:`lrlab.models.MLP` runs. The forward is the products of :data:`LAYERS`,
  the backward every weight gradient and every input gradient but the data's
  (the output is its own loss gradient), so the matmuls are those of
  :func:`analytic_flops`, in the layout of a vmapped sweep: the last layer's
  input gradient reads a stored copy of its ``W^T``, as the MLP's head does.
  ``lr`` is a float or one rate per member, shaped ``(K, 1, 1)``.
  """
  import jax
  import jax.numpy as jnp

  hs = [jnp.einsum("koi,bi->kob", weights[0], x)]
  for w in weights[1:]:
    hs.append(jnp.einsum("koi,kib->kob", w, hs[-1]))
  grads, dh = [], hs[-1]
  for j in range(len(weights) - 1, 0, -1):
    grads.append(jnp.einsum("kob,kib->koi", dh, hs[j - 1]))
    if j == len(weights) - 1:
      dh = jnp.einsum("kio,kob->kib", jax.lax.optimization_barrier(weights[j].mT), dh)
    else:
      dh = jnp.einsum("koi,kob->kib", weights[j], dh)
  grads.append(jnp.einsum("kob,bi->koi", dh, x))
  return tuple(w - lr * g for w, g in zip(weights, grads[::-1], strict=True))


BREAKDOWN = {
  "matmuls": "the matmuls alone (a linear network, plain SGD)",
  "loss_sgd": "+ biases, ReLU, softmax cross-entropy (plain SGD)",
  "loss_momentum": "+ SGD momentum (lrlab.optimizers.sgd)",
  "trainer": "+ divergence guard, rate record, evaluation (lrlab's Trainer)",
}


def breakdown(
  config: Config, *, per_device: int = MLP_SHAPED_PER_DEVICE, repeats: int = 5
) -> dict[str, float]:
  """GFLOP/s of the training step built up from its matmuls to lrlab's full step.

  Each rung trains ``per_device`` members per device of the benchmark MLP for
  ``config.steps`` steps on lrlab's shared minibatch order, vmapped and sharded
  over the devices as one chunk of the sweep, and adds one thing to the rung
  before it (:data:`BREAKDOWN`):

  - ``matmuls``: :func:`linear_sgd_step`, the step's products alone: the most a
    sweep of this model could reach if all else were free;
  - ``loss_sgd``: the task's loss and its gradient, then ``p - lr * g``;
  - ``loss_momentum``: the benchmark's optimizer instead;
  - ``trainer``: :class:`lrlab.train.Trainer`'s segment (divergence guard,
    applied-rate record, one evaluation of the val and test sets at the end).

  GFLOP/s count the hand-counted training FLOPs (:func:`analytic_flops`), plus
  the evaluation's for ``trainer``, so the rungs compare directly with the
  legs' figures. Each rung's best of ``repeats`` timings counts; the rungs are
  timed in turn, round after round.
  """
  import jax
  import jax.numpy as jnp
  import optax

  import lrlab

  task = lrlab.tasks.get(TASK)
  members = per_device * len(jax.devices())
  steps, batch_size = config.steps, config.batch_size
  sizes = {s: int(task.split(s)[0].shape[0]) for s in ("train", "val", "test")}
  train_flops = analytic_flops(batch_size, steps, sizes)["train_step"] * steps
  eval_flops = 2 * sum(i * o for i, o in LAYERS) * (sizes["val"] + sizes["test"])
  x, y = task.split("train")
  order = lrlab.train.batch_indices(jax.random.key(config.seed), 0, steps, len(x), batch_size)
  sharding = _member_sharding(members)
  place = lambda tree: jax.device_put(tree, sharding) if sharding is not None else tree
  rates = place(jnp.asarray(learning_rates(members)))

  def linear(lrs):  # written batched, as the sweep's products are laid out at their best
    keys = jax.random.split(jax.random.key(0), len(LAYERS))
    weights = tuple(
      place(0.1 * jax.random.normal(k, (members, o, i), jnp.float32))
      for k, (i, o) in zip(keys, LAYERS, strict=True)
    )
    step = lambda w, rows: (linear_sgd_step(x[rows], w, lrs[:, None, None]), None)
    return jax.lax.scan(step, weights, order)[0]

  def loss(lr, momentum: bool):
    params, model_state = task.init(jax.random.key(0))
    tx = _make_tx({"lr": lr}) if momentum else optax.sgd(lr)

    def step(carry, rows):
      params, state = carry
      grads = jax.grad(lambda p: task.loss(p, model_state, (x[rows], y[rows]), None)[0])(params)
      updates, state = tx.update(grads, state, params)
      return (optax.apply_updates(params, updates), state), None

    return jax.lax.scan(step, (params, tx.init(params)), order)[0]

  trainer = lrlab.train.Trainer(task, steps=steps, batch_size=batch_size, eval_every=steps)

  key = jax.random.key(config.seed)
  init = lambda lr: trainer.init(_make_tx({"lr": lr}), key)[0]
  states = jax.jit(jax.vmap(init))(rates)  # outside the timing: it evaluates the training set
  segment = lambda lr, state: trainer.segment(_make_tx({"lr": lr}), key, state, 0, 1)

  rungs = {
    "matmuls": (linear, (rates,), train_flops),
    "loss_sgd": (jax.vmap(lambda lr: loss(lr, False)), (rates,), train_flops),
    "loss_momentum": (jax.vmap(lambda lr: loss(lr, True)), (rates,), train_flops),
    "trainer": (jax.vmap(segment), (rates, states), train_flops + eval_flops),
  }
  programs = {name: jax.jit(chunk) for name, (chunk, _, _) in rungs.items()}
  for name, run in programs.items():
    jax.block_until_ready(run(*rungs[name][1]))  # compile and warm up
  best = dict.fromkeys(rungs, math.inf)
  for _ in range(repeats):  # round robin, so a burst of load slows every rung alike
    for name, run in programs.items():
      start = time.perf_counter()
      jax.block_until_ready(run(*rungs[name][1]))
      best[name] = min(best[name], time.perf_counter() - start)
  return {name: members * rungs[name][2] / best[name] / 1e9 for name in rungs}


def measure_machine(config: Config) -> dict[str, Any]:
  """What the run measures besides the legs: the ceiling, the breakdown, the machine, the FLOPs."""
  return {
    "ceiling": matmul_ceiling(config.ceiling_sizes),
    "breakdown": breakdown(config),
    "environment": environment(),
    "flops": workload(config),
  }


# --- orchestration -------------------------------------------------------------------------------


def _worker_main(spec: dict[str, Any]) -> None:
  """Run one measurement in this (fresh) process and print it as one JSON line."""
  fields = spec["config"]
  config = Config(**{**fields, **{f: tuple(fields[f]) for f in ("ks", "legs", "ceiling_sizes")}})
  if spec["kind"] == "ceiling":
    result = measure_machine(config)
  else:
    result = measure_leg(spec["leg"], spec["k"], config)
  print(_WORKER_MARK + json.dumps(result), flush=True)


def _in_subprocess(spec: dict[str, Any], config: Config, timeout: float) -> dict[str, Any]:
  env = dict(os.environ)
  env["XLA_FLAGS"] = xla_flags(config.devices, env.get("XLA_FLAGS", ""))
  root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
  env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH")) if p)
  command = [sys.executable, os.path.abspath(__file__), "--worker", json.dumps(spec)]
  try:
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=timeout)
  except subprocess.TimeoutExpired:
    return {"error": f"timed out after {timeout:.0f} s"}
  for line in done.stdout.splitlines():
    if line.startswith(_WORKER_MARK):
      return json.loads(line[len(_WORKER_MARK) :])
  return {"error": (done.stderr or done.stdout).strip()[-2000:]}


def environment() -> dict[str, Any]:
  """The machine and the library versions, for the report."""
  import jax

  cpu = platform.processor()
  try:
    with open("/proc/cpuinfo") as f:
      cpu = next((line.split(":", 1)[1].strip() for line in f if "model name" in line), cpu)
  except OSError:
    pass
  try:
    import torch

    torch_version = torch.__version__
  except ImportError:
    torch_version = None
  memory = None
  if hasattr(os, "sysconf") and "SC_PHYS_PAGES" in os.sysconf_names:
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
  return {
    "cpu": cpu,
    "cores": host_cores(),
    "memory_gib": memory,
    "platform": platform.platform(),
    "python": platform.python_version(),
    "jax": jax.__version__,
    "backend": jax.default_backend(),
    "devices": [str(d) for d in jax.devices()],
    "torch": torch_version,
  }


def run_benchmark(config: Config, *, isolate: bool = True, log=print) -> dict[str, Any]:
  """Measure the matmul ceiling and every (leg, K); return the report.

  Args:
    config: what to run.
    isolate: run each measurement in a fresh subprocess (clean peak memory,
      no JIT caches shared between legs); otherwise in this process.
    log: where progress lines go.

  Returns:
    The report: ``config``, ``environment``, ``ceiling``, ``flops``,
    ``rows`` (one per leg and K), ``ratios`` and ``targets``.
  """
  started = time.time()
  load = [_load_average()]
  timeout = 3600.0

  def measure_ceiling():
    if not isolate:
      return measure_machine(config)
    spec = {"kind": "ceiling", "config": dataclasses.asdict(config)}
    measured = _in_subprocess(spec, config, timeout)
    if "error" in measured:
      raise RuntimeError(f"the matmul-ceiling worker failed: {measured['error']}")
    return measured

  first = measure_ceiling()
  env, flops = first["environment"], first["flops"]
  log(f"matmul ceiling {first['ceiling']['ceiling']:.1f} GFLOP/s (start of the run)")
  rows = []
  for k in config.ks:
    for leg in config.legs:
      if isolate:
        spec = {"kind": "leg", "leg": leg, "k": k, "config": dataclasses.asdict(config)}
        row = {"leg": leg, "k": k, **_in_subprocess(spec, config, timeout)}
      else:
        row = measure_leg(leg, k, config)
      rows.append(row)
      log(_row_line(row))
  last = measure_ceiling()
  log(f"matmul ceiling {last['ceiling']['ceiling']:.1f} GFLOP/s (end of the run)")
  ceiling = _best_ceiling(first["ceiling"], last["ceiling"])
  # Like the ceiling, each rung's better measurement counts: a busy machine only lowers it.
  steps_built_up = {n: max(v, last["breakdown"][n]) for n, v in first["breakdown"].items()}
  load.append(_load_average())
  report = {
    "config": dataclasses.asdict(config),
    "environment": env,
    "load_average_1min": {"start": load[0], "end": load[-1]},
    "busy": _busy(load + [r.get("load_1min") for r in rows], env["cores"]),
    "wall_s": time.time() - started,
    "isolated": isolate,
    "ceiling": ceiling,
    "breakdown": steps_built_up,
    "flops": flops,
    "rows": rows,
  }
  report["ratios"], report["targets"] = summarize(rows, ceiling["ceiling"])
  return report


def _load_average() -> float | None:
  return os.getloadavg()[0] if hasattr(os, "getloadavg") else None


def _busy(loads, cores: int) -> bool:
  """Whether other work competed for the CPU: a 1-minute load average above 1.5x the cores.

  The benchmark itself keeps up to ``cores`` threads busy, so a load above
  that means other processes ran too and every timing of the run is suspect.
  """
  return any(x is not None and x > 1.5 * cores for x in loads)


def _best_ceiling(start: dict[str, Any], end: dict[str, Any]) -> dict[str, Any]:
  """The better of two ceiling measurements, size by size (a busy machine only lowers them)."""
  best = lambda a, b: {n: max(a[n], b[n]) for n in a}
  return {
    "single": best(start["single"], end["single"]),
    "sharded": best(start["sharded"], end["sharded"]),
    "mlp_shaped": max(start["mlp_shaped"], end["mlp_shaped"]),
    "mlp_shaped_layouts": best(start["mlp_shaped_layouts"], end["mlp_shaped_layouts"]),
    "ceiling": max(start["ceiling"], end["ceiling"]),
    "devices": start["devices"],
    "at_start": start["ceiling"],
    "at_end": end["ceiling"],
  }


def _agreement(losses, reference, stable_lr: float = 0.01) -> float | None:
  """Largest |final val loss - the reference leg's| over members with rate <= ``stable_lr``.

  The legs train the same members from the same start on the same minibatches,
  so they agree to float32 rounding where no member diverges (lrlab freezes a
  diverged run, PyTorch does not, so large rates are left out).
  """
  if not losses or not reference or len(losses) != len(reference):
    return None
  rates = learning_rates(len(losses))
  diffs = [
    abs(a - b)
    for a, b, lr in zip(losses, reference, rates, strict=True)
    if lr <= stable_lr and a is not None and b is not None
  ]
  return max(diffs) if diffs else None


def summarize(rows, ceiling: float) -> tuple[list[dict[str, Any]], dict[str, Any]]:
  """Ratios of model-steps/s per K, each leg's fraction of ``ceiling``, and the targets.

  Returns:
    ``(ratios, targets)``: ``ratios`` has one entry per K with
    ``sweep_over_<leg>`` quotients of the reported ``model_steps_per_s``;
    ``targets`` checks the issue's three targets at K = 512 (or the largest K
    measured, marked as such).
  """
  rate = {(r["leg"], r["k"]): r["model_steps_per_s"] for r in rows if "model_steps_per_s" in r}
  reference = {}  # per K: the final losses of the vmap leg, else of the lrlab loop
  for leg in reversed(AGREEMENT_REFERENCES):
    reference.update({r["k"]: r.get("final_val_loss") for r in rows if r["leg"] == leg})
  for r in rows:
    if "gflops_per_s" in r:
      r["fraction_of_ceiling"] = r["gflops_per_s"] / ceiling
    r["max_abs_diff"] = _agreement(r.get("final_val_loss"), reference.get(r["k"]))
  ratios = []
  for k in sorted({r["k"] for r in rows}):
    entry = {"k": k}
    if ("sweep", k) in rate:
      for leg in LEGS[1:]:
        if (leg, k) in rate:
          entry[f"sweep_over_{leg}"] = rate["sweep", k] / rate[leg, k]
    ratios.append(entry)
  swept = [r for r in rows if r["leg"] == "sweep" and "model_steps_per_s" in r]
  if not swept:
    return ratios, {}
  k = TARGET_K if any(r["k"] == TARGET_K for r in swept) else max(r["k"] for r in swept)
  at = next(e for e in ratios if e["k"] == k)
  sweep = next(r for r in swept if r["k"] == k)
  measured = {
    "fraction_of_ceiling": sweep["fraction_of_ceiling"],
    "sweep_over_sequential": at.get("sweep_over_sequential"),
    "sweep_over_torch": at.get("sweep_over_torch"),
  }
  targets = {"k": k, "at_target_k": k == TARGET_K}
  for name, goal in TARGETS.items():
    value = measured[name]
    targets[name] = {
      "target": goal,
      "measured": value,
      "met": None if value is None else value >= goal,
    }
  return ratios, targets


# --- writing -------------------------------------------------------------------------------------


def _row_line(row: dict[str, Any]) -> str:
  if "model_steps_per_s" not in row:
    return f"  K={row['k']:<5d} {row['leg']:<13s} {row.get('skipped') or row.get('error')}"
  return (
    f"  K={row['k']:<5d} {row['leg']:<13s} {row['model_steps_per_s']:>11.0f} model-steps/s "
    f"{row['gflops_per_s']:7.1f} GFLOP/s  steady {row['steady_s']:.3f} s  "
    f"first {row['first_call_s']:.2f} s"
  )


def _fmt(value, spec: str) -> str:
  return "-" if value is None else format(value, spec)


def markdown(report: dict[str, Any]) -> str:
  """The report as Markdown: machine, ceiling, one row per (K, leg), ratios and targets."""
  env, ceiling, config = report["environment"], report["ceiling"], report["config"]
  load = report.get("load_average_1min") or {}
  warning = [
    "",
    "**Warning: other processes competed for the CPU during this run (load average above "
    "1.5x the cores; see the load column). Timings are unreliable; rerun on a quiet machine.**",
  ]
  lines = [
    f"Machine: {env['cpu']}, {env['cores']} cores, {_fmt(env['memory_gib'], '.0f')} GiB; "
    f"JAX {env['jax']} ({env['backend']}, {len(env['devices'])} device(s)); "
    f"PyTorch {env['torch'] or 'not installed'}. "
    f"Load average (1 min) {_fmt(load.get('start'), '.2f')} at the start, "
    f"{_fmt(load.get('end'), '.2f')} at the end.",
    *(warning if report.get("busy") else []),
    "",
    f"Workload: {TASK}, {config['steps']} steps, batch {config['batch_size']}, SGD momentum "
    f"{MOMENTUM}, K log-spaced rates in {list(LR_RANGE)}; "
    f"{report['flops']['per_model_step'] / 1e6:.2f} MFLOP per model-step (matmuls counted by "
    f"hand: {report['flops']['train_step'] / 1e6:.1f} per training step plus evaluation "
    f"amortized; XLA counts {_fmt(report['flops']['xla_train_step'], '.3g')} per training step).",
    "",
    f"Matmul ceiling: {ceiling['ceiling']:.1f} GFLOP/s (best of single-device "
    f"{max(ceiling['single'].values()):.1f} and sharded over {ceiling['devices']} device(s) "
    f"{max(ceiling['sharded'].values()):.1f}; measured at the start, {ceiling['at_start']:.1f}, "
    f"and at the end of the run, {ceiling['at_end']:.1f}). The MLP's own product, "
    f"{MLP_SHAPED_PER_DEVICE} members per device of 100x100 @ 100x100, sharded, reaches "
    f"{ceiling['mlp_shaped']:.1f}; by operand layout, "
    + ", ".join(f"{name} {v:.1f}" for name, v in ceiling["mlp_shaped_layouts"].items())
    + " (the weight gradient of a batch-major layer is A^T B).",
    *_breakdown_lines(report),
    "",
    "| K | leg | devices | compile s | steady s | model-steps/s | GFLOP/s | of ceiling "
    "| peak RSS MiB | leg RSS MiB | recompiles | Δ val loss | load |",
    "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
  ]
  for r in report["rows"]:
    if "model_steps_per_s" not in r:
      reason = r.get("skipped") or r.get("error", "").splitlines()[-1:]
      lines.append(f"| {r['k']} | {LEG_TITLES[r['leg']]} | {reason} |||||||||||")
      continue
    lines.append(
      f"| {r['k']} | {r['title']} | {r['devices_used']} | {_fmt(r['compile_s'], '.2f')} "
      f"| {r['steady_s']:.3f} | {r['model_steps_per_s']:,.0f} | {r['gflops_per_s']:.1f} "
      f"| {r['fraction_of_ceiling']:.0%} | {_fmt(r['peak_rss_mib'], '.0f')} "
      f"| {_fmt(r['leg_rss_mib'], '.0f')} | {r['recompiles']} "
      f"| {_fmt(r.get('max_abs_diff'), '.1e')} | {_fmt(r.get('load_1min'), '.1f')} |"
    )
  notes = [f"- {r['leg']} K={r['k']}: {r['note']}" for r in report["rows"] if r.get("note")]
  if notes:
    lines += ["", *notes]
  legs = [leg for leg in LEGS[1:] if any(f"sweep_over_{leg}" in e for e in report["ratios"])]
  if legs:
    lines += ["", "| K | " + " | ".join(f"sweep / {LEG_TITLES[g]}" for g in legs) + " |"]
    lines.append("|---:|" + "---:|" * len(legs))
    for e in report["ratios"]:
      cells = [_fmt(e.get(f"sweep_over_{g}"), ".2f") + "x" for g in legs]
      lines.append(f"| {e['k']} | " + " | ".join(cells) + " |")
  targets = report["targets"]
  if targets:
    where = f"K={targets['k']}" + ("" if targets["at_target_k"] else f" (not {TARGET_K})")
    lines += ["", f"| target at {where} | goal | measured | met |", "|---|---:|---:|---|"]
    for name in TARGETS:
      t = targets[name]
      goal = f"{t['target']:.0%}" if name == "fraction_of_ceiling" else f"{t['target']}x"
      value = _fmt(t["measured"], ".0%" if name == "fraction_of_ceiling" else ".2f")
      met = {True: "yes", False: "**no**", None: "-"}[t["met"]]
      lines.append(f"| {name} | {goal} | {value} | {met} |")
  return "\n".join(lines) + "\n"


def _breakdown_lines(report: dict[str, Any]) -> list[str]:
  """The step built up rung by rung (:func:`breakdown`), as a Markdown table."""
  rungs = report.get("breakdown")
  if not rungs:
    return []
  devices = report["ceiling"]["devices"]
  lines = [
    "",
    f"Where the time goes: the training step built up, {MLP_SHAPED_PER_DEVICE} members per "
    f"device on {devices} device(s), {report['config']['steps']} steps.",
    "",
    "| step | GFLOP/s | of ceiling |",
    "|---|---:|---:|",
  ]
  for name, title in BREAKDOWN.items():
    value = rungs[name]
    lines.append(f"| {title} | {value:.1f} | {value / report['ceiling']['ceiling']:.0%} |")
  return lines


def plot(report: dict[str, Any], path: str) -> None:
  """Model-steps/s against K for each leg, log-log, with the matmul ceiling's equivalent; beside
  it, when measured, the breakdown's rungs and the sweep in GFLOP/s against the ceiling."""
  import matplotlib

  matplotlib.use("Agg")
  import matplotlib.pyplot as plt
  import matplotlib.ticker

  rungs = report.get("breakdown")
  fig, axes = plt.subplots(
    1, 2 if rungs else 1, figsize=(13 if rungs else 6.5, 4.8), layout="constrained"
  )
  ax = axes[0] if rungs else axes
  for leg in LEGS:
    points = sorted((r["k"], r["model_steps_per_s"]) for r in report["rows"]
                    if r["leg"] == leg and "model_steps_per_s" in r)  # fmt: skip
    if points:
      ax.plot(*zip(*points, strict=True), marker="o", label=LEG_TITLES[leg])
  ceiling = report["ceiling"]["ceiling"]
  per_step = report["flops"]["per_model_step"]
  ax.axhline(ceiling * 1e9 / per_step, color="k", ls="--", lw=1, label="matmul ceiling")
  backend = report["environment"]["backend"]
  ax.set(xscale="log", yscale="log", xlabel="K (learning rates trained)",
         ylabel="model-steps / s", title=f"{TASK}: throughput ({backend})")  # fmt: skip
  ks = sorted({r["k"] for r in report["rows"]})
  ax.set_xticks(ks, [str(k) for k in ks])
  ax.xaxis.set_minor_locator(matplotlib.ticker.NullLocator())
  ax.grid(True, which="both", alpha=0.3)
  ax.legend(fontsize="small")
  if rungs:
    _plot_breakdown(axes[1], report)
  fig.savefig(path, dpi=120)
  plt.close(fig)


def _plot_breakdown(ax, report: dict[str, Any]) -> None:
  """Horizontal bars: each rung of :func:`breakdown`, then the sweep at the target's K."""
  ceiling = report["ceiling"]["ceiling"]
  labels = [textwrap.fill(title, 34) for title in BREAKDOWN.values()]
  values = [report["breakdown"][name] for name in BREAKDOWN]
  colors = ["0.6"] * len(values)
  k = (report.get("targets") or {}).get("k")
  sweep = next((r for r in report["rows"] if r["leg"] == "sweep" and r["k"] == k), None)
  if sweep is not None and "gflops_per_s" in sweep:
    labels.append(f"lrlab.sweep.run, K={k}")
    values.append(sweep["gflops_per_s"])
    colors.append("C0")
  y = range(len(values))[::-1]
  ax.barh(list(y), values, color=colors)
  ax.set_yticks(list(y), labels, fontsize="small")
  for position, value in zip(y, values, strict=True):
    ax.text(value, position, f" {value / ceiling:.0%}", va="center", fontsize="small")
  ax.axvline(ceiling, color="k", ls="--", lw=1, label="matmul ceiling")
  goal = TARGETS["fraction_of_ceiling"] * ceiling
  ax.axvline(goal, color="C3", ls=":", lw=1.5, label=f"{TARGETS['fraction_of_ceiling']:.0%} target")
  ax.set(xlabel="GFLOP/s (hand-counted matmul FLOPs)", title="Where the time goes")
  ax.set_xlim(0, 1.15 * max(ceiling, *values))
  ax.legend(fontsize="small", loc="lower right")


def write_report(report: dict[str, Any], out: str) -> dict[str, str]:
  """Write ``report.json``, ``report.md`` and ``throughput.png`` under ``out``; their paths."""
  os.makedirs(out, exist_ok=True)
  paths = {name: os.path.join(out, name) for name in ("report.json", "report.md", "throughput.png")}
  with open(paths["report.json"], "w") as f:
    json.dump(report, f, indent=2)
  with open(paths["report.md"], "w") as f:
    f.write(markdown(report))
  plot(report, paths["throughput.png"])
  return paths


# --- command line --------------------------------------------------------------------------------


def parse_args(argv=None) -> argparse.Namespace:
  """The command line; stdlib only, so it runs before JAX is imported."""
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--ks", default=None, help="comma-separated K values [1,8,64,512]")
  parser.add_argument("--steps", type=int, default=None, help="updates per member [200]")
  parser.add_argument("--batch-size", type=int, default=100)
  parser.add_argument("--legs", default=",".join(LEGS), help=f"comma-separated, from {LEGS}")
  parser.add_argument("--devices", type=int, default=None, help="host devices [every core]")
  parser.add_argument("--threads", type=int, default=None, help="PyTorch threads [every core]")
  parser.add_argument("--repeats", type=int, default=5, help="steady-state timings, best counts")
  parser.add_argument("--budget", type=float, default=30.0, help="seconds of repeats per (leg, K)")
  parser.add_argument("--seed", type=int, default=0)
  parser.add_argument("--quick", action="store_true", help="smoke run: K in {1, 8}, 20 steps")
  parser.add_argument("--in-process", action="store_true", help="no subprocess per (leg, K)")
  parser.add_argument("--out", default="results/benchmark", help="folder for the report")
  parser.add_argument("--worker", default=None, help=argparse.SUPPRESS)
  args = parser.parse_args(argv)
  legs = tuple(s for s in args.legs.split(",") if s)
  unknown = sorted(set(legs) - set(LEGS))
  if unknown:
    parser.error(f"--legs must be taken from {LEGS}; got {unknown}")
  args.legs = legs
  return args


def config_from_args(args: argparse.Namespace) -> Config:
  """The :class:`Config` the command line asks for."""
  cores = host_cores()
  ks = args.ks or ("1,8" if args.quick else "1,8,64,512")
  return Config(
    ks=tuple(int(k) for k in ks.split(",")),
    steps=args.steps or (20 if args.quick else 200),
    batch_size=args.batch_size,
    legs=args.legs,
    devices=args.devices or cores,
    threads=args.threads or cores,
    repeats=2 if args.quick else args.repeats,
    budget_s=args.budget,
    seed=args.seed,
  )


def main(argv=None) -> None:
  args = parse_args(argv)
  if args.worker:
    _worker_main(json.loads(args.worker))
    return
  config = config_from_args(args)
  set_host_devices(config.devices)  # before anything imports JAX
  report = run_benchmark(config, isolate=not args.in_process)
  paths = write_report(report, args.out)
  print(markdown(report))
  print("wrote " + ", ".join(paths.values()))


if __name__ == "__main__":
  main()
