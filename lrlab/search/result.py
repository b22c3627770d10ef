"""What a search measured: every member's curves up to where it stopped, and why it stopped.

A :class:`SearchResult` wraps a :class:`lrlab.sweep.SweepResult` whose curves
are NaN after each member stopped, with the step and rung each member stopped
at, the bracket it ran in (Hyperband), and for population-based training each
member's lineage and hyperparameter schedule.
"""

import collections
import dataclasses
import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from lrlab import train
from lrlab.sweep import storage
from lrlab.sweep.lines import format_value as shown
from lrlab.sweep.result import SweepResult
from lrlab.sweep.storage import atomic_write, read_non_finite, spell_non_finite

_FILE = "search.json"  # beside the sweep's own files
_FORMAT = 1
_ARRAYS = ("stopped_step", "rung", "bracket", "lineage", "exploit_steps")


def _encode(array: np.ndarray | None) -> dict[str, Any] | None:
  """An array as JSON: its dtype and its values (exact for ints and float64's ``repr``)."""
  return None if array is None else {"dtype": array.dtype.str, "values": array.tolist()}


def _decode(value: dict[str, Any] | None) -> np.ndarray | None:
  return None if value is None else np.asarray(value["values"], np.dtype(value["dtype"]))


@dataclasses.dataclass(frozen=True, eq=False)
class SearchResult:
  """The outcome of :func:`lrlab.search.successive_halving`, ``hyperband`` or ``pbt``.

  Attributes:
    sweep: the members' curves, ``(S, K, ...)`` as in :class:`lrlab.sweep.SweepResult`,
      NaN at evaluations (and steps of ``learning_rate``) after a member stopped.
    stopped_step: ``(S, K)`` int, the steps each member trained (the budget if it finished).
    rung: ``(S, K)`` int, the index in its bracket's :attr:`rungs` of the rung it stopped
      at (the last one if it finished); 0 for every member of a PBT population.
    rungs: per bracket, the steps at which its members are ranked and cut (the last is the
      budget).
    bracket: ``(K,)`` int, each member's bracket (all 0 but for Hyperband): its position in
      :func:`lrlab.search.halving.hyperband_brackets`, ``s_max - s`` for Li et al.'s bracket
      ``s`` (0 starts the most members at the first rung; ``s_max`` trains its few for the budget).
    metric: the metric members were ranked by (``val_loss``, ``val_accuracy`` or ``train_loss``).
    lineage: PBT only, ``(S, K, I)`` int: at exploit ``i``, the member whose state member
      ``k`` continued from (``k`` itself if it was not replaced); ``None`` otherwise.
    schedule: PBT only, ``{axis: (S, K, I + 1)}``: member ``k``'s hyperparameters before
      the first exploit and after each one; ``None`` otherwise.
    exploit_steps: PBT only, ``(I,)`` the steps at which members were exploited.
  """

  sweep: SweepResult
  stopped_step: np.ndarray
  rung: np.ndarray
  rungs: list[list[int]]
  bracket: np.ndarray
  metric: str
  lineage: np.ndarray | None = None
  schedule: dict[str, np.ndarray] | None = None
  exploit_steps: np.ndarray | None = None

  @property
  def config(self) -> dict[str, Any]:
    """The search's settings (``method``, ``eta``, ``min_steps``, ... and the sweep's)."""
    return self.sweep.config

  @property
  def metadata(self) -> dict[str, Any]:
    """Provenance, ``wall_seconds``, ``compile_seconds``, ``model_steps``, ``resumed_from``."""
    return self.sweep.metadata

  @property
  def model_steps(self) -> int:
    """Training steps taken by all members together (what a full grid spends ``S K steps`` on)."""
    return int(self.metadata["model_steps"])

  def final(self) -> np.ndarray:
    """``(S, K)`` the ranking metric at the budget: NaN for a member stopped early, the worst
    value (``inf`` for a loss, ``-inf`` for an accuracy) for a diverged member."""
    values = np.asarray(getattr(self.sweep.history, self.metric)[..., -1], np.float64)
    worst = -np.inf if self.metric.endswith("accuracy") else np.inf
    finished = self.stopped_step == self.sweep.config["steps"]
    values = np.where(self.sweep.history.diverged & finished, worst, values)
    return np.where(finished, values, np.nan)

  def best(self, seed: int | None = None) -> dict[str, Any]:
    """The member with the best :meth:`final` value, averaged over the seeds it finished in.

    Only a member that finished in at least one seed is answered (when every finisher
    diverged, the first of them, its value the worst); ties go to the earlier member. Over
    several seeds each seed searched alone, so the answer has the setting most seeds' own
    searches picked (``best(seed=s)``), and only among those, the best mean: a member that
    finished in one lucky seed is not compared with others' means over every seed (on a
    quadratic, Hyperband answered lr = 1, finished in one seed, where all 3 seeds picked
    0.316, which beat it in that seed).

    Args:
      seed: if given, the best member of that seed alone (its value in that seed, its
        schedule in that seed): what an independent search with that seed would answer.
        Required for PBT over several seeds (a one-line error without it): member ``k`` of
        one population shares nothing with member ``k`` of another, so their mean is no
        one's answer.

    Returns:
      ``{"index", "value", "finished_seeds", "picked_seeds", "hyperparameters"}``
      (``picked_seeds``: how many seeds' own searches picked its setting); for PBT also
      ``"schedule"``, its hyperparameters after each exploit (seed ``seed``'s, or the one
      seed's), which is the answer PBT gives: a schedule, not one setting.
    """
    final = self.final()
    if seed is None and self.schedule is not None and final.shape[0] > 1:
      raise ValueError(
        f"seed must be given for PBT over {final.shape[0]} seeds (an integer in "
        f"[0, {final.shape[0]})): each population answers alone; got None."
      )
    if seed is not None:
      seeds = final.shape[0]
      if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or not 0 <= seed < seeds:
        raise ValueError(f"seed must be an integer in [0, {seeds}); got {seed!r}.")
      final = final[seed : seed + 1]
    finished = np.isfinite(final) | np.isinf(final)
    count = finished.sum(axis=0)
    with np.errstate(invalid="ignore"):
      mean = np.where(count > 0, np.nansum(np.where(finished, final, 0), 0) / count, np.nan)
    score = -mean if self.metric.endswith("accuracy") else mean
    # Votes go to settings, not members: Hyperband's brackets may each draw the same setting.
    setting = [tuple(self.sweep.hyperparameters(k).items()) for k in range(final.shape[1])]
    votes = collections.Counter(
      setting[self.best(seed=s)["index"]]
      for s in range(final.shape[0] if final.shape[0] > 1 else 0)
    )
    picks = np.array([votes[v] for v in setting], np.int64)
    # A member that finished in no seed comes after every one that did, even a diverged one
    # (score inf): mapping both to inf let argmin answer a member stopped at the first rung.
    index = int(np.lexsort((np.where(count > 0, score, np.inf), count == 0, -picks))[0])
    best = {
      "index": index,
      "value": float(mean[index]),
      "finished_seeds": int(count[index]),
      "picked_seeds": int(max(picks[index], final.shape[0] == 1)),
      "hyperparameters": self.sweep.hyperparameters(index),
    }
    if self.schedule is not None:
      row = 0 if seed is None else int(seed)
      best["schedule"] = {k: v[row, index].tolist() for k, v in self.schedule.items()}
    return best

  def summary(self, grid_size: int | None = None) -> str:
    """The search's answer in a few lines for a person, as ``lrlab sweep --search`` prints it.

    The method, members and seeds; the best member's setting (PBT: the one it started at, and
    its schedule after each exploit), its :attr:`metric` at the budget as :meth:`best` gives
    it (mean of the seeds it finished, and how many seeds' own searches picked it), and over
    several seeds each seed's own pick; for PBT over several seeds, each population's best
    member and where its schedule ended, then their values' mean ± SE (ddof 1). Last, the
    model-steps spent, and their share of the full grid's ``grid_size * seeds * steps``.

    Args:
      grid_size: how many settings the grid held (:func:`lrlab.sweep.grid_size`). By default
        the members' count, which is the grid for successive halving and PBT; Hyperband's
        brackets draw their members from the grid, so without it no share is given.

    Example:
      >>> print(lrlab.search.result._example().summary())
      successive_halving: 3 members x 1 seed(s) on 'toy'.
      Best lr = 0.1: val_loss = 0.2 at 10 steps (mean of the 1 seed(s) it finished).
      Model-steps: 14 (47% of the full grid's 30).
    """
    lines = [
      f"{self.config['method']}: {self.sweep.num_members} members x "
      f"{self.sweep.num_seeds} seed(s) on {self.config['task']!r}."
    ]
    if self.schedule is not None and self.sweep.num_seeds > 1:
      lines += self._populations()
    else:
      best = self.best()
      setting = ", ".join(f"{k} = {shown(v)}" for k, v in best["hyperparameters"].items())
      which = f"member (it started at {setting})" if "schedule" in best else setting
      seeds = self.sweep.num_seeds
      picked = f"; picked by {best['picked_seeds']} of {seeds} seeds" if seeds > 1 else ""
      lines.append(
        f"Best {which}: {self.metric} = {best['value']:.4g} at {self.config['steps']} steps "
        f"(mean of the {best['finished_seeds']} seed(s) it finished{picked})."
      )
      if "schedule" in best:
        schedule = "; ".join(
          f"{k}: " + ", ".join(f"{x:.3g}" for x in v) for k, v in best["schedule"].items()
        )
        lines.append(f"Its schedule after each exploit: {schedule}.")
      elif self.sweep.num_seeds > 1:  # each seed halves alone, and may keep another member
        picks = [self.best(seed=s) for s in range(self.sweep.num_seeds)]
        lines.append("Each seed's own pick: " + "; ".join(
          f"seed {s}: {', '.join(f'{k} = {shown(v)}' for k, v in p['hyperparameters'].items())} "
          f"({p['value']:.4g})" for s, p in enumerate(picks)
        ) + ".")  # fmt: skip
    if grid_size is None and self.config["method"] != "hyperband":
      grid_size = self.sweep.num_members
    spent = f"Model-steps: {self.model_steps:,}"
    if grid_size is not None:
      grid_steps = grid_size * self.sweep.num_seeds * self.config["steps"]
      spent += f" ({self.model_steps / grid_steps:.0%} of the full grid's {grid_steps:,})"
    return "\n".join([*lines, spent + "."])

  def _populations(self) -> list[str]:
    """PBT with several seeds: each seed is its own population, whose member slots share
    nothing with another seed's, so each answers alone (its best member and where its schedule
    ended), then the answers' metric over the seeds, mean ± SE (ddof 1)."""
    lines, values = [], []
    for s in range(self.sweep.num_seeds):
      best = self.best(seed=s)
      values.append(best["value"])
      ended = ", ".join(f"{k} = {shown(v[-1])}" for k, v in best["schedule"].items())
      lines.append(f"Seed {s}: best member {best['index']} ({self.metric} = {best['value']:.4g} "
                   f"at {self.config['steps']} steps); its schedule ended at {ended}.")  # fmt: skip
    values = np.asarray(values, np.float64)
    se = values.std(ddof=1) / np.sqrt(values.size)
    lines.append(f"Over the {values.size} populations: {self.metric} = {values.mean():.4g} "
                 f"± {se:.2g} (mean ± SE).")  # fmt: skip
    return lines

  def _answers(self) -> dict[str, Any] | list[dict[str, Any]]:
    """:meth:`best`, or for PBT over several seeds each population's, a list by seed."""
    seeds = self.sweep.num_seeds
    if self.schedule is not None and seeds > 1:
      return [self.best(seed=s) for s in range(seeds)]
    return self.best()

  def save(self, directory: str | os.PathLike, **extra: Any) -> Path:
    """Write the search into ``directory``: the sweep's files, then ``search.json``.

    The curves are saved as :meth:`lrlab.sweep.SweepResult.save` saves them (``results.csv``,
    ``curves.npz``, ``sweep.json``, with no summary of its own); ``search.json``, written
    last and atomically, holds where each member stopped, the rungs and brackets, PBT's
    lineage and schedules, :meth:`best` (PBT over several seeds: each seed's, a list), and
    ``extra`` (JSON values, e.g. the answer a command printed).
    ``SearchResult.load(r.save(d)) == r``.

    Returns:
      The folder, as a ``Path``.
    """
    # No seed-mean summary in sweep.json: a member stopped in some seed has none (with several
    # seeds, often every member), and the search's answers are here, in search.json.
    directory = storage.save(self.sweep, directory, summary=False)
    arrays = {name: _encode(getattr(self, name)) for name in _ARRAYS}
    schedule = self.schedule and {k: _encode(v) for k, v in self.schedule.items()}
    document = {
      "format": _FORMAT,
      **extra,
      "best": self._answers(),
      "metric": self.metric,
      "model_steps": self.model_steps,
      "rungs": [[int(t) for t in rungs] for rungs in self.rungs],  # NumPy ints are not JSON
      **arrays,
      "schedule": schedule,
    }
    text = json.dumps(spell_non_finite(document), indent=2, default=float, allow_nan=False)
    atomic_write(directory / _FILE, lambda f: f.write(text + "\n"))
    return directory

  @classmethod
  def load(cls, directory: str | os.PathLike) -> "SearchResult":
    """Read a search written by :meth:`save`.

    Raises:
      ValueError: the folder holds no ``search.json`` (a plain sweep, or a save that
        was interrupted), or one that is not JSON or of an unknown format; or its sweep does
        not load (see :meth:`lrlab.sweep.SweepResult.load`).
    """
    path = Path(directory) / _FILE
    if not path.is_file():
      raise ValueError(f"directory={str(directory)!r} holds no {_FILE}: no search was saved there")
    try:
      document = read_non_finite(json.loads(path.read_text(encoding="utf-8")))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
      raise ValueError(
        f"{str(path)!r} is not valid JSON ({error}); save the search again"
      ) from None
    if document.get("format") != _FORMAT:
      raise ValueError(f"{str(path)!r} has format {document.get('format')!r}; expected {_FORMAT}")
    schedule = document["schedule"] and {k: _decode(v) for k, v in document["schedule"].items()}
    return cls(
      sweep=SweepResult.load(directory),
      rungs=document["rungs"],
      metric=document["metric"],
      schedule=schedule,
      **{name: _decode(document[name]) for name in _ARRAYS},
    )

  def __eq__(self, other: object) -> bool:
    if not isinstance(other, SearchResult):
      return NotImplemented

    def same(a: np.ndarray | None, b: np.ndarray | None) -> bool:
      if a is None or b is None:
        return a is b
      return a.dtype == b.dtype and a.shape == b.shape and np.array_equal(a, b)

    schedules = (self.schedule or {}, other.schedule or {})
    return (
      self.sweep == other.sweep
      and self.metric == other.metric
      and self.rungs == other.rungs
      and all(same(getattr(self, n), getattr(other, n)) for n in _ARRAYS)
      and (self.schedule is None) == (other.schedule is None)
      and list(schedules[0]) == list(schedules[1])
      and all(same(schedules[0][k], schedules[1][k]) for k in schedules[0])
    )

  def __repr__(self) -> str:
    method = self.config.get("method", "?")
    return (
      f"SearchResult(method={method!r}, task={self.config.get('task')!r}, "
      f"members={self.sweep.num_members}, seeds={self.sweep.num_seeds}, "
      f"model_steps={self.model_steps})"
    )


