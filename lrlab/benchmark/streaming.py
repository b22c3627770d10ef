"""Throughput of lrlab.sweep.run on data streamed from the host against the same data resident.

  python scripts/benchmark_streaming.py [--repeats 3] [--optimizer sgd] [--quick]
  python -m lrlab.benchmark.streaming    (the same)

The goal: streaming a task's data from the host (``lrlab.data.from_source``)
costs at most 10% of the throughput of the same sweep with its data resident.
Every leg runs the same ``lrlab.sweep.run`` call on the MNIST-1D MLP at K
log-spaced learning rates and differs only in where the data live:
``resident`` (the registry's task), ``streamed`` (the same arrays behind
``lrlab.data.ArraySource``) and, for the largest size, ``memmap`` (``.npy``
files opened as NumPy memmaps in a temporary folder; just written, so in the
page cache). Each leg's first call compiles; the timed calls reuse its programs
(same task object, same ``make_tx``), round robin, best of ``--repeats``.
Model-steps/s is ``K * steps / wall`` of a whole call. The timed calls'
histories are compared field by field with the resident one's (lrlab promises
equality bit for bit). Writes ``streaming.json`` and ``streaming.md`` under
``--out``; see BENCHMARKS.md, "Streaming data from the host".
"""

import argparse
import dataclasses
import glob
import os
import statistics
import tempfile
import time
from typing import Any

# lrlab.benchmark's helpers; none starts JAX's backend, so the host device count can still be set.
from lrlab.benchmark.machine import environment
from lrlab.benchmark.probes import busy, load_average
from lrlab.benchmark.streaming_report import LEG_TITLES, TASK, markdown, write_report
from lrlab.benchmark.workload import host_cores, learning_rates, make_tx, set_host_devices
from lrlab.train.compiling import CompileClock

OPTIMIZERS = ("sgd", "adam")
# The goal: streamed throughput at least this fraction of resident throughput.
GOAL_RATIO = 0.9

DEFAULT_SAMPLES = 5000  # lrlab.tasks.get(TASK)'s MNIST-1D size


@dataclasses.dataclass(frozen=True)
class Config:
  """What every leg trains and how it is timed.

  Attributes:
    sizes: MNIST-1D ``num_samples`` of each data size (before its train/val/test split).
    k: learning rates (members) trained at once.
    steps: updates per member.
    batch_size: examples per minibatch.
    eval_every: steps per evaluation window (a streamed segment is one window).
    eval_batch_size: examples per evaluation batch, the same for every leg.
    optimizer: ``"sgd"`` (momentum 0.9) or ``"adam"``.
    repeats: timed calls per leg, round robin; the best counts.
    memmap: add the memmap leg for the largest size.
    devices: host CPU devices exposed to JAX.
    seed: the sweep's key.
  """

  sizes: tuple[int, ...] = (DEFAULT_SAMPLES, 10 * DEFAULT_SAMPLES)
  k: int = 64
  steps: int = 300
  batch_size: int = 100
  eval_every: int = 100
  eval_batch_size: int = 1000
  optimizer: str = "sgd"
  repeats: int = 3
  memmap: bool = True
  devices: int = 1
  seed: int = 0


QUICK = {"sizes": (500, 5000), "k": 8, "steps": 20, "eval_every": 10, "repeats": 2}


def _adam(hp):
  from lrlab import optimizers

  return optimizers.adam(hp["lr"])


# Module-level functions (the benchmark's SGD is lrlab.benchmark's), so every call passes the
# same object and the engine reuses its compiled programs.
MAKE_TX = {"sgd": make_tx, "adam": _adam}


def cpu_caches(root: str = "/sys/devices/system/cpu/cpu0/cache") -> list[dict[str, str | None]]:
  """The first core's caches from Linux sysfs: level, type, size, the CPUs sharing it."""

  def read(path: str) -> str | None:
    try:
      with open(path) as f:
        return f.read().strip()
    except OSError:
      return None

  fields = ("level", "type", "size", "shared_cpu_list")
  indices = sorted(glob.glob(os.path.join(root, "index*")))
  return [{field: read(os.path.join(index, field)) for field in fields} for index in indices]


# --- the legs ------------------------------------------------------------------------------------


def streamed_task(resident, sources, *, name: str):
  """``resident``'s model on ``sources`` (train, val, test), streamed from the host."""
  import lrlab

  dataset = lrlab.data.from_source(*sources, num_classes=10, name=name)
  return lrlab.tasks.from_model(resident.model, dataset, loss="cross_entropy", name=name)


def array_sources(resident):
  """One :class:`lrlab.data.ArraySource` per split of ``resident``'s (in-memory) arrays."""
  import lrlab

  return [lrlab.data.ArraySource(*resident.dataset.split(s)) for s in ("train", "val", "test")]


