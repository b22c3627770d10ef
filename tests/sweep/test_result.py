"""SweepResult: summaries, best / usable range / divergence / edge on known data, files."""

import csv
import json
import math
import os
import re
import warnings

import jax
import numpy as np
import pytest

from lrlab import sweep, train
from tests.sweep import synthetic
from tests.sweep.synthetic import LRS, SEED_OFFSETS, U_FINAL


@pytest.fixture(scope="module")
def u_shaped():
  return synthetic.u_shaped()


@pytest.fixture(scope="module")
def two_d():
  return synthetic.two_dimensional()


def _expected_finals():
  """The U-shaped finals per (seed, member) with diverged runs counted as 0, by hand."""
  out = np.empty((2, 9))
  for s in range(2):
    for k in range(9):
      diverged = k >= 7 or (s == 1 and k == 6)
      out[s, k] = 0.0 if diverged else U_FINAL[k] + SEED_OFFSETS[s]
  return out


# Construction and validation.


def test_construction_converts_to_numpy_and_broadcasts_step(u_shaped):
  assert u_shaped.num_seeds == 2 and u_shaped.num_members == 9 and u_shaped.has_accuracy
  assert u_shaped.history.step.shape == (2, 9, 5)
  assert u_shaped.history.learning_rate.shape == (2, 9, synthetic.NUM_STEPS)
  assert "members=9, seeds=2" in repr(u_shaped)
  one = synthetic.make_result({"lr": LRS[:2]}, [[0.5, 0.6]])
  short = one.history._replace(step=np.array([0, 10, 20, 30, 40]))
  assert sweep.SweepResult(one.grid, one.seeds, short).history.step.shape == (1, 2, 5)


def test_construction_rejects_inconsistent_parts(u_shaped):
  h = u_shaped.history
  cases = [
    (dict(seeds=np.arange(3)), r"history.step must have shape \(3, 9, 5\)"),
    (dict(seeds=np.array([0.5, 1.5])), "seeds must be a non-empty 1-D integer array"),
    (dict(history=h._replace(val_loss=h.val_loss[:, :, :4])), r"history.step must have shape"),
    (dict(history=h._replace(diverged=h.diverged.astype(int))), "history.diverged must be bool"),
    (dict(history=h._replace(learning_rate=h.learning_rate[0])), "history.learning_rate"),
    (dict(history=(1, 2)), "must be an lrlab.train.History"),
    (dict(grid={"lr": LRS, "seed": LRS}), "differ from the table's columns"),
    (dict(config={"target": {"metric": "val_acc", "value": 1}}), "target metric must be one of"),
    (dict(config={"f": object()}), "config must be JSON-serialisable"),
  ]
  for change, match in cases:
    parts = dict(grid=u_shaped.grid, seeds=u_shaped.seeds, history=h, config={}, metadata={})
    parts.update(change)
    with pytest.raises(ValueError, match=match):
      sweep.SweepResult(**parts)


# Per-run summaries.


def test_metric_summaries_match_the_curves(u_shaped):
  final = U_FINAL[None, :] + SEED_OFFSETS[:, None]
  raw = lambda name: u_shaped.metric(name, diverged_as_worst=False)
  np.testing.assert_allclose(raw("final_val_accuracy"), final, rtol=1e-6)
  np.testing.assert_allclose(raw("best_val_accuracy"), final + 0.05, rtol=1e-6)
  np.testing.assert_allclose(raw("test_accuracy_at_best_val"), final + 0.03, rtol=1e-6)
  np.testing.assert_allclose(raw("final_test_accuracy"), final - 0.04, rtol=1e-6)
  np.testing.assert_allclose(raw("final_val_loss"), 1.05 - final, rtol=1e-6)
  np.testing.assert_allclose(raw("best_val_loss"), 1.05 - final, rtol=1e-6)
  np.testing.assert_allclose(raw("test_loss_at_best_val"), 1.15 - final, rtol=1e-6)
  np.testing.assert_allclose(raw("best_train_loss"), 0.95 - final, rtol=1e-6)
  # Diverged runs count as the worst value: accuracy 0, loss inf.
  np.testing.assert_allclose(u_shaped.metric("final_val_accuracy"), _expected_finals(), rtol=1e-6)
  loss = u_shaped.metric("final_val_loss")
  assert np.all(np.isinf(loss[:, 7:])) and np.isinf(loss[1, 6]) and np.isfinite(loss[0, 6])
  with pytest.raises(ValueError, match="metric must be one of"):
    u_shaped.metric("val_accuracy")


def test_test_metric_at_best_val_is_nan_without_a_val_curve(u_shaped):
  # Member 0 of seed 0 has no finite val metric: there is no best val point to read the test
  # metric at (as best_val_* is NaN), not the untrained step-0 test metric.
  no_val = u_shaped.history._replace(
    val_loss=u_shaped.history.val_loss.copy(), val_accuracy=u_shaped.history.val_accuracy.copy()
  )
  no_val.val_loss[0, 0] = no_val.val_accuracy[0, 0] = np.nan
  result = sweep.SweepResult(u_shaped.grid, u_shaped.seeds, no_val, u_shaped.config)
  raw = lambda name: result.metric(name, diverged_as_worst=False)
  for name in ("best_val_loss", "test_loss_at_best_val", "test_accuracy_at_best_val"):
    assert math.isnan(raw(name)[0, 0]), name
  assert raw("test_loss_at_best_val")[0, 1] == pytest.approx(1.15 - U_FINAL[1] - 0.02)
  assert result.metric("test_loss_at_best_val")[0, 0] == math.inf  # a loss: NaN is the worst


