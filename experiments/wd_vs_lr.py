"""Weight decay against the learning rate: does the optimum lie along a constant lr x wd?

For a scale-invariant weight (one followed by a normalization), weight decay
sets the weight's norm and so its effective step: at the equilibrium between
the norm growth of the updates and the shrinking by decay, the angular step
is about ``sqrt(2 lr wd)`` for SGD with L2 (Van Laarhoven 2017; Zhang et al.
2019, "Three mechanisms of weight decay regularization") and for AdamW
(``p <- p - lr (u + wd p)`` with ``|u_i| ~ 1``; Loshchilov and Hutter 2019).
Only the product ``lr x wd`` then matters, so the best pairs lie on a line of
slope -1 in log-log coordinates.

The design: a 2-D product grid of learning rate and weight decay, both traced
sweep axes in one compiled program per (task, optimizer), for AdamW
(decoupled, :func:`lrlab.optimizers.adamw`, which decays by ``lr x wd`` per
step as PyTorch) and for SGD with momentum 0.9 and coupled L2
(:func:`lrlab.optimizers.sgd` with ``weight_decay``: ``add_l2`` before the
momentum, PyTorch's SGD). Every parameter is decayed (PyTorch's default).
Two tasks:

- ``modular-addition`` (grokking): the metric is the grokking time, the first
  evaluation step at which val accuracy reaches 95%, "never" within the
  budget. For the ridge a cell's score is the seed mean of the grokking time
  with "never" counted as one evaluation past the budget (censored); a weight
  decay where no seed groks at any rate has no ridge point.
- a ResNet with BatchNorm (its convolutions are scale-invariant): the final
  val accuracy picks the rate (the claim is about where training ends best);
  the ridge by final val loss is reported beside it, with the best cell's
  test accuracy (± SE over seeds and binomial error of the test set).

The ridge: for each weight decay the best learning rate of the seed-mean
score, refined by a parabola through the grid's best and its two neighbours
in log rate (as ``width_transfer``); a best on the grid's edge is dropped
from the fit (its optimum lies beyond the grid). Its slope is the
least-squares slope of log10(best lr) against log10(wd) over at least 3
ridge points; its standard error adds, by ``hypot``, a bootstrap over seeds
(the seeds resampled with replacement, the ridge and slope recomputed) and the
grid's rounding (:func:`experiments.common.grid_slope_se`: each ridge point off
by an error uniform over one lr step, SD ``step / sqrt(12)``, through the least
squares). A ridge point on a grid point in every draw (a flat or censored top,
a diverged neighbour) has a bootstrap SE of 0; the term is applied to every
ridge point, parabola-refined or not, which is conservative for the refined
ones (their error is under a step's rounding, but the bootstrap does not
measure it). The transposed
ridge (for each lr the best wd) is reported too; a constant product gives
slope -1 both ways. Four cases (2 tasks x 2 optimizers), each two-sided
normal test Holm-corrected over the four at the 2-SE level: a case is
"refuted" when its slope differs from -1, "supported" when it does not but
differs from 0 (the optimum moves with the decay) with a negative sign,
"inconclusive" otherwise.
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

from experiments import _wd_vs_lr_figures as figures
from experiments import common
from experiments.task_modular_addition import crossing_steps, eval_steps
from lrlab import analysis, optimizers, sweep
from lrlab import tasks as registry
from lrlab.analysis import ALPHA

CLAIM = (
  "The best (learning rate, weight decay) pairs lie along a constant lr x weight-decay product "
  "(slope -1 in log-log; Van Laarhoven 2017, Zhang et al. 2019), for AdamW and for SGD with L2, "
  "on modular-addition (grokking time) and on a ResNet (final val accuracy)."
)
MOMENTUM = 0.9
OPTIMIZERS = {
  "adamw": lambda hp: optimizers.adamw(hp["lr"], weight_decay=hp["weight_decay"]),
  "sgd": lambda hp: optimizers.sgd(hp["lr"], momentum=MOMENTUM, weight_decay=hp["weight_decay"]),
}
GROKKING = "modular-addition"
TARGET = 0.95  # grokking: val accuracy reaches 95%
BOOTSTRAP = 1000
MIN_POINTS = 3  # ridge points a slope needs
KEY = jax.random.key(0)


def _spec(options, steps, batch_size, eval_every, adamw=None, sgd=None):
  """A task's settings; ``adamw``/``sgd`` are ``((lr lo, hi), (wd lo, hi))`` as log10 exponents
  (an optimizer left ``None`` is not run on the task)."""
  grids = {name: g for name, g in (("adamw", adamw), ("sgd", sgd)) if g is not None}
  return dict(
    options=options, steps=steps, batch_size=batch_size, eval_every=eval_every, grids=grids
  )


SIZES = {
  "tiny": dict(
    tasks={  # two compiled programs (compilation is most of the time): each path once
      GROKKING: _spec(dict(p=7, width=8, hidden=(16,)), 30, 16, 10, adamw=((-2, -1), (-1, 0))),
      "digits-logreg": _spec({}, 10, 32, 5, sgd=((-2, -1), (-3, -2))),
    },
    points=3,
    seeds=2,
  ),
  "default": dict(  # quarter-decade grids around the region that groks in 1,500 steps (a pilot)
    tasks={
      GROKKING: _spec(
        dict(p=31, width=32, hidden=(64,)),
        1500,
        128,
        50,
        ((-1.75, -0.5), (-0.75, 0.5)),
        ((-0.75, 0.5), (-3.5, -2.25)),
      ),
      # Channels (8, 16) at batch 64 reach 0.9 val accuracy in 400 steps (a pilot; (4, 8) at
      # batch 32 stalled near 0.6), and the decays reach down to where they cost nothing.
      "mnist1d-resnet": _spec(
        dict(channels=(8, 16)), 400, 64, 50, ((-3, -0.5), (-4, 0)), ((-2.5, 0), (-5, -1.25))
      ),
    },
    points=6,
    seeds=5,
  ),
  "full": dict(
    tasks={
      GROKKING: _spec({}, 5000, 512, 50, ((-3, -0.5), (-1.5, 1)), ((-1.5, 1), (-4.5, -2))),
      "mnist1d-resnet": _spec({}, 3000, 100, 100, ((-4, -1), (-3, 0)), ((-3, 0), (-5, -2))),
    },
    points=11,
    seeds=8,
  ),
}


def grid_of(spec: dict, optimizer: str, points: int) -> dict[str, np.ndarray]:
  """The product grid of a (task, optimizer): ``points`` log-spaced rates x ``points`` decays."""
  (lr_lo, lr_hi), (wd_lo, wd_hi) = spec["grids"][optimizer]
  return sweep.product(
    lr=sweep.log_grid(10.0**lr_lo, 10.0**lr_hi, points),
    weight_decay=sweep.log_grid(10.0**wd_lo, 10.0**wd_hi, points),
  )


def run(out: Path, *, tasks: dict, points: int, seeds: int) -> None:
  num_test, seconds = {}, {}
  for name, spec in tasks.items():
    task = registry.get(name, **spec["options"])
    num_test[name] = len(task.dataset.y_test)
    for optimizer in spec["grids"]:
      make_tx, started = OPTIMIZERS[optimizer], time.perf_counter()
      result = sweep.run(
        task,
        make_tx,
        grid_of(spec, optimizer, points),
        steps=spec["steps"],
        batch_size=spec["batch_size"],
        key=KEY,
        eval_every=spec["eval_every"],
        seeds=seeds,
        progress=False,
        tx_config={"optimizer": optimizer, "momentum": MOMENTUM if optimizer == "sgd" else None},
      )
      # The rate is constant: keep one step of the per-step record (the files stay small).
      history = result.history._replace(learning_rate=result.history.learning_rate[..., :1])
      sweep.SweepResult(result.grid, result.seeds, history, result.config, result.metadata).save(
        out / f"{name}-{optimizer}"
      )
      seconds[f"{name}/{optimizer}"] = round(time.perf_counter() - started, 1)
  runs = [[name, optimizer] for name, spec in tasks.items() for optimizer in spec["grids"]]
  listing = {"runs": runs, "num_test": num_test, "seconds": seconds}
  (out / "tasks.json").write_text(json.dumps(listing) + "\n")


def cells(
  result: sweep.SweepResult, values: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
  """``(lrs, wds, values (..., n_wd, n_lr))`` of a product grid's per-member ``values (..., K)``."""
  lrs, wds = np.unique(result.grid["lr"]), np.unique(result.grid["weight_decay"])
  i = np.searchsorted(wds, result.grid["weight_decay"])
  j = np.searchsorted(lrs, result.grid["lr"])
  table = np.full((*values.shape[:-1], len(wds), len(lrs)), np.nan)
  table[..., i, j] = values
  return lrs, wds, table


