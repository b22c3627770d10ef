"""The loop every search method shares: seeds, segments, decisions between them, checkpoints.

A method is a :class:`Plan`: which members start (``begin``) and what to do
with the live :class:`~lrlab.search.members.Population` after each segment
(``after``: stop some, copy some, perturb their hyperparameters). :func:`drive`
runs a plan seed by seed; each seed's members share the initial parameters and
the minibatch order (the seed's key is ``fold_in(key, seed)``, as in
:func:`lrlab.sweep.run`). Between segments it saves a checkpoint (every
``checkpoint_interval`` seconds, and when ``should_stop()`` says so, then
raising :class:`lrlab.sweep.Stopped`); called again with the same arguments, it
resumes there and gives the same result as an uninterrupted search.

Several processes (``jax.distributed``): every process calls the search with
the same arguments; the members' mesh spans their devices, every decision is
taken on host values all processes gathered alike, so each process returns the
whole result. Process 0 writes the checkpoints (``checkpoint_dir`` on a file
system the processes share), every process reads them; a stop asked in any
process stops all of them at the same segment.
"""

import abc
import json
import os
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import jax
import numpy as np

from lrlab import _checks
from lrlab.search.members import RANKING_METRICS, Ledger, Population, as_jax
from lrlab.sweep import arguments, checkpoint
from lrlab.sweep import devices as devices_lib
from lrlab.sweep.engine import Stopped
from lrlab.sweep.grids import check_grid
from lrlab.sweep.programs import _member_footprint
from lrlab.sweep.storage import environment_metadata
from lrlab.train import Trainer
from lrlab.train.compiling import CompileClock


class Plan(abc.ABC):
  """A search method: implement :meth:`begin` and :meth:`after`; ``extra`` is saved with
  checkpoints (host arrays the method keeps per seed, e.g. PBT's lineage)."""

  #: The ledger's members: ``{axis: (M,)}``, the hyperparameters each row starts with.
  members: dict[str, np.ndarray]
  #: How many members are live at the plan's last decisions (sizes the automatic chunk).
  final_members: int
  extra: dict[str, np.ndarray]

  @abc.abstractmethod
  def begin(self, seed: int) -> np.ndarray:
    """The ledger rows that start training in seed ``seed`` (index into :attr:`members`)."""

  @abc.abstractmethod
  def after(self, seed: int, step: int, population: Population, ledger: Ledger) -> None:
    """Called when the live members have trained ``step`` steps (< the budget)."""


def check_common(
  task: Any, make_tx: Any, grid: Mapping[str, Any], metric: str, steps: int, segment_steps: int,
  eval_every: int | None, seeds: Any, key: Any, checkpoint_interval: float,
  segment_name: str, grid_name: str = "grid", should_stop: Any = None,
  divergence_factor: Any = 10.0, checkpoint_dir: Any = None,
) -> tuple[Any, dict[str, np.ndarray], np.ndarray, int]:  # fmt: skip
  """Check the arguments every method takes, before any compute; returns the task, the grid,
  the seed values and ``eval_every`` (default: ``segment_steps``)."""
  task = arguments.check_task(task)
  arguments.check_functions(make_tx, should_stop)  # as lrlab.sweep.run checks them
  grid = check_grid(grid, grid_name)
  arguments.check_axis_names(grid, grid_name)
  if "fold" in grid:
    raise ValueError(
      f"{grid_name} must not have an axis named 'fold' in a search (no k-fold here)."
    )
  _checks.check_choice("metric", metric, RANKING_METRICS)
  for name, value in (("steps", steps), (segment_name, segment_steps)):
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value <= 0:
      raise ValueError(f"{name} must be a positive integer; got {value!r}.")
  if steps % segment_steps:
    raise ValueError(
      f"{segment_name} must divide steps; got {segment_name}={segment_steps}, steps={steps}."
    )
  eval_every = segment_steps if eval_every is None else eval_every
  if isinstance(eval_every, bool) or not isinstance(eval_every, int | np.integer) or eval_every < 1:
    raise ValueError(f"eval_every must be a positive integer; got {eval_every!r}.")
  if segment_steps % eval_every:
    raise ValueError(
      f"eval_every must divide {segment_name} (decisions are taken at evaluations); "
      f"got eval_every={eval_every}, {segment_name}={segment_steps}."
    )
  arguments.check_key(key)
  # As lrlab.sweep.run checks them (None or "30" failed later, naming nothing).
  arguments.check_settings(checkpoint_interval, divergence_factor, checkpoint_dir)
  return task, grid, arguments.seed_values(seeds), int(eval_every)


def check_run(
  task: Any, steps: int, batch_size: int | None, eval_every: int, divergence_factor: float,
  devices: Sequence[jax.Device] | None, chunk_size: int | None,
) -> tuple[Trainer, Any]:  # fmt: skip
  """The run's :class:`lrlab.train.Trainer` and member mesh, with one-line errors for a bad
  ``batch_size``, ``divergence_factor``, ``devices`` or ``chunk_size``, before any compute (and
  before :func:`lrlab.search.run_study` asks its study for trials)."""
  trainer = Trainer(
    task, steps=steps, batch_size=batch_size, eval_every=eval_every,
    divergence_factor=divergence_factor,
  )  # fmt: skip
  mesh = devices_lib.member_mesh(devices)
  num_devices = mesh.devices.size
  if chunk_size is not None:
    arguments.check_chunk_size(chunk_size, num_devices)
  return trainer, mesh


