"""lrlab.benchmark at a toy size: the report's shape and its arithmetic, never its timings."""

import json
import math
import pathlib

import pytest

from lrlab import benchmark

ROOT = pathlib.Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def report():
  config = benchmark.Config(
    ks=(2,),
    steps=4,
    legs=("sweep", "sequential", "torch", "torch_func"),
    repeats=1,
    budget_s=0.0,
    ceiling_sizes=(64,),
    chunk_size=None,  # the heuristic: "auto" would remember its probe in ~/.cache/lrlab
  )
  return benchmark.run_benchmark(config, isolate=False, log=lambda line: None)


def test_flops_are_counted_by_hand():
  sizes = {"train": 10, "val": 2, "test": 3}
  flops = benchmark.analytic_flops(100, 5, sizes)
  macs = 40 * 100 + 100 * 100 + 100 * 10
  assert flops["train_step"] == 2 * 100 * (3 * macs - 40 * 100)  # 8.2 MFLOP
  assert flops["evaluation_per_run"] == 2 * macs * (10 + 2 * (2 + 3))
  assert flops["per_model_step"] == flops["train_step"] + flops["evaluation_per_run"] / 5


@pytest.mark.slow  # a subprocess or an end-to-end run
def test_report_has_every_leg_with_sane_values(report):
  assert set(report) >= {
    "config",
    "environment",
    "ceiling",
    "flops",
    "rows",
    "ratios",
    "targets",
    "busy",
  }
  assert report["ceiling"]["ceiling"] > 0
  assert report["ceiling"]["ceiling"] == max(
    report["ceiling"]["at_start"], report["ceiling"]["at_end"]
  )
  assert [r["leg"] for r in report["rows"]] == ["sweep", "sequential", "torch", "torch_func"]
  for row in report["rows"]:
    if "skipped" in row:  # PyTorch is optional
      assert row["leg"] in ("torch", "torch_func")
      continue
    assert row["k"] == 2 and row["model_steps"] == 2 * 4
    assert row["steady_s"] > 0 and row["model_steps_per_s"] > 0 and row["gflops_per_s"] > 0
    assert math.isclose(row["model_steps_per_s"], row["model_steps"] / row["steady_s"])
    assert math.isclose(
      row["fraction_of_ceiling"], row["gflops_per_s"] / report["ceiling"]["ceiling"]
    )
    # Each leg is framed by its own ceilings; its fraction is against the better of the two.
    assert row["ceiling_next"] == max(row["ceiling_before"], row["ceiling_after"]) > 0
    assert math.isclose(row["fraction_of_ceiling_next"], row["gflops_per_s"] / row["ceiling_next"])
    assert row["recompiles"] >= 0 and row["devices_used"] >= 1
    assert len(row["final_val_loss"]) == 2
    # Same members, same start, same minibatches: every leg trains the same models.
    assert row["max_abs_diff"] < 1e-4
    if not row["leg"].startswith("torch"):
      assert row["compile_s"] > 0


@pytest.mark.slow  # a subprocess or an end-to-end run
def test_ratios_are_quotients_of_the_reported_rates(report):
  rate = {r["leg"]: r["model_steps_per_s"] for r in report["rows"] if "model_steps_per_s" in r}
  (entry,) = report["ratios"]
  assert entry["k"] == 2
  for leg in ("sequential", "torch", "torch_func"):
    if leg in rate:
      assert math.isclose(entry[f"sweep_over_{leg}"], rate["sweep"] / rate[leg])
  torch_rates = [rate[leg] for leg in ("torch", "torch_func") if leg in rate]
  if torch_rates:
    assert math.isclose(entry["sweep_over_best_torch"], rate["sweep"] / max(torch_rates))
    assert entry["best_torch"] in ("torch", "torch_func")
  targets = report["targets"]
  assert targets["k"] == 2 and not targets["at_target_k"]
  measured = targets["sweep_over_sequential"]
  assert measured["measured"] == entry["sweep_over_sequential"]
  assert measured["met"] == (measured["measured"] >= measured["target"])