def grokking_times(result: sweep.SweepResult) -> np.ndarray:
  """``(S, K)`` first evaluation step with val accuracy >= :data:`TARGET` (``inf``: never)."""
  return crossing_steps(eval_steps(result), result.history.val_accuracy, TARGET)


def ridge(log_x: np.ndarray, score: np.ndarray, *, larger_is_better: bool, valid=None):
  """Per row of ``score (rows, len(log_x))``, the refined log10 of the best ``x``.

  Returns ``(best, interior)``: ``best`` NaN where the row is not ``valid`` (or
  has no finite score); ``interior`` False where the grid's best is on its edge.
  """
  best = np.full(score.shape[0], np.nan)
  interior = np.zeros(score.shape[0], bool)
  for r, row in enumerate(score):
    if (valid is not None and not valid[r]) or not np.any(np.isfinite(row)):
      continue
    best[r] = analysis.refine_best(log_x, row, larger_is_better=larger_is_better)
    k = int(np.nanargmax(row if larger_is_better else -row))
    interior[r] = 0 < k < len(row) - 1
  return best, interior


def ridge_slope(log_y: np.ndarray, best: np.ndarray, interior: np.ndarray) -> float:
  """Least-squares slope of the interior ridge points ``best`` against ``log_y``; NaN if < 3."""
  use = interior & np.isfinite(best)
  if use.sum() < MIN_POINTS:
    return math.nan
  return float(np.polyfit(log_y[use], best[use], 1)[0])


