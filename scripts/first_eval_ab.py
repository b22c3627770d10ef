"""A/B of a sweep chunk's step-0 evaluation (issue 16), interleaved in one process: every member
evaluated (as before) against the first member's evaluation copied to the others (as
``lrlab.sweep`` now does; the members of a seed share their initial parameters), with the
chunk's training segment timed beside them for scale, on the benchmark MLP.

  PYTHONPATH=. python scripts/first_eval_ab.py --out benchmarks/cpu-2core/first_eval_ab.json
"""

import json
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

from lrlab.benchmark.workload import host_cores, set_host_devices, write_json
from lrlab.cli.common import Parser, positive_int, positive_ints


def main(argv=None) -> int:
  parser = Parser(description=__doc__.splitlines()[0])
  parser.add_argument("--chunks", type=positive_ints, default=(16, 32), help="chunk sizes")
  parser.add_argument("--steps", type=positive_int, default=200)
  parser.add_argument("--rounds", type=positive_int, default=7)
  parser.add_argument("--out", default=None)
  args = parser.parse_args(argv)
  set_host_devices(host_cores())

  import jax
  import numpy as np

  import lrlab
  from lrlab.benchmark.workload import learning_rates, make_tx
  from lrlab.sweep import devices as devices_lib
  from lrlab.sweep import programs
  from lrlab.train import Trainer

  task = lrlab.tasks.get("mnist1d-mlp")
  trainer = Trainer(task, steps=args.steps, batch_size=100, eval_every=args.steps)
  mesh = devices_lib.member_mesh()
  members = devices_lib.member_sharding(mesh)
  key = jax.random.key(0)
  every = jax.jit(jax.vmap(trainer.first_evaluation), in_shardings=members, out_shardings=members)
  cases = {}
  for c in args.chunks:
    hp = {"lr": learning_rates(c).astype(np.float32)}
    # the two compiled programs that compiled.init composes, the step-0 evaluation compiled now
    compiled = programs._compiled_for(trainer, make_tx, mesh, 1, hp, key, evaluate=True)
    init_state, first_member = compiled.init_state, compiled._first_evaluation
    fresh = jax.block_until_ready(init_state(hp, key))
    state, first = first_member(hp, fresh)
    old_state, old_first = every(fresh)
    new, old = jax.tree.leaves((state, first)), jax.tree.leaves((old_state, old_first))
    same = all(np.array_equal(a, b) for a, b in zip(new, old, strict=True))
    cases[c] = (compiled, hp, (fresh, first_member), same)
  times = {(c, n): [] for c in cases for n in ("every_member", "first_member", "segment")}
  loads = []
  for _ in range(args.rounds):
    loads.append(os.getloadavg()[0])
    for c, (compiled, hp, (fresh, first_member), _) in cases.items():
      tic = time.perf_counter()
      jax.block_until_ready(every(fresh))
      times[c, "every_member"].append(time.perf_counter() - tic)
      tic = time.perf_counter()
      jax.block_until_ready(first_member(hp, fresh))
      times[c, "first_member"].append(time.perf_counter() - tic)
      s, _ = jax.block_until_ready(compiled.init(hp, key))
      tic = time.perf_counter()
      jax.block_until_ready(compiled.segment(hp, key, s, np.int32(0)))
      times[c, "segment"].append(time.perf_counter() - tic)
  report = {"steps": args.steps, "load_1min": loads, "chunks": []}
  for c, (_, _, _, same) in cases.items():
    med = {n: statistics.median(times[c, n]) for n in ("every_member", "first_member", "segment")}
    report["chunks"].append({
      "chunk_size": c,
      "median_s": med,
      "bit_identical": same,
      # the chunk's init + segment, before and after: the sweep's time per chunk
      "chunk_time_saved": (med["every_member"] - med["first_member"])
      / (med["every_member"] + med["segment"]),
      "times_s": {n: times[c, n] for n in med},
    })  # fmt: skip
  print(json.dumps([{k: v for k, v in e.items() if k != "times_s"} for e in report["chunks"]]))
  if args.out:  # its folder made if missing (results/ is not in a fresh checkout)
    write_json(report, args.out, indent=1)
  return 0


if __name__ == "__main__":
  raise SystemExit(main())
