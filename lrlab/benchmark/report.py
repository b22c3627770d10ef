"""The benchmark's report as a person reads it: one line per measurement while it runs, then
Markdown tables and the throughput figure, written beside ``report.json``."""

import json
import os
import textwrap
from typing import Any

from lrlab.benchmark.machine import BREAKDOWN
from lrlab.benchmark.workload import (
  LEG_TITLES,
  LEGS,
  LR_RANGE,
  MLP_SHAPED_PER_DEVICE,
  MOMENTUM,
  TARGET_K,
  TARGETS,
  TASK,
)


def row_line(row: dict[str, Any]) -> str:
  """One row of the report as a line of the console's progress: the leg's model-steps/s, GFLOP/s,
  steady and first-call seconds, or why it was skipped or failed."""
  if "model_steps_per_s" not in row:
    return f"  K={row['k']:<5d} {row['leg']:<13s} {row.get('skipped') or row.get('error')}"
  return (
    f"  K={row['k']:<5d} {row['leg']:<13s} {row['model_steps_per_s']:>11.0f} model-steps/s "
    f"{row['gflops_per_s']:7.1f} GFLOP/s  steady {row['steady_s']:.3f} s  "
    f"first {row['first_call_s']:.2f} s"
  )


def _fmt(value, spec: str) -> str:
  return "-" if value is None else format(value, spec)


def markdown(report: dict[str, Any]) -> str:
  """The report as Markdown: machine, ceiling, one row per (K, leg), ratios and targets."""
  env, ceiling, config = report["environment"], report["ceiling"], report["config"]
  load = report.get("load_average_1min") or {}
  warning = [
    "",
    "**Warning: other processes competed for the CPU during this run (load average above "
    "1.5x the cores; see the load column). Timings are unreliable; rerun on a quiet machine.**",
  ]
  lines = [
    f"Machine: {env['cpu']}, {env['cores']} cores, {_fmt(env['memory_gib'], '.0f')} GiB; "
    f"JAX {env['jax']} ({env['backend']}, {len(env['devices'])} device(s)); "
    f"PyTorch {env['torch'] or 'not installed'}. "
    f"Load average (1 min) {_fmt(load.get('start'), '.2f')} at the start, "
    f"{_fmt(load.get('end'), '.2f')} at the end.",
    *(warning if report.get("busy") else []),
    "",
    f"Workload: {TASK}, {config['steps']} steps, batch {config['batch_size']}, SGD momentum "
    f"{MOMENTUM}, K log-spaced rates in {list(LR_RANGE)}; "
    f"{report['flops']['per_model_step'] / 1e6:.2f} MFLOP per model-step (matmuls counted by "
    f"hand: {report['flops']['train_step'] / 1e6:.1f} per training step plus evaluation "
    f"amortized; XLA counts {_fmt(report['flops']['xla_train_step'], '.3g')} per training step)"
    f"{_executed(report)}.",
    "",
    f"Matmul ceiling: {ceiling['ceiling']:.1f} GFLOP/s (best of single-device "
    f"{max(ceiling['single'].values()):.1f} and sharded over {ceiling['devices']} device(s) "
    f"{max(ceiling['sharded'].values()):.1f}; measured at the start, {ceiling['at_start']:.1f}, "
    f"and at the end of the run, {ceiling['at_end']:.1f}; each leg is also framed by a "
    "ceiling measured just before and just after it in its own process, the *ceiling next* "
    "column: the better of the two, then before and after). The MLP's own product, "
    f"{MLP_SHAPED_PER_DEVICE} members per device of 100x100 @ 100x100, sharded, reaches "
    f"{ceiling['mlp_shaped']:.1f}; by operand layout, "
    + ", ".join(f"{name} {v:.1f}" for name, v in ceiling["mlp_shaped_layouts"].items())
    + " (the weight gradient of a batch-major layer is A^T B).",
    *_breakdown_lines(report),
    "",
    "| K | leg | devices | compile s | steady s | model-steps/s | GFLOP/s | of ceiling "
    "| ceiling next | of ceiling next | peak RSS MiB | leg RSS MiB | recompiles | Δ val loss "
    "| load |",
    "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
  ]
  for r in report["rows"]:
    if "model_steps_per_s" not in r:
      reason = r.get("skipped") or next(reversed(r.get("error", "").splitlines()), "")
      lines.append(f"| {r['k']} | {LEG_TITLES[r['leg']]} | {reason} |||||||||||||")
      continue
    lines.append(
      f"| {r['k']} | {r['title']} | {r['devices_used']} | {_fmt(r['compile_s'], '.2f')} "
      f"| {r['steady_s']:.3f} | {r['model_steps_per_s']:,.0f} | {r['gflops_per_s']:.1f} "
      f"| {r['fraction_of_ceiling']:.0%} | {_next_ceiling(r)} "
      f"| {_fmt(r.get('fraction_of_ceiling_next'), '.0%')} | {_fmt(r['peak_rss_mib'], '.0f')} "
      f"| {_fmt(r['leg_rss_mib'], '.0f')} | {r['recompiles']} "
      f"| {_fmt(r.get('max_abs_diff'), '.1e')} | {_fmt(r.get('load_1min'), '.1f')} |"
    )
  notes = [f"- {r['leg']} K={r['k']}: {r['note']}" for r in report["rows"] if r.get("note")]
  if notes:
    lines += ["", *notes]
  legs = [
    g for g in (*LEGS[1:], "best_torch") if any(f"sweep_over_{g}" in e for e in report["ratios"])
  ]
  if legs:
    titles = LEG_TITLES | {"best_torch": "best PyTorch leg"}
    lines += ["", "| K | " + " | ".join(f"sweep / {titles[g]}" for g in legs) + " |"]
    lines.append("|---:|" + "---:|" * len(legs))
    for e in report["ratios"]:
      cells = [_fmt(e.get(f"sweep_over_{g}"), ".2f") + "x" for g in legs]
      lines.append(f"| {e['k']} | " + " | ".join(cells) + " |")
  targets = report["targets"]
  if targets:
    where = f"K={targets['k']}" + ("" if targets["at_target_k"] else f" (not {TARGET_K})")
    lines += ["", f"| target at {where} | goal | measured | met |", "|---|---:|---:|---|"]
    for name in TARGETS:
      t = targets[name]
      fraction = name.startswith("fraction_of_ceiling")
      goal = f"{t['target']:.0%}" if fraction else f"{t['target']}x"
      value = _fmt(t["measured"], ".0%" if fraction else ".2f")
      met = {True: "yes", False: "**no**", None: "-"}[t["met"]]
      lines.append(f"| {name} | {goal} | {value} | {met} |")
  return "\n".join(lines) + "\n"