def memmap_sources(resident, folder: str):
  """``resident``'s splits written to ``.npy`` files in ``folder`` and opened read-only as
  memmaps, one :class:`lrlab.data.ArraySource` per split."""
  import numpy as np

  import lrlab

  sources = []
  for split in ("train", "val", "test"):
    arrays = []
    for name, array in zip(("x", "y"), resident.dataset.split(split), strict=True):
      path = os.path.join(folder, f"{split}_{name}.npy")
      stored = np.lib.format.open_memmap(path, mode="w+", dtype=array.dtype, shape=array.shape)
      stored[:] = array
      stored.flush()
      del stored
      arrays.append(np.load(path, mmap_mode="r"))
    sources.append(lrlab.data.ArraySource(*arrays))
  return sources


def sweep_call(task, config: Config):
  """``() -> SweepResult``: the benchmark's ``lrlab.sweep.run`` call on ``task``, blocked on."""
  import jax

  import lrlab

  lrs = learning_rates(config.k)
  tx = MAKE_TX[config.optimizer]

  def call():
    result = lrlab.sweep.run(
      task, tx, {"lr": lrs}, steps=config.steps, batch_size=config.batch_size, seeds=1,
      key=jax.random.key(config.seed), eval_every=config.eval_every,
      eval_batch_size=config.eval_batch_size, progress=False,
    )  # fmt: skip
    jax.block_until_ready(result.history)
    return result

  return call


def compare_histories(history, reference) -> dict[str, Any]:
  """Field by field: equal bit for bit (NaN equal to NaN), entries that differ, largest gap."""
  import numpy as np

  fields = {}
  for name in reference._fields:
    a, b = np.asarray(getattr(history, name)), np.asarray(getattr(reference, name))
    inexact = np.issubdtype(a.dtype, np.inexact)
    same = a.shape == b.shape and np.array_equal(a, b, equal_nan=inexact)
    differ = None if a.shape != b.shape else int(np.sum((a != b) & ~(np.isnan(a) & np.isnan(b))))
    gap = None
    if inexact and a.shape == b.shape and differ:
      finite = np.isfinite(a) & np.isfinite(b)
      gap = float(np.max(np.abs(a - b)[finite])) if finite.any() else None
    fields[name] = {"identical": bool(same), "differing": differ, "max_abs_diff": gap}
  return {"identical": all(f["identical"] for f in fields.values()), "fields": fields}


def measure_size(num_samples: int, config: Config, *, memmap: bool, log=print) -> dict[str, Any]:
  """Time every leg on MNIST-1D of ``num_samples``; the rows, the ratios and the comparison."""
  import lrlab

  tic = time.perf_counter()
  resident = lrlab.tasks.get(TASK, num_samples=num_samples)
  generated_s = time.perf_counter() - tic
  sizes = {s: int(resident.dataset.split(s)[0].shape[0]) for s in ("train", "val", "test")}
  label = f"{TASK}-{num_samples}"
  with tempfile.TemporaryDirectory(prefix="lrlab-memmap-") as folder:
    tasks = {
      "resident": resident,
      "streamed": streamed_task(resident, array_sources(resident), name=f"{label}-streamed"),
    }
    if memmap:
      sources = memmap_sources(resident, folder)
      tasks["memmap"] = streamed_task(resident, sources, name=f"{label}-memmap")
    calls = {leg: sweep_call(task, config) for leg, task in tasks.items()}
    rows = {leg: {"leg": leg, "title": LEG_TITLES[leg]} for leg in calls}
    log_compiles = CompileClock()
    for leg, call in calls.items():  # the first call compiles
      log_compiles.start()
      start = time.perf_counter()
      result = call()
      rows[leg]["first_call_s"] = time.perf_counter() - start
      rows[leg]["compile_s"], _ = log_compiles.stop()
      rows[leg]["chunk_size"] = int(result.config["chunk_size"])
      rows[leg]["streamed"] = bool(result.config["streamed"])
    histories = {}
    for row in rows.values():
      row.update(walls=[], loads=[], recompiles=0)
    for _ in range(max(config.repeats, 1)):  # round robin: a burst of load slows every leg alike
      for leg, call in calls.items():
        rows[leg]["loads"].append(load_average())
        log_compiles.start()
        start = time.perf_counter()
        result = call()
        rows[leg]["walls"].append(time.perf_counter() - start)
        rows[leg]["recompiles"] += log_compiles.stop()[1]
        histories[leg] = result.history
  model_steps = config.k * config.steps
  for row in rows.values():
    row["steady_s"] = min(row["walls"])
    row["median_s"] = statistics.median(row["walls"])
    row["model_steps_per_s"] = model_steps / row["steady_s"]
    log(
      f"  {num_samples:>6d} samples  {row['title']:<24s} {row['model_steps_per_s']:>9.0f} "
      f"model-steps/s  best {row['steady_s']:.3f} s  first call {row['first_call_s']:.2f} s"
    )
  base = rows["resident"]["model_steps_per_s"]
  for leg, row in rows.items():
    if leg != "resident":
      row["ratio"] = row["model_steps_per_s"] / base
      row["cost"] = 1 - row["ratio"]
      row["goal_met"] = row["ratio"] >= GOAL_RATIO
      row["median_ratio"] = rows["resident"]["median_s"] / row["median_s"]
  identity = {
    leg: compare_histories(histories[leg], histories["resident"])
    for leg in histories
    if leg != "resident"
  }
  return {
    "num_samples": num_samples,
    "split_sizes": sizes,
    "generate_s": generated_s,
    "rows": list(rows.values()),
    "identity": identity,
    "bit_identical": all(c["identical"] for c in identity.values()),
  }


