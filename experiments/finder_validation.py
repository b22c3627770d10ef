"""Issue 6: does an LR range test's suggestion land near the learning rate that trains best?

fastai and Lightning read a learning rate off one range test; neither checks it
against the rate a sweep finds best. For each task and optimizer this runs

1. the range test (``lrlab.finder.find_lr``, fastai's settings) and its five rules;
2. the parallel finder (``lrlab.finder.find_lr_parallel``: K rates, a tenth of the budget);
3. a full sweep (``lrlab.sweep.run``: K log-spaced rates at the full budget), into
   which every suggestion is also trained, from the same initial parameters and
   minibatches, so the accuracy each suggestion gives is measured, not guessed.

A suggestion lands near when it is within 2x of the sweep's best rate (about one
step of the default grid) or inside the sweep's usable range (validation
accuracy within 0.05 of the best; loss within 5% on the quadratic). A rule is
supported when it lands near in every case, refuted when in fewer than half. On
the quadratic, theory gives the answers for gradient descent: divergence above
``2/L``, fastest rate ``2/(L+mu)``; for heavy ball, divergence above ``2(1+b)/L``.
"""

import json
import sys
import time
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make `experiments` importable
  sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import jax
import numpy as np
from matplotlib.figure import Figure

from experiments import common
from lrlab import finder, optimizers, sweep, tasks
from lrlab.sweep.result import SweepResult

CLAIM = (
  "An LR range test's suggested learning rate (fastai's steep, valley, minimum, slide; "
  "Lightning's steepest gradient) lands near the rate that trains best."
)
ALL_CASES = [
  [task, optimizer]
  for task in ("quadratic", "digits-mlp", "mnist1d-mlp", "mnist1d-cnn")
  for optimizer in ("sgd-momentum", "adam")
] + [["quadratic", "gd"]]
SIZES = {
  "tiny": dict(
    cases=[["quadratic", "gd"]],
    steps={"quadratic": 20},
    num_lrs={"quadratic": 8},
    parallel_lrs=4,
    seeds=1,
  ),
  "default": dict(
    cases=ALL_CASES,
    steps={"quadratic": 50, "digits-mlp": 500, "mnist1d-mlp": 1500, "mnist1d-cnn": 400},
    num_lrs={"quadratic": 48, "digits-mlp": 20, "mnist1d-mlp": 20, "mnist1d-cnn": 12},
    parallel_lrs=12,
    seeds=1,
  ),
  "full": dict(
    cases=ALL_CASES,
    steps={"quadratic": 50, "digits-mlp": 1000, "mnist1d-mlp": 3000, "mnist1d-cnn": 3000},
    num_lrs={"quadratic": 64, "digits-mlp": 32, "mnist1d-mlp": 32, "mnist1d-cnn": 32},
    parallel_lrs=16,
    seeds=2,
  ),
}
TASKS = {
  # kappa = 10, so 2/L = 2 and 2/(L+mu) = 1.82 differ; 50 steps keep the loss above float32's
  # floor; at fastai's end_lr = 10 gradient descent never trips the stop rule, so go to 100.
  "quadratic": dict(options={"min_curvature": 0.1}, batch_size=None, grid=(1e-2, 10.0), end=100.0),
  "digits-mlp": dict(options={}, batch_size=64, grid=(1e-4, 3.0), end=10.0),
  "mnist1d-mlp": dict(options={}, batch_size=100, grid=(1e-4, 3.0), end=10.0),
  "mnist1d-cnn": dict(options={}, batch_size=100, grid=(1e-4, 3.0), end=10.0),
}
OPTIMIZERS = {"sgd-momentum": ("sgd", {"momentum": 0.9}), "adam": ("adam", {}), "gd": ("sgd", {})}
NAMES = (*finder.RULES, "parallel")
NEAR = 2.0


def _make_tx(optimizer: str):
  name, options = OPTIMIZERS[optimizer]
  return lambda hp: optimizers.get(name, learning_rate=hp["lr"], **options)


