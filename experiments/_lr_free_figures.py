"""Figures of ``lr_free_vs_tuned``: the gaps with their errors, accuracies, sweeps, applied rates.

Every band and error bar is a standard error over seeds (``ddof=1``); the gap
figure's bars are 2 standard errors of the paired difference (seeds and test
set together). Target lines carry a label.
"""

from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

COLORS = {"supported": "C2", "refuted": "C3", "inconclusive": "0.5"}


def label(name: str) -> str:
  """A method's short name for a figure."""
  return (
    name.replace("schedule_free", "sf").replace("_bias_corrected", " +bias corr.").replace("_", " ")
  )


def _se(values: np.ndarray) -> np.ndarray:
  """Standard error over the leading (seed) axis, ``ddof=1``; 0 with one seed."""
  values = np.asarray(values, np.float64)
  if values.shape[0] < 2:
    return np.zeros(values.shape[1:])
  return values.std(axis=0, ddof=1) / np.sqrt(values.shape[0])


def gaps(numbers: dict, path: Path, resolution: float) -> Path:
  """Each method's paired test-accuracy gap to the tuned baseline, ± 2 SE, per task."""
  tasks = [t for t in numbers if isinstance(numbers[t], dict) and "methods" in numbers[t]]
  methods = list(dict.fromkeys(m for t in tasks for m in numbers[t]["methods"]))
  figure = Figure(figsize=(10, 0.5 * len(methods) * len(tasks) + 1.8), layout="constrained")
  axes = figure.add_subplot()
  y, ticks, names = 0.0, [], []
  for i, task in enumerate(tasks):
    for name in methods[::-1]:
      entry = numbers[task]["methods"].get(name)
      if entry is None:
        continue
      g = entry["vs_tuned"]
      color = COLORS.get(entry.get("verdict"), "0.5")
      marker = "os"[i % 2]
      axes.errorbar(100 * g["gap"], y, xerr=200 * g["se"], fmt=marker, color=color, capsize=3)
      ticks.append(y)
      names.append(f"{label(name)} ({task})")
      y += 1
    y += 0.5
  axes.axvline(0, color="k", linewidth=1, label="tuned cosine baseline (gap 0)")
  for sign in (-1, 1):
    axes.axvline(
      sign * 100 * resolution,
      color="k",
      linestyle=":",
      linewidth=1,
      label=f"±{100 * resolution:g} points: a resolved match" if sign > 0 else None,
    )
  for verdict, color in COLORS.items():
    axes.plot([], [], "o", color=color, label=f"{verdict} (Holm-adjusted)")
  axes.set_yticks(ticks, names, fontsize="small")
  axes.set_xlabel("test accuracy of the method minus the tuned baseline (points; bar: ±2 SE)")
  axes.set_title(
    "LR-free methods as their authors recommend, minus tuned cosine SGD-m/Adam\n"
    f"paired over seeds; SE: seeds (ddof=1) + test set (binomial); Holm over {len(names)}",
    fontsize="medium",
  )
  axes.grid(axis="x", alpha=0.3)
  axes.legend(fontsize="x-small", loc="lower left")
  figure.savefig(path, dpi=120)
  return path


def draw(numbers: dict, loaded: dict, out: Path, task: str) -> list[Path]:
  """The per-task figures: accuracies, the baselines' sweeps, the applied rates."""
  return [
    _accuracy(numbers, out / f"accuracy_{task}.png"),
    _sweeps(numbers, loaded, out / f"sweeps_{task}.png"),
    _applied_lr(numbers, loaded, out / f"applied_lr_{task}.png"),
  ]


def _accuracy(numbers: dict, path: Path) -> Path:
  rows = []  # (label, numbers of one member, colour)
  for name, b in numbers["baselines"].items():
    rows.append((f"{name} cosine\ntuned lr {b['tuned_lr']:.2g}", b["tuned"], "0.35"))
    if b["tuned_lr_by_val_loss"] != b["tuned_lr"]:
      by_loss = f"{name} cosine\nlr by val loss {b['tuned_lr_by_val_loss']:.2g}"
      rows.append((by_loss, b["tuned_by_val_loss"], "0.55"))
    rows.append((f"{name} cosine\nmid-usable lr {b['median_lr']:.2g}", b["median"], "0.75"))
  for name, m in numbers["methods"].items():
    rows.append((label(name), m["at_recipe"], COLORS.get(m.get("verdict"), "C0")))
  x = np.arange(len(rows))
  figure = Figure(figsize=(max(8, 0.9 * len(rows)), 4.8), layout="constrained")
  axes = figure.add_subplot()
  means = np.array([r[1]["test_accuracy"] for r in rows])
  errors = np.array([r[1]["test_accuracy_se"] for r in rows])
  axes.bar(x, means, 0.7, yerr=errors, color=[r[2] for r in rows], capsize=3)
  for i, (_, at, _) in enumerate(rows):
    seeds = np.asarray(at["test_accuracy_per_seed"], float)
    axes.plot(np.full(seeds.size, x[i]), seeds, "k.", markersize=3)
  tuned = numbers["baselines"][numbers["tuned_baseline"]]
  axes.axhline(
    tuned["tuned"]["test_accuracy"],
    color="red",
    linestyle="--",
    linewidth=1,
    label=f"tuned {numbers['tuned_baseline']} (lr {tuned['tuned_lr']:.2g}, by val accuracy)",
  )
  low = np.nanmin(means - errors)
  axes.set_ylim(max(0.0, low - 0.05), min(1.0, np.nanmax(means + errors) + 0.03))
  axes.set_xticks(x, [r[0] for r in rows], fontsize="x-small", rotation=45, ha="right")
  axes.set_ylabel("final test accuracy\n(seed mean ± SE; dots: seeds)")
  axes.set_title(
    f"{numbers['task']}: learning-rate-free methods as their authors recommend vs a tuned "
    f"cosine sweep\n{numbers['steps']} steps, {numbers['seeds']} seeds; grey: baselines, "
    "colour: verdict (green supported, red refuted, grey inconclusive)",
    fontsize="medium",
  )
  axes.legend(fontsize="small", loc="lower right")
  axes.grid(axis="y", alpha=0.3)
  figure.savefig(path, dpi=120)
  return path