def test_seed_mean_and_std(u_shaped):
  expected = _expected_finals()
  np.testing.assert_allclose(u_shaped.seed_mean("final_val_accuracy"), expected.mean(0), rtol=1e-6)
  np.testing.assert_allclose(u_shaped.seed_std("final_val_accuracy"), expected.std(0), rtol=1e-5)
  assert u_shaped.seed_std("final_val_accuracy")[4] == pytest.approx(0.02, rel=1e-5)
  mean, std = u_shaped.seed_mean("best_val_loss"), u_shaped.seed_std("best_val_loss")
  np.testing.assert_allclose(mean[:6], 1.05 - U_FINAL[:6], rtol=1e-6)
  assert np.all(np.isinf(mean[6:])) and np.all(np.isnan(std[6:])) and np.all(np.isfinite(std[:6]))


def test_steps_to_target_with_a_configured_target():
  final = np.array([[0.9, 0.5, 0.3]])
  result = synthetic.make_result(
    {"lr": LRS[:3]}, final, config={"target": {"metric": "val_accuracy", "value": 0.42}}
  )
  # val_accuracy = [0.1, f/2, f+0.05, f, f] at steps 0..40: 0.9 reaches 0.42 at step 10 (0.45),
  # 0.5 at step 20 (0.55), 0.3 never (its peak is 0.35).
  np.testing.assert_array_equal(result.metric("steps_to_target"), [[10.0, 20.0, np.inf]])
  assert result.target() == {"metric": "val_accuracy", "value": 0.42, "default": False}
  loss_target = {"metric": "val_loss", "value": 0.48}
  final = np.array([[0.9, 0.6, 0.3]])
  result = synthetic.make_result({"lr": LRS[:3]}, final, config={"target": loss_target})
  # val_loss = [2, 1.5-f, 1.2-f, 1.1-f, 1.05-f]: 0.9 reaches 0.48 at step 20 (0.3),
  # 0.6 at step 40 (0.45), 0.3 never (0.75 at best).
  np.testing.assert_array_equal(result.metric("steps_to_target"), [[20.0, 40.0, np.inf]])


def test_default_target_is_95_percent_of_the_best_accuracy(u_shaped):
  target = u_shaped.target()
  assert target["metric"] == "val_accuracy" and target["default"]
  assert target["value"] == pytest.approx(0.95 * 0.9)
  # Reached at step 20 (f + 0.05 >= 0.855) when f >= 0.805, else never; diverged runs: inf.
  finals = _expected_finals()
  expected = np.where((finals + 0.05 >= 0.855) & (finals > 0), 20.0, np.inf)
  np.testing.assert_array_equal(u_shaped.metric("steps_to_target"), expected)


def test_regression_defaults_to_losses():
  final = np.array([[0.2, 0.6, 0.5]])  # val_loss at the end: 0.85, 0.45, 0.55
  result = synthetic.make_result({"lr": LRS[2:5]}, final, regression=True)
  assert not result.has_accuracy
  best = result.best(warn=False)
  assert best["metric"] == "final_val_loss" and best["index"] == 1
  assert best["value"] == pytest.approx(0.45)
  target = result.target()
  assert target["metric"] == "val_loss" and target["value"] == pytest.approx(0.45 * 1.1)
  # val_loss <= 0.495: member 1 at step 40 (0.45; 0.5 at step 30 is above), others never.
  np.testing.assert_array_equal(result.metric("steps_to_target"), [[np.inf, 40.0, np.inf]])
  # Relative tolerance on a loss: 0.55 <= 0.45 * 1.25, 0.85 > 0.45 * 1.25.
  assert result.usable_range(tolerance=0.25) == (LRS[3], LRS[4])
  assert result.usable_range(tolerance=0.2) == (LRS[3], LRS[3])
  assert np.isnan(result.metric("final_val_accuracy")).all()
  with pytest.raises(ValueError, match="NaN for every member"):
    result.best("final_val_accuracy")


# The answers: best, usable range, divergence threshold, edge warning.


def test_best_refuses_a_search_whose_members_each_stopped_in_some_seed():
  # A search's curves over 2 seeds, NaN where a member stopped early: each seed kept its own
  # member to the budget and member 2 diverged in both. A stopped member's loss counted inf,
  # so best() answered member 0 with inf, and an accuracy blamed a task without accuracy.
  final = [[0.8, np.nan, 0.0], [np.nan, 0.7, 0.0]]
  diverged = [[False, False, True], [False, False, True]]
  result = synthetic.make_result({"lr": LRS[:3]}, final, diverged)
  for metric in ("final_val_loss", "final_val_accuracy"):
    with pytest.raises(ValueError, match="no seed mean for any member that trained"):
      result.best(metric)
  with pytest.raises(ValueError, match="no seed mean"):
    result.summary("final_val_loss")
  # A member measured in every seed is the answer, never one that stopped in some seed.
  kept = synthetic.make_result({"lr": LRS[:3]}, [[0.8, 0.6, 0.0], [np.nan, 0.5, 0.0]], diverged)
  assert kept.best("final_val_loss", warn=False)["index"] == 1


def test_best_on_the_u_curve(u_shaped):
  best = u_shaped.best()
  assert best["index"] == 4 and best["metric"] == "final_val_accuracy"
  assert best["hyperparameters"] == {"lr": 1e-2}
  assert best["value"] == pytest.approx(0.9) and best["std"] == pytest.approx(0.02, rel=1e-5)
  assert u_shaped.best("best_val_loss")["index"] == 4
  assert u_shaped.best("final_test_accuracy", warn=False)["index"] == 4


