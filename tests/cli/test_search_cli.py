"""``lrlab sweep --search halving|hyperband|pbt``: the search from the command line."""

import importlib
import json

import pytest

from lrlab.cli import sweep as command
from lrlab.search import SearchResult

TINY = ["--task", "quadratic", "--optimizer", "sgd", "--steps", "36", "--eval-every", "4",
        "--batch-size", "50", "--seeds", "1", "--no-progress", "--chunk-size", "2"]  # fmt: skip


@pytest.fixture
def run(cli):
  """``lrlab sweep ARGS`` in this process, from ``tmp_path``: ``(code, stdout, stderr)``."""
  return cli(command.main, *TINY)


def test_halving_writes_where_each_member_stopped_and_a_rerun_reads_it(run, tmp_path):
  args = ("--grid", "lr=0.01:3:9:log", "--search", "halving", "--min-steps", "4", "--out", "h")
  code, out, _ = run(*args)
  assert code == 0
  saved = SearchResult.load(tmp_path / "h")
  assert sorted(saved.stopped_step[0].tolist()) == [4] * 6 + [12] * 2 + [36]  # 9 -> 3 -> 1
  assert saved.model_steps == 9 * 4 + 3 * 8 + 1 * 24
  assert f"Model-steps: {9 * 4 + 3 * 8 + 24:,} (26% of the full grid's {9 * 36:,})" in out
  document = json.loads((tmp_path / "h" / "search.json").read_text())
  assert document["answer"] == out.splitlines()[: len(document["answer"])]
  lr = saved.best()["hyperparameters"]["lr"]
  assert f"Best lr = {lr:.4g}" in out
  assert not (tmp_path / "h" / "checkpoint").exists()
  assert (tmp_path / "h" / "curves.npz").exists()
  files = "(search.json, results.csv, curves.npz, sweep.json, curves_val_loss.png)"
  assert f"Results: h/ {files}" in out and (tmp_path / "h" / "curves_val_loss.png").exists()
  code, again, _ = run(*args)
  assert code == 0 and "holds this search, finished" in again and f"Best lr = {lr:.4g}" in again


def test_pbt_writes_lineage_schedules_and_its_figure_and_takes_the_explore_flags(run, tmp_path):
  """The lineage, schedules and figure are written; every replaced member's new rate is its
  parent's times 0.5 or 2, or one of the resample values (the default factors 0.8 and 1.25
  would give none of these)."""
  code, out, _ = run("--grid", "lr=0.01:0.8:4:log", "--search", "pbt", "--interval", "12",
                   "--perturb", "0.5,2", "--resample-probability", "0.5",
                   "--resample", "lr=0.003,0.3", "--out", "p")  # fmt: skip
  assert code == 0
  saved = SearchResult.load(tmp_path / "p")
  assert saved.lineage.shape == (1, 4, 2)  # exploits at 12 and 24
  assert saved.schedule["lr"].shape == (1, 4, 3)
  assert (tmp_path / "p" / "pbt.png").stat().st_size > 0
  assert out.rstrip().endswith("sweep.json, curves_val_loss.png, pbt.png)")
  assert "Its schedule after each exploit: lr:" in out
  lineage, lrs = saved.lineage[0], saved.schedule["lr"][0]
  replaced = 0
  for i in range(lineage.shape[1]):
    for k, parent in enumerate(lineage[:, i]):
      if parent == k:
        assert lrs[k, i + 1] == lrs[k, i]
        continue
      replaced += 1
      candidates = [lrs[parent, i] * 0.5, lrs[parent, i] * 2, 0.003, 0.3]
      assert min(abs(lrs[k, i + 1] / c - 1) for c in candidates) < 1e-6
  assert replaced == 2  # fraction 0.25 of 4 members, at each of 2 exploits


@pytest.mark.parametrize(
  ("args", "message"),
  [
    (("--search", "halving", "--eta", "1"), "error: --eta must be an integer >= 2"),
    (("--search", "halving", "--min-steps", "5"), "error: --min-steps must divide --steps"),
    (("--search", "pbt", "--interval", "7"), "error: --interval must divide --steps"),
    (("--search", "pbt", "--interval", "36"), "error: --interval must be less than --steps (36)"),
    (
      ("--search", "hyperband", "--eval-every", "36"),
      "error: --min-steps must be less than --steps (36) with --search hyperband; got 36 "
      "(--eval-every, its default).",
    ),
    (
      ("--search", "hyperband", "--steps", "40"),
      "error: --search hyperband needs --steps = --min-steps * 3**k with --min-steps a multiple "
      "of --eval-every (4); --steps 40 has none: give e.g. --steps 12, 36, 108, 324,",
    ),
    (("--search", "sha"), "argument --search: invalid choice: 'sha'"),
  ],
)
def test_bad_search_flags_are_one_line(run, capsys, args, message):
  try:
    code, _, err = run(*args)
  except SystemExit as exit_:
    code, err = exit_.code, capsys.readouterr().err
  assert code == 2
  assert message in err and err.count("\n") == 1


