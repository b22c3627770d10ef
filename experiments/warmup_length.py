"""Warmup and training length on the transformer: where AdamW's peak rate works, and how long for.

Three questions on ``lm-transformer`` (a small one, see ``SIZES``), each over a
log-spaced grid of peak rates traced as one vmapped axis, every seed and rate
in one compiled program; the metric is the final val loss in nats/token, and
its gap to the exact Bayes loss ``task.optimal_loss`` is reported beside it.

(a) Warmup. AdamW (weight decay 1e-2) with a cosine decay to 0, with a linear
    warmup of ``warmup_steps`` and without. The usable range is
    :meth:`lrlab.sweep.SweepResult.usable_range` (final val loss within
    ``TOLERANCE`` of the best, relative), the divergence threshold
    :meth:`~lrlab.sweep.SweepResult.divergence_threshold`, both after
    :func:`lrlab.analysis.fail_at_chance` (a run above the best rate whose loss
    sits at chance level, the unigram entropy of the val tokens, counts as
    failed). The effect is the usable range's width with warmup minus without,
    in decades; its SE adds to a bootstrap over seeds (paired) the grid's rounding of
    the four ends (each uniform over a step: ``step / sqrt(3)``); supported beyond 2 SE.
(b) Schedules at equal budget: cosine (the warmup arm of (a)), WSD
    (warmup-stable-decay, a linear cooldown over the last ``COOLDOWN`` of the
    budget; Hu et al. 2024, Hägele et al. 2024) and schedule-free AdamW
    (Defazio et al. 2024, with the same warmup, as its authors recommend), each
    at its own best peak rate by seed-mean final val loss; three paired gaps
    over seeds, Holm-corrected. "Match" is supported when both gaps to cosine
    lie within ``RESOLUTION`` nats at 2 SE, refuted when either exceeds it by
    more than 2 SE (:func:`judge_match`: Holm over the two, at ``ALPHA``).
(c) Training length: WSD at every budget in ``budgets``, the best peak rate of
    each (refined by a parabola in log rate, as in ``width_transfer``), and the
    slope of log10(best rate) against log2(budget); its SE adds by ``hypot`` a
    bootstrap over seeds and :func:`experiments.common.grid_slope_se` (every best
    rate, refined or not, off by an error uniform over a step, SD ``step/sqrt(12)``:
    conservative for a refined one); supported when negative beyond 2 SE. WSD's cooldowns are forked
    from one constant-rate trunk, the longest budget's run, trained once: at
    each shorter budget's fork step ``T - COOLDOWN * T`` its state (parameters,
    Adam moments, step count) is copied and trained on with that budget's
    schedule. Before the fork the two schedules are the same constant, so the
    fork is that budget's straight WSD run (``tests/experiments/test_warmup_length.py``
    checks it against :func:`lrlab.sweep.run`): one trunk plus the cooldowns.

The runs go one evaluation window at a time through :class:`lrlab.train.Trainer`
(one compiled segment per optimizer serves the trunk and every cooldown), on
the task's streamed splits gathered once into arrays: the same sequences and
the same minibatch order as the streamed task. The divergence threshold is
10x the step-0 val loss (the train split is not passed over at step 0). The
verdict is the parts' when they agree, else "depends on the part: ...".
"""

import json
import math
import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make `experiments` importable
  sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import jax
import numpy as np

from experiments import _warmup_length_figures as figures
from experiments import common
from experiments._warmup_length_runs import Runs, columns, resample, result_of, setup, straight
from lrlab import analysis, optimizers, schedules, sweep
from lrlab.analysis import ALPHA
from lrlab.data.language import ngram_loss

