"""The chunk-size benchmark (``scripts/benchmark.py --chunks``): ``chunk_size="auto"`` against
fixed chunk sizes, for each task and K, writing ``chunks.json`` and ``chunks.md``.

Each (task, K, chunk size) runs :func:`lrlab.sweep.run` once to compile (and, for
``"auto"``, to probe), then times up to ``repeats`` calls of the whole K-member job
(the best counts); ``"auto"`` probes afresh in a cache folder of its own under
``out`` (so the report shows what the probe measured and how long it took). The
goal of issue 16: the automatic size within 10% of the best fixed one.
"""

import json
import math
import os
import time
from typing import Any

from lrlab.benchmark.machine import environment
from lrlab.benchmark.probes import busy, load_average
from lrlab.benchmark.workload import learning_rates, make_tx

TASKS = ("mnist1d-mlp", "mnist1d-cnn")
KS = (64, 512)
CHUNK_SIZES = (8, 16, 32, 64, 128, 256, 512)
#: ``chunk_size="auto"`` meets the goal within this factor of the best fixed size's time.
GOAL = 1.1


def _time_sweep(task, k: int, chunk_size, steps: int, batch_size: int, repeats: int, budget_s):
  """The first call's wall (compile, probe) and the steady state (best of the repeats)."""
  import jax

  import lrlab

  run = lambda: lrlab.sweep.run(
    task, make_tx, {"lr": learning_rates(k)}, steps=steps, batch_size=batch_size,
    key=jax.random.key(0), eval_every=steps, chunk_size=chunk_size, progress=False,
  )  # fmt: skip
  tic = time.perf_counter()
  first = run()
  first_s = time.perf_counter() - tic
  walls = []
  while len(walls) < max(repeats, 1) and (not walls or sum(walls) < budget_s):
    tic = time.perf_counter()
    result = run()
    walls.append(time.perf_counter() - tic)
  return {
    "chunk_size": "auto" if chunk_size == "auto" else int(chunk_size),
    "chosen": int(result.config["chunk_size"]),
    "first_call_s": first_s,
    "steady_s": min(walls),
    "steady_all_s": walls,
    "model_steps_per_s": k * steps / min(walls),
    "choice": first.metadata.get("chunk_choice"),
    "load_1min": load_average(),
  }


def run_chunks(
  out: str,
  *,
  tasks=TASKS,
  ks=KS,
  chunk_sizes=CHUNK_SIZES,
  steps: int = 200,
  batch_size: int = 100,
  repeats: int = 3,
  budget_s: float = 20.0,
  log=print,
) -> dict[str, Any]:
  """Time ``chunk_size="auto"`` and each fixed size (those at most K) per task and K.

  Returns:
    The report: ``environment``, ``settings``, ``rows`` (one per measurement) and
    ``summary`` (per task and K: the best fixed size, the auto choice, their
    ratio and whether it is within :data:`GOAL`).
  """
  os.makedirs(out, exist_ok=True)
  before = os.environ.get("LRLAB_CACHE_DIR")
  os.environ["LRLAB_CACHE_DIR"] = os.path.join(out, "chunk-cache")  # a fresh probe
  try:
    rows, summary, loads = _measure(
      tasks, ks, chunk_sizes, steps, batch_size, repeats, budget_s, log
    )
  finally:
    if before is None:
      os.environ.pop("LRLAB_CACHE_DIR", None)
    else:
      os.environ["LRLAB_CACHE_DIR"] = before
  env = environment()
  report = {
    "environment": env,
    "settings": {"steps": steps, "batch_size": batch_size, "repeats": repeats, "goal": GOAL},
    "load_average_1min": {"start": loads[0], "end": loads[-1]},
    "busy": busy(loads + [r["load_1min"] for r in rows], env["cores"]),
    "rows": rows,
    "summary": summary,
  }
  with open(os.path.join(out, "chunks.json"), "w") as f:
    json.dump(report, f, indent=2)
  with open(os.path.join(out, "chunks.md"), "w") as f:
    f.write(markdown(report))
  return report


def _measure(tasks, ks, chunk_sizes, steps, batch_size, repeats, budget_s, log):
  """``(rows, summary, loads)`` of :func:`run_chunks`."""
  import lrlab

  loads, rows, summary = [load_average()], [], []
  for name in tasks:
    task = lrlab.tasks.get(name)
    for k in ks:
      fixed = [c for c in chunk_sizes if c <= k]
      for chunk in ("auto", *fixed):
        row = {"task": name, "k": k, "steps": steps}
        row |= _time_sweep(task, k, chunk, steps, batch_size, repeats, budget_s)
        rows.append(row)
        log(
          f"  {name} K={k:<4d} chunk {chunk!s:>4} (ran {row['chosen']:>3d}): "
          f"{row['model_steps_per_s']:>9.0f} model-steps/s, first call {row['first_call_s']:.1f} s"
        )
        lrlab.sweep.clear_cache()
      mine = [r for r in rows if r["task"] == name and r["k"] == k]
      auto = mine[0]
      best = min(mine[1:], key=lambda r: r["steady_s"], default=None)
      entry = {"task": name, "k": k, "auto_chose": auto["chosen"]}
      if best is not None:
        ratio = auto["steady_s"] / best["steady_s"]
        entry |= {"best_fixed": best["chunk_size"], "auto_over_best_time": ratio}
        entry["met"] = ratio <= GOAL
      summary.append(entry)
  loads.append(load_average())
  return rows, summary, loads


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
    f"Each sweep: SGD momentum 0.9 at K log-spaced rates, {settings['steps']} steps of batch "
    f"{settings['batch_size']}; steady = best of up to {settings['repeats']} calls after the "
    "first (which compiles and, for auto, probes).",
  ]
  for entry in report["summary"]:
    task, k = entry["task"], entry["k"]
    mine = [r for r in report["rows"] if r["task"] == task and r["k"] == k]
    best = min((r["steady_s"] for r in mine[1:]), default=math.nan)
    lines += [
      "",
      f"**{task}, K={k}**",
      "",
      "| chunk_size | ran | first call s | steady s | model-steps/s | time / best fixed | load |",
      "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in mine:
      lines.append(
        f"| {r['chunk_size']} | {r['chosen']} | {r['first_call_s']:.1f} | {r['steady_s']:.3f} "
        f"| {r['model_steps_per_s']:,.0f} | {r['steady_s'] / best:.2f} | {r['load_1min']:.1f} |"
      )
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
