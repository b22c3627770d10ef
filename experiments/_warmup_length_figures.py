"""The figure of ``warmup_length``: drawn from the saved sweeps and the summary numbers only."""

from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

METRIC = "final_val_loss"
NAMES = {"cosine": "cosine", "wsd": "WSD (forked cooldown)", "schedule_free": "schedule-free"}


def _band(axes, x, values, color, label):
  """Seed mean ± standard error (ddof=1) over the finite runs; failed runs left out."""
  finite = np.isfinite(values)
  count = finite.sum(axis=0)
  kept = np.where(finite, values, 0.0)
  with np.errstate(invalid="ignore", divide="ignore"):  # a rate every seed failed at: no point
    mean = np.where(count > 0, kept.sum(axis=0) / count, np.nan)
    square = np.where(finite, (values - mean) ** 2, 0.0).sum(axis=0)
    spread = np.where(count > 1, np.sqrt(square / (count - 1) / count), 0.0)
  axes.plot(x, mean, ".-", color=color, label=label)
  axes.fill_between(x, mean - spread, mean + spread, color=color, alpha=0.2)


def _usable(axes, lrs, result, arm, color, label, alpha):
  """An arm's final val loss against the rate (:func:`_band`, failed runs left out) and its
  usable range shaded."""
  values = result.metric(METRIC, diverged_as_worst=False)
  _band(axes, lrs, np.where(result.history.diverged, np.nan, values), color, label)
  lo, hi = arm["usable_range"]
  if lo is not None and hi is not None:
    axes.axvspan(lo, hi, color=color, alpha=alpha)


def _target(axes, value, text):
  axes.axhline(value, color="k", ls="--", lw=0.8)
  axes.annotate(
    text,
    (0.01, value),
    xycoords=("axes fraction", "data"),
    xytext=(0, 3),
    textcoords="offset points",
    fontsize=7,
  )


def _rate_axis(axes, lrs):
  axes.set_xscale("log")
  axes.set_xticks(lrs, [f"{lr:.2g}" for lr in lrs], fontsize="x-small")
  axes.minorticks_off()
  axes.grid(alpha=0.3)


