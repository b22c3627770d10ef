"""The chunk-size benchmark (``scripts/benchmark.py --chunks``): ``chunk_size="auto"`` against
fixed chunk sizes, for each task and K, writing ``chunks.json`` and ``chunks.md``.

For each (task, K), ``"auto"`` (probing afresh, in a cache folder of its own under ``out``, so
the report shows what the probe measured and how long it took) and each fixed size first run
:func:`lrlab.sweep.run` once to compile; then ``repeats`` rounds time one call of the whole
K-member job per candidate, round robin, each round starting one candidate later than the
last, so a burst of load from other processes weighs on every size alike and no size always
follows the same one; the best round counts (all are kept). Every task runs its own workload: the
issue-17 task benchmark's (:data:`lrlab.benchmark.tasks.SPECS`: optimizer, rates, batch,
size options; the transformer resident) where it has one, else the MLP's (SGD momentum, rates
in [1e-3, 1], batch 100); at most ``steps`` steps each, and at most :data:`STEPS_CAP`'s for a
costly step. A fixed size whose chunk would not fit
in memory (above :func:`lrlab.sweep.chunking.memory_limit`, the bound ``"auto"`` respects: the
transformer's larger chunks at K = 512) is left out and listed as such. The goal of issue 16:
the automatic size within 10% of the best fixed one.
"""

import contextlib
import json
import math
import os
import time
from collections.abc import Iterator
from typing import Any

from lrlab.benchmark.machine import environment
from lrlab.benchmark.probes import busy, load_average
from lrlab.benchmark.workload import learning_rates, make_tx

TASKS = ("mnist1d-mlp", "mnist1d-cnn", "lm-transformer")
KS = (64, 512)
CHUNK_SIZES = (8, 16, 32, 64, 128, 256, 512)
#: Steps per sweep by default (``--steps`` overrides): enough that a chunk's steps dominate
#: its step-0 evaluation, few enough that every size can be timed several times.
STEPS = 50
#: Fewer steps for a task whose step is costly: the transformer's model-step is 1.7 GFLOP, 190x
#: the MLP's, so 5 steps of 512 members take a minute on 2 cores.
STEPS_CAP = {"lm-transformer": 5}
#: ``chunk_size="auto"`` meets the goal within this factor of the best fixed size's time.
GOAL = 1.1


def _workload(name: str, steps: int, batch_size: int):
  """``(task, make_tx, rates(k), steps, batch_size)`` of ``name`` in the chunk benchmark."""
  from lrlab.benchmark import tasks as task_benchmark

  spec = task_benchmark.SPECS.get(name)
  if spec is None:
    import lrlab

    return lrlab.tasks.get(name), make_tx, learning_rates, steps, batch_size
  rates = lambda k: task_benchmark.learning_rates(spec, k)
  tx = task_benchmark.OPTIMIZERS[spec.optimizer]
  steps = min(steps, spec.steps, STEPS_CAP.get(name, steps))
  return task_benchmark.build_task(spec), tx, rates, steps, spec.batch_size


def _fitting(task, tx, rates, steps, batch_size, sizes) -> tuple[list[int], int]:
  """The sizes whose chunk fits in memory by ``"auto"``'s own bound, and that bound."""
  import jax

  from lrlab.sweep import chunking
  from lrlab.train import Trainer

  trainer = Trainer(task, steps=steps, batch_size=batch_size, eval_every=steps)
  limit = chunking.chunk_limit(trainer, tx, {"lr": rates(1)}, jax.random.key(0), jax.devices())
  return [c for c in sizes if c <= limit], int(limit)


