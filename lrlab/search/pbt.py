"""Population-based training inside the sweep's compiled program (Jaderberg et al. 2017).

The population trains in the vmapped segment program of :func:`lrlab.sweep.run`;
every ``interval`` steps the worst members copy a better member's state (one
gather on device) and perturb its hyperparameters. Hyperparameters are traced
inputs of the segment, so changing them never recompiles.

Reference:
  Jaderberg, Dalibard, Osindero, Czarnecki, Donahue, Razavi, Vinyals, Green,
  Dunning, Simonyan, Fernando & Kavukcuoglu, "Population Based Training of
  Neural Networks", arXiv:1711.09846, 2017.
"""

import fractions
import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import jax
import numpy as np
from jax.typing import ArrayLike

from lrlab import _checks
from lrlab.search import driver
from lrlab.search.members import Ledger, Population, ranking, scores, stack_ledgers
from lrlab.search.result import SearchResult
from lrlab.sweep import arguments
from lrlab.sweep.programs import MakeTx
from lrlab.sweep.result import SweepResult

#: The exploit strategies :func:`pbt` knows (Jaderberg et al.'s two for supervised learning).
EXPLOITS = ("truncation", "tournament")
_TAG = 0x504254  # folded into the key for PBT's own draws


_REAL = int | float | np.integer | np.floating  # a Python or NumPy number


def replaced_count(fraction: float, size: int) -> int:
  """Truncation's ``n = floor(fraction * K)``, exact for the ratio ``fraction`` stands for (the
  simplest one, denominator at most 10**6, that rounds to it): in binary floating point
  ``0.29 * 100`` is ``28.999999999999996``, and the decimal ``0.3333333333333333`` that
  ``1 / 3`` prints as times 3 is below 1; either floor is one short."""
  return math.floor(fractions.Fraction(float(fraction)).limit_denominator(10**6) * size)


def exploit_draws(
  key: jax.Array, seed: int, index: int, num_replaced: int, top: int, num_perturbed: int, choices
) -> tuple[np.ndarray, np.ndarray]:
  """The random draws of exploit ``index`` in seed ``seed``: for each replaced member, which
  of the ``top`` best it copies (uniform), and a factor from ``choices`` for each perturbed
  axis (uniform). A pure function of the key, so a resumed search draws the same."""
  data = arguments.key_data(jax.random.fold_in(jax.random.fold_in(key, _TAG), seed))
  rng = np.random.default_rng([*data, index])
  parents = rng.integers(0, top, num_replaced)
  which = rng.integers(0, len(choices), (num_replaced, num_perturbed))
  return parents, np.asarray(choices, np.float64)[which]


def tournament_draws(
  key: jax.Array, seed: int, index: int, size: int, num_perturbed: int, choices
) -> tuple[np.ndarray, np.ndarray]:
  """The random draws of binary-tournament exploit ``index`` in seed ``seed``: for each of the
  ``size`` members, an opponent drawn uniformly from the other members, and a factor from
  ``choices`` for each perturbed axis (uniform; used where the member is replaced). A stream
  of its own, a pure function of the key."""
  data = arguments.key_data(jax.random.fold_in(jax.random.fold_in(key, _TAG), seed))
  rng = np.random.default_rng([*data, index, 2])
  opponents = rng.integers(0, size - 1, size)
  opponents += opponents >= np.arange(size)  # skips the member itself
  which = rng.integers(0, len(choices), (size, num_perturbed))
  return opponents, np.asarray(choices, np.float64)[which]


def explore_draws(
  key: jax.Array, seed: int, index: int, num_replaced: int, num_axes: int, probability: float
) -> tuple[np.ndarray, np.ndarray]:
  """The "resample" draws of exploit ``index`` in seed ``seed``: for each replaced member and
  explored axis, whether it resamples (``u < probability``, ``u`` uniform in ``[0, 1)``) and
  a uniform ``v`` in ``[0, 1)`` that picks the value ``floor(v * len(values))`` of the axis's
  ``resample`` values. A stream of its own (the exploit draws are unchanged by it), a pure
  function of the key."""
  data = arguments.key_data(jax.random.fold_in(jax.random.fold_in(key, _TAG), seed))
  rng = np.random.default_rng([*data, index, 1])
  coins = rng.random((num_replaced, num_axes))
  return coins < probability, rng.random((num_replaced, num_axes))


