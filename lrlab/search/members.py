"""The members of a search: their state on device in chunks, and what they measured, on the host.

A :class:`Population` drives the sweep engine's compiled chunk programs
(:func:`lrlab.sweep.programs._compiled_for`, the same programs and cache as
:func:`lrlab.sweep.run`) for one seed: it initializes ``n`` members, advances
every live member by one search segment, and between segments keeps, drops or
copies members with one on-device gather (:meth:`Population.select`), re-packing
the survivors into full chunks of the same width, so the compiled segment is
reused, never recompiled. What each member measured is written into a
:class:`Ledger` of NumPy curves indexed by member, NaN where it did not train.
"""

import dataclasses
import functools
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from lrlab.sweep import devices as devices_lib
from lrlab.sweep.programs import MakeTx, SeedRows, _compiled_for
from lrlab.train import METRICS, History, Trainer

#: The metrics a search may rank members by (measured at every evaluation; test is held out).
RANKING_METRICS = ("val_loss", "val_accuracy", "train_loss")


def as_jax(values: np.ndarray) -> np.ndarray:
  """A hyperparameter column as the engine feeds it: float32, or int32 for integer axes."""
  return values.astype(np.int32 if np.issubdtype(values.dtype, np.integer) else np.float32)


def scores(values: np.ndarray, metric: str, diverged: np.ndarray) -> np.ndarray:
  """``values`` as float64 scores where lower is better (an accuracy negated); ``inf`` for a
  diverged member or a non-finite value."""
  values = np.asarray(values, np.float64)
  score = -values if metric.endswith("accuracy") else values.copy()
  score[~np.isfinite(score) | np.asarray(diverged, bool)] = np.inf
  return score


def ranking(values: np.ndarray, metric: str, diverged: np.ndarray) -> np.ndarray:
  """Indices of ``values`` from best to worst by ``metric`` (a loss falls, an accuracy rises).

  A diverged member or a non-finite value ranks last; ties keep the order of
  the members (a stable sort), so the ranking never depends on float noise in
  an equal value.
  """
  return np.argsort(scores(values, metric, diverged), kind="stable")