def draw(out: Path, results, wsd, numbers) -> list[Path]:
  """Four panels: (a) loss against peak rate with and without warmup, (b) the three schedules'
  learning curves at their best rate, (c) loss against peak rate per budget and the best rate
  against the budget."""
  figure = Figure(figsize=(12, 8.5), layout="constrained")
  (warm, curves), (budget_curves, best) = figure.subplots(2, 2)
  lrs = np.asarray(results["cosine"].grid["lr"])
  optimal = numbers["optimal_loss"]
  top = numbers["unigram_loss"] + 0.1
  for i, (name, key) in enumerate((("cosine-warmup", "warmup"), ("cosine", "no_warmup"))):
    arm = numbers["warmup"][key]
    label = f"{key.replace('_', ' ')}: usable {arm['usable_decades']:.2f} dec"
    _usable(warm, lrs, results[name], arm, f"C{i}", label, alpha=0.08)
    if arm["divergence_threshold"] is not None:
      warm.axvline(
        arm["divergence_threshold"],
        color=f"C{i}",
        ls=":",
        lw=1.2,
        label=f"{key.replace('_', ' ')}: fails at {arm['divergence_threshold']:.2g}",
      )
  _target(warm, optimal, f"Bayes-optimal {optimal:.3f}")
  _target(warm, numbers["unigram_loss"], f"unigram (chance) {numbers['unigram_loss']:.3f}")
  _rate_axis(warm, lrs)
  warm.set(
    xlabel="AdamW peak rate (cosine decay)",
    ylabel="final val loss, nats/token (mean ± SE)",
    ylim=(optimal - 0.05, top),
    title=f"(a) warmup: usable range (within {numbers['tolerance']:.0%}) shaded",
  )
  warm.legend(fontsize="x-small")
  # (b) learning curves at the best rate of each schedule.
  longest = max(numbers["budgets"])
  at_budget = {"cosine": results["cosine-warmup"], "wsd": wsd[longest]}
  at_budget["schedule_free"] = results["schedule_free"]
  for i, (name, result) in enumerate(at_budget.items()):
    entry = numbers["schedules"][name]
    index = int(np.argmin(np.abs(lrs - entry["best_lr"])))
    steps = np.asarray(result.history.step)[0, index]
    values = np.asarray(result.history.val_loss)[:, index]
    label = f"{NAMES[name]} at {entry['best_lr']:.2g}: {entry['val_loss']:.3f}"
    _band(curves, steps[1:], values[:, 1:], f"C{i}", label)
  _target(curves, optimal, f"Bayes-optimal {optimal:.3f}")
  curves.set(
    xlabel="step",
    ylabel="val loss, nats/token (mean ± SE)",
    ylim=(optimal - 0.05, top),
    title=f"(b) equal budget ({longest} steps), each at its best peak rate",
  )
  curves.grid(alpha=0.3)
  curves.legend(fontsize="x-small")
  # (c) loss against the peak rate at each budget, then the best rate against the budget.
  for i, (b, result) in enumerate(wsd.items()):
    values = result.metric(METRIC, diverged_as_worst=False)
    values = np.where(result.history.diverged, np.nan, values)
    _band(budget_curves, lrs, values, f"C{i}", f"{b} steps")
    budget_curves.axvline(numbers["budget"]["best_lr"][i], color=f"C{i}", ls=":", lw=0.8)
  _target(budget_curves, optimal, f"Bayes-optimal {optimal:.3f}")
  _rate_axis(budget_curves, lrs)
  budget_curves.set(
    xlabel="AdamW peak rate (WSD)",
    ylabel="final val loss, nats/token (mean ± SE)",
    ylim=(optimal - 0.05, top),
    title="(c) WSD at each budget (dotted: best, refined)",
  )
  budget_curves.legend(fontsize="x-small")
  budgets = np.asarray(numbers["budgets"], float)
  rate = np.asarray(numbers["budget"]["best_lr"])
  se = np.asarray(numbers["budget"]["best_lr_se_decades"])
  best.errorbar(
    budgets,
    rate,
    yerr=[rate - rate / 10**se, rate * 10**se - rate],
    fmt="o",
    capsize=3,
    label="best peak rate by val loss (± bootstrap SE)",
  )
  slope, slope_se = numbers["budget"]["slope_decades_per_doubling"], numbers["budget"]["slope_se"]
  if np.isfinite(slope):
    x = np.log2(budgets)
    intercept = np.mean(np.log10(rate)) - slope * np.mean(x)
    best.plot(
      budgets,
      10 ** (intercept + slope * x),
      "k--",
      lw=1,
      label=f"fit: {slope:+.2f} ± {slope_se:.2f} decades per doubling",
    )
  best.set(
    xscale="log",
    yscale="log",
    xlabel="budget (steps)",
    ylabel="best peak rate",
    title="(c) best peak rate against training length",
  )
  best.set_xticks(budgets, [str(int(b)) for b in budgets])
  best.minorticks_off()
  best.set_yticks(lrs, [f"{lr:.2g}" for lr in lrs])
  best.set_ylim(lrs[0] / 1.5, lrs[-1] * 1.5)
  best.grid(alpha=0.3)
  best.legend(fontsize="x-small")
  path = out / "warmup_length.png"
  figure.savefig(path, dpi=110)
  return [path]


def draw_arms(path: Path, results, numbers) -> list[Path]:
  """``radam_warmup``'s figure: each arm's final val loss against its peak rate (mean ± SE over
  seeds, failed runs left out), its usable range shaded and its width in the legend."""
  figure = Figure(figsize=(7.5, 5), layout="constrained")
  axes = figure.subplots()
  lrs = np.asarray(next(iter(results.values())).grid["lr"])
  optimal = numbers["optimal_loss"]
  for i, (name, result) in enumerate(results.items()):
    arm = numbers["arms"][name]
    label = f"{name}: usable {arm['usable_decades']:.2f} decades"
    _usable(axes, lrs, result, arm, f"C{i}", label, alpha=0.06)
  _target(axes, optimal, f"Bayes-optimal {optimal:.3f}")
  _target(axes, numbers["unigram_loss"], f"unigram (chance) {numbers['unigram_loss']:.3f}")
  _rate_axis(axes, lrs)
  axes.set(
    xlabel="peak rate (cosine decay to 0; decoupled weight decay)",
    ylabel="final val loss, nats/token (mean ± SE)",
    ylim=(optimal - 0.05, numbers["unigram_loss"] + 0.1),
    title=f"RAdam against warmup: usable range (within {numbers['tolerance']:.0%}) shaded",
  )
  axes.legend(fontsize="x-small")
  figure.savefig(path, dpi=110)
  return [path]
