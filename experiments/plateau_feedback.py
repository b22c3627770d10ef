"""Claim 9: loss-driven rules fix a badly chosen learning rate during training.

The essay: adaptive decay techniques "monitor the model's loss or accuracy
during training and increase or decrease the learning rate accordingly", which
"allows the model to quickly adapt".

Two such rules are tested, each from a deliberately bad starting rate.
``reduce_on_plateau`` (PyTorch's rule) can only lower the rate, so it is
started too high. ``loss_feedback`` (the bold driver) can also raise it, so
it is started too low. Both watch the training loss averaged over each epoch
(36 steps of 100 examples). The plateau rule cuts the rate by 10x after 5
epochs without improvement. The bold driver multiplies it by 1.1 after an
improving epoch and by 0.5 after a worse one.

The experiment is one sweep with SGD (momentum 0.9) on mnist1d-mlp. Four
methods each start from every rate ``lr0`` of a grid with four points per
decade: the fixed rate ``lr0``, cosine decay from ``lr0``, plateau reduction from
``lr0`` and loss feedback from ``lr0``. The method is a traced integer, and a
controller is switched off by clamping its scale to 1, so all members compile
once and share initial weights and batch order within a seed. The best fixed
rate ``lr*`` is chosen on validation accuracy. The starts ``m * lr*`` for ``m``
from 1/30 to 10 (in whole grid steps, ``10^(k/4)``) are then read off the grid.

The measures are the final test accuracy and the applied learning rate per step
(``History.learning_rate``). The claim holds if loss feedback beats the fixed
rate from the too-small starts (1/30 and 1/10), and plateau reduction beats it
from the too-large starts (3 and 10), each by more than twice the seed spread of
the paired difference.
"""

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
from lrlab import analysis, optimizers, schedules, sweep, transforms

CLAIM = (
  "Loss-driven rules that 'increase or decrease the learning rate accordingly' (plateau "
  "reduction, loss feedback) let training recover from a badly chosen starting rate."
)
SIZES = {
  "tiny": dict(task="mnist1d-logreg", decades=(-2.0, 0.5), steps=72, seeds=2),
  "default": dict(task="mnist1d-mlp", decades=(-3.0, 0.5), steps=2016, seeds=3),
  "full": dict(task="mnist1d-mlp", decades=(-4.0, 1.0), steps=6048, seeds=8),
}
METHODS = ("fixed", "cosine", "plateau", "feedback")
PER_DECADE = 4  # grid points per decade: a start m * lr* is k grid steps away, m = 10^(k/4)
TOO_SMALL, TOO_LARGE = (-6, -4), (2, 4)  # grid steps from lr*: x1/31.6, x1/10; x3.16, x10
SHOWN = (-6, -4, -2, 0, 2, 4)  # the starts reported, in grid steps from lr*
EPOCH = 36  # steps per epoch: 3,600 training examples in batches of 100
BATCH = 100
SELECT, REPORT = "final_val_accuracy", "final_test_accuracy"


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


def run(out: Path, *, task, decades, steps, seeds):
  lo, hi = decades
  rates = sweep.log_grid(10**lo, 10**hi, round((hi - lo) * PER_DECADE) + 1)
  result = sweep.run(
    task,
    lambda hp: make_tx(hp, steps),
    sweep.product(method=np.arange(len(METHODS)), lr=rates),
    steps=steps,
    batch_size=BATCH,
    key=jax.random.key(0),
    eval_every=steps // 28,
    seeds=seeds,
  )
  result.save(out / "methods")


def _members(result, method: str) -> np.ndarray:
  """Members of ``method``, in increasing starting rate."""
  members = np.flatnonzero(result.grid["method"] == METHODS.index(method))
  return members[np.argsort(result.grid["lr"][members])]


def _best_index(result) -> int:
  """Grid position of the best fixed rate (seed-mean validation accuracy)."""
  return int(np.nanargmax(result.seed_mean(SELECT)[_members(result, "fixed")]))


def _paired(a: np.ndarray, b: np.ndarray) -> dict:
  difference = a - b
  noise = float(np.std(difference, ddof=1)) if difference.size > 1 else float("nan")
  effect = float(np.mean(difference))
  return {"effect": effect, "seed_std": noise, "verdict": analysis.verdict(effect, noise)}


def _starts(result) -> list[int]:
  """The shown starts (grid steps from lr*) that lie on the grid."""
  best, size = _best_index(result), len(_members(result, "fixed"))
  return [k for k in SHOWN if 0 <= best + k < size]