@dataclasses.dataclass
class Ledger:
  """What ``n`` members of one seed measured: NaN (or -1) where a member did not train.

  Attributes:
    evaluations: ``{metric: (n, E + 1)}`` float32 at steps ``0, eval_every, ..., steps``.
    learning_rate: ``(n, steps)`` float32, the rate applied at each step.
    diverged: ``(n,)`` bool, as the member's state said when it stopped.
    diverged_step: ``(n,)`` int32, or -1.
    stopped_step: ``(n,)`` int32: the steps the member trained (``steps`` if it finished).
  """

  evaluations: dict[str, np.ndarray]
  learning_rate: np.ndarray
  diverged: np.ndarray
  diverged_step: np.ndarray
  stopped_step: np.ndarray

  @classmethod
  def empty(cls, n: int, steps: int, eval_every: int) -> "Ledger":
    """A ledger of ``n`` members that have not trained yet."""
    nan = lambda *shape: np.full(shape, np.nan, np.float32)
    return cls(
      evaluations={m: nan(n, steps // eval_every + 1) for m in METRICS},
      learning_rate=nan(n, steps),
      diverged=np.zeros(n, bool),
      diverged_step=np.full(n, -1, np.int32),
      stopped_step=np.zeros(n, np.int32),
    )

  def arrays(self) -> dict[str, np.ndarray]:
    """Every array, by a flat name (for checkpoints)."""
    flat = {f"evaluations.{m}": v for m, v in self.evaluations.items()}
    flat.update(
      learning_rate=self.learning_rate,
      diverged=self.diverged,
      diverged_step=self.diverged_step,
      stopped_step=self.stopped_step,
    )
    return flat

  @classmethod
  def from_arrays(cls, flat: dict[str, np.ndarray]) -> "Ledger":
    """The inverse of :meth:`arrays`."""
    evaluations = {m: np.array(flat[f"evaluations.{m}"]) for m in METRICS}
    rest = {k: np.array(v) for k, v in flat.items() if not k.startswith("evaluations.")}
    return cls(evaluations=evaluations, **rest)

  def history(self, eval_every: int) -> History:
    """The members' curves as a :class:`lrlab.train.History` with a leading member axis."""
    num_points = next(iter(self.evaluations.values())).shape[1]
    return History(
      step=np.arange(num_points, dtype=np.int32) * eval_every,
      learning_rate=self.learning_rate,
      diverged=self.diverged,
      diverged_step=self.diverged_step,
      **self.evaluations,
    )


def stack_ledgers(ledgers: list[Ledger], eval_every: int) -> History:
  """One :class:`lrlab.train.History` with leading ``(seeds, members)`` axes."""
  histories = [ledger.history(eval_every) for ledger in ledgers]
  stacked = jax.tree.map(lambda *a: np.stack(a), *histories)
  return stacked._replace(step=histories[0].step)


@functools.partial(jax.jit, static_argnums=2)
def _gather(chunks: list[Any], take: jax.Array, width: int) -> list[Any]:
  """Rows ``take`` of the chunks' stacked states, cut into chunks of ``width``: one program
  (compiled once per chunk count, width and length of ``take``), not one per leaf."""
  stacked = jax.tree.map(lambda *leaves: jnp.concatenate(leaves), *chunks)
  picked = jax.tree.map(lambda a: jnp.take(a, take, axis=0), stacked)
  cut = lambda c: jax.tree.map(lambda a: a[c * width : (c + 1) * width], picked)
  return [cut(c) for c in range(take.shape[0] // width)]


class Population:
  """The live members of one seed of a search, in chunks of ``chunk_size`` on device.

  Args:
    trainer: the run's :class:`lrlab.train.Trainer`.
    make_tx: ``hp -> GradientTransformation``, as for :func:`lrlab.sweep.run`.
    mesh: the member mesh (:func:`lrlab.sweep.devices.member_mesh`).
    segment_windows: evaluation windows per search segment.
    chunk_size: members per compiled chunk (a multiple of the device count); when fewer
      members are left, one chunk of the fewest device multiples that hold them, but no
      narrower than ``min_width``.
    min_width: the narrowest chunk (default: the device count); ``chunk_size`` keeps one
      width, one compiled program, for the whole search.
    axes: the grid's axis names and dtypes, ``{name: dtype}``.
    key: the search's key (its shape and dtype select the program).
  """

  def __init__(
    self,
    trainer: Trainer,
    make_tx: MakeTx,
    mesh: Any,
    segment_windows: int,
    chunk_size: int,
    axes: dict[str, np.dtype],
    key: jax.Array,
    *,
    min_width: int | None = None,
  ):
    self.trainer, self.chunk_size, self.segment_windows = trainer, chunk_size, segment_windows
    self.make_tx, self.mesh, self.axes, self.key_shape = make_tx, mesh, axes, key
    self.num_devices = mesh.devices.size
    self.min_width = self.num_devices if min_width is None else min_width
    # A streamed task's program runs one window per call (its evaluation streams from the host).
    self.call_windows = 1 if trainer.task.streamed else segment_windows
    self.widths: list[int] = []  # the chunk width of each (re)packing, in order
    self.members = devices_lib.member_sharding(mesh)
    self.everywhere = devices_lib.replicated(mesh)
    self.alive = np.zeros(0, np.int64)  # ledger rows of the live members, in chunk order
    self.hp: dict[str, np.ndarray] = {}  # the live members' hyperparameters (host, float64/int64)
    self.chunks: list[Any] = []  # per chunk, its RunState on device

  def _repack(self, rows: np.ndarray, hp: dict[str, np.ndarray]) -> None:
    """Set the live members and the chunk width: ``chunk_size``, or the fewest whole device
    multiples that hold them when fewer are left (one more compiled width, cached)."""
    self.alive, self.hp = np.asarray(rows, np.int64), {k: np.asarray(v) for k, v in hp.items()}
    self.width = self._width(len(self.alive))
    self.widths.append(self.width)
    self.compiled = self._programs(self.width)

  def _width(self, live: int) -> int:
    needed = -(-max(live, 1) // self.num_devices) * self.num_devices
    return max(self.min_width, min(self.chunk_size, needed))

  def _programs(self, width: int):
    example = {k: as_jax(np.zeros(width, dtype)) for k, dtype in self.axes.items()}
    return _compiled_for(
      self.trainer, self.make_tx, self.mesh, self.call_windows, example, self.key_shape
    )

  def digest(self, live: int) -> str:
    """:func:`lrlab.sweep.checkpoint.program_digest` of the programs that chunk ``live``
    members (compiled now, and kept for them)."""
    return self._programs(self._width(live)).digest

  def _chunk_hp(self, c: int) -> dict[str, np.ndarray]:
    rows = self._padded_rows()[c * self.width : (c + 1) * self.width]
    return {k: as_jax(v[rows]) for k, v in self.hp.items()}

  def _padded_rows(self) -> np.ndarray:
    """Positions in the live arrays, padded to whole chunks with copies of the last member."""
    n = len(self.alive)
    size = -(-n // self.width) * self.width
    return np.minimum(np.arange(size), n - 1)

  def start(self, rows: np.ndarray, hp: dict[str, np.ndarray], seed_key: jax.Array, ledger: Ledger):
    """Initialize the members ``rows`` with hyperparameters ``hp`` (one value per row) and
    record their step-0 evaluation in ``ledger``."""
    self._repack(rows, hp)
    self.key = devices_lib.to_mesh(seed_key, self.everywhere)
    self.chunks, firsts = [], []
    for c in range(len(self._padded_rows()) // self.width):
      hp = devices_lib.to_mesh(self._chunk_hp(c), self.members)
      state, first = self.compiled.init(hp, self.key)
      self.chunks.append(state)
      firsts.append(devices_lib.to_host(first))
    first = jax.tree.map(lambda *a: np.concatenate(a)[: len(self.alive)], *firsts)
    for m, values in first._asdict().items():
      ledger.evaluations[m][self.alive, 0] = values

  def restore(self, rows: np.ndarray, hp: dict[str, np.ndarray], state: Any, seed_key: jax.Array):
    """Put saved members back on device: ``state`` is the leaves of their stacked
    :class:`lrlab.train.RunState` (one leading row per member of ``rows``)."""
    self._repack(rows, hp)
    self.key = devices_lib.to_mesh(seed_key, self.everywhere)
    state = jax.tree.unflatten(jax.tree.structure(self.compiled.state_shape), state)
    self._place(jax.tree.map(lambda a: np.asarray(a)[self._padded_rows()], state))

  def _place(self, padded: Any) -> None:
    """Cut a padded stack of member states (host arrays, the same in every process) into
    chunks on the mesh; each process places its own devices' shards."""
    count, width = len(self._padded_rows()) // self.width, self.width
    cut = lambda c: jax.tree.map(lambda a: a[c * width : (c + 1) * width], padded)
    place = lambda tree: jax.device_put(devices_lib.to_mesh(tree, self.members), self.members)
    self.chunks = [place(cut(c)) for c in range(count)]

  def advance(self, segment: int, ledger: Ledger) -> None:
    """Train every live member through search segment ``segment`` (``segment_windows``
    evaluation windows) and record what it measured in ``ledger``."""
    every, n = self.trainer.eval_every, len(self.alive)
    first_window = segment * self.segment_windows
    parts = []
    rows = SeedRows(self.compiled, self.key, self.trainer)
    for c, state in enumerate(self.chunks):
      hp = devices_lib.to_mesh(self._chunk_hp(c), self.members)
      calls = []
      for w in range(first_window, first_window + self.segment_windows, self.call_windows):
        state, part = self.compiled.segment(hp, self.key, state, np.int32(w), rows[w])
        calls.append(devices_lib.to_host(part))
      self.chunks[c] = state
      parts.append(jax.tree.map(lambda *a: np.concatenate(a, axis=1), *calls))
    part = jax.tree.map(lambda *a: np.concatenate(a)[:n], *parts)
    points = slice(first_window + 1, first_window + self.segment_windows + 1)
    for m, values in part.evaluation._asdict().items():
      ledger.evaluations[m][self.alive, points] = values
    steps = slice(first_window * every, (first_window + self.segment_windows) * every)
    ledger.learning_rate[self.alive, steps] = part.learning_rate
    ledger.stopped_step[self.alive] = steps.stop
    flags = self.flags()
    ledger.diverged[self.alive], ledger.diverged_step[self.alive] = flags

  def flags(self) -> tuple[np.ndarray, np.ndarray]:
    """``(diverged, diverged_step)`` of the live members, in their order."""
    n = len(self.alive)
    stacked = [devices_lib.to_host((s.diverged, s.diverged_step)) for s in self.chunks]
    return tuple(np.concatenate(parts)[:n] for parts in zip(*stacked, strict=True))

  def states(self) -> Any:
    """The live members' states as one host stack (for checkpoints)."""
    host = devices_lib.to_host(self.chunks)
    return jax.tree.map(lambda *a: np.concatenate(a)[: len(self.alive)], *host)

  def select(self, positions: np.ndarray, rows: np.ndarray, hp: dict[str, np.ndarray]) -> None:
    """Replace the live members by copies of the live members at ``positions``.

    New member ``i`` is a copy, bit for bit, of the parameters, model state,
    optimizer state and divergence flags of the member now at position
    ``positions[i]``, with hyperparameters ``hp`` (one value per new member)
    and ledger row ``rows[i]``: dropping members (successive halving) keeps a
    subset, population-based training copies winners over losers. One gather
    on an accelerator (a program per chunk count and width), a NumPy take on
    CPU (where the device's memory is the host's, and compiling the gather cost
    more than the copy); the chunks are re-packed to the same width, so the
    compiled segment is reused.
    """
    if not len(rows):
      self.alive, self.chunks = np.zeros(0, np.int64), []
      return
    old = self.chunks
    self._repack(rows, hp)
    take = np.asarray(np.asarray(positions)[self._padded_rows()], np.int32)
    if _copies_on_host(self.mesh):
      stacked = jax.tree.map(lambda *a: np.concatenate(a), *devices_lib.to_host(old))
      self._place(jax.tree.map(lambda a: a[take], stacked))
    else:
      take = devices_lib.to_mesh(take, self.everywhere)
      self.chunks = [jax.device_put(c, self.members) for c in _gather(old, take, self.width)]


def _copies_on_host(mesh: Any) -> bool:
  """Whether :meth:`Population.select` copies members on the host (a CPU mesh, where host
  memory is device memory and compiling the gather cost more than the copy) rather than with
  one gather on device. With several processes both are collectives: every process gathers
  the whole population, or the gather program's all-gather spans the processes."""
  return mesh.devices.flat[0].platform == "cpu"