@pytest.mark.parametrize(
  ("tolerance", "lo", "hi"),
  [
    (0.0, 4, 4),
    (0.02, 4, 4),  # the neighbours' mean 0.875 is 0.025 below the best
    (0.03, 3, 5),
    (0.11, 2, 5),  # member 6 (lr=0.1) diverged in seed 1: its mean (0.82 + 0) / 2 ends the range
    (0.45, 0, 5),
    (0.5, 0, 6),  # ... unless the tolerance admits 0.41
  ],
)
def test_usable_range_is_contiguous_around_the_best(u_shaped, tolerance, lo, hi):
  means = _expected_finals().mean(0)
  # An independent scan: the largest interval [i, j] around 4 with every mean >= 0.9 - tol.
  i = j = 4
  while i > 0 and means[i - 1] >= 0.9 - tolerance - 1e-9:
    i -= 1
  while j < 8 and means[j + 1] >= 0.9 - tolerance - 1e-9:
    j += 1
  assert (i, j) == (lo, hi)
  assert u_shaped.usable_range(tolerance=tolerance) == pytest.approx((LRS[lo], LRS[hi]))
  with pytest.raises(ValueError, match="tolerance must be a finite number >= 0"):
    u_shaped.usable_range(tolerance=-0.1)


def test_divergence_threshold_is_the_smallest_diverging_value(u_shaped):
  # lr = 0.1 (member 6) diverged in one seed only; that is enough.
  assert u_shaped.divergence_threshold() == LRS[6]
  fine = synthetic.make_result({"lr": LRS}, U_FINAL[None])
  assert fine.divergence_threshold() is None


def test_two_dimensional_slices_through_the_best(two_d):
  # TABLE_2D: the best is lr = 1e-2, momentum = 0.9 (0.90).
  with pytest.warns(sweep.GridEdgeWarning, match="'momentum'") as caught:
    best = two_d.best()
  assert len(caught) == 1  # lr is interior; only momentum sits on the edge
  assert best["index"] == 1 * 3 + 2 and best["hyperparameters"] == {"lr": 1e-2, "momentum": 0.9}
  # Along lr at momentum 0.9: [0.60, 0.90, 0.70, diverged]; within 0.25: 0.01 .. 0.1.
  assert two_d.usable_range(tolerance=0.25) == (1e-2, 1e-1)
  assert two_d.usable_range(tolerance=0.35) == (1e-3, 1e-1)
  assert two_d.divergence_threshold() == 1.0
  # Along momentum at lr 1e-2: [0.70, 0.80, 0.90]; within 0.15: 0.5 .. 0.9; nothing diverged.
  assert two_d.usable_range(tolerance=0.15, axis="momentum") == (0.5, 0.9)
  assert two_d.divergence_threshold(axis="momentum") is None
  assert two_d.edge_warning(axis="lr") is None
  message = two_d.edge_warning(axis="momentum")
  assert "highest" in message
  assert "add values between 0.9 and 1, closer to 1, such as 0.99" in message
  with pytest.raises(ValueError, match="axis must be one of 'lr', 'momentum'"):
    two_d.usable_range(axis="beta")


def test_edge_warning_on_a_one_dimensional_grid():
  falling = synthetic.make_result({"lr": LRS[:4]}, [[0.9, 0.8, 0.7, 0.6]])
  message = falling.edge_warning()
  assert "lowest" in message and "lr=0.0001" in message and "Widen the grid below" in message
  with pytest.warns(sweep.GridEdgeWarning, match="lowest value of 'lr'"):
    assert falling.best()["index"] == 0
  rising = synthetic.make_result({"lr": LRS[:4]}, [[0.6, 0.7, 0.8, 0.9]])
  assert "highest" in rising.edge_warning("final_val_accuracy", "lr")
  assert synthetic.make_result({"lr": LRS[:1]}, [[0.5]]).edge_warning() is None
  # An axis that changes nothing: the best ties an inner member, so it is not on the edge.
  flat = synthetic.make_result(
    sweep.product(lr=LRS[:3], dummy=[0, 1, 2]), [[0.5] * 3 + [0.9] * 3 + [0.4] * 3]
  )
  with warnings.catch_warnings():
    warnings.simplefilter("error")
    assert flat.best()["hyperparameters"] == {"lr": LRS[1], "dummy": 0}
  assert flat.edge_warning(axis="dummy") is None


def test_summary_names_the_answers(u_shaped):
  text = u_shaped.summary()
  lines = text.splitlines()
  assert lines[1].startswith("Best lr = 0.01: final_val_accuracy = 0.9 ± 0.02")
  assert "lr in [0.003162, 0.03162]" in lines[2]
  assert "Diverges at lr >= 0.1" in lines[3]
  assert "Best final val accuracy: 0.9" in text
  assert "Diverged runs: 5 of 18 (3 of 9 members in at least one seed)." in text
  assert "Warning" not in text


def test_summary_numbers_are_the_best_members_seed_mean_not_nan():
  # Every member diverged in one seed: each loss mean is inf, which the text showed as nan.
  diverged = np.array([[True, False, True], [False, True, False]])
  both = [[0.5, 0.6, 0.7]] * 2
  lossy = synthetic.make_result({"lr": LRS[:3]}, both, diverged, regression=True)
  assert lossy.best(warn=False)["value"] == math.inf
  assert "final_val_loss = inf ± nan (seed mean ± std)." in lossy.summary().splitlines()[1]
  one = synthetic.make_result({"lr": LRS[:3]}, [[0.5, 0.6, 0.7]])  # no spread: not "± 0"
  assert one.summary().splitlines()[1] == "Best lr = 0.001: final_val_accuracy = 0.7 (one seed)."
  # A NaN accuracy never wins best(); the headline skipped it too, not printing nan.
  nan_member = synthetic.make_result({"lr": LRS[:3]}, [[0.5, np.nan, 0.7]])
  assert nan_member.best(warn=False)["value"] == pytest.approx(0.7)
  assert "Best final val accuracy: 0.7 (seed mean)." in nan_member.summary()


