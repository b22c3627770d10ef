"""Claim 11: grid search with k-fold cross-validation identifies the best learning rate.

The essay: "Cross-validation and monitoring the loss and accuracy during
training can help identify the best learning rate." Against what? The usual
alternative is one fixed validation split. This experiment asks whether k-fold
cross-validation (k = 5) chooses a different rate than a single split, how
much the estimate of a rate's accuracy varies from fold to fold, and whether
the cross-validated choice is better on the test set.

Two sweeps of Adam over the same log-spaced learning rates on the MNIST-1D MLP:

- single split: train on the task's 3,600 training examples, choose the rate
  with the best seed-mean final validation accuracy on its 400 validation
  examples;
- k-fold: ``sweep.run(..., folds=k)`` pools the 4,000 train and validation
  examples into k folds; each member trains on k - 1 of them and is validated
  on the held-out one. The cross-validated estimate of a rate is the mean over
  folds and seeds (:meth:`SweepResult.cross_validated`). Each fold taken alone
  is another single split (80/20), so the k per-fold choices show how a
  single-split choice varies with the split.

Every choice is scored the same way: the seed-mean final test accuracy (test
split untouched) of the single-split sweep's models at the chosen rate, i.e.
trained on the same 3,600 examples, so only the choice of rate differs.

Verdict: the effect is the test accuracy of the cross-validated choice minus
the mean test accuracy of the single-split choices (the task's split and each
fold alone), one choice per seed (each seed's own curves, as with one run per
rate), paired over the 5 seeds (:func:`lrlab.analysis.paired_difference`): its
standard error is the seeds' (ddof=1) plus the test set's binomial error. The
claim's metric is test accuracy, so the rates are chosen by validation accuracy;
the same comparison with the rates chosen by validation loss is the second test,
and the two are Holm-adjusted (:func:`lrlab.analysis.holm`) at the 2-standard-error
level (:data:`lrlab.analysis.ALPHA`). The verdict is the accuracy-selected
comparison's: supported when CV wins beyond it, refuted when it loses as much,
inconclusive otherwise, in particular when every split picks the rate that CV
picks. The rates that are best on the test set by accuracy and by loss are
reported. Dead networks (final train loss within 5% of chance above the best
rate, :func:`lrlab.analysis.fail_at_chance`) count as failed, so no split picks one.
"""

import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make `experiments` importable
  sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import jax
import numpy as np
from matplotlib import transforms
from matplotlib.figure import Figure

from experiments import common
from lrlab import analysis, optimizers, sweep, tasks

CLAIM = "Grid search with k-fold cross-validation identifies the best learning rate."
SIZES = {
  "tiny": dict(task="mnist1d-mlp", lr_range=(1e-3, 1e-1), per_decade=1, folds=3, steps=30, seeds=2),
  "default": dict(
    task="mnist1d-mlp", lr_range=(1e-4, 1e-1), per_decade=4, folds=5, steps=1500, seeds=5
  ),
  "full": dict(
    task="mnist1d-mlp", lr_range=(1e-5, 1.0), per_decade=8, folds=10, steps=6000, seeds=8
  ),
}
METRIC = "final_val_accuracy"
LOSS = "final_val_loss"
TEST = "final_test_accuracy"
TEST_LOSS = "final_test_loss"
CHANCE_RTOL = 0.05


def run(out: Path, *, task, lr_range, per_decade, folds, steps, seeds) -> None:
  lo, hi = lr_range
  lrs = sweep.log_grid(lo, hi, round(np.log10(hi / lo) * per_decade) + 1)
  common_args = dict(
    steps=steps, batch_size=100, key=jax.random.key(0), eval_every=steps // 10, seeds=seeds
  )
  make_tx = lambda hp: optimizers.adam(hp["lr"])
  sweep.run(task, make_tx, {"lr": lrs}, **common_args).save(out / "single")
  sweep.run(task, make_tx, {"lr": lrs}, folds=folds, **common_args).save(out / "kfold")


def _argmax(values: np.ndarray) -> int:
  return int(np.argmax(np.where(np.isfinite(values), values, -np.inf)))


def _guard(result: sweep.SweepResult, chance: float, metric: str) -> sweep.SweepResult:
  return analysis.fail_at_chance(result, chance, rtol=CHANCE_RTOL, select=metric)


