"""Width transfer (muP): does the best Adam learning rate stay put as the MLP widens?

Yang et al. 2022 ("Tensor Programs V") report that under the maximal-update
parametrization (muP) the best learning rate found on a narrow network is the
best on a wide one, while under the standard parametrization (SP) it drifts
(for Adam, roughly like 1/width, since every hidden weight's step is the rate
and a hidden unit sums ``width`` of them).

The design: the MNIST-1D MLP with two hidden layers of width ``w`` from 32 to
1024, each width under SP and under muP (``lrlab.tasks.get("mnist1d-mlp",
hidden=(w, w), parametrization=...)``, base width 100, the default), each swept
over the same log-spaced Adam rates with ``seeds`` seeds; muP Adam is
``optax.chain(adam(lr), scale_by_multipliers(task.lr_multipliers("adam")))``.
The best rate of a width is picked by the seed-mean final validation loss (the
objective muP's claim is about), refined by a parabola through the grid's best
and its two neighbours in log rate; the best rate by final validation accuracy
is reported beside it. The drift of a parametrization is the least-squares
slope of log10(best rate) against log2(width), times the number of octaves
(the fitted change across the series, in decades); its standard error comes
from a bootstrap over seeds, paired between SP and muP (same seeds, same
batches). The claim is supported when muP's best rates all lie within one grid
step of each other and SP's drift exceeds one grid step, with SP's drift beyond
muP's by more than 2 standard errors of the paired difference; refuted when
muP drifts as far as SP (difference within 2 standard errors) or further.
"""

import json
import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make `experiments` importable
  sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import jax
import numpy as np
import optax
from matplotlib.figure import Figure

from experiments import common
from lrlab import analysis, optimizers, sweep, tasks, transforms

CLAIM = (
  "Under muP the best Adam learning rate stays within one grid step from width 32 to 1024, "
  "while under the standard parametrization it drifts (Yang et al. 2022)."
)
SIZES = {
  "tiny": dict(widths=(16, 64), lr_range=(1e-3, 1e-1), per_decade=1, steps=20, seeds=2),
  "default": dict(
    widths=(32, 64, 128, 256, 512, 1024),
    lr_range=(10**-3.5, 10**-0.5),
    per_decade=2,
    steps=200,
    seeds=5,
  ),
  "full": dict(
    widths=(32, 64, 128, 256, 512, 1024, 2048, 4096),
    lr_range=(1e-5, 1.0),
    per_decade=4,
    steps=3000,
    seeds=8,
  ),
}
PARAMETRIZATIONS = ("sp", "mup")
METRIC = "final_val_loss"
BATCH_SIZE = 32
BOOTSTRAP = 1000


def run(out: Path, *, widths, lr_range, per_decade, steps, seeds) -> None:
  lo, hi = lr_range
  lrs = sweep.log_grid(lo, hi, round(np.log10(hi / lo) * per_decade) + 1)
  for parametrization in PARAMETRIZATIONS:
    for width in widths:
      task = tasks.get("mnist1d-mlp", hidden=(width, width), parametrization=parametrization)
      rates = task.lr_multipliers("adam")
      result = sweep.run(
        task,
        lambda hp, rates=rates: optax.chain(
          optimizers.adam(hp["lr"]), transforms.scale_by_multipliers(rates)
        ),
        {"lr": lrs},
        steps=steps,
        batch_size=BATCH_SIZE,
        key=jax.random.key(0),
        eval_every=steps // 4,
        seeds=seeds,
        progress=False,
      )
      result.save(out / f"{parametrization}-{width}")
  (out / "widths.json").write_text(json.dumps({"widths": list(widths)}) + "\n")


def _drift(widths: np.ndarray, best_log: np.ndarray) -> float:
  """The fitted change of log10(best rate) from the narrowest to the widest net, in decades."""
  octaves = np.log2(widths)
  return float(np.polyfit(octaves, best_log, 1)[0] * np.ptp(octaves))


