"""Acceptance of ``digits-resnet`` and ``mnist1d-resnet`` (issue 17): at least the CNNs' accuracy.

Each ResNet (BatchNorm, residual blocks, global average pooling) and the
existing CNN on the same data (``digits-cnn``, ``mnist1d-cnn``: plain
convolutions, no normalisation) train with the same budget: Adam at the same
learning rate, the same steps, batch size and seeds (a seed fixes the
minibatch order, shared by both models). The claim holds on a dataset when
the ResNet's seed-mean final test accuracy is at least the CNN's: the gap
ResNet - CNN, paired over seeds, with a standard error from the seeds (ddof 1)
and the test set's binomial error (:func:`lrlab.analysis.paired_difference`),
its p-value Holm-corrected over the datasets. "refuted" needs the ResNet behind
beyond 2 SE; "supported" needs it ahead beyond 2 SE or a resolved tie (``gap - 2 SE`` at
least ``-RESOLUTION``: the house rule, so a noisy gap of +0.001 +- 0.05 proves nothing);
anything else is "inconclusive". ``ahead`` records whether it is ahead beyond 2 SE.

The learning rate is one value, the CNN's best of {1e-3, 3e-3, 1e-2} on
MNIST-1D at 2,000 steps in a one-seed pilot, not tuned per model: the
comparison favours the CNN, if anything.
"""

import json
import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make `experiments` importable
  sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import jax
import numpy as np
from matplotlib.figure import Figure

from experiments import common
from lrlab import analysis, optimizers, sweep, tasks

CLAIM = (
  "The ResNets (digits-resnet, mnist1d-resnet) reach at least the accuracy of the existing CNNs "
  "(digits-cnn, mnist1d-cnn) on the same data at the same budget."
)
SIZES = {
  "tiny": dict(
    datasets={"mnist1d": dict(steps=10, num_samples=400)},  # the digits path: test_new_tasks
    batch_size=32,
    seeds=2,
  ),
  "default": dict(
    datasets={"digits": dict(steps=500), "mnist1d": dict(steps=1000)}, batch_size=100, seeds=5
  ),
  "full": dict(
    datasets={"digits": dict(steps=3000), "mnist1d": dict(steps=6000)}, batch_size=100, seeds=16
  ),
}
LEARNING_RATE = 1e-2
MODELS = ("cnn", "resnet")
KEY = jax.random.key(0)


def run(out: Path, *, datasets, batch_size, seeds) -> None:
  sizes = {}
  for dataset, options in datasets.items():
    options = dict(options)
    steps = options.pop("steps")
    for model in MODELS:
      task = tasks.get(f"{dataset}-{model}", **options)
      result = sweep.run(
        task,
        lambda hp: optimizers.adam(hp["lr"]),
        {"lr": np.array([LEARNING_RATE])},
        steps=steps,
        batch_size=batch_size,
        key=KEY,
        eval_every=steps // 10,
        seeds=seeds,
        progress=False,
        tx_config={"optimizer": "adam"},
      )
      result.save(out / f"{dataset}-{model}")
      sizes[dataset] = len(task.dataset.y_test)
  (out / "test_examples.json").write_text(json.dumps(sizes) + "\n")


def _test_examples(out: Path, dataset: str) -> int:
  """The test split's size (for its binomial error): recorded by ``run``, or, for results saved
  before it was, the default task's."""
  path = out / "test_examples.json"
  sizes = json.loads(path.read_text()) if path.exists() else {}
  return sizes.get(dataset) or len(tasks.get(f"{dataset}-cnn").dataset.y_test)


def _se(values: np.ndarray) -> float:
  return float(np.std(values, ddof=1) / np.sqrt(len(values))) if len(values) > 1 else 0.0


RESOLUTION = 0.03  # a tie counts as "at least the CNN's" only if gap - 2 SE >= -0.03


def judge(gap: float, se: float, p_holm: float) -> str:
  """One dataset's verdict from the ResNet - CNN gap, its SE and its Holm-adjusted p-value."""
  if not (np.isfinite(gap) and np.isfinite(se)):
    return "inconclusive"
  if p_holm <= analysis.ALPHA and gap != 0:
    return "supported" if gap > 0 else "refuted"
  return "supported" if gap - 2 * se >= -RESOLUTION else "inconclusive"


def report(out: Path):
  numbers: dict = {"learning_rate": LEARNING_RATE}
  verdicts = {}
  figure = Figure(figsize=(9, 4), layout="constrained")
  datasets = sorted(
    {p.name.rsplit("-", 1)[0] for p in out.iterdir() if (p / "sweep.json").exists()}
  )
  for axes, dataset in zip(
    figure.subplots(1, len(datasets), squeeze=False)[0], datasets, strict=True
  ):
    entry = {}
    for i, model in enumerate(MODELS):
      result = sweep.SweepResult.load(out / f"{dataset}-{model}")
      test = result.history.test_accuracy[:, 0, -1]
      val = result.history.val_accuracy[:, 0, -1]
      entry[model] = {
        "final_test_accuracy": test,
        "final_test_accuracy_mean": float(test.mean()),
        "final_test_accuracy_se": _se(test),
        "final_val_accuracy_mean": float(val.mean()),
        "final_val_accuracy_se": _se(val),
        "diverged": int(result.history.diverged.sum()),
        "steps": int(result.config.get("steps", 0)),
      }
      steps = np.asarray(result.history.step).reshape(-1, result.history.step.shape[-1])[0]
      for s in range(len(result.seeds)):
        label = f"{dataset}-{model}" if s == 0 else None
        axes.plot(steps, result.history.test_accuracy[s, 0], color=f"C{i}", label=label)
    ours, theirs = (np.float64(entry[m]["final_test_accuracy"]) for m in ("resnet", "cnn"))
    entry["test_examples"] = _test_examples(out, dataset)
    gap = analysis.paired_difference(ours, theirs, test_examples=entry["test_examples"])
    # Rounded to 1e-6, beyond float32's rounding of the accuracies: a tie is a tie.
    entry["resnet_minus_cnn"] = round(gap["gap"], 6) + 0.0  # no -0.0
    entry["resnet_minus_cnn_se_seeds"] = gap["se_seeds"]  # paired (shared minibatch order)
    entry["resnet_minus_cnn_se_test_set"] = gap["se_test_set"]
    entry["resnet_minus_cnn_se"], entry["p"] = gap["se"], gap["p"]
    numbers[dataset] = entry
    axes.set(xlabel="step", ylabel="test accuracy", title=f"{dataset}: Adam lr {LEARNING_RATE:g}")
    axes.set_ylim(0.5, 1.0)
    axes.grid(alpha=0.3)
    axes.legend(fontsize="small")
  numbers["comparisons"] = len(datasets)
  for dataset, p_holm in zip(
    datasets, analysis.holm([numbers[d]["p"] for d in datasets]), strict=True
  ):
    entry = numbers[dataset]
    entry["p_holm"] = float(p_holm)
    beyond = entry["p_holm"] <= analysis.ALPHA
    entry["ahead"] = bool(beyond and entry["resnet_minus_cnn"] > 0)
    verdicts[dataset] = judge(entry["resnet_minus_cnn"], entry["resnet_minus_cnn_se"], p_holm)
  path = out / "accuracy.png"
  figure.savefig(path, dpi=120)
  if len(set(verdicts.values())) == 1:
    verdict = next(iter(verdicts.values()))
  else:
    verdict = "depends on the dataset: " + "; ".join(f"{k} {v}" for k, v in verdicts.items())
  return numbers, verdict, [path]


if __name__ == "__main__":
  sys.exit(common.main(sys.modules[__name__]))
