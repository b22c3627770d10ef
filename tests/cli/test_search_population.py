"""``lrlab sweep --search pbt``: a population PBT cannot run is refused before the folder is
claimed, so ``--overwrite`` keeps the old results."""

import os

import pytest

from lrlab.cli import sweep as command

TINY = ["--task", "quadratic", "--optimizer", "sgd", "--steps", "36", "--eval-every", "4",
        "--batch-size", "50", "--seeds", "1", "--no-progress", "--chunk-size", "2"]  # fmt: skip


@pytest.fixture
def run(cli):
  """``lrlab sweep ARGS`` in this process, from ``tmp_path``: ``(code, stdout, stderr)``."""
  return cli(command.main, *TINY)


@pytest.mark.parametrize(
  ("args", "message"),
  [
    (
      ("--grid", "lr=0.1"),
      "error: --search pbt with --exploit truncation needs a population of at least 4 members",
    ),
    (
      ("--grid", "lr=0.01,0.1"),
      "error: --search pbt with --exploit truncation needs a population of at least 4 members",
    ),
    (
      ("--grid", "lr=0.1", "--exploit", "tournament"),
      "error: --search pbt with --exploit tournament needs a population of at least 2 members",
    ),
    (
      ("--grid", "lr=0.01:1:4:log", "--resample-probability", "0.5", "--resample",
       "momentum=0.5,0.9"),
      "error: --resample must name a float axis of --grid, one of lr; got 'momentum'.",
    ),
  ],
)  # fmt: skip
def test_a_population_pbt_refuses_stops_before_the_overwrite(run, tmp_path, args, message):
  # These used to claim the folder (removing the old sweep under --overwrite) and then fail
  # inside lrlab.search.pbt, naming init_grid, fraction or "resample axis".
  assert run("--grid", "lr=0.1,0.5", "--out", "r")[0] == 0
  before = sorted(os.listdir(tmp_path / "r"))
  code, out, err = run("--search", "pbt", "--interval", "12", "--out", "r", "--overwrite", *args)
  assert (code, out, err.count("\n")) == (2, "", 1) and err.startswith(f"lrlab sweep: {message}"), (
    err
  )
  assert sorted(os.listdir(tmp_path / "r")) == before


def test_the_smallest_populations_still_run(run):
  assert run("--search", "pbt", "--interval", "12", "--grid", "lr=0.01:1:4:log")[0] == 0
  code = run("--search", "pbt", "--interval", "12", "--grid", "lr=0.01,0.1",
             "--exploit", "tournament")[0]  # fmt: skip
  assert code == 0
