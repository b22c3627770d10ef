"""``search.plot_pbt`` on a hand-made PBT result (3 members, 2 seeds, exploits at 10 and 20)."""

import dataclasses

import numpy as np
import pytest

from lrlab import search
from tests.sweep import synthetic


def _population() -> search.SearchResult:
  """Member 2 copies member 1 at step 10 (rate 0.125), member 0 copies 1 at step 20 (0.08)."""
  sweep = synthetic.make_result({"lr": np.array([0.01, 0.1, 1.0])}, [[0.5, 0.6, 0.7]] * 2)
  rates = np.array([[0.01, 0.01, 0.08], [0.1, 0.1, 0.1], [1.0, 0.125, 0.125]])
  lineage = np.array([[0, 1], [1, 1], [1, 2]])
  return search.SearchResult(
    sweep, np.full((2, 3), 40), np.zeros((2, 3), int), [[40]], np.zeros(3, int), "val_loss",
    lineage=np.stack([lineage] * 2), schedule={"lr": np.stack([rates] * 2)},
    exploit_steps=np.array([10, 20]),
  )  # fmt: skip


def test_plot_pbt_draws_each_schedule_and_copy(tmp_path):
  top, _ = search.plot_pbt(_population(), tmp_path / "pbt.png", seed=np.int64(1)).axes
  solid = [line for line in top.get_lines() if line.get_linestyle() == "-"][:3]
  assert [line.get_xdata().tolist() for line in solid] == [[0, 10, 20, 40]] * 3
  np.testing.assert_allclose(solid[2].get_ydata(), [1.0, 0.125, 0.125, 0.125])
  copies = [line for line in top.get_lines() if line.get_linestyle() == ":"]
  assert [(c.get_xdata().tolist(), c.get_ydata().tolist()) for c in copies] == [
    ([10, 10], [0.1, 0.125]),  # member 2 from member 1's rate before the exploit
    ([20, 20], [0.1, 0.08]),
  ]


@pytest.mark.parametrize("seed", [1.0, True, 2, -1])
def test_plot_pbt_refuses_a_seed_that_is_not_an_index(seed, tmp_path):
  # 1.0 was an IndexError from NumPy, True a boolean mask that failed inside matplotlib.
  with pytest.raises(ValueError, match=r"^seed must be an integer in \[0, 2\); got "):
    search.plot_pbt(_population(), tmp_path / "x.png", seed=seed)


def test_plot_pbt_stops_a_diverged_member_at_its_divergence(tmp_path):
  # Member 2 diverges at step 25, after the last exploit (20), and is frozen with a blown-up
  # loss: its evaluations at 30 and 40 repeat a value that means nothing. It was drawn solid
  # to step 40 as if trained, and its 1e6 set the log axis's range.
  result = _population()
  history = result.sweep.history
  loss = history.val_loss.copy()
  loss[:, 2, 3:] = 1e6
  flags = np.array([[False, False, True]] * 2)
  history = history._replace(
    val_loss=loss, diverged=flags, diverged_step=np.where(flags, 25, -1).astype(np.int32)
  )
  sweep = type(result.sweep)(result.sweep.grid, result.sweep.seeds, history, result.sweep.config)
  result = dataclasses.replace(result, sweep=sweep)
  _, bottom = search.plot_pbt(result, tmp_path / "pbt.png").axes
  lines = [line for line in bottom.get_lines() if len(np.atleast_1d(line.get_xdata())) > 0]
  curves = [line for line in lines if line.get_marker() in ("None", None, "")][:3]
  assert [line.get_xdata().tolist() for line in curves] == [[0, 10, 20, 30, 40]] * 2 + [[0, 10, 20]]
  assert [line.get_linestyle() for line in curves] == ["-", "-", "--"]
  marks = [line for line in lines if line.get_marker() == "x"]
  assert [(m.get_xdata().tolist(), m.get_ydata().tolist()) for m in marks] == [([20], [0.5])]
  assert bottom.get_ylim()[1] < 10  # the healthy members' range, not the blown-up loss