def drive(
  plan: Plan,
  task: Any,
  make_tx: Any,
  *,
  steps: int,
  segment_steps: int,
  batch_size: int | None,
  eval_every: int,
  seeds: np.ndarray,
  key: jax.Array,
  devices: Sequence[jax.Device] | None,
  chunk_size: int | None,
  divergence_factor: float,
  checkpoint_dir: str | None,
  checkpoint_interval: float,
  should_stop: Callable[[], bool] | None,
  config: dict[str, Any],
  keep_checkpoint: bool = False,
) -> tuple[list[Ledger], list[dict[str, np.ndarray]], dict[str, Any], Population]:
  """Run ``plan`` for every seed; returns each seed's ledger and extra arrays, the metadata
  (wall and compile seconds, model-steps, where it resumed from) and the last population.
  With ``keep_checkpoint`` the finished search's checkpoint stays (a call with the same
  arguments then returns its result without training), for a caller that removes it once
  the result is saved."""
  started, clock = time.perf_counter(), CompileClock().start()
  trainer, mesh = check_run(task, steps, batch_size, eval_every, divergence_factor, devices,
                            chunk_size)  # fmt: skip
  num_devices = mesh.devices.size
  members = plan.members
  num_rows = len(next(iter(members.values())))
  # An automatic chunk size is sized for the members live at the plan's last decisions and
  # kept for the whole search: one compiled program. A given one narrows whenever fewer
  # members than its width are left (a program per width), so no chunk is mostly padding.
  fixed = chunk_size is None
  if chunk_size is None and checkpoint_dir is not None:
    chunk_size = checkpoint.saved_chunk_size(checkpoint_dir, num_devices)
    fixed = chunk_size is None or _saved_fixed(checkpoint_dir)
  if chunk_size is None:
    hp = {k: as_jax(v[:1]) for k, v in members.items()}
    state_bytes, activation_bytes = _member_footprint(trainer, make_tx, hp, key)
    chunk_size = devices_lib.auto_chunk_size(
      state_bytes, min(plan.final_members, num_rows), list(mesh.devices.flat),
      activation_bytes=activation_bytes,
    )  # fmt: skip
  # Every process must chunk alike (an automatic size depends on the device's memory): a
  # mismatch raises in every process rather than hanging in a collective.
  (chunk_size,) = devices_lib.agree((int(chunk_size),), "the chunk size (pass chunk_size=)")
  config = {
    **config, "steps": steps, "batch_size": batch_size, "eval_every": eval_every,
    "divergence_factor": float(divergence_factor), "seeds": seeds.tolist(),
    "key": arguments.key_data(key), "chunk_size": chunk_size, "fixed_width": fixed,
    "num_devices": int(num_devices),
    "make_tx": arguments.qualified_name(make_tx), "task": task.name,
  }  # fmt: skip
  axes = {k: v.dtype for k, v in members.items()}
  population = Population(
    trainer, make_tx, mesh, segment_steps // eval_every, chunk_size, axes, key,
    min_width=chunk_size if fixed else num_devices,
  )  # fmt: skip
  fingerprint = checkpoint.fingerprint(
    config, members, *arguments.task_arrays(task), task.L, task.mu, population.digest(num_rows)
  )
  num_segments = steps // segment_steps
  ledgers: list[Ledger] = []
  extras: list[dict[str, np.ndarray]] = []
  position, resumed_from, saved = {"seed": 0, "segment": 0}, None, None
  # With several processes, process 0 writes the checkpoints and every process reads them
  # (a checkpoint_dir on a file system they share), so all resume from the same point.
  writer = jax.process_index() == 0
  if checkpoint_dir is not None:
    saved = _load(checkpoint_dir, fingerprint, config)
    where = (-1, -1) if saved is None else (saved["seed"], saved["segment"])
    devices_lib.agree(where, "where to resume from (the checkpoint each process reads)")
    if saved is not None:
      position = {"seed": saved["seed"], "segment": saved["segment"]}
      resumed_from = dict(position)
      ledgers = [Ledger.from_arrays(a) for a in saved["done"]]
      extras = saved["done_extra"]
  model_steps = 0 if saved is None else saved["model_steps"]
  last_save = time.monotonic()
  for s in range(position["seed"], len(seeds)):
    seed_key = jax.random.fold_in(key, int(seeds[s]))
    start = position["segment"] if s == position["seed"] else 0
    if saved is not None and start > 0:
      ledger = Ledger.from_arrays(saved["ledger"])
      plan.extra = saved["extra"]
      population.restore(saved["alive"], saved["hp"], saved["state"], seed_key)
    else:
      ledger = Ledger.empty(num_rows, steps, eval_every)
      rows = plan.begin(s)
      population.start(rows, {k: v[rows] for k, v in members.items()}, seed_key, ledger)
    saved = None
    for g in range(start, num_segments):
      if not len(population.alive):
        break
      model_steps += len(population.alive) * segment_steps
      population.advance(g, ledger)
      t = (g + 1) * segment_steps
      if t < steps:
        plan.after(s, t, population, ledger)
      stop = should_stop is not None and should_stop()
      due = stop or time.monotonic() - last_save >= checkpoint_interval
      # Saving gathers the members' state, a collective, so every process must take the same
      # branch: a stop asked in any process stops all, a save due by any one's clock saves.
      stop, due = devices_lib.in_any_process(stop, due)
      last = g + 1 == num_segments or not len(population.alive)
      where = {"seed": s + 1, "segment": 0} if last else {"seed": s, "segment": g + 1}
      more = not last or s + 1 < len(seeds)
      if checkpoint_dir is not None and (due or last) and (more or keep_checkpoint):
        finished = [*ledgers, ledger] if last else ledgers
        finished_extra = [*extras, dict(plan.extra)] if last else extras
        current = {} if last else {
          "ledger": ledger.arrays(), "extra": dict(plan.extra), "alive": population.alive,
          "hp": population.hp, "state": population.states(),
        }  # fmt: skip
        if writer:
          _save(checkpoint_dir, fingerprint, where, finished, finished_extra, current,
                chunk_size, model_steps, fixed, config)  # fmt: skip
        last_save = time.monotonic()
      if stop and more:
        raise Stopped(where, checkpoint_dir)
      if last:
        break
    ledgers.append(ledger)
    extras.append(dict(plan.extra))
  kept = keep_checkpoint or checkpoint_dir is None or not os.path.isdir(checkpoint_dir)
  if writer and not kept:
    checkpoint.clear(checkpoint_dir)
  metadata = environment_metadata()
  metadata.update(
    wall_seconds=time.perf_counter() - started,
    compile_seconds=clock.stop()[0],
    resumed_from=resumed_from,
    model_steps=int(model_steps),
    device_kind=mesh.devices.flat[0].device_kind,
    num_devices=int(num_devices),
  )
  return ledgers, extras, {"config": config, "metadata": metadata}, population


