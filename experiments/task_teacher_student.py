"""Acceptance of the ``teacher-student`` task (issue 17): without noise the loss falls below 1e-3.

Adam with a cosine decay to 0 trains the default noiseless ``teacher-student``
task (a tanh student of two hidden layers of 128 units learning a random tanh
teacher of two layers of 32 units on 16 inputs; half squared error) at two
peak learning rates, on several seeds. The task's ``optimal_loss`` is 0, so
the training loss can fall without bound towards it. The claim holds when, at
the better rate (by the seed-mean final training loss), every seed's final
loss on the whole training set is below 1e-3 of its initial loss (at step 0,
the same seed). The validation loss is reported beside it: it is bounded by
the finite sample (16,384 training examples), not by the optimizer.

To measure the loss on the whole training set with the sweep's own
evaluations, the sweep runs on a copy of the task whose test split is the
training split: the histories' ``test_loss`` is the training loss.
"""

import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make `experiments` importable
  sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import jax
import numpy as np
from matplotlib.figure import Figure

from experiments import common
from experiments.task_modular_addition import train_as_test
from lrlab import optimizers, schedules, sweep, tasks

CLAIM = (
  "teacher-student without label noise reaches a loss below 1e-3 of its initial loss at its "
  "default budget (Adam, cosine decay)."
)
SIZES = {
  "tiny": dict(options=dict(num_train=256, student_width=16), steps=40, batch_size=32, seeds=2),
  "default": dict(options={}, steps=6000, batch_size=256, seeds=5),
  "full": dict(options={}, steps=20000, batch_size=256, seeds=16),
}
LEARNING_RATES = (5e-3, 1e-2)
RATIO = 1e-3
KEY = jax.random.key(0)


def run(out: Path, *, options, steps, batch_size, seeds) -> None:
  task = train_as_test(tasks.get("teacher-student", **options))
  result = sweep.run(
    task,
    lambda hp: optimizers.adam(schedules.cosine_annealing(hp["lr"], steps)),
    {"lr": np.array(LEARNING_RATES)},
    steps=steps,
    batch_size=batch_size,
    key=KEY,
    eval_every=steps // 20,
    seeds=seeds,
    progress=False,
    tx_config={"optimizer": "adam", "schedule": "cosine_annealing", "optimal_loss": 0.0},
  )
  result.save(out / "sweep")


def _se(values: np.ndarray) -> float:
  return float(np.std(values, ddof=1) / np.sqrt(len(values))) if len(values) > 1 else 0.0


def report(out: Path):
  result = sweep.SweepResult.load(out / "sweep")
  history = result.history
  numbers: dict = {"ratio_target": RATIO, "seeds": len(result.seeds)}
  for k, lr in enumerate(result.grid["lr"]):
    val = history.val_loss[:, k] / history.val_loss[:, k, :1]
    train = history.test_loss[:, k] / history.test_loss[:, k, :1]  # test split = train split
    numbers[f"lr_{lr:g}"] = {
      "initial_train_loss": history.test_loss[:, k, 0],
      "final_train_loss": history.test_loss[:, k, -1],
      "initial_val_loss": history.val_loss[:, k, 0],
      "final_val_loss": history.val_loss[:, k, -1],
      "final_val_ratio": val[:, -1],
      "final_val_ratio_mean": float(val[:, -1].mean()),
      "final_val_ratio_se": _se(val[:, -1]),
      "final_train_ratio": train[:, -1],
      "final_train_ratio_mean": float(train[:, -1].mean()),
      "final_train_ratio_se": _se(train[:, -1]),
      "diverged": int(history.diverged[:, k].sum()),
    }
  best = min(LEARNING_RATES, key=lambda lr: numbers[f"lr_{lr:g}"]["final_train_ratio_mean"])
  chosen = numbers[f"lr_{best:g}"]
  numbers["best_lr"] = best
  below = max(chosen["final_train_ratio"]) < RATIO
  verdict = "supported" if below and not chosen["diverged"] else "refuted"
  return numbers, verdict, [_figure(result, out / "loss_ratio.png")]


def _figure(result: sweep.SweepResult, path: Path) -> Path:
  """Training (solid) and validation (dotted) loss over their initial values, every seed."""
  figure = Figure(figsize=(7, 4.5), layout="constrained")
  axes = figure.add_subplot()
  steps = np.asarray(result.history.step)
  steps = steps.reshape(-1, steps.shape[-1])[0]
  for k, lr in enumerate(result.grid["lr"]):
    train = result.history.test_loss[:, k] / result.history.test_loss[:, k, :1]
    val = result.history.val_loss[:, k] / result.history.val_loss[:, k, :1]
    for s in range(len(result.seeds)):
      axes.plot(steps, train[s], color=f"C{k}", label=f"train, peak lr {lr:g}" if s == 0 else None)
      axes.plot(steps, val[s], ":", color=f"C{k}", label=f"val, peak lr {lr:g}" if s == 0 else None)
  axes.axhline(RATIO, color="gray", linewidth=0.8, label="1e-3 of the initial loss")
  axes.set(
    yscale="log",
    xlabel="step",
    ylabel="loss / initial loss",
    title=f"teacher-student (noiseless): Adam + cosine, {len(result.seeds)} seeds",
  )
  axes.grid(alpha=0.3)
  axes.legend(fontsize="small")
  figure.savefig(path, dpi=120)
  return path


if __name__ == "__main__":
  sys.exit(common.main(sys.modules[__name__]))
