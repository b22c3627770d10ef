"""The figures of ``experiments/gradient_depth.py``, drawn from its saved results and numbers."""

from pathlib import Path

import numpy as np
from matplotlib import ticker
from matplotlib.figure import Figure

from experiments._gradient_depth_stats import VANISH

INIT_NAMES = {"lecun": "LeCun init", "he": "He init"}


def _se_band(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
  """Mean over the leading axis and its standard error (ddof=1; 0 for one seed)."""
  mean = np.nanmean(values, 0)
  n = np.sum(np.isfinite(values), 0)
  se = np.nanstd(values, 0, ddof=1) / np.sqrt(n) if values.shape[0] > 1 else np.zeros_like(mean)
  return mean, se


def norms_figure(probes: dict, numbers: dict, path: Path) -> Path:
  """Per-layer gradient norms at init relative to the last layer, per init; global norm vs depth."""
  inits, depths = numbers["inits"], numbers["depths"]
  figure = Figure(figsize=(5 * (len(inits) + 1), 4.2), layout="constrained")
  panels = figure.subplots(1, len(inits) + 1, squeeze=False)[0]
  for axes, init in zip(panels, inits, strict=False):
    for i, depth in enumerate(depths):
      norms = next(iter(probes[init, depth].values()))["init_norms"]  # (seeds, layers)
      relative = np.log10(norms) - np.log10(norms[:, -1:])
      mean, se = _se_band(relative)
      layers = np.arange(1, norms.shape[-1] + 1)
      axes.plot(layers, 10**mean, "o-", markersize=3, color=f"C{i}", label=f"depth {depth}")
      axes.fill_between(layers, 10 ** (mean - se), 10 ** (mean + se), color=f"C{i}", alpha=0.25)
    axes.axhline(10**-VANISH, color="red", linestyle="--", label="vanishes: 100x below the last")
    axes.axhline(1, color="black", linewidth=0.8, label="the last layer's norm")
    axes.set(
      yscale="log",
      ylim=(10 ** -(VANISH + 0.5), 10**1.5),
      xlabel="layer (1 = input layer, last = head)",
      ylabel="|grad W_l| / |grad W_last| at init (mean ± SE)",
    )
    axes.xaxis.set_major_locator(ticker.MaxNLocator(integer=True))
    axes.set_title(f"{INIT_NAMES[init]}: across layers", fontsize="medium")
    axes.grid(alpha=0.3, which="both")
    axes.legend(fontsize="x-small")
  axes = panels[-1]
  for j, init in enumerate(inits):
    g = numbers["gradients"][init]
    mean = np.array([g[f"depth{d}"]["log10_global_norm"] for d in depths])
    se = np.array([g[f"depth{d}"]["log10_global_norm_se"] for d in depths])
    drop = g["depth_drop_decades"]
    axes.errorbar(
      depths,
      10**mean,
      yerr=[10**mean - 10 ** (mean - se), 10 ** (mean + se) - 10**mean],
      fmt="os"[j] + "-",
      capsize=3,
      label=f"{INIT_NAMES[init]}: {'falls' if drop >= 0 else 'rises'} {abs(drop):.2f} decades",
    )
  axes.set(
    xscale="log",
    yscale="log",
    xlabel="depth (hidden layers)",
    ylabel="global gradient norm at init (mean ± SE)",
  )
  axes.set_xticks(depths, [str(d) for d in depths])
  axes.xaxis.set_minor_formatter(ticker.NullFormatter())
  axes.set_title("across depth", fontsize="medium")
  axes.grid(alpha=0.3, which="both")
  axes.legend(fontsize="x-small")
  figure.savefig(path, dpi=120)
  return path


def ranges_figure(numbers: dict, path: Path) -> Path:
  """Usable width (decades, mean ± SE over seeds) against depth, per init, optimizer and clip."""
  inits, depths = numbers["inits"], numbers["depths"]
  figure = Figure(figsize=(5.5 * len(inits), 4.2), layout="constrained")
  panels = figure.subplots(1, len(inits), squeeze=False)[0]
  for axes, init in zip(panels, inits, strict=True):
    conditions = sorted(numbers["ranges"][f"{init}-depth{depths[0]}"])
    for j, condition in enumerate(conditions):
      rows = [numbers["ranges"][f"{init}-depth{d}"][condition] for d in depths]
      mean = [r["usable_decades_per_seed"] for r in rows]
      se = [r["usable_decades_se"] for r in rows]
      axes.errorbar(
        depths,
        mean,
        yerr=se,
        fmt="o-" if condition.endswith("clip") else "s--",
        color=f"C{j // 2}",
        capsize=3,
        label=condition.replace("-none", ", no clip").replace("-clip", ", clip 1"),
      )
    axes.set(
      xscale="log",
      xlabel="depth (hidden layers)",
      ylabel="usable range width, decades (mean ± SE over seeds)",
    )
    axes.set_xticks(depths, [str(d) for d in depths])
    axes.xaxis.set_minor_formatter(ticker.NullFormatter())
    axes.set_title(
      f"{INIT_NAMES[init]} (grid step {numbers['grid_step_decades']:.2f} decades)",
      fontsize="medium",
    )
    axes.grid(alpha=0.3)
    axes.legend(fontsize="x-small")
  figure.savefig(path, dpi=120)
  return path


def runs_figure(probes: dict, path: Path) -> Path:
  """Global gradient norm along the probe runs: rows init x optimizer, columns depths."""
  keys = sorted(probes, key=lambda k: (k[0] != "lecun", k[1]))
  inits = list(dict.fromkeys(k[0] for k in keys))
  depths = sorted({k[1] for k in keys})
  names = sorted({n for p in probes.values() for n in p})
  rows = [(i, n) for i in inits for n in names]
  figure = Figure(figsize=(3.6 * len(depths), 2.9 * len(rows)), layout="constrained")
  panels = figure.subplots(len(rows), len(depths), squeeze=False)
  for r, (init, name) in enumerate(rows):
    for c, depth in enumerate(depths):
      axes, p = panels[r, c], probes[init, depth].get(name)
      if p is None:
        continue
      total = np.sqrt((p["run_norms"] ** 2).sum(-1))
      for m in range(len(p["member_lr"])):
        clip = p["member_max_norm"][m] < 1e10
        kind = "best" if m % 2 == 0 else "high"
        axes.plot(
          np.where(np.isfinite(total[m]), np.maximum(total[m], 1e-6), np.nan),
          color="C0" if kind == "best" else "C3",
          linestyle="-" if clip else ":",
          label=f"{kind} lr={p['member_lr'][m]:.2g}, {'clip 1' if clip else 'no clip'}",
        )
      axes.set(yscale="log", xlabel="step", ylabel="minibatch gradient norm")
      axes.set_title(f"{INIT_NAMES[init]}, {name}, depth {depth}", fontsize="small")
      axes.grid(alpha=0.3)
      axes.legend(fontsize="xx-small")
  figure.savefig(path, dpi=110)
  return path
