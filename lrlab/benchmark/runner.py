"""The benchmark's run: the ceiling at the start and the end, every (leg, K) in a fresh
subprocess (or in this process), and the ratios and targets drawn from the rows."""

import dataclasses
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from lrlab.benchmark.legs import measure_leg
from lrlab.benchmark.machine import ceiling_next_to_leg, measure_machine
from lrlab.benchmark.probes import busy, load_average
from lrlab.benchmark.report import row_line
from lrlab.benchmark.workload import (
  AGREEMENT_REFERENCES,
  LEGS,
  TARGET_K,
  TARGETS,
  TASK,
  TORCH_LEGS,
  Config,
  learning_rates,
  xla_flags,
)

WORKER_MARK = "BENCHMARK-RESULT "


def worker_main(spec: dict[str, Any]) -> None:
  """Run one measurement in this (fresh) process and print it as one JSON line."""
  if spec["kind"] in ("task", "task_ceiling"):  # scripts/benchmark.py --tasks
    from lrlab.benchmark import tasks

    print(WORKER_MARK + json.dumps(tasks.worker(spec)), flush=True)
    return
  fields = spec["config"]
  config = Config(**{**fields, **{f: tuple(fields[f]) for f in ("ks", "legs", "ceiling_sizes")}})
  if spec["kind"] == "ceiling":
    result = measure_machine(config)
  else:
    result = leg_between_ceilings(spec["leg"], spec["k"], config)
  print(WORKER_MARK + json.dumps(result), flush=True)


def leg_between_ceilings(leg: str, k: int, config: Config) -> dict[str, Any]:
  """:func:`~lrlab.benchmark.legs.measure_leg`, with the matmul ceiling measured just before
  and just after it in the same process (:func:`~lrlab.benchmark.machine.ceiling_next_to_leg`).

  The row gains ``ceiling_before`` and ``ceiling_after`` (GFLOP/s) and ``ceiling_next``, the
  better of the two (a busy machine only lowers a ceiling); :func:`summarize` divides the leg's
  GFLOP/s by it (``fraction_of_ceiling_next``). A skipped leg is not framed by ceilings.
  """
  before = ceiling_next_to_leg(config)
  row = measure_leg(leg, k, config)
  if "gflops_per_s" not in row:
    return row
  after = ceiling_next_to_leg(config)
  framed = {"ceiling_before": before, "ceiling_after": after, "ceiling_next": max(before, after)}
  return {**row, **framed}


def _in_subprocess(spec: dict[str, Any], config: Config, timeout: float) -> dict[str, Any]:
  env = dict(os.environ)
  env["XLA_FLAGS"] = xla_flags(config.devices, env.get("XLA_FLAGS", ""))
  root = str(Path(__file__).resolve().parents[2])  # the folder that holds lrlab
  env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH")) if p)
  command = [sys.executable, "-m", "lrlab.benchmark", "--worker", json.dumps(spec)]
  try:
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=timeout)
  except subprocess.TimeoutExpired:
    return {"error": f"timed out after {timeout:.0f} s"}
  for line in done.stdout.splitlines():
    if line.startswith(WORKER_MARK):
      return json.loads(line[len(WORKER_MARK) :])
  return {"error": (done.stderr or done.stdout).strip()[-2000:]}


def check_config(config: Config) -> None:
  """Refuse, before anything is measured, a ``config`` whose legs cannot train.

  Raises:
    ValueError: one line naming the field: no legs, a leg outside :data:`LEGS`, or a
      ``batch_size`` above the training examples of :data:`TASK`.
  """
  import lrlab

  if not config.legs or set(config.legs) - set(LEGS):
    raise ValueError(f"legs must be a non-empty subset of {LEGS}; got {config.legs!r}.")
  num_train = lrlab.tasks.get(TASK).num_train
  if config.batch_size > num_train:
    raise ValueError(
      f"batch_size (--batch-size) must be an integer in [1, {num_train}] (the training "
      f"examples of {TASK!r}); got {config.batch_size}."
    )


def run_benchmark(config: Config, *, isolate: bool = True, log=print) -> dict[str, Any]:
  """Measure the matmul ceiling and every (leg, K); return the report.

  Args:
    config: what to run.
    isolate: run each measurement in a fresh subprocess (clean peak memory,
      no JIT caches shared between legs); otherwise in this process.
    log: where progress lines go.

  Returns:
    The report: ``config``, ``environment``, ``ceiling``, ``flops``,
    ``rows`` (one per leg and K), ``ratios`` and ``targets``.

  Raises:
    ValueError: for a ``config`` :func:`check_config` refuses, before any measurement.
  """
  check_config(config)
  started = time.time()
  load = [load_average()]
  timeout = 3600.0

  def measure_ceiling():
    if not isolate:
      return measure_machine(config)
    spec = {"kind": "ceiling", "config": dataclasses.asdict(config)}
    measured = _in_subprocess(spec, config, timeout)
    if "error" in measured:
      raise RuntimeError(f"the matmul-ceiling worker failed: {measured['error']}")
    return measured

  first = measure_ceiling()
  env, flops = first["environment"], first["flops"]
  log(f"matmul ceiling {first['ceiling']['ceiling']:.1f} GFLOP/s (start of the run)")
  rows = []
  for k in config.ks:
    for leg in config.legs:
      if isolate:
        spec = {"kind": "leg", "leg": leg, "k": k, "config": dataclasses.asdict(config)}
        row = {"leg": leg, "k": k, **_in_subprocess(spec, config, timeout)}
      else:
        row = leg_between_ceilings(leg, k, config)
      rows.append(row)
      log(row_line(row))
  last = measure_ceiling()
  log(f"matmul ceiling {last['ceiling']['ceiling']:.1f} GFLOP/s (end of the run)")
  ceiling = _best_ceiling(first["ceiling"], last["ceiling"])
  # Like the ceiling, each rung's better measurement counts: a busy machine only lowers it.
  steps_built_up = {n: max(v, last["breakdown"][n]) for n, v in first["breakdown"].items()}
  load.append(load_average())
  report = {
    "config": dataclasses.asdict(config),
    "environment": env,
    "load_average_1min": {"start": load[0], "end": load[-1]},
    "busy": busy(load + [r.get("load_1min") for r in rows], env["cores"]),
    "wall_s": time.time() - started,
    "isolated": isolate,
    "ceiling": ceiling,
    "breakdown": steps_built_up,
    "flops": flops,
    "rows": rows,
  }
  report["ratios"], report["targets"] = summarize(rows, ceiling["ceiling"])
  return report


