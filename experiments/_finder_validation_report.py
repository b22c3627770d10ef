"""The table and the error figure of ``finder_validation``, from its rows."""

import math
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from lrlab import analysis, finder, tasks

CHANCE_RTOL = 0.05  # the dead-network guard: final train loss within 5% of chance
SAME_ACCURACY = 0.01  # test points (a fraction) a supported rule may lose at most, 2 SE included


def guarded(result, case: dict, metric: str):
  """``result`` with the dead-network guard (:func:`lrlab.analysis.fail_at_chance`): a run above
  the best rate by ``metric`` whose final train loss is within 5% of the chance loss counts as
  failed. Returns ``(result, chance)``; a task without classes, or streamed (the quadratic, the
  transformer: no label set to take the chance loss of), is returned as it is, chance ``None``."""
  task = tasks.get(case["task"], **case["options"]) if case["task"] != "lm-transformer" else None
  if task is None or task.num_classes is None or task.streamed:
    return result, None
  chance = analysis.chance_loss(task.dataset.y_train, task.num_classes)
  return analysis.fail_at_chance(result, chance, rtol=CHANCE_RTOL, select=metric), chance


def finite(value) -> float | None:
  """``value`` as a float, or ``None`` when it is missing or not finite."""
  return None if value is None or not np.isfinite(value) else float(value)


def loss_best(runs: list, grid: list[float]) -> float:
  """The grid's best rate by seed-mean final val loss over the seeds' sweeps, parabola-refined."""
  loss = np.concatenate([r.metric("final_val_loss") for r in runs])[:, : len(grid)].mean(0)
  return float(10 ** analysis.refine_best(np.log10(grid), loss, larger_is_better=False))


def slopes(found: finder.FinderResult, best_lr: float) -> dict:
  """The smoothed loss's slope against the linear rate: steepest in Lightning's window, and
  steepest within 3x of the sweep's best rate (where the real descent is)."""
  n = found.num_recorded
  lrs, smoothed = found.lrs[:n], found.smoothed[:n]
  start, end = finder.suggestions.LIGHTNING_SKIP
  keep = np.zeros(n, bool)
  keep[start : n - end] = True
  keep &= np.isfinite(smoothed)
  slope = np.full(n, np.nan)
  if keep.sum() >= 2:
    slope[keep] = np.gradient(smoothed[keep], lrs[keep])
  near = keep & (lrs >= best_lr / 3) & (lrs <= best_lr * 3)
  return {
    "lightning_window_steepest_slope": finite(np.nanmin(slope)) if keep.sum() >= 2 else None,
    "steepest_slope_near_best": finite(np.nanmin(slope[near])) if near.any() else None,
  }


def _cell(rule: dict, accuracy: bool) -> str:
  """A rule in one case: median ratio to the sweep's best, seeds near, mean points lost."""
  if rule["median_decades"] is None:
    return "n/a"
  mean = rule["mean_test_lost"]
  shown = "—" if mean is None else (f"{100 * mean:.1f} pts" if accuracy else f"{mean:.3g}")
  seeds = len(rule["near"])
  return f"{10 ** rule['median_decades']:.2g}x, {rule['near_seeds']}/{seeds} near ({shown})"


