"""Warmup and training length (issue 19, study 3): forked WSD cooldowns, the committed results."""

import jax
import numpy as np
import pytest

from experiments import common, warmup_length
from experiments._warmup_length_runs import EVAL_BATCH, Runs, resident, straight
from lrlab import analysis, sweep, tasks
from tests.experiments import reference

OUT = common.RESULTS / "warmup_length"
TINY = dict(width=8, depth=1, heads=1, context=8, vocab=8, hidden=4, triggers=1, num_eval=16)
BUDGETS, WARMUP, EVERY, BATCH, SEEDS = (20, 40), 4, 4, 8, 2
# Three rates, as the tiny warmup_length run's grid: the same shapes, so its WSD programs
# (start and segment) are the ones this fixture compiles, shared through the compile cache.
LRS = np.array([3e-3, 1e-2, 3e-2])


@pytest.fixture(scope="module")
def forks():
  """The tiny task (resident) and WSD at both budgets, the shorter one forked from the trunk."""
  task = resident(tasks.get("lm-transformer", num_tokens=max(BUDGETS) * BATCH * 8, **TINY))
  runs = Runs(
    task,
    warmup_length.adamw_wsd,
    steps=max(BUDGETS),
    batch_size=BATCH,
    eval_every=EVERY,
    seeds=SEEDS,
    key=jax.random.key(0),
  )
  return task, runs, warmup_length.forked(runs, LRS, BUDGETS, WARMUP)


