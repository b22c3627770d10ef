"""Claim 9: loss-driven rules fix a badly chosen learning rate during training.

The essay: adaptive decay techniques "monitor the model's loss or accuracy
during training and increase or decrease the learning rate accordingly", which
"allows the model to quickly adapt".

Two such rules are tested, each from deliberately bad starting rates.
``reduce_on_plateau`` (PyTorch's rule) can only lower the rate, so it is
started too high. ``loss_feedback`` (the bold driver) can raise or lower it, so
it is started too low and too high. Both watch the training loss averaged over
each epoch (36 steps of 100 examples). The plateau rule cuts the rate by 10x
after 5 epochs without improvement. The bold driver multiplies it by 1.1 after
an improving epoch and by 0.5 after a worse one.

The experiment is one sweep with SGD (momentum 0.9) on mnist1d-mlp. Four
methods each start from every rate ``lr0`` of a grid with four points per
decade: the fixed rate ``lr0``, cosine decay from ``lr0`` (the decay-only
control: the same start, a rate that falls without looking at the loss),
plateau reduction from ``lr0`` and loss feedback from ``lr0``. The method is a
traced integer, and a controller is switched off by clamping its scale to 1, so
all members compile once and share initial weights and batch order within a
seed (the comparisons are paired over seeds). The best fixed rate ``lr*`` is
chosen on seed-mean final validation accuracy (the claim is about accuracy; the
best by validation loss is reported beside it). The starts ``m * lr*`` for ``m``
from 1/30 to 10 (whole grid steps, ``10^(k/4)``) are read off the grid.

The measure is the final test accuracy. A run fails when it diverges or when its
network is dead: its final validation loss sits at chance level (at least
``DEAD`` times the loss of predicting the training labels' frequencies) while its
validation accuracy is no better than chance (at most ``DEAD_ACCURACY`` times the
majority label's frequency). The loss alone does not tell: an overfitted network
that is right on 63% of the examples has a validation loss above chance, from
confident mistakes. Failures are counted per method and start; a failed run
keeps its (chance-level) accuracy, 0 if it diverged.

Each test (a rule from a bad start) makes two paired comparisons: against the
fixed rate from the same start (does it recover?) and against cosine from the
same start (what does the loss signal add beyond decay?). A difference's
standard error adds the seeds' (``ddof=1``, of the paired differences) and the
test set's binomial error, as in ``lr_free_vs_tuned``; its two-sided normal
p-value is Holm-adjusted over all the comparisons (:func:`lrlab.analysis.holm`)
and counts at ``ALPHA``, the level of 2 SE. The claim is judged on the
comparisons with the cosine: a rule's loss signal helps from a start when it
beats the cosine there beyond that level.
"""

import json
import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make `experiments` importable
  sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import jax
import jax.numpy as jnp
import numpy as np
import optax
from matplotlib.figure import Figure

from experiments import common
from lrlab import analysis, optimizers, schedules, sweep, tasks, transforms
from lrlab.analysis import ALPHA, paired_difference

CLAIM = (
  "Loss-driven rules that 'increase or decrease the learning rate accordingly' (plateau "
  "reduction, loss feedback) let training recover from a badly chosen starting rate."
)
SIZES = {
  "tiny": dict(task="mnist1d-logreg", decades=(-2.0, 0.5), steps=72, seeds=2),
  "default": dict(task="mnist1d-mlp", decades=(-3.0, 0.5), steps=2016, seeds=5),
  "full": dict(task="mnist1d-mlp", decades=(-4.0, 1.0), steps=6048, seeds=8),
}
METHODS = ("fixed", "cosine", "plateau", "feedback")
PER_DECADE = 4  # grid points per decade: a start m * lr* is k grid steps away, m = 10^(k/4)
TOO_SMALL, TOO_LARGE = (-6, -4), (2, 4)  # grid steps from lr*: x1/31.6, x1/10; x3.16, x10
TESTS = (("feedback", (*TOO_SMALL, *TOO_LARGE)), ("plateau", TOO_LARGE))  # rule, its bad starts
SHOWN = (-6, -4, -2, 0, 2, 4)  # the starts reported, in grid steps from lr*
EPOCH = 36  # steps per epoch: 3,600 training examples in batches of 100
BATCH = 100
SELECT, SELECT_LOSS, REPORT = "final_val_accuracy", "final_val_loss", "final_test_accuracy"
DEAD = 0.98  # dead: final val loss >= DEAD x the label-frequency loss, and
DEAD_ACCURACY = 1.5  # final val accuracy <= DEAD_ACCURACY x the majority label's frequency


