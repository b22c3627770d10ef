"""Figures of ``restarts_escape`` (claim 5), drawn from its saved results only."""

import functools
from collections import Counter
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
from matplotlib.figure import Figure


def _experiment():
  from experiments import restarts_escape  # the experiment imports this module: import late

  return restarts_escape


def _label(config: dict) -> str:
  return f"d={config['dim']}, A={config['amplitude']:g}, kappa={config['condition']:g}"


def _style(name: str) -> dict:
  """Each matched pair one colour: the raising schedule solid, its monotone match dashed."""
  experiment = _experiment()
  for i, pair in enumerate(experiment.PAIRS):
    if name in pair:
      return dict(color=f"C{i}", linestyle="-" if name == pair[0] else "--")
  return {"cosine T": dict(color="black", linestyle="-")}.get(
    name, dict(color="0.6", linestyle=":" if name == "step" else "-.")
  )


def _gaps(loaded, numbers, path: Path) -> Path:
  experiment = _experiment()
  figure = Figure(figsize=(max(7, 2.4 * len(loaded)), 4.5), layout="constrained")
  axes = figure.add_subplot()
  pairs = [*numbers[loaded[0][2]]["matched"], *numbers[loaded[0][2]]["unmatched"]]
  width = 0.8 / len(pairs)
  for j, pair in enumerate(pairs):
    matched = j < len(experiment.PAIRS)
    color = f"C{j}" if matched else "0.5"
    for c, (_, _, name) in enumerate(loaded):
      entry = numbers[name]["matched" if matched else "unmatched"][pair]
      x = c + (j - len(pairs) / 2 + 0.5) * width
      axes.errorbar(
        x,
        entry["gap"],
        yerr=2 * entry["se"],
        fmt="o" if matched else "s",
        color=color,
        capsize=2,
        label=(pair if matched else f"{pair} (unmatched)") if c == 0 else None,
      )
      if matched and entry["p_holm"] <= experiment.ALPHA:
        axes.annotate("*", (x, entry["gap"] + 2 * entry["se"]), ha="center", fontsize=12)
  axes.axhline(0, color="black", linewidth=0.8, label="no difference")
  axes.set_xticks(np.arange(len(loaded)), [_label(config) for _, config, _ in loaded])
  axes.set_ylabel("escape fraction, raising - monotone (paired, ± 2 SE)")
  inits = numbers[loaded[0][2]]["inits"]
  axes.set_title(
    f"Raising the rate again at a matched final anneal ({inits} inits)\n"
    f"*: beyond 2 SE after Holm over {numbers['comparisons']}",
    fontsize="medium",
  )
  axes.grid(alpha=0.3, axis="y")
  axes.legend(fontsize="x-small", loc="upper right")
  figure.savefig(path, dpi=120)
  return path


def _escape_vs_peak(loaded, path: Path) -> Path:
  experiment = _experiment()
  figure = Figure(figsize=(4.2 * len(loaded), 4.2), layout="constrained")
  panels = np.atleast_1d(figure.subplots(1, len(loaded)))
  for axes, (runs, config, _) in zip(panels, loaded, strict=True):
    escaped = experiment.final_losses(runs) < experiment.ESCAPED
    n = len(escaped)
    for i, name in enumerate(experiment.SCHEDULES):
      members = np.flatnonzero(runs["schedule"] == i)
      fraction = escaped[:, members].mean(0)
      se = np.sqrt(fraction * (1 - fraction) / (n - 1))
      axes.plot(runs["lr"][members], fraction, marker=".", label=name, **_style(name))
      axes.fill_between(
        runs["lr"][members], fraction - se, fraction + se, color=_style(name)["color"], alpha=0.15
      )
    axes.axvline(
      experiment.stability_limit(config),
      color="red",
      linestyle=":",
      linewidth=1,
      label="2/L of the wells",
    )
    lrs = np.unique(runs["lr"])[::2]
    axes.set(xscale="log", xlabel="peak learning rate", ylim=(-0.03, 1.03), title=_label(config))
    axes.set_xticks(lrs, [f"{v:.2g}" for v in lrs], fontsize="x-small")
    axes.minorticks_off()
    axes.grid(alpha=0.3)
  panels[0].set_ylabel(f"fraction of all {n} inits escaping (± binomial SE)")
  panels[0].legend(fontsize="xx-small")
  figure.suptitle("Gradient descent on skewed Rastrigin: escapes to the global minimum vs peak")
  figure.savefig(path, dpi=120)
  return path


