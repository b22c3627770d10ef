"""Where ``lm-transformer``'s training step spends its time (issue 17): per-thunk XLA:CPU times.

Traces ``steps`` Adam updates (one ``lax.scan``; K members vmapped when ``--k`` > 1) of the
benchmark's model and batch (``scripts/benchmark.py --tasks lm-transformer``) with
``jax.profiler.trace``. XLA:CPU's thunk runtime records one event per executed thunk (a dot, a
loop fusion, a YNNPACK fusion, a copy), named after an instruction of the optimized HLO; that
instruction's ``stack_frame_id`` (the StackFrames / FileLocations tables of the HLO text) gives
the source line and column of the JAX call that made it. Each thunk's time is added to that
call (``file:line:column`` and the line's code), split by pass (``transpose(jvp(...))`` in the
op name: backward) and kind (a dot or a fusion holding one: GEMM, batched when it has batch
dimensions; only copies, transposes, concatenations: layout; else elementwise).

  PYTHONPATH=. python scripts/transformer_profile.py --k 1
  PYTHONPATH=. python scripts/transformer_profile.py --k 16 --top 30
"""

import collections
import glob
import gzip
import json
import linecache
import os
import re
import tempfile

import jax
import jax.numpy as jnp
import optax

from lrlab.benchmark.tasks import SPECS, build_task
from lrlab.cli.common import Parser, positive_int

_LAYOUT = {"copy", "transpose", "concatenate", "slice", "reshape", "dynamic-slice"}
_SKIP = ("ThunkExecutor", "$", "PjitFunction", "CommonPjRt", "while", "ThreadpoolListener")


def hlo_instructions(text: str) -> dict:
  """Optimized HLO text to ``{name: {"op", "loc", "body"}}``; ``loc`` = (path, line, column)."""
  table = lambda name: re.search(rf"^{name}\n(.*?)\n\n", text, re.S | re.M)[1].splitlines()
  files = {int(r.split()[0]): r.split(None, 1)[1].strip('"') for r in table("FileNames")}
  locations = {}
  for row in table("FileLocations"):
    m = re.match(r"(\d+) \{file_name_id=(\d+) function_name_id=\d+ line=(\d+) end_line=\d+ "
                 r"column=(\d+)", row)  # fmt: skip
    locations[int(m[1])] = (files[int(m[2])], int(m[3]), int(m[4]))
  frames = {}
  for row in table("StackFrames"):
    m = re.match(r"(\d+) \{file_location_id=(\d+)", row)
    frames[int(m[1])] = locations[int(m[2])]
  bodies = {
    m[1]: m[2] for m in re.finditer(r"^%?([\w.\-]+) [^\n]*\{\n(.*?)\n\}", text, re.S | re.M)
  }
  out = {}
  for row in text.splitlines():
    m = re.match(r"\s*(?:ROOT )?%?([\w.\-]+) = \S+ [\w\-]+\(", row)
    if not m:
      continue
    op, frame = re.search(r'op_name="([^"]*)"', row), re.search(r"stack_frame_id=(\d+)", row)
    calls = re.search(r"calls=%([\w.\-]+)", row)
    out[m[1]] = {"op": op[1] if op else "", "loc": frames.get(int(frame[1])) if frame else None,
                 "body": bodies.get(calls[1], row) if calls else row}  # fmt: skip
  return out


def kind(body: str) -> str:
  """A thunk's kind from its (fused) HLO: GEMM, batched GEMM, layout or elementwise."""
  if " dot(" in body:
    return "batched GEMM" if "lhs_batch_dims" in body else "GEMM"
  ops = set(re.findall(r"= \S+ ([\w\-]+)\(", body)) - {"parameter", "bitcast", "constant"}
  return "layout" if ops and ops <= _LAYOUT | {"broadcast"} else "elementwise"


def profile(k: int, steps: int) -> tuple[dict, float]:
  """Per-call thunk milliseconds per step of ``k`` members (per member when k > 1)."""
  spec = SPECS["lm-transformer"]
  task = build_task(spec)
  x, y = task.split("train")
  batch = (jnp.asarray(x[: spec.batch_size]), jnp.asarray(y[: spec.batch_size]))

  def run(params, opt_state, lr):
    tx = optax.adam(lr)

    def body(carry, _):
      grads = jax.grad(lambda p: task.loss(p, {}, batch, jax.random.key(1))[0])(carry[0])
      updates, opt_state = tx.update(grads, carry[1], carry[0])
      return (optax.apply_updates(carry[0], updates), opt_state), None

    return jax.lax.scan(body, (params, opt_state), None, length=steps)[0]

  params, _ = task.init(jax.random.key(0))
  args = (params, optax.adam(1e-3).init(params), jnp.float32(1e-3))
  fn = jax.jit(run)
  if k > 1:
    fn = jax.jit(jax.vmap(run))
    args = jax.tree.map(lambda a: jnp.broadcast_to(a, (k, *jnp.shape(a))), args)
  jax.block_until_ready(fn(*args))
  instructions = hlo_instructions(fn.lower(*args).compile().as_text())
  with tempfile.TemporaryDirectory() as folder:
    with jax.profiler.trace(folder):
      jax.block_until_ready(fn(*args))
    path = glob.glob(os.path.join(folder, "**", "*.trace.json.gz"), recursive=True)[0]
    with gzip.open(path) as f:
      events = json.load(f)["traceEvents"]
  times, total = collections.Counter(), 0.0
  for event in events:
    name = event.get("name", "")
    if event.get("ph") != "X" or name.startswith(_SKIP) or name not in instructions:
      continue
    info = instructions[name]
    ms = event.get("dur", 0) / 1e3 / steps / k
    where = "(no source)"
    if info["loc"]:
      file, line, column = info["loc"]
      code = linecache.getline(file, line).strip()[:60]
      where = f"{os.path.basename(file)}:{line}:{column} {code}"
    passed = "bwd" if "transpose(jvp" in info["op"] else "fwd"
    times[(where, passed, kind(info["body"]))] += ms
    total += ms
  return times, total


def main(argv=None) -> None:
  parser = Parser(description=__doc__.split("\n")[0])
  parser.add_argument("--k", type=positive_int, default=1, help="members (1: the plain step)")
  parser.add_argument("--steps", type=positive_int, default=10)
  parser.add_argument("--top", type=positive_int, default=40)
  args = parser.parse_args(argv)
  times, total = profile(args.k, args.steps)
  print(f"thunk time per member-step: {total:.2f} ms (K={args.k}, load {os.getloadavg()[0]:.1f})")
  kinds = collections.Counter()
  for (_, _, kind_), ms in times.items():
    kinds[kind_] += ms
  for kind_, ms in kinds.most_common():
    print(f"  {kind_:13s} {ms:7.2f} ms {100 * ms / total:4.0f}%")
  print("| ms | share | pass | kind | call |\n|---:|---:|---|---|---|")
  for (where, passed, kind_), ms in times.most_common(args.top):
    print(f"| {ms:.2f} | {100 * ms / total:.0f}% | {passed} | {kind_} | `{where}` |")


if __name__ == "__main__":
  main()
