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

Each schedule is judged at its own best peak, chosen by the claim's metric:
final validation accuracy, reported on test accuracy. The peak chosen by final
validation loss is reported beside it, with its test loss (the two differ for
some schedules). A decaying schedule beats the fixed rate when its test accuracy
minus the fixed rate's, paired over seeds (same initial weights and batches),
is positive beyond 2 standard errors after Holm's correction at
``lrlab.analysis.ALPHA``; the standard error is the seeds' (ddof 1) with the
test set's binomial error (:func:`lrlab.analysis.paired_difference`). The same
comparison is made on test loss, each schedule at its own loss-best peak: the
claim's "optimal solution" is read on both. The family is every comparison, 14
per optimizer (7 schedules x 2 metrics). The claim is supported if every decaying
schedule beats the fixed rate on both metrics, refuted if every one loses on
both; otherwise the verdict says which schedules win on which metric.

The dead-network guard (:func:`lrlab.analysis.fail_at_chance`): along each
schedule's peaks, a run above its best peak whose final train loss sits within
5% of chance counts as failed; each schedule's divergence threshold is the
smallest peak at which a seed diverged or died.
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
from lrlab import analysis, optimizers, schedules, sweep, tasks, train
from lrlab.analysis import ALPHA

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
    num_peaks=16,
    peak_range=(0.002, 2.0),
    steps=2000,
    seeds=5,
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
SELECT_LOSS, REPORT_LOSS = "final_val_loss", "final_test_loss"
METRICS = ("vs_fixed", "vs_fixed_loss")  # the two families of comparisons with the fixed rate
CHANCE_RTOL = 0.05  # the dead-network guard: final train loss within 5% of chance
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


def _members(result: sweep.SweepResult, members: np.ndarray) -> sweep.SweepResult:
  """The sweep restricted to ``members`` (one schedule's line of peaks)."""
  history = train.History(*(np.asarray(field)[:, members] for field in result.history))
  grid = {name: np.asarray(values)[members] for name, values in result.grid.items()}
  return sweep.SweepResult(grid, result.seeds, history, result.config)


def task_facts(task: str) -> tuple[float, int]:
  """The task's chance-level loss (:func:`lrlab.analysis.chance_loss`) and test-set size."""
  problem = tasks.get(task)
  data = problem.dataset
  return analysis.chance_loss(data.y_train, problem.num_classes), len(data.y_test)


def _se(values: np.ndarray, test_examples: int | None = None) -> float:
  """The standard error of a seed mean (ddof 1), with an accuracy's binomial test-set error."""
  values = np.asarray(values, np.float64)
  seeds = float(np.std(values, ddof=1) / np.sqrt(values.size)) if values.size > 1 else np.nan
  if test_examples is None:
    return seeds
  p = float(np.mean(values))
  return float(np.hypot(seeds, np.sqrt(max(p * (1 - p), 0.0) / test_examples)))


def _judge(result: sweep.SweepResult, chance: float, num_test: int) -> dict:
  """Each schedule at its best peak (by val accuracy and by val loss); paired gaps to fixed."""
  peaks = np.unique(result.grid["lr"])
  numbers, chosen, lines = {}, {}, {}
  for i, name in enumerate(SCHEDULES):
    line = _members(result, np.flatnonzero(result.grid["schedule"] == i))
    line = analysis.fail_at_chance(line, chance, rtol=CHANCE_RTOL, select=SELECT, axis="lr")
    lines[name] = line
    k = int(np.nanargmax(line.seed_mean(SELECT)))
    k_loss = int(np.nanargmin(line.seed_mean(SELECT_LOSS)))
    chosen[name] = (k, k_loss)
    test, test_loss = line.metric(REPORT)[:, k], line.metric(REPORT_LOSS)[:, k_loss]
    peak, peak_loss = float(line.grid["lr"][k]), float(line.grid["lr"][k_loss])
    numbers[name] = {
      "best_peak": peak,
      "peak_on_grid_edge": bool(peak in (peaks[0], peaks[-1])),
      "val_accuracy": float(line.seed_mean(SELECT)[k]),
      "test_accuracy": float(np.mean(test)),
      "test_accuracy_se": _se(test, num_test),
      "test_accuracy_per_seed": test,
      "best_peak_by_val_loss": peak_loss,
      "peak_by_val_loss_on_grid_edge": bool(peak_loss in (peaks[0], peaks[-1])),
      "peaks_differ": bool(k != k_loss),
      "val_loss": float(line.seed_mean(SELECT_LOSS)[k_loss]),
      "test_loss": float(np.mean(test_loss)),
      "test_loss_se": _se(test_loss),
      "test_accuracy_at_loss_best_peak": float(line.seed_mean(REPORT)[k_loss]),
      "divergence_threshold": line.divergence_threshold("lr", SELECT),
      "dead_runs": line.config["dead_guard"]["runs"],
    }
  for name in SCHEDULES[1:]:  # paired: same seed, same init and batches
    numbers[name]["vs_fixed"] = analysis.paired_difference(
      numbers[name]["test_accuracy_per_seed"],
      numbers["fixed"]["test_accuracy_per_seed"],
      test_examples=num_test,
    )
    loss = [lines[n].metric(REPORT_LOSS)[:, chosen[n][1]] for n in ("fixed", name)]
    numbers[name]["vs_fixed_loss"] = analysis.paired_difference(*loss)  # fixed - schedule
  return {"schedules": numbers, "members": {n: k for n, (k, _) in chosen.items()}, "lines": lines}


