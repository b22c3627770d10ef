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
fold alone); its noise is the standard deviation over seeds of that paired
difference. Supported when CV wins by more than twice the noise, refuted when
it loses by as much; inconclusive otherwise, in particular when every split
picks the rate that CV picks.
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
from lrlab import analysis, optimizers, sweep

CLAIM = "Grid search with k-fold cross-validation identifies the best learning rate."
SIZES = {
  "tiny": dict(task="mnist1d-mlp", lr_range=(1e-3, 1e-1), per_decade=1, folds=3, steps=30, seeds=2),
  "default": dict(
    task="mnist1d-mlp", lr_range=(1e-4, 1e-1), per_decade=4, folds=5, steps=1500, seeds=3
  ),
  "full": dict(
    task="mnist1d-mlp", lr_range=(1e-5, 1.0), per_decade=8, folds=10, steps=6000, seeds=8
  ),
}
METRIC = "final_val_accuracy"
TEST = "final_test_accuracy"


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


def report(out: Path):
  single = sweep.SweepResult.load(out / "single")
  kfold = sweep.SweepResult.load(out / "kfold")
  cv = kfold.cross_validated()
  lrs = single.grid["lr"]
  k = int(cv.config["cross_validated"])
  assert np.allclose(cv.grid["lr"], lrs), "the two sweeps must share their learning rates"
  step = float(np.log10(lrs[1] / lrs[0]))

  # Validation accuracy per (seed, lr, fold), and per fold the seed mean.
  val = kfold.metric(METRIC).reshape(kfold.num_seeds, len(lrs), k)
  per_fold = val.mean(axis=0)  # (lrs, folds)
  single_val = single.metric(METRIC)  # (seeds, lrs)
  test = single.metric(TEST)  # (seeds, lrs): models trained on the task's train split

  expected_test = test.mean(axis=0)  # the expected test accuracy of each rate

  def select(split_val: np.ndarray, fold_val: np.ndarray) -> tuple[list[int], int, float]:
    """Single-split choices (the task's split, then each fold alone), the CV choice, and the
    expected test accuracy of the CV choice minus the mean of the single-split choices'."""
    singles = [_argmax(split_val), *(_argmax(fold_val[:, f]) for f in range(k))]
    chosen = _argmax(fold_val.mean(axis=1))
    return singles, chosen, float(expected_test[chosen] - expected_test[singles].mean())

  # Seed-mean selection: each rate's curve averaged over the seeds first.
  singles, i_cv, gain = select(single_val.mean(axis=0), per_fold)
  i_single, i_folds = singles[0], singles[1:]
  assert i_cv == cv.best(METRIC, warn=False)["index"]
  # One-seed selection, as with one run per rate: per seed, its own choices.
  one_seed = [select(single_val[s], val[s]) for s in range(kfold.num_seeds)]
  gains = np.array([g for _, _, g in one_seed])
  effect = float(gains.mean())
  noise = float(np.std(gains, ddof=1)) if gains.size > 1 else 0.0
  verdict = analysis.verdict(effect, noise)

  fold_spread = per_fold.std(axis=1, ddof=1)  # fold-to-fold std of the estimate, per lr
  seed_spread = single_val.std(axis=0, ddof=1) if single.num_seeds > 1 else np.zeros(len(lrs))
  decades = lambda indices: float(np.log10(lrs[max(indices)] / lrs[min(indices)]))
  pooled = [i for singles_s, _, _ in one_seed for i in singles_s]
  numbers = {
    "task": single.config.get("task"),
    "optimizer": "adam",
    "folds": k,
    "grid_step_decades": step,
    "single_split": {
      "chosen_lr": float(lrs[i_single]),
      "val_accuracy": float(single_val[:, i_single].mean()),
      "val_accuracy_seed_std": float(seed_spread[i_single]),
      "test_accuracy": float(test[:, i_single].mean()),
      "test_accuracy_seed_std": float(test[:, i_single].std()),
    },
    "cross_validation": {
      "chosen_lr": float(lrs[i_cv]),
      "cv_accuracy": float(cv.seed_mean(METRIC)[i_cv]),
      "fold_std_of_estimate": float(fold_spread[i_cv]),
      "fold_range_of_estimate": [float(per_fold[i_cv].min()), float(per_fold[i_cv].max())],
      "std_error_of_cv_mean": float(fold_spread[i_cv] / np.sqrt(k)),
      "test_accuracy": float(test[:, i_cv].mean()),
      "test_accuracy_seed_std": float(test[:, i_cv].std()),
      "test_accuracy_fold_models": float(kfold.metric(TEST).reshape(val.shape)[:, i_cv].mean()),
    },
    "seed_mean_selection": {
      "per_fold_chosen_lr": [float(lrs[i]) for i in i_folds],
      "single_split_choices_spread_decades": decades(singles),
      "single_split_choices_differing_from_cv": int(sum(i != i_cv for i in singles)),
      "single_split_choices": len(singles),
      "test_gain_of_cv": gain,
    },
    "one_seed_selection": {
      "single_split_chosen_lr": [[float(lrs[i]) for i in c] for c, _, _ in one_seed],
      "cv_chosen_lr": [float(lrs[c]) for _, c, _ in one_seed],
      "single_split_choices_spread_decades": decades(pooled),
      "cv_choices_spread_decades": decades([c for _, c, _ in one_seed]),
      "single_split_choices_differing_from_cv": int(
        sum(i != c for singles_s, c, _ in one_seed for i in singles_s)
      ),
      "single_split_choices": len(pooled),
      "test_gain_of_cv_per_seed": gains.tolist(),
    },
    "mean_fold_std_of_estimate": float(np.mean(fold_spread)),
    "mean_seed_std_single_split": float(np.mean(seed_spread)),
    "test_gain_of_cv_over_single_splits": effect,
    "test_gain_noise": noise,
  }
  figures = [
    _estimate_figure(lrs, per_fold, cv, single_val, i_single, i_cv, i_folds, out / "estimates.png")
  ]
  rows = [
    ("CV (seed mean)", [i_cv], "*", "C0"),
    ("single split (seed mean)", [i_single], "s", "C1"),
    ("a fold alone (seed mean)", i_folds, "v", "0.4"),
    ("CV, one seed", [c for _, c, _ in one_seed], "*", "C9"),
    ("a single split, one seed", pooled, "v", "C3"),
  ]
  figures.append(_test_figure(lrs, test, rows, out / "test_of_choices.png"))
  return numbers, verdict, figures