def test_a_sweep_where_everything_diverged_still_summarises(tmp_path):
  for regression in (False, True):
    result = synthetic.make_result({"lr": LRS[:3]}, [[0.5, 0.6, 0.7]], np.ones((1, 3), bool),
                                   regression=regression)  # fmt: skip
    assert math.isnan(result.usable_range()[0]) and result.divergence_threshold() == LRS[0]
    assert math.isnan(result.target()["value"])
    assert np.all(np.isinf(result.metric("steps_to_target")))
    assert "none." in result.summary().splitlines()[2]
    # it said "Best lr = 0.001: final_val_accuracy = 0 ± 0", naming the first member
    best_line = "Best lr: none, all 3 runs diverged (no setting of this grid trains)."
    assert result.summary().splitlines()[1] == best_line
    assert "(seed mean)" not in result.summary()  # it added "Best final val accuracy: 0"
    assert sweep.SweepResult.load(result.save(tmp_path / str(regression))) == result


# Table and files.


def test_table_rows_hold_the_raw_measurements(u_shaped):
  rows = u_shaped.table()
  assert len(rows) == 18
  assert list(rows[0]) == ["member", "seed", "lr", *sweep.metrics.TABLE_COLUMNS]
  row = rows[9 + 6]  # seed 1, member 6: diverged, final 0.78 in the raw curves
  assert (row["seed"], row["member"], row["lr"]) == (1, 6, LRS[6])
  assert row["final_val_accuracy"] == pytest.approx(0.78)
  assert row["test_accuracy_at_best_val"] == pytest.approx(0.81)
  assert row["diverged"] is True and row["diverged_step"] == 15
  assert row["steps_to_target"] == math.inf  # val_accuracy 0.1, 0.39, 0.83, 0.78, 0.78 < 0.855
  best = rows[4]
  assert best["final_val_accuracy"] == pytest.approx(0.92) and best["diverged"] is False
  assert best["best_val_loss"] == pytest.approx(1.05 - 0.92)
  assert best["diverged_step"] == -1 and best["steps_to_target"] == 20.0


def test_csv_matches_the_table(u_shaped, tmp_path):
  path = u_shaped.to_csv(tmp_path / "sub" / "results.csv")
  with open(path, newline="") as file:
    rows = list(csv.DictReader(file))
  table = u_shaped.table()
  assert len(rows) == len(table) and list(rows[0]) == list(table[0])
  for read, row in zip(rows, table, strict=True):
    for name, value in row.items():
      if isinstance(value, float):
        assert float(read[name]) == value or (math.isnan(value) and read[name] == "nan")
      else:
        assert read[name] == str(value)


def test_save_load_round_trip(u_shaped, two_d, tmp_path):
  for name, result in (("u", u_shaped), ("two_d", two_d)):
    with_meta = sweep.SweepResult(
      result.grid, result.seeds, result.history,
      {**result.config, "chunk_size": np.int64(4), "devices": (1, 2)},
      {"versions": {"jax": "x"}, "wall_seconds": 1.5},
    )  # fmt: skip
    directory = with_meta.save(tmp_path / name)
    assert sorted(os.listdir(directory)) == ["curves.npz", "results.csv", "sweep.json"]
    loaded = sweep.SweepResult.load(directory)
    assert loaded == with_meta
    assert loaded.grid["lr"].dtype == np.float64
    assert loaded.history.step.dtype == np.int32 and loaded.history.diverged.dtype == bool
  changed = loaded.history._replace(val_loss=loaded.history.val_loss + 1)
  assert sweep.SweepResult(loaded.grid, loaded.seeds, changed, loaded.config) != loaded
  assert loaded != "something else"


def test_saved_json_is_strict_and_carries_the_summary(u_shaped, tmp_path):
  u_shaped.save(tmp_path)

  def refuse(constant):
    raise AssertionError(f"non-standard JSON constant {constant}")

  document = json.loads((tmp_path / "sweep.json").read_text(), parse_constant=refuse)
  assert document["grid"]["lr"] == LRS.tolist() and document["seeds"] == [0, 1]
  assert document["config"]["task"] == "synthetic" and document["metadata"] == {"note": "test"}
  summary = document["summary"]
  assert summary["best"]["index"] == 4 and summary["divergence_threshold"] == LRS[6]
  assert summary["usable_range"] == pytest.approx([LRS[3], LRS[5]])
  assert summary["diverged_runs"] == 5 and summary["edge_warnings"] == []
  with np.load(tmp_path / "curves.npz") as arrays:
    np.testing.assert_array_equal(arrays["val_accuracy"], u_shaped.history.val_accuracy)
    np.testing.assert_array_equal(arrays["grid.lr"], LRS)