def _example() -> SearchResult:
  """A tiny hand-made successive halving for the docstring examples: 3 learning rates, 1 seed,
  10 steps, ranked at step 2 (``eta`` 3 keeps lr = 0.1), so ``3 * 2 + 8 = 14`` model-steps."""
  nan = np.nan
  loss = np.array([[[1.0, 0.8, nan, nan, nan, nan], [1.0, 0.6, 0.5, 0.4, 0.3, 0.2],
                    [1.0, 0.9, nan, nan, nan, nan]]])  # (S=1, K=3, E=6)  # fmt: skip
  lr = np.array([0.01, 0.1, 1.0])
  history = train.History(
    step=np.arange(0, 11, 2),
    train_loss=loss,
    val_loss=loss,
    val_accuracy=np.full_like(loss, nan),
    test_loss=loss,
    test_accuracy=np.full_like(loss, nan),
    learning_rate=np.ones((1, 3, 10)) * lr[:, None],
    diverged=np.zeros((1, 3), bool),
    diverged_step=np.full((1, 3), -1),
  )
  config = {"task": "toy", "steps": 10, "method": "successive_halving", "target": None}
  sweep = SweepResult({"lr": lr}, np.array([0]), history, config, {"model_steps": 14})
  stopped = np.array([[2, 10, 2]])
  return SearchResult(sweep, stopped, (stopped == 10).astype(int), [[2, 10]], np.zeros(3, int),
                      "val_loss")  # fmt: skip