def make_tx(hp: dict, total_steps: int) -> optax.GradientTransformation:
  """SGD-momentum from ``hp["lr"]``, modified by method ``hp["method"]`` of :data:`METHODS`."""
  method, lr = hp["method"], hp["lr"]
  cosine = schedules.cosine_annealing(lr, total_steps)
  rate = lambda t: jnp.where(method == 1, cosine(t), lr)
  plateau_on, feedback_on = method == 2, method == 3
  return optax.chain(
    optimizers.sgd(rate, momentum=0.9),
    transforms.reduce_on_plateau(
      gamma=0.1, patience=5, accumulation_steps=EPOCH, min_scale=jnp.where(plateau_on, 0.0, 1.0)
    ),
    transforms.loss_feedback(
      increase=1.1,
      decrease=0.5,
      accumulation_steps=EPOCH,
      min_scale=jnp.where(feedback_on, 1e-3, 1.0),
      max_scale=jnp.where(feedback_on, 1e3, 1.0),
    ),
  )


def chance_loss(labels: np.ndarray) -> float:
  """The cross-entropy of predicting the labels' frequencies, ``-sum_c p_c log p_c`` (nats)."""
  p = np.bincount(np.asarray(labels).ravel()) / np.size(labels)
  return float(-np.sum(p[p > 0] * np.log(p[p > 0])))


def task_info(problem: tasks.Task) -> dict:
  """What the report needs of the task: the chance levels and the test-set size."""
  labels = np.asarray(problem.dataset.y_train).ravel()
  return {
    "chance_loss": chance_loss(labels),
    "chance_accuracy": float(np.bincount(labels).max() / labels.size),
    "test_examples": len(problem.dataset.y_test),
  }


def run(out: Path, *, task, decades, steps, seeds):
  lo, hi = decades
  rates = sweep.log_grid(10**lo, 10**hi, round((hi - lo) * PER_DECADE) + 1)
  problem = tasks.get(task)
  result = sweep.run(
    problem,
    lambda hp: make_tx(hp, steps),
    sweep.product(method=np.arange(len(METHODS)), lr=rates),
    steps=steps,
    batch_size=BATCH,
    key=jax.random.key(0),
    eval_every=steps // 28,
    seeds=seeds,
  )
  result.save(out / "methods")
  (out / "task.json").write_text(json.dumps(task_info(problem)) + "\n")


def _members(result, method: str) -> np.ndarray:
  """Members of ``method``, in increasing starting rate."""
  members = np.flatnonzero(result.grid["method"] == METHODS.index(method))
  return members[np.argsort(result.grid["lr"][members])]


def _best_index(result, metric: str = SELECT) -> int:
  """Grid position of the best fixed rate by ``metric`` (seed mean)."""
  mean = result.seed_mean(metric)[_members(result, "fixed")]
  return int(np.nanargmax(mean) if metric.endswith("accuracy") else np.nanargmin(mean))


def _starts(result) -> list[int]:
  """The shown starts (grid steps from lr*) that lie on the grid."""
  best, size = _best_index(result), len(_members(result, "fixed"))
  return [k for k in SHOWN if 0 <= best + k < size]


def _start_name(k: int) -> str:
  return f"x{10 ** (k / PER_DECADE):.3g}"