def _bars(loaded, numbers, path: Path) -> Path:
  experiment = _experiment()
  names = experiment.SCHEDULES
  figure = Figure(figsize=(max(8, 3.2 * len(loaded)), 4.5), layout="constrained")
  axes = figure.add_subplot()
  width = 0.85 / len(names)
  for c, (_, _, folder) in enumerate(loaded):
    for i, name in enumerate(names):
      s = numbers[folder]["schedules"][name]
      style = _style(name)
      axes.bar(
        c + (i - len(names) / 2 + 0.5) * width,
        s["escaped"],
        width,
        yerr=2 * s["escaped_se"],
        capsize=1.5,
        color=style["color"],
        hatch="//" if style["linestyle"] == "--" else None,
        edgecolor="white",
        label=name if c == 0 else None,
      )
  axes.set_xticks(np.arange(len(loaded)), [_label(config) for _, config, _ in loaded])
  axes.set_ylabel("fraction escaping (peak cross-fitted, ± 2 SE)")
  axes.set_ylim(0, 1.3)
  axes.set_title("Each schedule at its peak chosen on the other init sets (hatched: matched)")
  axes.legend(fontsize="xx-small", ncols=6, loc="upper center")
  figure.savefig(path, dpi=120)
  return path


@functools.partial(jax.jit, static_argnums=2)
@functools.partial(jax.vmap, in_axes=(0, 0, None))
def _rates(index: jax.Array, peak: jax.Array, steps: int) -> jax.Array:
  """Each schedule's rate at every step, in one compiled call."""
  return _experiment().make_schedule(index, peak, steps)(jnp.arange(steps))


def _curves(loaded, numbers, path: Path) -> Path:
  experiment = _experiment()
  shown = ("cosine T", *experiment.PAIRS[1], "fixed")
  figure = Figure(figsize=(4.2 * len(loaded), 7), layout="constrained")
  grid = np.asarray(figure.subplots(2, len(loaded), squeeze=False))
  for c, (runs, config, folder) in enumerate(loaded):
    steps = config["steps"]
    index = [experiment.SCHEDULES.index(name) for name in shown]
    peaks = [  # the peak chosen for most init sets
      Counter(numbers[folder]["schedules"][name]["best_peak_per_init_set"]).most_common(1)[0][0]
      for name in shown
    ]
    rates = np.asarray(_rates(jnp.asarray(index), jnp.asarray(peaks, jnp.float32), steps))
    for name, i, peak, rate in zip(shown, index, peaks, rates, strict=True):
      k = np.flatnonzero((runs["schedule"] == i) & np.isclose(runs["lr"], peak))[0]
      loss = np.maximum(runs["median_loss"][k], 1e-3)
      grid[0, c].plot(runs["step"], loss, marker=".", label=name, **_style(name))
      grid[1, c].plot(rate, **_style(name))
    grid[0, c].set(yscale="log", title=_label(config), xlabel="step")
    grid[1, c].set(yscale="log", xlabel="step")
  grid[0, 0].set_ylabel("median loss over inits (floored at 1e-3)")
  grid[1, 0].set_ylabel("learning rate at the most chosen peak")
  grid[0, 0].legend(fontsize="small")
  figure.savefig(path, dpi=120)
  return path


def _landscapes(loaded, path: Path) -> Path | None:
  experiment = _experiment()
  flat = [config for _, config, _ in loaded if config["dim"] == 2]
  if not flat:
    return None
  figure = Figure(figsize=(4.5 * len(flat), 4.2), layout="constrained")
  for axes, config in zip(np.atleast_1d(figure.subplots(1, len(flat))), flat, strict=True):
    matrix = np.asarray(config["matrix"])
    extent = experiment.RADIUS * np.abs(np.linalg.inv(matrix)).sum(1).max()
    u = np.linspace(-extent, extent, 400)
    x = np.stack(np.meshgrid(u, u), axis=-1)
    f = np.asarray(experiment.rastrigin(jnp.asarray(x @ matrix.T), config["amplitude"]))
    image = axes.contourf(u, u, np.log10(1 + f), levels=30, cmap="viridis")
    axes.plot([0], [0], "*", color="red", markersize=12, label="global minimum")
    axes.set(title=_label(config), xlabel="x1", ylabel="x2", aspect="equal")
    figure.colorbar(image, ax=axes, label="log10(1 + loss)")
    axes.legend(fontsize="small", loc="upper right")
  figure.suptitle("The constructed landscapes (2-D cases)")
  figure.savefig(path, dpi=110)
  return path


def draw(loaded, numbers: dict, out: Path) -> list[Path]:
  """All figures; ``loaded`` is ``[(runs, config, folder name)]`` per landscape."""
  drawn = [
    _gaps(loaded, numbers, out / "matched_gaps.png"),
    _escape_vs_peak(loaded, out / "escape_vs_peak.png"),
    _bars(loaded, numbers, out / "escape_bars.png"),
    _curves(loaded, numbers, out / "curves.png"),
  ]
  landscapes = _landscapes(loaded, out / "landscapes.png")
  return drawn + ([landscapes] if landscapes else [])