def table(numbers: dict, names: tuple[str, ...]) -> str:
  """Markdown: per case each rule's median ratio to the sweep's best, how many seeds land near,
  and the test points lost (excess test loss on the loss tasks); then the rules over all cases."""
  lines = [
    "| task | optimizer | sweep best lr (test) | " + " | ".join(names) + " |",
    "|" + "---|" * (3 + len(names)),
  ]
  for r in numbers["cases"]:
    accuracy = r["metric"].endswith("accuracy")
    test = r["sweep"]["test"]
    shown = "—" if test is None else (f"{100 * test:.1f}%" if accuracy else f"{test:.3g}")
    cells = [r["task"], r["optimizer"], f"{r['sweep']['best_lr']:.3g} ({shown})"]
    cells += [_cell(r["rules"][name], accuracy) for name in names]
    lines.append("| " + " | ".join(cells) + " |")
  lines += [
    "",
    "| rule | median abs decades | mean abs decades ± SE | worst | within 2x | near (seeds) | "
    "near (cases) | test acc. lost ± SE | Holm p | verdict |",
    "|---|---|---|---|---|---|---|---|---|---|",
  ]
  num = lambda v, spec: "—" if v is None else format(v, spec)
  for name, a in numbers["aggregate"]["rules"].items():
    lost, se = a["mean_test_accuracy_lost"], a["mean_test_accuracy_lost_se"]
    lost = "—" if lost is None else f"{100 * lost:.1f} ± {100 * se:.1f} pts"
    lines.append(
      f"| {name} | {num(a['median_abs_decades'], '.2f')} | "
      f"{num(a['mean_abs_decades'], '.2f')} ± {num(a['mean_abs_decades_se'], '.2f')} | "
      f"{num(a['max_abs_decades'], '.2f')} | {a['within_2x']}/{a['entries']} | "
      f"{a['near']}/{a['entries']} | {a['near_cases']}/{a['cases']} | {lost} | "
      f"{num(a.get('p_holm'), '.2g')} | {a['verdict']} |"
    )
  for r in numbers["cases"]:
    if "theory" not in r:
      continue
    t, rt, best = r["theory"], r["range_test"], r["sweep"]["best_lr"]
    stop = "never" if rt["stop_lr"] is None else f"{rt['stop_lr']:.3g}"
    ratio = lambda v: "—" if v is None else f"{v:.3g}x"
    if "best" in t:
      answer = (
        f"sweep best {best:.3g} = {t['sweep_best_over_best']:.3g} x 2/(L+mu) = {t['best']:.3g}"
      )
    else:
      lo, hi = t["flat_range"]
      answer = f"sweep best {best:.3g}; theory: every lr in [{lo:.3g}, {hi:.3g}] is as fast"
    lines.append(
      f"\nquadratic, {r['optimizer']}: stability limit {t['stability_limit']:.3g}; seed 0's range "
      f"test stops at {stop} ({ratio(t['stop_over_limit'])} the limit); its raw loss is lowest "
      f"at {rt['onset_lr']:.3g} ({ratio(t['onset_over_limit'])}); {answer}."
    )
  return "\n".join(lines)


def error_figure(rows: list[dict], names: tuple[str, ...], near: float, path: Path) -> Path:
  """Per rule, a box and the points over tasks x optimizers x seeds: decades off the sweep's
  best (left) and test accuracy points lost (right, the accuracy tasks)."""
  main = [r for r in rows if r["optimizer"] != "gd"] or rows
  tasks = list(dict.fromkeys(r["task"] for r in main))
  figure = Figure(figsize=(13, 4.8), layout="constrained")
  left, right = figure.subplots(1, 2)
  rng = np.random.default_rng(0)
  left.axhspan(-np.log10(near), np.log10(near), color="0.9", label=f"within {near:g}x")
  left.axhline(0, color="k", linewidth=1, label="the sweep's best")
  right.axhline(0, color="k", linewidth=1, label="no points lost")
  for axes, key, scale in ((left, "decades", 1.0), (right, "test_lost", 100.0)):
    boxes = []
    for k, name in enumerate(names):
      values = []
      for r in main:
        if key == "test_lost" and not r["metric"].endswith("accuracy"):
          continue
        v = np.array([np.nan if x is None else x for x in r["rules"][name][key]], float) * scale
        jitter = rng.uniform(-0.25, 0.25, v.size)
        color = f"C{tasks.index(r['task'])}"
        axes.plot(k + jitter, v, "o", color=color, markersize=3, alpha=0.7)
        values += v[np.isfinite(v)].tolist()
      boxes.append(values if values else [np.nan])
    axes.boxplot(boxes, positions=range(len(names)), widths=0.6, showfliers=False)
    axes.set_xticks(range(len(names)), names)
  for i, task in enumerate(tasks):
    left.plot([], [], "o", color=f"C{i}", label=task)
  left.set(ylabel="log10(suggested lr / sweep's best)", title="decades off the sweep's best")
  right.set(ylabel="test accuracy points lost", title="test accuracy lost (accuracy tasks)")
  right.set_yscale("symlog", linthresh=1.0)
  for axes in (left, right):
    axes.grid(alpha=0.3, axis="y")
  left.legend(fontsize="x-small", ncol=2, loc="lower left")
  right.legend(fontsize="x-small")
  figure.suptitle("LR-finder rules: each point a (task, optimizer, seed); boxes: quartiles")
  figure.savefig(path, dpi=110)
  return path