def _choices(single, cv, k: int, metric: str, expected_test: np.ndarray) -> dict:
  """Rates chosen by ``metric`` (seed-mean curves, and each seed alone) and the test gains."""
  single, cv = (
    _guard(single, single.config["chance"], metric),
    _guard(cv, single.config["chance"], metric),
  )
  sign = 1.0 if "accuracy" in metric else -1.0  # argmax of sign * metric picks the best
  num_lrs = len(single.grid["lr"])
  val = sign * cv.metric(metric).reshape(single.num_seeds, k, num_lrs).transpose(0, 2, 1)
  single_val = sign * single.metric(metric)  # (seeds, lrs)

  def select(split_val: np.ndarray, fold_val: np.ndarray) -> tuple[list[int], int]:
    """Single-split choices (the task's split, then each fold alone) and the CV choice."""
    singles = [_argmax(split_val), *(_argmax(fold_val[:, f]) for f in range(k))]
    return singles, _argmax(fold_val.mean(axis=1))

  mean_singles, mean_cv = select(single_val.mean(axis=0), val.mean(axis=0))
  assert mean_cv == cv.best(metric, warn=False)["index"]
  per_seed = [select(single_val[s], val[s]) for s in range(single.num_seeds)]
  a = np.array([expected_test[c] for _, c in per_seed])
  b = np.array([expected_test[singles].mean() for singles, _ in per_seed])
  return {
    "val": sign * val,
    "single_val": sign * single_val,
    "mean_singles": mean_singles,
    "mean_cv": mean_cv,
    "per_seed": per_seed,
    "gain": analysis.paired_difference(a, b, test_examples=single.config["test_examples"]),
    "mean_gain": float(expected_test[mean_cv] - expected_test[mean_singles].mean()),
    "dead_runs": int(single.config["dead_guard"]["runs"] + cv.config["dead_guard"]["runs"]),
  }