def _executed(report: dict[str, Any]) -> str:
  """The sweep's own FLOPs per model-step, where its rows record fewer (its step-0 evaluation
  runs once per device, not per member)."""
  counted = report["flops"]["per_model_step"]
  sweeps = [r for r in report["rows"] if r["leg"] == "sweep"]
  counts = sorted({r["flops_per_model_step"] for r in sweeps if "flops_per_model_step" in r})
  counts = [c / 1e6 for c in counts if c < counted]
  if not counts:
    return ""
  spread = f"{counts[0]:.2f}" if len(counts) == 1 else f"{counts[0]:.2f} to {counts[-1]:.2f}"
  return (
    f"; the sweep executes {spread}, its step-0 evaluation run once per device and copied to "
    "the device's other members"
  )


def _next_ceiling(row: dict[str, Any]) -> str:
  """The ceiling measured next to a leg: the better of before and after, both shown."""
  if not row.get("ceiling_next"):
    return "-"
  return f"{row['ceiling_next']:.0f} ({row['ceiling_before']:.0f}, {row['ceiling_after']:.0f})"


def _breakdown_lines(report: dict[str, Any]) -> list[str]:
  """The step built up rung by rung (:func:`breakdown`), as a Markdown table."""
  rungs = report.get("breakdown")
  if not rungs:
    return []
  devices = report["ceiling"]["devices"]
  lines = [
    "",
    f"Where the time goes: the training step built up, {MLP_SHAPED_PER_DEVICE} members per "
    f"device on {devices} device(s), {report['config']['steps']} steps.",
    "",
    "| step | GFLOP/s | of ceiling |",
    "|---|---:|---:|",
  ]
  for name, title in BREAKDOWN.items():
    value = rungs[name]
    lines.append(f"| {title} | {value:.1f} | {value / report['ceiling']['ceiling']:.0%} |")
  return lines