def _measure_round_robin(name: str, k: int, sizes, steps, batch_size, repeats, log):
  """Rows of ``"auto"`` and every fixed size in ``sizes`` for one (task, K), round robin."""
  import jax

  import lrlab
  from lrlab.train.compiling import CompileClock

  task, tx, rates, steps, batch_size = _workload(name, steps, batch_size)
  fixed = [c for c in sizes if c <= k]
  fits, limit = _fitting(task, tx, rates, steps, batch_size, fixed)
  run = lambda chunk: lrlab.sweep.run(
    task, tx, {"lr": rates(k)}, steps=steps, batch_size=batch_size, key=jax.random.key(0),
    eval_every=steps, chunk_size=chunk, progress=False,
  )  # fmt: skip
  rows, clock = [], CompileClock()
  for chunk in ("auto", *fits):  # compile (and, for auto, probe)
    tic = time.perf_counter()
    result = run(chunk)
    rows.append({
      "task": name, "k": k, "steps": steps, "batch_size": batch_size,
      "chunk_size": chunk if chunk == "auto" else int(chunk),
      "chosen": int(result.config["chunk_size"]), "first_call_s": time.perf_counter() - tic,
      "choice": result.metadata.get("chunk_choice"), "steady_all_s": [], "load_all": [],
      "recompiles": 0,
    })  # fmt: skip
  for i in range(max(repeats, 1)):
    # Each round starts one candidate later, so none always follows the same one (on the AMD
    # EPYC "auto", always timed right after the 512-member chunks, ran its chunks of 8 1.11x
    # slower than the fixed 8 in every round; interleaved alone, the two took the same time).
    for row in rows[i % len(rows) :] + rows[: i % len(rows)]:
      row["load_all"].append(load_average())
      clock.start()
      tic = time.perf_counter()
      run(row["chunk_size"])
      row["steady_all_s"].append(time.perf_counter() - tic)
      row["recompiles"] += clock.stop()[1]  # 0 unless a program was evicted and compiled again
  for row in rows:
    row["steady_s"] = min(row["steady_all_s"])
    row["model_steps_per_s"] = k * steps / row["steady_s"]
    row["load_1min"] = max(row["load_all"])
    log(
      f"  {name} K={k:<4d} chunk {row['chunk_size']!s:>4} (ran {row['chosen']:>3d}): "
      f"{row['model_steps_per_s']:>9.0f} model-steps/s, first call {row['first_call_s']:.1f} s"
    )
  lrlab.sweep.clear_cache()
  skipped = [c for c in fixed if c not in fits]
  return rows, {"memory_limit": limit, "left_out_for_memory": skipped}


@contextlib.contextmanager
def fresh_chunk_sizes(out: str) -> Iterator[str]:
  """While the block runs, ``$LRLAB_CACHE_DIR`` is ``out/chunk-cache`` with no remembered chunk
  sizes (restored after; subprocesses inherit it): a benchmark's ``chunk_size="auto"`` probes
  afresh, and the user's remembered sizes are neither read nor changed. Yields the folder."""
  from lrlab.sweep.chunk_choice import FILENAME

  before, cache = os.environ.get("LRLAB_CACHE_DIR"), os.path.join(out, "chunk-cache")
  if os.path.exists(os.path.join(cache, FILENAME)):
    os.remove(os.path.join(cache, FILENAME))  # a fresh probe, not an earlier run's
  os.environ["LRLAB_CACHE_DIR"] = cache
  try:
    yield cache
  finally:
    if before is None:
      os.environ.pop("LRLAB_CACHE_DIR", None)
    else:
      os.environ["LRLAB_CACHE_DIR"] = before


def run_chunks(
  out: str,
  *,
  tasks=TASKS,
  ks=KS,
  chunk_sizes=CHUNK_SIZES,
  steps: int = STEPS,
  batch_size: int = 100,
  repeats: int = 3,
  log=print,
) -> dict[str, Any]:
  """Time ``chunk_size="auto"`` and each fixed size (those at most K that fit) per task and K.

  Args:
    out: the folder of ``chunks.json``, ``chunks.md`` and the probe's own cache.
    tasks, ks, chunk_sizes: what to measure.
    steps: the most steps per sweep (a task of the task benchmark may take fewer: its own).
    batch_size: the batch of a task outside the task benchmark's specs.
    repeats: rounds of timings, each timing every candidate once.
    log: where progress lines go.

  Returns:
    The report: ``environment``, ``settings``, ``rows`` (one per measurement),
    ``left_out`` (per task and K: the sizes left out for memory) and ``summary`` (per task
    and K: the best fixed size, the auto choice, their ratio and whether it is within
    :data:`GOAL`).
  """
  from lrlab.sweep import chunk_choice, programs

  os.makedirs(out, exist_ok=True)
  cache_size = programs.CACHE_SIZE
  # Every candidate's programs (and the probe's) stay compiled through the rounds: round robin
  # over more sizes than lrlab.sweep keeps (programs.CACHE_SIZE, 8) recompiles every one of them
  # in every round, and the timings would be compile times.
  programs.CACHE_SIZE = max(cache_size, len(chunk_sizes) + 1 + chunk_choice.MAX_CANDIDATES)
  loads, rows, summary, left_out = [load_average()], [], [], []
  try:
    with fresh_chunk_sizes(out):
      for name in tasks:
        for k in ks:
          mine, dropped = _measure_round_robin(name, k, chunk_sizes, steps, batch_size,
                                               repeats, log)  # fmt: skip
          rows += mine
          left_out.append({"task": name, "k": k, **dropped})
          summary.append(_summary(name, k, mine))
  finally:
    programs.CACHE_SIZE = cache_size
  loads.append(load_average())
  env = environment()
  report = {
    "environment": env,
    "settings": {
      "steps": steps,
      "batch_size": batch_size,
      "repeats": repeats,
      "goal": GOAL,
      "timing": "round robin",
    },
    "load_average_1min": {"start": loads[0], "end": loads[-1]},
    "busy": busy(loads + [r["load_1min"] for r in rows], env["cores"]),
    "rows": rows,
    "left_out": left_out,
    "summary": summary,
  }
  with open(os.path.join(out, "chunks.json"), "w") as f:
    json.dump(report, f, indent=2)
  with open(os.path.join(out, "chunks.md"), "w") as f:
    f.write(markdown(report))
  return report


