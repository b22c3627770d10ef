"""Successive halving and Hyperband inside the sweep's compiled program.

Every member trains in the same vmapped segment program as :func:`lrlab.sweep.run`;
at each rung the best ``1/eta`` of a bracket's members (per seed) go on, the rest
stop, and the survivors are gathered on device into fewer, fuller chunks. A
stopped member costs nothing from then on.

References:
  Jamieson & Talwalkar, "Non-stochastic Best Arm Identification and
  Hyperparameter Optimization", AISTATS 2016 (successive halving).
  Li, Jamieson, DeSalvo, Rostamizadeh & Talwalkar, "Hyperband: A Novel
  Bandit-Based Approach to Hyperparameter Optimization", JMLR 2018.
"""

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import jax
import numpy as np
from jax.typing import ArrayLike

from lrlab.search import driver
from lrlab.search.members import Ledger, Population, ranking, stack_ledgers
from lrlab.search.result import SearchResult
from lrlab.sweep import arguments
from lrlab.sweep.programs import MakeTx
from lrlab.sweep.result import SweepResult


def rung_steps(steps: int, min_steps: int, eta: int) -> list[int]:
  """The rungs of successive halving: ``min_steps * eta**i`` below ``steps``, then ``steps``.

  Example:
    >>> rung_steps(900, 100, 3)
    [100, 300, 900]
    >>> rung_steps(1000, 100, 3)
    [100, 300, 900, 1000]
  """
  rungs = []
  r = min_steps
  while r < steps:
    rungs.append(r)
    r *= eta
  return [*rungs, steps]