def test_non_finite_settings_are_strict_json_and_load_back_as_floats(u_shaped, tmp_path):
  # divergence_factor=inf (no threshold) was written as Python's Infinity, which strict
  # readers (JavaScript, jq) refuse; it is spelled "inf" and read back as the float.
  config = {**u_shaped.config, "divergence_factor": np.inf, "tx": {"clip": -np.inf}}
  result = sweep.SweepResult(
    u_shaped.grid, u_shaped.seeds, u_shaped.history, config, {"probe_s": np.float32(np.nan)}
  )
  result.save(tmp_path)

  def refuse(constant):
    raise AssertionError(f"non-standard JSON constant {constant}")

  document = json.loads((tmp_path / "sweep.json").read_text(), parse_constant=refuse)
  assert document["config"]["divergence_factor"] == "inf" and document["config"]["tx"] == {
    "clip": "-inf"
  }
  assert document["metadata"] == {"probe_s": "nan"}
  loaded = sweep.SweepResult.load(tmp_path)
  assert loaded == result and loaded.config["divergence_factor"] == np.inf
  assert np.isnan(loaded.metadata["probe_s"])


@pytest.mark.parametrize("inside", ["", "results"])
def test_saving_into_a_file_is_one_line_naming_directory(u_shaped, tmp_path, inside):
  # It raised the OS's "[Errno 17] File exists", naming no argument.
  (tmp_path / "a.txt").write_text("not a folder")
  where = "inside a file" if inside else "which is a file"
  with pytest.raises(ValueError, match=rf"^directory must be a folder to create .*{where}\.$"):
    u_shaped.save(tmp_path / "a.txt" / inside if inside else tmp_path / "a.txt")
  assert (tmp_path / "a.txt").read_text() == "not a folder"


def test_save_is_atomic(u_shaped, tmp_path, monkeypatch):
  u_shaped.save(tmp_path)
  before = {name: (tmp_path / name).read_bytes() for name in sweep.storage.FILES}

  def crash(file, **arrays):
    file.write(b"half an npz")
    raise OSError("disk full")

  monkeypatch.setattr(np, "savez", crash)
  other = synthetic.make_result({"lr": LRS[:2]}, [[0.1, 0.2]])
  with pytest.raises(OSError, match="disk full"):
    other.save(tmp_path)
  monkeypatch.undo()
  assert sorted(os.listdir(tmp_path)) == sorted(sweep.storage.FILES)  # no temporary files left
  assert {name: (tmp_path / name).read_bytes() for name in sweep.storage.FILES} == before
  assert sweep.SweepResult.load(tmp_path) == u_shaped
  with pytest.raises(ValueError, match="holds no saved sweep"):
    sweep.SweepResult.load(tmp_path / "missing")


def test_environment_metadata_is_json_and_hostname_free():
  meta = sweep.environment_metadata()
  assert set(meta) == {
    "versions", "platform", "device_kind", "device_count", "process_count", "os", "command",
    "compile_cache",
  }  # fmt: skip
  # the suite runs with JAX's persistent cache on (conftest.py) unless told otherwise
  assert meta["compile_cache"] == (jax.config.jax_compilation_cache_dir or None)
  assert {"jax", "optax", "flax", "numpy", "lrlab", "python"} <= set(meta["versions"])
  assert meta["platform"] in ("cpu", "gpu", "tpu") and isinstance(meta["device_kind"], str)
  assert isinstance(meta["command"], list)
  assert json.loads(json.dumps(meta)) == meta
  # The versions are read once per process; each call hands out its own copy.
  import importlib.metadata

  meta["versions"]["jax"] = "edited"
  assert sweep.environment_metadata()["versions"]["jax"] == importlib.metadata.version("jax")


# Lines through the best on grids that are not a product.


def test_product_axes_tells_a_product_from_zipped_axes():
  zipped = sweep.zipped(lr=[0.1, 1.0], wd=[1e-4, 1e-5])
  grid = sweep.product(zipped, momentum=[0.0, 0.9])
  assert sweep.lines.product_axes(grid, "lr") == ["momentum"]
  assert sweep.lines.product_axes(grid, "wd") == ["momentum"]
  assert sweep.lines.product_axes(grid, "momentum") == ["lr", "wd"]
  random = sweep.zipped(lr=[0.3, 0.01, 0.1], b1=[0.9, 0.8, 0.95])
  assert sweep.lines.product_axes(random, "lr") == []
  # Two values each that happen to cover every pair are a product, however they were built.
  assert sweep.lines.product_axes(sweep.zipped(a=[1, 1, 2, 2], b=[3, 4, 3, 4]), "a") == ["b"]


def test_line_on_a_random_search_grid_is_every_member_in_axis_order():
  # Random search over lr and b1 together: no member shares another's b1, yet lr has a line.
  grid = sweep.zipped(lr=[0.3, 0.001, 0.1, 0.01, 0.03], b1=[0.9, 0.8, 0.95, 0.85, 0.99])
  result = synthetic.make_result(grid, [[0.5, 0.3, 0.7, 0.6, 0.8]])
  np.testing.assert_array_equal(result.line(4), [1, 3, 4, 2, 0])  # sorted by lr
  np.testing.assert_array_equal(result.line(4, "b1"), [1, 3, 0, 2, 4])
  # Best: lr = 0.03 (0.8); its neighbours in lr order are 0.01 (0.6) and 0.1 (0.7).
  assert result.usable_range(tolerance=0.15) == (0.03, 0.1)
  assert result.usable_range(tolerance=0.25) == (0.01, 0.1)
  assert result.usable_range(tolerance=0.35) == (0.01, 0.3)
  assert result.edge_warning() is None  # lr = 0.03 is inside the searched range
  # The same grid as a slice-by-equality would have held member 4 alone and said nothing.
  assert "highest value of 'b1'" in result.edge_warning(axis="b1")


def test_line_on_a_product_grid_is_the_slice(two_d):
  np.testing.assert_array_equal(two_d.line(5), [2, 5, 8, 11])  # lr at momentum 0.9
  np.testing.assert_array_equal(two_d.line(5, "momentum"), [3, 4, 5])  # momentum at lr 0.01


