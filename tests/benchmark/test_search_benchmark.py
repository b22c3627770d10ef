"""The time-to-the-answer benchmark of lrlab.search (``scripts/benchmark.py --search``)."""

import json
import os
import pathlib

import numpy as np
import pytest

from lrlab.benchmark import search as bench
from lrlab.benchmark import search_report

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
COMMITTED = os.path.join(ROOT, "benchmarks", "cpu-2core", "search.json")
#: The committed runs: mnist1d-mlp (both optimizers; at 1620 and at 4860 steps) and one file per
#: larger task (lm-transformer also at 432 steps and digits-cnn at 810, halving's legs alone;
#: lm-transformer with PBT's legs alone over 5 populations).
RUNS = [
  path
  for path in (
    COMMITTED,
    *(
      COMMITTED.replace(".json", f"_{t}.json")
      for t in (
        "digits-cnn",
        "lm-transformer",
        "4860",
        "lm-transformer-432",
        "lm-transformer-pbt",
        "digits-cnn-810",
      )
    ),
  )
  if os.path.exists(path)
]


def _numpy_se(x):
  x = np.asarray(x, np.float64)
  return np.sqrt(np.sum((x - x.mean()) ** 2) / (len(x) - 1)) / np.sqrt(len(x))


def test_seed_statistics_are_the_mean_se_and_paired_difference():
  rng = np.random.default_rng(1)
  grid = 0.65 + 0.01 * rng.normal(size=5)
  other = grid - 0.02 + 0.003 * rng.normal(size=5)  # correlated with the grid's seeds
  got = search_report.seed_statistics(other, grid)
  assert got["test"] == pytest.approx(np.mean(other))
  assert got["test_se"] == pytest.approx(_numpy_se(other))
  assert got["test_minus_grid"] == pytest.approx(np.mean(other - grid))
  assert got["test_minus_grid_se"] == pytest.approx(_numpy_se(other - grid))
  # pairing removes the seeds' shared noise: the unpaired SE of the difference is larger
  unpaired = np.hypot(_numpy_se(other), _numpy_se(grid))
  assert got["test_minus_grid_se"] < unpaired / 2
  same = search_report.seed_statistics(grid, grid)
  assert same["test_minus_grid"] == 0.0 and same["test_minus_grid_se"] == 0.0
  one = search_report.seed_statistics(other[:1], grid[:1])
  assert np.isnan(one["test_se"]) and np.isnan(one["test_minus_grid_se"])
  with pytest.raises(ValueError, match="grid_per_seed must be 1-D of one"):
    search_report.seed_statistics(other, grid[:4])


def _run(test_metric, per_seed):
  """A fake run of the benchmark with the given per-seed test metrics of each method."""
  methods = {}
  for name, values in per_seed.items():
    methods[name] = {"lr": 0.01, "wall_seconds": 1.0, "wall_vs_grid": 1.0, "model_steps": 10,
                     "model_steps_vs_grid": 1.0, "load_average": [1.0, 1.0],
                     "test_seeds": list(values),
                     **search_report.seed_statistics(values, per_seed["grid"])}  # fmt: skip
  return {"task": "t", "optimizer": "adam", "test_metric": test_metric, "methods": methods,
          "rank_correlation": {"1": 0.5}}  # fmt: skip


@pytest.mark.parametrize(
  "metric, shift, noise, verdict",
  [
    ("final_test_accuracy", +0.01, 0.001, "met"),  # better than the grid
    ("final_test_accuracy", -0.004, 0.001, "met"),  # 0.4 points worse
    ("final_test_accuracy", -0.03, 0.05, "within noise"),  # 3 points worse, SE 3.5
    ("final_test_accuracy", -0.03, 0.002, "missed"),
    ("final_test_loss", +0.005, 0.0005, "met"),  # 0.5% of a loss of 1 worse
    ("final_test_loss", +0.05, 0.1, "within noise"),
    ("final_test_loss", +0.05, 0.002, "missed"),
  ],
)
def test_halving_goal_judges_the_paired_difference_against_2_se(metric, shift, noise, verdict):
  grid = 1.0 + 0.01 * np.random.default_rng(2).normal(size=5)
  # per-seed differences of mean `shift` and SE 0.707 `noise` (std 1.58 over sqrt(5))
  halving = grid + shift + noise * np.array([1.0, -1.0, 2.0, -2.0, 0.0])
  goal = search_report.halving_goal(_run(metric, {"grid": grid, "halving": halving}))
  scale = 100.0 if metric.endswith("accuracy") else 100.0 / np.mean(grid)
  assert goal["difference"] == pytest.approx(scale * np.mean(halving - grid))
  assert goal["se"] == pytest.approx(scale * _numpy_se(halving - grid))
  assert goal["beyond_2se"] == (abs(goal["difference"]) > 2 * goal["se"])
  assert goal["verdict"] == verdict and goal["seeds"] == 5