def run_benchmark(config: Config, *, log=print) -> dict[str, Any]:
  """Measure every data size; return the report (see ``BENCHMARKS.md``)."""
  started = time.time()
  loads = [load_average()]
  results = []
  for i, n in enumerate(config.sizes):
    memmap = config.memmap and i == len(config.sizes) - 1
    results.append(measure_size(n, config, memmap=memmap, log=log))
  loads.append(load_average())
  env = environment()
  env["caches"] = cpu_caches()
  streamed = [r for s in results for r in s["rows"] if r["leg"] != "resident"]
  leg_loads = [x for s in results for r in s["rows"] for x in r["loads"]]
  return {
    "config": dataclasses.asdict(config),
    "environment": env,
    "load_average_1min": {"start": loads[0], "end": loads[-1]},
    "busy": busy(loads + leg_loads, env["cores"]),
    "wall_s": time.time() - started,
    "goal": {"ratio_at_least": GOAL_RATIO, "cost_at_most": 1 - GOAL_RATIO},
    "sizes": results,
    "goal_met": all(r["goal_met"] for r in streamed),
    "bit_identical": all(s["bit_identical"] for s in results),
  }


# --- writing -------------------------------------------------------------------------------------


def parse_args(argv=None) -> argparse.Namespace:
  """The command line (parsed before JAX's backend starts); a bad flag is one line, exit 2."""
  return _parser().parse_args(argv)


def _parser():
  """The command line's parser; its errors are one line (:class:`lrlab.cli.common.Parser`)."""
  from lrlab.cli.common import Parser, positive_int, positive_ints, seed_value

  parser = Parser(description=__doc__.splitlines()[0])
  parser.add_argument("--sizes", type=positive_ints, default=None,
                      help="MNIST-1D num_samples, comma-separated")  # fmt: skip
  parser.add_argument("--k", type=positive_int, default=None, help="learning rates [64]")
  parser.add_argument("--steps", type=positive_int, default=None, help="updates per member [300]")
  parser.add_argument("--eval-every", type=positive_int, default=None,
                      help="steps per window [100]")  # fmt: skip
  parser.add_argument("--eval-batch-size", type=positive_int, default=1000)
  parser.add_argument("--optimizer", choices=OPTIMIZERS, default="sgd")
  parser.add_argument("--repeats", type=positive_int, default=None,
                      help="timed calls per leg [3]")  # fmt: skip
  parser.add_argument("--no-memmap", action="store_true", help="skip the memmap leg")
  parser.add_argument("--devices", type=positive_int, default=None,
                      help="host devices [every core]")  # fmt: skip
  parser.add_argument("--seed", type=seed_value, default=0)
  parser.add_argument("--quick", action="store_true", help="smoke run at tiny sizes")
  parser.add_argument(
    "--out", default="results/benchmark_streaming",
    help="folder for the report (the committed one: benchmarks/cpu-2core)",
  )  # fmt: skip
  return parser


def config_from_args(args: argparse.Namespace) -> Config:
  """The :class:`Config` the command line asks for (``--quick`` changes the defaults)."""
  fields = {**dataclasses.asdict(Config()), **(QUICK if args.quick else {})}
  given = {
    "sizes": args.sizes,
    "k": args.k,
    "steps": args.steps,
    "eval_every": args.eval_every,
    "repeats": args.repeats,
  }
  fields.update({name: v for name, v in given.items() if v is not None})
  fields.update(
    eval_batch_size=args.eval_batch_size,
    optimizer=args.optimizer,
    memmap=not args.no_memmap,
    devices=args.devices or host_cores(),
    seed=args.seed,
  )
  return Config(**fields)


def main(argv=None) -> None:
  """``scripts/benchmark_streaming.py``: parse ``argv``, run the streaming benchmark on the host
  devices asked for, write its report and print it as Markdown."""
  args = parse_args(argv)
  config = config_from_args(args)
  if config.steps % config.eval_every:  # every window one length: refused before any data
    _parser().error(f"--steps must be a multiple of --eval-every; got {config.steps} and "
                    f"{config.eval_every}{' (--quick)' if args.quick else ''}")  # fmt: skip
  set_host_devices(config.devices)  # before JAX's backend starts
  report = run_benchmark(config)
  paths = write_report(report, args.out)
  print(markdown(report))
  print("wrote " + ", ".join(paths.values()))


if __name__ == "__main__":
  main()