def report(out: Path):
  widths = np.asarray(json.loads((out / "widths.json").read_text())["widths"], float)
  results = {
    (p, int(w)): sweep.SweepResult.load(out / f"{p}-{int(w)}")
    for p in PARAMETRIZATIONS
    for w in widths
  }
  first = next(iter(results.values()))
  lrs = np.asarray(first.grid["lr"], float)
  log_lrs, seeds = np.log10(lrs), first.num_seeds
  step = float(log_lrs[1] - log_lrs[0])
  draws = np.random.default_rng(0).integers(0, seeds, size=(BOOTSTRAP, seeds))
  numbers = {
    "metric": METRIC,
    "optimizer": "adam",
    "batch_size": BATCH_SIZE,
    "num_lrs": len(lrs),
    "base_width": 100,
    "grid_step_decades": step,
    "seeds": seeds,
    "widths": [int(w) for w in widths],
  }
  drifts, boot = {}, {}
  for p in PARAMETRIZATIONS:
    runs = {w: results[p, int(w)].metric(METRIC) for w in widths}  # (seeds, lrs), diverged = inf
    accuracy = {w: results[p, int(w)].metric("final_val_accuracy") for w in widths}
    by_loss = lambda values: analysis.refine_best(log_lrs, values.mean(0), larger_is_better=False)
    best = np.array([by_loss(runs[w]) for w in widths])
    best_acc = [
      analysis.refine_best(log_lrs, accuracy[w].mean(0), larger_is_better=True) for w in widths
    ]
    samples = np.array([[by_loss(runs[w][d]) for w in widths] for d in draws])
    drifts[p] = _drift(widths, best)
    boot[p] = np.array([_drift(widths, s) for s in samples])
    numbers[p] = {
      "best_lr": (10**best).tolist(),
      "best_lr_se_decades": samples.std(axis=0, ddof=1).tolist(),
      "best_lr_by_accuracy": (10 ** np.asarray(best_acc)).tolist(),
      "best_on_grid_edge": [results[p, int(w)].edge_warning(METRIC) is not None for w in widths],
      "spread_decades": float(np.ptp(best)),
      "drift_decades": drifts[p],
      "drift_se_decades": float(boot[p].std(ddof=1)),
    }
  difference = np.abs(boot["sp"]) - np.abs(boot["mup"])
  gap, gap_se = abs(drifts["sp"]) - abs(drifts["mup"]), float(difference.std(ddof=1))
  numbers["drift_gap_decades"], numbers["drift_gap_se_decades"] = gap, gap_se
  mup_stays = numbers["mup"]["spread_decades"] <= step + 1e-9
  sp_drifts = abs(drifts["sp"]) > step
  if mup_stays and sp_drifts and gap > 2 * gap_se:
    verdict = "supported"
  elif gap <= 2 * gap_se and abs(drifts["mup"]) > step:
    verdict = "refuted"
  else:
    verdict = "inconclusive"
  figures = [_figure(widths, lrs, results, numbers, out / "width_transfer.png")]
  return numbers, verdict, figures


def _figure(widths, lrs, results, numbers, path: Path) -> Path:
  figure = Figure(figsize=(13, 3.8), layout="constrained")
  panels = figure.subplots(1, 3)
  for axes, p in zip(panels[:2], PARAMETRIZATIONS, strict=True):
    for i, w in enumerate(widths):
      runs = results[p, int(w)].metric(METRIC, diverged_as_worst=False)
      mean = np.nanmean(runs, axis=0)
      se = np.nanstd(runs, axis=0, ddof=1) / np.sqrt(np.sum(np.isfinite(runs), axis=0))
      axes.plot(lrs, mean, ".-", color=f"C{i}", label=f"width {int(w)}")
      axes.fill_between(lrs, mean - se, mean + se, color=f"C{i}", alpha=0.2)
      axes.axvline(numbers[p]["best_lr"][i], color=f"C{i}", linewidth=0.8, linestyle=":")
    axes.set(
      xscale="log", yscale="log", xlabel="Adam learning rate", ylabel="final val loss (mean ± SE)"
    )
    axes.set_xticks(lrs, [f"{lr:.2g}" for lr in lrs], fontsize="x-small")
    axes.minorticks_off()
    axes.set_title(f"{p.upper()} (dotted: best rate, refined)", fontsize="medium")
    axes.grid(alpha=0.3)
    axes.legend(fontsize="x-small")
  axes = panels[2]
  for p, marker in zip(PARAMETRIZATIONS, "os", strict=True):
    best = np.asarray(numbers[p]["best_lr"])
    se = np.asarray(numbers[p]["best_lr_se_decades"])
    axes.errorbar(
      widths,
      best,
      yerr=[best - best / 10**se, best * 10**se - best],
      fmt=marker + "-",
      capsize=3,
      label=f"{p.upper()}: drift {numbers[p]['drift_decades']:+.2f} decades",
    )
  axes.set(xscale="log", yscale="log", xlabel="hidden width", ylabel="best learning rate")
  axes.set_xticks(widths, [str(int(w)) for w in widths])
  axes.set_title("best rate by val loss (± bootstrap SE over seeds)", fontsize="medium")
  axes.grid(alpha=0.3, which="both")
  axes.legend(fontsize="x-small")
  figure.savefig(path, dpi=120)
  return path


if __name__ == "__main__":
  sys.exit(common.main(sys.modules[__name__]))
