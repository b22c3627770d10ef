"""What a range test recorded, the suggestions drawn from it, and its plain-file form."""

import dataclasses
import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from lrlab.finder import plots
from lrlab.finder import suggestions as suggestions_lib
from lrlab.sweep import storage

STOP_REASONS = ("completed", "diverged", "non-finite")
"""Why a range test ended: it ran every step; the smoothed loss exceeded the
threshold times its best; or the loss or the parameters stopped being finite."""


def _float_array(values: Any) -> np.ndarray:
  # None: NaN, as files written before the spelled "nan" (storage.spell_non_finite) hold it
  return np.array([np.nan if v is None else float(v) for v in values], np.float64)


@dataclasses.dataclass(frozen=True, eq=False)
class FinderResult:
  """The curve of a range test and the rate each rule of :mod:`~lrlab.finder.suggestions` reads.

  Built by :func:`lrlab.finder.find_lr` (or :meth:`load`); the suggestions are
  derived from the curve on construction.

  Attributes:
    lrs: ``(steps,)`` the planned rate of every step (also after a stop).
    losses: ``(steps,)`` the raw minibatch loss of each recorded step,
      measured before that step's update; NaN after the stop.
    smoothed: ``(steps,)`` the bias-corrected moving average of ``losses``;
      NaN after the stop.
    num_recorded: the number of steps recorded (the stopping step included).
    stop_reason: one of :data:`STOP_REASONS`.
    config: the test's arguments (``steps`` among them).
    points: ``{rule: Suggestion}`` for every rule of :data:`~lrlab.finder.suggestions.RULES`.
    suggestions: ``{rule: learning rate or None}``.
    reasons: ``{rule: why it is None}`` for the rules that cannot be computed.
  """

  lrs: np.ndarray
  losses: np.ndarray
  smoothed: np.ndarray
  num_recorded: int
  stop_reason: str
  config: dict[str, Any]
  points: dict[str, suggestions_lib.Suggestion] = dataclasses.field(init=False)
  suggestions: dict[str, float | None] = dataclasses.field(init=False)
  reasons: dict[str, str] = dataclasses.field(init=False)

  def __post_init__(self):
    arrays = {n: np.asarray(getattr(self, n), np.float64) for n in ("lrs", "losses", "smoothed")}
    shapes = {a.shape for a in arrays.values()}
    if len(shapes) != 1 or arrays["lrs"].ndim != 1:
      raise ValueError(f"lrs, losses and smoothed must be 1-D of one length; got {shapes}.")
    if not 0 <= self.num_recorded <= arrays["lrs"].size:
      raise ValueError(
        f"num_recorded must be in [0, {arrays['lrs'].size}]; got {self.num_recorded!r}."
      )
    if self.stop_reason not in STOP_REASONS:
      raise ValueError(f"stop_reason must be one of {STOP_REASONS}; got {self.stop_reason!r}.")
    for name, array in arrays.items():
      object.__setattr__(self, name, array)
    n = self.num_recorded
    if self.stop_reason == "non-finite" and n > 0 and np.isnan(arrays["smoothed"][n - 1]):
      # A NaN loss is never > 4 x best: fastai and Lightning train on to the planned end,
      # so their tail cut (fastai's [:-5], Lightning's [:-1]) counts from there, then the
      # NaNs are dropped. Every point after the stop is NaN here, as there.
      n = arrays["lrs"].size
    points = suggestions_lib.suggest(
      arrays["lrs"][:n], arrays["smoothed"][:n], steps=int(self.config["steps"])
    )
    object.__setattr__(self, "points", points)
    object.__setattr__(self, "suggestions", {k: p.lr for k, p in points.items()})
    object.__setattr__(
      self, "reasons", {k: p.reason for k, p in points.items() if p.reason is not None}
    )

  @property
  def steps(self) -> int:
    """The number of steps the test was planned for."""
    return self.lrs.size

  @property
  def stopped(self) -> bool:
    """Whether the test stopped before its last planned step."""
    return self.stop_reason != "completed"

  @property
  def stop_step(self) -> int | None:
    """The step at which the test stopped (the last one recorded), or ``None``."""
    return self.num_recorded - 1 if self.stopped else None

  @property
  def stop_lr(self) -> float | None:
    """The rate recorded beside the stopping loss, or ``None`` if the test ran to the end.

    That loss was measured before the step's own update, so the rates that
    made it grow are at most ``lrs[stop_step - 1]``.
    """
    return None if self.stop_step is None else float(self.lrs[self.stop_step])

  def summary(self) -> str:
    """A few lines for a person: how the test ended and every rule's suggestion.

    Example:
      >>> print(lrlab.finder.result._example().summary())
      Range test on 'toy': 40 steps planned, 30 recorded; diverged at lr = 0.05223.
        steep      0.0003455
        valley     0.0004642
        minimum    0.001194
        slide      4.375e-05
        lightning  0.0001914
    """
    if self.stop_lr is None:
      how = "ran to the end (never diverged)"
    elif self.stop_reason == "diverged":
      how = f"diverged at lr = {self.stop_lr:.4g}"
    else:
      how = f"loss or parameters non-finite at lr = {self.stop_lr:.4g}"
    lines = [
      f"Range test on {self.config.get('task', '?')!r}: {self.steps} steps planned, "
      f"{self.num_recorded} recorded; {how}."
    ]
    for name, lr in self.suggestions.items():
      text = f"{lr:.4g}" if lr is not None else f"None ({self.reasons[name]})"
      lines.append(f"  {name:<10} {text}")
    return "\n".join(lines)

  def to_dict(self) -> dict[str, Any]:
    """A strict-JSON-ready dict (NaN and the infinities spelled ``"nan"``, ``"inf"`` and
    ``"-inf"``: :func:`lrlab.sweep.storage.spell_non_finite`);
    :meth:`from_dict` inverts it."""
    return storage.spell_non_finite({
      "format": 1,
      "config": self.config,
      "lrs": self.lrs.tolist(),
      "losses": self.losses.tolist(),
      "smoothed": self.smoothed.tolist(),
      "num_recorded": self.num_recorded,
      "stop_reason": self.stop_reason,
      "stop_lr": self.stop_lr,
      "suggestions": self.suggestions,
      "reasons": self.reasons,
    })  # fmt: skip

  @classmethod
  def from_dict(cls, document: dict[str, Any]) -> "FinderResult":
    """The result :meth:`to_dict` described (suggestions are recomputed from the curve)."""
    return cls(
      lrs=_float_array(document["lrs"]),
      losses=_float_array(document["losses"]),
      smoothed=_float_array(document["smoothed"]),
      num_recorded=int(document["num_recorded"]),
      stop_reason=document["stop_reason"],
      config=storage.read_non_finite(dict(document["config"])),
    )

  def save(self, path: str | os.PathLike) -> Path:
    """Write :meth:`to_dict` as JSON to ``path``, atomically (a temporary file, then a rename:
    a crash mid-write leaves an earlier file whole); returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(self.to_dict(), indent=2, allow_nan=False) + "\n"
    storage.atomic_write(path, lambda file: file.write(text))
    return path

  @classmethod
  def load(cls, path: str | os.PathLike) -> "FinderResult":
    """Read a result written by :meth:`save`."""
    return cls.from_dict(json.loads(Path(path).read_text(encoding="utf-8")))

  def plot(self, path: str | os.PathLike | None = None):
    """Loss against learning rate on a log axis, every suggestion marked; see
    :func:`lrlab.finder.plot_range_test`."""
    return plots.plot_range_test(self, path)


def _example() -> FinderResult:
  """A hand-made test for the docstring examples: a dip, then divergence at step 29."""
  lrs = np.logspace(-5, 0, 40)
  smoothed = np.r_[2.0 - np.tanh(np.linspace(-2, 2, 25)) * 0.5 - 0.5, np.linspace(1.1, 9, 5)]
  smoothed = np.r_[smoothed, np.full(10, np.nan)]
  return FinderResult(
    lrs=lrs,
    losses=smoothed,
    smoothed=smoothed,
    num_recorded=30,
    stop_reason="diverged",
    config={"task": "toy", "steps": 40},
  )