def run(out: Path, *, cases, steps, num_lrs, parallel_lrs, seeds) -> None:
  for index, (task_name, optimizer) in enumerate(cases):
    spec, budget = TASKS[task_name], steps[task_name]
    task = tasks.get(task_name, **spec["options"])
    make_tx, key, folder = _make_tx(optimizer), jax.random.key(0), out / f"{task_name}_{optimizer}"
    started = time.perf_counter()
    found = finder.find_lr(
      task, make_tx, end_lr=spec["end"], batch_size=spec["batch_size"], key=key
    )
    found.save(folder / "range_test.json")
    lo, hi = spec["grid"]
    parallel = finder.find_lr_parallel(
      task,
      make_tx,
      lrs=sweep.log_grid(lo, hi, parallel_lrs),
      steps=max(10, budget // 10),
      batch_size=spec["batch_size"],
      key=key,
    )
    grid = sweep.log_grid(lo, hi, num_lrs[task_name])
    picks = {name: lr for name, lr in found.suggestions.items() if lr is not None}
    picks["parallel"] = parallel.lr
    members = np.unique(np.r_[grid, list(picks.values())])
    result = sweep.run(
      task,
      make_tx,
      {"lr": members},
      steps=budget,
      batch_size=spec["batch_size"],
      key=key,
      eval_every=budget // 10,
      seeds=seeds,
      progress=False,
    )
    result.save(folder / "sweep")
    case = {
      "index": index,
      "task": task_name,
      "optimizer": optimizer,
      "options": spec["options"],
      "batch_size": spec["batch_size"],
      "steps": budget,
      "grid": grid.tolist(),
      "picks": picks,
      "parallel": parallel.to_dict(),
      "L": task.L,
      "mu": task.mu,
      "momentum": OPTIMIZERS[optimizer][1].get("momentum", 0.0),
      "seconds": round(time.perf_counter() - started, 1),
    }
    (folder / "case.json").write_text(json.dumps(case, indent=2) + "\n", encoding="utf-8")


def _finite(value):
  return None if value is None or not np.isfinite(value) else float(value)


def _slopes(found: finder.FinderResult, best_lr: float) -> dict:
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
    "lightning_window_steepest_slope": _finite(np.nanmin(slope)) if keep.sum() >= 2 else None,
    "steepest_slope_near_best": _finite(np.nanmin(slope[near])) if near.any() else None,
  }


def _row(folder: Path) -> dict:
  """One case's answers, from its saved files only."""
  case = json.loads((folder / "case.json").read_text(encoding="utf-8"))
  found = finder.FinderResult.load(folder / "range_test.json")
  result = SweepResult.load(folder / "sweep")
  members = result.grid["lr"]
  # The full sweep is the log grid alone; the suggestions ride along only to be measured.
  on_grid = np.flatnonzero(np.isin(members, case["grid"]))
  history = jax.tree.map(lambda a: a[:, on_grid] if np.ndim(a) >= 2 else a, result.history)
  full = SweepResult({"lr": members[on_grid]}, result.seeds, history, result.config)
  accuracy = result.has_accuracy
  metric = "final_val_accuracy" if accuracy else "final_val_loss"
  best = full.best(metric, warn=False)
  best_lr = best["hyperparameters"]["lr"]
  usable = full.usable_range(metric)
  test = result.seed_mean("final_test_accuracy" if accuracy else "final_test_loss")
  at = lambda lr: int(np.flatnonzero(np.isclose(members, lr, rtol=1e-12))[0])
  rules = {}
  for name in NAMES:
    lr = case["picks"].get(name)
    ratio = None if lr is None else lr / best_lr
    inside = lr is not None and usable[0] <= lr <= usable[1]
    rules[name] = {
      "lr": lr,
      "ratio": ratio,
      "test": None if lr is None else _finite(test[at(lr)]),
      "in_usable_range": inside,
      "near": lr is not None and (inside or 1 / NEAR <= ratio <= NEAR),
      "reason": found.reasons.get(name),
    }
  row = {
    "task": case["task"],
    "optimizer": case["optimizer"],
    "steps": case["steps"],
    "metric": metric,
    "sweep": {
      "best_lr": best_lr,
      "val": _finite(best["value"]),
      "test": _finite(test[at(best_lr)]),
      "usable_range": [_finite(v) for v in usable],
      "usable_range_ratio": _finite(usable[1] / usable[0]),
      "divergence_lr": full.divergence_threshold("lr", metric),
      "on_edge": full.edge_warning(metric, "lr") is not None,
      "size": int(on_grid.size),
      "seeds": int(result.num_seeds),
    },
    "range_test": {
      "stop_reason": found.stop_reason,
      "stop_lr": found.stop_lr,
      "onset_lr": float(found.lrs[int(np.nanargmin(found.losses))]),  # the lowest raw loss
      **_slopes(found, best_lr),
      "end_lr": found.config["end_lr"],
    },
    "parallel": case["parallel"],
    "rules": rules,
    "seconds": case["seconds"],
  }
  if case["L"] is not None and case["optimizer"] != "adam":
    # Gradient descent is stable iff lr < 2/L and fastest at 2/(L+mu). Heavy ball (PyTorch's
    # form) is stable iff lr < 2(1+b)/L, and every lr in [(1-sqrt b)^2/mu, (1+sqrt b)^2/L]
    # contracts at the same rate sqrt b.
    L, mu, b = case["L"], case["mu"], case["momentum"]
    limit = 2 * (1 + b) / L
    theory = {"L": L, "mu": mu, "momentum": b, "stability_limit": limit}
    theory["stop_over_limit"] = None if found.stop_lr is None else found.stop_lr / limit
    theory["onset_over_limit"] = row["range_test"]["onset_lr"] / limit
    if b == 0:
      theory["best"] = 2 / (L + mu)
      theory["sweep_best_over_best"] = best_lr / theory["best"]
    else:
      theory["flat_range"] = [(1 - b**0.5) ** 2 / mu, (1 + b**0.5) ** 2 / L]
    row["theory"] = theory
  return row


