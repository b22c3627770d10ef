"""The search benchmark's report (:mod:`lrlab.benchmark.search`): its Markdown page
(``search.md``) and the summary table BENCHMARKS.md quotes, from its JSON report."""

import math
import os
from typing import Any

import numpy as np

from lrlab.analysis import stats

#: Successive halving's quality goal (issue 18): its pick's full-budget test metric within
#: ``points`` accuracy points of the grid's pick's, or, for a loss, within ``loss_percent``
#: percent of the grid's loss.
GOAL = {"points": 0.5, "loss_percent": 1.0}
#: PBT's quality goal from a population 10x off (issue 18): its best member's own test metric
#: within 1 point of the grid's pick's. The issue states it in points only; for a loss it is
#: taken as 2% (twice halving's 1%, as 1 point is twice halving's 0.5).
PBT_GOAL = {"points": 1.0, "loss_percent": 2.0}
#: The verdicts of :func:`goal_verdict` (:func:`halving_goal`, :func:`pbt_goal`).
GOAL_VERDICTS = ("met", "within noise", "missed")


def seed_statistics(per_seed: np.ndarray, grid_per_seed: np.ndarray) -> dict[str, float]:
  r"""A method's retrained quality and its paired difference from the grid's pick, by seed.

  With the method's per-seed test metrics :math:`a_s` and the grid pick's :math:`b_s` over
  the same ``S`` seeds (the same keys: same initial parameters and minibatches):

  - ``test`` :math:`= \bar a`, ``test_se`` :math:`= \mathrm{std}(a, \text{ddof}=1)/\sqrt S`;
  - ``test_minus_grid`` :math:`= \bar d`, ``test_minus_grid_se``
    :math:`= \mathrm{std}(d, \text{ddof}=1)/\sqrt S` with :math:`d_s = a_s - b_s`
    (:func:`lrlab.analysis.paired_difference`, without a test-set term).

  The standard errors are NaN with one seed; a method that picked the grid's rate has a
  difference of exactly 0 with SE 0.

  Args:
    per_seed: ``(S,)`` the method's test metric, seed by seed.
    grid_per_seed: ``(S,)`` the grid pick's, for the same seeds.
  """
  a = np.asarray(per_seed, np.float64)
  b = np.asarray(grid_per_seed, np.float64)
  if a.ndim != 1 or a.shape != b.shape or a.size == 0:
    raise ValueError(f"per_seed and grid_per_seed must be 1-D of one non-empty shape (seeds); "
                     f"got {a.shape} and {b.shape}.")  # fmt: skip
  paired = stats.paired_difference(a, b)
  return {
    "test": float(np.mean(a)),
    "test_se": float(a.std(ddof=1) / math.sqrt(a.size)) if a.size > 1 else math.nan,
    "test_minus_grid": paired["gap"],
    "test_minus_grid_se": paired["se"],
  }


def halving_goal(run: dict[str, Any], name: str = "halving") -> dict[str, Any]:
  """Issue 18's quality goal for successive halving in one task's run, judged against noise.

  ``name`` is the halving method's row (``"halving"`` or ``"halving_3_rungs"``).

  ``difference`` is halving's retrained test metric minus the grid's (the mean of the per-seed
  differences), in accuracy points (100x) for an accuracy, or in percent of the grid's mean
  loss for a loss; ``se`` is its standard error in the same unit. The goal is ``met`` if
  halving is at most :data:`GOAL`'s 0.5 points (1% of the loss) worse than the grid (better
  is met too); otherwise ``within noise`` if the difference is not beyond 2 SE
  (``|difference| <= 2 se``, as :func:`lrlab.analysis.verdict`), else ``missed``. With one
  seed there is no SE: ``beyond_2se`` is None and an unmet goal is ``missed``.

  Returns:
    ``{"difference", "se", "unit", "threshold", "beyond_2se", "verdict", "seeds"}``.
  """
  return _goal(run, name, "test", GOAL)