@pytest.mark.parametrize(
  "metric, shift, noise, verdict",
  [
    ("final_test_accuracy", +0.01, 0.001, "met"),
    ("final_test_accuracy", -0.009, 0.001, "met"),  # 0.9 points worse: within PBT's 1 point
    ("final_test_accuracy", -0.012, 0.002, "missed"),  # 1.2 points: outside, beyond 2 SE
    ("final_test_accuracy", -0.03, 0.05, "within noise"),
    ("final_test_loss", +0.015, 0.0005, "met"),  # 1.5% of a loss of 1: within PBT's 2%
    ("final_test_loss", +0.05, 0.002, "missed"),
  ],
)
def test_pbt_goal_judges_the_best_members_own_runs_within_1_point(metric, shift, noise, verdict):
  grid = 1.0 + 0.01 * np.random.default_rng(3).normal(size=5)
  own = grid + shift + noise * np.array([1.0, -1.0, 2.0, -2.0, 0.0])
  run = _run(metric, {"grid": grid})
  run["methods"]["pbt_from_high"] = {
    "own_test_seeds": list(own),
    **{f"own_{k}": v for k, v in search_report.seed_statistics(own, grid).items()},
  }
  goal = search_report.pbt_goal(run, "pbt_from_high")
  scale = 100.0 if metric.endswith("accuracy") else 100.0 / np.mean(grid)
  assert goal["difference"] == pytest.approx(scale * np.mean(own - grid))
  assert goal["se"] == pytest.approx(scale * _numpy_se(own - grid))
  assert goal["threshold"] == (1.0 if metric.endswith("accuracy") else 2.0)
  assert goal["verdict"] == verdict and goal["seeds"] == 5


def test_the_reports_give_se_and_the_verdict_where_seeds_are_kept():
  grid = np.array([0.60, 0.62, 0.64, 0.61, 0.63])
  run = _run("final_test_accuracy", {"grid": grid, "halving": grid - 0.03})
  run["methods"]["pbt"] = {**run["methods"]["halving"], "own_test": 0.65}
  report = {"machine": "m", "k": 3, "steps": 9, "eta": 3, "retrain_seeds": 5, "runs": [run]}
  text = search_report.markdown(report)
  se = _numpy_se(grid)
  assert f"| {grid.mean():.4f} ± {se:.4f} | +0.0000 ± 0.0000 |" in text
  assert "test - grid -3.00 ± 0.00 points (paired over 5 seeds), beyond 2 SE: **missed**" in text
  table = search_report.summary_table(report)
  assert f"| ({grid.mean():.3f} ± {se:.3f}) |" in table
  assert "| -3.0 ± 0.0 points, missed |" in table
  assert f"| {100 * (0.65 - grid.mean()):+.1f} points (one run) |" in table
  # PBT over independent populations: its own runs' mean, paired difference and goal
  own = grid - np.array([0.02, 0.01, 0.03, 0.02, 0.02])
  run["methods"]["pbt_from_high"] = {
    **run["methods"]["halving"], "own_test_seeds": list(own), "own_test_timed": own[0],
    **{f"own_{k}": v for k, v in search_report.seed_statistics(own, grid).items()},
  }  # fmt: skip
  run["pbt_from_high_goal"] = search_report.pbt_goal(run, "pbt_from_high")
  text = search_report.markdown(report)
  assert (
    f"pbt_from_high: its best member's own test metric, over 5 independent populations: "
    f"{own.mean():.4f} ± {_numpy_se(own):.4f}, -0.0200 ± 0.0032 against the grid"
  ) in text
  assert "within 1.0 points of the grid's: -2.00 ± 0.32 points, beyond 2 SE: **missed**" in text
  assert "| -2.0 ± 0.3 points, missed |" in search_report.summary_table(report)


