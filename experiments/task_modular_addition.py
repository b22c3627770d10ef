"""Acceptance of the ``modular-addition`` task (issue 17): it groks with weight decay, not without.

AdamW at a fixed learning rate trains the default ``modular-addition`` task
((a + b) mod 97, half of the pairs for training) with weight decay 1 and with
none, on the same seeds (initialisation and minibatch order shared per seed).
The claim holds when, at the default budget, every seed with weight decay
fits the training pairs exactly (train accuracy 1) and its validation
accuracy crosses 95%, while no seed without weight decay crosses. The step at
which validation accuracy first reaches 95% is the grokking time.

To measure training accuracy with the sweep's own evaluations, the sweep runs
on a copy of the task whose test split is the training split: the histories'
``test_*`` metrics are the training metrics on the whole training set.
"""

import dataclasses
import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make `experiments` importable
  sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import jax
import numpy as np
from matplotlib.figure import Figure

from experiments import common
from lrlab import optimizers, sweep, tasks

CLAIM = (
  "modular-addition groks at its default budget: with AdamW and weight decay it reaches 100% "
  "train and >= 95% val accuracy; without weight decay val accuracy does not cross 95%."
)
SIZES = {
  "tiny": dict(p=11, steps=40, batch_size=32, eval_every=10, seeds=2),
  "default": dict(p=97, steps=2000, batch_size=512, eval_every=50, seeds=5),
  "full": dict(p=97, steps=10000, batch_size=512, eval_every=50, seeds=16),
}
LEARNING_RATE = 3e-3
WEIGHT_DECAYS = (0.0, 1.0)
TARGET = 0.95
KEY = jax.random.key(0)


def train_as_test(task: tasks.Task) -> tasks.Task:
  """A copy of ``task`` whose test split is its training split (test metrics = train metrics)."""
  dataset = dataclasses.replace(
    task.dataset, x_test=task.dataset.x_train, y_test=task.dataset.y_train
  )
  return dataclasses.replace(task, dataset=dataset)


def run(out: Path, *, p, steps, batch_size, eval_every, seeds) -> None:
  task = train_as_test(tasks.get("modular-addition", p=p))
  result = sweep.run(
    task,
    lambda hp: optimizers.adamw(LEARNING_RATE, weight_decay=hp["weight_decay"]),
    {"weight_decay": np.array(WEIGHT_DECAYS)},
    steps=steps,
    batch_size=batch_size,
    key=KEY,
    eval_every=eval_every,
    seeds=seeds,
    progress=False,
    tx_config={"optimizer": "adamw", "learning_rate": LEARNING_RATE},
  )
  result.save(out / "sweep")


def _se(values: np.ndarray) -> float:
  """Standard error of the mean over seeds (ddof=1); 0 for one seed."""
  return float(np.std(values, ddof=1) / np.sqrt(len(values))) if len(values) > 1 else 0.0


def eval_steps(result: sweep.SweepResult) -> np.ndarray:
  """The ``(E,)`` evaluation steps of a sweep (its ``step`` field may be broadcast per run)."""
  steps = np.asarray(result.history.step)
  return steps.reshape(-1, steps.shape[-1])[0]


def crossing_steps(steps: np.ndarray, accuracy: np.ndarray, target: float) -> np.ndarray:
  """Per run, the first evaluation step with ``accuracy >= target`` (``inf`` if never)."""
  reached = accuracy >= target
  first = np.argmax(reached, axis=-1)
  return np.where(reached.any(axis=-1), steps[first], np.inf)


def report(out: Path):
  result = sweep.SweepResult.load(out / "sweep")
  history, steps = result.history, eval_steps(result)
  numbers = {"learning_rate": LEARNING_RATE, "target_val_accuracy": TARGET}
  for k, decay in enumerate(result.grid["weight_decay"]):
    val = history.val_accuracy[:, k]
    train = history.test_accuracy[:, k]  # the test split is the training split (see run)
    crossing = crossing_steps(steps, val, TARGET)
    crossed = np.isfinite(crossing)
    numbers[f"weight_decay_{decay:g}"] = {
      "final_train_accuracy": train[:, -1],
      "final_train_accuracy_mean": float(train[:, -1].mean()),
      "final_train_accuracy_se": _se(train[:, -1]),
      "final_val_accuracy": val[:, -1],
      "final_val_accuracy_mean": float(val[:, -1].mean()),
      "final_val_accuracy_se": _se(val[:, -1]),
      "max_val_accuracy": val.max(axis=-1),
      "crossing_step": [float(c) if np.isfinite(c) else None for c in crossing],
      "seeds_crossed": int(crossed.sum()),
      "crossing_step_mean": float(crossing[crossed].mean()) if crossed.any() else None,
      "crossing_step_se": _se(crossing[crossed]) if crossed.any() else None,
      "diverged": int(history.diverged[:, k].sum()),
    }
  with_decay = numbers[f"weight_decay_{max(WEIGHT_DECAYS):g}"]
  without = numbers[f"weight_decay_{min(WEIGHT_DECAYS):g}"]
  seeds = len(result.seeds)
  groks = (
    min(with_decay["final_train_accuracy"]) == 1.0
    and min(with_decay["final_val_accuracy"]) >= TARGET
  )
  numbers["steps"] = int(steps[-1])
  numbers["seeds"] = seeds
  verdict = "supported" if groks and without["seeds_crossed"] == 0 else "refuted"
  return numbers, verdict, [_figure(result, out / "grokking.png")]


def _figure(result: sweep.SweepResult, path: Path) -> Path:
  """Train and val accuracy against steps, every seed, with and without weight decay."""
  figure = Figure(figsize=(8, 4.5), layout="constrained")
  axes = figure.add_subplot()
  steps = eval_steps(result)
  for k, decay in enumerate(result.grid["weight_decay"]):
    for s in range(len(result.seeds)):
      first = s == 0
      val_label = f"val, weight decay {decay:g}" if first else None
      train_label = f"train, weight decay {decay:g}" if first else None
      axes.plot(steps, result.history.val_accuracy[s, k], color=f"C{k}", label=val_label)
      axes.plot(
        steps,
        result.history.test_accuracy[s, k],
        color=f"C{k}",
        linestyle=":",
        label=train_label,
      )
  axes.axhline(TARGET, color="gray", linewidth=0.8, label=f"target: val accuracy {TARGET:g}")
  axes.set(
    xlabel="step",
    ylabel="accuracy",
    title=f"modular-addition: AdamW lr {LEARNING_RATE:g}, {len(result.seeds)} seeds",
  )
  axes.grid(alpha=0.3)
  axes.legend(fontsize="small")
  figure.savefig(path, dpi=120)
  return path


if __name__ == "__main__":
  sys.exit(common.main(sys.modules[__name__]))