@pytest.mark.parametrize(
  ("args", "message"),
  [
    (("--perturb", "0.5,-2"), "argument --perturb: must be comma-separated positive numbers"),
    (("--resample-probability", "1.5"), "argument --resample-probability: must be a number in"),
    (("--resample-probability", "0.2"), "error: --resample-probability 0.2 needs --resample"),
    (
      ("--resample-probability", "0.2", "--resample", "lr=a,b"),
      "error: --resample cannot read 'a'",
    ),
    (("--resample", "lr=0.1,1"), "error: --resample is used only with --resample-probability"),
    (
      ("--resample-probability", "0.2", "--resample", "wd=0.1,1"),
      "error: --resample must name a float axis of --grid, one of lr; got 'wd'.",
    ),
  ],
)
def test_bad_pbt_flags_are_one_line(run, capsys, args, message):
  try:
    code, _, err = run("--search", "pbt", "--interval", "12", *args)
  except SystemExit as exit_:
    code, err = exit_.code, capsys.readouterr().err
  assert code == 2
  assert message in err and err.count("\n") == 1


def test_a_pbt_flag_with_another_method_is_one_line(run):
  code, _, err = run("--search", "halving", "--min-steps", "4", "--perturb", "0.5,2")
  assert code == 2
  assert "error: --perturb applies to --search pbt only; got --search halving." in err
  assert err.count("\n") == 1


def test_the_clis_perturb_and_exploit_defaults_are_pbts():
  # The CLI keeps the default without importing JAX at start-up; it must not drift from pbt's.
  import inspect

  from lrlab import search
  from lrlab.cli import search as cli_search

  default = inspect.signature(search.pbt).parameters["perturb"].default
  assert tuple(default) == cli_search.PERTURB
  exploits = importlib.import_module("lrlab.search.pbt").EXPLOITS  # the module, not the function
  assert exploits == cli_search.EXPLOITS
  assert inspect.signature(search.pbt).parameters["exploit"].default == exploits[0]


