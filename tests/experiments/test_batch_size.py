"""Batch size and the learning rate (issue 19): the fits, and the committed default-size results."""

import json
import math

import numpy as np
import pytest
from scipy import stats

from experiments import _batch_size_fits as fits
from experiments import batch_size, common
from lrlab import sweep, tasks

OUT = common.RESULTS / "batch_size"


def test_steps_to_target_interpolates_between_evaluations_and_ignores_diverged_ones():
  steps = np.array([0, 10, 20, 30])
  curves = np.array([[4.0, 3.0, 1.0, 0.5], [4.0, 3.0, 2.5, 2.2], [4.0, 1.5, 0.5, 0.5]])
  found = fits.steps_to_target(steps, curves, np.array([-1, -1, 5]), 2.0)
  # 3.0 -> 1.0 between steps 10 and 20 crosses 2.0 halfway; the second never does; the third
  # crosses at step 10 but diverged at step 5, so its later evaluations do not count.
  np.testing.assert_allclose(found, [15.0, np.inf, np.inf])
  assert fits.steps_to_target(steps, curves[:1], np.array([-1]), 5.0)[0] == 0.0


@pytest.mark.parametrize(("b_noise", "s_min"), [(30.0, 50.0), (300.0, 8.0)])
def test_critical_batch_fit_recovers_the_model(b_noise, s_min):
  batch = np.array([1, 4, 16, 64, 256, 1024], float)
  log_b, log_s = fits.fit_critical_batch(batch, s_min * (1 + b_noise / batch))
  assert log_b == pytest.approx(math.log10(b_noise), abs=0.005)  # the candidates' spacing
  assert log_s == pytest.approx(math.log10(s_min), abs=0.01)


def test_slope_and_best_rate():
  batch = np.array([4, 16, 64])
  assert fits.slope(batch, np.log10(0.01 * batch)) == pytest.approx(1.0)
  # Uniform +-0.25-decade errors on the best rates: Monte Carlo SD of the fitted slope.
  errors = np.random.default_rng(0).uniform(-0.25, 0.25, (20000, 3))
  slopes = [fits.slope(batch, np.log10(0.01 * batch) + e) for e in errors[:2000]]
  assert fits.grid_slope_se(batch, 0.5) == pytest.approx(np.std(slopes), rel=0.05)
  log_lrs = np.log10([0.01, 0.1, 1.0])
  steps = np.array([[100.0, 10.0, np.inf], [100.0, 10.0, 1000.0]])  # a seed misses at 1.0
  best, log_min = fits.best_rate(log_lrs, steps)
  assert best == -1.0 and log_min == pytest.approx(1.0)  # at the grid best: no finite parabola


def _fit(slope: float, se: float, optimizer: str) -> dict:
  """A pair's fitted slope with its p-values against both rules, by scipy's normal."""
  p = lambda rule: 2 * stats.norm.sf(abs(slope - rule) / se)
  rule, other = batch_size.RULE[optimizer], batch_size.OTHER_RULE[optimizer]
  return {"lr_slope": slope, "lr_slope_se": se, "rule_p": p(rule), "other_rule_p": p(other)}


def test_a_rule_is_supported_only_where_the_slope_tells_it_from_the_other_rule():
  judged = batch_size.judge_rules(
    {
      ("a", "sgd"): _fit(1.0, 0.1, "sgd"),  # 5 SE from 0.5: supported
      ("b", "sgd"): _fit(0.5, 0.05, "sgd"),  # 10 SE from 1: refuted
      ("c", "sgd"): _fit(0.75, 0.12, "sgd"),  # 2.1 SE from each rule: neither rejected
      ("a", "adam"): _fit(0.5, 0.08, "adam"),  # 6 SE from 1, 6 SE above 0: supported
      ("b", "adam"): _fit(0.3, 0.2, "adam"),  # 3.5 SE from 1, but only 1.5 SE above 0
      ("c", "adam"): _fit(1.0, 0.1, "adam"),  # the linear rule, 5 SE from 0.5: refuted
    }
  )
  assert judged == {
    ("a", "sgd"): "supported",
    ("b", "sgd"): "refuted",
    ("c", "sgd"): "inconclusive",
    ("a", "adam"): "supported",
    ("b", "adam"): "inconclusive",
    ("c", "adam"): "refuted",
  }


def test_the_rules_tests_are_holm_adjusted_together():
  # 2.3 SE from the square-root rule: p 0.021, rejected alone (2 tests: 0.043 < 0.0455) ...
  alone = {("a", "sgd"): _fit(0.96, 0.2, "sgd")}
  assert batch_size.judge_rules(alone)["a", "sgd"] == "supported"
  fitted = alone["a", "sgd"]
  assert fitted["other_rule_p_holm"] == pytest.approx(2 * fitted["other_rule_p"])
  # ... but not among 6 tests, with nothing else rejected (6 x 0.021 > 0.0455).
  crowded = {**alone, **{(n, "sgd"): _fit(0.75, 0.2, "sgd") for n in ("b", "c")}}
  assert batch_size.judge_rules(crowded)["a", "sgd"] == "inconclusive"