def test_a_loss_runs_table_gives_its_differences_in_percent_of_the_grids_loss():
  """A loss (linreg, quadratic, teacher-student) has no accuracy points: the table states its
  differences in the unit its goal is judged in, percent of the grid's mean loss."""
  grid = np.array([2.0, 2.1, 1.9, 2.05, 1.95])
  halving = grid + 0.1 + 0.01 * np.array([1.0, -1.0, 2.0, -2.0, 0.0])
  run = _run("final_test_loss", {"grid": grid, "halving": halving, "random": grid + 0.02})
  table = search_report.summary_table({"runs": [run]})
  goal = search_report.halving_goal(run)
  assert goal["unit"] == "% of the loss" and goal["difference"] == pytest.approx(5.0)
  se = 100 * _numpy_se(halving - grid) / grid.mean()
  assert f"| +5.0 ± {se:.1f} % of the loss, {goal['verdict']} |" in table
  assert "| +1.0 ± 0.0 % of the loss |" in table and "points" not in table


@pytest.mark.slow  # an end-to-end run, tiny
def test_a_tiny_instance_measures_every_asked_method():
  import jax

  from lrlab import tasks

  methods = ("grid", "halving", "halving_3_rungs", "optuna_batched", "pbt", "pbt_from_high")
  report = bench.run_task(
    "quadratic", "adam", k=9, steps=27, eta=3, batch_size=50, retrain_seeds=3, methods=methods
  )
  assert list(report["methods"]) == list(methods)
  methods = report["methods"]
  # each pick retrains in a sweep of its own: the same numbers as that rate retrained alone
  lr = methods["halving"]["lr"]
  alone = bench.retrain_per_seed(tasks.get("quadratic"), bench.OPTIMIZERS["adam"], lr, steps=27,
                                 eval_every=1, seeds=3, test="final_test_loss", batch_size=50,
                                 key=jax.random.key(0))  # fmt: skip
  assert methods["halving"]["test_seeds"] == alone.tolist() and np.ptp(alone) > 0
  # every rate picked (as the float32 the program reads) retrains once, for the same seeds
  assert report["retrain"]["rates"] == len({np.float32(m["lr"]) for m in methods.values()})
  assert report["retrain"]["seeds"] == [0, 1, 2]
  grid = np.array(methods["grid"]["test_seeds"])
  for m in methods.values():
    seeds = np.array(m["test_seeds"])
    assert m["test"] == pytest.approx(seeds.mean()) and m["test_se"] == pytest.approx(
      _numpy_se(seeds)
    )
    assert m["test_minus_grid"] == pytest.approx(np.mean(seeds - grid), abs=1e-12)
    assert m["test_minus_grid_se"] == pytest.approx(_numpy_se(seeds - grid), abs=1e-12)
  goal = report["halving_goal"]
  assert goal == search_report.halving_goal(report) and goal["unit"] == "% of the loss"
  page = {"machine": "m", "k": 9, "steps": 27, "eta": 3, "retrain_seeds": 3, "runs": [report]}
  assert "(paired over 3 seeds), " in search_report.markdown(page)
  assert f"**{goal['verdict']}**" in search_report.markdown(page)
  # PBT's quality is its best member's own run over 3 independent populations, paired with the
  # grid's retrains by seed; the summary quotes that, not the retrain of its final rate
  for name in ("pbt", "pbt_from_high"):
    pbt = methods[name]
    assert len(pbt["schedule"]) == 27 and len(pbt["population"]) >= 8  # 26 exploits
    own = np.array(pbt["own_test_seeds"])
    assert own.shape == (3,) and np.all(np.isfinite(own)) and np.ptp(own) > 0
    # seed 0 of the populations is the timed run: the same key, the same numbers
    assert own[0] == pbt["own_test_timed"]
    assert pbt["own_test"] == pytest.approx(own.mean())
    assert pbt["own_test_se"] == pytest.approx(_numpy_se(own))
    assert pbt["own_test_minus_grid_se"] == pytest.approx(_numpy_se(own - grid), abs=1e-12)
  assert report["pbt_from_high_goal"] == search_report.pbt_goal(report, "pbt_from_high")
  assert report["pbt_from_high_goal"]["unit"] == "% of the loss"
  pbt = methods["pbt"]
  (row,) = [r for r in search_report.summary_table({"runs": [report]}).splitlines() if "PBT (" in r]
  scale = 100 / methods["grid"]["test"]  # a loss: percent of the grid's mean test loss
  gap, se = scale * pbt["own_test_minus_grid"], scale * pbt["own_test_minus_grid_se"]
  assert row.endswith(f"| {gap:+.1f} ± {se:.1f} % of the loss |")
  assert methods["grid"]["model_steps"] == 9 * 27
  # rungs 1, 3, 9, 27: 9 members for 1 step, 3 for 2 more, 1 for the remaining 24
  assert methods["halving"]["model_steps"] == 9 * 1 + 3 * 2 + 1 * 24
  assert methods["halving"]["model_steps_vs_grid"] == pytest.approx(39 / 243)
  # 3 rungs, 3, 9, 27: 9 members for 3 steps, 3 for 6 more, 1 for the remaining 18
  assert methods["halving_3_rungs"]["rungs"] == [[3, 9, 27]]
  assert methods["halving_3_rungs"]["model_steps"] == 9 * 3 + 3 * 6 + 1 * 18
  assert report["halving_3_rungs_goal"] == search_report.halving_goal(report, "halving_3_rungs")
  for m in methods.values():
    assert 1e-4 <= m["lr"] <= 1.0 and np.isfinite(m["test"]) and m["wall_seconds"] > 0
  assert methods["grid"]["test_minus_grid"] == 0.0
  assert set(report["rank_correlation"]) == {"1", "3", "9"}
  assert -1 <= report["rank_correlation"]["9"] <= 1
  with pytest.raises(ValueError, match="retrain_seeds must be an integer >= 1; got 0"):
    bench.run_task("quadratic", "adam", k=9, steps=27, eta=3, batch_size=50, retrain_seeds=0,
                   methods=("grid",))  # fmt: skip