@pytest.mark.slow  # a subprocess or an end-to-end run
def test_writes_json_markdown_and_plot(report, tmp_path):
  paths = benchmark.write_report(report, str(tmp_path))
  assert json.loads(pathlib.Path(paths["report.json"]).read_text())["rows"]
  text = pathlib.Path(paths["report.md"]).read_text()
  assert "| K | leg |" in text and "sweep_over_sequential" in text
  sweep = report["rows"][0]
  assert f"| {sweep['fraction_of_ceiling_next']:.0%} |" in text and "| ceiling next |" in text
  assert pathlib.Path(paths["throughput.png"]).stat().st_size > 0


def test_each_leg_is_judged_against_the_ceiling_measured_next_to_it():
  """summarize divides each row's GFLOP/s by the run's ceiling and by its own framing ceiling;
  the K=512 target uses the sweep's own; a row without framing ceilings has no such fraction."""
  rows = [
    {"leg": "sweep", "k": 512, "model_steps_per_s": 100.0, "gflops_per_s": 60.0,
     "ceiling_before": 100.0, "ceiling_after": 80.0, "ceiling_next": 100.0},
    {"leg": "torch_func", "k": 512, "model_steps_per_s": 40.0, "gflops_per_s": 24.0,
     "ceiling_before": 50.0, "ceiling_after": 60.0, "ceiling_next": 60.0},
    {"leg": "torch", "k": 512, "model_steps_per_s": 10.0, "gflops_per_s": 6.0},
  ]  # fmt: skip
  ratios, targets = benchmark.summarize(rows, 200.0)
  assert [r["fraction_of_ceiling"] for r in rows] == [0.3, 0.12, 0.03]
  assert [r.get("fraction_of_ceiling_next") for r in rows] == [0.6, 0.4, None]
  assert targets["fraction_of_ceiling"] == {"target": 0.6, "measured": 0.3, "met": False}
  assert targets["fraction_of_ceiling_next"] == {"target": 0.55, "measured": 0.6, "met": True}
  assert ratios[0]["sweep_over_best_torch"] == 2.5 and ratios[0]["best_torch"] == "torch_func"


def test_the_step_matmul_bound_trains_a_linear_network_by_hand():
  """The bound's step is exact SGD on 0.5 |x W1^T W2^T W3^T|^2, member by member (checked by
  autodiff), with each weight stored (out, in) as lrlab's MLP stores it."""
  import jax
  import jax.numpy as jnp
  import numpy as np

  keys = jax.random.split(jax.random.key(1), 4)
  x = jax.random.normal(keys[0], (5, 40))
  layers = zip(keys[1:], benchmark.LAYERS, strict=True)
  weights = tuple(0.1 * jax.random.normal(k, (3, o, i)) for k, (i, o) in layers)
  stepped = benchmark.linear_sgd_step(x, weights, 0.5)
  loss = lambda ws: 0.5 * jnp.sum((x @ ws[0].T @ ws[1].T @ ws[2].T) ** 2)
  for k in range(3):
    member = tuple(w[k] for w in weights)
    grads = jax.grad(loss)(member)
    for new, w, g in zip(stepped, member, grads, strict=True):
      np.testing.assert_allclose(new[k], w - 0.5 * g, rtol=1e-5, atol=1e-6)


@pytest.mark.slow  # a subprocess or an end-to-end run
def test_the_report_times_the_mlp_product_in_every_operand_layout(report):
  ceiling = report["ceiling"]
  layouts = ceiling["mlp_shaped_layouts"]
  assert list(layouts) == list(benchmark.OPERAND_LAYOUTS)
  assert all(v > 0 and math.isfinite(v) for v in layouts.values())
  assert "A^T B" in benchmark.markdown(report)
  # The forms are the one product with its operands transposed: all give the same numbers.
  import jax.numpy as jnp
  import numpy as np

  a, b = np.arange(6.0).reshape(1, 2, 3), np.arange(12.0).reshape(1, 3, 4)
  stored = {"A B": (a, b), "A^T B": (a.transpose(0, 2, 1), b)}
  stored |= {
    "A B^T": (a, b.transpose(0, 2, 1)),
    "A^T B^T": (a.transpose(0, 2, 1), b.transpose(0, 2, 1)),
  }
  for name, form in benchmark.OPERAND_LAYOUTS.items():
    np.testing.assert_array_equal(jnp.einsum(form, *stored[name]), a @ b)


