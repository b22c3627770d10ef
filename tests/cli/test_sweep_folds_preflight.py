"""``lrlab sweep --folds``: a batch or a fold count the folds cannot hold is refused before the
folder is claimed, so ``--overwrite`` keeps the old results."""

import os

import pytest

from lrlab.cli import sweep as command

TINY = ["--task", "quadratic", "--optimizer", "sgd", "--steps", "20", "--eval-every", "10",
        "--batch-size", "50", "--seeds", "1", "--no-progress"]  # fmt: skip


@pytest.fixture
def run(cli):
  """``lrlab sweep ARGS`` in this process, from ``tmp_path``: ``(code, stdout, stderr)``."""
  return cli(command.main, *TINY)


@pytest.mark.parametrize(
  ("args", "message"),
  [
    # quadratic: 1000 train + 250 val examples; 2 folds of 625, each trains on 625.
    (("--folds", "2", "--batch-size", "900"),
     "error: --batch-size must be at most the 625 examples each fold trains on with --folds 2 "
     "of task 'quadratic'; got 900."),
    (("--folds", "2000", "--batch-size", "1"),
     "error: --folds must be at most the 1250 training and validation examples of task "
     "'quadratic'; got 2000."),
  ],
)  # fmt: skip
def test_folds_that_do_not_fit_stop_before_the_overwrite(run, tmp_path, args, message):
  # These used to claim the folder (removing the old sweep under --overwrite), print the
  # header and fail in lrlab.train.Trainer naming batch_size or folds.
  assert run("--grid", "lr=0.1,0.2", "--out", "r")[0] == 0
  before = sorted(os.listdir(tmp_path / "r"))
  code, out, err = run("--grid", "lr=0.1,0.3", "--out", "r", "--overwrite", *args)
  assert (code, out) == (2, "") and err.strip().splitlines() == [message]
  assert sorted(os.listdir(tmp_path / "r")) == before


def test_the_largest_batch_a_fold_holds_still_runs(run):
  code, out, _ = run("--grid", "lr=0.1", "--folds", "2", "--batch-size", "625")
  assert code == 0 and "Cross-validated over 2 folds" in out
