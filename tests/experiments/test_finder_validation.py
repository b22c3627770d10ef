"""The LR finder against a sweep (issue 6, redesigned in issue 19): the committed results."""

import json
import math

import numpy as np
import pytest

from experiments import common, finder_validation
from lrlab import tasks
from lrlab.sweep.result import SweepResult

OUT = common.RESULTS / "finder_validation"


@pytest.fixture(scope="module")
def summary():
  return common.read_summary(OUT)


def _case(row: dict):
  folder = OUT / f"{row['task']}_{row['optimizer']}"
  case = json.loads((folder / "case.json").read_text())
  runs = [SweepResult.load(folder / f"sweep_{s}") for s in range(case["seeds"])]
  return case, runs


def test_the_design_meets_the_standard(summary):
  rows = summary["numbers"]["cases"]
  tasks = {r["task"] for r in rows}
  assert {"mnist1d-resnet", "lm-transformer"} <= tasks
  assert all(r["seeds"] >= 5 for r in rows)
  lm = [r for r in rows if r["task"] == "lm-transformer"]
  assert lm and all(r["metric"] == "final_val_loss" for r in lm)


def test_each_rules_error_follows_from_the_saved_runs(summary):
  for row in summary["numbers"]["cases"]:
    case, runs = _case(row)
    grid = np.asarray(case["grid"])
    n = len(grid)
    name = "final_val_accuracy" if row["metric"].endswith("accuracy") else "final_val_loss"
    val = np.concatenate([r.metric(name) for r in runs])[:, :n].mean(axis=0)
    k = int(np.argmax(val) if name.endswith("accuracy") else np.argmin(val))
    assert row["sweep"]["best_lr_on_grid"] == pytest.approx(grid[k])
    # The refined best lies within half a grid step of the grid's best.
    step = np.log10(grid[1] / grid[0])
    assert abs(math.log10(row["sweep"]["best_lr"] / grid[k])) <= step / 2 + 1e-9
    # The best rate by the other metric (val loss), likewise near the grid's best by loss.
    loss = np.concatenate([r.metric("final_val_loss") for r in runs])[:, :n].mean(axis=0)
    by_loss = grid[int(np.argmin(np.where(np.isfinite(loss), loss, np.inf)))]
    assert abs(math.log10(row["sweep"]["best_lr_by_val_loss"] / by_loss)) <= step / 2 + 1e-9
    for j, rule in enumerate(finder_validation.NAMES):
      for s, run in enumerate(runs):
        pick = case["picks"][s].get(rule)
        if pick is None:
          assert row["rules"][rule]["decades"][s] is None
          continue
        assert run.grid["lr"][n + j] == pytest.approx(pick)  # the suggestion was trained
        decades = math.log10(pick / row["sweep"]["best_lr"])
        assert row["rules"][rule]["decades"][s] == pytest.approx(decades)


def test_the_aggregate_and_its_holm_correction(summary):
  aggregate = summary["numbers"]["aggregate"]
  rows = [r for r in summary["numbers"]["cases"] if r["optimizer"] != "gd"]
  p = {}
  for rule, a in aggregate["rules"].items():
    decades = [d for r in rows for d in r["rules"][rule]["decades"] if d is not None]
    assert a["median_abs_decades"] == pytest.approx(np.median(np.abs(decades)))
    near_cases = sum(2 * sum(r["rules"][rule]["near"]) > r["seeds"] for r in rows)
    assert a["near_cases"] == near_cases
    if a["p"] is not None:
      p[rule] = a["p"]
  # Holm's step-down over the rules tested, written out.
  order = sorted(p, key=p.get)
  running = 0.0
  for rank, rule in enumerate(order):
    running = max(running, min(1.0, (len(p) - rank) * p[rule]))
    assert aggregate["rules"][rule]["p_holm"] == pytest.approx(running)
  assert aggregate["comparisons"] == len(p)
  # The verdicts: refuted by points lost beyond 2 SE after Holm; supported only when near in
  # every case and losing less than a point even at 2 SE.
  for rule, a in aggregate["rules"].items():
    lost, se = a["mean_test_accuracy_lost"], a["mean_test_accuracy_lost_se"]
    if a["p_holm"] < 0.0455 and lost > 0:
      assert a["verdict"] == "refuted", rule
    elif a["near_cases"] == len(rows) and lost + 2 * se < 0.01:
      assert a["verdict"] == "supported", rule
    else:
      assert a["verdict"] == "inconclusive", rule
  verdicts = {r: a["verdict"] for r, a in aggregate["rules"].items()}
  assert verdicts["valley"] == verdicts["steep"] == verdicts["lightning"] == "refuted"
  assert summary["verdict"].startswith("depends on the rule: steep refuted, valley refuted")
  for figure in summary["figures"]:
    assert (OUT / figure).stat().st_size > 1000


def test_dead_runs_count_as_failed_and_the_resnet_trains(summary):
  """The dead-network guard, recounted with NumPy: a run above the sweep's best rate (grid only)
  that did not diverge but ends with train loss within 5% of chance; and the ResNet's budget
  gives it a meaningful accuracy."""
  labels_of = {}
  for row in summary["numbers"]["cases"]:
    case, runs = _case(row)
    chance = row["sweep"]["chance_loss"]
    if chance is None:  # no label set: the quadratic and the streamed transformer
      assert row["task"] in ("quadratic", "lm-transformer") and row["sweep"]["dead_runs"] == 0
      continue
    if row["task"] not in labels_of:  # the labels do not depend on the model's options
      labels_of[row["task"]] = tasks.get(row["task"], **case["options"]).dataset.y_train
    labels = labels_of[row["task"]]
    p = np.bincount(labels) / labels.size
    assert chance == pytest.approx(-np.sum(p[p > 0] * np.log(p[p > 0])))
    n, grid = len(case["grid"]), np.asarray(case["grid"])
    val = np.concatenate([r.metric(row["metric"]) for r in runs])[:, :n]
    best = int(np.argmax(val.mean(axis=0)))
    train = np.concatenate([r.metric("final_train_loss", diverged_as_worst=False) for r in runs])
    diverged = np.concatenate([r.history.diverged for r in runs])
    dead = ~diverged[:, :n] & (train[:, :n] >= 0.95 * chance) & (grid > grid[best])[None, :]
    assert row["sweep"]["dead_runs"] == int(dead.sum()), row["task"]
    failed = (diverged[:, :n] | dead).any(axis=0)
    expected = float(grid[failed][0]) if failed.any() else None
    assert row["sweep"]["divergence_lr"] == pytest.approx(expected), row["task"]
    if row["task"] == "mnist1d-resnet":
      assert row["steps"] >= 400 and row["sweep"]["test"] >= 0.8
