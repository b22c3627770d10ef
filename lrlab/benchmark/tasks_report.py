"""``tasks.md``: the per-task benchmark's report (:mod:`lrlab.benchmark.tasks`) as Markdown."""

from typing import Any

TITLES = {"sweep": "lrlab.sweep.run", "sequential": "lrlab loop"}


def _fmt(value, spec: str) -> str:
  return "-" if value is None else format(value, spec)


def markdown(report: dict[str, Any]) -> str:
  """The machine and ceiling, one row per (task, K, leg), the sweep over the loop, the goals."""
  env, ceiling, load = report["environment"], report["ceiling"], report["load_average_1min"]
  lines = [
    f"Machine: {env['cpu']}, {env['cores']} cores, caches {env.get('caches') or 'unknown'}; "
    f"JAX {env['jax']} ({env['backend']}, {len(env['devices'])} device(s)). Load average "
    f"(1 min) {_fmt(load['start'], '.2f')} at the start, {_fmt(load['end'], '.2f')} at the end.",
  ]
  if report["busy"]:
    lines += [
      "",
      "**Warning: other processes competed for the CPU during this run (load average above "
      "1.5x the cores; see the load column). Compare ratios within the run only.**",
    ]
  lines += [
    "",
    f"Matmul ceiling: {ceiling['ceiling']:.1f} GFLOP/s, the better of the run's start "
    f"({ceiling['at_start']['ceiling']:.1f}) and end ({ceiling['at_end']['ceiling']:.1f}); "
    "square float32 products, single-device or one per device sharded.",
    "",
    "Per model-step: the training step's products and convolutions counted from its shapes, "
    "plus the run's evaluation forwards (the training set once, val and test twice) spread "
    "over its steps (the sweep's: its step-0 pass once per device, as it runs); XLA's cost "
    "analysis of the training step (elementwise work included) beside it.",
    "",
    "| task | optimizer | K | leg | devices | steps | batch | MFLOP / model-step | XLA MFLOP "
    "/ train step | compile s | steady s | model-steps/s | GFLOP/s | of ceiling | load |",
    "|---|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
  ]
  specs = report["settings"]["tasks"]
  for r in report["rows"]:
    spec = specs[r["task"]]
    head = f"| {r['task']} | {spec['optimizer']} | {r['k']} | {TITLES.get(r['leg'], r['leg'])} |"
    if "model_steps_per_s" not in r:
      reason = r.get("skipped") or next(reversed((r.get("error") or "").splitlines()), "")
      lines.append(f"{head} {reason} |||||||||||")
      continue
    # The FLOPs the row's GFLOP/s count: the sweep's step-0 evaluation runs once per device.
    per_step = r.get("flops_per_model_step", r["flops"]["per_model_step"])
    xla = r["flops"].get("xla_train_step")
    lines.append(
      f"{head} {r['devices_used']} | {r['steps']} | {r['batch_size']} "
      f"| {per_step / 1e6:,.1f} | {_fmt(xla and xla / 1e6, ',.1f')} "
      f"| {_fmt(r['compile_s'], '.1f')} | {r['steady_s']:.2f} | {r['model_steps_per_s']:,.0f} "
      f"| {r['gflops_per_s']:.1f} | {r['fraction_of_ceiling']:.0%} "
      f"| {_fmt(r['load_1min'], '.1f')} |"
    )
  notes = [f"- {r['task']} K={r['k']}: {r['note']}" for r in report["rows"] if r.get("note")]
  lines += ["", *notes] if notes else []
  lines += [
    "",
    "| task | K | sweep / loop | sweep's fraction of the ceiling | largest Δ final val loss |",
    "|---|---:|---:|---:|---:|",
  ]
  for e in report["summary"]:
    lines.append(
      f"| {e['task']} | {e['k']} | {_fmt(e.get('sweep_over_sequential'), '.2f')} "
      f"| {_fmt(e.get('fraction_of_ceiling'), '.0%')} | {_fmt(e.get('val_loss_diff'), '.1e')} |"
    )
  lines += [
    "",
    "| goal (lm-transformer, K = 64) | target | measured | met |",
    "|---|---:|---:|---|",
  ]
  for name, goal in report["goals"].items():
    shown = "-" if goal["measured"] is None else f"{goal['measured']:.2f}"
    met = {True: "yes", False: "**no**", None: "-"}[goal["met"]]
    lines.append(f"| {name} | {goal['target']} | {shown} | {met} |")
  return "\n".join(lines) + "\n"
