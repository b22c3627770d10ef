"""Where a sweep's time goes, chunk by chunk (issue 16): ``lrlab.sweep.run`` on the benchmark
MLP at (K, chunk size) settings, timed whole and taken apart in one process, interleaved.

For each setting, one round times the whole ``lrlab.sweep.run`` call, then the engine's chunk
loop re-enacted with its own compiled programs, stage by stage: the step-0 initialization
(``init_state``), the step-0 evaluation (``first_evaluation``: training, val and test sets),
the segment (all ``steps`` steps and the final val/test evaluation), its transfer to the
host, the divergence count, and the history. The val/test evaluation alone is timed on its own
program, and so is the segment called again on a warm state (the chunk's state already in
cache). The rest of the call (argument checks, the chunk-size lookup, the fingerprint,
the final assembly) is the whole call less the chunks. Medians over ``--rounds`` rounds,
settings interleaved so load weighs alike; the load average is recorded.

  PYTHONPATH=. python scripts/profile_sweep.py --out results/profile_sweep.json
"""

import argparse
import json
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

from lrlab.benchmark.workload import host_cores, set_host_devices
from lrlab.cli.common import Parser, positive_int

STAGES = ("init", "segment", "to_host", "diverged", "history")


def main(argv=None) -> int:
  parser = Parser(description=__doc__.splitlines()[0])
  parser.add_argument("--settings", default="64:16,512:32,512:16,64:32", help="K:chunk,...")
  parser.add_argument("--steps", type=positive_int, default=200)
  parser.add_argument("--rounds", type=positive_int, default=3)
  parser.add_argument("--out", default=None)
  args = parser.parse_args(argv)
  try:  # read before anything runs: a typo used to end in a traceback after the first setting
    settings = [tuple(positive_int(v) for v in s.split(":")) for s in args.settings.split(",")]
  except argparse.ArgumentTypeError:
    settings = []
  if not settings or any(len(s) != 2 for s in settings):
    parser.error(f"--settings takes K:CHUNK,... of positive integers; got {args.settings!r}")
  set_host_devices(host_cores())

  import jax
  import numpy as np

  import lrlab
  from lrlab.benchmark.workload import learning_rates, make_tx
  from lrlab.sweep import devices as devices_lib
  from lrlab.sweep import engine, programs
  from lrlab.train import Trainer

  task = lrlab.tasks.get("mnist1d-mlp")
  steps, batch = args.steps, 100
  key = jax.random.key(0)
  mesh = devices_lib.member_mesh()
  members, everywhere = devices_lib.member_sharding(mesh), devices_lib.replicated(mesh)

  def sweep(k, c):
    return lrlab.sweep.run(
      task, make_tx, {"lr": learning_rates(k)}, steps=steps, batch_size=batch, key=key,
      eval_every=steps, chunk_size=c, progress=False,
    )  # fmt: skip

  trainer = Trainer(task, steps=steps, batch_size=batch, eval_every=steps)

  def loop(k, c):
    """The engine's chunk loop, re-enacted with its programs; seconds per stage, summed."""
    lrs = learning_rates(k).astype(np.float32)
    padded = engine._pad({"lr": lrs}, -(-k // c) * c)
    compiled = programs._compiled_for(trainer, make_tx, mesh, 1, {"lr": padded["lr"][:c]}, key)
    # the engine folds the seed into the key; same shapes and sharding
    seed_key = devices_lib.to_mesh(jax.random.fold_in(key, 0), everywhere)

    t = dict.fromkeys(STAGES, 0.0)
    state = None
    for chunk in range(-(-k // c)):
      hp = {"lr": padded["lr"][chunk * c : (chunk + 1) * c]}
      tic = time.perf_counter()
      state, first = jax.block_until_ready(compiled.init(hp, seed_key))
      t["init"] += time.perf_counter() - tic
      tic = time.perf_counter()
      state, part = jax.block_until_ready(compiled.segment(hp, seed_key, state, np.int32(0)))
      t["segment"] += time.perf_counter() - tic
      tic = time.perf_counter()
      part = devices_lib.to_host(part)
      t["to_host"] += time.perf_counter() - tic
      tic = time.perf_counter()
      int(np.sum(devices_lib.to_host(state.diverged)))
      t["diverged"] += time.perf_counter() - tic
      tic = time.perf_counter()
      parts = engine._concat([part], axis=1)
      devices_lib.to_host(compiled.history(state, first, parts))
      t["history"] += time.perf_counter() - tic
    return t, (compiled, hp, seed_key, state)

  evaluate = jax.jit(
    jax.vmap(lambda s: trainer._evaluate(s.params, s.model_state, 0.0, 0)),
    in_shardings=(members,),
    out_shardings=members,
  )

  def warm_segment(compiled, hp, seed_key, state):
    """The segment again on the last chunk's state, twice; the second call's seconds."""
    state, _ = jax.block_until_ready(compiled.segment(hp, seed_key, state, np.int32(0)))
    tic = time.perf_counter()
    state, _ = jax.block_until_ready(compiled.segment(hp, seed_key, state, np.int32(0)))
    return time.perf_counter() - tic, state

  def evaluation(state):
    jax.block_until_ready(evaluate(state))
    tic = time.perf_counter()
    jax.block_until_ready(evaluate(state))
    return time.perf_counter() - tic

  samples = {s: [] for s in settings}
  for s in settings:  # compile and warm up
    sweep(*s)
    loop(*s)
  for r in range(args.rounds):
    for k, c in settings:
      load = os.getloadavg()[0]
      tic = time.perf_counter()
      sweep(k, c)
      whole = time.perf_counter() - tic
      stages, (compiled, hp, seed_key, state) = loop(k, c)
      warm, state = warm_segment(compiled, hp, seed_key, state)
      ev = evaluation(state)
      samples[k, c].append({"whole": whole, **stages, "warm_segment": warm, "eval": ev,
                            "load": load})  # fmt: skip
      print(f"round {r} K={k} c={c}: whole {whole:.3f} s, {stages}, warm segment {warm:.4f} s, "
            f"eval {ev:.4f} s, load {load:.1f}", flush=True)  # fmt: skip
  report = []
  for (k, c), rows in samples.items():
    med = {n: statistics.median(row[n] for row in rows) for n in rows[0]}
    chunks = -(-k // c)
    in_chunks = sum(med[n] for n in STAGES)
    entry = {
      "k": k,
      "chunk_size": c,
      "chunks": chunks,
      "median_s": med,
      "model_steps_per_s": k * steps / med["whole"],
      "per_chunk_s": {n: med[n] / chunks for n in STAGES},
      "per_member_segment_ms": 1e3 * med["segment"] / (chunks * c),
      "per_member_warm_segment_ms": 1e3 * med["warm_segment"] / c,
      "eval_share_of_segment": med["eval"] / (med["segment"] / chunks),
      "outside_chunks_s": med["whole"] - in_chunks,
      "samples": rows,
    }
    report.append(entry)
    print(json.dumps({k_: v for k_, v in entry.items() if k_ != "samples"}), flush=True)
  if args.out:
    os.makedirs(os.path.dirname(args.out) or ".", exist_ok=True)
    with open(args.out, "w") as f:
      json.dump({"steps": steps, "devices": len(jax.devices()), "settings": report}, f, indent=1)
  return 0


if __name__ == "__main__":
  raise SystemExit(main())
