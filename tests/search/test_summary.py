"""``SearchResult.summary``: the lines ``lrlab sweep --search`` prints, on hand-made searches
whose answers are worked out by hand (3 learning rates or 2 PBT members, 10 steps)."""

import numpy as np

from lrlab import search, sweep, train

LRS = np.array([0.01, 0.1, 1.0])


def _search(method, final, stopped, model_steps, **pbt):
  """Members' val_loss is 1.0 at step 0 and ``final[s, k]`` at step 10 if they got there."""
  final = np.asarray(final, np.float64)
  loss = np.stack([np.ones_like(final), np.where(stopped == 10, final, np.nan)], axis=-1)
  lr = LRS[: final.shape[1]]
  history = train.History(
    step=np.array([0, 10]), train_loss=loss, val_loss=loss, val_accuracy=np.full_like(loss, np.nan),
    test_loss=loss, test_accuracy=np.full_like(loss, np.nan),
    learning_rate=np.broadcast_to(lr[:, None], (*final.shape, 10)).copy(),
    diverged=np.zeros(final.shape, bool), diverged_step=np.full(final.shape, -1),
  )  # fmt: skip
  config = {"task": "toy", "steps": 10, "method": method, "target": None}
  result = sweep.SweepResult({"lr": lr}, np.arange(len(final)), history, config,
                             {"model_steps": model_steps})  # fmt: skip
  return search.SearchResult(result, stopped, (stopped == 10).astype(int), [[2, 10]],
                             np.zeros(final.shape[1], int), "val_loss", **pbt)  # fmt: skip


def test_halving_over_two_seeds_that_pick_different_members():
  # Each seed ranks at step 2 and keeps one member: seed 0 keeps lr = 0.1 (0.2 at step 10),
  # seed 1 keeps lr = 1 (0.3). One vote each, so the lower mean answers: lr = 0.1, 0.2.
  # Each seed spends 3 * 2 + 8 = 14 model-steps, 28 in all, of a full grid's 3 * 2 * 10 = 60.
  result = _search("successive_halving", [[0.9, 0.2, 0.9], [0.9, 0.9, 0.3]],
                   np.array([[2, 10, 2], [2, 2, 10]]), 28)  # fmt: skip
  assert result.summary() == (
    "successive_halving: 3 members x 2 seed(s) on 'toy'.\n"
    "Best lr = 0.1: val_loss = 0.2 at 10 steps (mean of the 1 seed(s) it finished; picked by 1 "
    "of 2 seeds).\n"
    "Each seed's own pick: seed 0: lr = 0.1 (0.2); seed 1: lr = 1 (0.3).\n"
    "Model-steps: 28 (47% of the full grid's 60)."
  )
  # The grid may be larger than the members (Hyperband draws from it): 28 of 9 * 2 * 10.
  assert result.summary(9).endswith("\nModel-steps: 28 (16% of the full grid's 180).")
  hyperband = _search("hyperband", [[0.9, 0.2, 0.9]], np.array([[2, 10, 2]]), 14)
  assert hyperband.summary().endswith("\nModel-steps: 14.")  # its grid's size is not known


def test_pbt_over_two_seeds_answers_each_population_then_their_mean():
  # Seed 0's best is member 1 (0.3), its rate doubled to 0.2; seed 1's is member 0 (0.5),
  # halved to 0.005. Mean 0.4, SE = std(0.3, 0.5; ddof 1) / sqrt(2) = 0.1.
  schedule = {"lr": np.array([[[0.01, 0.02], [0.1, 0.2]], [[0.01, 0.005], [0.1, 0.05]]])}
  result = _search("pbt", [[0.4, 0.3], [0.5, 0.6]], np.full((2, 2), 10), 40,
                   lineage=np.array([[[0], [1]], [[0], [1]]]), schedule=schedule,
                   exploit_steps=np.array([5]))  # fmt: skip
  assert result.summary() == (
    "pbt: 2 members x 2 seed(s) on 'toy'.\n"
    "Seed 0: best member 1 (val_loss = 0.3 at 10 steps); its schedule ended at lr = 0.2.\n"
    "Seed 1: best member 0 (val_loss = 0.5 at 10 steps); its schedule ended at lr = 0.005.\n"
    "Over the 2 populations: val_loss = 0.4 ± 0.1 (mean ± SE).\n"
    "Model-steps: 40 (100% of the full grid's 40)."
  )
