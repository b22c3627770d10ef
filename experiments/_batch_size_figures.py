"""The figures of ``experiments/batch_size.py``, drawn from its numbers and saved sweeps."""

from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from experiments import _batch_size_fits as fits

NAMES = {"sgd": "SGD (momentum 0.9)", "adam": "Adam"}
RULE_NAMES = {"sgd": "linear rule (slope 1)", "adam": "square-root rule (slope 0.5)"}


def _log_ticks(axes, values) -> None:
  """x ticks at the data's values."""
  values = sorted({float(v) for v in values})
  labels = [str(int(v)) if v == int(v) else f"{v:.2g}" for v in values]
  axes.set_xticks(values, labels, fontsize="x-small")
  axes.minorticks_off()


def _log_y_ticks(axes, values) -> None:
  """y ticks at 1, 2 and 5 times the powers of ten that span ``values``."""
  values = np.asarray(values, float)
  values = values[np.isfinite(values) & (values > 0)]
  low, high = np.floor(np.log10(values.min())), np.ceil(np.log10(values.max()))
  ticks = [m * 10**e for e in np.arange(low, high + 1) for m in (1, 2, 5)]
  ticks = [t for t in ticks if values.min() / 2 <= t <= values.max() * 2]
  axes.set_yticks(ticks, [f"{t:.3g}" for t in ticks], fontsize="x-small")
  axes.minorticks_off()


def _best_rates(numbers: dict, path: Path) -> Path:
  names = list(numbers["tasks"])
  figure = Figure(figsize=(4.4 * len(names), 3.8), layout="constrained")
  panels = np.atleast_1d(figure.subplots(1, len(names)))
  for axes, name in zip(panels, names, strict=True):
    task = numbers["tasks"][name]
    batch = np.asarray(task["batch_sizes"], float)
    for i, optimizer in enumerate(("sgd", "adam")):
      fitted = task[optimizer]
      best, se = np.asarray(fitted["best_lr"]), np.asarray(fitted["best_lr_se_decades"])
      axes.errorbar(
        batch,
        best,
        yerr=[best - best / 10**se, best * 10**se - best],
        fmt="os"[i] + "-",
        color=f"C{i}",
        capsize=3,
        label=f"{NAMES[optimizer]}: slope {fitted['lr_slope']:.2f} ± {fitted['lr_slope_se']:.2f}",
      )
      rule = best[0] * (batch / batch[0]) ** fitted["rule"]
      axes.plot(batch, rule, ":", color=f"C{i}", label=RULE_NAMES[optimizer] + " from the first")
      by_loss = fitted["best_lr_by_final_val_loss"]
      axes.plot(batch, by_loss, "x", color=f"C{i}", alpha=0.6, label="by final val loss")
    axes.set(xscale="log", yscale="log", xlabel="batch size", ylabel="best learning rate")
    _log_ticks(axes, batch)
    _log_y_ticks(axes, [v for o in ("sgd", "adam") for v in task[o]["best_lr"]])
    axes.set_title(f"{name}: best rate by steps to target (± bootstrap SE)", fontsize="small")
    axes.grid(alpha=0.3, which="both")
    axes.legend(fontsize="xx-small")
  figure.savefig(path, dpi=120)
  return path


def _steps(numbers: dict, path: Path) -> Path:
  names = list(numbers["tasks"])
  figure = Figure(figsize=(4.4 * len(names), 3.8), layout="constrained")
  panels = np.atleast_1d(figure.subplots(1, len(names)))
  for axes, name in zip(panels, names, strict=True):
    task = numbers["tasks"][name]
    batch = np.asarray(task["batch_sizes"], float)
    grid = np.geomspace(batch[0], batch[-1], 200)
    for i, optimizer in enumerate(("sgd", "adam")):
      fitted = task[optimizer]
      steps, se = np.asarray(fitted["steps_to_target"]), np.asarray(fitted["steps_se_decades"])
      axes.errorbar(
        batch,
        steps,
        yerr=[steps - steps / 10**se, steps * 10**se - steps],
        fmt="os"[i],
        color=f"C{i}",
        capsize=3,
        label=NAMES[optimizer],
      )
      critical = fitted["critical_batch"]
      axes.plot(
        grid,
        fitted["min_steps"] * (1 + critical / grid),
        "-",
        color=f"C{i}",
        alpha=0.7,
        label="S_min(1 + B_crit/B), fitted",
      )
      axes.axvline(
        critical, color=f"C{i}", linestyle=":", linewidth=1, label=f"B_crit (dotted) {critical:.3g}"
      )
    b_simple = task["noise_scale"]["b_simple_target"]
    axes.axvline(
      b_simple,
      color="k",
      linestyle="--",
      linewidth=1,
      label=f"B_simple at the target {b_simple:.3g}",
    )
    axes.set(xscale="log", yscale="log", xlabel="batch size", ylabel="steps to target")
    _log_ticks(axes, batch)
    _log_y_ticks(axes, [v for o in ("sgd", "adam") for v in task[o]["steps_to_target"]])
    axes.set_title(f"{name}: val loss ≤ {task['target_val_loss']:.3g}", fontsize="small")
    axes.grid(alpha=0.3, which="both")
    axes.legend(fontsize="xx-small")
  figure.savefig(path, dpi=120)
  return path


def _sweeps(numbers: dict, curves: dict, path: Path) -> Path:
  names = list(numbers["tasks"])
  figure = Figure(figsize=(4.4 * len(names), 7), layout="constrained")
  panels = np.asarray(figure.subplots(2, len(names))).reshape(2, len(names))
  for j, name in enumerate(names):
    batch_sizes = numbers["tasks"][name]["batch_sizes"]
    for i, optimizer in enumerate(("sgd", "adam")):
      axes = panels[i, j]
      lrs, steps = curves[name, optimizer]
      for c, (batch, s) in enumerate(zip(batch_sizes, steps, strict=True)):
        logs = np.log10(np.maximum(s, 1.0))
        mean = fits.log_steps(s)
        with np.errstate(invalid="ignore"):
          se = np.std(logs, axis=0, ddof=1) / np.sqrt(logs.shape[0])
        shown = np.isfinite(mean)
        axes.plot(lrs[shown], 10 ** mean[shown], ".-", color=f"C{c}", label=f"batch {batch}")
        axes.fill_between(
          lrs[shown],
          10 ** (mean - se)[shown],
          10 ** (mean + se)[shown],
          color=f"C{c}",
          alpha=0.2,
        )
      axes.set(xscale="log", yscale="log", xlabel=f"{NAMES[optimizer]} learning rate")
      axes.set_ylabel("steps to target (geo. mean ± SE)")
      _log_ticks(axes, lrs)
      _log_y_ticks(axes, [v for s in steps for v in 10 ** fits.log_steps(s)])
      axes.set_title(f"{name} (missing: a seed never reached it)", fontsize="small")
      axes.grid(alpha=0.3, which="both")
      axes.legend(fontsize="xx-small")
  figure.savefig(path, dpi=120)
  return path


def draw(numbers: dict, curves: dict, out: Path) -> list[Path]:
  """Best rate against batch, steps to target against batch, and each batch's sweep."""
  return [
    _best_rates(numbers, out / "best_lr.png"),
    _steps(numbers, out / "steps_to_target.png"),
    _sweeps(numbers, curves, out / "sweeps.png"),
  ]
