"""RAdam against warmup on the transformer: does rectifying Adam's first steps do a warmup's work?

Liu et al. (2020, "On the Variance of the Adaptive Learning Rate and Beyond") trace warmup's
benefit to the variance of Adam's adaptive rate over its first steps, and propose RAdam, whose
rectifier shrinks the adaptive step while the second moment averages few gradients, as a
replacement for warmup. ``warmup_length`` (a) measured what a warmup does for AdamW on
``lm-transformer``: it widens the usable range of peak rates. This experiment asks whether
RAdam without a warmup widens it as much, on the same task, size, budget and grid step.

Four arms over one log grid of peak rates (``warmup_length``'s, reaching ``BELOW`` steps lower and
``ABOVE`` higher, see :func:`_grid`), every arm with decoupled weight decay ``WEIGHT_DECAY``
and a cosine decay to 0 at the budget; all arms share each seed's initial weights and
minibatches (:class:`experiments._warmup_length_runs.Runs`):

- ``adamw-warmup``: AdamW after a linear warmup of ``warmup_steps`` (``warmup_length``'s arm);
- ``adamw``: AdamW, no warmup;
- ``radam``: :func:`lrlab.optimizers.radam` (``torch.optim.RAdam``: its first steps, until
  ``rho_t > 5``, are SGD with momentum), no warmup;
- ``radam-authors``: the authors' package default (``degenerated_to_sgd=False``), which makes
  no update, not even the weight decay, until ``rho_t >= 5``: the same rule at a rate of 0 for
  those steps (the decay is scaled by the rate). The implementation check the house asks for
  before a result contradicts a paper: the two RAdams differ only there.

The usable range is ``warmup_length``'s (final val loss within ``TOLERANCE`` of the best, after
:func:`lrlab.analysis.fail_at_chance`). Each RAdam arm's width is compared, paired over seeds,
with AdamW's (the widening the paper claims, expected positive) and with warmed-up AdamW's
(the claim that it replaces warmup: as wide); SE = a bootstrap over seeds and the grid's
rounding of the four ends (``step / sqrt(3)``); Holm over the four comparisons at 2 SE. The
claim is refuted for an arm when its widening over AdamW or its gap to warmed-up AdamW is
negative beyond 2 SE after Holm. "As wide" is a tie, so it needs a resolved one, as
``task_resnets`` asks of its tie: the gap's ``gap - 2 SE`` at least minus one grid step (a width
is a whole number of steps, so no smaller difference is measured); a gap that is merely not
negative beyond 2 SE is absence of evidence. Supported needs the widening positive beyond 2 SE
and the tie resolved; with the widening alone it is "depends on the part" (:func:`judge`). The
verdict is the ``radam`` arm's (lrlab's rule); ``radam-authors`` is reported beside it.
"""

import json
import math
import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make `experiments` importable
  sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import jax.numpy as jnp
import numpy as np

from experiments import _warmup_length_figures as figures
from experiments import common
from experiments._warmup_length_runs import Runs, resample, result_of, setup, straight
from experiments.warmup_length import BOOTSTRAP, METRIC, TOLERANCE, adamw_cosine, arm_summary, width
from experiments.warmup_length import SIZES as WARMUP_SIZES
from lrlab import analysis, optimizers, schedules, sweep
from lrlab.analysis import ALPHA
from lrlab.data.language import ngram_loss

CLAIM = (
  "RAdam replaces warmup (Liu et al. 2020): on lm-transformer, RAdam without a warmup has a "
  "usable range of peak rates wider than AdamW's and as wide as AdamW's after a linear warmup."
)


# Its usable ranges reached down to the grid's lowest rate (0.0032), and the rectifier shifts
# RAdam's up: the grid here reaches lower and higher, so that no range is cut by its ends.
BELOW, ABOVE = 3, 2