def _se(values: np.ndarray) -> float | None:
  """The standard error of the mean (ddof=1); ``None`` under two values."""
  return float(np.std(values, ddof=1) / np.sqrt(values.size)) if values.size > 1 else None


def _verdict(a: dict) -> str:
  """A rule's verdict: refuted when it loses test points beyond 2 SE (Holm), supported when
  near in every case with its points lost plus 2 SE below :data:`SAME_ACCURACY`."""
  if a.get("loses_accuracy"):
    return "refuted"
  lost = a["mean_test_accuracy_lost"]
  bounded = lost is not None and lost + 2 * a["mean_test_accuracy_lost_se"] < SAME_ACCURACY
  return "supported" if bounded and a["near_cases"] == a["cases"] else "inconclusive"


def aggregate(rows: list[dict], names: tuple[str, ...], near: float) -> dict:
  """Per rule of ``names`` over the cases of the two main optimizers and their seeds: errors,
  hits (within ``near`` times the sweep's best, or in its usable range), points lost."""
  main = [r for r in rows if r["optimizer"] != "gd"] or rows
  out = {}
  for name in names:
    entries = [r["rules"][name] for r in main]
    decades = np.array([d for e in entries for d in e["decades"] if d is not None])
    size = abs(decades)
    near_cases = sum(e["near_case"] for e in entries)
    gaps = [e["points_lost"] for e in entries if e["points_lost"] is not None]
    lost = float(np.mean([g["gap"] for g in gaps])) if gaps else None
    lost_se = float(np.sqrt(sum(g["se"] ** 2 for g in gaps)) / len(gaps)) if gaps else None
    z = lost / lost_se if gaps and lost_se > 0 else None
    out[name] = {
      "cases": len(main),
      "entries": int(sum(len(e["decades"]) for e in entries)),
      "computed": int(decades.size),
      "median_abs_decades": float(np.median(size)) if size.size else None,
      "mean_abs_decades": float(np.mean(size)) if size.size else None,
      "mean_abs_decades_se": _se(size),
      "max_abs_decades": float(np.max(size)) if size.size else None,
      "median_decades": float(np.median(decades)) if size.size else None,
      "within_2x": int(np.sum(size <= np.log10(near) + 1e-12)),
      "in_usable_range": int(sum(sum(e["in_usable_range"]) for e in entries)),
      "near": int(sum(e["near_seeds"] for e in entries)),
      "near_cases": int(near_cases),
      "accuracy_cases": len(gaps),
      "mean_test_accuracy_lost": lost,
      "mean_test_accuracy_lost_se": lost_se,
      "p": None if z is None else math.erfc(abs(z) / math.sqrt(2.0)),
    }
  tested = [n for n in names if out[n]["p"] is not None]
  for n, p in zip(tested, analysis.holm([out[n]["p"] for n in tested]), strict=True):
    out[n]["p_holm"] = float(p)
    out[n]["loses_accuracy"] = bool(p < analysis.ALPHA and out[n]["mean_test_accuracy_lost"] > 0)
  for a in out.values():
    a["verdict"] = _verdict(a)
  ranked = sorted(
    (n for n in finder.RULES if out[n]["median_abs_decades"] is not None),
    key=lambda n: (-out[n]["near_cases"], -out[n]["near"], out[n]["median_abs_decades"]),
  )
  return {
    "rules": out,
    "comparisons": len(tested),
    "alpha": analysis.ALPHA,
    "ranking": ranked,
    "most_reliable_rule": ranked[0] if ranked else None,
  }
