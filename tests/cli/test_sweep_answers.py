"""``lrlab sweep``: flags it would ignore are refused, and an answer it lacks is not named."""

import json

import pytest

from lrlab.cli import sweep as command
from tests.cli.test_sweep import TINY


@pytest.fixture
def run(cli):
  """``lrlab sweep ARGS`` in this process, from ``tmp_path``: ``(code, stdout, stderr)``."""
  return cli(command.main, *TINY)


# Each used to train and record --lr 0.001 or 0.5 while the lr axis set every member's rate.
@pytest.mark.parametrize("grid", [(), ("--grid", "lr=0.1,0.2")])
def test_lr_with_an_lr_axis_stops_before_any_compute(run, tmp_path, grid):
  code, out, err = run(*grid, "--lr", "0.5", "--out", "r")
  assert (code, out) == (2, "") and err.strip().splitlines() == [
    "lrlab sweep: error: --lr is the rate of a sweep whose --grid has no lr axis (the default "
    "--grid has one); leave out --lr or the lr axis; got --lr 0.5."
  ]
  assert not (tmp_path / "r").exists()


def test_lr_without_an_lr_axis_is_the_rate_it_records(run, tmp_path):
  for lr, out in ((None, "a"), ("0.5", "b")):
    flags = ("--lr", lr) if lr else ()
    assert run("--grid", "momentum=0,0.5", *flags, "--out", out)[0] == 0
    saved = json.loads((tmp_path / out / "sweep.json").read_text())
    assert saved["config"]["tx"]["lr"] == (float(lr) if lr else 1e-3)


def test_a_schedule_argument_for_the_constant_rate_says_it_takes_none(run, tmp_path):
  # It said "must be among ; got x."
  code, out, err = run("--grid", "lr=0.1", "--schedule-arg", "x=1", "--out", "r")
  assert (code, out) == (2, "") and err.strip().splitlines() == [
    "lrlab sweep: error: --schedule-arg (arguments of constant) takes none; got x."
  ]


def test_a_target_no_member_reaches_names_no_best_setting(run, tmp_path):
  # It printed "Best lr = 0.1: steps_to_target = inf ± nan": the first member, as if it won.
  flags = ("--grid", "lr=0.1,0.2", "--target", "val_loss=1e-12", "--metric", "steps_to_target")
  code, out, _ = run(*flags, "--out", "r")
  assert code == 0
  assert out.splitlines()[2] == (
    "Best lr: none, no member reached the target (val_loss <= 1e-12) in every seed "
    "(steps_to_target is inf for every member)."
  )
  summary = json.loads((tmp_path / "r" / "sweep.json").read_text())["summary"]
  assert summary["best"]["value"] is None and summary["usable_range"] is None


def test_a_best_member_at_chance_level_is_warned_of(run, tmp_path):
  # modular-addition after 20 steps: every setting still predicts as a constant would (loss
  # log 13 = 2.565 on balanced labels), yet the summary named a best rate and a usable range.
  from lrlab import analysis, sweep, tasks

  code, out, _ = run("--task", "modular-addition", "--task-arg", "p=13", "--optimizer", "adam",
                     "--grid", "lr=1e-4,1e-3", "--out", "dead")  # fmt: skip
  assert code == 0
  result = sweep.SweepResult.load(tmp_path / "dead")
  task = tasks.get("modular-addition", p=13)
  chance = analysis.chance_loss(task.dataset.y_train, 13)
  loss = result.seed_mean("final_train_loss")[result.best(warn=False)["index"]]
  assert loss >= 0.95 * chance
  assert (f"Warning: the best member's final train loss, {loss:.4g}, is at chance level "
          f"({chance:.4g}, a constant prediction's)") in out  # fmt: skip
  # One that learned is not: digits-logreg at a good rate, well below log 10.
  code, out, _ = run("--task", "digits-logreg", "--optimizer", "adam", "--grid", "lr=0.01,0.03",
                     "--steps", "60", "--out", "alive")  # fmt: skip
  assert code == 0 and "chance level" not in out