@pytest.mark.slow  # a subprocess or an end-to-end run
def test_the_report_builds_the_step_up_from_its_matmuls(report):
  rungs = report["breakdown"]
  assert list(rungs) == list(benchmark.BREAKDOWN)
  assert all(v > 0 and math.isfinite(v) for v in rungs.values())
  text = benchmark.markdown(report)
  for name, title in benchmark.BREAKDOWN.items():
    assert f"| {title} | {rungs[name]:.1f} |" in text


def test_the_torch_func_ensemble_trains_the_models_of_the_sweep_and_of_torch_optim():
  """Every member of the torch.func ensemble (stacked parameters, vmap(grad), SGD momentum on the
  stacks) ends where torch.optim.SGD's eager run and lrlab's sweep end, to float rounding."""
  pytest.importorskip("torch")
  import jax
  import numpy as np

  from lrlab import sweep, tasks
  from lrlab.benchmark import torch_legs, workload

  task = tasks.get(workload.TASK)
  config = benchmark.Config(ks=(3,), steps=6, threads=1)
  lrs = np.array([0.003, 0.05, 0.4], np.float32)
  ensemble = torch_legs.torch_func_leg(task, lrs, config)[1]()
  eager = torch_legs.torch_leg(task, lrs, config)[1]()
  result = sweep.run(
    task, workload.make_tx, {"lr": lrs}, steps=6, batch_size=config.batch_size,
    key=jax.random.key(config.seed), eval_every=6, chunk_size=3, progress=False,
  )  # fmt: skip
  swept = np.asarray(result.history.val_loss)[0, :, -1]
  assert not result.history.diverged.any() and np.all(np.isfinite(ensemble))
  initial = np.asarray(result.history.val_loss)[0, :, 0]
  assert np.all(np.abs(swept - initial) > 1e-3)  # the members moved, and apart
  np.testing.assert_allclose(ensemble, eager, rtol=1e-5, atol=1e-6)
  np.testing.assert_allclose(ensemble, swept, rtol=1e-5, atol=1e-6)


@pytest.mark.slow  # compiles a sweep per chunk size
def test_the_chunk_benchmark_compares_auto_with_every_fixed_size(tmp_path, monkeypatch):
  from lrlab.benchmark import chunks
  from lrlab.sweep import chunking

  monkeypatch.setenv("LRLAB_CACHE_DIR", str(tmp_path / "elsewhere"))  # restored afterwards
  # A machine where chunks above 2 members do not fit: auto's bound leaves the fixed 4 out too.
  monkeypatch.setattr(chunking, "memory_limit", lambda devices, bytes_per_member: 2)
  report = chunks.run_chunks(
    str(tmp_path), tasks=("digits-logreg",), ks=(4,), chunk_sizes=(1, 2, 4, 8), steps=4,
    batch_size=16, repeats=2, log=lambda line: None,
  )  # fmt: skip
  rows = report["rows"]
  assert [r["chunk_size"] for r in rows] == ["auto", 1, 2]  # 8 > K, 4 > the memory bound
  for row in rows:  # round robin: every size timed once per round, the best counts
    assert len(row["steady_all_s"]) == 2 and row["steady_s"] == min(row["steady_all_s"])
  assert report["left_out"] == [
    {"task": "digits-logreg", "k": 4, "memory_limit": 2, "left_out_for_memory": [4]}
  ]
  assert [r["chosen"] for r in rows[1:]] == [1, 2] and rows[0]["chosen"] <= 2
  choice = rows[0]["choice"]
  assert choice["method"] == "measured" and rows[0]["chosen"] == choice["chunk_size"]
  assert (tmp_path / "chunk-cache" / "chunk_sizes.json").exists()  # a fresh probe, its own cache
  (entry,) = report["summary"]
  best = min(rows[1:], key=lambda r: r["steady_s"])
  assert entry["best_fixed"] == best["chunk_size"]
  assert math.isclose(entry["auto_over_best_time"], rows[0]["steady_s"] / best["steady_s"])
  assert entry["met"] == (entry["auto_over_best_time"] <= chunks.GOAL)
  text = (tmp_path / "chunks.md").read_text()
  assert "**digits-logreg, K=4** (4 steps, batch 16)" in text and "| auto |" in text
  assert "Left out for memory (a chunk above 2 members, auto's own bound): [4]" in text
  assert json.loads((tmp_path / "chunks.json").read_text())["summary"] == report["summary"]