def _score(result: sweep.SweepResult, metric: str) -> tuple[np.ndarray, bool, float]:
  """``(per-seed score (S, K), larger_is_better, censor)`` of a (task, metric)."""
  if metric == "grokking_time":
    budget = float(eval_steps(result)[-1])
    censor = budget + float(result.config["eval_every"])
    return np.minimum(grokking_times(result), censor), False, censor
  values = result.metric(metric)
  return values, metric.endswith("accuracy"), math.nan


def analyse(result: sweep.SweepResult, metric: str, draws: np.ndarray) -> dict:
  """The ridge both ways, its slopes and bootstrap SEs, and the best cell, for one metric."""
  per_seed, larger, censor = _score(result, metric)
  lrs, wds, table = cells(result, per_seed)  # (S, n_wd, n_lr)
  log_lr, log_wd = np.log10(lrs), np.log10(wds)

  def both_ways(sample: np.ndarray) -> tuple:
    mean = sample.mean(axis=0)
    valid = None if math.isnan(censor) else (mean < censor)
    by_wd = ridge(
      log_lr, mean, larger_is_better=larger, valid=None if valid is None else valid.any(1)
    )
    by_lr = ridge(
      log_wd, mean.T, larger_is_better=larger, valid=None if valid is None else valid.any(0)
    )
    return mean, by_wd, by_lr, ridge_slope(log_wd, *by_wd), ridge_slope(log_lr, *by_lr)

  mean, by_wd, by_lr, slope, slope_t = both_ways(table)
  boot = [both_ways(table[d]) for d in draws]
  slopes = np.array([b[3] for b in boot])
  slopes_t = np.array([b[4] for b in boot])
  ridges = np.array([b[1][0] for b in boot])
  # The grid's rounding of each ridge point the slope uses, in the fitted axis's steps.
  use, use_t = by_wd[1] & np.isfinite(by_wd[0]), by_lr[1] & np.isfinite(by_lr[0])
  grid_se = common.grid_slope_se(log_wd[use], float(np.diff(log_lr).mean()))
  grid_se_t = common.grid_slope_se(log_lr[use_t], float(np.diff(log_wd).mean()))
  flat = np.where(np.isfinite(mean), mean if larger else -mean, -np.inf)
  i, j = np.unravel_index(int(np.argmax(flat)), flat.shape)
  out = {
    "metric": metric,
    "seeds": int(table.shape[0]),
    "lr": lrs,
    "weight_decay": wds,
    "mean": mean,
    "se": _nanstd(np.where(np.isfinite(table), table, np.nan)) / np.sqrt(table.shape[0]),
    "ridge_lr": 10 ** by_wd[0],
    "ridge_lr_se_decades": _nanstd(ridges),
    "ridge_interior": by_wd[1],
    "slope": slope,
    "slope_se": math.hypot(_nanstd(slopes), grid_se),
    "slope_bootstrap_se": _nanstd(slopes),
    "slope_grid_se": grid_se,
    "slope_draws_defined": float(np.isfinite(slopes).mean()),
    "ridge_wd_by_lr": 10 ** by_lr[0],
    "ridge_wd_by_lr_interior": by_lr[1],
    "slope_wd_by_lr": slope_t,
    "slope_wd_by_lr_se": math.hypot(_nanstd(slopes_t), grid_se_t),
    "best": {
      "lr": lrs[j],
      "weight_decay": wds[i],
      "product": lrs[j] * wds[i],
      "mean": mean[i, j],
      "se": float(table[:, i, j].std(ddof=1) / np.sqrt(table.shape[0])),
      "on_lowest_decay": bool(i == 0),
      # Is the optimum interior beyond noise? The best cell against the lowest decay at its rate.
      "vs_lowest_decay": analysis.paired_difference(table[:, i, j], table[:, 0, j]) if i else None,
    },
  }
  if not math.isnan(censor):
    times = cells(result, grokking_times(result))[2]
    out["censored_at"] = censor
    out["seeds_grokked"] = np.isfinite(times).sum(axis=0)
  return out