def _check_resample(probability: Any, resample: Any, axes: list[str]) -> dict[str, np.ndarray]:
  """One-line errors for the "resample" explore options; the values by axis, as float64."""
  if (
    isinstance(probability, bool) or not isinstance(probability, _REAL) or not 0 <= probability <= 1
  ):
    raise ValueError(f"resample_probability must be a number in [0, 1]; got {probability!r}.")
  if resample is None:
    if probability > 0:
      raise ValueError(
        f"resample must give the values to resample from ({{axis: values}}) when "
        f"resample_probability > 0; got resample=None, resample_probability={probability}."
      )
    return {}
  if not isinstance(resample, Mapping):
    raise ValueError(f"resample must be a dict {{axis: 1-D values}}; got {resample!r}.")
  pool = {}
  for name, values in resample.items():
    _checks.check_choice("resample axis", name, axes)
    try:
      array = np.asarray(values, np.float64) if np.ndim(values) == 1 else np.zeros(0)
    except (TypeError, ValueError):
      array = np.zeros(0)
    if array.size == 0 or not np.all(np.isfinite(array)):
      raise ValueError(
        f"resample[{name!r}] must be a non-empty 1-D sequence of finite numbers; got {values!r}."
      )
    pool[name] = array
  if probability == 0:  # as the command line refuses --resample without the probability
    raise ValueError(
      f"resample is used only with resample_probability > 0 (else its values are never "
      f"drawn); got resample={resample!r}, resample_probability={probability}."
    )
  return pool


