"""Figures of ``best_lr_depends``: the best rate against each factor, and the sweeps behind it."""

from pathlib import Path

import numpy as np
from matplotlib.figure import Figure


def trends(trends: dict, per_condition: dict, boot: dict, series: dict, path: Path) -> Path:
  """One panel per series: the refined best rate ± its bootstrap SE, the fitted line, the grid's
  best, and the divergence threshold (seed mean, where every seed failed somewhere)."""
  figure = Figure(figsize=(3.2 * max(1, len(trends)), 3.8), layout="constrained")
  panels = figure.subplots(1, max(1, len(trends)), squeeze=False)[0]
  for axes, (key, trend) in zip(panels, trends.items(), strict=False):
    x = np.asarray(trend["factor"])
    best = np.log10(trend["best_lr"])
    se = np.array([per_condition[n]["best_lr_se_decades"] for n in trend["conditions"]])
    axes.fill_between(x, 10 ** (best - se), 10 ** (best + se), alpha=0.25, label="± SE (seeds)")
    axes.plot(x, 10**best, "o-", label="best lr by val acc. (refined)")
    axes.plot(x, trend["best_lr_by_loss"], "s:", markersize=4, label="best lr by val loss")
    grid_best = [per_condition[n]["best_lr_on_grid"] for n in trend["conditions"]]
    axes.plot(x, grid_best, "k_", markersize=12, label="best lr on the grid")
    fit = np.polyfit(np.log2(x), best, 1)
    axes.plot(x, 10 ** np.polyval(fit, np.log2(x)), "k--", linewidth=0.8, label="fitted trend")
    limits = [per_condition[n]["divergence_threshold_per_seed"] for n in trend["conditions"]]
    limits = np.array(limits, float)
    if np.any(np.all(np.isfinite(limits), axis=1)):
      shown = np.where(np.all(np.isfinite(limits), axis=1), 10 ** np.log10(limits).mean(1), np.nan)
      axes.plot(x, shown, "v-", color="C3", markersize=4, label="fails from (diverged or dead)")
    if key == "complexity":
      for xi, yi, n in zip(x, 10**best, trend["conditions"], strict=True):
        axes.annotate(n, (xi, yi), fontsize="x-small", textcoords="offset points", xytext=(3, 3))
      axes.set_xscale("log", base=2)
    else:
      axes.set_xscale("log", base=2)
      axes.set_xticks(x, [f"{v:g}" for v in x])
    axes.set_yscale("log")
    label, sign = series[key]
    axes.set(xlabel=label, ylabel="learning rate")
    axes.set_title(
      f"{key}: {trend['decades_per_doubling']:+.3f} ± {trend['decades_per_doubling_se']:.3f}"
      f" dec/doubling\n(claim {'+' if sign > 0 else '-'}; Holm p {trend['p_holm']:.2g}): "
      f"{trend['verdict']}",
      fontsize="small",
    )
    axes.grid(alpha=0.3, which="both")
  panels[0].legend(fontsize="xx-small")
  figure.savefig(path, dpi=110)
  return path


def curves(series, results, per_condition, names: dict, metric: str, path: Path) -> Path:
  """One panel per series: seed-mean ``metric`` against the rate, ± SE over seeds."""
  keys = [k for k in names if series.get(k)]
  figure = Figure(figsize=(3.2 * max(1, len(keys)), 3.6), layout="constrained")
  panels = figure.subplots(1, max(1, len(keys)), squeeze=False)[0]
  short = {"data_size_steps": "n", "data_size_epochs": "n", "depth": "layers", "width": "units"}
  for axes, key in zip(panels, keys, strict=False):
    for i, (name, factor) in enumerate(series[key]):
      label = name if factor is None else f"{short[key]}={factor}"
      result = results[name]
      runs = result.metric(metric)
      mean = runs.mean(0)
      se = runs.std(0, ddof=1) / np.sqrt(len(runs)) if len(runs) > 1 else np.zeros_like(mean)
      lrs = result.grid["lr"]
      axes.plot(lrs, mean, ".-", color=f"C{i}", label=label)
      axes.fill_between(lrs, mean - se, mean + se, color=f"C{i}", alpha=0.2)
      axes.axvline(per_condition[name]["best_lr"], color=f"C{i}", linewidth=0.8, linestyle=":")
    axes.set(xscale="log", xlabel="learning rate (SGD, momentum 0.9)", ylabel=metric)
    axes.set_title(f"{key}\n(± SE over seeds; dotted: best lr)", fontsize="small")
    axes.grid(alpha=0.3, which="both")
    axes.legend(fontsize="xx-small")
  figure.savefig(path, dpi=110)
  return path