def _nanstd(values: np.ndarray) -> np.ndarray | float:
  """Standard deviation over the leading axis (``ddof=1``) of the finite draws."""
  values = np.asarray(values, float)
  finite = np.isfinite(values)
  count = finite.sum(axis=0)
  mean = np.where(finite, values, 0).sum(axis=0) / np.maximum(count, 1)
  squares = np.where(finite, (values - mean) ** 2, 0).sum(axis=0)
  std = np.sqrt(squares / np.maximum(count - 1, 1))
  return (
    np.where(count > 1, std, np.nan) if np.ndim(std) else (float(std) if count > 1 else math.nan)
  )


def _p(z: float) -> float:
  """Two-sided normal p-value of ``z`` (NaN stays NaN)."""
  return math.erfc(abs(z) / math.sqrt(2.0)) if np.isfinite(z) else math.nan


def judge(slope: float, se: float, p_minus_one: float, p_zero: float) -> str:
  """``refuted`` if the slope differs from -1 (Holm ``p <= ALPHA``); ``supported`` if it does not
  but differs from 0 with a negative sign; ``inconclusive`` otherwise (or undefined)."""
  if not (np.isfinite(slope) and np.isfinite(se)):
    return "inconclusive"
  if p_minus_one <= ALPHA:
    return "refuted"
  return "supported" if p_zero <= ALPHA and slope < 0 else "inconclusive"


def primary_metric(name: str) -> str:
  return "grokking_time" if name == GROKKING else "final_val_accuracy"