def _grid(size: str) -> dict:
  """``warmup_length``'s grid of peak rates at ``size``, at its step, from ``BELOW`` steps
  lower to ``ABOVE`` steps higher."""
  low, high = WARMUP_SIZES[size]["lr_range"]
  n = WARMUP_SIZES[size]["num_lrs"]
  step = (high / low) ** (1 / (n - 1))
  return dict(lr_range=(low / step**BELOW, high * step**ABOVE), num_lrs=n + BELOW + ABOVE)


SIZES = {  # warmup_length's at its longest budget
  size: dict(
    task=WARMUP_SIZES[size]["task"],
    steps=max(WARMUP_SIZES[size]["budgets"]),
    **{k: WARMUP_SIZES[size][k] for k in ("batch_size", "eval_every", "warmup_steps", "seeds")},
    **_grid(size),
  )
  for size in WARMUP_SIZES
}
WEIGHT_DECAY = 1e-2  # AdamW's default (adamw_cosine's), decoupled in every arm
B2 = 0.999  # Adam's and RAdam's default
ARMS = ("adamw-warmup", "adamw", "radam", "radam-authors")


def first_rectified(b2: float = B2) -> int:
  """The first update (counting from 1) whose ``rho_t`` passes the authors' test ``rho_t >= 5``
  (6 at ``b2 = 0.999``; ``torch.optim.RAdam``'s ``rho_t > 5`` gives the same there)."""
  rho_inf, t = 2 / (1 - b2) - 1, 1
  if rho_inf <= 5:  # rho_t < rho_inf: never rectified
    raise ValueError(f"b2 must be above 2/3 for RAdam to rectify; got {b2}.")
  while rho_inf - 2 * t * b2**t / (1 - b2**t) < 5:
    t += 1
  return t


def radam(hp):
  """RAdam with decoupled decay ``WEIGHT_DECAY`` and a cosine to 0; the rate is 0 for the first
  ``hp['hold']`` updates (the authors' package skips them: ``hold`` > 0 is its default)."""
  cosine = schedules.cosine_annealing(hp["lr"], hp["total"])
  rate = lambda t: jnp.where(t >= hp["hold"], cosine(t), 0.0)
  return optimizers.radam(rate, b2=B2, weight_decay=WEIGHT_DECAY, decoupled_weight_decay=True)


def run(out: Path, *, task, steps, batch_size, eval_every, warmup_steps, lr_range, num_lrs, seeds):
  lm, lm_resident, settings, base = setup(
    task, steps=steps, batch_size=batch_size, eval_every=eval_every, seeds=seeds
  )
  base["steps"] = steps
  lrs = sweep.log_grid(*lr_range, num_lrs)
  n, hold = len(lrs), first_rectified() - 1
  arms = {
    "adamw-warmup": (adamw_cosine, {"warmup": warmup_steps}),
    "adamw": (adamw_cosine, {"warmup": 0}),
    "radam": (radam, {"hold": 0}),
    "radam-authors": (radam, {"hold": hold}),
  }
  for name, (make_tx, fixed) in arms.items():
    grid = {"lr": lrs, "total": np.full(n, steps), **{k: np.full(n, v) for k, v in fixed.items()}}
    history = straight(Runs(lm_resident, make_tx, **settings), grid, steps)
    config = {**base, "tx": {"name": make_tx.__name__, **fixed, "weight_decay": WEIGHT_DECAY}}
    result_of({"lr": lrs}, history, config).save(out / name, metric=METRIC)
  val = lm.dataset.val.language.tokens("val", np.arange(lm.dataset.sizes["val"]))
  baselines = {
    "optimal_loss": lm.optimal_loss,
    "chance_loss": analysis.chance_loss(lm_resident.dataset.y_val, lm.num_classes),
    "unigram_loss": ngram_loss(val, 0),
    "warmup_steps": warmup_steps,
    "held_updates": hold,
  }
  (out / "baselines.json").write_text(json.dumps(baselines, indent=2) + "\n")


