"""The time-to-the-answer benchmark of lrlab.search (``scripts/benchmark.py --search``)."""

import json
import os

import numpy as np
import pytest
import scipy.stats

from lrlab.benchmark import search as bench
from lrlab.benchmark import search_report

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
COMMITTED = os.path.join(ROOT, "benchmarks", "cpu-2core", "search.json")
#: The committed runs: mnist1d-mlp (both optimizers) and one file per larger task.
RUNS = [
  path
  for path in (
    COMMITTED,
    *(COMMITTED.replace(".json", f"_{t}.json") for t in ("digits-cnn", "lm-transformer")),
  )
  if os.path.exists(path)
]


def test_spearman_is_scipys():
  rng = np.random.default_rng(0)
  a, b = rng.normal(size=30), rng.normal(size=30)
  assert bench.spearman(a, b) == pytest.approx(scipy.stats.spearmanr(a, b).statistic)
  ties = np.round(b, 0)  # many ties: averaged ranks, as scipy's
  assert bench.spearman(a, ties) == pytest.approx(scipy.stats.spearmanr(a, ties).statistic)
  assert bench.spearman(a, 2 * a + 1) == pytest.approx(1.0)
  assert np.isnan(bench.spearman(np.ones(5), a[:5]))


@pytest.mark.slow  # an end-to-end run, tiny
def test_a_tiny_instance_measures_every_asked_method():
  import jax

  from lrlab import tasks

  methods = ("grid", "halving", "optuna_batched", "pbt")
  report = bench.run_task(
    "quadratic", "adam", k=9, steps=27, eta=3, batch_size=50, retrain_seeds=1, methods=methods
  )
  methods = report["methods"]
  assert list(methods) == ["grid", "halving", "optuna_batched", "pbt"]
  # each pick retrains in a sweep of its own: the same number as that rate retrained alone
  lr = methods["halving"]["lr"]
  alone = bench.retrain(tasks.get("quadratic"), bench.OPTIMIZERS["adam"], lr, steps=27,
                        eval_every=1, seeds=1, test="final_test_loss", batch_size=50,
                        key=jax.random.key(0))  # fmt: skip
  assert methods["halving"]["test"] == alone
  # PBT's quality is its best member's own run, and the summary quotes that, not the retrain
  pbt = methods["pbt"]
  assert np.isfinite(pbt["own_test"]) and len(pbt["schedule"]) == 27  # 26 exploits
  (row,) = [r for r in search_report.summary_table({"runs": [report]}).splitlines() if "PBT (" in r]
  gap = 100 * (pbt["own_test"] - methods["grid"]["test"])
  assert row.endswith(f"| {gap:+.1f} points |")
  assert methods["grid"]["model_steps"] == 9 * 27
  # rungs 1, 3, 9, 27: 9 members for 1 step, 3 for 2 more, 1 for the remaining 24
  assert methods["halving"]["model_steps"] == 9 * 1 + 3 * 2 + 1 * 24
  assert methods["halving"]["model_steps_vs_grid"] == pytest.approx(39 / 243)
  for m in methods.values():
    assert 1e-4 <= m["lr"] <= 1.0 and np.isfinite(m["test"]) and m["wall_seconds"] > 0
  assert methods["grid"]["test_minus_grid"] == 0.0
  assert set(report["rank_correlation"]) == {"1", "3", "9"}
  assert -1 <= report["rank_correlation"]["9"] <= 1


@pytest.mark.parametrize("path", RUNS, ids=os.path.basename)
def test_the_committed_measurement_is_consistent(path):
  """The committed numbers are what the markdown beside them says, and the model-steps of the
  search methods follow from their rules (a fraction of the grid's)."""
  with open(path, encoding="utf-8") as f:
    report = json.load(f)
  with open(path.replace(".json", ".md"), encoding="utf-8") as f:
    assert f.read().strip() == search_report.markdown(report).strip()
  for run in report["runs"]:
    grid = run["methods"]["grid"]
    assert grid["model_steps"] == run["k"] * run["steps"]
    halving = run["methods"]["halving"]
    assert halving["model_steps"] < 0.3 * grid["model_steps"]
    assert run["methods"]["optuna_batched"]["model_steps"] == grid["model_steps"]
    if "grid_before_halving" in run["methods"]:  # halving is timed against the grid beside it
      paired = run["methods"]["grid_before_halving"]["wall_seconds"]
      assert halving["wall_vs_grid"] == pytest.approx(halving["wall_seconds"] / paired)


@pytest.mark.parametrize("path", RUNS, ids=os.path.basename)
def test_benchmarks_md_quotes_the_committed_measurement(path):
  with open(path, encoding="utf-8") as f:
    report = json.load(f)
  with open(os.path.join(ROOT, "BENCHMARKS.md"), encoding="utf-8") as f:
    assert search_report.summary_table(report) in f.read()


STUDY = os.path.join(ROOT, "benchmarks", "cpu-2core", "search_study.json")


