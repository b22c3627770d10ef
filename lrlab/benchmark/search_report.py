"""The search benchmark's report (:mod:`lrlab.benchmark.search`): its Markdown page
(``search.md``) and the summary table BENCHMARKS.md quotes, from its JSON report."""

from typing import Any

import numpy as np


def ref_test(run: dict[str, Any]) -> float:
  """The grid's retrained test metric in one task's run."""
  return run["methods"]["grid"]["test"]


def markdown(report: dict[str, Any]) -> str:
  """A table per task: method, wall-clock, model-steps, picked rate, retrained test metric."""
  lines = [f"Time to the answer ({report['machine']}); K = {report['k']} rates in "
           f"[1e-4, 1], {report['steps']} steps, eta = {report['eta']}; load: the 1-minute "
           "load average before-after each method.", ""]  # fmt: skip
  for run in report["runs"]:
    lines += [f"### {run['task']}, {run['optimizer']} (test: {run['test_metric']}, mean of "
              f"{report['retrain_seeds']} seeds at the full budget)", "",
              "| method | wall s | vs grid | load | model-steps | vs grid | lr | test | - grid |",
              "|---|---|---|---|---|---|---|---|---|"]  # fmt: skip
    for name, m in run["methods"].items():
      load = "-".join(f"{a:.1f}" for a in m.get("load_average", []))
      lines.append(
        f"| {name} | {m['wall_seconds']:.1f} | {m['wall_vs_grid']:.0%} | {load} | "
        f"{m['model_steps']:,} | {m['model_steps_vs_grid']:.0%} | {m['lr']:.3g} | "
        f"{m['test']:.4f} | {m['test_minus_grid']:+.4f} |"
      )
    if "task_options" in run:
      given = ", ".join(f"{k} = {v:,}" for k, v in run["task_options"].items())
      lines.append(f"\nThe task built with {given}.")
    if "grid_before_halving" in run["methods"] and "halving" in run["methods"]:
      lines.append("\nhalving's wall-clock is against grid_before_halving, timed just before it.")
    if "pbt" in run:
      p = run["pbt"]
      lines.append(f"\nPBT: an exploit every {p['interval']} steps, perturb factors "
                   f"{tuple(p['perturb'])}, fraction 0.25.")  # fmt: skip
    for name, m in run["methods"].items():
      if "own_test" in m:
        gap = m["own_test"] - ref_test(run)
        lines.append(f"\n{name}: its best member's own run (its schedule) reaches test "
                     f"{m['own_test']:.4f}, {gap:+.4f} against the grid.")  # fmt: skip
    corr = ", ".join(f"{s}: {c:.2f}" for s, c in run["rank_correlation"].items())
    lines += ["", f"Spearman rank correlation of the val metric at a rung with the final: {corr}.",
              ""]  # fmt: skip
  return "\n".join(lines)


LABELS = {
  "grid": "full grid", "grid_before_halving": "full grid, again (just before halving)",
  "halving": "successive halving", "hyperband": "Hyperband", "pbt": "PBT (every K/8-th rate)",
  "random": "random search", "optuna_loop": "Optuna TPE, a loop of lrlab single runs",
  "optuna_batched": "Optuna TPE through run_study", "pbt_from_low": "PBT from rates 10x too small",
  "pbt_from_high": "PBT from rates 10x too large",
}  # fmt: skip


def summary_table(report: dict[str, Any]) -> str:
  """The table BENCHMARKS.md quotes: per method and run, wall-clock (its ratio to the grid's;
  the mean 1-minute load average before and after),
  model-steps against the grid's, and the test metric's difference from the grid's in points
  (for ``pbt_from_*``, its best member's own run: the goal's measure)."""
  runs = report["runs"]
  head = "| method | " + " | ".join(
    f"{r['task']} {r['optimizer']}: wall (vs grid, load) | model-steps | test - grid" for r in runs
  )
  lines = [head + " |", "|---" + "|---|---|---" * len(runs) + "|"]
  for name, label in LABELS.items():
    if not all(name in r["methods"] for r in runs):
      continue
    cells = []
    for r in runs:
      m, ref = r["methods"][name], ref_test(r)
      test = m.get("own_test", m["test"])
      diff = f"({ref:.3f})" if name == "grid" else f"{100 * (test - ref):+.1f} points"
      load = f", load {np.mean(m['load_average']):.0f}" if "load_average" in m else ""
      cells.append(f"{m['wall_seconds']:.1f} s ({m['wall_vs_grid']:.0%}{load}) | "
                   f"{m['model_steps_vs_grid']:.0%} | {diff}")  # fmt: skip
    lines.append(f"| {label} | " + " | ".join(cells) + " |")
  return "\n".join(lines)