def _aggregate(rows: list[dict]) -> dict:
  """Per rule over the cases of the two main optimizers: ratios, hits, accuracy lost."""
  main = [r for r in rows if r["optimizer"] != "gd"] or rows
  out = {}
  for name in NAMES:
    entries = [r["rules"][name] for r in main]
    logs = np.array([abs(np.log10(e["ratio"])) for e in entries if e["ratio"] is not None])
    lost = [
      r["sweep"]["test"] - r["rules"][name]["test"]
      for r in main
      if r["metric"].endswith("accuracy") and r["rules"][name]["test"] is not None
    ]
    near = sum(e["near"] for e in entries)
    out[name] = {
      "cases": len(main),
      "computed": int(logs.size),
      "median_abs_log10_ratio": float(np.median(logs)) if logs.size else None,
      "max_abs_log10_ratio": float(np.max(logs)) if logs.size else None,
      "within_2x": int(np.sum(logs <= np.log10(NEAR) + 1e-12)),
      "in_usable_range": int(sum(e["in_usable_range"] for e in entries)),
      "near": int(near),
      "mean_test_accuracy_lost": float(np.mean(lost)) if lost else None,
      "verdict": "supported"
      if near == len(main)
      else "refuted"
      if 2 * near < len(main)
      else "inconclusive",
    }
  ranked = sorted(
    (n for n in finder.RULES if out[n]["median_abs_log10_ratio"] is not None),
    key=lambda n: (-out[n]["near"], out[n]["median_abs_log10_ratio"]),
  )
  return {"rules": out, "ranking": ranked, "most_reliable_rule": ranked[0] if ranked else None}


