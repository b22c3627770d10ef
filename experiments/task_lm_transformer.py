"""Issue 17: lm-transformer, at its default budget, gets within 0.1 nats/token of the Bayes loss.

The task's language (a hidden Markov model with in-context recall,
:mod:`lrlab.data.language`) knows the exact conditional probability of every
val token, so ``task.optimal_loss`` is the lowest loss any model can reach on
the val split. AdamW with a linear warmup and a cosine decay trains the
default transformer for the default budget (``lrlab.tasks.language.DEFAULT_BUDGET``)
from several seeds at once (one sweep, the seeds in parallel); the gap
``val_loss - optimal_loss`` is measured on the same val tokens, so it is paired
and its seed-to-seed spread is the error bar. For scale, the unigram and bigram
losses of the val split are the best any unigram or bigram model can do on
those very tokens (in-sample conditional entropies, :func:`ngram_loss`), so
they are lower bounds of what such models reach. A single run at the default
budget is timed apart, for the task's "3 minutes on 2 CPU cores".
"""

import json
import resource
import sys
import time
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make `experiments` importable
  sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import jax
import numpy as np
from matplotlib.figure import Figure

from experiments import common
from lrlab import optimizers, schedules, sweep, tasks, train
from lrlab.data.language import ngram_loss
from lrlab.tasks.language import DEFAULT_BUDGET

CLAIM = (
  "At its default budget, lm-transformer trained with AdamW and warmup-cosine gets within "
  "0.1 nats/token of the exact Bayes-optimal val loss, while unigram and bigram models stay "
  "far above it."
)
TOLERANCE = 0.1  # nats per token, the acceptance
_TINY_TASK = dict(width=16, depth=1, heads=2, context=16, vocab=8, hidden=4, triggers=1)
SIZES = {
  "tiny": dict(
    task=dict(_TINY_TASK, num_tokens=16 * 16 * 40, num_eval=32),
    steps=40,
    batch_size=16,
    lr=1e-2,
    warmup_steps=4,
    seeds=2,
    evaluations=2,
    time_one_run=False,
  ),
  "default": dict(task={}, **DEFAULT_BUDGET, seeds=5, evaluations=20, time_one_run=True),
  "full": dict(task={}, **DEFAULT_BUDGET, seeds=16, evaluations=20, time_one_run=True),
}


def make_tx(hp, *, steps: int, warmup_steps: int):
  """AdamW (weight decay 1e-2) at a linear warmup to ``hp['lr']`` and a cosine decay to 0."""
  decay = schedules.cosine_annealing(hp["lr"], steps - warmup_steps)
  return optimizers.adamw(schedules.warmup(decay, warmup_steps))


def _cpu_seconds() -> float:
  """CPU time this process has used, all threads (a busy machine's wall clock overstates a run)."""
  usage = resource.getrusage(resource.RUSAGE_SELF)
  return usage.ru_utime + usage.ru_stime