CLAIM = (
  "On lm-transformer, a linear warmup widens AdamW's usable range of peak rates; at equal "
  "budget, WSD and schedule-free AdamW match a cosine schedule; and the best peak rate falls as "
  "the training budget grows."
)
_TINY_TASK = dict(width=8, depth=1, heads=1, context=8, vocab=8, hidden=4, triggers=1)
SIZES = {
  "tiny": dict(
    task=dict(_TINY_TASK, num_eval=16),
    budgets=(20, 40),
    batch_size=8,
    eval_every=4,
    warmup_steps=4,
    lr_range=(1e-2, 1.0),
    num_lrs=3,
    seeds=2,
  ),
  "default": dict(
    task=dict(width=32, depth=2, heads=2, context=32, num_eval=128),
    budgets=(80, 160, 320),
    batch_size=16,
    eval_every=16,
    warmup_steps=32,
    lr_range=(10**-2.5, 1.0),
    num_lrs=8,
    seeds=5,
  ),
  "full": dict(
    task={},
    budgets=(1000, 2000, 4000),
    batch_size=32,
    eval_every=100,
    warmup_steps=200,
    lr_range=(1e-4, 1.0),
    num_lrs=13,
    seeds=8,
  ),
}
METRIC = "final_val_loss"
TOLERANCE = 0.02  # usable: seed-mean final val loss <= best * (1 + TOLERANCE)
COOLDOWN = 0.2  # WSD's decay, a fraction of the budget (Hägele et al. 2024)
RESOLUTION = 0.02  # nats/token: schedules "match" when a gap's 2-SE interval lies within it
BOOTSTRAP = 500


def adamw_cosine(hp):
  """AdamW at a linear warmup of ``hp['warmup']`` steps to ``hp['lr']``, then a cosine to 0 at
  step ``hp['total']`` (a warmup of 0: the cosine from step 0)."""
  decay = schedules.cosine_annealing(hp["lr"], hp["total"] - hp["warmup"])
  return optimizers.adamw(schedules.warmup(decay, hp["warmup"]))


def adamw_wsd(hp):
  """AdamW on :func:`lrlab.schedules.warmup_stable_decay` (``hp``: lr, total, warmup, decay)."""
  schedule = schedules.warmup_stable_decay(
    hp["lr"], hp["total"], warmup_steps=hp["warmup"], decay_steps=hp["decay"]
  )
  return optimizers.adamw(schedule)


def schedule_free(hp):
  """Schedule-free AdamW with a linear warmup of ``hp['warmup']`` steps (the authors' advice)."""
  return optimizers.schedule_free_adamw(hp["lr"], warmup_steps=hp["warmup"])


def _decay(budget: int) -> int:
  """WSD's cooldown at ``budget``: ``COOLDOWN`` of it, in whole steps."""
  return round(COOLDOWN * budget)


def wsd_grid(lrs, budget, warmup_steps):
  """The WSD settings of ``budget``: every rate, with its warmup, total and cooldown."""
  n = len(lrs)
  fixed = {"total": budget, "warmup": warmup_steps, "decay": _decay(budget)}
  return {"lr": np.asarray(lrs), **{k: np.full(n, v, np.int64) for k, v in fixed.items()}}