def hyperband_brackets(num_rungs: int, eta: int) -> list[tuple[int, int]]:
  """Hyperband's brackets ``(n_s, first_rung_s)`` for ``s = s_max, ..., 0``.

  With ``s_max = num_rungs - 1``, bracket ``s`` starts ``n_s = ceil((s_max + 1)
  / (s + 1) * eta**s)`` configurations at rung ``s_max - s`` (Li et al. 2018,
  Algorithm 1): the most aggressive bracket starts many members at the smallest
  budget, the last trains a few for the whole budget.

  Example:
    >>> hyperband_brackets(3, 3)
    [(9, 0), (5, 1), (3, 2)]
  """
  s_max = num_rungs - 1
  return [(-(-(s_max + 1) * eta**s // (s + 1)), s_max - s) for s in range(s_max, -1, -1)]


class _Halving(driver.Plan):
  """Brackets of successive halving run side by side: at a rung of its bracket, a member's
  bracket keeps the best ``max(1, n // eta)`` of its ``n`` live members."""

  def __init__(self, members, bracket, rungs, eta, metric, eval_every):
    self.members, self.bracket, self.rungs = members, bracket, rungs
    self.eta, self.metric, self.eval_every = eta, metric, eval_every
    self.final_members = eta * len(rungs)  # live before each bracket's last cut, at most
    self.extra = {}

  def begin(self, seed: int) -> np.ndarray:
    return np.arange(len(self.bracket))

  def after(self, seed: int, step: int, population: Population, ledger: Ledger) -> None:
    alive = population.alive
    keep = np.ones(len(alive), bool)
    for b, rungs in enumerate(self.rungs):
      if step not in rungs[:-1]:
        continue
      mine = np.flatnonzero(self.bracket[alive] == b)
      rows = alive[mine]
      values = ledger.evaluations[self.metric][rows, step // self.eval_every]
      order = ranking(values, self.metric, ledger.diverged[rows])
      keep[mine[order[max(1, len(rows) // self.eta) :]]] = False
    if not keep.all():
      positions = np.flatnonzero(keep)
      population.select(
        positions, alive[positions], {k: v[positions] for k, v in population.hp.items()}
      )


def _check_halving(eta: Any) -> None:
  if isinstance(eta, bool) or not isinstance(eta, int | np.integer) or eta < 2:
    raise ValueError(
      f"eta must be an integer >= 2 (keep the best 1/eta at each rung); got {eta!r}."
    )


def _search(
  method: str, task, make_tx, grid, members, bracket, rungs, *, steps, min_steps, eta, metric,
  batch_size, eval_every, seeds, key, devices, chunk_size, divergence_factor, checkpoint_dir,
  checkpoint_interval, should_stop, extra_config, keep_checkpoint,
) -> SearchResult:  # fmt: skip
  plan = _Halving(members, bracket, rungs, eta, metric, eval_every)
  config = {
    "method": method, "eta": eta, "min_steps": min_steps, "metric": metric, "target": None,
    "rungs": rungs, **extra_config,
  }  # fmt: skip
  ledgers, _, info, _ = driver.drive(
    plan, task, make_tx, steps=steps, segment_steps=min_steps, batch_size=batch_size,
    eval_every=eval_every, seeds=seeds, key=key, devices=devices, chunk_size=chunk_size,
    divergence_factor=divergence_factor, checkpoint_dir=checkpoint_dir,
    checkpoint_interval=checkpoint_interval, should_stop=should_stop, config=config,
    keep_checkpoint=keep_checkpoint,
  )  # fmt: skip
  history = stack_ledgers(ledgers, eval_every)
  stopped = np.stack([ledger.stopped_step for ledger in ledgers])
  rung = np.stack(
    [[rungs[b].index(t) for b, t in zip(bracket, row, strict=True)] for row in stopped]
  )
  sweep = SweepResult(members, seeds, history, info["config"], info["metadata"])
  return SearchResult(sweep, stopped, rung, rungs, bracket, metric)


def successive_halving(
  task: Any,
  make_tx: MakeTx,
  grid: Mapping[str, ArrayLike],
  *,
  steps: int,
  min_steps: int,
  key: jax.Array,
  eta: int = 3,
  metric: str = "val_loss",
  seeds: int | Sequence[int] = 1,
  batch_size: int | None = None,
  eval_every: int | None = None,
  devices: Sequence[jax.Device] | None = None,
  chunk_size: int | None = None,
  divergence_factor: float = 10.0,
  checkpoint_dir: str | None = None,
  checkpoint_interval: float = 30.0,
  should_stop: Callable[[], bool] | None = None,
  keep_checkpoint: bool = False,
) -> SearchResult:
  """Synchronous successive halving over ``grid`` (Jamieson & Talwalkar 2016), in one program.

  Every member starts; at rung ``i`` (after ``min_steps * eta**i`` steps, see
  :func:`rung_steps`) the best ``max(1, n // eta)`` of the ``n`` live members
  of each seed, by ``metric`` at that evaluation, go on and the rest stop
  (a diverged member ranks last; ties go to the earlier member). The
  survivors are gathered on device into full chunks, so the same compiled
  segment runs them. By default the chunk width is sized for the ``eta``
  members of the last rungs and kept throughout: one compiled program, the
  first rungs running more chunks of it (compiling a program per width cost
  more than the padding it saved on a 2-core CPU). A given ``chunk_size`` is
  kept while at least that many members are live, then narrows at each rung to
  the fewest device multiples that hold the survivors (a program per width). A
  member's numbers up to its stop are those of :func:`lrlab.sweep.run` with the
  same chunk width, bit for bit while it is unchanged. Seeds, common random numbers, divergence
  isolation, checkpoints (:class:`lrlab.sweep.Stopped`, resume after a
  crash) and several processes (``jax.distributed``: every process calls it
  with the same arguments and returns the whole result; process 0 writes the
  checkpoints) work as in :func:`lrlab.sweep.run`.

  Args:
    task: an :class:`lrlab.tasks.Task` or a registered task name.
    make_tx: ``hp -> optax.GradientTransformation``.
    grid: the members (axis name -> 1-D array).
    steps: the full budget of a member, > 0.
    min_steps: the first rung's budget; must divide ``steps``.
    key: a ``jax.random`` key.
    eta: keep the best ``1/eta`` at each rung, an integer >= 2.
    metric: ``"val_loss"`` (default), ``"val_accuracy"`` or ``"train_loss"``.
    seeds: the number of seeds, or their values; each seed halves on its own.
    batch_size: examples per minibatch, or ``None`` for full batch.
    eval_every: steps between evaluations (default ``min_steps``); must divide ``min_steps``.
    devices, chunk_size, divergence_factor, checkpoint_dir, checkpoint_interval,
      should_stop, keep_checkpoint: as in :func:`lrlab.sweep.run`.

  Returns:
    A :class:`lrlab.search.SearchResult`: curves up to each member's stop, the
    rung it stopped at, and :meth:`~lrlab.search.SearchResult.best`.

  References:
    Jamieson & Talwalkar, `Non-stochastic Best Arm Identification and Hyperparameter
    Optimization <https://arxiv.org/abs/1502.07943>`_, AISTATS 2016.
  """
  task, grid, seed_values, eval_every = driver.check_common(
    task, make_tx, grid, metric, steps, min_steps, eval_every, seeds, key, checkpoint_interval,
    "min_steps", should_stop=should_stop, divergence_factor=divergence_factor,
    checkpoint_dir=checkpoint_dir,
  )  # fmt: skip
  _check_halving(eta)
  arguments.check_accuracy(task, metric)
  rungs = rung_steps(steps, min_steps, eta)
  bracket = np.zeros(len(next(iter(grid.values()))), np.int64)
  return _search(
    "successive_halving", task, make_tx, grid, grid, bracket, [rungs], steps=steps,
    min_steps=min_steps, eta=eta, metric=metric, batch_size=batch_size, eval_every=eval_every,
    seeds=seed_values, key=key, devices=devices, chunk_size=chunk_size,
    divergence_factor=divergence_factor, checkpoint_dir=checkpoint_dir,
    checkpoint_interval=checkpoint_interval, should_stop=should_stop, extra_config={},
    keep_checkpoint=keep_checkpoint,
  )  # fmt: skip


def hyperband(
  task: Any,
  make_tx: MakeTx,
  grid: Mapping[str, ArrayLike],
  *,
  steps: int,
  min_steps: int,
  key: jax.Array,
  eta: int = 3,
  metric: str = "val_loss",
  seeds: int | Sequence[int] = 1,
  batch_size: int | None = None,
  eval_every: int | None = None,
  devices: Sequence[jax.Device] | None = None,
  chunk_size: int | None = None,
  divergence_factor: float = 10.0,
  checkpoint_dir: str | None = None,
  checkpoint_interval: float = 30.0,
  should_stop: Callable[[], bool] | None = None,
  keep_checkpoint: bool = False,
) -> SearchResult:
  """Hyperband (Li et al. 2018): brackets of successive halving from different starting budgets.

  With the rungs of :func:`rung_steps` (``s_max + 1`` of them), bracket ``s``
  draws ``n_s`` members from ``grid`` (:func:`hyperband_brackets`; without
  replacement, by ``key``; all of them if ``n_s >= K``) and halves them from
  rung ``s_max - s`` on: bracket ``s_max`` is :func:`successive_halving` from
  ``min_steps``, bracket 0 trains ``n_0`` members for the whole budget. The
  brackets run side by side as one schedule of chunks: their live members
  share the chunks of one compiled segment, and each bracket cuts its own at
  its own rungs. A grid member drawn by two brackets appears twice in the
  result, once per bracket (:attr:`~lrlab.search.SearchResult.bracket`).

  Args and returns: as :func:`successive_halving`, but ``steps`` must be ``min_steps * eta**k``,
  ``k >= 1``
  (then ``s_max = k = log_eta(steps / min_steps)``, as in Li et al.; an extra last rung of
  :func:`rung_steps` would add a bracket and change every bracket's size).

  References:
    Li, Jamieson, DeSalvo, Rostamizadeh & Talwalkar, `Hyperband: A Novel Bandit-Based
    Approach to Hyperparameter Optimization <https://arxiv.org/abs/1603.06560>`_, JMLR 2018.
  """
  task, grid, seed_values, eval_every = driver.check_common(
    task, make_tx, grid, metric, steps, min_steps, eval_every, seeds, key, checkpoint_interval,
    "min_steps", should_stop=should_stop, divergence_factor=divergence_factor,
    checkpoint_dir=checkpoint_dir,
  )  # fmt: skip
  _check_halving(eta)
  if min_steps == steps:  # s_max = 0: one bracket of one member drawn at random, no search
    raise ValueError(
      f"hyperband needs min_steps < steps (s_max = log_eta(steps / min_steps) >= 1); got "
      f"min_steps={min_steps}, steps={steps}."
    )
  all_rungs = rung_steps(steps, min_steps, eta)
  # Li et al.'s rungs are R eta**-s: an extra last rung of rung_steps would add a bracket.
  if steps != min_steps * eta ** (len(all_rungs) - 1):
    raise ValueError(
      f"hyperband needs steps = min_steps * eta**k (Li et al.'s brackets); got steps={steps}, "
      f"min_steps={min_steps}, eta={eta} (steps / min_steps = {steps // min_steps})."
    )
  arguments.check_accuracy(task, metric)
  size = len(next(iter(grid.values())))
  rng = np.random.default_rng(arguments.key_data(jax.random.fold_in(key, 0x48424E44)))
  picks, bracket, rungs = [], [], []
  for b, (n, first) in enumerate(hyperband_brackets(len(all_rungs), eta)):
    chosen = np.arange(size) if n >= size else np.sort(rng.choice(size, n, replace=False))
    picks.append(chosen)
    bracket.append(np.full(len(chosen), b))
    rungs.append(all_rungs[first:])
  index = np.concatenate(picks)
  members = {k: v[index] for k, v in grid.items()}
  return _search(
    "hyperband", task, make_tx, grid, members, np.concatenate(bracket), rungs, steps=steps,
    min_steps=min_steps, eta=eta, metric=metric, batch_size=batch_size, eval_every=eval_every,
    seeds=seed_values, key=key, devices=devices, chunk_size=chunk_size,
    divergence_factor=divergence_factor, checkpoint_dir=checkpoint_dir,
    checkpoint_interval=checkpoint_interval, should_stop=should_stop,
    extra_config={"grid_index": index.tolist()}, keep_checkpoint=keep_checkpoint,
  )  # fmt: skip