class _PBT(driver.Plan):
  """Truncation selection (the worst ``n`` copy one of the best ``n``) or binary tournament
  (each member copies a random other whose score is strictly better), then explore."""

  def __init__(self, members, interval, exploit, fraction, perturb, axes, resample, probability,
               metric, eval_every, key, seeds):  # fmt: skip
    self.members, self.interval, self.perturb, self.axes = members, interval, perturb, axes
    self.exploit = exploit
    self.resample, self.probability = resample, probability
    self.metric, self.eval_every, self.key, self.seeds = metric, eval_every, key, seeds
    self.size = len(next(iter(members.values())))
    self.replaced = replaced_count(fraction, self.size)
    self.exploits = 0
    self.final_members = self.size
    self.extra = {}

  def begin(self, seed: int) -> np.ndarray:
    self.extra = {"lineage": np.zeros((self.size, self.exploits), np.int64)}
    for k, v in self.members.items():
      self.extra[f"schedule.{k}"] = np.repeat(v[:, None], self.exploits + 1, axis=1)
    return np.arange(self.size)

  def after(self, seed: int, step: int, population: Population, ledger: Ledger) -> None:
    if step % self.interval:
      return
    i = step // self.interval - 1
    values = ledger.evaluations[self.metric][:, step // self.eval_every]
    order = ranking(values, self.metric, ledger.diverged)
    seed_value, num_axes = int(self.seeds[seed]), len(self.axes)
    if self.exploit == "truncation":
      n = self.replaced
      bottom = order[len(order) - n :]
      picks, factors = exploit_draws(self.key, seed_value, i, n, n, num_axes, self.perturb)
      parents = order[:n][picks]
    else:  # binary tournament: replaced where the opponent ranks above (copies its old state)
      opponents, factors = tournament_draws(
        self.key, seed_value, i, self.size, num_axes, self.perturb
      )
      score = scores(values, self.metric, ledger.diverged)  # a tie is not better: no copy
      bottom = np.flatnonzero(score[opponents] < score)
      parents, factors = opponents[bottom], factors[bottom]
    sources = np.arange(self.size)
    sources[bottom] = parents
    hp = {k: v[sources].copy() for k, v in population.hp.items()}
    resampled, uniforms = explore_draws(
      self.key, seed_value, i, len(bottom), num_axes, self.probability
    )
    for a, name in enumerate(self.axes):
      perturbed = hp[name][bottom] * factors[:, a]
      if name in self.resample:
        values = self.resample[name]
        drawn = values[np.floor(uniforms[:, a] * len(values)).astype(np.int64)]
        perturbed = np.where(resampled[:, a], drawn, perturbed)
      hp[name][bottom] = perturbed
    population.select(sources, np.arange(self.size), hp)
    # A replaced member takes its parent's flags too: its state is the parent's.
    ledger.diverged[:], ledger.diverged_step[:] = population.flags()
    self.extra["lineage"][:, i] = sources
    for k, v in hp.items():
      self.extra[f"schedule.{k}"][:, i + 1 :] = v[:, None]


def pbt(
  task: Any,
  make_tx: MakeTx,
  init_grid: Mapping[str, ArrayLike],
  *,
  steps: int,
  interval: int,
  key: jax.Array,
  exploit: str = "truncation",
  fraction: float = 0.25,
  perturb: Sequence[float] = (0.8, 1.25),
  perturb_axes: Sequence[str] | None = None,
  resample_probability: float = 0.0,
  resample: Mapping[str, ArrayLike] | None = None,
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
  """Population-based training (Jaderberg et al. 2017) of the members of ``init_grid``.

  Every ``interval`` steps (but at the end) the members of each seed are
  ranked by ``metric`` at that evaluation (a diverged member last; ties to the
  earlier member). With ``n = floor(fraction * K)``, truncation selection
  replaces each of the worst ``n`` by a copy of one of the best ``n``, drawn
  uniformly; binary tournament (``exploit="tournament"``, Jaderberg et al.'s
  other exploit for supervised learning) lets each member draw another
  uniformly and replaces it by a copy of that one where its score is strictly
  better (a tie, two diverged members included, copies nothing; a member may be
  copied and replaced at once: copies are of the states before the exploit). A
  replaced member's parameters, model state, optimizer state and divergence flags
  are copied bit for bit (one gather on device), its hyperparameters are the
  parent's with each axis of ``perturb_axes`` multiplied by a factor drawn
  uniformly from ``perturb`` (Jaderberg et al.'s "perturb" explore step) or,
  with probability ``resample_probability`` for an axis of ``resample``,
  replaced by a value drawn uniformly from ``resample[axis]`` (their "resample"
  explore step: a draw from the user's prior, here a grid of values; a
  log-uniform prior is a :func:`lrlab.sweep.log_grid`). Perturbing alone moves
  a lineage's rate at most ``max(perturb) ** exploits``-fold; a resampled rate
  may land anywhere among the user's values (the weights it continues from are
  still its parent's: a population whose early rates damaged its weights keeps them).
  The hyperparameters are traced inputs of the one compiled segment, so the
  new values cost no compilation. A member keeps its slot (its curves are
  continuous in the result); :attr:`~lrlab.search.SearchResult.lineage` says
  whose state each slot continued from, :attr:`~lrlab.search.SearchResult.schedule`
  its hyperparameters after each exploit (:func:`lrlab.search.plot_pbt` draws both).
  Over several processes (``jax.distributed``) every process calls it with the
  same arguments and returns the whole result; the exploit's copy is then a
  collective, and process 0 writes the checkpoints.

  Ranking by the metric of the moment favours a member that has just lowered
  its rate, whose metric improves at once (the short-horizon bias of greedy
  selection; Wu, Ren, Liao & Grosse, "Understanding Short-Horizon Bias in
  Stochastic Meta-Optimization", ICLR 2018): on the MNIST-1D MLP with Adam the
  population's rate walks far below the best fixed rate over a long budget
  (``scripts/search_pbt_selection.py``, BENCHMARKS.md). Each seed is an
  independent population: compare seeds' answers with ``result.best(seed=s)``.

  Args:
    task: an :class:`lrlab.tasks.Task` or a registered task name.
    make_tx: ``hp -> optax.GradientTransformation``.
    init_grid: the initial population (axis name -> 1-D array), ``K >= 2`` members.
    steps: the budget, > 0.
    interval: steps between exploits; must divide ``steps`` and be less than it.
    key: a ``jax.random`` key (with the seed, it draws the parents and factors).
    exploit: ``"truncation"`` or ``"tournament"``.
    fraction: for truncation, the share of the population replaced at each exploit, in
      ``(0, 0.5]``, with ``fraction * K >= 1`` (a tournament replaces about half).
    perturb: the factors of the explore step, positive numbers.
    perturb_axes: the axes explored (default: every float axis; integer axes are copied).
    resample_probability: the probability, in ``[0, 1]``, that a replaced member's axis of
      ``resample`` is resampled instead of perturbed (default 0: perturb only).
    resample: ``{axis: 1-D values}``, the values each axis of ``perturb_axes`` may be
      resampled from (finite numbers); needed when ``resample_probability > 0``, refused
      when it is 0.
    metric: ``"val_loss"`` (default), ``"val_accuracy"`` or ``"train_loss"``.
    seeds: the number of seeds or their values; each seed is its own population.
    batch_size: examples per minibatch, or ``None`` for full batch.
    eval_every: steps between evaluations (default ``interval``); must divide ``interval``.
    devices, chunk_size, divergence_factor, checkpoint_dir, checkpoint_interval,
      should_stop, keep_checkpoint: as in :func:`lrlab.sweep.run`.

  Returns:
    A :class:`lrlab.search.SearchResult` with ``lineage``, ``schedule`` and
    ``exploit_steps``; every member trains the whole budget.

  References:
    Jaderberg et al., `Population Based Training of Neural Networks
    <https://arxiv.org/abs/1711.09846>`_, 2017.
  """
  task, grid, seed_values, eval_every = driver.check_common(
    task, make_tx, init_grid, metric, steps, interval, eval_every, seeds, key,
    checkpoint_interval, "interval", "init_grid", should_stop=should_stop,
    divergence_factor=divergence_factor, checkpoint_dir=checkpoint_dir,
  )  # fmt: skip
  if interval == steps:  # it divides steps: otherwise at least two segments
    raise ValueError(
      f"interval must be less than steps (an exploit every interval steps but at the end: "
      f"at least one); got interval={interval}, steps={steps}."
    )
  size = len(next(iter(grid.values())))
  _checks.check_choice("exploit", exploit, EXPLOITS)
  if size < 2:
    raise ValueError(f"init_grid must have K >= 2 members (a population); got K={size}.")
  if isinstance(fraction, bool) or not isinstance(fraction, _REAL) or not 0 < fraction <= 0.5:
    raise ValueError(f"fraction must be a number in (0, 0.5]; got {fraction!r}.")
  if exploit == "truncation" and replaced_count(fraction, size) < 1:
    raise ValueError(
      f"fraction * K must be >= 1 (at least one member replaced); got fraction={fraction} "
      f"for K={size} members."
    )
  try:
    factors = np.asarray(perturb, np.float64) if np.ndim(perturb) == 1 else np.zeros(0)
  except (TypeError, ValueError):
    factors = np.zeros(0)
  if factors.size == 0 or not np.all(np.isfinite(factors) & (factors > 0)):
    raise ValueError(f"perturb must be a non-empty sequence of positive factors; got {perturb!r}.")
  floats = [k for k, v in grid.items() if v.dtype.kind == "f"]
  if perturb_axes is not None and (
    isinstance(perturb_axes, str)
    or not isinstance(perturb_axes, Sequence)
    or len(set(perturb_axes)) != len(perturb_axes)
  ):
    raise ValueError(
      f"perturb_axes must be a sequence of distinct float axis names of init_grid ({floats}); "
      f"got {perturb_axes!r}."
    )
  axes = floats if perturb_axes is None else list(perturb_axes)
  for name in axes:
    _checks.check_choice("perturb_axes", name, floats)
  pool = _check_resample(resample_probability, resample, axes)
  arguments.check_accuracy(task, metric)
  plan = _PBT(grid, interval, exploit, fraction, factors, axes, pool, float(resample_probability),
              metric, eval_every, key, seed_values)  # fmt: skip
  plan.exploits = steps // interval - 1
  config = {
    "method": "pbt", "interval": interval, "exploit": exploit, "fraction": float(fraction),
    "perturb": factors.tolist(), "perturb_axes": axes, "metric": metric, "target": None,
    "resample_probability": float(resample_probability),
    "resample": {k: v.tolist() for k, v in pool.items()},
  }  # fmt: skip
  ledgers, extras, info, _ = driver.drive(
    plan, task, make_tx, steps=steps, segment_steps=interval, batch_size=batch_size,
    eval_every=eval_every, seeds=seed_values, key=key, devices=devices, chunk_size=chunk_size,
    divergence_factor=divergence_factor, checkpoint_dir=checkpoint_dir,
    checkpoint_interval=checkpoint_interval, should_stop=should_stop, config=config,
    keep_checkpoint=keep_checkpoint,
  )  # fmt: skip
  sweep = SweepResult(grid, seed_values, stack_ledgers(ledgers, eval_every), **info)
  stopped = np.stack([ledger.stopped_step for ledger in ledgers])
  schedule = {k: np.stack([e[f"schedule.{k}"] for e in extras]) for k in grid}
  return SearchResult(
    sweep, stopped, np.zeros_like(stopped), [[steps]], np.zeros(size, np.int64), metric,
    lineage=np.stack([e["lineage"] for e in extras]), schedule=schedule,
    exploit_steps=np.arange(1, plan.exploits + 1) * interval,
  )  # fmt: skip
