"""``lrlab sweep --search ... --metric``: the search ranks members by the metric asked for, and
the results folder's settings say so."""

import json

import pytest

from lrlab.cli import sweep as command
from lrlab.search import SearchResult

TINY = ["--task", "digits-logreg", "--optimizer", "sgd", "--steps", "36", "--eval-every", "4",
        "--batch-size", "50", "--seeds", "1", "--no-progress", "--chunk-size", "2"]  # fmt: skip
HALVING = ("--grid", "lr=0.01:3:9:log", "--search", "halving", "--min-steps", "4")


@pytest.fixture
def run(cli):
  """``lrlab sweep ARGS`` in this process, from ``tmp_path``: ``(code, stdout, stderr)``."""
  return cli(command.main, *TINY)


def test_the_search_ranks_by_the_metric_given(run, tmp_path):
  # It used to rank by val_accuracy whatever --metric said, in the folder of the default run.
  code, out, _ = run(*HALVING, "--metric", "final_val_loss", "--out", "loss")
  assert code == 0 and "val_loss = " in out and "val_accuracy = " not in out
  assert SearchResult.load(tmp_path / "loss").metric == "val_loss"
  claim = json.loads((tmp_path / "loss" / "settings.json").read_text())
  assert claim["settings"]["search"]["metric"] == "val_loss"
  code, out, _ = run(*HALVING, "--out", "default")
  assert code == 0 and SearchResult.load(tmp_path / "default").metric == "val_accuracy"
  claim_default = json.loads((tmp_path / "default" / "settings.json").read_text())
  assert "metric" not in claim_default["settings"]["search"]  # older folders keep their hash
  assert claim_default["hash"] != claim["hash"]
  code, _, err = run(*HALVING, "--metric", "final_val_loss", "--out", "default")
  assert code == 2 and "holds another run" in err  # a different search: not re-read


def test_a_metric_the_search_cannot_rank_by_is_one_line(run, tmp_path):
  code, out, err = run(*HALVING, "--metric", "best_val_loss", "--out", "b")
  assert (code, out) == (2, "") and err.strip().splitlines() == [
    "lrlab sweep: error: --metric with --search must be one of final_val_loss, final_val_accuracy, "
    "final_train_loss (the search ranks members by a metric's value at each decision); got "
    "'best_val_loss'."
  ]
  assert not (tmp_path / "b").exists()
