"""Claim 12: full-batch gradient descent trains at the edge of stability (Cohen et al., 2021).

Cohen, Kaur, Li, Kolter and Talwalkar, "Gradient Descent on Neural Networks
Typically Occurs at the Edge of Stability", ICLR 2021
(https://arxiv.org/abs/2103.00065). Their claim has two parts. During
full-batch gradient descent at rate ``lr``, the sharpness (the top eigenvalue
of the training-loss Hessian) first rises: this is *progressive sharpening*.
It then stops at about ``2 / lr``, the largest curvature that gradient descent
on a quadratic tolerates, and hovers there while the loss keeps falling, though
not monotonically: this is the *edge of stability*.

The model is a tanh MLP (100-100) on a 720-example training subset of MNIST-1D
(``num_samples=1000``), trained by plain full-batch gradient descent. The loss is
the mean squared error against one-hot labels, the setting of most of Cohen et
al.'s figures. Cross-entropy is a ``full``-size option: its sharpness falls
again once the loss nears zero, a caveat the paper notes. Training runs in
segments (:class:`lrlab.train.Trainer`). After each segment the sharpness of
the full-batch training loss is measured at the current parameters by power
iteration on Hessian-vector products (:func:`lrlab.analysis.sharpness`). All
rates are vmapped in one program.

For each rate, the judgement compares the sharpness with ``2 / lr``:

- *reached*: the sharpness comes within 10% of ``2 / lr`` (the step is reported);
- *progressive sharpening*: the sharpness climbs there from below, rising steadily
  from its lowest value in the first quarter of training (Spearman correlation
  with the step > 0.5). A fresh network's sharpness first drops, and a rate
  whose ``2 / lr`` is below it catapults down first;
- *hovers*: after reaching it, the median of ``sharpness / (2 / lr)`` lies within
  20% of 1, by more than twice its spread across seeds.

Statistics (5 seeds at the default size): the hovering margin of a rate is
``0.2 - |m - 1|`` with ``m`` the seed mean of the per-seed medians of
``sharpness / (2 / lr)``; its standard error is the medians' (ddof=1) over
``sqrt(seeds)``. The margins of the rates that reach ``2 / lr`` are tested together,
Holm-adjusted (:func:`lrlab.analysis.holm`) at the 2-standard-error level
(:data:`lrlab.analysis.ALPHA`): a rate hovers when its margin is positive beyond
that, and refutes hovering when negative beyond it. A single seed never makes a
verdict. The dead-network guard: a run whose final full-batch training loss is
within 5% of the chance level (the squared error of predicting the label
frequencies, :func:`lrlab.analysis.chance_loss` summed over the 10 outputs) counts
as failed, like a diverged one, and never as reaching ``2 / lr``.

The claim is supported if every rate that reaches ``2 / lr`` hovers there and
at least one rate gets there by progressive sharpening.
"""

import json
import math
import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make `experiments` importable
  sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import jax
import jax.numpy as jnp
import numpy as np
from matplotlib.figure import Figure

from experiments import common
from lrlab import analysis, models, optimizers, tasks
from lrlab.train import Trainer

CLAIM = (
  "During full-batch gradient descent the sharpness rises (progressive sharpening) until it "
  "reaches about 2/lr and then hovers there (the edge of stability; Cohen et al., 2021)."
)
SIZES = {
  "tiny": dict(
    losses={"mse": (0.1, 0.2)}, num_samples=300, steps=40, every=10, seeds=2, iterations=8
  ),
  "default": dict(
    losses={"mse": (2 / 30, 2 / 20, 2 / 15, 2 / 10)},
    num_samples=1000,
    steps=3000,
    every=50,
    seeds=5,
    iterations=40,
  ),
  "full": dict(
    losses={
      "mse": (2 / 60, 2 / 40, 2 / 30, 2 / 20, 2 / 15, 2 / 10),
      "cross-entropy": (2 / 8, 2 / 6, 2 / 4, 2 / 3),
    },
    num_samples=5000,
    steps=20000,
    every=100,
    seeds=5,
    iterations=100,
  ),
}
REACHED, HOVER = 0.9, 0.2  # within 10% of 2/lr counts as reached; median within 20% hovers
CHANCE_RTOL = 0.05


