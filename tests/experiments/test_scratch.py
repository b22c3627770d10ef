"""A tiny run (``run_all.py --tiny``) writes to a scratch folder, never over committed results."""

import importlib

from experiments import common


def test_a_tiny_run_without_out_leaves_the_committed_results_alone(tmp_path, monkeypatch):
  assert not common.SCRATCH.is_relative_to(common.RESULTS)
  module = importlib.import_module("experiments.u_curve")
  assert common.default_out(module, "default") == common.RESULTS / "u_curve"
  assert common.default_out(module, "tiny") == common.SCRATCH / "u_curve"
  committed = common.RESULTS / "u_curve" / "summary.json"
  before = committed.read_bytes()
  monkeypatch.setattr(common, "SCRATCH", tmp_path)
  assert common.main(module, ["--tiny"]) == 0
  assert committed.read_bytes() == before
  assert common.read_summary(tmp_path / "u_curve")["size"] == "tiny"
