"""Claim 4: decaying the learning rate during training helps.

The essay: "the learning rate needs to be decreased gradually during training to
ensure the model reaches the optimal solution", naming step, exponential and
cosine decay among the schedules.

Eight schedules share one step budget ``T`` and one optimizer: a fixed rate,
step decay (x0.1 at T/3 and 2T/3), exponential decay (to 1% at T), cosine
annealing (to 0), cosine warm restarts (4 cycles), a triangular cyclical rate
(4 cycles between peak/10 and the peak), one-cycle (PyTorch's defaults) and
warmup-stable-decay (5% warmup, linear decay over the last 20%). Each is swept
over its own peak rate: the schedule is a traced integer axis of the grid, so all
of them train in one compiled program with common random numbers (a seed gives
every member the same initial weights and minibatch order).

Each schedule is judged at its best peak, chosen on validation accuracy and
reported on test accuracy. The claim holds if every decaying schedule beats the
fixed rate by more than twice the seed spread of their paired (same-seed)
difference.
"""

import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make `experiments` importable
  sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import jax
import jax.numpy as jnp
import numpy as np
from matplotlib.figure import Figure

from experiments import common
from lrlab import analysis, optimizers, schedules, sweep

CLAIM = (
  "Decaying the learning rate during training (step, exponential, cosine, ...) helps: "
  "the rate 'needs to be decreased gradually during training to ensure the model reaches "
  "the optimal solution'."
)
SIZES = {
  "tiny": dict(
    task="mnist1d-logreg",
    optimizer_names=("sgd",),
    num_peaks=3,
    peak_range=(0.01, 0.3),
    steps=40,
    seeds=2,
  ),
  "default": dict(
    task="mnist1d-mlp",
    optimizer_names=("sgd",),
    num_peaks=12,
    peak_range=(0.01, 2.0),
    steps=2000,
    seeds=3,
  ),
  "full": dict(
    task="mnist1d-mlp",
    optimizer_names=("sgd", "adam"),
    num_peaks=16,
    peak_range=(1e-4, 3.0),
    steps=6000,
    seeds=5,
  ),
}
SCHEDULES = (
  "fixed",
  "step",
  "exponential",
  "cosine",
  "warm restarts",
  "cyclical",
  "one-cycle",
  "WSD",
)
SELECT, REPORT = "final_val_accuracy", "final_test_accuracy"
OPTIMIZER_LABELS = {"sgd": "SGD, momentum 0.9", "adam": "Adam"}