def _holm(numbers: dict) -> int:
  """Holm-adjust every comparison (both metrics, every optimizer) as one family; judge at ALPHA."""
  family = [(o, s, k) for o in numbers for s in SCHEDULES[1:] for k in METRICS]
  entries = [numbers[o]["schedules"][s][k] for o, s, k in family]
  for entry, p_holm in zip(entries, analysis.holm([e["p"] for e in entries]), strict=True):
    entry["p_holm"] = float(p_holm)
    won = "supported" if entry["gap"] > 0 else "refuted"
    entry["verdict"] = won if np.isfinite(p_holm) and p_holm <= ALPHA else "inconclusive"
  return len(family)


def _outcome(numbers: dict, key: str) -> str:
  """One metric's outcome over every (optimizer, schedule) comparison with the fixed rate."""
  verdicts = [(o, s, numbers[o]["schedules"][s][key]["verdict"]) for o in numbers
              for s in SCHEDULES[1:]]  # fmt: skip
  outcomes = {v for _, _, v in verdicts}
  n = len(verdicts)
  if outcomes == {"supported"}:
    return f"all {n} decaying schedules beat the fixed rate"
  if outcomes == {"refuted"}:
    return f"all {n} decaying schedules lose to the fixed rate"
  beat = [f"{s} ({o})" for o, s, v in verdicts if v == "supported"]
  lost = [f"{s} ({o})" for o, s, v in verdicts if v == "refuted"]
  text = f"{len(beat)} of {n} beat the fixed rate" + (f" ({', '.join(beat)})" if beat else "")
  return text + (f", {len(lost)} lose to it ({', '.join(lost)})" if lost else "")


def _verdict(numbers: dict, comparisons: int) -> str:
  """Supported / refuted when both metrics agree on every schedule; otherwise what depends."""
  outcomes = {
    k: {numbers[o]["schedules"][s][k]["verdict"] for o in numbers for s in SCHEDULES[1:]}
    for k in METRICS
  }
  if all(v == {"supported"} for v in outcomes.values()):
    return "supported"
  if all(v == {"refuted"} for v in outcomes.values()):
    return "refuted"
  if all(v == {"inconclusive"} for v in outcomes.values()):
    return "inconclusive"
  return (
    f"depends on the metric (Holm over {comparisons} comparisons, 2 SE): on test loss "
    + _outcome(numbers, "vs_fixed_loss")
    + "; on test accuracy "
    + _outcome(numbers, "vs_fixed")
  )