@pytest.mark.slow  # three compiled transformer programs
def test_a_forked_cooldown_is_the_straight_run_of_its_budget(forks):
  task, runs, histories = forks
  budget = min(BUDGETS)
  fork = histories[budget]
  assert fork.val_loss.shape == (SEEDS, len(LRS), budget // EVERY + 1)
  # Bit for bit against the same programs run straight from step 0 with that budget's schedule.
  alone = straight(runs, warmup_length.wsd_grid(LRS, budget, WARMUP), budget)
  for name in ("val_loss", "test_loss", "train_loss", "learning_rate", "diverged"):
    np.testing.assert_array_equal(getattr(fork, name), getattr(alone, name), err_msg=name)
  # To float rounding against lrlab.sweep.run, which knows nothing of forks.
  decay = round(warmup_length.COOLDOWN * budget)
  fixed = {"total": budget, "warmup": WARMUP, "decay": decay}
  engine = sweep.run(
    task,
    lambda hp: warmup_length.adamw_wsd({**hp, **fixed}),
    {"lr": LRS},
    steps=budget,
    batch_size=BATCH,
    key=jax.random.key(0),
    eval_every=EVERY,
    seeds=SEEDS,
    eval_batch_size=EVAL_BATCH,
    progress=False,
  )
  np.testing.assert_allclose(fork.val_loss, engine.history.val_loss, rtol=2e-5, atol=1e-6)
  np.testing.assert_allclose(fork.learning_rate, engine.history.learning_rate, rtol=1e-6)
  # The schedule of the fork: constant peak until budget - decay, then linear to 0.
  t = np.arange(budget)
  ramp = np.where(t < WARMUP, t / WARMUP, np.clip((budget - t) / decay, 0, 1))
  np.testing.assert_allclose(fork.learning_rate[0], LRS[:, None] * ramp[None], rtol=1e-6)
  # The trunk went on at the peak rate where the fork cooled down: they really differ there.
  trunk = histories[max(BUDGETS)]
  assert np.all(trunk.learning_rate[0, :, budget - 1] == LRS.astype(np.float32))
  assert not np.array_equal(trunk.val_loss[..., budget // EVERY], fork.val_loss[..., -1])


def test_settings_are_checked_before_any_compute():
  with pytest.raises(ValueError, match="budgets must be multiples of eval_every=16"):
    warmup_length.check_settings((80, 100), 16, 32)
  with pytest.raises(ValueError, match="warmup_steps must end before the first fork"):
    warmup_length.check_settings((80, 160), 16, 80)


def _paired_gap(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
  d = a - b
  return float(d.mean()), float(d.std(ddof=1) / np.sqrt(d.size))


def test_committed_summary_follows_from_the_saved_sweeps():
  summary = common.read_summary(OUT)
  numbers = summary["numbers"]
  assert summary["size"] == "default" and numbers["seeds"] >= 5
  chance = numbers["chance_loss"]
  load = lambda name: analysis.fail_at_chance(
    sweep.SweepResult.load(OUT / name), chance, select="final_val_loss"
  )
  # (a): the usable ranges and thresholds, recomputed from the saved sweeps.
  for name, arm in (("cosine-warmup", "warmup"), ("cosine", "no_warmup")):
    result, reported = load(name), numbers["warmup"][arm]
    lo, hi = result.usable_range("final_val_loss", warmup_length.TOLERANCE)
    assert reported["usable_range"] == [lo, hi]
    assert reported["divergence_threshold"] == result.divergence_threshold()
  widening = numbers["warmup"]["widening_decades"]
  assert widening == pytest.approx(
    numbers["warmup"]["warmup"]["usable_decades"] - numbers["warmup"]["no_warmup"]["usable_decades"]
  )
  # (b): each schedule's final val loss at its best rate, and the paired gaps, from the curves.
  longest = max(numbers["budgets"])
  finals = {}
  for name, folder in (
    ("cosine", "cosine-warmup"),
    ("wsd", f"wsd-{longest}"),
    ("schedule_free", "schedule_free"),
  ):
    result = load(folder)
    final = np.where(result.history.diverged, np.inf, result.history.val_loss[..., -1])
    finals[name] = final[:, int(np.argmin(final.mean(axis=0)))].astype(float)
    reported = numbers["schedules"][name]
    assert reported["val_loss"] == pytest.approx(finals[name].mean(), rel=1e-6)
    assert reported["gap_to_optimal"] > 0  # nothing beats the Bayes loss
  for test, (a, b) in zip(
    ("wsd-cosine", "schedule_free-cosine", "schedule_free-wsd"),
    (("wsd", "cosine"), ("schedule_free", "cosine"), ("schedule_free", "wsd")),
    strict=True,
  ):
    gap, se = _paired_gap(finals[a], finals[b])
    assert numbers["schedules"]["paired_gaps"][test]["gap"] == pytest.approx(gap, rel=1e-6)
    assert numbers["schedules"]["paired_gaps"][test]["se"] == pytest.approx(se, rel=1e-6)
  # (c): the slope is the least-squares fit through the reported best rates.
  x = np.log2(numbers["budgets"])
  slope = np.polyfit(x, np.log10(numbers["budget"]["best_lr"]), 1)[0]
  assert numbers["budget"]["slope_decades_per_doubling"] == pytest.approx(slope)
  step = numbers["grid_step_decades"]
  for b, refined in zip(numbers["budgets"], numbers["budget"]["best_lr"], strict=True):
    result = load(f"wsd-{b}")
    grid_best = result.grid["lr"][result.best("final_val_loss", warn=False)["index"]]
    assert abs(np.log10(refined / grid_best)) <= step / 2 + 1e-9
  assert (OUT / "warmup_length.png").stat().st_size > 1000


def test_a_match_is_refuted_only_by_a_gap_beyond_the_resolution_by_2_se():
  # The committed (b): schedule-free is below cosine beyond 2 SE (z = -7.5), but its gap
  # exceeds the 0.02-nat resolution by (0.0235 - 0.02) / 0.0031 = 1.1 SE only.
  res = warmup_length.RESOLUTION
  close = [{"gap": -0.0084, "se": 0.0023}, {"gap": -0.0235, "se": 0.0031}]
  assert abs(close[1]["gap"]) / close[1]["se"] > 2 > (abs(close[1]["gap"]) - res) / 0.0031
  assert warmup_length.judge_match(close) == "inconclusive"
  beyond = [{"gap": -0.0084, "se": 0.0023}, {"gap": -0.035, "se": 0.003}]  # 5 SE past it
  assert warmup_length.judge_match(beyond) == "refuted"
  within = [{"gap": -0.004, "se": 0.002}, {"gap": 0.01, "se": 0.004}]  # |gap| + 2 se <= 0.02
  assert warmup_length.judge_match(within) == "supported"


def test_the_committed_schedules_verdict_follows_the_2_se_rule_on_the_resolution():
  part = common.read_summary(OUT)["numbers"]["schedules"]
  claimed = [part["paired_gaps"][t] for t in ("wsd-cosine", "schedule_free-cosine")]
  excess_z = [(abs(t["gap"]) - part["resolution"]) / t["se"] for t in claimed]
  within = all(abs(t["gap"]) + 2 * t["se"] <= part["resolution"] for t in claimed)
  if part["verdict"] == "refuted":
    assert max(excess_z) > 2
  else:
    assert part["verdict"] == ("supported" if within else "inconclusive")


def test_the_committed_widening_counts_the_grid_rounding_of_its_four_ends(monkeypatch):
  # A usable range is a whole number of grid steps, so draws of seeds that agree give the
  # bootstrap a spread near 0 (0.061 decades on the committed 0.357-decade grid). The SE adds
  # each end's rounding, uniform over one step (variance step^2 / 12, four ends: step / sqrt 3).
  numbers = common.read_summary(OUT)["numbers"]
  part, step = numbers["warmup"], numbers["grid_step_decades"]
  chance = numbers["chance_loss"]
  arms = {
    arm: analysis.fail_at_chance(
      sweep.SweepResult.load(OUT / name), chance, select="final_val_loss"
    )
    for arm, name in (("warmup", "cosine-warmup"), ("no_warmup", "cosine"))
  }
  seeds = numbers["seeds"]
  draws = np.random.default_rng(0).integers(0, seeds, (warmup_length.BOOTSTRAP, seeds))

  def width(result, draw):
    mean = np.asarray(result.metric("final_val_loss"), float)[draw].mean(0)
    lrs = np.log10(result.grid["lr"])
    k = int(np.argmin(mean))
    usable = np.isfinite(mean) & (mean <= mean[k] * (1 + warmup_length.TOLERANCE))
    lo, hi = k, k
    while lo > 0 and usable[lo - 1]:
      lo -= 1
    while hi < len(mean) - 1 and usable[hi + 1]:
      hi += 1
    return lrs[hi] - lrs[lo]

  gaps = [width(arms["warmup"], d) - width(arms["no_warmup"], d) for d in draws]
  boot_se = float(np.std(gaps, ddof=1))
  assert part["widening_se_bootstrap_decades"] == pytest.approx(boot_se, rel=1e-6)
  assert part["widening_se_decades"] == pytest.approx(np.hypot(boot_se, step / np.sqrt(3)))
  assert part["widening_se_decades"] >= step / np.sqrt(3)
  expected = "supported" if part["widening_decades"] > 2 * part["widening_se_decades"] else None
  assert part["verdict"] == (expected or "inconclusive")
  # The report redraws the same numbers from the saved sweeps (figures left out).
  monkeypatch.setattr(warmup_length.figures, "draw", lambda *args: [])
  redrawn = warmup_length.report(OUT)[0]["warmup"]
  for key in ("widening_se_decades", "widening_se_bootstrap_decades"):
    assert redrawn[key] == pytest.approx(part[key], rel=1e-9)
  assert redrawn["verdict"] == part["verdict"]


def test_the_budget_slopes_se_adds_the_grids_rounding_to_the_bootstrap():
  # Recomputed from the saved sweeps (runs at chance counted failed, as the experiment does):
  # the seed bootstrap of the slope of the best peak (tests/experiments/reference.vertex on the
  # seed-mean final val loss, failed runs worst) against log2(budget), and each best peak's
  # rounding over one grid step through the fit, in quadrature.
  numbers = common.read_summary(OUT)["numbers"]
  budgets = numbers["budgets"]
  runs = []
  for b in budgets:
    result = analysis.fail_at_chance(
      sweep.SweepResult.load(OUT / f"wsd-{b}"), numbers["chance_loss"], select="final_val_loss"
    )
    loss = result.history.val_loss[:, :, -1].astype(float)
    runs.append(np.where(result.history.diverged, np.inf, loss))
  log_lrs, x = np.log10(result.grid["lr"]), np.log2(budgets)
  seeds = runs[0].shape[0]
  draws = np.random.default_rng(0).integers(0, seeds, size=(warmup_length.BOOTSTRAP, seeds))
  slopes = [
    np.polyfit(
      x, [reference.vertex(log_lrs, r[d].mean(0), larger_is_better=False) for r in runs], 1
    )[0]
    for d in draws
  ]
  grid = reference.rounding_sd(x, np.log10(result.grid["lr"][1] / result.grid["lr"][0]))
  expected = np.hypot(np.std(slopes, ddof=1), grid)
  assert numbers["budget"]["slope_se"] == pytest.approx(expected, rel=1e-6)