@pytest.mark.parametrize(
  ("axis", "values", "bounded"),
  [
    ("momentum", [0.0, 0.5, 0.9], True),  # the next step (0.4, or x1.8) would pass 1
    ("b2", [0.9, 0.99, 0.999], True),
    ("momentum", [0.1, 0.2, 0.3], False),  # room to widen below 1
    ("lr", [0.1, 0.5, 0.9], False),  # a learning rate is never bounded by 1
    ("peak_lr", [0.1, 0.5, 0.9], False),
    ("decay", [0.5, 1.0, 2.0], False),  # already at or past 1
    ("shift", [-0.5, 0.5, 0.9], False),  # negative values: not a fraction
  ],
)
def test_edge_warning_advice_for_a_fraction_bounded_by_one(axis, values, bounded):
  result = synthetic.make_result({axis: np.array(values)}, [[0.5, 0.6, 0.7]])
  message = result.edge_warning(axis=axis)
  assert "highest value" in message
  if bounded:
    closer = 1 - (1 - values[-1]) / 10
    assert "fraction bounded by 1" in message and f"such as {closer:.6g}" in message
    assert "Widen the grid" not in message
  else:
    assert f"Widen the grid above {values[-1]:.4g}" in message


# Saved files: checksums against an interrupted overwrite.


def test_save_records_the_summary_it_was_asked_for(u_shaped, tmp_path):
  u_shaped.save(tmp_path, metric="final_val_loss", tolerance=0.5)
  document = json.loads((tmp_path / "sweep.json").read_text())
  assert document["format"] == sweep.storage.FORMAT == 2
  assert document["summary"]["metric"] == "final_val_loss"
  assert document["summary"]["tolerance"] == 0.5
  assert document["summary"] == u_shaped.summary_dict("final_val_loss", 0.5)
  for name in ("curves.npz", "results.csv"):
    assert document["files"][name] == sweep.storage.sha256(tmp_path / name)
  with pytest.raises(ValueError, match="metric must be one of"):
    u_shaped.save(tmp_path / "bad", metric="val_acc")
  assert not (tmp_path / "bad").exists()  # a bad argument raises before anything is written


def test_load_refuses_a_folder_mixed_by_an_interrupted_overwrite(u_shaped, two_d, tmp_path):
  u_shaped.save(tmp_path / "u")
  two_d.save(tmp_path / "two_d")
  for name in ("curves.npz", "results.csv"):  # the new file landed, sweep.json did not
    mixed = tmp_path / f"mixed-{name}"
    mixed.mkdir()
    for each in sweep.storage.FILES:
      source = tmp_path / ("two_d" if each == name else "u") / each
      (mixed / each).write_bytes(source.read_bytes())
    with pytest.raises(
      ValueError, match=rf"interrupted while being overwritten.*{re.escape(name)}"
    ):
      sweep.SweepResult.load(mixed)
  (tmp_path / "u" / "results.csv").unlink()
  with pytest.raises(ValueError, match=r"results\.csv is missing"):
    sweep.SweepResult.load(tmp_path / "u")


def test_load_reads_format_one_and_still_catches_a_mixed_grid(u_shaped, two_d, tmp_path):
  u_shaped.save(tmp_path)
  path = tmp_path / "sweep.json"
  document = json.loads(path.read_text())
  del document["files"]
  path.write_text(json.dumps({**document, "format": 1}))
  assert sweep.SweepResult.load(tmp_path) == u_shaped
  (tmp_path / "curves.npz").write_bytes(
    (two_d.save(tmp_path / "other") / "curves.npz").read_bytes()
  )
  with pytest.raises(ValueError, match=r"grid axis 'lr' of curves\.npz does not match"):
    sweep.SweepResult.load(tmp_path)


@pytest.mark.parametrize(
  ("change", "match"),
  [
    (lambda d: "{not json", "not valid JSON"),
    (lambda d: "[1, 2]", "holds a list, not an object"),
    (lambda d: {k: v for k, v in d.items() if k != "format"}, "has no 'format' field"),
    (lambda d: {**d, "format": 99}, "has format 99, which this version of lrlab cannot read"),
    (lambda d: {**d, "format": True}, "has format True"),
    (lambda d: {k: v for k, v in d.items() if k != "seeds"}, "'seeds' is missing"),
    (lambda d: {**d, "config": []}, "'config' must be a dict; got list"),
    (lambda d: {**d, "grid": {}}, "'grid' names no axis"),
    (lambda d: {**d, "files": {"other.bin": "00"}}, "'files' must map"),
  ],
)
def test_load_names_what_is_wrong_with_sweep_json(u_shaped, tmp_path, change, match):
  u_shaped.save(tmp_path)
  path = tmp_path / "sweep.json"
  changed = change(json.loads(path.read_text()))
  path.write_text(changed if isinstance(changed, str) else json.dumps(changed))
  with pytest.raises(ValueError, match=match):
    sweep.SweepResult.load(tmp_path)


def test_load_names_a_curves_file_that_is_not_an_npz(u_shaped, tmp_path):
  u_shaped.save(tmp_path)
  (tmp_path / "curves.npz").write_bytes(b"not a zip file")
  path = tmp_path / "sweep.json"
  document = json.loads(path.read_text())
  document["files"]["curves.npz"] = sweep.storage.sha256(tmp_path / "curves.npz")
  path.write_text(json.dumps(document))  # checksums agree: the file itself is bad
  with pytest.raises(ValueError, match=r"not a readable \.npz file"):
    sweep.SweepResult.load(tmp_path)