def _estimate_figure(lrs, per_fold, cv, single_val, i_single, i_cv, i_folds, path: Path) -> Path:
  figure = Figure(figsize=(8, 4.5), layout="constrained")
  axes = figure.add_subplot()
  k = per_fold.shape[1]
  for f in range(k):
    label = "one fold held out (seed mean)" if f == 0 else None
    axes.plot(lrs, per_fold[:, f], "-", color="0.6", linewidth=0.8, label=label)
    axes.plot(lrs[i_folds[f]], per_fold[i_folds[f], f], "v", color="0.4")
  _, low, high = analysis.seed_band(per_fold, axis=1)
  axes.fill_between(lrs, low, high, color="C0", alpha=0.15, label="fold min to max")
  axes.plot(lrs, cv.seed_mean(METRIC), "o-", color="C0", label=f"{k}-fold CV estimate")
  s_mean, s_low, s_high = analysis.seed_band(single_val)
  axes.fill_between(lrs, s_low, s_high, color="C1", alpha=0.15, label="single split: seed band")
  axes.plot(lrs, s_mean, "s-", color="C1", label="single split (400 val examples)")
  axes.axvline(lrs[i_cv], color="C0", linestyle="--", label=f"CV choice {lrs[i_cv]:.3g}")
  axes.axvline(lrs[i_single], color="C1", linestyle=":", label=f"single choice {lrs[i_single]:.3g}")
  axes.set(
    xscale="log",
    xlabel="learning rate (Adam)",
    ylabel=METRIC,
    title=f"{cv.config.get('task')}: validation estimates, single split vs {k}-fold CV "
    "(triangles: each fold's choice)",
  )
  axes.title.set_fontsize("medium")
  axes.grid(alpha=0.3)
  axes.legend(fontsize="x-small")
  figure.savefig(path, dpi=120)
  return path


def _test_figure(lrs, test, rows, path: Path) -> Path:
  figure = Figure(figsize=(8, 4.5), layout="constrained")
  axes = figure.add_subplot()
  mean, low, high = analysis.seed_band(test)
  axes.fill_between(lrs, low, high, color="C2", alpha=0.15, label="seed min to max")
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