def test_a_warm_compile_cache_is_recorded_and_changes_no_result(tmp_path):
  """Run twice in fresh processes with JAX's persistent cache in a new folder: the first finds
  it empty and fills it, the second finds those programs (read, not compiled) and gives the
  same picks and retrained numbers to the last digit; the report says the cache was on."""
  import subprocess
  import sys

  cache = tmp_path / "jax-cache"
  env = {**os.environ, "JAX_COMPILATION_CACHE_DIR": str(cache),
         "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS": "0"}  # fmt: skip
  runs = []
  for i in range(2):
    out = tmp_path / f"run{i}"
    argv = ["--tasks", "quadratic:adam", "--methods", "grid,halving", "--k", "9", "--steps",
            "27", "--batch-size", "50", "--retrain-seeds", "2", "--out", str(out)]  # fmt: skip
    code = f"import sys; from lrlab.benchmark import search; sys.exit(search.main({argv!r}))"
    subprocess.run([sys.executable, "-c", code], env=env, cwd=ROOT, check=True,
                   capture_output=True)  # fmt: skip
    runs.append(json.loads((out / "search.json").read_text()))
    assert runs[-1]["environment"]["compile_cache"] == str(cache)
  first, second = (r["compile_cache"] for r in runs)
  assert first["programs_at_start"] == 0 and first["min_compile_time_secs"] == 0
  programs = [f for f in os.listdir(cache) if f.endswith("-cache")]
  assert second["programs_at_start"] == len(programs) > 0
  picks = [
    {m: (v["lr"], v["test_seeds"]) for m, v in r["runs"][0]["methods"].items()} for r in runs
  ]
  assert picks[0] == picks[1]
  text = (tmp_path / "run1" / "search.md").read_text()
  assert f"persistent compilation cache on ({second['programs_at_start']:,} programs" in text


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
    halving = run["methods"].get("halving")  # a run of PBT's legs alone has none
    if halving is not None:
      assert halving["model_steps"] < 0.3 * grid["model_steps"]
    if "optuna_batched" in run["methods"]:  # a run of halving's legs alone has none
      assert run["methods"]["optuna_batched"]["model_steps"] == grid["model_steps"]
    if "grid_before_halving" in run["methods"]:  # halving is timed against the grid beside it
      paired = run["methods"]["grid_before_halving"]["wall_seconds"]
      assert halving["wall_vs_grid"] == pytest.approx(halving["wall_seconds"] / paired)
    if "test_seeds" in grid:  # reports since the per-seed metrics: mean, SE, paired difference
      for m in run["methods"].values():
        seeds = np.array(m["test_seeds"])
        assert len(seeds) == report["retrain_seeds"] == len(run["retrain"]["seeds"])
        assert m["test"] == pytest.approx(seeds.mean())
        assert m["test_se"] == pytest.approx(_numpy_se(seeds))
        assert m["test_minus_grid"] == pytest.approx(np.mean(seeds - grid["test_seeds"]))
      if halving is not None:
        assert run["halving_goal"] == search_report.halving_goal(run)
    for name, m in run["methods"].items():
      if "own_test_seeds" in m:  # reports since PBT's independent populations
        own = np.array(m["own_test_seeds"])
        assert len(own) == report["retrain_seeds"] and own[0] == m["own_test_timed"]
        assert m["own_test"] == pytest.approx(own.mean())
        assert m["own_test_minus_grid"] == pytest.approx(np.mean(own - grid["test_seeds"]))
        if name.startswith("pbt_from"):
          assert run[f"{name}_goal"] == search_report.pbt_goal(run, name)


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
def test_study_speed_script_runs_a_tiny_instance(monkeypatch, tmp_path):
  import importlib.util

  monkeypatch.setenv("XLA_FLAGS", os.environ.get("XLA_FLAGS", ""))  # main sets a device count

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
  grid, warm = np.array(report["grid_test_seeds"]), np.array(report["warmup_grid_test_seeds"])
  assert len(grid) == len(warm) == len(report["seeds"]) >= 5
  assert report["grid_test_se"] == pytest.approx(_numpy_se(grid))
  for row in report["rows"]:
    own = np.array(row["own_test_seeds"])
    assert len(own) == len(grid) and row["own_test"] == pytest.approx(own.mean())
    assert row["own_test_se"] == pytest.approx(_numpy_se(own))
    assert row["minus_grid_points"] == pytest.approx(100 * np.mean(own - grid))
    assert row["minus_grid_points_se"] == pytest.approx(100 * _numpy_se(own - grid))
    assert row["minus_warmup_grid_points"] == pytest.approx(100 * np.mean(own - warm))
    assert row["minus_warmup_grid_points_se"] == pytest.approx(100 * _numpy_se(own - warm))