def pbt_goal(run: dict[str, Any], name: str) -> dict[str, Any]:
  """Issue 18's goal for PBT from a population 10x off, judged as :func:`halving_goal` is.

  ``name`` is the row (``"pbt_from_low"`` or ``"pbt_from_high"``); its measure is the best
  member's own test metric over independent populations (``own_test_seeds``, paired with the
  grid pick's retrains), and the threshold :data:`PBT_GOAL`'s 1 point (2% of a loss).
  """
  return _goal(run, name, "own_test", PBT_GOAL)


def _unit(run: dict[str, Any]) -> tuple[float, str]:
  """``(scale, unit)`` of a run's test-metric differences: accuracy points (100x), or percent
  of the grid's mean test loss for a loss."""
  if run["test_metric"].endswith("accuracy"):
    return 100.0, "points"
  return 100.0 / run["methods"]["grid"]["test"], "% of the loss"


def _goal(run: dict[str, Any], name: str, measure: str, goal: dict[str, float]) -> dict[str, Any]:
  row = run["methods"][name]
  scale, unit = _unit(run)
  accuracy = unit == "points"
  threshold = goal["points"] if accuracy else goal["loss_percent"]
  worse = -1.0 if accuracy else 1.0
  difference = scale * row[f"{measure}_minus_grid"]
  se = scale * row[f"{measure}_minus_grid_se"]
  beyond, verdict = goal_verdict(worse * difference, se, threshold)
  seeds = len(row[f"{measure}_seeds"])
  return {"difference": difference, "se": se, "unit": unit, "threshold": threshold,
          "beyond_2se": beyond, "verdict": verdict, "seeds": seeds}  # fmt: skip


def goal_verdict(shortfall: float, se: float, threshold: float) -> tuple[bool | None, str]:
  """``(beyond_2se, verdict)`` of a goal "at most ``threshold`` worse than the reference".

  ``shortfall`` is how much worse the method is (positive: worse), ``se`` its standard error,
  both in the threshold's unit. ``met`` if ``shortfall <= threshold``; otherwise ``within
  noise`` if ``|shortfall| <= 2 se`` (as :func:`lrlab.analysis.verdict`), else ``missed``.
  ``beyond_2se`` is None (and an unmet goal ``missed``) when ``se`` is not finite (one seed).
  """
  beyond = bool(abs(shortfall) > 2 * se) if math.isfinite(se) else None
  if shortfall <= threshold:
    return beyond, "met"
  return beyond, "within noise" if beyond is False else "missed"


def _has_se(run: dict[str, Any]) -> bool:
  """Whether the run keeps per-seed test metrics (reports before them have means only)."""
  return "test_se" in run["methods"]["grid"]


def ref_test(run: dict[str, Any]) -> float:
  """The grid's retrained test metric in one task's run."""
  return run["methods"]["grid"]["test"]


def compile_cache_state() -> dict[str, Any] | None:
  """JAX's persistent compilation cache as this benchmark finds it: ``dir`` and
  ``programs_at_start`` (the entries already there: a cache a previous run of the same
  benchmark filled is warm, and every method's compiling is then mostly a read from disk), or
  ``None`` where it is off, the default (set ``JAX_COMPILATION_CACHE_DIR``, and
  ``JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS=0`` so that programs compiled in under a second,
  most of a sweep's on a CPU, are kept too)."""
  import jax

  path = jax.config.jax_compilation_cache_dir
  if not path:
    return None
  programs = 0
  if os.path.isdir(path):  # one file per program, named ...-cache (beside any -atime files)
    programs = sum(1 for e in os.scandir(path) if e.name.endswith("-cache"))
  return {
    "dir": str(path),
    "programs_at_start": programs,
    "min_compile_time_secs": float(jax.config.jax_persistent_cache_min_compile_time_secs),
  }