def _judge(result) -> dict:
  accuracy = result.metric(REPORT)  # (seeds, members), diverged runs count as 0
  best = _best_index(result)
  best_lr = float(result.grid["lr"][_members(result, "fixed")[best]])
  at = lambda method, k: accuracy[:, _members(result, method)[best + k]]
  table = {}
  for method in METHODS:
    table[method] = {}
    for k in _starts(result):
      member = _members(result, method)[best + k]
      mean, low, high = analysis.seed_band(accuracy[:, member])
      final_rate = result.history.learning_rate[:, member, -1]
      table[method][f"x{10 ** (k / PER_DECADE):.3g}"] = {
        "test_accuracy": float(mean),
        "seed_min": float(low),
        "seed_max": float(high),
        "final_rate_over_best_fixed": float(np.mean(final_rate) / best_lr),
        "final_rate_lowest_seed": float(np.min(final_rate)),
      }
  tests = {}
  for method, starts in (("feedback", TOO_SMALL), ("plateau", TOO_LARGE)):
    for k in starts:
      if k not in _starts(result):
        continue
      start_fixed = at("fixed", k)
      gap = float(np.mean(at("fixed", 0) - start_fixed))
      comparison = _paired(at(method, k), start_fixed)
      comparison.update(
        vs_cosine_same_start=_paired(at(method, k), at("cosine", k)),
        vs_best_fixed=_paired(at(method, k), at("fixed", 0)),
        share_of_gap_recovered=comparison["effect"] / gap if abs(gap) > 1e-9 else None,
      )
      tests[f"{method} from x{10 ** (k / PER_DECADE):.3g}"] = comparison
  lowest = {m: _paired(at(m, 0), at("fixed", 0))["effect"] for m in METHODS[1:]}
  return {
    "best_fixed_lr": best_lr,
    "best_fixed_test_accuracy": float(np.mean(at("fixed", 0))),
    "best_fixed_on_grid_edge": best in (0, len(_members(result, "fixed")) - 1),
    "tests": tests,
    "gain_over_fixed_at_lr_star": lowest,
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
    mean, low, high = analysis.seed_band(accuracy[:, members])
    axes.plot(x, mean, "o-", color=_color(method), label=method, markersize=3)
    axes.fill_between(x, low, high, color=_color(method), alpha=0.15)
  axes.axvline(1.0, color="black", linewidth=0.8, linestyle=":")
  for k in (*TOO_SMALL, *TOO_LARGE):
    m = 10 ** (k / PER_DECADE)
    axes.axvspan(m / 1.15, m * 1.15, color="0.88", zorder=0)
  axes.set(xscale="log", xlabel=f"starting rate / best fixed rate ({best_lr:.3g})")
  axes.set_ylabel(f"{REPORT} (seed mean, min-max band)")
  axes.set_title(
    f"{result.config['task']}, SGD momentum 0.9, {result.config['steps']} steps "
    "(grey: the tested bad starts)"
  )
  axes.grid(alpha=0.3)
  axes.legend()
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
        label=f"start x{10 ** (k / PER_DECADE):.3g}",
      )
    axes.axhline(judged["best_fixed_lr"], color="black", linestyle="--", linewidth=1)
    axes.set(yscale="log", xlabel="step", title=method)
  panels[0].set_ylabel("applied learning rate (seed 0; dashed: best fixed)")
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
      mean, low, high = analysis.seed_band(result.history.test_accuracy[:, member])
      axes.plot(steps, mean, color=_color(method), label=method)
      axes.fill_between(steps, low, high, color=_color(method), alpha=0.15)
    axes.set(xlabel="step", title=f"start x{10 ** (k / PER_DECADE):.3g} the best fixed rate")
  panels[0].set_ylabel("test accuracy (seed mean, min-max)")
  panels[0].legend(fontsize="small")
  figure.savefig(path, dpi=120)


def report(out: Path):
  result = sweep.SweepResult.load(out / "methods")
  numbers = _judge(result)
  figures = [out / "accuracy_vs_start.png", out / "rate_trajectories.png", out / "curves.png"]
  _accuracy_vs_start(result, numbers, figures[0])
  _rates(result, numbers, figures[1])
  _curves(result, figures[2])
  by_rule = {}
  for name, test in numbers["tests"].items():
    by_rule.setdefault(name.split()[0], []).append(test["verdict"])
  rule = {r: v[0] if len(set(v)) == 1 else "mixed" for r, v in by_rule.items()}
  if len(set(rule.values())) == 1 and "mixed" not in rule.values():
    verdict = next(iter(rule.values()))
  else:
    verdict = "depends on the rule: " + ", ".join(
      f"{r} {'from too small' if r == 'feedback' else 'from too large'} {v}"
      for r, v in rule.items()
    )
  return numbers, verdict, figures


if __name__ == "__main__":
  sys.exit(common.main(sys.modules[__name__]))