def table(numbers: dict) -> str:
  """Markdown: per case each rule's ratio to the sweep's best and the accuracy it gives."""
  value = lambda v, accuracy: "—" if v is None else (f"{100 * v:.1f}%" if accuracy else f"{v:.2g}")
  lines = [
    "| task | optimizer | sweep best lr (test) | " + " | ".join(NAMES) + " |",
    "|" + "---|" * (3 + len(NAMES)),
  ]
  for r in numbers["cases"]:
    accuracy = r["metric"].endswith("accuracy")
    cells = [r["task"], r["optimizer"], f"{r['sweep']['best_lr']:.3g} "]
    cells[-1] += f"({value(r['sweep']['test'], accuracy)})"
    for name in NAMES:
      e = r["rules"][name]
      mark = "" if not e["near"] else "*"
      cells.append(
        "n/a" if e["lr"] is None else f"{e['ratio']:.2g}x{mark} ({value(e['test'], accuracy)})"
      )
    lines.append("| " + " | ".join(cells) + " |")
  lines += [
    "",
    "| rule | median abs log10 ratio | worst | within 2x | in usable range | near | "
    "test acc. lost | verdict |",
    "|---|---|---|---|---|---|---|---|",
  ]
  num = lambda v, spec: "—" if v is None else format(v, spec)
  for name, a in numbers["aggregate"]["rules"].items():
    lost, n = a["mean_test_accuracy_lost"], a["cases"]
    lines.append(
      f"| {name} | {num(a['median_abs_log10_ratio'], '.2f')} | "
      f"{num(a['max_abs_log10_ratio'], '.2f')} | {a['within_2x']}/{n} | "
      f"{a['in_usable_range']}/{n} | {a['near']}/{n} | "
      f"{'—' if lost is None else f'{round(100 * lost, 1) + 0.0:.1f} pts'} | {a['verdict']} |"
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
      f"\nquadratic, {r['optimizer']}: stability limit {t['stability_limit']:.3g}; the range "
      f"test stops at {stop} ({ratio(t['stop_over_limit'])} the limit); its raw loss is lowest "
      f"at {rt['onset_lr']:.3g} ({ratio(t['onset_over_limit'])}); {answer}."
    )
  return "\n".join(lines)


def _ratio_figure(rows: list[dict], path: Path) -> Path:
  figure = Figure(figsize=(9, 4.5), layout="constrained")
  ax = figure.add_subplot()
  ax.set_yscale("log")
  ax.axhspan(1 / NEAR, NEAR, color="0.9", label=f"within {NEAR:g}x")
  ax.axhline(1, color="k", linewidth=1)
  for k, name in enumerate(NAMES):
    x = np.arange(len(rows)) + (k - len(NAMES) / 2) * 0.1
    y = [np.nan if r["rules"][name]["ratio"] is None else r["rules"][name]["ratio"] for r in rows]
    ax.plot(x, y, "o", color=f"C{k}", label=name)
  ax.set_xticks(np.arange(len(rows)))
  ax.set_xticklabels([f"{r['task']}\n{r['optimizer']}" for r in rows], fontsize=7)
  ax.set_ylabel("suggested lr / sweep's best lr")
  ax.set_title("LR-finder suggestions against the learning rate that trains best")
  ax.legend(fontsize=7, ncol=4, loc="lower left")
  figure.savefig(path, dpi=120)
  return path


def report(out: Path):
  folders = [p.parent for p in out.glob("*/case.json")]
  order = lambda p: json.loads((p / "case.json").read_text(encoding="utf-8"))["index"]
  folders = sorted(folders, key=order)
  rows = [_row(folder) for folder in folders]
  numbers = {"cases": rows, "aggregate": _aggregate(rows)}
  figures = []
  for folder, r in zip(folders, rows, strict=True):
    reference = {"sweep best": r["sweep"]["best_lr"], "parallel finder": r["parallel"]["lr"]}
    if "theory" in r:
      reference["stability limit"] = r["theory"]["stability_limit"]
      if "best" in r["theory"]:
        reference["2/(L+mu)"] = r["theory"]["best"]
    found = finder.FinderResult.load(folder / "range_test.json")
    figures.append(out / f"range_{folder.name}.png")
    finder.plot_range_test(found, figures[-1], reference=reference)
  figures.append(_ratio_figure(rows, out / "ratios.png"))
  (out / "table.md").write_text(table(numbers) + "\n", encoding="utf-8")
  verdicts = {n: numbers["aggregate"]["rules"][n]["verdict"] for n in finder.RULES}
  if len(set(verdicts.values())) == 1:
    verdict = next(iter(verdicts.values()))
  else:
    verdict = "depends on the rule: " + ", ".join(f"{n} {v}" for n, v in verdicts.items())
  return numbers, verdict, figures


if __name__ == "__main__":
  sys.exit(common.main(sys.modules[__name__]))
