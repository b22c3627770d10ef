"""Gradients across depth (claim 10), issue 19: the He control, shrinks vs vanishes, results."""

import math

import jax
import numpy as np
import pytest

from experiments import _gradient_depth_stats as stats
from experiments import common, gradient_depth
from lrlab import analysis, tasks

OUT = common.RESULTS / "gradient_depth"


def test_he_init_is_lecun_times_sqrt2_on_the_hidden_layers():
  task = tasks.get("digits-mlp", hidden=(256, 256))
  lecun, _ = task.init(jax.random.key(3))
  he, _ = gradient_depth.with_init(task, "he").init(jax.random.key(3))
  for name in ("dense_0", "dense_1"):
    np.testing.assert_allclose(he[name]["weight"], np.sqrt(2) * lecun[name]["weight"], rtol=1e-6)
  np.testing.assert_array_equal(he["head"]["weight"], lecun["head"]["weight"])
  # He et al. 2015: variance 2 / fan_in (fan_in 256 for the second hidden layer).
  assert float(np.var(he["dense_1"]["weight"])) == pytest.approx(2 / 256, rel=0.05)
  with pytest.raises(ValueError, match="init must be"):
    gradient_depth.with_init(task, "xavier")


@pytest.mark.parametrize(
  ("decades_per_layer", "expected"), [(0.0, "flat"), (0.1, "shrinks"), (0.5, "vanishes")]
)
def test_shrinks_and_vanishes_are_told_apart(decades_per_layer, expected):
  layers = 9  # 8 hidden layers and the head
  noise = np.random.default_rng(0).normal(0, 0.01, size=(5, layers))
  logs = decades_per_layer * np.arange(layers) + noise  # rising toward the output
  found = stats.gradients(10**logs)
  decay = logs[:, -1] - logs[:, 0]
  assert found["layer_decay_decades"] == pytest.approx(decay.mean())
  assert found["layer_decay_se"] == pytest.approx(decay.std(ddof=1) / math.sqrt(5))
  assert found["slope_decades_per_layer"] == pytest.approx(decades_per_layer, abs=0.01)
  assert found["kind_across_layers"] == expected
  assert stats.kind(-3.0, 0.1) == "explodes" and stats.kind(-1.0, 0.1) == "grows"


def test_committed_summary_follows_from_the_saved_results():
  summary = common.read_summary(OUT)
  numbers = summary["numbers"]
  assert summary["size"] == "default" and numbers["seeds"] >= 5
  assert numbers["inits"] == ["lecun", "he"] and max(numbers["depths"]) >= 16
  for init in numbers["inits"]:
    for depth in numbers["depths"]:
      with np.load(OUT / init / f"depth{depth}" / "sgd-probe.npz") as arrays:
        norms = arrays["init_norms"]  # (seeds, layers): input layer first, head last
      assert norms.shape == (numbers["seeds"], depth + 1)
      decay = np.log10(norms[:, -1] / norms[:, 0])
      found = numbers["gradients"][init][f"depth{depth}"]
      assert found["layer_decay_decades"] == pytest.approx(decay.mean(), rel=1e-5)
      assert found["layer_decay_se"] == pytest.approx(
        decay.std(ddof=1) / math.sqrt(decay.size), rel=1e-5
      )
  # Holm over every comparison, and the verdicts at the 2-SE level.
  flat = [t for group in numbers["tests"].values() for t in group.values()]
  assert numbers["comparisons"] == len(flat)
  np.testing.assert_allclose([t["p_holm"] for t in flat], analysis.holm([t["p"] for t in flat]))
  for t in flat:
    significant = t["p_holm"] <= gradient_depth.ALPHA
    expected = ("supported" if t["effect"] > 0 else "refuted") if significant else "inconclusive"
    assert t["verdict"] == expected
  for name in ("gradient_norms.png", "usable_ranges.png", "gradient_norms_during_training.png"):
    assert (OUT / name).stat().st_size > 1000