def report(out: Path):
  single = sweep.SweepResult.load(out / "single")
  kfold = sweep.SweepResult.load(out / "kfold")
  task = tasks.get(single.config["task"])
  chance = analysis.chance_loss(task.dataset.y_train, task.num_classes)
  test_examples = len(task.split("test")[1])
  single.config.update(chance=chance, test_examples=test_examples)
  cv = kfold.cross_validated()
  lrs = single.grid["lr"]
  k = int(cv.config["cross_validated"])
  assert np.allclose(cv.grid["lr"], lrs), "the two sweeps must share their learning rates"
  step = float(np.log10(lrs[1] / lrs[0]))

  test = single.metric(TEST)  # (seeds, lrs): models trained on the task's train split
  expected_test = test.mean(axis=0)  # the expected test accuracy of each rate
  test_loss = single.seed_mean(TEST_LOSS)
  by = {m: _choices(single, cv, k, m, expected_test) for m in (METRIC, LOSS)}
  adjusted = analysis.holm([by[m]["gain"]["p"] for m in (METRIC, LOSS)])
  for m, p in zip((METRIC, LOSS), adjusted, strict=True):
    by[m]["gain"]["p_holm"] = float(p)
  chosen = by[METRIC]
  val, single_val = chosen["val"], chosen["single_val"]
  per_fold = val.mean(axis=0)  # (lrs, folds): seed mean per fold
  i_single, i_folds, i_cv = chosen["mean_singles"][0], chosen["mean_singles"][1:], chosen["mean_cv"]
  one_seed = chosen["per_seed"]
  gain = chosen["gain"]
  significant = single.num_seeds > 1 and gain["p_holm"] < analysis.ALPHA
  verdict = ("supported" if gain["gap"] > 0 else "refuted") if significant else "inconclusive"

  fold_spread = per_fold.std(axis=1, ddof=1)  # fold-to-fold std of the estimate, per lr
  seed_spread = single_val.std(axis=0, ddof=1) if single.num_seeds > 1 else np.zeros(len(lrs))
  se = lambda v: float(np.std(v, ddof=1) / np.sqrt(len(v))) if len(v) > 1 else float("nan")
  decades = lambda indices: float(np.log10(lrs[max(indices)] / lrs[min(indices)]))
  pooled = [i for singles_s, _ in one_seed for i in singles_s]
  test_best = {"by_accuracy": _argmax(expected_test), "by_loss": _argmax(-test_loss)}
  numbers = {
    "task": single.config.get("task"),
    "optimizer": "adam",
    "folds": k,
    "seeds": single.num_seeds,
    "test_examples": test_examples,
    "grid_step_decades": step,
    "test_best_lr_by_accuracy": float(lrs[test_best["by_accuracy"]]),
    "test_best_lr_by_loss": float(lrs[test_best["by_loss"]]),
    "test_best_accuracy": float(expected_test[test_best["by_accuracy"]]),
    "test_accuracy_at_test_loss_best": float(expected_test[test_best["by_loss"]]),
    "accuracy_best_over_loss_best_lr": float(
      lrs[by[METRIC]["mean_cv"]] / lrs[by[LOSS]["mean_cv"]]
    ),  # the CV choices by val accuracy and by val loss
    "single_split": {
      "chosen_lr": float(lrs[i_single]),
      "val_accuracy": float(single_val[:, i_single].mean()),
      "val_accuracy_seed_std": float(seed_spread[i_single]),
      "test_accuracy": float(test[:, i_single].mean()),
      "test_accuracy_seed_std": float(test[:, i_single].std(ddof=1)),
      "test_accuracy_se": se(test[:, i_single]),
    },
    "cross_validation": {
      "chosen_lr": float(lrs[i_cv]),
      "cv_accuracy": float(per_fold[i_cv].mean()),
      "fold_std_of_estimate": float(fold_spread[i_cv]),
      "fold_range_of_estimate": [float(per_fold[i_cv].min()), float(per_fold[i_cv].max())],
      "std_error_of_cv_mean": float(fold_spread[i_cv] / np.sqrt(k)),
      "test_accuracy": float(test[:, i_cv].mean()),
      "test_accuracy_seed_std": float(test[:, i_cv].std(ddof=1)),
      "test_accuracy_se": se(test[:, i_cv]),
      "test_accuracy_fold_models": float(kfold.metric(TEST).reshape(val.shape)[:, i_cv].mean()),
    },
    "seed_mean_selection": {
      "per_fold_chosen_lr": [float(lrs[i]) for i in i_folds],
      "single_split_choices_spread_decades": decades(chosen["mean_singles"]),
      "single_split_choices_differing_from_cv": int(sum(i != i_cv for i in chosen["mean_singles"])),
      "single_split_choices": len(chosen["mean_singles"]),
      "test_gain_of_cv": chosen["mean_gain"],
    },
    "one_seed_selection": {
      "single_split_chosen_lr": [[float(lrs[i]) for i in c] for c, _ in one_seed],
      "cv_chosen_lr": [float(lrs[c]) for _, c in one_seed],
      "single_split_choices_spread_decades": decades(pooled),
      "cv_choices_spread_decades": decades([c for _, c in one_seed]),
      "single_split_choices_differing_from_cv": int(
        sum(i != c for singles_s, c in one_seed for i in singles_s)
      ),
      "single_split_choices": len(pooled),
    },
    "selected_by_val_loss": {
      "single_split_chosen_lr": float(lrs[by[LOSS]["mean_singles"][0]]),
      "cv_chosen_lr": float(lrs[by[LOSS]["mean_cv"]]),
      "cv_chosen_lr_per_seed": [float(lrs[c]) for _, c in by[LOSS]["per_seed"]],
      "cv_choice_test_accuracy": float(expected_test[by[LOSS]["mean_cv"]]),
      "test_gain_of_cv": by[LOSS]["gain"],
    },
    "mean_fold_std_of_estimate": float(np.mean(fold_spread)),
    "mean_seed_std_single_split": float(np.mean(seed_spread)),
    "test_gain_of_cv_over_single_splits": gain,
    "dead_runs": chosen["dead_runs"],
    "comparisons": {
      "tests": int(np.sum(np.isfinite(adjusted))),
      "correction": "Holm",
      "level": analysis.ALPHA,
      "margin_se": 2,
    },
  }
  figures = [
    _estimate_figure(lrs, per_fold, single_val, i_single, i_cv, i_folds, out / "estimates.png")
  ]
  rows = [
    ("CV (seed mean)", [i_cv], "*", "C0"),
    ("single split (seed mean)", [i_single], "s", "C1"),
    ("a fold alone (seed mean)", i_folds, "v", "0.4"),
    ("CV, one seed", [c for _, c in one_seed], "*", "C9"),
    ("a single split, one seed", pooled, "v", "C3"),
    ("CV by val loss (seed mean)", [by[LOSS]["mean_cv"]], "P", "C4"),
  ]
  figures.append(_test_figure(lrs, test, test_examples, rows, out / "test_of_choices.png"))
  return numbers, verdict, figures


