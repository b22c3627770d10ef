"""Every experiment runs end to end at its tiny size and writes a complete summary."""

import importlib

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