def _summary(name: str, k: int, mine) -> dict[str, Any]:
  """The best fixed size of one (task, K), auto's choice and their ratio of times."""
  auto = mine[0]
  best = min(mine[1:], key=lambda r: r["steady_s"], default=None)
  entry = {"task": name, "k": k, "auto_chose": auto["chosen"]}
  if best is not None:
    ratio = auto["steady_s"] / best["steady_s"]
    entry |= {"best_fixed": best["chunk_size"], "auto_over_best_time": ratio}
    entry["met"] = ratio <= GOAL
  return entry


def markdown(report: dict[str, Any]) -> str:
  """The chunk report as Markdown: one table per (task, K), then the summary."""
  env, settings = report["environment"], report["settings"]
  load = report["load_average_1min"]
  lines = [
    f"Machine: {env['cpu']}, {env['cores']} cores, caches {env.get('caches') or 'unknown'}; "
    f"JAX {env['jax']} ({env['backend']}, {len(env['devices'])} device(s)). Load average "
    f"(1 min) {load['start']:.2f} at the start, {load['end']:.2f} at the end."
  ]
  if report["busy"]:
    lines += ["", "**Warning: the machine was busy during this run; timings are unreliable.**"]
  lines += [
    "",
    f"Each sweep: K log-spaced rates, at most {settings['steps']} steps (each task's own "
    f"workload; the batch and steps are in each table's title); steady = best of "
    f"{settings['repeats']} rounds after the first call (which compiles and, for auto, probes), "
    "each round timing every chunk size once, round robin.",
  ]
  for entry in report["summary"]:
    task, k = entry["task"], entry["k"]
    mine = [r for r in report["rows"] if r["task"] == task and r["k"] == k]
    best = min((r["steady_s"] for r in mine[1:]), default=math.nan)
    lines += [
      "",
      f"**{task}, K={k}** ({mine[0]['steps']} steps, batch {mine[0]['batch_size']})",
      "",
      "| chunk_size | ran | first call s | steady s | model-steps/s | time / best fixed | load |",
      "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in mine:
      lines.append(
        f"| {r['chunk_size']} | {r['chosen']} | {r['first_call_s']:.1f} | {r['steady_s']:.3f} "
        f"| {r['model_steps_per_s']:,.0f} | {r['steady_s'] / best:.2f} | {r['load_1min']:.1f} |"
      )
    dropped = next((d for d in report.get("left_out", []) if d["task"] == task and d["k"] == k),
                   {})  # fmt: skip
    if dropped.get("left_out_for_memory"):
      lines += ["", f"Left out for memory (a chunk above {dropped['memory_limit']} members, "
                f"auto's own bound): {dropped['left_out_for_memory']}"]  # fmt: skip
    choice = mine[0]["choice"] or {}
    probe = ", ".join(f"{p['chunk_size']}: {p['seconds']:.3f} s" for p in choice.get("probe", []))
    lines += [
      "",
      f"auto: {choice.get('method', '-')}, heuristic's size {choice.get('heuristic', '-')}, "
      f"probe {choice.get('probe_seconds', 0):.1f} s (compiles included); estimated seconds "
      f"for the K members per probe call: {probe or '-'}",
    ]
  lines += ["", "| task | K | auto chose | best fixed | auto time / best fixed | within 10% |"]
  lines.append("|---|---:|---:|---:|---:|---|")
  for e in report["summary"]:
    ratio = e.get("auto_over_best_time")
    met = {True: "yes", False: "**no**", None: "-"}[e.get("met")]
    shown = "-" if ratio is None else f"{ratio:.2f}"
    lines.append(
      f"| {e['task']} | {e['k']} | {e['auto_chose']} | {e.get('best_fixed', '-')} | {shown} "
      f"| {met} |"
    )
  return "\n".join(lines) + "\n"