def _se_band(values: np.ndarray, axis: int) -> tuple[np.ndarray, np.ndarray]:
  """Mean and standard error (ddof=1) along ``axis``."""
  n = values.shape[axis]
  mean = values.mean(axis=axis)
  se = values.std(axis=axis, ddof=1) / np.sqrt(n) if n > 1 else np.zeros_like(mean)
  return mean, se


def _estimate_figure(lrs, per_fold, single_val, i_single, i_cv, i_folds, path: Path) -> Path:
  """The validation estimates: each fold, the CV mean ± SE over folds, the single split ± SE."""
  figure = Figure(figsize=(8, 4.5), layout="constrained")
  axes = figure.add_subplot()
  k = per_fold.shape[1]
  for f in range(k):
    label = "one fold held out (seed mean)" if f == 0 else None
    axes.plot(lrs, per_fold[:, f], "-", color="0.6", linewidth=0.8, label=label)
    axes.plot(lrs[i_folds[f]], per_fold[i_folds[f], f], "v", color="0.4")
  mean, se = _se_band(per_fold, axis=1)
  axes.fill_between(
    lrs, mean - se, mean + se, color="C0", alpha=0.25, label="CV: ± 1 SE over folds"
  )
  axes.plot(lrs, mean, "o-", color="C0", label=f"{k}-fold CV estimate")
  s_mean, s_se = _se_band(single_val, axis=0)
  axes.fill_between(
    lrs,
    s_mean - s_se,
    s_mean + s_se,
    color="C1",
    alpha=0.25,
    label="single split: ± 1 SE over seeds",
  )
  axes.plot(lrs, s_mean, "s-", color="C1", label="single split (400 val examples)")
  axes.axvline(lrs[i_cv], color="C0", linestyle="--", label=f"CV choice {lrs[i_cv]:.3g}")
  axes.axvline(lrs[i_single], color="C1", linestyle=":", label=f"single choice {lrs[i_single]:.3g}")
  axes.set(
    xscale="log",
    xlabel="learning rate (Adam)",
    ylabel=METRIC,
    title=f"validation estimates, single split vs {k}-fold CV (triangles: each fold's choice)",
  )
  axes.title.set_fontsize("medium")
  axes.grid(alpha=0.3)
  axes.legend(fontsize="x-small")
  figure.savefig(path, dpi=120)
  return path


def _test_figure(lrs, test, test_examples, rows, path: Path) -> Path:
  """Test accuracy against the rate (± SE: seeds and the test set's binomial error), the choices."""
  figure = Figure(figsize=(8, 4.5), layout="constrained")
  axes = figure.add_subplot()
  mean, se = _se_band(test, axis=0)
  se = np.hypot(se, np.sqrt(mean * (1 - mean) / test_examples))
  label = f"± 1 SE (seeds, and binomial over {test_examples} test examples)"
  axes.fill_between(lrs, mean - se, mean + se, color="C2", alpha=0.25, label=label)
  axes.plot(lrs, mean, ".-", color="C2", label="test accuracy (trained on the task's train split)")
  # The choices as rows of markers along the bottom (x: the chosen rate; "xN": N choices).
  bottom = transforms.blended_transform_factory(axes.transData, axes.transAxes)
  for row, (label, picks, marker, color) in enumerate(rows):
    y = 0.05 + 0.06 * row
    values, counts = np.unique(np.asarray(picks), return_counts=True)
    axes.plot(lrs[values], np.full(len(values), y), marker, color=color, markersize=9,
              transform=bottom, label=label)  # fmt: skip
    for i, n in zip(values, counts, strict=True):
      if n > 1:
        axes.annotate(f"x{n}", (lrs[i], y), xycoords=bottom, xytext=(6, -3),
                      textcoords="offset points", fontsize="x-small")  # fmt: skip
  axes.set(
    xscale="log",
    xlabel="learning rate (Adam)",
    ylabel=TEST,
    title="Test accuracy at the rate each method chooses (markers at the bottom)",
  )
  axes.title.set_fontsize("medium")
  axes.grid(alpha=0.3)
  axes.legend(fontsize="x-small", loc="upper left")
  figure.savefig(path, dpi=120)
  return path


if __name__ == "__main__":
  sys.exit(common.main(sys.modules[__name__]))