@pytest.mark.parametrize("name", ["search_halving_budget", "search_halving_budget_digits-cnn"])
def test_the_committed_halving_budget_run_is_what_benchmarks_md_says(name):
  """The script's table, made from its committed JSON, is in BENCHMARKS.md, and each ratio is
  the median halving wall-clock over the median grid wall-clock of its rows."""
  path = os.path.join(ROOT, "benchmarks", "cpu-2core", f"{name}.json")
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


def test_the_compile_floors_benchmarks_md_quotes_follow_from_the_committed_run():
  """Compiling bounds two goals at 1620 steps: halving's wall over the adjacent grid's is at
  least its compile seconds over that grid's wall (> 40%), and run_study's speedup over the
  loop is at most the loop's wall over the grid's compile seconds (at most 5x); BENCHMARKS.md quotes
  both, per optimizer, from the committed mnist1d-mlp run."""
  with open(RUNS[0], encoding="utf-8") as f:
    runs = {r["optimizer"]: r["methods"] for r in json.load(f)["runs"]}
  with open(os.path.join(ROOT, "BENCHMARKS.md"), encoding="utf-8") as f:
    text = " ".join(f.read().split())
  floor = {o: m["halving"]["compile_seconds"] / m["grid_before_halving"]["wall_seconds"]
           for o, m in runs.items()}  # fmt: skip
  bound = {o: m["optuna_loop"]["wall_seconds"] / m["grid"]["compile_seconds"]
           for o, m in runs.items()}  # fmt: skip
  assert min(floor.values()) > 0.40 and max(bound.values()) <= 5.0
  adam, sgd = "adam", "sgd-momentum"
  assert f"{100 * floor[adam]:.1f}% (Adam) and {100 * floor[sgd]:.1f}% (SGD momentum)" in text
  assert f"only {bound[adam]:.2f}x and {bound[sgd]:.2f}x the grid's compile seconds" in text


