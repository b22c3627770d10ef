"""How far a second device can take a loop of single runs: the cap on a sweep's gain (issue 17).

  python scripts/device_scaling.py [--tasks lm-transformer,mnist1d-mlp] [--members 8]
      [--rounds 3] [--out benchmarks/cpu-2core/device_scaling.json]

The task benchmark's loop leg (``lrlab.benchmark.tasks``: each task's model, steps, batch
and optimizer; ``lrlab.train.make_train_fn`` jitted once, the rate traced) runs ``--members``
single-member runs two ways, round robin, ``--rounds`` rounds (the best counts):

- ``one device``: one after another on the first device (the task benchmark's loop);
- ``two devices``: the same runs split over the two host devices, one thread per device,
  both at once: no batching at all, so no member costs more than it does alone.

``two devices`` over ``one device`` is what a sweep of the same members could gain from the
second device if batching members cost nothing: a cap on the sweep's ratio to the loop. Each
way also records its process CPU seconds over its wall seconds: how many cores it keeps busy
(XLA:CPU runs a product on several threads, so a single run can use more than one).
"""

import os
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from lrlab.benchmark.workload import set_host_devices, write_json
from lrlab.cli.common import Parser, positive_int


def measure(name: str, members: int, rounds: int) -> dict:
  """One task's two ways: per-member wall seconds and CPU over wall, each round."""
  import jax
  import jax.numpy as jnp

  import lrlab
  from lrlab.benchmark.tasks import OPTIMIZERS, SPECS, build_task, learning_rates

  spec = SPECS[name]
  task = build_task(spec)
  make_tx = OPTIMIZERS[spec.optimizer]
  train_fn = lrlab.train.make_train_fn(task, steps=spec.steps, batch_size=spec.batch_size,
                                       eval_every=spec.steps)  # fmt: skip
  key = jax.random.key(0)
  one = jax.jit(lambda lr: train_fn(make_tx({"lr": lr}), key))
  lrs = learning_rates(spec, members)
  devices = jax.devices()[:2]
  rates = [[jax.device_put(jnp.float32(lr), d) for lr in lrs] for d in devices]
  for d in range(len(devices)):  # compile, and the first run on each device
    jax.block_until_ready(one(rates[d][0]))

  def loop(device: int, indices) -> None:
    for i in indices:
      jax.block_until_ready(one(rates[device][i]))

  def one_device() -> None:
    loop(0, range(members))

  def two_devices() -> None:
    threads = [threading.Thread(target=loop, args=(d, range(d, members, 2))) for d in range(2)]
    for t in threads:
      t.start()
    for t in threads:
      t.join()

  ways = {"one device": one_device, "two devices": two_devices}
  out = {way: {"member_seconds": [], "cpu_over_wall": []} for way in ways}
  for _ in range(rounds):
    for way, run in ways.items():
      cpu, tic = time.process_time(), time.perf_counter()
      run()
      wall = time.perf_counter() - tic
      out[way]["member_seconds"].append(wall / members)
      out[way]["cpu_over_wall"].append((time.process_time() - cpu) / wall)
  best = {way: min(v["member_seconds"]) for way, v in out.items()}
  return {"task": name, "steps": spec.steps, "batch_size": spec.batch_size,
          "optimizer": spec.optimizer, "members": members, "ways": out,
          "two_over_one": best["one device"] / best["two devices"]}  # fmt: skip


def table(report: dict) -> str:
  """The markdown table BENCHMARKS.md quotes."""
  lines = ["| task | one device: ms per run | cores busy | two devices at once: ms per run | "
           "cores busy | two / one |", "|---|---:|---:|---:|---:|---:|"]  # fmt: skip
  for r in report["tasks"]:
    cells = []
    for way in ("one device", "two devices"):
      w = r["ways"][way]
      i = w["member_seconds"].index(min(w["member_seconds"]))
      cells += [f"{1000 * w['member_seconds'][i]:.1f}", f"{w['cpu_over_wall'][i]:.2f}"]
    ratio = f"{r['two_over_one']:.2f}\N{MULTIPLICATION SIGN}"
    lines.append(f"| {r['task']} | " + " | ".join(cells) + f" | {ratio} |")
  return "\n".join(lines)


def main(argv=None) -> int:
  """Measure each task; write ``--out``; 0."""
  parser = Parser(description=__doc__.split("\n")[0])
  parser.add_argument("--tasks", default="lm-transformer,mnist1d-mlp")
  parser.add_argument("--members", type=positive_int, default=8, help="runs per way (even)")
  parser.add_argument("--rounds", type=positive_int, default=3)
  parser.add_argument(
    "--out",
    default="results/device_scaling.json",
    help="the report; benchmarks/cpu-2core/device_scaling.json is the committed one",
  )
  args = parser.parse_args(argv)
  if args.members < 2 or args.members % 2:
    parser.error(f"--members must be an even number >= 2; got {args.members}")
  from lrlab.benchmark.tasks import SPECS

  unknown = [name for name in args.tasks.split(",") if name not in SPECS]
  if unknown:  # else a typo stops it after the tasks before it, with nothing written
    parser.error(f"--tasks must name {', '.join(SPECS)}; got {unknown[0]!r}")
  set_host_devices(2)
  from lrlab.benchmark.machine import environment

  load = os.getloadavg()[0]
  tasks = [measure(name, args.members, args.rounds) for name in args.tasks.split(",")]
  report = {"environment": environment(), "load_average": [load, os.getloadavg()[0]],
            "tasks": tasks}  # fmt: skip
  write_json(report, args.out)
  print(table(report))
  return 0


if __name__ == "__main__":
  sys.exit(main())
