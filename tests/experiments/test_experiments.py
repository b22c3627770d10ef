"""Every experiment runs end to end at its tiny size and writes a complete summary."""

import importlib
import json
import re
import types

import pytest

from experiments import common, run_all
from lrlab.analysis import VERDICTS


@pytest.mark.parametrize("name", run_all.experiments())
@pytest.mark.slow  # a subprocess or an end-to-end run
def test_experiment_runs_at_tiny_size(name, tmp_path):
  module = importlib.import_module(f"experiments.{name}")
  assert module.CLAIM and set(module.SIZES) == set(common.SIZES)
  assert common.main(module, ["--tiny", "--out", str(tmp_path)]) == 0
  summary = common.read_summary(tmp_path)
  assert summary["claim"] == module.CLAIM
  assert summary["verdict"] in VERDICTS or summary["verdict"].startswith("depends on")
  assert summary["numbers"] and summary["figures"]
  for figure in summary["figures"]:
    assert (tmp_path / figure).stat().st_size > 1000
  # Figures come from saved results: redrawing without training gives the same numbers.
  numbers = summary["numbers"]
  assert common.main(module, ["--tiny", "--out", str(tmp_path), "--replot"]) == 0
  assert common.read_summary(tmp_path)["numbers"] == numbers


def _fake_experiment(folder):
  """An experiment module whose run writes its steps and whose report reads them back."""
  module = types.ModuleType("fake_experiment")
  module.__file__ = str(folder / "fake_experiment.py")
  module.CLAIM = "a claim"
  module.SIZES = {"tiny": {"steps": 1}, "default": {"steps": 10}, "full": {"steps": 100}}
  module.run = lambda out, steps: (out / "steps.txt").write_text(str(steps))
  module.report = lambda out: ({"steps": int((out / "steps.txt").read_text())}, "refuted", [])
  return module


def test_a_replot_keeps_the_size_and_settings_that_trained_the_results(tmp_path):
  module = _fake_experiment(tmp_path)
  assert common.main(module, ["--full", "--out", str(tmp_path)]) == 0
  assert common.main(module, ["--replot", "--out", str(tmp_path)]) == 0  # no --full
  summary = common.read_summary(tmp_path)
  assert summary["numbers"] == {"steps": 100}  # the results of the --full run
  assert summary["size"] == "full" and summary["settings"] == {"steps": 100}
  assert "--full" in summary["command"] and "--replot" in summary["replotted_with"]


def test_a_replot_rewrites_only_what_it_derives_from_the_saved_results(tmp_path):
  # A redraw on another machine, or one that took its own few seconds, kept the training's
  # command and seconds but wrote its own versions and device, and dropped a note added by hand.
  module = _fake_experiment(tmp_path)
  assert common.main(module, ["--out", str(tmp_path)]) == 0
  trained = common.read_summary(tmp_path)
  trained.update(seconds=1234.5, device="TPU v5", versions={"lrlab": "0.0.1", "jax": "0.1"})
  trained["note"] = "trained in two processes; seconds is their wall time"
  (tmp_path / "summary.json").write_text(json.dumps(trained))
  module.report = lambda out: ({"steps": 10, "new": 1.0}, "supported", [])  # a newer report
  assert common.main(module, ["--replot", "--out", str(tmp_path)]) == 0
  redrawn = common.read_summary(tmp_path)
  assert (
    redrawn.pop("numbers") == {"steps": 10, "new": 1.0} and redrawn.pop("verdict") == "supported"
  )
  assert "--replot" in redrawn.pop("replotted_with")
  assert redrawn == {k: v for k, v in trained.items() if k not in ("numbers", "verdict")}
  # Results without a summary (a run stopped after training): only size.json says how they were
  # trained; the redraw's own seconds, command and device are not recorded as the training's.
  (tmp_path / "summary.json").unlink()
  (tmp_path / "size.json").write_text(json.dumps({"size": "full"}))
  assert common.main(module, ["--replot", "--out", str(tmp_path)]) == 0
  redrawn = common.read_summary(tmp_path)
  assert redrawn["size"] == "full" and redrawn["settings"] == {"steps": 100}
  assert [redrawn[k] for k in ("command", "seconds", "versions", "device")] == [None] * 4


def test_a_run_is_refused_where_another_sizes_results_lie(tmp_path):
  # The report reads every task saved in the folder: a default run after a full one would
  # judge the full run's extra task with its own, as one default-size result.
  module = types.ModuleType("fake_tasks")
  module.__file__ = str(tmp_path / "fake_tasks.py")
  module.CLAIM = "a claim"
  module.SIZES = {"tiny": {"tasks": ("a",)}, "default": {"tasks": ("a",)}, "full": {"tasks": "ab"}}

  def run(out, tasks):
    for task in tasks:
      (out / f"{task}.task").write_text("trained")

  module.run = run
  module.report = lambda out: ({"tasks": sorted(p.stem for p in out.glob("*.task"))}, "refuted", [])
  assert common.main(module, ["--full", "--out", str(tmp_path)]) == 0
  with pytest.raises(ValueError, match=r"holds results of the 'full' size; a 'default' run"):
    common.main(module, ["--out", str(tmp_path)])
  assert common.read_summary(tmp_path)["size"] == "full"
  assert common.main(module, ["--full", "--out", str(tmp_path)]) == 0  # the same size: fine
  assert common.main(module, ["--out", str(tmp_path / "other")]) == 0
  assert common.read_summary(tmp_path / "other")["numbers"] == {"tasks": ["a"]}
  # A full run killed before its summary left results a default run would have judged as its own.
  killed = tmp_path / "killed"

  def stopped(out, tasks):
    run(out, tasks)
    raise KeyboardInterrupt

  module.run = stopped
  with pytest.raises(KeyboardInterrupt):
    common.main(module, ["--full", "--out", str(killed)])
  module.run = run
  assert not (killed / "summary.json").exists()
  with pytest.raises(ValueError, match=r"holds results of the 'full' size; a 'default' run"):
    common.main(module, ["--out", str(killed)])
  assert common.main(module, ["--full", "--out", str(killed)]) == 0  # the same size resumes


def test_every_experiment_says_what_it_holds_equal_and_what_it_leaves_open():
  readme = (common.RESULTS.parent / "README.md").read_text(encoding="utf-8")
  section = readme.split("## What each experiment holds equal, and what it leaves open")[1]
  bullets = re.split(r"\n(?=- \*\*)", section.strip())[1:]
  named = {}
  for bullet in bullets:
    name = re.match(r"- \*\*\d+\. `(\w+)`\*\*\. Held equal", bullet).group(1)
    assert re.search(r"Not\s+controlled:", bullet), name
    named[name] = bullet
  assert sorted(named) == run_all.experiments()


@pytest.mark.parametrize("main", ["experiment", "run_all"])
def test_a_bad_flag_is_one_line_and_exit_code_2(main, capsys):
  module = types.ModuleType("fake_experiment")
  module.CLAIM = "a claim"
  call = {"experiment": lambda: common.main(module, ["--tiny", "--bogus"]),
          "run_all": lambda: run_all.main(["--tiny", "--bogus"])}[main]  # fmt: skip
  with pytest.raises(SystemExit) as exited:
    call()
  assert exited.value.code == 2
  err = capsys.readouterr().err
  assert err.count("\n") == 1 and "error: unrecognized arguments: --bogus" in err, err