def test_goal_verdict_is_met_within_the_threshold_and_otherwise_judged_against_2_se():
  assert search_report.goal_verdict(0.9, 0.1, 1.0) == (True, "met")
  assert search_report.goal_verdict(-3.0, 0.5, 1.0) == (True, "met")  # better than the reference
  assert search_report.goal_verdict(1.5, 1.0, 1.0) == (False, "within noise")
  assert search_report.goal_verdict(1.5, 0.5, 1.0) == (True, "missed")
  assert search_report.goal_verdict(1.5, float("nan"), 1.0) == (None, "missed")


def test_pbt_settings_variants_change_one_setting_each():
  script = _script("search_pbt_settings")
  base = {"interval": 60, "perturb": (0.5, 2.0), "metric": "val_accuracy"}
  changed = {name: {k for k in base if change(base)[k] != base[k]}
             for name, change in script.VARIANTS.items()}  # fmt: skip
  assert changed == {"the benchmark's": set(), "perturb 0.8/1.25": {"perturb"},
                     "interval x3": {"interval"}, "rank by val_loss": {"metric"},
                     "resample 1/4 from the grid": set(), "16 members": set(),
                     "binary tournament": set()}  # fmt: skip
  assert script.VARIANTS["16 members"](base) == {**base, "members": 16}
  assert script.VARIANTS["binary tournament"](base) == {**base, "exploit": "tournament"}
  assert script.VARIANTS["interval x3"](base)["interval"] == 180
  resample = script.VARIANTS["resample 1/4 from the grid"](base)
  assert resample["resample_probability"] == 0.25
  from lrlab import sweep

  np.testing.assert_array_equal(resample["resample"]["lr"], sweep.log_grid(*bench.LR_RANGE, 27))


def test_the_committed_pbt_settings_run_is_what_benchmarks_md_says():
  """The table made from the committed JSON is in BENCHMARKS.md; each cell's difference and
  verdict follow from its seeds; the benchmark's own settings reproduce the search benchmark's
  PBT rows (the same populations, seeds and picks) to the last digit."""
  path = os.path.join(ROOT, "benchmarks", "cpu-2core", "search_pbt_settings.json")
  with open(path, encoding="utf-8") as f:
    report = json.load(f)
  with open(os.path.join(ROOT, "BENCHMARKS.md"), encoding="utf-8") as f:
    assert _script("search_pbt_settings").table(report) in f.read()
  with open(COMMITTED, encoding="utf-8") as f:
    bench_runs = {r["optimizer"]: r["methods"] for r in json.load(f)["runs"]}
  names = {"grid": "pbt", "low": "pbt_from_low", "high": "pbt_from_high"}
  for optimizer, lr in report["grid_lr"].items():
    assert lr == bench_runs[optimizer]["grid"]["lr"]
    assert report["grid_test_seeds"][optimizer] == bench_runs[optimizer]["grid"]["test_seeds"]
  for cell in report["cells"]:
    own = np.array(cell["own_test_seeds"])
    grid = np.array(report["grid_test_seeds"][cell["optimizer"]])
    assert len(own) == len(grid) == len(report["seeds"]) >= 5
    assert cell["minus_grid_points"] == pytest.approx(100 * np.mean(own - grid))
    assert cell["minus_grid_points_se"] == pytest.approx(100 * _numpy_se(own - grid))
    shortfall, se = -cell["minus_grid_points"], cell["minus_grid_points_se"]
    assert cell["verdict"] == search_report.goal_verdict(shortfall, se, 1.0)[1]
    if cell["variant"] == "the benchmark's":
      row = bench_runs[cell["optimizer"]][names[cell["start"]]]
      assert cell["own_test_seeds"] == row["own_test_seeds"]
      assert cell["population"] == pytest.approx(row["population"])


