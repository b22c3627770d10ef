"""k-fold cross-validation read as replicates: a sweep run with ``folds=k`` regrouped so that
every setting keeps one member and each seed's folds become replicates of it."""

from typing import Any

import numpy as np

from lrlab import train


def cross_validated(result: Any) -> Any:
  """``result`` with its ``"fold"`` axis moved into the replicate axis.

  See :meth:`lrlab.sweep.SweepResult.cross_validated`: seed ``s``, fold ``f``
  becomes replicate ``s * k + f``, and the config records ``cross_validated = k``.

  Raises:
    ValueError: the grid has no ``"fold"`` axis, or not the layout ``run`` gives it.
  """
  if "fold" not in result.grid:
    raise ValueError(
      f"cross_validated needs a sweep run with folds=; the grid has axes {', '.join(result.grid)}."
    )
  folds = int(np.max(result.grid["fold"])) + 1
  settings, uneven = divmod(result.num_members, folds)
  # As lrlab.sweep.run builds it: folds 0..k-1 fastest, each setting's k members side by side.
  side_by_side = lambda v: (v.reshape(settings, folds) == v[::folds, None]).all()
  if uneven or not (
    np.array_equal(result.grid["fold"], np.tile(np.arange(folds), settings))
    and all(side_by_side(v) for k, v in result.grid.items() if k != "fold")
  ):
    raise ValueError(
      "cross_validated needs the grid lrlab.sweep.run builds with folds=: the 'fold' axis "
      f"0..{folds - 1} varying fastest, each setting's folds side by side; got fold "
      f"{result.grid['fold'].tolist()}."
    )

  def regroup(a: np.ndarray) -> np.ndarray:
    a = a.reshape(result.num_seeds, settings, folds, *a.shape[2:])
    return np.swapaxes(a, 1, 2).reshape(result.num_seeds * folds, settings, *a.shape[3:])

  return type(result)(
    grid={k: v[::folds] for k, v in result.grid.items() if k != "fold"},
    seeds=(np.asarray(result.seeds)[:, None] * folds + np.arange(folds)).ravel(),
    history=train.History(*(regroup(np.asarray(a)) for a in result.history)),
    config={**result.config, "cross_validated": folds},
    metadata=result.metadata,
  )
