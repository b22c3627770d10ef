"""The streaming benchmark's report: a Markdown page from the JSON report of
:mod:`lrlab.benchmark.streaming`, and both written to a folder."""

import json
import os
from typing import Any

from lrlab.benchmark.workload import MOMENTUM

TASK = "mnist1d-mlp"
LEG_TITLES = {
  "resident": "resident (on device)",
  "streamed": "streamed (ArraySource)",
  "memmap": "streamed (NumPy memmap)",
}


def _caches_line(caches: list[dict[str, Any]]) -> str:
  kind = {"Data": "d", "Instruction": "i"}
  return ", ".join(
    f"L{c['level']}{kind.get(c['type'], '')} {c['size']} (CPUs {c['shared_cpu_list']})"
    for c in caches
  )


def markdown(report: dict[str, Any]) -> str:
  """The report as Markdown: machine, settings, one table of legs per data size, identity."""
  env, config = report["environment"], report["config"]
  load = report["load_average_1min"]
  fmt = lambda v, spec: "-" if v is None else format(v, spec)
  optimizer = f"SGD momentum {MOMENTUM}" if config["optimizer"] == "sgd" else "Adam"
  lines = [
    f"Machine: {env['cpu']}, {env['cores']} cores ({len(env['devices'])} JAX device(s)), "
    f"{fmt(env['memory_gib'], '.0f')} GiB; caches {_caches_line(env['caches']) or 'unknown'}; "
    f"JAX {env['jax']} ({env['backend']}). Load average (1 min) {fmt(load['start'], '.2f')} "
    f"at the start, {fmt(load['end'], '.2f')} at the end.",
  ]
  if report["busy"]:
    lines += [
      "",
      "**Warning: other processes competed for the CPU during this run (load average above "
      "1.5x the cores). Timings are unreliable; rerun on a quiet machine.**",
    ]
  lines += [
    "",
    f"Workload: `lrlab.sweep.run` on {TASK}, K={config['k']} learning rates log-spaced in "
    f"[0.001, 1], {optimizer}, {config['steps']} steps of batch {config['batch_size']}, "
    f"evaluation every {config['eval_every']} steps in batches of {config['eval_batch_size']}; "
    f"best of {config['repeats']} round-robin calls after a compiling first call.",
    "",
    "| data (train/val/test) | leg | chunk | first call s | best s | median s | model-steps/s "
    "| / resident | cost | ≤ 10% | recompiles |",
    "|---|---|---:|---:|---:|---:|---:|---:|---:|---|---:|",
  ]
  for size in report["sizes"]:
    s = size["split_sizes"]
    data = f"{size['num_samples']:,} ({s['train']:,}/{s['val']:,}/{s['test']:,})"
    for r in size["rows"]:
      ratio = "-" if "ratio" not in r else f"{r['ratio']:.3f}"
      cost = "-" if "cost" not in r else f"{r['cost']:+.1%}"
      met = "-" if "goal_met" not in r else ("yes" if r["goal_met"] else "**no**")
      lines.append(
        f"| {data} | {r['title']} | {r['chunk_size']} | {r['first_call_s']:.2f} "
        f"| {r['steady_s']:.3f} | {r['median_s']:.3f} | {r['model_steps_per_s']:,.0f} "
        f"| {ratio} | {cost} | {met} | {r['recompiles']} |"
      )
  lines += [
    "",
    "| data | leg | bit-identical to resident | fields that differ |",
    "|---|---|---|---|",
  ]
  for size in report["sizes"]:
    for leg, c in size["identity"].items():
      differ = [
        f"{name} ({f['differing']} entries, up to {fmt(f['max_abs_diff'], '.1e')})"
        for name, f in c["fields"].items()
        if not f["identical"]
      ]
      lines.append(
        f"| {size['num_samples']:,} | {LEG_TITLES[leg]} | {'yes' if c['identical'] else '**no**'} "
        f"| {', '.join(differ) or '-'} |"
      )
  verdict = "met" if report["goal_met"] else "**not met**"
  lines += ["", f"Goal (streaming costs at most 10% of throughput): {verdict}."]
  return "\n".join(lines) + "\n"


def write_report(report: dict[str, Any], out: str) -> dict[str, str]:
  """Write ``streaming.json`` and ``streaming.md`` under ``out``; their paths."""
  os.makedirs(out, exist_ok=True)
  paths = {name: os.path.join(out, name) for name in ("streaming.json", "streaming.md")}
  with open(paths["streaming.json"], "w") as f:
    json.dump(report, f, indent=2)
  with open(paths["streaming.md"], "w") as f:
    f.write(markdown(report))
  return paths


# --- command line --------------------------------------------------------------------------------
