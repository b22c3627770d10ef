"""What bounds the sweep on ``lm-transformer`` (issue 17): its training step, timed in one process.

The benchmark's model (width 64, depth 2, 4 heads, context 64, vocabulary 32) and batch (32
sequences of the task's own language), Adam, ``steps`` updates in one ``lax.scan`` per call:
the single-member program is ``jit(run)``, the K-member one ``jit(vmap(run))`` (the sweep's
program: parameters, Adam state and rate per member, the minibatch shared). Every leg records
the wall time and the process's CPU time per member-step over interleaved rounds (one call of
each leg per round, so a burst of load from other processes weighs on all of them), with the
1-minute load average; on a shared machine the CPU time is the steadier of the two.

- ``attention``: :class:`lrlab.models.transformer.CausalSelfAttention` as it is (q, k, v as
  three products straight into ``(..., heads, T, d)``) against the formula it replaced (one
  product split into q, k, v, the heads' axis moved by the per-head einsums: ``split_qkv``) and
  rewrites of that one (an additive mask constant, the heads' axis moved before the products,
  ``jax.nn.dot_product_attention(implementation="xla")``), at K = 1, 16 and 64 members, with
  the largest difference of the trained parameters from the current one's;
- ``members``: the current step at K = 1, 2, 4, 16, 64 (does batching members make a
  member-step cheaper?);
- ``devices``: two host devices, as the sweep uses them: two members one after the other on one
  device (the loop) against one member per device at once, and two vmapped members per device;
- ``gemm``: the model's own products (the qkv, MLP and per-head attention shapes), one
  member's against K members' batched products (``jnp.einsum`` with a member axis, as ``vmap``
  makes them), each run ``reps`` times inside one program.

  PYTHONPATH=. python scripts/transformer_step_speed.py \
    --out benchmarks/cpu-2core/transformer_step.json

(For the ``gemm`` legs a "member-step" is one call's products of one member; their figure is
GFLOP/s, per wall second and per CPU second.)
"""

import os

if __name__ == "__main__":  # two host devices for the "devices" legs (not when a test imports it)
  os.environ["XLA_FLAGS"] = (
    os.environ.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=2"
  ).strip()

import platform
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax

from lrlab.benchmark.tasks import SPECS, build_task
from lrlab.benchmark.workload import write_json
from lrlab.cli.common import Parser, positive_int
from lrlab.models.transformer import CausalSelfAttention

CURRENT = CausalSelfAttention.__call__