def report(out: Path):
  saved = json.loads((out / "tasks.json").read_text())
  results = {(n, o): sweep.SweepResult.load(out / f"{n}-{o}") for n, o in saved["runs"]}
  names = list(dict.fromkeys(n for n, _ in saved["runs"]))
  seeds = next(iter(results.values())).num_seeds
  draws = np.random.default_rng(0).integers(0, seeds, size=(BOOTSTRAP, seeds))
  numbers: dict = {
    "seeds": seeds,
    "bootstrap": BOOTSTRAP,
    "target_val_accuracy": TARGET,
    "sgd_momentum": MOMENTUM,
    "alpha": ALPHA,
    "seconds": saved.get("seconds", {}),  # wall time per case, where the run recorded it
  }
  cases = []
  for (name, optimizer), result in results.items():
    entry = {"primary": analyse(result, primary_metric(name), draws)}
    if name != GROKKING:
      entry["by_loss"] = analyse(result, "final_val_loss", draws)
      entry["test"] = _test_at(result, entry["primary"]["best"], saved["num_test"][name])
    p = entry["primary"]
    p["z_vs_minus_one"] = (p["slope"] + 1) / p["slope_se"] if p["slope_se"] else math.nan
    p["z_vs_zero"] = p["slope"] / p["slope_se"] if p["slope_se"] else math.nan
    p["p_vs_minus_one"], p["p_vs_zero"] = _p(p["z_vs_minus_one"]), _p(p["z_vs_zero"])
    entry["steps"] = int(result.config.get("steps", 0))
    numbers[f"{name}/{optimizer}"] = entry
    cases.append(f"{name}/{optimizer}")
  numbers["comparisons"] = len(cases)
  holm_one = analysis.holm([numbers[c]["primary"]["p_vs_minus_one"] for c in cases])
  holm_zero = analysis.holm([numbers[c]["primary"]["p_vs_zero"] for c in cases])
  verdicts = {}
  for case, h1, h0 in zip(cases, holm_one, holm_zero, strict=True):
    p = numbers[case]["primary"]
    p["p_holm_vs_minus_one"], p["p_holm_vs_zero"] = float(h1), float(h0)
    verdicts[case] = numbers[case]["verdict"] = judge(p["slope"], p["slope_se"], h1, h0)
  paths = [
    figures.heatmaps(name, {o: numbers[f"{n}/{o}"] for n, o in results if n == name}, out)
    for name in names
  ]
  return numbers, overall(verdicts), paths


def _test_at(result: sweep.SweepResult, best: dict, n: int) -> dict:
  """Test accuracy and loss of the best cell: mean, SE over seeds, binomial SE of the test set."""
  k = int(
    np.flatnonzero(
      (result.grid["lr"] == best["lr"]) & (result.grid["weight_decay"] == best["weight_decay"])
    )[0]
  )
  accuracy = result.metric("final_test_accuracy")[:, k]
  loss = result.metric("final_test_loss")[:, k]
  mean = float(accuracy.mean())
  return {
    "accuracy": mean,
    "accuracy_se_seeds": float(accuracy.std(ddof=1) / np.sqrt(len(accuracy))),
    "accuracy_se_binomial": math.sqrt(mean * (1 - mean) / n) if n else math.nan,
    "loss": float(loss.mean()),
    "loss_se": float(loss.std(ddof=1) / np.sqrt(len(loss))),
  }


def overall(verdicts: dict[str, str]) -> str:
  """One verdict if every case agrees, else "depends on the case: ..." listing them."""
  kinds = set(verdicts.values())
  if len(kinds) == 1:
    return kinds.pop()
  parts = [
    f"{v} for {', '.join(c for c in verdicts if verdicts[c] == v)}"
    for v in analysis.VERDICTS
    if v in kinds
  ]
  return "depends on the optimizer and task: " + "; ".join(parts)


if __name__ == "__main__":
  sys.exit(common.main(sys.modules[__name__]))
