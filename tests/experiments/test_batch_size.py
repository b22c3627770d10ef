"""Batch size and the learning rate (issue 19): the fits, and the committed default-size results."""

import json
import math

import numpy as np
import pytest

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
  assert numbers["comparisons"] == len(p_values) == 2 * len(numbers["tasks"])
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