def markdown(report: dict[str, Any]) -> str:
  """A table per task: method, wall-clock, model-steps, picked rate, retrained test metric."""
  lines = [f"Time to the answer ({report['machine']}); K = {report['k']} rates in "
           f"[1e-4, 1], {report['steps']} steps, eta = {report['eta']}; load: the 1-minute "
           "load average before-after each method.", ""]  # fmt: skip
  cache = report.get("compile_cache")
  if cache:
    lines += [f"JAX's persistent compilation cache on ({cache['programs_at_start']:,} "
              "programs in it at the start): a method's compiling is partly or wholly a read "
              "from disk.", ""]  # fmt: skip
  for run in report["runs"]:
    se = _has_se(run)
    if se:
      title = (f"mean ± SE (ddof 1) of {report['retrain_seeds']} seeds at the full budget; "
               "- grid: the mean of the per-seed differences ± its SE")  # fmt: skip
    else:
      title = f"mean of {report['retrain_seeds']} seeds at the full budget"
    test_head = "test ± SE | - grid ± SE" if se else "test | - grid"
    lines += [f"### {run['task']}, {run['optimizer']} (test: {run['test_metric']}, {title})", "",
              f"| method | wall s | vs grid | load | model-steps | vs grid | lr | {test_head} |",
              "|---|---|---|---|---|---|---|---|---|"]  # fmt: skip
    for name, m in run["methods"].items():
      load = "-".join(f"{a:.1f}" for a in m.get("load_average", []))
      test, diff = f"{m['test']:.4f}", f"{m['test_minus_grid']:+.4f}"
      if se:
        test, diff = f"{test} ± {m['test_se']:.4f}", f"{diff} ± {m['test_minus_grid_se']:.4f}"
      lines.append(
        f"| {name} | {m['wall_seconds']:.1f} | {m['wall_vs_grid']:.0%} | {load} | "
        f"{m['model_steps']:,} | {m['model_steps_vs_grid']:.0%} | {m['lr']:.3g} | "
        f"{test} | {diff} |"
      )
    if "task_options" in run:
      given = ", ".join(f"{k} = {v:,}" for k, v in run["task_options"].items())
      lines.append(f"\nThe task built with {given}.")
    if "grid_before_halving" in run["methods"] and "halving" in run["methods"]:
      lines.append("\nhalving's wall-clock is against grid_before_halving, timed just before it.")
      if "halving_3_rungs" in run["methods"]:
        lines.append("\nSo is halving_3_rungs's, timed just after halving.")
    if "pbt" in run:
      p = run["pbt"]
      lines.append(f"\nPBT: an exploit every {p['interval']} steps, perturb factors "
                   f"{tuple(p['perturb'])}, fraction 0.25.")  # fmt: skip
    for name, m in run["methods"].items():
      if "own_test_se" in m:
        seeds = len(m["own_test_seeds"])
        lines.append(f"\n{name}: its best member's own test metric, over {seeds} independent "
                     f"populations: {m['own_test']:.4f} ± {m['own_test_se']:.4f}, "
                     f"{m['own_test_minus_grid']:+.4f} ± {m['own_test_minus_grid_se']:.4f} "
                     f"against the grid (paired by seed); the timed run's (seed 0) "
                     f"{m['own_test_timed']:.4f}.")  # fmt: skip
        if f"{name}_goal" in run:
          g = run[f"{name}_goal"]
          lines.append(f"\nGoal, {name} within {g['threshold']} {g['unit']} of the grid's: "
                       f"{g['difference']:+.2f} ± {g['se']:.2f} {g['unit']}, {_beyond(g)}: "
                       f"**{g['verdict']}**.")  # fmt: skip
      elif "own_test" in m:
        gap = m["own_test"] - ref_test(run)
        lines.append(f"\n{name}: its best member's own run (its schedule) reaches test "
                     f"{m['own_test']:.4f}, {gap:+.4f} against the grid.")  # fmt: skip
    for name in [n for n in ("halving", "halving_3_rungs") if se and n in run["methods"]]:
      g = halving_goal(run, name)
      lines.append(f"\nGoal, {name}'s pick within {g['threshold']} {g['unit']} of the grid's: "
                   f"test - grid {g['difference']:+.2f} ± {g['se']:.2f} {g['unit']} (paired over "
                   f"{g['seeds']} seeds), {_beyond(g)}: **{g['verdict']}**.")  # fmt: skip
    if "retrain" in run:
      lines.append(f"\nRetraining {run['retrain']['rates']} distinct rates took "
                   f"{run['retrain']['wall_seconds']:.1f} s.")  # fmt: skip
    corr = ", ".join(f"{s}: {c:.2f}" for s, c in run["rank_correlation"].items())
    lines += ["", f"Spearman rank correlation of the val metric at a rung with the final: {corr}.",
              ""]  # fmt: skip
  return "\n".join(lines)