def _heads(self, h):
  *batch, length, width = h.shape
  q, k, v = jnp.split(self.qkv(h), 3, axis=-1)
  split = lambda a: a.reshape(*batch, length, self.heads, width // self.heads)
  return split(q), split(k), split(v), batch, length, width


def split_qkv(self, h):
  """The attention before issue 17's layout: ``h @ kernel + bias`` split into q, k, v."""
  q, k, v, batch, length, width = _heads(self, h)
  scores = jnp.einsum("...thd,...shd->...hts", q, k) / self.temperature
  causal = jnp.tril(jnp.ones((length, length), bool))
  scores = jnp.where(causal, scores, jnp.finfo(scores.dtype).min)
  weights = self.drop(jax.nn.softmax(scores, axis=-1))
  mixed = jnp.einsum("...hts,...shd->...thd", weights, v).reshape(*batch, length, width)
  return self.out(mixed)


def additive_mask(self, h):
  """The mask as a constant added to the scores (0 or the float32 minimum)."""
  q, k, v, batch, length, width = _heads(self, h)
  scores = jnp.einsum("...thd,...shd->...hts", q, k) / self.temperature
  mask = np.where(np.tril(np.ones((length, length), bool)), 0, np.finfo(np.float32).min)
  weights = self.drop(jax.nn.softmax(scores + mask.astype(np.float32), axis=-1))
  mixed = jnp.einsum("...hts,...shd->...thd", weights, v).reshape(*batch, length, width)
  return self.out(mixed)


def heads_major(self, h):
  """q, k, v moved to (..., heads, T, d) in one transpose, the products batched over heads."""
  *batch, length, width = h.shape
  qkv = self.qkv(h).reshape(*batch, length, 3, self.heads, width // self.heads)
  qkv = jnp.moveaxis(qkv, (-3, -2), (0, -3))
  scores = jnp.einsum("...htd,...hsd->...hts", qkv[0], qkv[1]) / self.temperature
  causal = jnp.tril(jnp.ones((length, length), bool))
  scores = jnp.where(causal, scores, jnp.finfo(scores.dtype).min)
  weights = self.drop(jax.nn.softmax(scores, axis=-1))
  mixed = jnp.einsum("...hts,...hsd->...htd", weights, qkv[2])
  return self.out(jnp.moveaxis(mixed, -3, -2).reshape(*batch, length, width))


def dot_product_attention(self, h):
  """``jax.nn.dot_product_attention`` (XLA's implementation, causal, scale 1 / temperature)."""
  q, k, v, batch, length, width = _heads(self, h)
  flat = lambda a: a.reshape(-1, *a.shape[-3:])
  mixed = jax.nn.dot_product_attention(
    flat(q), flat(k), flat(v), scale=float(1 / self.temperature), is_causal=True,
    implementation="xla",
  )  # fmt: skip
  return self.out(mixed.reshape(*batch, length, width))


VARIANTS = {"current": CURRENT, "split_qkv": split_qkv, "additive_mask": additive_mask,
            "heads_major": heads_major, "dot_product_attention": dot_product_attention}  # fmt: skip


def _program(task, batch, k: int, steps: int, variant: str):
  """``jit(run)`` (k = 1) or ``jit(vmap(run))`` of ``steps`` Adam updates, and its arguments."""

  def run(params, opt_state, lr):
    tx = optax.adam(lr)

    def body(carry, _):
      params, opt_state = carry
      grads = jax.grad(lambda p: task.loss(p, {}, batch, jax.random.key(1))[0])(params)
      updates, opt_state = tx.update(grads, opt_state, params)
      return (optax.apply_updates(params, updates), opt_state), None

    return jax.lax.scan(body, (params, opt_state), None, length=steps)[0]

  params, _ = task.init(jax.random.key(0))
  args = (params, optax.adam(1e-3).init(params), jnp.float32(1e-3))
  fn = jax.jit(run)
  if k > 1:
    fn = jax.jit(jax.vmap(run))
    args = jax.tree.map(lambda a: jnp.broadcast_to(a, (k, *jnp.shape(a))), args)
  CausalSelfAttention.__call__ = VARIANTS[variant]
  try:
    out = jax.block_until_ready(fn(*args))  # traced with this variant, and compiled
  finally:
    CausalSelfAttention.__call__ = CURRENT
  return fn, args, out


def _gemm(m: int, c: int, n: int, count: int, k: int):
  """``reps`` products (k members x ``count`` of ``(m, c) @ (c, n)``) in one program; FLOPs."""
  a = jax.random.normal(jax.random.key(0), (k, count, m, c))
  b = jax.random.normal(jax.random.key(1), (k, count, c, n))
  reps = max(2, int(4e8 // (2 * k * count * m * c * n)))

  def f(a, b):
    def body(_, acc):
      return acc + jnp.einsum("Kbmc,Kbcn->Kbmn", a + acc, b)[:1, :1, :1, :1] * 1e-30

    return jax.lax.fori_loop(0, reps, body, jnp.zeros((1, 1, 1, 1)))

  fn = jax.jit(f)
  jax.block_until_ready(fn(a, b))
  return (lambda: fn(a, b)), 2 * k * count * m * c * n * reps


GEMMS = {"qkv (2048x64)@(64x192)": (2048, 64, 192, 1), "up (2048x64)@(64x256)": (2048, 64, 256, 1),
         "down (2048x256)@(256x64)": (2048, 256, 64, 1),
         "q k^T 128x (64x16)@(16x64)": (64, 16, 64, 128),
         "weights v 128x (64x64)@(64x16)": (64, 64, 16, 128)}  # fmt: skip


def _timed(call) -> tuple[float, float]:
  cpu, wall = time.process_time(), time.perf_counter()
  jax.block_until_ready(call())
  return time.perf_counter() - wall, time.process_time() - cpu


def main(argv=None) -> dict:
  parser = Parser(description=__doc__.split("\n")[0])
  parser.add_argument(
    "--out",
    default="results/transformer_step.json",
    help="the report; benchmarks/cpu-2core/transformer_step.json is the committed one",
  )
  parser.add_argument("--rounds", type=positive_int, default=5)
  parser.add_argument("--steps", type=positive_int, default=4, help="updates per call at K <= 4")
  parser.add_argument("--tiny", action="store_true", help="the tests' toy model, K <= 4")
  args = parser.parse_args(argv)
  spec = SPECS["lm-transformer"]
  task = build_task(spec, tiny=args.tiny)
  x, y = task.split("train")
  batch = (jnp.asarray(x[: spec.batch_size]), jnp.asarray(y[: spec.batch_size]))
  big = (1, 4) if args.tiny else (1, 16, 64)
  steps_at = lambda k: args.steps if k <= 4 else max(1, args.steps // 4)
  legs, started, load_start = {}, time.time(), os.getloadavg()[0]

  def add(group, name, members, steps, call, flops=None):
    legs[f"{group}|{name}"] = {"group": group, "name": name, "members": members, "steps": steps,
                               "flops": flops, "call": call, "wall_s": [], "cpu_s": []}  # fmt: skip

  outs = {}
  for k in big:
    for variant in VARIANTS:
      fn, a, outs[(variant, k)] = _program(task, batch, k, steps_at(k), variant)
      add("attention", f"{variant} K={k}", k, steps_at(k), lambda fn=fn, a=a: fn(*a))
  for k in (2, 4) if not args.tiny else (2,):
    fn, a, _ = _program(task, batch, k, steps_at(k), "current")
    add("members", f"K={k}", k, steps_at(k), lambda fn=fn, a=a: fn(*a))
  devices = (jax.devices() * 2)[:2]  # one device twice where XLA_FLAGS gave one
  one, a1, _ = _program(task, batch, 1, args.steps, "current")
  two, a2, _ = _program(task, batch, 2, args.steps, "current")
  on = [jax.device_put(a1, d) for d in devices]
  on2 = [jax.device_put(a2, d) for d in devices]
  add("devices", "loop: 2 members one after the other, device 0", 2, args.steps,
      lambda: [jax.block_until_ready(one(*on[0])) for _ in range(2)])  # fmt: skip
  add("devices", "2 members at once, one per device", 2, args.steps,
      lambda: [one(*on[0]), one(*on[1])])  # fmt: skip
  add("devices", "4 members at once, 2 vmapped per device", 4, args.steps,
      lambda: [two(*on2[0]), two(*on2[1])])  # fmt: skip
  for name, (m, c, n, count) in GEMMS.items():
    for k in (1, 4, 16) if not args.tiny else (1, 4):
      call, flops = _gemm(m, c, n, count, k)
      add("gemm", f"{name} K={k}", k, 1, call, flops)
  for leg in legs.values():
    jax.block_until_ready(leg["call"]())  # a device's first call with committed arguments compiles
  for _ in range(args.rounds):
    for leg in legs.values():
      wall, cpu = _timed(leg["call"])
      leg["wall_s"].append(wall)
      leg["cpu_s"].append(cpu)
  for (variant, k), out in outs.items():
    current = outs[("current", k)][0]
    diffs = jax.tree.map(lambda a, b: float(jnp.max(jnp.abs(a - b))), out[0], current)
    legs[f"attention|{variant} K={k}"]["max_param_diff"] = max(jax.tree.leaves(diffs))
  for leg in legs.values():
    leg.pop("call")
    per = leg["members"] * leg["steps"]
    leg["wall_ms_per_member_step"] = 1e3 * float(np.median(leg["wall_s"])) / per
    leg["cpu_ms_per_member_step"] = 1e3 * float(np.median(leg["cpu_s"])) / per
    if leg["flops"]:
      leg["gflops_per_s"] = leg["flops"] / float(np.median(leg["wall_s"])) / 1e9
      leg["gflops_per_cpu_s"] = leg["flops"] / float(np.median(leg["cpu_s"])) / 1e9
  report = {
    "machine": {"cpu": platform.processor() or platform.machine(), "cores": os.cpu_count(),
                "jax": jax.__version__, "platform": platform.platform()},
    "settings": {"rounds": args.rounds, "steps": args.steps, "tiny": args.tiny,
                 "batch_size": spec.batch_size, "model": dict(spec.tiny if args.tiny else ())
                 or {"width": 64, "depth": 2, "heads": 4, "context": 64, "vocab": 32}},
    "load_average_1min": {"start": load_start, "end": os.getloadavg()[0]},
    "wall_s": time.time() - started,
    "legs": list(legs.values()),
  }  # fmt: skip
  write_json(report, args.out, indent=1)
  for leg in legs.values():
    extra = f", {leg['gflops_per_s']:.1f} GFLOP/s" if leg["flops"] else ""
    print(f"{leg['group']:9s} {leg['name']:44s} wall {leg['wall_ms_per_member_step']:8.2f} ms, "
          f"CPU {leg['cpu_ms_per_member_step']:8.2f} ms per member-step{extra}")  # fmt: skip
  return report


if __name__ == "__main__":
  main()