def _saved_fixed(directory: str) -> bool:
  """Whether the checkpoint in ``directory`` was made with an automatic (fixed) chunk width."""
  with np.load(os.path.join(directory, checkpoint.FILENAME)) as saved:
    return bool(json.loads(str(saved["position"])).get("fixed_width", False))


def _save(
  directory, fingerprint, position, done, done_extra, current, chunk_size, model_steps, fixed,
  config,
):  # fmt: skip
  """One checkpoint: the finished seeds' ledgers and extras, and the current seed's state,
  each array under a flat name (``done.0.val_loss``, ``state`` for the members' pytree), and
  the search's ``config``."""
  trees: dict[str, Any] = {"model_steps": np.asarray(model_steps)}
  for i, (ledger, extra) in enumerate(zip(done, done_extra, strict=True)):
    trees.update({f"done.{i}.{k}": v for k, v in ledger.arrays().items()})
    trees.update({f"done_extra.{i}.{k}": v for k, v in extra.items()})
  if current:
    trees.update({f"ledger.{k}": v for k, v in current["ledger"].items()})
    trees.update({f"extra.{k}": v for k, v in current["extra"].items()})
    trees.update({f"hp.{k}": v for k, v in current["hp"].items()})
    trees.update(alive=current["alive"], state=current["state"])
  position = {**position, "done": len(done), "fixed_width": fixed}
  checkpoint.save(directory, fingerprint, position, trees, chunk_size=chunk_size, config=config)


def _load(directory: str, fingerprint: str, config: dict[str, Any]) -> dict[str, Any] | None:
  """What :func:`_save` wrote (the members' state as its list of leaves), or ``None``."""
  path = os.path.join(directory, checkpoint.FILENAME)
  if not os.path.exists(path):
    return None
  checkpoint.load(directory, fingerprint, {}, config=config)  # refuses another search's
  with np.load(path) as saved:
    position = json.loads(str(saved["position"]))
    names = [n[: -len(".count")] for n in saved.files if n.endswith(".count")]
    arrays = {n: saved[f"{n}.0"] for n in names if n != "state"}
    # Read as checkpoint.load reads a leaf: bfloat16 (and float8, typed keys) are saved as bytes.
    state = [checkpoint._restored(saved, f"state.{i}") for i in range(int(saved["state.count"]))] \
      if "state" in names else None  # fmt: skip

  def prefixed(prefix: str) -> dict[str, np.ndarray]:
    return {n[len(prefix) :]: v for n, v in arrays.items() if n.startswith(prefix)}

  done = position["done"]
  return {
    **position,
    "model_steps": int(arrays["model_steps"]),
    "done": [prefixed(f"done.{i}.") for i in range(done)],
    "done_extra": [prefixed(f"done_extra.{i}.") for i in range(done)],
    "ledger": prefixed("ledger."),
    "extra": prefixed("extra."),
    "hp": prefixed("hp."),
    "alive": arrays.get("alive"),
    "state": state,
  }
