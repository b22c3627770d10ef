"""A/B of drawing a seed's minibatch indices once for all its chunks (issue 16), in one process.

  python scripts/shared_rows_ab.py [--k 512] [--chunk-sizes 8,16,32,64] [--rounds 5]
      [--out benchmarks/cpu-2core/shared_rows_ab.json]

The benchmark's sweep (:mod:`lrlab.benchmark.workload`: the MNIST-1D MLP, SGD momentum 0.9,
``K`` rates, 200 steps of batch 100, one evaluation window) at fixed chunk sizes, two ways:

- ``shared``: as :func:`lrlab.sweep.run` runs it, each seed's minibatch indices drawn once
  per segment (:class:`lrlab.sweep.programs.SeedRows`) and handed to every chunk;
- ``per_chunk``: each chunk's segment drawing them itself, as before
  (:data:`lrlab.sweep.programs.SHARED_ROWS_BYTES` set to 0 for the call).

Each round times one call of every (way, size), in turn, after a first call of each that
compiles; the best round counts. The two ways' histories must be equal, bit for bit. Each
round also times the draw alone (:meth:`lrlab.train.Trainer.minibatch_rows` for the 200 steps,
compiled as the sweep compiles it, on the two devices).
"""

import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from lrlab.benchmark.workload import host_cores, set_host_devices, write_json
from lrlab.cli.common import Parser, positive_int, positive_ints


def main(argv=None) -> int:
  """Time both ways at every size; write ``--out``; 0."""
  parser = Parser(description=__doc__.split("\n")[0])
  parser.add_argument("--k", type=positive_int, default=512)
  parser.add_argument("--chunk-sizes", type=positive_ints, default=(8, 16, 32, 64))
  parser.add_argument("--rounds", type=positive_int, default=5)
  parser.add_argument(
    "--out",
    default="results/shared_rows_ab.json",
    help="the report; benchmarks/cpu-2core/shared_rows_ab.json is the committed one",
  )
  args = parser.parse_args(argv)
  sizes = list(args.chunk_sizes)
  set_host_devices(host_cores())
  import chex
  import jax
  import numpy as np

  import lrlab
  from lrlab.benchmark import machine
  from lrlab.benchmark.workload import learning_rates, make_tx
  from lrlab.sweep import devices as devices_lib
  from lrlab.sweep import programs

  task = lrlab.tasks.get("mnist1d-mlp")
  grid = {"lr": np.asarray(learning_rates(args.k))}
  budget = programs.SHARED_ROWS_BYTES

  def run(way: str, chunk_size: int):
    programs.SHARED_ROWS_BYTES = budget if way == "shared" else 0
    try:
      return lrlab.sweep.run(
        task, make_tx, grid, steps=200, batch_size=100, eval_every=200, key=jax.random.key(0),
        chunk_size=chunk_size, progress=False,
      )  # fmt: skip
    finally:
      programs.SHARED_ROWS_BYTES = budget

  trainer = lrlab.train.Trainer(task, steps=200, batch_size=100, eval_every=200)
  everywhere = devices_lib.replicated(devices_lib.member_mesh())  # as the sweep places them
  draw = jax.jit(lambda key: trainer.minibatch_rows(key, 0, 1), out_shardings=everywhere)
  key = jax.random.key(0)
  jax.block_until_ready(draw(key))
  draws = []
  ways = ("shared", "per_chunk")
  for c in sizes:  # compile, and check the two ways agree
    chex.assert_trees_all_equal(run("shared", c).history, run("per_chunk", c).history)
  seconds = {w: {c: [] for c in sizes} for w in ways}
  loads = []
  for _ in range(args.rounds):
    loads.append(os.getloadavg()[0])
    tic = time.perf_counter()
    jax.block_until_ready(draw(key))
    draws.append(time.perf_counter() - tic)
    for c in sizes:
      for way in ways:
        tic = time.perf_counter()
        run(way, c)
        seconds[way][c].append(time.perf_counter() - tic)
  rate = {w: {c: args.k * 200 / min(seconds[w][c]) for c in sizes} for w in ways}
  by_size = lambda table: {w: {str(c): x for c, x in v.items()} for w, v in table.items()}
  report = {
    "environment": machine.environment(), "k": args.k, "steps": 200, "batch_size": 100,
    "rounds": args.rounds, "seconds": by_size(seconds),
    "model_steps_per_s": by_size(rate),
    "shared_over_per_chunk": {str(c): rate["shared"][c] / rate["per_chunk"][c] for c in sizes},
    "draw_seconds": min(draws), "draw_seconds_all": draws,
    "load_average": [*loads, os.getloadavg()[0]],
  }  # fmt: skip
  write_json(report, args.out)
  print(f"the draw alone: {1000 * min(draws):.1f} ms")
  for c in sizes:
    print(f"chunk {c}: shared {rate['shared'][c]:,.0f}, per chunk {rate['per_chunk'][c]:,.0f} "
          f"model-steps/s ({rate['shared'][c] / rate['per_chunk'][c]:.2f}x)")  # fmt: skip
  return 0


if __name__ == "__main__":
  sys.exit(main())