def test_an_exact_tie_inside_the_grid_does_not_hide_the_edge():
  # Accuracy over a few hundred examples ties by chance: the lowest lr (the best, first on
  # ties) and an inner lr both reach 0.9, with a worse lr between them. The best is on the edge.
  tied = synthetic.make_result({"lr": LRS[:4]}, [[0.9, 0.8, 0.9, 0.7]])
  message = tied.edge_warning()
  assert "lowest value of 'lr'" in message and "Widen the grid below 0.0001" in message
  with pytest.warns(sweep.GridEdgeWarning, match="lowest value of 'lr'"):
    assert tied.best()["index"] == 0
  assert tied.summary_dict()["edge_warnings"] == [message]
  # A line along which nothing changes has no edge.
  assert synthetic.make_result({"lr": LRS[:3]}, [[0.5, 0.5, 0.5]]).edge_warning() is None


@pytest.mark.parametrize(
  ("finals", "side", "where"),
  [([0.5, 0.9, 0.9], "highest", "lr=0.1;"), ([0.9, 0.9, 0.5], "lowest", "lr=0.001;")],
)
def test_an_exact_tie_at_either_edge_is_reported_whatever_the_order(finals, side, where):
  # The best is the first of the tied members: an inner one when the tied edge comes after it.
  # Whether the grid needs widening must not depend on which of two equal members comes first.
  tied = synthetic.make_result({"lr": np.array([1e-3, 1e-2, 1e-1])}, [finals])
  assert tied.best(warn=False)["index"] == int(np.argmax(finals))  # numpy: first on ties
  message = tied.edge_warning()
  assert message is not None and f"at the {side} value of 'lr'" in message and where in message
  assert tied.summary_dict()["edge_warnings"] == [message]
  # The printed best is the inner member: the warning names it, so the two do not contradict.
  inner = side == "highest"
  assert message.startswith(
    "The best final_val_accuracy (0.9) is reached at lr=0.01 and, tied, at the highest"
    if inner else "The best final_val_accuracy (0.9) is at the lowest"
  )  # fmt: skip


@pytest.mark.parametrize(
  ("axis", "values", "advice"),
  [
    ("momentum", [0.0, 0.5, 0.9], "add values between 0 and 0.5, such as 0.05"),
    ("weight_decay", [0.0, 1e-4, 1e-3], "add values between 0 and 0.0001, such as 1e-05"),
    ("momentum", [0.5, 0.9, 0.99], "Widen the grid below 0.5"),
  ],
)
def test_an_edge_at_zero_is_never_widened_below_zero(axis, values, advice):
  result = synthetic.make_result({axis: np.array(values)}, [[0.7, 0.6, 0.5]])
  message = result.edge_warning(axis=axis)
  assert f"lowest value of {axis!r}" in message and advice in message
  assert not re.search(r"Widen the grid below 0(?!\.\d)", message)


@pytest.mark.parametrize("index", [4, -1, 7, 1.5, True])
def test_line_rejects_an_index_that_is_not_a_member(index):
  two_d = synthetic.make_result(
    {"lr": np.repeat([0.01, 0.1], 2), "momentum": np.tile([0.0, 0.9], 2)}, [[0.1, 0.2, 0.3, 0.4]]
  )
  with pytest.raises(ValueError, match=r"index must be an integer in \[0, 3\]"):
    two_d.line(index)


def test_line_still_returns_the_slice():
  two_d = synthetic.make_result(
    {"lr": np.repeat([0.01, 0.1], 2), "momentum": np.tile([0.0, 0.9], 2)}, [[0.1, 0.2, 0.3, 0.4]]
  )
  assert two_d.line(np.int64(1)).tolist() == [1, 3]
  assert two_d.line(2, "momentum").tolist() == [2, 3]


@pytest.mark.parametrize("value", [None, "0.5", True, float("nan"), float("inf")])
def test_a_configured_target_value_must_be_a_finite_number(value):
  base = synthetic.make_result({"lr": np.array([0.1, 1.0])}, [[0.5, 0.6]])
  config = {"target": {"metric": "val_accuracy", "value": value}}
  with pytest.raises(ValueError, match=r"^target value must be a (finite )?number"):
    sweep.SweepResult(base.grid, base.seeds, base.history, config)


def test_a_finite_target_value_is_accepted(tmp_path):
  base = synthetic.make_result({"lr": np.array([0.1, 1.0])}, [[0.5, 0.6]])
  for value in (0.55, 1, np.float32(0.55)):
    config = {"target": {"metric": "val_accuracy", "value": value}}
    result = sweep.SweepResult(base.grid, base.seeds, base.history, config)
    assert sweep.SweepResult.load(result.save(tmp_path)) == result


def test_a_history_without_evaluations_is_refused_with_a_true_message():
  empty = np.zeros((1, 2, 0))
  history = train.History(
    step=np.zeros(0, np.int32), train_loss=empty, val_loss=empty, val_accuracy=empty,
    test_loss=empty, test_accuracy=empty, learning_rate=np.ones((1, 2, 5)),
    diverged=np.zeros((1, 2), bool), diverged_step=np.full((1, 2), -1),
  )  # fmt: skip
  with pytest.raises(
    ValueError, match=r"history.val_loss must have shape .* at least one evaluation"
  ) as error:
    sweep.SweepResult({"lr": [0.1, 1.0]}, np.array([0]), history)
  assert "(1, 2, 0)" in str(error.value)


