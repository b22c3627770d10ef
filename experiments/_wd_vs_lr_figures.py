"""Figures of ``wd_vs_lr``: heatmaps of (learning rate, weight decay) with the ridge and a line of
constant product.

Each panel is the seed-mean metric over the grid on log axes (ticks at the grid's
values). Drawn on it: the ridge (for each weight decay the best rate, with its
bootstrap standard error over seeds; hollow where the best sits on the grid's
edge and is left out of the fit), the least-squares fit of the ridge with its
slope, and the line ``lr x wd = c`` of slope -1 through the best cell, each
labelled.
"""

from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

LABELS = {
  "grokking_time": "grokking time (steps to 95% val acc.)",
  "final_val_accuracy": "final val accuracy",
  "final_val_loss": "final val loss",
}
TITLES = {"adamw": "AdamW (decoupled decay)", "sgd": "SGD, momentum 0.9, L2 (coupled)"}


def _edges(values: np.ndarray) -> np.ndarray:
  """Cell edges of a log-spaced grid: geometric midpoints, half a step beyond each end."""
  logs = np.log10(values)
  step = logs[1] - logs[0] if len(logs) > 1 else 1.0
  return 10 ** np.concatenate(
    [[logs[0] - step / 2], (logs[1:] + logs[:-1]) / 2, [logs[-1] + step / 2]]
  )


def panel(axes, entry: dict, title: str) -> None:
  """One heatmap with its ridge, ridge fit and constant-product line."""
  lrs, wds = np.asarray(entry["lr"], float), np.asarray(entry["weight_decay"], float)
  mean = np.array(entry["mean"], float)
  metric = entry["metric"]
  larger = metric.endswith("accuracy")
  never = None
  if "censored_at" in entry:
    never = np.asarray(entry["seeds_grokked"]) == 0
    mean = np.where(never, np.nan, mean)
  image = axes.pcolormesh(
    _edges(lrs),
    _edges(wds),
    np.ma.masked_invalid(mean),
    cmap="viridis" if larger else "viridis_r",
    shading="flat",
  )
  axes.set_facecolor("0.85")
  axes.figure.colorbar(image, ax=axes, label=f"{LABELS[metric]}, seed mean", shrink=0.9)
  for i, wd in enumerate(wds):
    for j, lr in enumerate(lrs):
      if never is not None and never[i, j]:
        text = "never"
      elif never is not None:
        text = f"{mean[i, j]:.0f}\n{int(entry['seeds_grokked'][i][j])}/{entry['seeds']}"
      else:
        text = f"{mean[i, j]:.3g}" if np.isfinite(mean[i, j]) else "x"
      shade = float(image.norm(mean[i, j])) if np.isfinite(mean[i, j]) else 0.0
      bright = (shade if larger else 1 - shade) > 0.6
      axes.text(
        lr, wd, text, ha="center", va="center", fontsize=6, color="black" if bright else "white"
      )
  ridge = np.array(entry["ridge_lr"], float)
  se = np.array(entry["ridge_lr_se_decades"], float)
  interior = np.asarray(entry["ridge_interior"], bool)
  has = np.isfinite(ridge)
  for inside, face, label in (
    (True, "red", "ridge: best lr per wd (± bootstrap SE)"),
    (False, "none", "ridge on the grid's edge (not fitted)"),
  ):
    use = has & (interior == inside)
    if use.any():
      err = np.nan_to_num(se[use])
      axes.errorbar(
        ridge[use],
        wds[use],
        xerr=[ridge[use] * (1 - 10**-err), ridge[use] * (10**err - 1)],
        fmt="o",
        color="red",
        markerfacecolor=face,
        capsize=3,
        label=label,
      )
  slope = entry["slope"]
  if slope is not None and np.isfinite(slope) and (has & interior).sum() >= 2:
    use = has & interior
    intercept = np.mean(np.log10(ridge[use])) - slope * np.mean(np.log10(wds[use]))
    span = np.geomspace(wds[0], wds[-1], 50)
    axes.plot(
      10 ** (intercept + slope * np.log10(span)),
      span,
      "--",
      color="red",
      label=f"ridge fit: slope {slope:+.2f} ± {entry['slope_se']:.2f}",
    )
  best = entry["best"]
  span = np.geomspace(wds[0] / 2, wds[-1] * 2, 50)
  axes.plot(
    best["product"] / span,
    span,
    "-",
    color="darkorange",
    linewidth=2,
    label=f"lr x wd = {best['product']:.2g} (slope -1, through the best cell)",
  )
  axes.plot(
    [best["lr"]], [best["weight_decay"]], "*", color="gold", markeredgecolor="black", markersize=14
  )
  edges_x, edges_y = _edges(lrs), _edges(wds)
  axes.set(
    xscale="log", yscale="log", xlim=(edges_x[0], edges_x[-1]), ylim=(edges_y[0], edges_y[-1])
  )
  axes.set_xticks(lrs, [f"{v:.2g}" for v in lrs], fontsize="x-small")
  axes.set_yticks(wds, [f"{v:.2g}" for v in wds], fontsize="x-small")
  axes.minorticks_off()
  axes.set(xlabel="learning rate", ylabel="weight decay")
  axes.set_title(title, fontsize="medium")
  axes.legend(fontsize="x-small", loc="upper center", bbox_to_anchor=(0.5, -0.13), ncols=2)


def heatmaps(task: str, entries: dict[str, dict], out: Path) -> Path:
  """One figure per task: a column per optimizer, a row per metric (primary, then by loss)."""
  rows = ["primary"] + (["by_loss"] if all("by_loss" in e for e in entries.values()) else [])
  figure = Figure(figsize=(7 * len(entries), 6 * len(rows)), layout="constrained")
  grid = figure.subplots(len(rows), len(entries), squeeze=False)
  for c, (optimizer, entry) in enumerate(entries.items()):
    for r, row in enumerate(rows):
      data = entry[row]
      panel(grid[r, c], data, f"{task}: {TITLES[optimizer]}\n{LABELS[data['metric']]}")
  path = out / f"heatmap_{task}.png"
  figure.savefig(path, dpi=110)
  return path