def test_pbt_takes_the_tournament_exploit(run, tmp_path):
  """--exploit tournament: a member is replaced only by a copy of one that ranks above it (a
  lower validation loss at that exploit), and the result records it."""
  code, _, _ = run("--grid", "lr=0.01:0.8:6:log", "--search", "pbt", "--interval", "12",
                   "--exploit", "tournament", "--out", "t")  # fmt: skip
  assert code == 0
  saved = SearchResult.load(tmp_path / "t")
  assert saved.config["exploit"] == "tournament"
  loss = saved.sweep.history.val_loss[0]
  replaced = 0
  for i, step in enumerate(saved.exploit_steps):
    at = loss[:, step // saved.sweep.config["eval_every"]]
    for k, parent in enumerate(saved.lineage[0, :, i]):
      if parent != k:
        replaced += 1
        assert (at[parent], parent) < (at[k], k)
  assert replaced > 0
  code, _, err = run("--search", "halving", "--min-steps", "4", "--exploit", "tournament")
  assert code == 2 and "--exploit applies to --search pbt only" in err


def test_pbt_over_several_seeds_answers_per_population(run, tmp_path):
  """Each seed is its own population: the answer names each seed's best member and the mean
  ± SE of their metric, as SearchResult.best(seed=s) gives them."""
  import numpy as np

  code, out, _ = run("--grid", "lr=0.01:0.8:4:log", "--search", "pbt", "--interval", "12",
                   "--seeds", "3", "--out", "p3")  # fmt: skip
  assert code == 0
  saved = SearchResult.load(tmp_path / "p3")
  values = []
  for s in range(3):
    best = saved.best(seed=s)
    values.append(best["value"])
    ended = best["schedule"]["lr"][-1]
    assert (f"Seed {s}: best member {best['index']} (val_loss = {best['value']:.4g} at 36 "
            f"steps); its schedule ended at lr = {ended:.4g}.") in out  # fmt: skip
  se = np.std(values, ddof=1) / np.sqrt(3)
  assert f"Over the 3 populations: val_loss = {np.mean(values):.4g} ± {se:.2g} (mean ± SE)." in out
  assert "Best member" not in out  # no pooled member: slots of different seeds are unrelated


@pytest.mark.parametrize(
  ("args", "message"),
  [
    (("--eta", "5"), "error: --eta applies to --search halving or hyperband only; got no --search"),
    (("--exploit", "tournament"), "error: --exploit applies to --search pbt only; got no --search"),
    (("--search", "halving", "--interval", "10"), "error: --interval applies to --search pbt"),
    (("--search", "halving", "--folds", "2"), "error: --search takes neither --folds nor --target"),
    (
      ("--search", "halving", "--tolerance", "0.2"),
      "error: --tolerance applies to a full sweep only (its usable range); got --tolerance 0.2 "
      "with --search halving.",
    ),
  ],
)
def test_a_search_flag_that_would_be_ignored_is_refused(run, args, message):
  code, _, err = run(*args)
  assert code == 2 and message in err and err.count("\n") == 1


def test_a_failure_after_the_search_trained_keeps_its_work(run, tmp_path, monkeypatch):
  """Training done, saving fails (here the figure; a full disk, a Ctrl-C while plotting): the
  same command then saves the finished search from its checkpoint instead of training again."""
  from lrlab import sweep

  args = ("--grid", "lr=0.01:3:9:log", "--search", "halving", "--min-steps", "4", "--out", "h")
  plot = sweep.plot_curves

  def broken(*a, **k):
    raise OSError("No space left on device")

  monkeypatch.setattr(sweep, "plot_curves", broken)
  with pytest.raises(OSError, match="No space left"):
    run(*args)
  monkeypatch.setattr(sweep, "plot_curves", plot)
  code, out, _ = run(*args)
  assert code == 0 and "Best lr = " in out
  saved = SearchResult.load(tmp_path / "h")
  assert saved.metadata["resumed_from"] == {"seed": 1, "segment": 0}  # after its only seed
  assert sorted(saved.stopped_step[0].tolist()) == [4] * 6 + [12] * 2 + [36]
  assert not (tmp_path / "h" / "checkpoint").exists()


def test_halving_over_seeds_that_keep_different_members_finishes(run, tmp_path):
  # Seeds 0 and 1 keep different members to the end: none has a final accuracy in every
  # seed, and the curves figure and sweep.json's summary raised after training.
  code, out, err = run(
    "--task", "digits-logreg", "--grid", "lr=0.01:3:9:log", "--search", "halving",
    "--min-steps", "4", "--eval-every", "2", "--batch-size", "8", "--seeds", "2", "--out", "apart",
  )  # fmt: skip
  assert code == 0, err
  saved = SearchResult.load(tmp_path / "apart")
  assert saved.metric == "val_accuracy"
  finishers = [saved.stopped_step[s].tolist().index(36) for s in range(2)]
  assert finishers[0] != finishers[1]
  assert (tmp_path / "apart" / "curves_val_accuracy.png").exists()
  assert f"Best lr = {saved.best()['hyperparameters']['lr']:.4g}" in out
  picks = [saved.best(seed=s) for s in range(2)]
  assert ("Each seed's own pick: " + "; ".join(
    f"seed {s}: lr = {p['hyperparameters']['lr']:.4g} ({p['value']:.4g})"
    for s, p in enumerate(picks)) + ".") in out  # fmt: skip


def test_hyperband_finds_a_first_rung_that_fits_the_budget(run, tmp_path):
  # 48 steps in evaluations of 4: the default --min-steps, --eval-every, makes 48 / 4 = 12 no
  # power of 3, and `lrlab sweep --search hyperband` failed at its defaults (3000 steps, 100).
  code, _, err = run("--grid", "lr=0.01:3:9:log", "--search", "hyperband", "--steps", "48",
                     "--out", "hb")  # fmt: skip
  assert code == 0, err
  saved = SearchResult.load(tmp_path / "hb")
  assert saved.rungs == [[16, 48], [48]]  # 48 = 16 * 3: Li et al.'s brackets s = 1, 0
  assert saved.sweep.config["min_steps"] == 16


def test_a_stopped_search_says_where_and_its_rerun_where_the_results_are(
  run, tmp_path, monkeypatch
):
  # The stop printed its position as a dict ("at {'seed': 0, 'segment': 1}"); a finished
  # search's re-run printed no "Results:" line, where a sweep's does.
  from lrlab.cli import common

  def stop_now(self):
    self.received = "SIGINT"
    return True

  args = ("--grid", "lr=0.01:3:9:log", "--search", "halving", "--min-steps", "4", "--out", "s")
  with monkeypatch.context() as patch:
    patch.setattr(common.StopRequest, "__call__", stop_now)
    code, _, err = run(*args)
  assert code == common.EXIT_INTERRUPTED
  assert "checkpoint/ at seed 0, segment 1; run the same command again" in err
  assert run(*args)[0] == 0
  code, again, _ = run(*args)
  assert code == 0 and "holds this search, finished" in again
  assert again.splitlines()[-1].startswith("Results: s/ (search.json, results.csv")