def test_the_pbt_selection_table_counts_the_seeds_it_ran():
  """``--seeds 2`` printed a table headed '(5 seeds)', the default's count."""
  path = os.path.join(ROOT, "benchmarks", "cpu-2core", "search_pbt_selection.json")
  with open(path, encoding="utf-8") as f:
    report = json.load(f)
  report["seeds"] = [0, 1]
  header = _script("search_pbt_selection").table(report).splitlines()[0]
  assert "halved - doubled (2 seeds)" in header and "5 seeds" not in header


def test_the_committed_pbt_selection_run_is_what_benchmarks_md_says():
  """The table from the committed JSON is in BENCHMARKS.md; each difference is the mean over
  populations of the halved minus the doubled children's top-quarter share, with its SE; each
  run is the search benchmark's own PBT (seed 0's answer is that row's rate)."""
  path = os.path.join(ROOT, "benchmarks", "cpu-2core", "search_pbt_selection.json")
  with open(path, encoding="utf-8") as f:
    report = json.load(f)
  with open(os.path.join(ROOT, "BENCHMARKS.md"), encoding="utf-8") as f:
    assert _script("search_pbt_selection").table(report) in f.read()
  benchmark = {}
  for name, steps in (("search.json", 1620), ("search_4860.json", 4860)):
    with open(os.path.join(ROOT, "benchmarks", "cpu-2core", name), encoding="utf-8") as f:
      for run in json.load(f)["runs"]:
        benchmark[run["optimizer"], steps] = run["methods"]["pbt"]["lr"]
  for run in report["runs"]:
    shares = {f: np.array(v) for f, v in run["top_share_by_seed"].items()}
    assert len(shares["0.5"]) == len(shares["2.0"]) == len(report["seeds"]) >= 5
    difference = shares["0.5"] - shares["2.0"]
    assert run["top_difference"] == pytest.approx(difference.mean())
    assert run["top_difference_se"] == pytest.approx(_numpy_se(difference))
    for factor in ("0.5", "2.0"):
      counted = run["factors"][factor]
      assert 0 <= counted["top"] + counted["bottom"] <= 1 and counted["children"] > 0
    # two replaced per exploit (a quarter of 9), each counted at the next of its 25 exploits
    total = sum(run["factors"][f]["children"] for f in ("0.5", "2.0"))
    assert total == len(report["seeds"]) * run["quarter"] * (run["steps"] // run["interval"] - 2)
    assert run["final_lr"] == pytest.approx(benchmark[run["optimizer"], run["steps"]])


def test_pbt_selection_counts_each_child_at_the_next_exploit():
  """On a small PBT (the quadratic, 2 seeds, 8 members, 4 exploits): every member replaced at
  exploits 0-2 is counted once, with the factor its rate was perturbed by and its place in an
  independent ranking (NumPy's argsort of the validation loss) at the next exploit."""
  import jax

  from lrlab import optimizers, search, tasks

  result = search.pbt(tasks.get("quadratic"), lambda hp: optimizers.sgd(hp["lr"]),
                      {"lr": np.geomspace(0.01, 0.8, 8)}, steps=40, interval=8, eval_every=4,
                      perturb=(0.5, 2.0), seeds=2, key=jax.random.key(0))  # fmt: skip
  found = _script("search_pbt_selection").children(result)
  for s, seed in enumerate(found):
    expected = []
    for i in range(1, 4):
      order = list(np.argsort(result.sweep.history.val_loss[s, :, result.exploit_steps[i] // 4],
                              kind="stable"))  # fmt: skip
      for k in np.flatnonzero(result.lineage[s, :, i - 1] != np.arange(8)):
        ratio = (
          result.schedule["lr"][s, k, i]
          / result.schedule["lr"][s, result.lineage[s, k, i - 1], i - 1]
        )
        expected.append((float(round(ratio, 6)), order.index(k)))
    assert seed == expected and len(seed) == 2 * 3  # 2 replaced at each of 3 exploits


def test_the_tournaments_paired_changes_quoted_are_the_committed_runs():
  """BENCHMARKS.md's paired changes of binary tournament against the benchmark's settings, seed
  by seed, follow from the committed cells; none 10x off is beyond 2 SE."""
  path = os.path.join(ROOT, "benchmarks", "cpu-2core", "search_pbt_settings.json")
  with open(path, encoding="utf-8") as f:
    cells = {(c["variant"], c["optimizer"], c["start"]): np.array(c["own_test_seeds"])
             for c in json.load(f)["cells"]}  # fmt: skip
  with open(os.path.join(ROOT, "BENCHMARKS.md"), encoding="utf-8") as f:
    text = " ".join(f.read().split())

  def paired(optimizer, start):
    d = 100 * (
      cells["binary tournament", optimizer, start] - cells["the benchmark's", optimizer, start]
    )
    return np.mean(d), _numpy_se(d)

  low, grid = paired("adam", "low"), paired("sgd-momentum", "grid")
  assert f"its change there, {low[0]:.1f} ± {low[1]:.1f}, is just within 2 SE" in text
  assert f"SGD momentum from the grid's thirds ({grid[0]:+.1f} ± {grid[1]:.1f} paired)" in text
  assert abs(grid[0]) > 2 * grid[1]
  for optimizer in ("adam", "sgd-momentum"):
    for start in ("low", "high"):
      mean, se = paired(optimizer, start)
      assert abs(mean) <= 2 * se


@pytest.mark.parametrize(
  ("args", "message"),
  [
    (["--tasks", "mnist1d-mlp:adam,mnist1d-mlp:sgd"], "got 'mnist1d-mlp:sgd'"),
    (["--tasks", "mnist1d-mpl:adam"], "got 'mnist1d-mpl:adam'"),
    (["--steps", "100"], "--steps must be a multiple of eta**3 = 27; got 100"),
    (["--eta", "0"], "argument --eta: must be an integer >= 2; got '0'"),
    (["--retrain-seeds", "0"], "argument --retrain-seeds: must be a positive integer"),
  ],
)
def test_bad_flags_are_one_line_before_any_task_trains(monkeypatch, capsys, args, message):
  trained = []
  monkeypatch.setattr(bench, "run_task", lambda *a, **kw: trained.append(a) or {})
  with pytest.raises(SystemExit) as exit_:
    bench.main(["--search", *args])
  assert exit_.value.code == 2 and trained == []
  (line,) = capsys.readouterr().err.strip().splitlines()
  assert message in line


def test_the_warm_cache_runs_are_what_benchmarks_md_says():
  """Both runs found the cache filled, picked and retrained exactly as the cold run, and the
  ratios BENCHMARKS.md quotes are theirs."""
  read = lambda path: pathlib.Path(path).read_text(encoding="utf-8")
  cold = json.loads(read(COMMITTED))
  text = " ".join(read(os.path.join(ROOT, "BENCHMARKS.md")).split())
  section = text[text.index("**With the programs already compiled") :]
  section = section[: section.index("- **PBT from rates all 10x off")]
  for name in ("search_warm_cache", "search_warm_cache_repeat"):
    warm = json.loads(read(COMMITTED.replace("search", name)))
    assert warm["compile_cache"]["programs_at_start"] == 58
    assert warm["compile_cache"]["min_compile_time_secs"] == 0
    assert f"[`{name}.md`](benchmarks/cpu-2core/{name}.md)" in section
    for run, before in zip(warm["runs"], cold["runs"], strict=True):
      for method, m in run["methods"].items():
        assert (m["lr"], m["test_seeds"]) == (
          before["methods"][method]["lr"],
          before["methods"][method]["test_seeds"],
        )
        if "compile_seconds" in m:
          assert 0.4 <= round(m["compile_seconds"], 1) <= 0.8
    halving = [r["methods"]["halving"] for r in warm["runs"]]
    quoted = " and ".join(f"{m['wall_vs_grid']:.0%}" for m in halving)
    assert f"**{quoted}**" in section
    loop = [r["methods"]["optuna_loop"]["wall_seconds"] for r in warm["runs"]]
    batched = [r["methods"]["optuna_batched"]["wall_seconds"] for r in warm["runs"]]
    ratios = " and ".join(f"{a / b:.2f}x" for a, b in zip(loop, batched, strict=True))
    assert ratios in section