def _band(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
  """Seed mean and standard error (ddof 1) over the leading axis."""
  values = np.asarray(values, np.float64)
  se = np.std(values, axis=0, ddof=1) / np.sqrt(len(values)) if len(values) > 1 else 0 * values[0]
  return np.mean(values, axis=0), se


def _peak_ticks(axes, peaks: np.ndarray) -> None:
  """Log x axis with a labelled tick at every other peak of the grid."""
  axes.set_xscale("log")
  axes.set_xticks(peaks[::2], [f"{v:.2g}" for v in peaks[::2]])
  axes.set_xticks(peaks, minor=True, labels=[])


def _bars(result, judged, path, title):
  figure = Figure(figsize=(9, 4.5), layout="constrained")
  axes = figure.add_subplot()
  x = np.arange(len(SCHEDULES))
  stats = [judged["schedules"][n] for n in SCHEDULES]
  means = np.array([s["test_accuracy"] for s in stats])
  se = np.array([s["test_accuracy_se"] for s in stats])
  colors = ["0.6"] + [f"C{i}" for i in range(len(SCHEDULES) - 1)]
  axes.bar(x, means, color=colors, alpha=0.7, yerr=se, capsize=4,
           label="seed mean ± SE (seeds and test set)")  # fmt: skip
  for i, s in enumerate(stats):
    values = np.asarray(s["test_accuracy_per_seed"])
    axes.plot(np.full(values.shape, x[i]), values, "k.", markersize=4,
              label="one seed" if i == 0 else None)  # fmt: skip
  axes.axhline(means[0], color="0.3", linestyle="--", linewidth=1, label="fixed rate at its best")
  labels = []
  for name, s in zip(SCHEDULES, stats, strict=True):
    mark = {"supported": " *", "refuted": " -"}.get(s.get("vs_fixed", {}).get("verdict"), "")
    labels.append(f"{name}{mark}\npeak {s['best_peak']:.2g}")
  axes.set_xticks(x, labels, fontsize="small")
  finite = means[np.isfinite(means)]
  axes.set_ylim(max(0.0, finite.min() - 0.1), min(1.0, finite.max() + 0.05))
  axes.set_ylabel(f"{REPORT} at the best peak (by val accuracy)")
  axes.set_title(title + "\n* beats the fixed rate beyond 2 SE (paired, Holm)", fontsize="medium")
  axes.legend(fontsize="small", loc="lower right")
  figure.savefig(path, dpi=120)


def _curves(result, judged, path, title):
  figure = Figure(figsize=(11, 4.5), layout="constrained")
  accuracy_axes, rate_axes = figure.subplots(1, 2)
  steps = result.history.step[0, 0]
  for i, name in enumerate(SCHEDULES):
    line, k = judged["lines"][name], judged["members"][name]
    color = "0.4" if i == 0 else f"C{i - 1}"
    mean, se = _band(line.history.test_accuracy[:, k])
    accuracy_axes.plot(steps, mean, color=color, label=name)
    accuracy_axes.fill_between(steps, mean - se, mean + se, color=color, alpha=0.2)
    rate_axes.plot(line.history.learning_rate[0, k], color=color, label=name)
  accuracy_axes.set(xlabel="step", ylabel="test accuracy (seed mean ± SE band)")
  accuracy_axes.set_ylim(bottom=0.1)
  accuracy_axes.set_title("Each schedule at its best peak")
  figure.suptitle(title)
  rate_axes.set(xlabel="step", ylabel="applied learning rate", yscale="log")
  rate_axes.set_title("Learning rate per step")
  accuracy_axes.legend(fontsize="small")
  figure.savefig(path, dpi=120)


def _sensitivity(result, judged, path, title):
  figure = Figure(figsize=(12, 4.5), layout="constrained")
  panels = figure.subplots(1, 2)
  for i, name in enumerate(SCHEDULES):
    line = judged["lines"][name]
    color = "0.4" if i == 0 else f"C{i - 1}"
    for axes, metric in zip(panels, (SELECT, SELECT_LOSS), strict=True):
      with np.errstate(invalid="ignore"):  # a failed run: accuracy 0, loss inf (not drawn)
        mean, se = _band(line.metric(metric))
      lrs = line.grid["lr"]
      axes.plot(lrs, mean, "o-", color=color, label=name, markersize=3)
      axes.fill_between(lrs, mean - se, mean + se, color=color, alpha=0.15)
  for axes, metric in zip(panels, (SELECT, SELECT_LOSS), strict=True):
    _peak_ticks(axes, np.unique(result.grid["lr"]))
    axes.set(xlabel="peak learning rate", ylabel=f"{metric} (seed mean ± SE)")
    axes.grid(alpha=0.3)
  panels[0].set_title("failed runs (diverged or dead) count as 0", fontsize="medium")
  panels[1].set_title("failed runs left out", fontsize="medium")
  panels[0].legend(fontsize="small")
  figure.suptitle(title + ": sensitivity to the peak rate")
  figure.savefig(path, dpi=120)


def report(out: Path):
  numbers, figures, judged_all = {}, [], {}
  facts = {}
  for folder in sorted(p for p in out.iterdir() if (p / "sweep.json").exists()):
    result = sweep.SweepResult.load(folder)
    task = result.config["task"]
    facts.setdefault(task, task_facts(task))
    judged = _judge(result, *facts[task])
    judged_all[folder.name] = (result, judged)
    numbers[folder.name] = {"schedules": judged["schedules"]}
  comparisons = _holm(numbers)
  for name, (result, judged) in judged_all.items():
    entry = numbers[name]
    gains = [entry["schedules"][s]["vs_fixed"]["gap"] for s in SCHEDULES[1:]]
    verdicts = [entry["schedules"][s]["vs_fixed"]["verdict"] for s in SCHEDULES[1:]]
    entry.update(
      decaying_schedules=len(gains),
      decaying_with_positive_gain=int(np.sum(np.array(gains) > 0)),
      decaying_beyond_2se=verdicts.count("supported"),
      decaying_behind_beyond_2se=verdicts.count("refuted"),
      mean_gain_over_fixed=float(np.mean(gains)),
      peaks_differ_by_loss=[s for s in SCHEDULES if entry["schedules"][s]["peaks_differ"]],
    )
    title = f"{result.config['task']}, {OPTIMIZER_LABELS.get(name, name)}"
    title += f", {result.config['steps']} steps, {result.num_seeds} seeds"
    for kind, draw in (("bars", _bars), ("curves", _curves), ("sensitivity", _sensitivity)):
      figures.append(out / f"{kind}_{name}.png")
      draw(result, judged, figures[-1], title)
  verdict = _verdict(numbers, comparisons)
  numbers["comparisons"] = comparisons
  numbers["alpha"] = ALPHA
  numbers["chance_loss"] = {t: c for t, (c, _) in facts.items()}
  numbers["test_examples"] = {t: n for t, (_, n) in facts.items()}
  numbers["selected_by"] = SELECT
  numbers["chance_rtol"] = CHANCE_RTOL
  return numbers, verdict, figures


if __name__ == "__main__":
  sys.exit(common.main(sys.modules[__name__]))