def make_task(loss: str, num_samples: int) -> tasks.Task:
  """A tanh MLP on an MNIST-1D subset with squared error on one-hot labels (``"mse"``) or
  the registry's cross-entropy (``"cross-entropy"``)."""
  if loss == "cross-entropy":
    return tasks.get("mnist1d-mlp", num_samples=num_samples, activation="tanh")
  base = tasks.get("mnist1d-mlp", num_samples=num_samples)
  features = base.dataset.x_train.shape[1]
  model = models.functional(
    lambda rngs: models.MLP(features, (100, 100), 10, activation="tanh", rngs=rngs)
  )

  def squared_error(outputs, y):
    return 0.5 * jnp.sum((outputs - jax.nn.one_hot(y, 10)) ** 2, axis=-1)

  return tasks.from_model(model, base.dataset, loss=squared_error, name="mnist1d-mlp-tanh-mse")


def _train(task, rates, *, steps, every, seeds, iterations) -> dict:
  """Gradient descent at every (seed, rate), vmapped, measuring sharpness after each segment.

  Seed ``s`` uses the key ``fold_in(key(0), s)`` for its initialization and its power
  iterations; every program is compiled once for all seeds and rates.
  """
  trainer = Trainer(task, steps=steps, batch_size=None, eval_every=every, divergence_factor=100.0)
  data = task.split("train")
  num_rates = len(rates)
  seed_of = np.repeat(np.arange(seeds, dtype=np.int32), num_rates)  # members: seeds outer
  lrs = np.tile(rates, seeds)
  keys = jax.vmap(lambda s: jax.random.fold_in(jax.random.key(0), s))(seed_of)

  def measure(params, key, window):
    loss_fn = lambda p: task.eval_loss(p, {}, data)
    top = analysis.sharpness(
      loss_fn,
      params,
      key=jax.random.fold_in(key, window),
      num_iterations=iterations,
      tol=1e-3,
      has_aux=True,
    )
    return top, loss_fn(params)[0]

  init = jax.jit(jax.vmap(lambda lr, key: trainer.init(optimizers.sgd(lr), key)))
  segment = jax.jit(
    jax.vmap(
      lambda lr, key, state, window: trainer.segment(optimizers.sgd(lr), key, state, window, 1),
      in_axes=(0, 0, 0, None),
    )
  )
  # One member at a time (lax.map, a loop in one program): under vmap the power
  # iteration's stopping test would run every member to the slowest one's count.
  measure_all = jax.jit(
    lambda params, window: jax.lax.map(lambda pk: measure(*pk, window), (params, keys))
  )

  state, first = init(lrs, keys)
  records = [(first, *measure_all(state.params, np.int32(0)))]
  for window in range(steps // every):
    state, part = segment(lrs, keys, state, np.int32(window))
    last = jax.tree.map(lambda a: a[:, -1], part.evaluation)
    records.append((last, *measure_all(state.params, np.int32(window + 1))))
  evaluations, tops, losses = zip(*jax.device_get(records), strict=True)
  shape = lambda a: np.asarray(a).reshape(seeds, num_rates, *np.shape(a)[1:])
  stack = lambda values: shape(np.stack(values, axis=-1))  # (S, K, E)
  return {
    "sharpness": stack(tops),
    "train_loss": stack(losses),
    "val_accuracy": stack([e.val_accuracy for e in evaluations]),
    "diverged": shape(state.diverged),
    "diverged_step": shape(state.diverged_step),
  }


def run(out: Path, *, losses, num_samples, steps, every, seeds, iterations):
  for loss, rates in losses.items():
    task = make_task(loss, num_samples)
    rates = np.asarray(rates, np.float32)
    arrays = _train(task, rates, steps=steps, every=every, seeds=seeds, iterations=iterations)
    folder = out / loss
    folder.mkdir(parents=True, exist_ok=True)
    np.savez(folder / "runs.npz", lr=rates, step=np.arange(steps // every + 1) * every, **arrays)
    labels = np.asarray(task.dataset.y_train)
    if loss == "mse":  # squared error summed over the one-hot outputs, as chance_loss sums it
      chance = analysis.chance_loss(np.eye(10)[labels], None)
    else:
      chance = analysis.chance_loss(labels, 10)
    config = dict(
      loss=loss, task=task.name, num_train=task.num_train, steps=steps, every=every, chance=chance
    )
    (folder / "config.json").write_text(json.dumps(config, indent=2) + "\n")


def _judge_run(sharpness: np.ndarray, step: np.ndarray, limit: float, diverged: bool) -> dict:
  """One (rate, seed): does the sharpness climb to ``limit`` and stay there?

  The climb is measured from the lowest sharpness of the first quarter of
  training: the sharpness of a fresh network first drops, and a rate whose
  ``2 / lr`` lies below the initial sharpness catapults down before it rises.
  """
  ratio = sharpness / limit
  low = int(np.argmin(ratio[: max(len(ratio) // 4, 1)]))
  hit = low + np.flatnonzero(ratio[low:] >= REACHED)
  reached = bool(hit.size) and not diverged
  first = int(hit[0]) if hit.size else len(step) - 1
  climb = slice(low, first + 1)
  rising = analysis.spearman(step[climb], sharpness[climb]) if first - low >= 2 else float("nan")
  after = ratio[first:] if reached else np.array([np.nan])
  return {
    "initial_ratio": float(ratio[0]),
    "lowest_early_ratio": float(ratio[low]),
    "reached": reached,
    "reached_at_step": int(step[first]) if reached else None,
    "sharpening_spearman": rising,
    "progressive_sharpening": bool(ratio[low] < REACHED and rising > 0.5),
    "median_ratio_after": float(np.median(after)),
    "p90_ratio_after": float(np.percentile(after, 90)),
    "peak_ratio_from_low": float(np.nanmax(ratio[low:])),
    "diverged": diverged,
  }


def failed(runs: dict, chance: float) -> np.ndarray:
  """``(S, K)`` runs that diverged or died (final training loss within 5% of chance)."""
  final = runs["train_loss"][..., -1]
  return runs["diverged"].astype(bool) | ~(final < (1 - CHANCE_RTOL) * chance)


def _judge(runs: dict, chance: float) -> dict:
  numbers, bad = {}, failed(runs, chance)
  seeds = len(runs["sharpness"])
  for k, lr in enumerate(runs["lr"]):
    limit = 2.0 / float(lr)
    per_seed = [
      _judge_run(runs["sharpness"][s, k], runs["step"], limit, bool(bad[s, k]))
      for s in range(seeds)
    ]
    medians = np.array([r["median_ratio_after"] for r in per_seed])
    reached = all(r["reached"] for r in per_seed)
    margin = HOVER - abs(float(np.mean(medians)) - 1.0)
    se = float(np.std(medians, ddof=1) / np.sqrt(seeds)) if seeds > 1 else math.nan
    z = margin / se if reached and se > 0 else math.nan
    at = [r["reached_at_step"] for r in per_seed if r["reached"]]
    numbers[f"lr={lr:.4g} (2/lr={limit:.3g})"] = {
      "lr": float(lr),
      "two_over_lr": limit,
      "reached_in_every_seed": reached,
      "reached_at_step_mean": float(np.mean(at)) if reached else None,
      "reached_at_step_se": float(np.std(at, ddof=1) / np.sqrt(seeds)) if reached else None,
      "progressive_sharpening_in_every_seed": all(r["progressive_sharpening"] for r in per_seed),
      "mean_median_ratio_after": float(np.mean(medians)) if reached else None,
      "median_ratio_se": se if reached else None,
      "hover_margin": margin if reached else None,
      "hover_z": z,
      "hover_p": math.erfc(abs(z) / math.sqrt(2.0)) if math.isfinite(z) else math.nan,
      "failed_runs": int(bad[:, k].sum()),
      "final_train_loss": float(np.mean(runs["train_loss"][:, k, -1])),
      "final_val_accuracy": float(np.mean(runs["val_accuracy"][:, k, -1])),
      "seeds": per_seed,
    }
  rates = list(numbers.values())
  adjusted = analysis.holm([r["hover_p"] for r in rates])
  for r, p in zip(rates, adjusted, strict=True):
    r["hover_p_holm"] = float(p)
    if not r["reached_in_every_seed"]:
      r["hovers"] = "not reached"
    elif p < analysis.ALPHA:
      r["hovers"] = "supported" if r["hover_margin"] > 0 else "refuted"
    else:
      r["hovers"] = "inconclusive"
  return numbers


def _mean_se(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
  """Mean over the leading (seed) axis and its standard error (ddof=1; 0 for one seed)."""
  values = np.where(np.isfinite(values), values, np.nan)
  mean = values.mean(axis=0)
  if len(values) < 2:
    return mean, np.zeros_like(mean)
  return mean, values.std(axis=0, ddof=1) / np.sqrt(len(values))


def _figure(runs, config, numbers, path):
  """Sharpness and training loss against the step: seed mean ± SE, 2/lr lines labelled."""
  rates, step = runs["lr"], runs["step"]
  seeds = len(runs["sharpness"])
  figure = Figure(figsize=(12, 4.5), layout="constrained")
  sharp_axes, loss_axes = figure.subplots(1, 2)
  for k, lr in enumerate(rates):
    color = f"C{k}"
    for axes, name in ((sharp_axes, "sharpness"), (loss_axes, "train_loss")):
      mean, se = _mean_se(runs[name][:, k])
      axes.plot(step, mean, color=color, linewidth=1.2, label=f"lr={lr:.3g}")
      axes.fill_between(step, mean - se, mean + se, color=color, alpha=0.25)
    label = f"2/lr = {2 / lr:.3g}"
    sharp_axes.axhline(2 / lr, color=color, linestyle="--", linewidth=1, label=label)
  finite = np.where(np.isfinite(runs["sharpness"]), runs["sharpness"], 0.0)
  top = max(2 / float(min(rates)), float(np.max(finite)))
  sharp_axes.set(xlabel="step", ylabel="sharpness (top Hessian eigenvalue)", ylim=(0, 1.15 * top))
  sharp_axes.set_title(
    f"{config['task']} ({config['num_train']} examples), full-batch GD; "
    f"mean ± SE over {seeds} seeds",
    fontsize="medium",
  )
  sharp_axes.legend(fontsize="x-small", ncol=2)
  loss_axes.axhline(config["chance"], color="k", linestyle=":", label="chance level (dead network)")
  loss_axes.set(xlabel="step", ylabel="full-batch training loss", yscale="log")
  loss_axes.set_title("Training loss (falls, not monotonically, at the edge)", fontsize="medium")
  loss_axes.legend(fontsize="x-small")
  figure.savefig(path, dpi=120)


def report(out: Path):
  numbers, figures, outcomes, chances = {}, [], [], {}
  for folder in sorted(p for p in out.iterdir() if (p / "runs.npz").exists()):
    with np.load(folder / "runs.npz") as loaded:
      runs = dict(loaded)
    config = json.loads((folder / "config.json").read_text())
    numbers[folder.name] = _judge(runs, config["chance"])
    chances[folder.name] = config["chance"]
    figures.append(out / f"sharpness_{folder.name}.png")
    _figure(runs, config, numbers[folder.name], figures[-1])
    judged = numbers[folder.name].values()
    hovers = [j["hovers"] for j in judged if j["hovers"] != "not reached"]
    sharpened = any(j["progressive_sharpening_in_every_seed"] for j in judged)
    if hovers and all(h == "supported" for h in hovers) and sharpened:
      outcomes.append((folder.name, "supported"))
    elif len(runs["sharpness"]) < 2:  # a zero spread never makes a verdict
      outcomes.append((folder.name, "inconclusive"))
    elif any(h == "refuted" for h in hovers):
      outcomes.append((folder.name, "refuted"))
    else:
      outcomes.append((folder.name, "inconclusive"))
  tested = [r["hover_p"] for rates in numbers.values() for r in rates.values()]  # per loss
  numbers["comparisons"] = {
    "tests": int(np.sum(np.isfinite(tested))),
    "correction": "Holm, per loss",
    "level": analysis.ALPHA,
    "margin_se": 2,  # ALPHA is the two-sided level of 2 standard errors
  }
  numbers["chance_loss"] = chances
  found = {v for _, v in outcomes}
  if len(found) == 1:
    verdict = found.pop()
  else:
    verdict = "depends on the loss: " + ", ".join(f"{n} {v}" for n, v in outcomes)
  return numbers, verdict, figures


if __name__ == "__main__":
  sys.exit(common.main(sys.modules[__name__]))