def failed(result, info: dict) -> np.ndarray:
  """``(seeds, members)``: diverged, or dead (val loss and accuracy at chance level)."""
  loss = result.metric(SELECT_LOSS, diverged_as_worst=False)
  accuracy = result.metric(SELECT, diverged_as_worst=False)
  dead = (loss >= DEAD * info["chance_loss"]) & (
    accuracy <= DEAD_ACCURACY * info["chance_accuracy"]
  )
  return result.history.diverged | ~np.isfinite(loss) | dead


def mean_se(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
  """Mean over seeds (axis 0) and its standard error (``ddof=1``; NaN for one seed)."""
  values = np.asarray(values, np.float64)
  n = values.shape[0]
  se = values.std(axis=0, ddof=1) / np.sqrt(n) if n > 1 else np.full(values.shape[1:], np.nan)
  return values.mean(axis=0), se


def _judge(result, info: dict) -> dict:
  accuracy = result.metric(REPORT)  # (seeds, members), diverged runs count as 0
  dead = failed(result, info)
  n = info["test_examples"]
  best = _best_index(result)
  fixed = _members(result, "fixed")
  best_lr = float(result.grid["lr"][fixed[best]])
  member = lambda method, k: _members(result, method)[best + k]
  at = lambda method, k: accuracy[:, member(method, k)]
  table = {}
  for method in METHODS:
    table[method] = {}
    for k in _starts(result):
      mean, se = mean_se(accuracy[:, member(method, k)])
      final_rate = result.history.learning_rate[:, member(method, k), -1]
      table[method][_start_name(k)] = {
        "test_accuracy": float(mean),
        "test_accuracy_se": float(se),
        "failed_runs": int(dead[:, member(method, k)].sum()),
        "final_rate_over_best_fixed": float(np.mean(final_rate) / best_lr),
        "final_rate_lowest_seed": float(np.min(final_rate)),
      }
  tests = {}
  for rule, starts in TESTS:
    for k in (k for k in starts if k in _starts(result)):
      gap = float(np.mean(at("fixed", 0) - at("fixed", k)))
      vs_fixed = paired_difference(at(rule, k), at("fixed", k), test_examples=n)
      tests[f"{rule} from {_start_name(k)}"] = {
        "rule": rule,
        "start": _start_name(k),
        "vs_fixed_same_start": vs_fixed,
        "vs_cosine_same_start": paired_difference(at(rule, k), at("cosine", k), test_examples=n),
        "vs_best_fixed": paired_difference(at(rule, k), at("fixed", 0), test_examples=n),
        "cosine_vs_fixed_same_start": paired_difference(
          at("cosine", k), at("fixed", k), test_examples=n
        ),
        "share_of_gap_recovered": vs_fixed["gap"] / gap if abs(gap) > 1e-9 else None,
        "cosine_share_of_gap_recovered": (
          float(np.mean(at("cosine", k) - at("fixed", k))) / gap if abs(gap) > 1e-9 else None
        ),
        "failed_runs": {m: int(dead[:, member(m, k)].sum()) for m in METHODS},
      }
  family = [(t, c) for t in tests for c in ("vs_fixed_same_start", "vs_cosine_same_start")]
  adjusted = analysis.holm([tests[t][c]["p"] for t, c in family]) if family else []
  for (t, c), p_holm in zip(family, adjusted, strict=True):
    entry = tests[t][c]
    entry["p_holm"] = float(p_holm)
    significant = np.isfinite(p_holm) and p_holm <= ALPHA
    entry["verdict"] = (
      ("supported" if entry["gap"] > 0 else "refuted") if significant else ("inconclusive")
    )
  by_loss = _best_index(result, SELECT_LOSS)
  return {
    "selected_by": SELECT,
    "reported": REPORT,
    "seeds": int(result.num_seeds),
    "test_examples": n,
    "chance_loss": info["chance_loss"],
    "chance_accuracy": info["chance_accuracy"],
    "dead_loss_over_chance": DEAD,
    "dead_accuracy_over_chance": DEAD_ACCURACY,
    "comparisons": len(family),
    "alpha": ALPHA,
    "best_fixed_lr": best_lr,
    "best_fixed_test_accuracy": float(np.mean(at("fixed", 0))),
    "best_fixed_test_accuracy_se": float(mean_se(at("fixed", 0))[1]),
    "best_fixed_on_grid_edge": best in (0, len(fixed) - 1),
    "best_fixed_lr_by_val_loss": float(result.grid["lr"][fixed[by_loss]]),
    "best_fixed_by_val_loss_test_accuracy": float(np.mean(accuracy[:, fixed[by_loss]])),
    "tests": tests,
    "gain_over_fixed_at_lr_star": {
      m: paired_difference(at(m, 0), at("fixed", 0), test_examples=n) for m in METHODS[1:]
    },
    "failed_runs_total": {m: int(dead[:, _members(result, m)].sum()) for m in METHODS},
    "runs_per_method": int(dead[:, fixed].size),
    "test_accuracy_by_start": table,
  }


def _color(method: str) -> str:
  return {"fixed": "0.4", "cosine": "C0", "plateau": "C3", "feedback": "C2"}[method]


def _accuracy_vs_start(result, judged, path):
  figure = Figure(figsize=(8, 4.5), layout="constrained")
  axes = figure.add_subplot()
  accuracy = result.metric(REPORT)
  best_lr = judged["best_fixed_lr"]
  for method in METHODS:
    members = _members(result, method)
    x = result.grid["lr"][members] / best_lr
    mean, se = mean_se(accuracy[:, members])
    axes.plot(x, mean, "o-", color=_color(method), label=method, markersize=3)
    axes.fill_between(x, mean - se, mean + se, color=_color(method), alpha=0.2)
  axes.axvline(1.0, color="black", linewidth=0.8, linestyle=":", label=f"lr* = {best_lr:.3g}")
  for i, k in enumerate((*TOO_SMALL, *TOO_LARGE)):
    m = 10 ** (k / PER_DECADE)
    span = dict(label="the tested bad starts") if i == 0 else {}
    axes.axvspan(m / 1.15, m * 1.15, color="0.88", zorder=0, **span)
  ticks = [10 ** (k / PER_DECADE) for k in SHOWN]
  axes.set(xscale="log", xlabel=f"starting rate / best fixed rate lr* ({best_lr:.3g})")
  axes.set_xticks(ticks, [f"{t:.3g}" for t in ticks])
  axes.minorticks_off()
  axes.set_ylabel(f"{REPORT} (mean ± SE over {result.num_seeds} seeds)")
  axes.set_title(f"{result.config['task']}, SGD momentum 0.9, {result.config['steps']} steps")
  axes.grid(alpha=0.3)
  axes.legend(fontsize="small")
  figure.savefig(path, dpi=120)


def _rates(result, judged, path):
  figure = Figure(figsize=(14, 4), layout="constrained")
  panels = figure.subplots(1, len(METHODS), sharey=True)
  best = _best_index(result)
  for axes, method in zip(panels, METHODS, strict=True):
    for j, k in enumerate(_starts(result)):
      member = _members(result, method)[best + k]
      axes.plot(
        result.history.learning_rate[0, member],
        color=f"C{j}",
        linewidth=1,
        label=f"start {_start_name(k)}",
      )
    axes.axhline(
      judged["best_fixed_lr"], color="black", linestyle="--", linewidth=1, label="best fixed lr*"
    )
    axes.set(yscale="log", xlabel="step", title=method)
  panels[0].set_ylabel("applied learning rate (seed 0)")
  panels[-1].legend(fontsize="small")
  figure.savefig(path, dpi=120)


def _curves(result, path):
  best = _best_index(result)
  starts = [k for k in (*TOO_SMALL, *TOO_LARGE) if k in _starts(result)]
  figure = Figure(figsize=(3.6 * max(len(starts), 1), 3.8), layout="constrained")
  panels = np.atleast_1d(figure.subplots(1, max(len(starts), 1), sharey=True))
  steps = result.history.step[0, 0]
  for axes, k in zip(panels, starts, strict=False):
    for method in METHODS:
      member = _members(result, method)[best + k]
      mean, se = mean_se(np.nan_to_num(result.history.test_accuracy[:, member]))
      axes.plot(steps, mean, color=_color(method), label=method)
      axes.fill_between(steps, mean - se, mean + se, color=_color(method), alpha=0.2)
    axes.set(xlabel="step", title=f"start {_start_name(k)} the best fixed rate")
  panels[0].set_ylabel(f"test accuracy (mean ± SE, {result.num_seeds} seeds)")
  panels[0].legend(fontsize="small")
  figure.savefig(path, dpi=120)


def _gaps(judged, path):
  """Each test's paired gaps against fixed and against cosine, ± 2 SE."""
  names = list(judged["tests"])
  figure = Figure(figsize=(max(6, 1.3 * len(names)), 4.2), layout="constrained")
  axes = figure.add_subplot()
  for j, (key, label, color) in enumerate(
    (
      ("vs_fixed_same_start", "rule - fixed (recovery)", "0.4"),
      ("vs_cosine_same_start", "rule - cosine (beyond decay)", "C0"),
    )
  ):
    gaps = [judged["tests"][t][key] for t in names]
    x = np.arange(len(names)) + (j - 0.5) * 0.3
    axes.errorbar(
      x,
      [g["gap"] for g in gaps],
      yerr=[2 * g["se"] for g in gaps],
      fmt="o",
      capsize=3,
      color=color,
      label=label,
    )
    for xi, g in zip(x, gaps, strict=True):
      if g["p_holm"] <= ALPHA:
        axes.annotate("*", (xi, g["gap"] + 2 * g["se"]), ha="center", fontsize=12)
  axes.axhline(0, color="black", linewidth=0.8, label="no difference")
  axes.set_xticks(np.arange(len(names)), [t.replace(" from ", "\nfrom ") for t in names])
  axes.set_ylabel("paired gap in test accuracy (± 2 SE)")
  axes.set_title(
    f"Gaps per test, paired over {judged['seeds']} seeds (*: Holm over "
    f"{judged['comparisons']} comparisons)"
  )
  axes.grid(alpha=0.3)
  axes.legend(fontsize="small")
  figure.savefig(path, dpi=120)


def report(out: Path):
  result = sweep.SweepResult.load(out / "methods")
  numbers = _judge(result, json.loads((out / "task.json").read_text()))
  figures = [
    out / "gaps.png",
    out / "accuracy_vs_start.png",
    out / "rate_trajectories.png",
    out / "curves.png",
  ]
  _gaps(numbers, figures[0])
  _accuracy_vs_start(result, numbers, figures[1])
  _rates(result, numbers, figures[2])
  _curves(result, figures[3])
  beyond: dict[str, dict[str, str]] = {}  # the claim: rule vs cosine from each bad start
  for test in numbers["tests"].values():
    beyond.setdefault(test["rule"], {})[test["start"]] = test["vs_cosine_same_start"]["verdict"]
  numbers["beyond_decay_verdicts"] = beyond
  rule = {r: set(v.values()) for r, v in beyond.items()}
  if all(len(v) == 1 for v in rule.values()) and len(set.union(*rule.values())) == 1:
    return numbers, next(iter(set.union(*rule.values()))), figures
  parts = []
  for r, starts in beyond.items():
    groups: dict[str, list[str]] = {}
    for start, v in starts.items():
      groups.setdefault(v, []).append(start)
    parts.append(f"{r} " + ", ".join(f"{v} from {' '.join(s)}" for v, s in groups.items()))
  return numbers, "depends on the rule and start (beyond the cosine): " + "; ".join(parts), figures


if __name__ == "__main__":
  sys.exit(common.main(sys.modules[__name__]))
