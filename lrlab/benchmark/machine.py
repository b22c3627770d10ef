"""What the machine can do, measured beside the legs: the float32 matmul ceiling, the training
step built up from its matmuls to lrlab's full step, and the machine's description."""

import glob
import math
import os
import platform
import time
from pathlib import Path
from typing import Any

from lrlab.benchmark.workload import (
  LAYERS,
  MLP_SHAPED_PER_DEVICE,
  TASK,
  Config,
  analytic_flops,
  host_cores,
  learning_rates,
  make_tx,
  member_sharding,
  workload,
)

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


def matmul_ceiling(
  sizes=(256, 512, 1024, 2048), *, repeats: int = 5, diagnostics: bool = True
) -> dict[str, Any]:
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
    diagnostics: also time the MLP-shaped products (``mlp_shaped``,
      ``mlp_shaped_layouts``); without, only ``single``, ``sharded`` and ``ceiling``.

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
    sharding = member_sharding(b)
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
  ceiling = max(*single.values(), *sharded.values())
  if not diagnostics:
    return {"single": single, "sharded": sharded, "ceiling": ceiling, "devices": count}
  return {
    "single": single,
    "sharded": sharded,
    "mlp_shaped": batched(MLP_SHAPED_PER_DEVICE * count, 100, 100, 100),
    "mlp_shaped_layouts": {
      name: batched(MLP_SHAPED_PER_DEVICE * count, 100, 100, 100, form)
      for name, form in OPERAND_LAYOUTS.items()
    },
    "ceiling": ceiling,
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
    applied-rate record, one evaluation of the val and test sets at the end), handed the
    minibatch indices drawn once, as the sweep hands them to its chunks.

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
  sharding = member_sharding(members)
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
    tx = make_tx({"lr": lr}) if momentum else optax.sgd(lr)

    def step(carry, rows):
      params, state = carry
      grads = jax.grad(lambda p: task.loss(p, model_state, (x[rows], y[rows]), None)[0])(params)
      updates, state = tx.update(grads, state, params)
      return (optax.apply_updates(params, updates), state), None

    return jax.lax.scan(step, (params, tx.init(params)), order)[0]

  trainer = lrlab.train.Trainer(task, steps=steps, batch_size=batch_size, eval_every=steps)

  key = jax.random.key(config.seed)
  init = lambda lr: trainer.init(make_tx({"lr": lr}), key)[0]
  states = jax.jit(jax.vmap(init))(rates)  # outside the timing: it evaluates the training set
  rows = trainer.minibatch_rows(key, 0, 1)  # drawn once for all members, as the sweep does
  segment = lambda lr, state: trainer.segment(make_tx({"lr": lr}), key, state, 0, 1, rows=rows)

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


#: Timings per size of the ceiling measured next to each leg (:func:`ceiling_next_to_leg`).
NEXT_TO_LEG_REPEATS = 3


def ceiling_next_to_leg(config: Config) -> float:
  """The matmul ceiling (GFLOP/s, the better of single-device and sharded, as
  :func:`matmul_ceiling`'s ``ceiling``) measured just before or just after a leg, in the leg's
  own process: a virtual machine's speed drifts during a run (246 GFLOP/s at the start of a
  run and 170 at its end, BENCHMARKS.md), so a leg's fraction is honest only against the
  ceiling measured next to it. :data:`NEXT_TO_LEG_REPEATS` timings per size."""
  sizes = config.ceiling_sizes
  return matmul_ceiling(sizes, repeats=NEXT_TO_LEG_REPEATS, diagnostics=False)["ceiling"]


def measure_machine(config: Config) -> dict[str, Any]:
  """What the run measures besides the legs: the ceiling, the breakdown, the machine, the FLOPs."""
  return {
    "ceiling": matmul_ceiling(config.ceiling_sizes),
    "breakdown": breakdown(config),
    "environment": environment(),
    "flops": workload(config),
  }


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
    "caches": cpu_caches(),
    "cores": host_cores(),
    "memory_gib": memory,
    "platform": platform.platform(),
    "python": platform.python_version(),
    "jax": jax.__version__,
    "backend": jax.default_backend(),
    "devices": [str(d) for d in jax.devices()],
    "torch": torch_version,
  }


#: Linux's per-CPU sysfs folders (``cpu0``, ``cpu1``, ...).
SYSFS_CPUS = "/sys/devices/system/cpu"


def cpu_caches(root: str | None = None) -> str | None:
  """The data caches of the first core this process may run on (its affinity), as sysfs reports
  them, e.g. ``"L1d 48K, L2 2048K, L3 307200K (shared by 0-1)"``, in sysfs's index order
  (``index2`` before ``index10``); ``None`` where sysfs says nothing. ``root``: a CPU's
  ``cache`` folder instead. On a hybrid CPU the cores differ, so the first allowed core is
  read, not ``cpu0``. A VM's sysfs may report the host's cache, not the share its cores get:
  fractions of a ceiling need not carry across machines."""
  if root is None:
    allowed = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else {0}
    root = os.path.join(SYSFS_CPUS, f"cpu{min(allowed, default=0)}", "cache")
  number = lambda path: int("".join(c for c in os.path.basename(path) if c.isdigit()) or 0)
  cpu = os.path.basename(os.path.dirname(os.path.normpath(root)))  # "cpu2": its own CPU is "2"
  cpu = cpu[3:] if cpu.startswith("cpu") and cpu[3:].isdigit() else "0"
  entries = []
  for index in sorted(glob.glob(os.path.join(root, "index*")), key=number):
    try:
      read = lambda name, index=index: Path(index, name).read_text().strip()
      kind, level, size, shared = read("type"), read("level"), read("size"), read("shared_cpu_list")
    except OSError:
      continue
    if kind == "Instruction":
      continue
    name = f"L{level}" + ("d" if kind == "Data" else "")
    entries.append(f"{name} {size}" + ("" if shared == cpu else f" (shared by {shared})"))
  return ", ".join(entries) or None