@pytest.mark.skipif(not os.path.exists(STUDY), reason="no committed measurement")
def test_the_committed_study_speed_is_what_benchmarks_md_says():
  """scripts/search_study_speed.py's medians follow from its rows, and BENCHMARKS.md quotes
  the loop's median over each batched leg's."""
  with open(STUDY, encoding="utf-8") as f:
    report = json.load(f)
  with open(os.path.join(ROOT, "BENCHMARKS.md"), encoding="utf-8") as f:
    text = " ".join(f.read().split())
  for leg, seconds in report["median_seconds"].items():
    walls = [r["wall_seconds"] for r in report["rows"] if r["leg"] == leg]
    assert len(walls) == report["repeats"] and seconds == pytest.approx(np.median(walls))
  for leg, ratio in report["loop_over"].items():
    assert ratio == pytest.approx(report["median_seconds"]["loop"] / report["median_seconds"][leg])
    assert f"{ratio:.2f}x" in text


@pytest.mark.slow  # four tiny legs on mnist1d-mlp
def test_study_speed_script_runs_a_tiny_instance(tmp_path):
  import importlib.util

  spec = importlib.util.spec_from_file_location(
    "search_study_speed", os.path.join(ROOT, "scripts", "search_study_speed.py")
  )
  script = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(script)
  out = tmp_path / "study.json"
  assert script.main(["--k", "9", "--steps", "60", "--repeats", "1", "--out", str(out)]) == 0
  report = json.loads(out.read_text())
  # with K = 9 the two run_study legs are one
  assert [r["leg"] for r in report["rows"]] == ["loop", "run_study_9", "sweep_9"]
  assert report["loop_over"]["sweep_9"] > 0 and report["rows"][2]["compile_seconds"] > 0


def test_the_halving_repeat_is_what_benchmarks_md_says():
  path = os.path.join(ROOT, "benchmarks", "cpu-2core", "search_halving_repeat.json")
  with open(path, encoding="utf-8") as f:
    report = json.load(f)
  with open(path.replace(".json", ".md"), encoding="utf-8") as f:
    assert f.read().strip() == search_report.markdown(report).strip()
  with open(os.path.join(ROOT, "BENCHMARKS.md"), encoding="utf-8") as f:
    text = " ".join(f.read().split())
  ratios = [run["methods"]["halving"]["wall_vs_grid"] for run in report["runs"]]
  assert f"{ratios[0]:.0%} and {ratios[1]:.0%} in a repeat" in text
  for run in report["runs"]:
    paired = run["methods"]["grid_before_halving"]["wall_seconds"]
    assert run["methods"]["halving"]["wall_vs_grid"] == pytest.approx(
      run["methods"]["halving"]["wall_seconds"] / paired
    )


def _script(name):
  import importlib.util

  spec = importlib.util.spec_from_file_location(name, os.path.join(ROOT, "scripts", f"{name}.py"))
  script = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(script)
  return script


def test_pbt_warmup_script_warms_the_rate_up_linearly():
  """With a constant gradient Adam's bias-corrected step is ``lr_t * g / (|g| + eps)``, so the
  update at step ``t`` is ``-lr * min(1, (t + 1) / W) * sign(g)`` (``W = 0``: ``-lr sign(g)``)."""
  import jax.numpy as jnp

  script = _script("search_pbt_warmup")
  g = jnp.array([1.0, -2.0, 0.5])
  for warmup in (0, 4):
    tx = script.warmup_adam(warmup)({"lr": jnp.float32(0.1)})
    state = tx.init(jnp.zeros(3))
    for t in range(6):
      updates, state = tx.update(g, state)
      factor = 1.0 if warmup == 0 else min(1.0, (t + 1) / warmup)
      np.testing.assert_allclose(updates, -0.1 * factor * np.sign(g), rtol=1e-5)


def test_the_committed_warmup_run_is_what_benchmarks_md_says():
  """The script's table, made from its committed JSON, is in BENCHMARKS.md, and each gap is
  the best member's own run minus the grid's rate retrained."""
  path = os.path.join(ROOT, "benchmarks", "cpu-2core", "search_pbt_warmup.json")
  with open(path, encoding="utf-8") as f:
    report = json.load(f)
  with open(os.path.join(ROOT, "BENCHMARKS.md"), encoding="utf-8") as f:
    assert _script("search_pbt_warmup").table(report) in f.read()
  for row in report["rows"]:
    assert row["minus_grid_points"] == pytest.approx(100 * (row["own_test"] - report["grid_test"]))


def test_the_committed_halving_budget_run_is_what_benchmarks_md_says():
  """The script's table, made from its committed JSON, is in BENCHMARKS.md, and each ratio is
  the median halving wall-clock over the median grid wall-clock of its rows."""
  path = os.path.join(ROOT, "benchmarks", "cpu-2core", "search_halving_budget.json")
  with open(path, encoding="utf-8") as f:
    report = json.load(f)
  with open(os.path.join(ROOT, "BENCHMARKS.md"), encoding="utf-8") as f:
    assert _script("search_halving_budget").table(report) in f.read()
  for key, ratio in report["halving_over_grid"].items():
    optimizer, steps = key.split("/")
    walls = {
      leg: [r["wall_seconds"] for r in report["rows"]
            if (r["optimizer"], str(r["steps"]), r["leg"]) == (optimizer, steps, leg)]
      for leg in ("grid", "halving")
    }  # fmt: skip
    assert len(walls["grid"]) == len(walls["halving"]) == report["repeats"]
    assert ratio == pytest.approx(np.median(walls["halving"]) / np.median(walls["grid"]))