def _fake_cpu(root, cpu: int, caches) -> None:
  for i, (kind, level, size, shared) in enumerate(caches):
    index = root / f"cpu{cpu}" / "cache" / f"index{i}"
    index.mkdir(parents=True)
    for name, value in (("type", kind), ("level", level), ("size", size),
                        ("shared_cpu_list", shared)):  # fmt: skip
      (index / name).write_text(value + "\n")


def test_the_caches_are_those_of_a_core_the_process_runs_on_in_index_order(tmp_path, monkeypatch):
  """A hybrid CPU (cpu0 a performance core, cpu4 an efficiency core): pinned to 4-5, the report
  gives cpu4's caches; sysfs's index10 comes after index2, as the kernel numbers them."""
  from lrlab.benchmark import machine

  l1 = [("Data", "1", "48K", "0"), ("Instruction", "1", "32K", "0")]
  _fake_cpu(tmp_path, 0, [*l1, ("Unified", "2", "1280K", "0"), ("Unified", "3", "30720K", "0-7")])
  padding = [("Instruction", "1", "64K", "4")] * 8  # index2 .. index9
  _fake_cpu(tmp_path, 4, [("Data", "1", "32K", "4"), ("Instruction", "1", "64K", "4"),
                          ("Unified", "2", "2048K", "4-7"), *padding,
                          ("Unified", "3", "30720K", "0-7")])  # fmt: skip
  monkeypatch.setattr(machine, "SYSFS_CPUS", str(tmp_path), raising=False)
  monkeypatch.setattr(machine.os, "sched_getaffinity", lambda pid: {4, 5})
  assert machine.cpu_caches() == "L1d 32K, L2 2048K (shared by 4-7), L3 30720K (shared by 0-7)"
  monkeypatch.setattr(machine.os, "sched_getaffinity", lambda pid: {0, 1})
  assert machine.cpu_caches() == "L1d 48K, L2 1280K, L3 30720K (shared by 0-7)"


def test_write_json_makes_the_folder_and_round_trips(tmp_path):
  from lrlab.benchmark.workload import write_json

  report = {"rows": [{"leg": "grid", "wall_seconds": 1.25}], "ratio": 0.5}
  path = tmp_path / "a" / "b" / "report.json"
  write_json(report, str(path), indent=1)
  assert json.loads(path.read_text(encoding="utf-8")) == report
  assert path.read_text(encoding="utf-8").startswith('{\n "rows"')  # the indent asked for


def test_each_round_of_the_chunk_benchmark_starts_one_candidate_later(monkeypatch):
  """No candidate always follows the same one: round i starts at candidate i (auto ran right
  after the largest size in every round before, and came out 1.11x the size it had chosen)."""
  from types import SimpleNamespace

  import lrlab
  from lrlab.benchmark import chunks

  called = []

  def fake_run(task, tx, grid, *, chunk_size, **settings):
    called.append(chunk_size)
    return SimpleNamespace(config={"chunk_size": 8 if chunk_size == "auto" else chunk_size},
                           metadata={})  # fmt: skip

  monkeypatch.setattr(lrlab.sweep, "run", fake_run)
  monkeypatch.setattr(chunks, "_workload", lambda name, steps, batch: (None, None, range, 5, 10))
  monkeypatch.setattr(chunks, "_fitting", lambda task, tx, rates, steps, batch, sizes: (sizes, 99))
  rows, _ = chunks._measure_round_robin("t", 64, (8, 16, 32), 5, 10, 3, lambda line: None)
  candidates = ["auto", 8, 16, 32]
  assert called[:4] == candidates  # the first calls, which compile
  assert (
    called[4:] == candidates + candidates[1:] + candidates[:1] + candidates[2:] + candidates[:2]
  )
  assert [r["chunk_size"] for r in rows] == candidates and all(
    len(r["steady_all_s"]) == 3 for r in rows
  )


def test_a_failed_legs_row_reads_its_last_line_in_one_cell():
  report = json.loads((ROOT / "benchmarks" / "cpu-2core" / "report.json").read_text())
  report["rows"].append({"leg": "vmap", "k": 8, "error": "Traceback\nRuntimeError: boom"})
  text = benchmark.markdown(report)
  line = next(s for s in text.splitlines() if "boom" in s)
  header = next(s for s in text.splitlines() if s.startswith("| K | leg |"))
  assert "| RuntimeError: boom |" in line and "[" not in line
  assert line.count("|") == header.count("|")