def forked(runs, lrs, budgets, warmup_steps):
  """WSD at every budget from one trunk (the longest budget's run), as ``{budget: History}``.

  The trunk trains with the longest budget's schedule, constant after the warmup until that
  budget's own cooldown; at each shorter budget's fork step ``budget - _decay(budget)`` a copy
  of its state trains on to ``budget`` with that budget's schedule.
  """
  every, longest = runs.trainer.eval_every, max(budgets)
  trunk_hp = columns(wsd_grid(lrs, longest, warmup_steps))
  forks = {(b - _decay(b)) // every: b for b in budgets if b != longest}
  state, first = runs.start(trunk_hp)
  parts, out = [], {}
  for w in range(longest // every):
    if w in forks:
      budget = forks[w]
      hp, fork, tail = columns(wsd_grid(lrs, budget, warmup_steps)), state, []
      for v in range(w, budget // every):
        fork, part = runs.window(hp, fork, v)
        tail.append(part)
      out[budget] = runs.history(fork, first, parts + tail)
    state, part = runs.window(trunk_hp, state, w)
    parts.append(part)
  out[longest] = runs.history(state, first, parts)
  return out


def check_settings(budgets, eval_every, warmup_steps) -> None:
  """Every budget, fork step and cooldown a whole number of windows, the warmup before the forks."""
  for b in budgets:
    if b % eval_every or (b - _decay(b)) % eval_every or _decay(b) < 1:
      raise ValueError(
        f"budgets must be multiples of eval_every={eval_every} whose cooldown ({COOLDOWN:g} of "
        f"the budget) is too; got budget {b}."
      )
  if warmup_steps > min(b - _decay(b) for b in budgets):
    raise ValueError(
      f"warmup_steps must end before the first fork step; got {warmup_steps} for budgets {budgets}."
    )


def run(
  out: Path, *, task, budgets, batch_size, eval_every, warmup_steps, lr_range, num_lrs, seeds
):
  check_settings(budgets, eval_every, warmup_steps)
  longest, context = max(budgets), task.get("context", 64)
  lm, lm_resident, settings, base = setup(
    task, steps=longest, batch_size=batch_size, eval_every=eval_every, seeds=seeds
  )
  lrs = sweep.log_grid(*lr_range, num_lrs)
  # (a) and (b)'s cosine: AdamW, warmup-cosine and cosine alone, in one program.
  grid = sweep.product(warmup=np.array([warmup_steps, 0]), lr=lrs)
  grid["total"] = np.full(2 * len(lrs), longest)
  history = straight(Runs(lm_resident, adamw_cosine, **settings), grid, longest)
  for name, members in (("cosine-warmup", slice(0, len(lrs))), ("cosine", slice(len(lrs), None))):
    warmup = int(grid["warmup"][members][0])
    config = {**base, "steps": longest, "tx": {"name": "adamw_cosine", "warmup": warmup}}
    arm = jax.tree.map(lambda a, m=members: np.asarray(a)[:, m], history)
    result_of({"lr": lrs}, arm, config).save(out / name, metric=METRIC)
  # (b): schedule-free AdamW with the same warmup.
  grid = {"lr": lrs, "warmup": np.full(len(lrs), warmup_steps)}
  history = straight(Runs(lm_resident, schedule_free, **settings), grid, longest)
  config = {**base, "steps": longest, "tx": {"name": "schedule_free_adamw", "warmup": warmup_steps}}
  result_of({"lr": lrs}, history, config).save(out / "schedule_free", metric=METRIC)
  # (c): WSD at every budget, forked from one trunk.
  wsd = forked(Runs(lm_resident, adamw_wsd, **settings), lrs, budgets, warmup_steps)
  for budget, history in wsd.items():
    tx = {"name": "adamw_wsd", "warmup": warmup_steps, "decay": _decay(budget)}
    config = {**base, "steps": budget, "tx": {**tx, "fork": budget != longest}}
    result_of({"lr": lrs}, history, config).save(out / f"wsd-{budget}", metric=METRIC)
  val = lm.dataset.val.language.tokens("val", np.arange(lm.dataset.sizes["val"]))
  baselines = {
    "optimal_loss": lm.optimal_loss,
    "chance_loss": analysis.chance_loss(lm_resident.dataset.y_val, lm.num_classes),
    "unigram_loss": ngram_loss(val, 0),
    "bigram_loss": ngram_loss(val, 1),
    "budgets": list(budgets),
    "warmup_steps": warmup_steps,
    "train_sequences": lm.num_train,
    "context": context,
  }
  (out / "baselines.json").write_text(json.dumps(baselines, indent=2) + "\n")


def width(result: sweep.SweepResult) -> float:
  """The width in decades of ``result``'s usable range (``METRIC`` within ``TOLERANCE``)."""
  return analysis.decades(result.usable_range(METRIC, TOLERANCE))


def arm_summary(result: sweep.SweepResult, optimal: float) -> dict:
  """Part (a) for one arm: the best rate (by loss and by accuracy), usable range, threshold."""
  best = result.best(METRIC, warn=False)
  lo, hi = result.usable_range(METRIC, TOLERANCE)
  return {
    "best_lr": best["hyperparameters"]["lr"],
    "best_val_loss": best["value"],
    "gap_to_optimal": best["value"] - optimal,
    "best_lr_by_accuracy": result.best("final_val_accuracy", warn=False)["hyperparameters"]["lr"],
    "usable_range": [lo, hi],
    "usable_decades": analysis.decades((lo, hi)),
    "usable_range_at_grid_edges": [lo == result.grid["lr"][0], hi == result.grid["lr"][-1]],
    "divergence_threshold": result.divergence_threshold(metric=METRIC),
    "failed_runs": int(result.history.diverged.sum()),
    "dead_runs": result.config["dead_guard"]["runs"],
    "best_on_grid_edge": result.edge_warning(METRIC) is not None,
  }


def judge_match(claimed: list[dict]) -> str:
  """Whether paired gaps (:func:`lrlab.analysis.paired_difference`) match within ``RESOLUTION``:
  supported when every ``|gap| + 2 se`` lies within it, refuted when some ``|gap| - RESOLUTION``
  is positive beyond 2 SE (its p Holm-adjusted over ``claimed``, at ``ALPHA``)."""
  z = [(abs(t["gap"]) - RESOLUTION) / t["se"] if t["se"] > 0 else math.nan for t in claimed]
  p = [math.erfc(v / math.sqrt(2.0)) if v > 0 else 1.0 for v in z]  # NaN (no spread): 1
  for t, p_holm in zip(claimed, analysis.holm(p), strict=True):
    t["beyond_resolution_p_holm"] = float(p_holm)
  if any(t["beyond_resolution_p_holm"] <= ALPHA for t in claimed):
    return "refuted"
  if all(abs(t["gap"]) + 2 * t["se"] <= RESOLUTION for t in claimed):
    return "supported"
  return "inconclusive"


def _verdict(effect: float, se: float, expected_sign: int = 1) -> str:
  """:func:`lrlab.analysis.verdict` at 2 SE; a zero spread (every replicate alike) never decides."""
  return analysis.verdict(effect, se, expected_sign=expected_sign) if se > 0 else "inconclusive"


def report(out: Path):
  baselines = json.loads((out / "baselines.json").read_text())
  optimal, budgets = baselines["optimal_loss"], baselines["budgets"]
  load = lambda name: analysis.fail_at_chance(
    sweep.SweepResult.load(out / name), baselines["chance_loss"], select=METRIC
  )
  results = {name: load(name) for name in ("cosine-warmup", "cosine", "schedule_free")}
  wsd = {b: load(f"wsd-{b}") for b in budgets}
  first = results["cosine"]
  lrs, seeds = np.asarray(first.grid["lr"]), first.num_seeds
  log_lrs = np.log10(lrs)
  draws = np.random.default_rng(0).integers(0, seeds, size=(BOOTSTRAP, seeds))
  numbers = {
    "metric": METRIC,
    "tolerance": TOLERANCE,
    "seeds": seeds,
    "num_lrs": len(lrs),
    "lr_range": [float(lrs[0]), float(lrs[-1])],
    "grid_step_decades": float(log_lrs[1] - log_lrs[0]) if len(lrs) > 1 else float("nan"),
    **{k: baselines[k] for k in ("optimal_loss", "chance_loss", "unigram_loss", "bigram_loss")},
    "budgets": budgets,
    "warmup_steps": baselines["warmup_steps"],
    "cooldown_fraction": COOLDOWN,
    "batch_size": first.config["batch_size"],
  }
  # (a) the usable range with and without warmup.
  arms = {"warmup": results["cosine-warmup"], "no_warmup": results["cosine"]}
  numbers["warmup"] = {name: arm_summary(result, optimal) for name, result in arms.items()}
  boot = {name: np.array([width(resample(r, d)) for d in draws]) for name, r in arms.items()}
  effect = (
    numbers["warmup"]["warmup"]["usable_decades"] - numbers["warmup"]["no_warmup"]["usable_decades"]
  )
  # A width is a whole number of grid steps: draws that agree would make the bootstrap's SE 0.
  boot_se = float(np.nanstd(boot["warmup"] - boot["no_warmup"], ddof=1))
  effect_se = math.hypot(boot_se, numbers["grid_step_decades"] / math.sqrt(3))
  thresholds = [numbers["warmup"][a]["divergence_threshold"] for a in arms]
  numbers["warmup"].update(
    widening_decades=effect,
    widening_se_decades=effect_se,
    widening_se_bootstrap_decades=boot_se,
    threshold_ratio=(thresholds[0] / thresholds[1]) if None not in thresholds else None,
    verdict=_verdict(effect, effect_se),
  )
  # (b) cosine, WSD and schedule-free at the longest budget, each at its best peak rate.
  longest = max(budgets)
  at_budget = {
    "cosine": arms["warmup"],
    "wsd": wsd[longest],
    "schedule_free": results["schedule_free"],
  }
  finals, schedules_numbers = {}, {}
  for name, result in at_budget.items():
    index = result.best(METRIC, warn=False)["index"]
    finals[name] = result.metric(METRIC)[:, index]
    schedules_numbers[name] = {
      "best_lr": float(lrs[index]),
      "val_loss": float(finals[name].mean()),
      "val_loss_se": float(finals[name].std(ddof=1) / np.sqrt(seeds)),
      "gap_to_optimal": float(finals[name].mean() - optimal),
      "best_on_grid_edge": result.edge_warning(METRIC) is not None,
    }
  pairs = (("wsd", "cosine"), ("schedule_free", "cosine"), ("schedule_free", "wsd"))
  tests = {f"{a}-{b}": analysis.paired_difference(finals[a], finals[b]) for a, b in pairs}
  for test, p_holm in zip(
    tests.values(), analysis.holm([t["p"] for t in tests.values()]), strict=True
  ):
    test["p_holm"] = float(p_holm)
  verdict_b = judge_match([tests["wsd-cosine"], tests["schedule_free-cosine"]])
  numbers["schedules"] = {
    "budget": longest,
    **schedules_numbers,
    "paired_gaps": tests,
    "comparisons": len(tests),
    "resolution": RESOLUTION,
    "verdict": verdict_b,
  }
  # (c) the best peak rate against the budget (WSD, forked cooldowns).
  x = np.log2(np.asarray(budgets, float))
  runs = {b: wsd[b].metric(METRIC) for b in budgets}  # (seeds, lrs), failed = inf
  best_of = lambda values: analysis.refine_best(log_lrs, values.mean(0), larger_is_better=False)
  best = np.array([best_of(runs[b]) for b in budgets])
  samples = np.array([[best_of(runs[b][d]) for b in budgets] for d in draws])
  slope = float(np.polyfit(x, best, 1)[0]) if len(budgets) > 1 else float("nan")
  boot_slopes = [np.polyfit(x, s, 1)[0] if len(budgets) > 1 else np.nan for s in samples]
  boot_se = float(np.std(boot_slopes, ddof=1))  # with the grid's rounding, the docstring's (c)
  slope_se = math.hypot(boot_se, common.grid_slope_se(x, numbers["grid_step_decades"]))
  numbers["budget"] = {
    "best_lr": (10**best).tolist(),
    "best_lr_se_decades": samples.std(axis=0, ddof=1).tolist(),
    "best_lr_by_accuracy": [
      wsd[b].best("final_val_accuracy", warn=False)["hyperparameters"]["lr"] for b in budgets
    ],
    "best_val_loss": [float(np.min(wsd[b].seed_mean(METRIC))) for b in budgets],
    "gap_to_optimal": [float(np.min(wsd[b].seed_mean(METRIC))) - optimal for b in budgets],
    "best_on_grid_edge": [wsd[b].edge_warning(METRIC) is not None for b in budgets],
    "slope_decades_per_doubling": slope,
    "slope_se": slope_se,
    "slope_bootstrap_se": boot_se,
    "verdict": _verdict(slope, slope_se, expected_sign=-1),
  }
  parts = {k: numbers[k]["verdict"] for k in ("warmup", "schedules", "budget")}
  if len(set(parts.values())) == 1 and parts["warmup"] != "inconclusive":
    verdict = parts["warmup"]
  else:
    verdict = "depends on the part: " + ", ".join(f"{k} {v}" for k, v in parts.items())
  paths = figures.draw(out, results, wsd, numbers)
  return numbers, verdict, paths


if __name__ == "__main__":
  sys.exit(common.main(sys.modules[__name__]))