def plot(report: dict[str, Any], path: str) -> None:
  """Model-steps/s against K for each leg, log-log, with the matmul ceiling's equivalent; beside
  it, when measured, the breakdown's rungs and the sweep in GFLOP/s against the ceiling."""
  import matplotlib

  matplotlib.use("Agg")
  import matplotlib.pyplot as plt
  import matplotlib.ticker

  rungs = report.get("breakdown")
  fig, axes = plt.subplots(
    1, 2 if rungs else 1, figsize=(13 if rungs else 6.5, 4.8), layout="constrained"
  )
  ax = axes[0] if rungs else axes
  for leg in LEGS:
    points = sorted((r["k"], r["model_steps_per_s"]) for r in report["rows"]
                    if r["leg"] == leg and "model_steps_per_s" in r)  # fmt: skip
    if points:
      ax.plot(*zip(*points, strict=True), marker="o", label=LEG_TITLES[leg])
  ceiling = report["ceiling"]["ceiling"]
  per_step = report["flops"]["per_model_step"]
  ax.axhline(ceiling * 1e9 / per_step, color="k", ls="--", lw=1, label="matmul ceiling")
  backend = report["environment"]["backend"]
  ax.set(xscale="log", yscale="log", xlabel="K (learning rates trained)",
         ylabel="model-steps / s", title=f"{TASK}: throughput ({backend})")  # fmt: skip
  ks = sorted({r["k"] for r in report["rows"]})
  ax.set_xticks(ks, [str(k) for k in ks])
  ax.xaxis.set_minor_locator(matplotlib.ticker.NullLocator())
  ax.grid(True, which="both", alpha=0.3)
  ax.legend(fontsize="small")
  if rungs:
    _plot_breakdown(axes[1], report)
  fig.savefig(path, dpi=120)
  plt.close(fig)


def _plot_breakdown(ax, report: dict[str, Any]) -> None:
  """Horizontal bars: each rung of :func:`breakdown`, then the sweep at the target's K."""
  ceiling = report["ceiling"]["ceiling"]
  labels = [textwrap.fill(title, 34) for title in BREAKDOWN.values()]
  values = [report["breakdown"][name] for name in BREAKDOWN]
  colors = ["0.6"] * len(values)
  k = (report.get("targets") or {}).get("k")
  sweep = next((r for r in report["rows"] if r["leg"] == "sweep" and r["k"] == k), None)
  if sweep is not None and "gflops_per_s" in sweep:
    labels.append(f"lrlab.sweep.run, K={k}")
    values.append(sweep["gflops_per_s"])
    colors.append("C0")
  y = range(len(values))[::-1]
  ax.barh(list(y), values, color=colors)
  ax.set_yticks(list(y), labels, fontsize="small")
  for position, value in zip(y, values, strict=True):
    ax.text(value, position, f" {value / ceiling:.0%}", va="center", fontsize="small")
  ax.axvline(ceiling, color="k", ls="--", lw=1, label="matmul ceiling")
  goal = TARGETS["fraction_of_ceiling"] * ceiling
  ax.axvline(goal, color="C3", ls=":", lw=1.5, label=f"{TARGETS['fraction_of_ceiling']:.0%} target")
  ax.set(xlabel="GFLOP/s (hand-counted matmul FLOPs)", title="Where the time goes")
  ax.set_xlim(0, 1.15 * max(ceiling, *values))
  ax.legend(fontsize="small", loc="lower right")


def write_report(report: dict[str, Any], out: str) -> dict[str, str]:
  """Write ``report.json``, ``report.md`` and ``throughput.png`` under ``out``; their paths."""
  os.makedirs(out, exist_ok=True)
  paths = {name: os.path.join(out, name) for name in ("report.json", "report.md", "throughput.png")}
  with open(paths["report.json"], "w") as f:
    json.dump(report, f, indent=2)
  with open(paths["report.md"], "w") as f:
    f.write(markdown(report))
  plot(report, paths["throughput.png"])
  return paths