def _sweeps(numbers: dict, loaded: dict, path: Path) -> Path:
  figure = Figure(figsize=(10, 4), layout="constrained")
  panels = figure.subplots(1, len(numbers["baselines"]), squeeze=False).ravel()
  for axes, (name, b) in zip(panels, numbers["baselines"].items(), strict=True):
    result = loaded[name]
    lrs = np.asarray(result.grid["lr"], float)
    acc = result.metric("final_test_accuracy")
    mean, se = acc.mean(axis=0), _se(acc)
    axes.plot(lrs, mean, ".-", color="C0", label="test accuracy (± SE)")
    axes.fill_between(lrs, mean - se, mean + se, color="C0", alpha=0.25)
    val = result.metric("final_val_accuracy")
    axes.plot(lrs, val.mean(axis=0), ".--", color="C1", label="val accuracy (selects)")
    axes.axvline(b["tuned_lr"], color="red", linestyle="--", label="tuned by val accuracy")
    if b["tuned_lr_by_val_loss"] != b["tuned_lr"]:
      axes.axvline(b["tuned_lr_by_val_loss"], color="purple", linestyle=":", label="by val loss")
    axes.axvspan(*b["usable_range"], color="0.9", label="usable (val acc within 0.05)")
    axes.set_xscale("log")
    axes.set_xticks(lrs[::3], [f"{v:.0e}" for v in lrs[::3]])
    axes.set(xlabel="peak learning rate (cosine to 0)", title=f"{name} cosine")
    top = float(np.nanmax(mean))
    axes.set_ylim(max(0.0, top - 0.4), min(1.0, top + 0.05))
    axes.grid(alpha=0.3)
    axes.legend(fontsize="x-small", loc="lower center")
  panels[0].set_ylabel("final accuracy (seed mean)")
  figure.suptitle(f"{numbers['task']}: the baselines' sweeps", fontsize="medium")
  figure.savefig(path, dpi=120)
  return path


def _applied_lr(numbers: dict, loaded: dict, path: Path) -> Path:
  figure = Figure(figsize=(9, 4.8), layout="constrained")
  axes = figure.add_subplot()
  for i, name in enumerate(numbers["methods"]):
    applied = np.median(np.asarray(loaded[name].history.learning_rate[:, 0], float), axis=0)
    adam_type = "adam" in name or name == "prodigy"
    axes.plot(np.arange(applied.size), applied, "--" if adam_type else "-", color=f"C{i}")
    axes.plot([], [], "--" if adam_type else "-", color=f"C{i}", label=label(name))
  for name, b in numbers["baselines"].items():
    applied = np.median(np.asarray(loaded[name].history.learning_rate, float), axis=0)
    index = int(np.argmin(np.abs(np.asarray(loaded[name].grid["lr"]) - b["tuned_lr"])))
    axes.plot(applied[index], color="0.3" if name == "sgd-momentum" else "0.6", linewidth=2.5)
    axes.plot(
      [],
      [],
      color="0.3" if name == "sgd-momentum" else "0.6",
      linewidth=2.5,
      label=f"{name} tuned cosine (lr {b['tuned_lr']:.2g})",
    )
  axes.set(
    yscale="log",
    xlabel="step",
    ylabel="step size applied (median over seeds)",
    title=f"{numbers['task']}: the rate each method sets itself\n(dashed: Adam-type; solid: "
    "SGD-type; grey: the tuned baselines' schedules)",
  )
  axes.title.set_fontsize("medium")
  axes.grid(alpha=0.3, which="both")
  axes.legend(fontsize="x-small", ncol=2)
  figure.savefig(path, dpi=120)
  return path
