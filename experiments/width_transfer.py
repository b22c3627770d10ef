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
batches), and the grid's rounding (:func:`experiments.common.grid_slope_se`
times the octaves: every best rate off by an error uniform over one step, SD
``step / sqrt(12)``), added by ``hypot``; the drift gap's adds both drifts'
roundings (``sqrt(2)`` times one). The rounding term is applied to every best
rate, parabola-refined or not: a best rate at the grid's edge or next to a
diverged run sits on a grid point in every draw (bootstrap SE 0), and for a
refined one it is conservative (the parabola's error is under a step's
rounding, but the bootstrap does not measure it). The claim is supported when
muP's best rates all lie within one grid step of each other and SP's drift
exceeds one grid step, with SP's drift beyond muP's by more than 2 standard
errors of the paired difference (its two-sided normal p-value Holm-corrected
over the models compared, the MLP, the
transformer and the ResNet, at the 2-SE level); refuted when muP drifts as far as SP
(difference within 2 standard errors) or further.

The transformer (``lm-transformer``, depth 2, 4 heads, context 16) is run the
same way at a small size, widths 32 to 256 with muP's base width 64 (the
task's default width; Adam on Table 8's per-tensor rates, the attention
logits scaled 1/d, the readout tied with output multiplier 1/m, see
``lrlab.models.Transformer``), one epoch of fresh sequences, judged by the
same rule on its own grid; its numbers are under ``numbers["lm-transformer"]``.
The ResNet (``mnist1d-resnet``, two stages of channels ``(w, 2w)``, w from 8
to 64, muP's base ``(16, 32)``; a MuReadout head and Table 8's per-tensor
rates, see ``lrlab.models.ResNet``) is run the same way at batch 64, its
numbers under ``numbers["mnist1d-resnet"]``: its widths are 8x apart, not 32x
(the CPU's budget), so its drift spans 3 octaves. The drift gaps of the models
are Holm-corrected together. Where the models' verdicts differ, the verdict
says so ("depends on the model").
"""

import json
import math
import sys
import time
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make `experiments` importable
  sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import jax
import numpy as np
import optax
from matplotlib.figure import Figure

from experiments import common
from lrlab import analysis, optimizers, sweep, tasks, transforms
from lrlab.models import mup

CLAIM = (
  "Under muP the best Adam learning rate stays within one grid step from width 32 to 1024 "
  "(the MLP; 32 to 256 for the transformer; channels 8 to 64 for the ResNet), while under the "
  "standard parametrization it drifts (Yang et al. 2022)."
)
#: The transformer's fixed shape (its width is swept) and batch size.
LM = dict(depth=2, heads=4, context=16)
LM_BATCH_SIZE = 16
#: The ResNet (``mnist1d-resnet``): width w is the channels (w, 2w) of its two stages.
RESNET_DIR = "mnist1d-resnet"
RESNET_BATCH_SIZE = 64
SIZES = {
  "tiny": dict(
    widths=(16, 64),
    lr_range=(1e-3, 1e-1),
    per_decade=1,
    steps=20,
    seeds=2,
    # No transformer: its four sweeps' compilation alone would double the tiny size's 10 s.
    lm=None,
  ),
  "default": dict(
    widths=(32, 64, 128, 256, 512, 1024),
    lr_range=(10**-3.5, 10**-0.5),
    per_decade=2,
    steps=200,
    seeds=5,
    lm=dict(
      widths=(32, 64, 128, 256),
      lr_range=(10**-3.5, 10**-1.5),
      per_decade=2,
      steps=100,
      base_width=64,
    ),
    resnet=dict(
      widths=(8, 16, 32, 64),
      lr_range=(10**-3.5, 10**-1),
      per_decade=2,
      steps=200,
      base_width=16,
    ),
  ),
  "full": dict(
    widths=(32, 64, 128, 256, 512, 1024, 2048, 4096),
    lr_range=(1e-5, 1.0),
    per_decade=4,
    steps=3000,
    seeds=8,
    lm=dict(
      widths=(64, 128, 256, 512, 1024),
      lr_range=(1e-4, 1e-1),
      per_decade=4,
      steps=2000,
      base_width=64,
    ),
  ),
}
PARAMETRIZATIONS = mup.PARAMETRIZATIONS  # "sp", then "mup"
METRIC = "final_val_loss"
LM_DIR = "lm-transformer"
#: Models beside the MLP: listing key -> (folder, name, figure).
OTHER_MODELS = {
  "lm": (LM_DIR, "transformer", "width_transfer_lm.png"),
  "resnet": (RESNET_DIR, "ResNet", "width_transfer_resnet.png"),
}
BATCH_SIZE = 32
BOOTSTRAP = 1000


def _sweep(task, lrs, steps: int, batch_size: int, seeds: int) -> sweep.SweepResult:
  """Adam then ``task.lr_multipliers("adam")`` over ``lrs``, ``seeds`` seeds (paired)."""
  rates = task.lr_multipliers("adam")
  return sweep.run(
    task,
    lambda hp: optax.chain(optimizers.adam(hp["lr"]), transforms.scale_by_multipliers(rates)),
    {"lr": lrs},
    steps=steps,
    batch_size=batch_size,
    key=jax.random.key(0),
    eval_every=steps // 4,
    seeds=seeds,
    progress=False,
  )


def _grid(lr_range, per_decade: int) -> np.ndarray:
  lo, hi = lr_range
  return sweep.log_grid(lo, hi, round(np.log10(hi / lo) * per_decade) + 1)


def run_lm(
  out: Path,
  parametrization: str,
  *,
  widths,
  lr_range,
  per_decade,
  steps,
  base_width,
  seeds,
  depth=LM["depth"],
):
  """The transformer's sweeps under one parametrization, saved under ``out / LM_DIR``."""
  lrs = _grid(lr_range, per_decade)
  for width in widths:
    task = tasks.get(
      "lm-transformer",
      width=width,
      **(LM | {"depth": depth}),
      num_tokens=steps * LM_BATCH_SIZE * LM["context"],  # one epoch
      num_eval=256,
      parametrization=parametrization,
      base_width=base_width,
    )
    result = _sweep(task, lrs, steps, LM_BATCH_SIZE, seeds)
    result.save(out / LM_DIR / f"{parametrization}-{width}")


def run_resnet(
  out: Path, parametrization: str, *, widths, lr_range, per_decade, steps, base_width, seeds
):
  """The ResNet's sweeps (channels ``(w, 2w)``) under one parametrization, under ``RESNET_DIR``."""
  lrs = _grid(lr_range, per_decade)
  for width in widths:
    task = tasks.get(
      "mnist1d-resnet",
      channels=(width, 2 * width),
      parametrization=parametrization,
      base_width=(base_width, 2 * base_width),
    )
    result = _sweep(task, lrs, steps, RESNET_BATCH_SIZE, seeds)
    result.save(out / RESNET_DIR / f"{parametrization}-{width}")


def run(out: Path, *, widths, lr_range, per_decade, steps, seeds, lm=None, resnet=None) -> None:
  lrs = _grid(lr_range, per_decade)
  for parametrization in PARAMETRIZATIONS:
    for width in widths:
      task = tasks.get("mnist1d-mlp", hidden=(width, width), parametrization=parametrization)
      _sweep(task, lrs, steps, BATCH_SIZE, seeds).save(out / f"{parametrization}-{width}")
  listing = {"widths": list(widths)}
  if lm is not None:
    started = time.perf_counter()
    for parametrization in PARAMETRIZATIONS:
      run_lm(out, parametrization, seeds=seeds, **lm)
    listing["lm"] = {"widths": list(lm["widths"]), "base_width": lm["base_width"]}
    listing["lm"]["depth"] = lm.get("depth", LM["depth"])
    listing["lm"]["seconds"] = round(time.perf_counter() - started, 1)
  if resnet is not None:
    started = time.perf_counter()
    for parametrization in PARAMETRIZATIONS:
      run_resnet(out, parametrization, seeds=seeds, **resnet)
    listing["resnet"] = {"widths": list(resnet["widths"]), "base_width": resnet["base_width"]}
    listing["resnet"]["seconds"] = round(time.perf_counter() - started, 1)
  (out / "widths.json").write_text(json.dumps(listing) + "\n")


def _drift(widths: np.ndarray, best_log: np.ndarray) -> float:
  """The fitted change of log10(best rate) from the narrowest to the widest net, in decades."""
  octaves = np.log2(widths)
  return float(np.polyfit(octaves, best_log, 1)[0] * np.ptp(octaves))


def _analyse(results: dict, widths: np.ndarray, seeds: int) -> dict:
  """Best rates, drifts and the paired drift gap (with its p-value) of one model's sweeps."""
  first = next(iter(results.values()))
  lrs = np.asarray(first.grid["lr"], float)
  log_lrs = np.log10(lrs)
  step = float(log_lrs[1] - log_lrs[0])
  draws = np.random.default_rng(0).integers(0, seeds, size=(BOOTSTRAP, seeds))
  numbers = {"num_lrs": len(lrs), "grid_step_decades": step, "widths": [int(w) for w in widths]}
  octaves = np.log2(widths)  # the grid's rounding of every best rate, through the fitted drift
  grid_se = common.grid_slope_se(octaves, step) * float(np.ptp(octaves))
  numbers["drift_grid_se_decades"] = grid_se
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
      "drift_se_decades": math.hypot(float(boot[p].std(ddof=1)), grid_se),
      "drift_bootstrap_se_decades": float(boot[p].std(ddof=1)),
    }
  difference = np.abs(boot["sp"]) - np.abs(boot["mup"])
  gap, boot_se = abs(drifts["sp"]) - abs(drifts["mup"]), float(difference.std(ddof=1))
  gap_se = math.hypot(boot_se, math.sqrt(2) * grid_se)  # two drifts' independent roundings
  numbers["drift_gap_decades"], numbers["drift_gap_se_decades"] = gap, gap_se
  numbers["drift_gap_bootstrap_se_decades"] = boot_se
  numbers["drift_gap_p"] = math.erfc(abs(gap / gap_se) / math.sqrt(2.0)) if gap_se else math.nan
  return numbers