def _beyond(goal: dict[str, Any]) -> str:
  if goal["beyond_2se"] is None:
    return "no SE with one seed"
  return "beyond 2 SE" if goal["beyond_2se"] else "within 2 SE"


LABELS = {
  "grid": "full grid", "grid_before_halving": "full grid, again (just before halving)",
  "halving": "successive halving", "halving_3_rungs": "successive halving, 3 rungs",
  "hyperband": "Hyperband", "pbt": "PBT (every K/8-th rate)",
  "random": "random search", "optuna_loop": "Optuna TPE, a loop of lrlab single runs",
  "optuna_batched": "Optuna TPE through run_study", "pbt_from_low": "PBT from rates 10x too small",
  "pbt_from_high": "PBT from rates 10x too large",
}  # fmt: skip


def summary_table(report: dict[str, Any]) -> str:
  """The table BENCHMARKS.md quotes: per method and run, wall-clock (its ratio to the grid's;
  the mean 1-minute load average before and after),
  model-steps against the grid's, and the test metric's difference from the grid's in points
  (for a loss, in percent of the grid's mean test loss, the unit of its goals; for the PBT
  rows, its best member's own run: the goal's measure).

  Where the run keeps per-seed test metrics, the grid's cell is its mean ± SE, every other
  retrained difference is paired by seed ± its SE, a PBT row's best member's own test metric
  likewise over independent populations (a report from before them: its one run, which says
  so), and the cells of halving and of PBT from 10x off end with :func:`halving_goal`'s and
  :func:`pbt_goal`'s verdicts."""
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
      scale, unit = _unit(r)
      test = m.get("own_test", m["test"])
      diff = f"({ref:.3f})" if name == "grid" else f"{scale * (test - ref):+.1f} {unit}"
      if _has_se(r):
        if name == "grid":
          diff = f"({ref:.3f} ± {m['test_se']:.3f})"
        elif "own_test_se" in m:
          diff = (f"{scale * m['own_test_minus_grid']:+.1f} ± "
                  f"{scale * m['own_test_minus_grid_se']:.1f} {unit}")  # fmt: skip
          if name.startswith("pbt_from"):
            diff += f", {pbt_goal(r, name)['verdict']}"
        elif "own_test" in m:
          diff += " (one run)"
        else:
          diff = (f"{scale * m['test_minus_grid']:+.1f} ± "
                  f"{scale * m['test_minus_grid_se']:.1f} {unit}")  # fmt: skip
        if name in ("halving", "halving_3_rungs"):
          diff += f", {halving_goal(r, name)['verdict']}"
      load = f", load {np.mean(m['load_average']):.0f}" if "load_average" in m else ""
      cells.append(f"{m['wall_seconds']:.1f} s ({m['wall_vs_grid']:.0%}{load}) | "
                   f"{m['model_steps_vs_grid']:.0%} | {diff}")  # fmt: skip
    lines.append(f"| {label} | " + " | ".join(cells) + " |")
  return "\n".join(lines)
