"""Hand-made sweep results with known answers, shared by the result and plot tests.

Every run's curves follow one shape, set by its final validation accuracy ``f``
(evaluations at steps 0, 10, 20, 30, 40):

- ``val_accuracy = [0.1, f / 2, f + 0.05, f, f]``: peaks at step 20;
- ``test_accuracy = val_accuracy - 0.01 * e``: so the test accuracy at the
  best validation accuracy is ``f + 0.03`` (and ``f - 0.04`` at the end);
- ``val_loss = [2, 1.5 - f, 1.2 - f, 1.1 - f, 1.05 - f]``: lowest at the end;
- ``test_loss = val_loss + 0.1``, ``train_loss = val_loss - 0.1``.

A diverged run keeps these (finite, frozen) curves and is flagged.
"""

import numpy as np

from lrlab import sweep, train

STEPS = np.array([0, 10, 20, 30, 40])
NUM_STEPS = 40


def curves(final: np.ndarray) -> dict[str, np.ndarray]:
  """The per-evaluation fields for finals of any shape ``(..., )`` -> ``(..., 5)``."""
  f = np.asarray(final, np.float64)[..., None]
  e = np.arange(5)
  val_accuracy = np.concatenate(
    [np.full_like(f, 0.1), f / 2, f + 0.05, f, f], axis=-1
  )  # fmt: skip
  val_loss = np.concatenate([np.full_like(f, 2.0), 1.5 - f, 1.2 - f, 1.1 - f, 1.05 - f], axis=-1)
  return {
    "val_accuracy": val_accuracy,
    "test_accuracy": val_accuracy - 0.01 * e,
    "val_loss": val_loss,
    "test_loss": val_loss + 0.1,
    "train_loss": val_loss - 0.1,
  }


def make_result(
  grid: dict[str, np.ndarray],
  final: np.ndarray,
  diverged: np.ndarray | None = None,
  *,
  regression: bool = False,
  config: dict | None = None,
) -> sweep.SweepResult:
  """A result whose run ``(s, k)`` has final validation accuracy ``final[s, k]``."""
  final = np.asarray(final, np.float64)
  num_seeds, num_members = final.shape
  if diverged is None:
    diverged = np.zeros(final.shape, bool)
  fields = curves(final)
  if regression:
    fields["val_accuracy"] = np.full_like(fields["val_accuracy"], np.nan)
    fields["test_accuracy"] = np.full_like(fields["test_accuracy"], np.nan)
  lr = grid.get("lr", np.ones(num_members))
  history = train.History(
    step=np.broadcast_to(STEPS, (*final.shape, 5)).astype(np.int32),
    learning_rate=np.broadcast_to(
      np.asarray(lr, np.float32)[:, None], (num_seeds, num_members, NUM_STEPS)
    ).copy(),
    diverged=np.asarray(diverged, bool),
    diverged_step=np.where(diverged, 15, -1).astype(np.int32),
    **{name: value.astype(np.float32) for name, value in fields.items()},
  )
  config = {"task": "synthetic", "steps": NUM_STEPS, "target": None, **(config or {})}
  return sweep.SweepResult(grid, np.arange(num_seeds), history, config, {"note": "test"})


# A U-shaped accuracy in log10(lr), peak 0.9 at lr = 1e-2, on 9 log-spaced rates.
LRS = np.geomspace(1e-4, 1.0, 9)
U_FINAL = 0.9 - 0.1 * (np.log10(LRS) + 2) ** 2  # 0.5 0.675 0.8 0.875 0.9 0.875 0.8 0.675 0.5
SEED_OFFSETS = np.array([0.02, -0.02])


def u_shaped() -> sweep.SweepResult:
  """Two seeds (finals +-0.02); lr >= 10^-0.5 diverges in both seeds, lr = 0.1 in seed 1."""
  final = U_FINAL[None, :] + SEED_OFFSETS[:, None]
  diverged = np.zeros((2, 9), bool)
  diverged[:, 7:] = True
  diverged[1, 6] = True
  return make_result({"lr": LRS}, final, diverged)


# 4 learning rates x 3 momenta (lr varies slowest); nan marks divergence.
TABLE_2D = np.array([
  # m = 0.0  0.5     0.9
  [0.50, 0.55, 0.60],  # lr = 1e-3
  [0.70, 0.80, 0.90],  # lr = 1e-2
  [0.80, 0.85, 0.70],  # lr = 1e-1
  [0.60, np.nan, np.nan],  # lr = 1
])  # fmt: skip


def two_dimensional() -> sweep.SweepResult:
  """One seed on ``product(lr=[1e-3, 1e-2, 1e-1, 1], momentum=[0, 0.5, 0.9])``."""
  grid = sweep.product(lr=[1e-3, 1e-2, 1e-1, 1.0], momentum=[0.0, 0.5, 0.9])
  flat = TABLE_2D.reshape(1, 12)
  diverged = np.isnan(flat)
  return make_result(grid, np.where(diverged, 0.3, flat), diverged)