def run(
  out: Path, *, task, steps, batch_size, lr, warmup_steps, seeds, evaluations, time_one_run
) -> None:
  lm = tasks.get("lm-transformer", **task)
  language = lm.dataset.val.language
  val = language.tokens("val", np.arange(lm.dataset.sizes["val"]))
  optimal = -language.log_probs(val).mean(axis=1)
  settings = dict(steps=steps, batch_size=batch_size, eval_every=steps // evaluations)
  tx = lambda hp: make_tx(hp, steps=steps, warmup_steps=warmup_steps)
  timing = {}
  if time_one_run:
    started, cpu = time.perf_counter(), _cpu_seconds()
    history = train.train(lm, tx({"lr": lr}), key=jax.random.key(0), **settings)
    timing["one_run_seconds"] = time.perf_counter() - started
    timing["one_run_cpu_seconds"] = _cpu_seconds() - cpu
    timing["one_run_final_val_loss"] = float(history.val_loss[-1])
  started = time.perf_counter()
  result = sweep.run(
    lm, tx, {"lr": np.array([lr])}, key=jax.random.key(0), seeds=seeds, progress=False, **settings
  )
  timing["sweep_seconds"] = time.perf_counter() - started
  result.save(out / "adamw")
  baselines = {
    "optimal_loss": lm.optimal_loss,
    "optimal_loss_sequence_std": float(optimal.std(ddof=1)),
    "val_tokens": int(val[:, 1:].size),
    "unigram_loss": ngram_loss(val, 0),
    "bigram_loss": ngram_loss(val, 1),
    "recalled_fraction": float(np.mean(language.log_probs(val) == 0.0)),
    **timing,
  }
  (out / "baselines.json").write_text(json.dumps(baselines, indent=2) + "\n")


def report(out: Path):
  result = sweep.SweepResult.load(out / "adamw")
  baselines = json.loads((out / "baselines.json").read_text())
  optimal = baselines["optimal_loss"]
  curves = np.asarray(result.history.val_loss)[:, 0, :]  # (seeds, evaluations)
  steps = np.asarray(result.history.step).reshape(-1, curves.shape[-1])[0]
  gaps = curves[:, -1] - optimal
  seeds = len(gaps)
  error = float(gaps.std(ddof=1) / np.sqrt(seeds)) if seeds > 1 else float("nan")
  numbers = {
    "optimal_loss": optimal,
    "unigram_loss": baselines["unigram_loss"],
    "bigram_loss": baselines["bigram_loss"],
    "trained_val_loss_mean": float(curves[:, -1].mean()),
    "gap_mean": float(gaps.mean()),
    "gap_standard_error": error,
    "gap_max": float(gaps.max()),
    "gaps": gaps.tolist(),
    "seeds": seeds,
    "unigram_gap": baselines["unigram_loss"] - optimal,
    "bigram_gap": baselines["bigram_loss"] - optimal,
    "recalled_fraction": baselines["recalled_fraction"],
    "val_tokens": baselines["val_tokens"],
    "diverged": int(np.asarray(result.history.diverged).sum()),
    "one_run_seconds": baselines.get("one_run_seconds"),
    "one_run_cpu_seconds": baselines.get("one_run_cpu_seconds"),
    "sweep_seconds": baselines.get("sweep_seconds"),
    "budget": {k: result.config.get(k) for k in ("steps", "batch_size")},
  }
  figure = Figure(figsize=(7, 4.2), layout="constrained")
  axes = figure.add_subplot()
  mean = curves.mean(axis=0)
  spread = curves.std(axis=0, ddof=1) / np.sqrt(seeds) if seeds > 1 else 0 * mean
  label = f"transformer, AdamW (mean ± 2 se, {seeds} seeds)"
  axes.plot(steps, mean, "o-", ms=3, color="C0", label=label)
  axes.fill_between(steps, mean - 2 * spread, mean + 2 * spread, color="C0", alpha=0.25)
  for name, value, style in (
    ("unigram (best on val)", baselines["unigram_loss"], ":"),
    ("bigram (best on val)", baselines["bigram_loss"], "-."),
    ("Bayes-optimal (exact)", optimal, "--"),
  ):
    axes.axhline(value, color="k", ls=style, lw=1)
    axes.annotate(
      f"{name}: {value:.3f}",
      (steps[-1], value),
      xytext=(-4, 3),
      textcoords="offset points",
      ha="right",
      fontsize=8,
    )
  axes.axhline(optimal + TOLERANCE, color="C3", lw=0.8, alpha=0.6, label="optimal + 0.1")
  axes.set(
    xlabel="step",
    ylabel="val loss (nats/token)",
    ylim=(optimal - 0.1, max(baselines["unigram_loss"] + 0.2, float(mean[1:].max()) + 0.05)),
    title=f"lm-transformer: gap to the Bayes loss {gaps.mean():.3f} ± {error:.3f} nats/token",
  )
  axes.legend(loc="upper right", fontsize=8)
  figures = [out / "learning_curve.png"]
  figure.savefig(figures[0], dpi=120)
  return numbers, judge(gaps, numbers["unigram_gap"], numbers["bigram_gap"]), figures


def judge(gaps: np.ndarray, unigram_gap: float, bigram_gap: float) -> str:
  """Supported when the seed-mean gap to the Bayes loss is within ``TOLERANCE`` by 2 SE (ddof 1)
  and the n-gram baselines sit far above; refuted when the gap exceeds it by 2 SE or a baseline
  is not far above; else inconclusive (one seed included: no spread, no verdict)."""
  if not (bigram_gap > 3 * TOLERANCE and unigram_gap > bigram_gap):
    return "refuted"
  if len(gaps) < 2:
    return "inconclusive"
  error = float(np.std(gaps, ddof=1) / np.sqrt(len(gaps)))
  if np.mean(gaps) + 2 * error <= TOLERANCE:
    return "supported"
  return "refuted" if np.mean(gaps) - 2 * error > TOLERANCE else "inconclusive"


if __name__ == "__main__":
  sys.exit(common.main(sys.modules[__name__]))