def judge(widening: dict, gap: dict, resolution: float) -> str:
  """One RAdam arm: refuted when its widening over AdamW or its gap to warmed-up AdamW is
  negative beyond 2 SE (Holm p at most ``ALPHA``); else supported when the widening is positive
  beyond 2 SE and the gap a resolved tie (``gap - 2 SE >= -resolution``, in decades); "depends
  on the part" with the widening alone; else inconclusive."""
  beyond = lambda t: t["p_holm"] <= ALPHA
  if any(t["effect"] < 0 and beyond(t) for t in (widening, gap)):
    return "refuted"
  if not (widening["effect"] > 0 and beyond(widening)):
    return "inconclusive"
  if gap["effect"] - 2 * gap["se"] >= -resolution:
    return "supported"
  return (
    "depends on the part: wider than AdamW supported; as wide as warmed-up AdamW inconclusive "
    f"({round(gap['effect'], 2) + 0.0:+.2f} +- {gap['se']:.2f} decades, a tie not resolved within "
    f"{resolution:.2f})"
  )


def report(out: Path):
  baselines = json.loads((out / "baselines.json").read_text())
  optimal = baselines["optimal_loss"]
  results = {
    name: analysis.fail_at_chance(
      sweep.SweepResult.load(out / name), baselines["chance_loss"], select=METRIC
    )
    for name in ARMS
  }
  lrs = np.asarray(results["adamw"].grid["lr"])
  seeds = results["adamw"].num_seeds
  step = float(np.log10(lrs[1] / lrs[0])) if len(lrs) > 1 else float("nan")
  draws = np.random.default_rng(0).integers(0, seeds, size=(BOOTSTRAP, seeds))
  arms = {name: arm_summary(result, optimal) for name, result in results.items()}
  boot = {name: np.array([width(resample(r, d)) for d in draws]) for name, r in results.items()}
  tests = {}
  for arm in ("radam", "radam-authors"):
    for against in ("adamw", "adamw-warmup"):
      effect = arms[arm]["usable_decades"] - arms[against]["usable_decades"]
      boot_se = float(np.nanstd(boot[arm] - boot[against], ddof=1))
      se = math.hypot(boot_se, step / math.sqrt(3))
      z = effect / se if se > 0 else 0.0
      tests[f"{arm}-{against}"] = {"effect": effect, "se": se, "se_bootstrap": boot_se,
                                   "p": math.erfc(abs(z) / math.sqrt(2.0))}  # fmt: skip
  adjusted = analysis.holm([t["p"] for t in tests.values()])
  for test, p_holm in zip(tests.values(), adjusted, strict=True):
    test["p_holm"] = float(p_holm)
  finals = {n: r.metric(METRIC)[:, r.best(METRIC, warn=False)["index"]] for n, r in results.items()}
  loss_gaps = {
    f"{arm}-adamw-warmup": analysis.paired_difference(finals[arm], finals["adamw-warmup"])
    for arm in ("radam", "radam-authors", "adamw")
  }
  verdicts = {
    arm: judge(tests[f"{arm}-adamw"], tests[f"{arm}-adamw-warmup"], resolution=step)
    for arm in ("radam", "radam-authors")
  }
  numbers = {
    "metric": METRIC, "tolerance": TOLERANCE, "seeds": seeds, "num_lrs": len(lrs),
    "lr_range": [float(lrs[0]), float(lrs[-1])], "grid_step_decades": step,
    "weight_decay": WEIGHT_DECAY, "b2": B2,
    **{k: baselines[k] for k in ("optimal_loss", "chance_loss", "unigram_loss", "warmup_steps",
                                 "held_updates")},
    "arms": arms, "width_gaps": tests, "comparisons": len(tests),
    "best_loss_gaps": loss_gaps, "verdicts": verdicts,
  }  # fmt: skip
  paths = figures.draw_arms(out / "radam_warmup.png", results, numbers)
  return numbers, verdicts["radam"], paths


if __name__ == "__main__":
  sys.exit(common.main(sys.modules[__name__]))