def make_schedule(index: jax.Array, peak: jax.Array, total_steps: int):
  """Schedule number ``index`` (traced) of :data:`SCHEDULES` with peak rate ``peak``."""
  T = total_steps
  candidates = (
    schedules.constant(peak),
    schedules.step_decay(peak, step_size=-(-T // 3), gamma=0.1),
    schedules.exponential_decay(peak, gamma=0.01 ** (1.0 / T)),
    schedules.cosine_annealing(peak, T),
    schedules.warm_restarts(peak, T / 4),
    schedules.cyclical(peak / 10, peak, T / 8),
    schedules.one_cycle(peak, T),
    schedules.warmup_stable_decay(peak, T, warmup_steps=T / 20, decay_steps=T / 5),
  )
  return lambda t: jnp.stack([s(t) for s in candidates])[index]


def run(out: Path, *, task, optimizer_names, num_peaks, peak_range, steps, seeds):
  grid = sweep.product(
    schedule=np.arange(len(SCHEDULES)), lr=sweep.log_grid(*peak_range, num_peaks)
  )
  build = {
    "sgd": lambda rate: optimizers.sgd(rate, momentum=0.9),
    "adam": lambda rate: optimizers.adam(rate),
  }
  for name in optimizer_names:
    make_tx = lambda hp, name=name: build[name](make_schedule(hp["schedule"], hp["lr"], steps))
    result = sweep.run(
      task,
      make_tx,
      grid,
      steps=steps,
      batch_size=100,
      key=jax.random.key(0),
      eval_every=steps // 20,
      seeds=seeds,
    )
    result.save(out / name)


def _judge(result: sweep.SweepResult) -> dict:
  """Best peak per schedule (on validation) and its test accuracy, against the fixed rate."""
  peaks = np.unique(result.grid["lr"])
  select = result.seed_mean(SELECT)
  report = result.metric(REPORT)  # (seeds, members); diverged runs count as 0
  numbers, chosen = {}, {}
  for i, name in enumerate(SCHEDULES):
    members = np.flatnonzero(result.grid["schedule"] == i)
    k = members[int(np.nanargmax(select[members]))]
    chosen[name] = k
    peak = float(result.grid["lr"][k])
    mean, low, high = analysis.seed_band(report[:, k])
    numbers[name] = {
      "best_peak": peak,
      "peak_on_grid_edge": bool(peak in (peaks[0], peaks[-1])),
      "val_accuracy": float(select[k]),
      "test_accuracy": float(mean),
      "test_accuracy_seed_min": float(low),
      "test_accuracy_seed_max": float(high),
      "test_accuracy_seed_std": float(np.std(report[:, k], ddof=1)) if len(report) > 1 else 0.0,
    }
  fixed = report[:, chosen["fixed"]]
  for name in SCHEDULES[1:]:
    difference = report[:, chosen[name]] - fixed  # paired: same seed, same init and batches
    noise = float(np.std(difference, ddof=1)) if len(difference) > 1 else float("nan")
    numbers[name].update(
      gain_over_fixed=float(np.mean(difference)),
      gain_seed_std=noise,
      beats_fixed=analysis.verdict(float(np.mean(difference)), noise),
    )
  return {"schedules": numbers, "members": {n: int(k) for n, k in chosen.items()}}


def _bars(result, judged, path, title):
  figure = Figure(figsize=(9, 4.5), layout="constrained")
  axes = figure.add_subplot()
  report = result.metric(REPORT)
  x = np.arange(len(SCHEDULES))
  stats = [judged["schedules"][n] for n in SCHEDULES]
  means = np.array([s["test_accuracy"] for s in stats])
  low = means - np.array([s["test_accuracy_seed_min"] for s in stats])
  high = np.array([s["test_accuracy_seed_max"] for s in stats]) - means
  colors = ["0.6"] + [f"C{i}" for i in range(len(SCHEDULES) - 1)]
  axes.bar(x, means, color=colors, alpha=0.7, yerr=[low, high], capsize=4, label="seed mean")
  for i, name in enumerate(SCHEDULES):
    values = report[:, judged["members"][name]]
    axes.plot(np.full(values.shape, x[i]), values, "k.", markersize=4)
  axes.axhline(means[0], color="0.3", linestyle="--", linewidth=1, label="fixed rate")
  labels = [f"{n}\npeak {s['best_peak']:.2g}" for n, s in zip(SCHEDULES, stats, strict=True)]
  axes.set_xticks(x, labels, fontsize="small")
  finite = means[np.isfinite(means)]
  axes.set_ylim(max(0.0, finite.min() - 0.1), min(1.0, finite.max() + 0.05))
  axes.set_ylabel(f"{REPORT} at the best peak")
  axes.set_title(title + f" (bars: seed min-max, dots: {result.num_seeds} seeds)")
  axes.legend(fontsize="small", loc="lower right")
  figure.savefig(path, dpi=120)


def _curves(result, judged, path, title):
  figure = Figure(figsize=(11, 4.5), layout="constrained")
  accuracy_axes, rate_axes = figure.subplots(1, 2)
  steps = result.history.step[0, 0]
  for i, name in enumerate(SCHEDULES):
    k = judged["members"][name]
    color = "0.4" if i == 0 else f"C{i - 1}"
    mean, low, high = analysis.seed_band(result.history.test_accuracy[:, k])
    accuracy_axes.plot(steps, mean, color=color, label=name)
    accuracy_axes.fill_between(steps, low, high, color=color, alpha=0.15)
    rate_axes.plot(result.history.learning_rate[0, k], color=color, label=name)
  accuracy_axes.set(xlabel="step", ylabel="test accuracy (seed mean, min-max band)")
  accuracy_axes.set_ylim(bottom=0.1)
  accuracy_axes.set_title("Each schedule at its best peak")
  figure.suptitle(title)
  rate_axes.set(xlabel="step", ylabel="applied learning rate", yscale="log")
  rate_axes.set_title("Learning rate per step")
  accuracy_axes.legend(fontsize="small")
  figure.savefig(path, dpi=120)


def _sensitivity(result, path, title):
  figure = Figure(figsize=(8, 4.5), layout="constrained")
  axes = figure.add_subplot()
  select = result.seed_mean(SELECT)
  for i, name in enumerate(SCHEDULES):
    members = np.flatnonzero(result.grid["schedule"] == i)
    color = "0.4" if i == 0 else f"C{i - 1}"
    axes.plot(
      result.grid["lr"][members], select[members], "o-", color=color, label=name, markersize=3
    )
  axes.set(xscale="log", xlabel="peak learning rate", ylabel=f"{SELECT} (seed mean)")
  axes.set_title(title + ": sensitivity to the peak rate")
  axes.grid(alpha=0.3)
  axes.legend(fontsize="small")
  figure.savefig(path, dpi=120)


def report(out: Path):
  numbers, figures, verdicts = {}, [], []
  for folder in sorted(p for p in out.iterdir() if (p / "sweep.json").exists()):
    result = sweep.SweepResult.load(folder)
    judged = _judge(result)
    gains = [judged["schedules"][n]["gain_over_fixed"] for n in SCHEDULES[1:]]
    numbers[folder.name] = {
      "schedules": judged["schedules"],
      "decaying_with_positive_gain": int(np.sum(np.array(gains) > 0)),
      "decaying_beyond_seed_noise": sum(
        judged["schedules"][n]["beats_fixed"] == "supported" for n in SCHEDULES[1:]
      ),
      "decaying_schedules": len(gains),
      "mean_gain_over_fixed": float(np.mean(gains)),
    }
    title = f"{result.config['task']}, {OPTIMIZER_LABELS.get(folder.name, folder.name)}"
    title += f", {result.config['steps']} steps"
    for kind, draw in (("bars", _bars), ("curves", _curves)):
      figures.append(out / f"{kind}_{folder.name}.png")
      draw(result, judged, figures[-1], title)
    figures.append(out / f"sensitivity_{folder.name}.png")
    _sensitivity(result, figures[-1], title)
    verdicts += [(folder.name, s, judged["schedules"][s]["beats_fixed"]) for s in SCHEDULES[1:]]
  outcomes = {v for _, _, v in verdicts}
  if outcomes == {"supported"}:
    verdict = "supported"
  elif outcomes == {"refuted"}:
    verdict = "refuted"
  elif outcomes == {"inconclusive"}:
    verdict = "inconclusive"
  else:
    beat = sorted({f"{s} ({o})" for o, s, v in verdicts if v == "supported"})
    verdict = "depends on the schedule: beyond seed noise, only " + (", ".join(beat) or "none")
    verdict += " beat the fixed rate"
  return numbers, verdict, figures


if __name__ == "__main__":
  sys.exit(common.main(sys.modules[__name__]))