def _best_ceiling(start: dict[str, Any], end: dict[str, Any]) -> dict[str, Any]:
  """The better of two ceiling measurements, size by size (a busy machine only lowers them)."""
  best = lambda a, b: {n: max(a[n], b[n]) for n in a}
  return {
    "single": best(start["single"], end["single"]),
    "sharded": best(start["sharded"], end["sharded"]),
    "mlp_shaped": max(start["mlp_shaped"], end["mlp_shaped"]),
    "mlp_shaped_layouts": best(start["mlp_shaped_layouts"], end["mlp_shaped_layouts"]),
    "ceiling": max(start["ceiling"], end["ceiling"]),
    "devices": start["devices"],
    "at_start": start["ceiling"],
    "at_end": end["ceiling"],
  }


def _agreement(losses, reference, stable_lr: float = 0.01) -> float | None:
  """Largest |final val loss - the reference leg's| over members with rate <= ``stable_lr``.

  The legs train the same members from the same start on the same minibatches,
  so they agree to float32 rounding where no member diverges (lrlab freezes a
  diverged run, PyTorch does not, so large rates are left out).
  """
  if not losses or not reference or len(losses) != len(reference):
    return None
  rates = learning_rates(len(losses))
  diffs = [
    abs(a - b)
    for a, b, lr in zip(losses, reference, rates, strict=True)
    if lr <= stable_lr and a is not None and b is not None
  ]
  return max(diffs) if diffs else None


def summarize(rows, ceiling: float) -> tuple[list[dict[str, Any]], dict[str, Any]]:
  """Ratios of model-steps/s per K, each leg's fraction of ``ceiling``, and the targets.

  Returns:
    ``(ratios, targets)``: ``ratios`` has one entry per K with
    ``sweep_over_<leg>`` quotients of the reported ``model_steps_per_s``, and
    ``sweep_over_best_torch`` over the fastest PyTorch leg (named in ``best_torch``); each
    row gains ``fraction_of_ceiling`` (over the run's ``ceiling``) and, where the leg was
    framed by ceilings (:func:`leg_between_ceilings`), ``fraction_of_ceiling_next`` (over the
    ceiling measured next to it);
    ``targets`` checks the targets (:data:`~lrlab.benchmark.workload.TARGETS`) at
    K = 512 (or the largest K measured, marked as such).
  """
  rate = {(r["leg"], r["k"]): r["model_steps_per_s"] for r in rows if "model_steps_per_s" in r}
  reference = {}  # per K: the final losses of the vmap leg, else of the lrlab loop
  for leg in reversed(AGREEMENT_REFERENCES):  # a leg that failed or was skipped has no losses
    reference.update({r["k"]: r["final_val_loss"] for r in rows
                      if r["leg"] == leg and r.get("final_val_loss")})  # fmt: skip
  for r in rows:
    if "gflops_per_s" in r:
      r["fraction_of_ceiling"] = r["gflops_per_s"] / ceiling
    if "gflops_per_s" in r and r.get("ceiling_next"):
      r["fraction_of_ceiling_next"] = r["gflops_per_s"] / r["ceiling_next"]
    r["max_abs_diff"] = _agreement(r.get("final_val_loss"), reference.get(r["k"]))
  ratios = []
  for k in sorted({r["k"] for r in rows}):
    entry = {"k": k}
    if ("sweep", k) in rate:
      for leg in LEGS[1:]:
        if (leg, k) in rate:
          entry[f"sweep_over_{leg}"] = rate["sweep", k] / rate[leg, k]
      torch_rates = {leg: rate[leg, k] for leg in TORCH_LEGS if (leg, k) in rate}
      if torch_rates:  # the best PyTorch leg: what a PyTorch user would get at best
        entry["best_torch"] = max(torch_rates, key=torch_rates.get)
        entry["sweep_over_best_torch"] = rate["sweep", k] / max(torch_rates.values())
    ratios.append(entry)
  swept = [r for r in rows if r["leg"] == "sweep" and "model_steps_per_s" in r]
  if not swept:
    return ratios, {}
  k = TARGET_K if any(r["k"] == TARGET_K for r in swept) else max(r["k"] for r in swept)
  at = next(e for e in ratios if e["k"] == k)
  sweep = next(r for r in swept if r["k"] == k)
  measured = {
    "fraction_of_ceiling": sweep["fraction_of_ceiling"],
    "fraction_of_ceiling_next": sweep.get("fraction_of_ceiling_next"),
    "sweep_over_sequential": at.get("sweep_over_sequential"),
    "sweep_over_torch": at.get("sweep_over_torch"),
    "sweep_over_best_torch": at.get("sweep_over_best_torch"),
  }
  targets = {"k": k, "at_target_k": k == TARGET_K}
  for name, goal in TARGETS.items():
    value = measured[name]
    targets[name] = {
      "target": goal,
      "measured": value,
      "met": None if value is None else value >= goal,
    }
  return ratios, targets