@pytest.mark.parametrize(
  "grid",
  [
    # fold slowest: each setting's folds are not side by side
    {"lr": np.array([0.1, 1.0, 0.1, 1.0]), "fold": np.array([0, 0, 1, 1])},
    # fastest, but a setting changes within its folds
    {"lr": np.array([0.1, 1.0, 1.0, 0.1]), "fold": np.array([0, 1, 0, 1])},
    # fold 1 missing for the second setting (uneven)
    {"lr": np.array([0.1, 0.1, 1.0]), "fold": np.array([0, 1, 0])},
  ],
)
def test_cross_validated_refuses_a_grid_not_laid_out_as_the_sweep_lays_folds(grid):
  # It used to regroup such a grid silently: replicates of one setting mixed with another's.
  result = synthetic.make_result(grid, [np.linspace(0.5, 0.8, len(grid["lr"]))])
  with pytest.raises(ValueError, match=r"^cross_validated needs the grid lrlab\.sweep\.run builds"):
    result.cross_validated()


def test_cross_validated_regroups_the_layout_the_sweep_gives():
  grid = {"lr": np.array([0.1, 0.1, 1.0, 1.0]), "fold": np.array([0, 1, 0, 1])}
  cv = synthetic.make_result(grid, [[0.5, 0.6, 0.7, 0.8]]).cross_validated()
  assert cv.grid["lr"].tolist() == [0.1, 1.0] and cv.num_seeds == 2
  np.testing.assert_allclose(cv.metric("final_val_accuracy")[:, 0], [0.5, 0.6])


def test_usable_range_never_spans_a_member_that_diverged_in_every_seed():
  # A hard task: the best accuracy (0.04) is below the tolerance (0.05), so a diverged member's
  # accuracy of 0 is "within tolerance"; the range must still stop before the diverging rates.
  lrs = np.array([1e-3, 1e-2, 1e-1, 1.0])
  final, diverged = [[0.04, 0.03, 0.01, 0.01]], [[False, False, True, True]]
  hard = synthetic.make_result({"lr": lrs}, final, np.array(diverged))
  means = np.where(diverged, 0.0, np.float32(final)).mean(axis=0)  # diverged counts as 0
  assert np.argmax(means) == 0 and means[2] >= means[0] - 0.05  # the trap: 0 is within 0.05
  assert hard.divergence_threshold() == 0.1
  assert hard.usable_range("final_val_accuracy", tolerance=0.05) == (1e-3, 1e-2)
  assert hard.summary_dict()["usable_range"] == [1e-3, 1e-2]


@pytest.mark.parametrize(
  "tolerance", [None, True, "0.1", [0.1, 0.2], np.array([0.1, 0.2]), -0.1, math.nan, math.inf]
)
def test_a_bad_tolerance_is_a_one_line_error_naming_it_before_any_file_changes(
  u_shaped, tmp_path, tolerance
):
  # None and arrays reached the arithmetic (a TypeError, a broadcast error); True passed as 1.
  message = r"^tolerance must be a finite number >= 0; got .*\.$"
  for answer in (u_shaped.usable_range, u_shaped.summary, u_shaped.summary_dict):
    with pytest.raises(ValueError, match=message) as caught:
      answer(tolerance=tolerance)
    assert "\n" not in str(caught.value)
  with pytest.raises(ValueError, match=message):
    u_shaped.save(tmp_path / "out", tolerance=tolerance)
  assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("tolerance", [np.int64(0), np.float32(0.03), np.array(0.03)])
def test_a_numpy_scalar_tolerance_gives_a_json_ready_summary_and_a_whole_save(
  u_shaped, tmp_path, tolerance
):
  # A NumPy tolerance was stored as is: summary_dict was not JSON-ready, and save failed in
  # json.dumps after writing curves.npz and results.csv beside the old sweep.json.
  plain = float(tolerance)
  assert u_shaped.usable_range(tolerance=tolerance) == u_shaped.usable_range(tolerance=plain)
  stored = u_shaped.summary_dict(tolerance=tolerance)
  assert type(stored["tolerance"]) is float and stored["tolerance"] == pytest.approx(plain)
  assert json.loads(json.dumps(stored)) == stored
  other = synthetic.make_result({"lr": LRS[:3]}, [[0.5, 0.6, 0.7]])
  other.save(tmp_path)
  u_shaped.save(tmp_path, tolerance=tolerance)
  assert sweep.SweepResult.load(tmp_path) == u_shaped


def test_summary_and_edge_warning_print_integer_grid_values_in_full():
  # An integer axis (warmup steps) printed with 4 significant digits named other numbers:
  # 12345 as 1.234e+04, 123457 as 1.235e+05.
  warmup = np.array([1000, 12345, 123457, 1234567])
  final, diverged = [[0.5, 0.9, 0.89, 0.88]], np.array([[False, False, False, True]])
  result = synthetic.make_result({"warmup": warmup}, final, diverged)
  assert result.grid["warmup"].dtype == np.int64
  # By hand: the best is member 1; within 0.02 absolute: members 1 and 2 (member 3 diverged,
  # its accuracy counts as 0); the first diverging value is 1234567.
  lines = result.summary(tolerance=0.02).splitlines()
  assert lines[1].startswith("Best warmup = 12345: final_val_accuracy = 0.9")
  assert lines[2].endswith("warmup in [12345, 123457].")
  assert lines[3].startswith("Diverges at warmup >= 1234567 ")
  grid = sweep.product(lr=[0.01, 0.1], warmup=warmup[1:3])
  both = synthetic.make_result(grid, [[0.5, 0.9, 0.6, 0.7]])  # best: lr=0.01, warmup=123457
  assert both.summary().splitlines()[1].startswith("Best lr = 0.01 (warmup=123457):")
  message = both.edge_warning(axis="warmup")
  assert "(warmup=123457; the grid spans 12345 to 123457)" in message
  assert "Widen the grid above 123457 " in message
