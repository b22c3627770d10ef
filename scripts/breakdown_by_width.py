"""Can any chunk width take the MNIST-1D MLP's sweep to 55% of the matmul ceiling? (issue 16)

  python scripts/breakdown_by_width.py [--per-device 4,8,16,32,64] [--rounds 2]
      [--out benchmarks/cpu-2core/breakdown_by_width.json]

The benchmark's breakdown of the training step (:func:`lrlab.benchmark.machine.breakdown`:
the products alone, then the model's loss and gradient with plain SGD, then SGD momentum,
then lrlab's Trainer) trains 32 members per device; the sweep chooses its own chunk width.
This runs the breakdown at each width of ``--per-device``, ``--rounds`` times over the widths
(a round times every width once, so drift weighs on each alike; the best of the rounds counts
per width and rung), with the matmul ceiling (:func:`lrlab.benchmark.machine.ceiling_next_to_leg`)
measured before and after each width. A rung's fraction is taken against the lower of the two
ceilings next to it: the generous reading for the rung.

The ``loss_sgd`` rung is the model's own forward and backward pass and the plainest update:
any sweep of this model must do at least its work, so its best fraction over the widths bounds
what the sweep could reach with this model's code on this CPU.
"""

import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from lrlab.benchmark.workload import host_cores, set_host_devices, write_json
from lrlab.cli.common import Parser, positive_int, positive_ints

#: Issue 16's goal for the sweep at K = 512, as a fraction of the matmul ceiling.
GOAL = 0.55


def summarize(widths: dict[str, dict]) -> dict:
  """Each rung's best fraction over the widths, with the width it came at."""
  rungs = next(iter(widths.values()))["fraction"].keys()
  best = {}
  for rung in rungs:
    width = max(widths, key=lambda w: widths[w]["fraction"][rung])
    best[rung] = {"per_device": int(width), "fraction": widths[width]["fraction"][rung]}
  return best


def main(argv=None) -> int:
  """Measure every width, ``--rounds`` times; write ``--out``; 0."""
  parser = Parser(description=__doc__.split("\n")[0])
  parser.add_argument(
    "--per-device", type=positive_ints, default=(4, 8, 16, 32, 64), help="members per device"
  )
  parser.add_argument("--rounds", type=positive_int, default=2)
  parser.add_argument("--repeats", type=positive_int, default=5, help="timings per rung in a round")
  parser.add_argument(
    "--out",
    default="results/breakdown_by_width.json",
    help="the report; benchmarks/cpu-2core/breakdown_by_width.json is the committed one",
  )
  args = parser.parse_args(argv)
  widths = list(args.per_device)
  set_host_devices(host_cores())
  import jax

  from lrlab.benchmark import machine
  from lrlab.benchmark.workload import Config

  config = Config()
  tic = time.perf_counter()
  runs = {str(w): {"rounds": []} for w in widths}
  for r in range(args.rounds):
    for w in widths:
      load, before = os.getloadavg()[0], machine.ceiling_next_to_leg(config)
      rungs = machine.breakdown(config, per_device=w, repeats=args.repeats)
      after = machine.ceiling_next_to_leg(config)
      runs[str(w)]["rounds"].append({"gflops": rungs, "ceilings": [before, after],
                                     "load_average": [load, os.getloadavg()[0]]})  # fmt: skip
      print(f"round {r}, {w} per device: "
            + ", ".join(f"{k} {v / min(before, after):.1%}" for k, v in rungs.items()),
            flush=True)  # fmt: skip
  for run in runs.values():
    fractions = [{k: v / min(o["ceilings"]) for k, v in o["gflops"].items()} for o in run["rounds"]]
    run["fraction"] = {k: max(f[k] for f in fractions) for k in fractions[0]}
  best = summarize(runs)
  report = {
    "environment": machine.environment(), "devices": len(jax.devices()), "steps": config.steps,
    "batch_size": config.batch_size, "rounds": args.rounds, "repeats": args.repeats,
    "widths": runs, "best": best, "goal": GOAL,
    "goal_reachable": best["loss_sgd"]["fraction"] >= GOAL,
    "wall_seconds": time.perf_counter() - tic,
  }  # fmt: skip
  write_json(report, args.out)
  for rung, b in best.items():
    print(f"{rung}: best {b['fraction']:.1%} at {b['per_device']} per device")
  return 0


if __name__ == "__main__":
  sys.exit(main())