def _judge(numbers: dict, p_holm: float) -> str:
  """The rule of the module's docstring, with the drift gap's Holm-adjusted p-value."""
  step, gap = numbers["grid_step_decades"], numbers["drift_gap_decades"]
  beyond = p_holm <= analysis.ALPHA and gap > 0
  mup_stays = numbers["mup"]["spread_decades"] <= step + 1e-9
  if mup_stays and abs(numbers["sp"]["drift_decades"]) > step and beyond:
    return "supported"
  if not beyond and abs(numbers["mup"]["drift_decades"]) > step:
    return "refuted"
  return "inconclusive"


def _load(folder: Path, widths) -> dict:
  return {
    (p, int(w)): sweep.SweepResult.load(folder / f"{p}-{int(w)}")
    for p in PARAMETRIZATIONS
    for w in widths
  }


def report(out: Path):
  listing = json.loads((out / "widths.json").read_text())
  widths = np.asarray(listing["widths"], float)
  results = _load(out, widths)
  seeds = next(iter(results.values())).num_seeds
  numbers = {
    "metric": METRIC,
    "optimizer": "adam",
    "batch_size": BATCH_SIZE,
    "base_width": 100,
    "seeds": seeds,
  }
  numbers |= _analyse(results, widths, seeds)
  lrs = np.asarray(next(iter(results.values())).grid["lr"], float)
  figures = [_figure(widths, lrs, results, numbers, out / "width_transfer.png", "MLP")]
  extra = {}  # the transformer and the ResNet, where they were run
  for key, (folder, _, _) in OTHER_MODELS.items():
    if key in listing:
      other_widths = np.asarray(listing[key]["widths"], float)
      other = _load(out / folder, other_widths)
      extra[key] = (other_widths, other, _analyse(other, other_widths, seeds))
  models = [numbers] + [m for _, _, m in extra.values()]
  numbers["comparisons"] = len(models)
  for model, p in zip(models, analysis.holm([m["drift_gap_p"] for m in models]), strict=True):
    model["drift_gap_p_holm"] = float(p)
  verdict = _judge(numbers, numbers["drift_gap_p_holm"])
  verdicts = {"MLP": verdict}
  for key, (other_widths, other, entry) in extra.items():
    folder, label, figure = OTHER_MODELS[key]
    verdicts[label] = _judge(entry, entry["drift_gap_p_holm"])
    entry |= {"verdict": verdicts[label], "base_width": listing[key]["base_width"]}
    if key == "lm":
      entry |= {"batch_size": LM_BATCH_SIZE, **LM, "depth": listing[key].get("depth", LM["depth"])}
    else:
      entry["batch_size"] = RESNET_BATCH_SIZE
    if "seconds" in listing[key]:  # the wall time of its sweeps, where the run recorded it
      entry["seconds"] = listing[key]["seconds"]
    numbers["mlp_verdict"], numbers[folder] = verdict, entry
    other_lrs = np.asarray(next(iter(other.values())).grid["lr"], float)
    figures.append(_figure(other_widths, other_lrs, other, entry, out / figure, label))
  if len(set(verdicts.values())) > 1:
    verdict = "depends on the model: " + ", ".join(f"{k} {v}" for k, v in verdicts.items())
  return numbers, verdict, figures


def _figure(widths, lrs, results, numbers, path: Path, model: str) -> Path:
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
    # The MLP's losses span a decade (log axis); the transformer's a few tenths of a nat.
    axes.set(
      xscale="log",
      yscale="log" if model == "MLP" else "linear",
      xlabel="Adam learning rate",
      ylabel="final val loss (mean ± SE)",
    )
    axes.set_xticks(lrs, [f"{lr:.2g}" for lr in lrs], fontsize="x-small")
    axes.minorticks_off()
    axes.set_title(f"{model}, {p.upper()} (dotted: best rate, refined)", fontsize="medium")
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
  axes.set(xscale="log", yscale="log", xlabel="width", ylabel="best learning rate")
  axes.set_xticks(widths, [str(int(w)) for w in widths])
  axes.tick_params(axis="x", which="minor", labelbottom=False)
  axes.set_title("best rate by val loss (± bootstrap SE over seeds)", fontsize="medium")
  axes.grid(alpha=0.3, which="both")
  axes.legend(fontsize="x-small")
  figure.savefig(path, dpi=120)
  return path


if __name__ == "__main__":
  sys.exit(common.main(sys.modules[__name__]))