def _recomputed(name: str, optimizer: str, batch_sizes, target) -> list[float]:
  """The grid's best rate of each batch size: the lowest seed-mean log10 steps, recomputed."""
  best = []
  for batch in batch_sizes:
    result = sweep.SweepResult.load(OUT / name / f"{optimizer}-{batch}")
    h = result.history
    s = fits.steps_to_target(np.asarray(h.step[0, 0]), h.val_loss, h.diverged_step, target)
    best.append(math.log10(result.grid["lr"][int(np.argmin(fits.log_steps(s)))]))
  return best


def test_committed_summary_follows_from_the_saved_sweeps():
  summary = common.read_summary(OUT)
  numbers = summary["numbers"]
  assert summary["size"] == "default" and numbers["seeds"] >= 5
  assert set(numbers["tasks"]) == set(batch_size.SIZES["default"]["tasks"])
  assert {"quadratic", "mnist1d-mlp", "lm-transformer"} <= set(numbers["tasks"])
  step = numbers["grid_step_decades"]
  targets = json.loads((OUT / "targets.json").read_text())
  p_values = []
  for name, task in numbers["tasks"].items():
    assert task["target_val_loss"] == pytest.approx(targets[name])
    for optimizer in batch_size.OPTIMIZERS:
      fitted = task[optimizer]
      grid_best = _recomputed(name, optimizer, task["batch_sizes"], targets[name])
      refined = np.log10(fitted["best_lr"])
      assert np.all(np.abs(refined - grid_best) <= step / 2 + 1e-9), (name, optimizer)
      assert fitted["lr_slope"] == pytest.approx(fits.slope(task["batch_sizes"], refined))
      log_b, _ = fits.fit_critical_batch(task["batch_sizes"], fitted["steps_to_target"])
      assert math.log10(fitted["critical_batch"]) == pytest.approx(log_b)
      p_values.append(fitted["rule_p"])
      b_simple = task["noise_scale"]["b_simple_target"]
      assert fitted["b_simple_over_critical_decades"] == pytest.approx(
        math.log10(b_simple / fitted["critical_batch"])
      )
  assert 2 * len(p_values) == numbers["comparisons"] == 4 * len(numbers["tasks"])
  # The verdicts follow from the committed slopes by the rule, p-values recomputed with scipy.
  pairs = [(n, o) for n in numbers["tasks"] for o in batch_size.OPTIMIZERS]
  copies = {(n, o): dict(numbers["tasks"][n][o]) for n, o in pairs}
  for pair, fitted in copies.items():
    rule, other = batch_size.RULE[pair[1]], batch_size.OTHER_RULE[pair[1]]
    slope, se = fitted["lr_slope"], fitted["lr_slope_se"]
    assert fitted["rule_p"] == pytest.approx(2 * stats.norm.sf(abs(slope - rule) / se))
    assert fitted["other_rule_p"] == pytest.approx(2 * stats.norm.sf(abs(slope - other) / se))
  judged = batch_size.judge_rules(copies)
  for name, optimizer in pairs:
    assert numbers["tasks"][name][optimizer]["rule_verdict"] == judged[name, optimizer]
  assert judged["quadratic", "sgd"] == "refuted"  # the rate saturates above the critical batch
  # The transformer's SGD slope, 0.73 +- 0.11, is within reach of both rules.
  assert judged["lm-transformer", "sgd"] == "inconclusive"
  # The noisy quadratic's measured B_simple lands on its closed form sigma^2 tr(H) / |H e|^2.
  noise = numbers["tasks"]["quadratic"]["noise_scale"]
  assert noise["b_simple_target"] == pytest.approx(noise["exact_b_simple_target"], rel=0.25)
  for figure in summary["figures"]:
    assert (OUT / figure).stat().st_size > 1000


def test_transformer_target_lies_its_fraction_from_the_unigram_entropy_to_the_bayes_loss():
  spec = batch_size.SIZES["default"]["tasks"]["lm-transformer"]
  kind, fraction = spec["target"]
  assert kind == "chance_fraction"
  lm = tasks.get("lm-transformer", num_tokens=spec["options"]["context"], **spec["options"])
  # The unigram entropy of the val targets, recomputed from the token counts.
  val = lm.dataset.val.language.tokens("val", np.arange(lm.dataset.sizes["val"]))
  p = np.bincount(val[:, 1:].reshape(-1)) / val[:, 1:].size
  unigram = float(-np.sum(p[p > 0] * np.log(p[p > 0])))
  task = common.read_summary(OUT)["numbers"]["tasks"]["lm-transformer"]
  assert task["unigram_loss"] == pytest.approx(unigram, rel=1e-9)
  assert task["optimal_loss"] == pytest.approx(lm.optimal_loss, rel=1e-9)
  assert lm.optimal_loss < unigram
  target = unigram - fraction * (unigram - lm.optimal_loss)
  assert task["target_val_loss"] == pytest.approx(target, rel=1e-9)
