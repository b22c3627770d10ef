"""Drawing schedules."""

import os
from collections.abc import Callable, Mapping, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from matplotlib.figure import Figure

from lrlab import _checks

MAX_POINTS = 20_000
"""The most steps :func:`plot` evaluates: longer budgets are drawn at evenly spaced steps."""


def plot(
  schedules: Callable | Sequence[Callable] | Mapping[str, Callable],
  steps: int,
  path: str | os.PathLike,
  *,
  title: str | None = None,
  log_scale: bool = False,
) -> Figure:
  """Draw one or more schedules over ``steps`` steps and save the figure as a PNG.

  Args:
    schedules: a schedule, a sequence of schedules, or a mapping from legend
      label to schedule.
    steps: number of steps to draw (steps ``0 .. steps - 1``), an integer in
      ``[1, 2**31 - 1]`` (steps are int32); above :data:`MAX_POINTS` steps, that many
      evenly spaced steps (the first and the last included) are drawn.
    path: where to write the PNG, atomically (a failed write leaves an earlier
      figure whole); parent folders are created.
    title: optional figure title.
    log_scale: draw the learning rate on a log axis.

  Returns:
    The matplotlib ``Figure`` (already saved to ``path``).

  Example:
    >>> from lrlab import schedules
    >>> schedules.plot({"cosine": schedules.cosine_annealing(0.1, 100)}, 100, "/tmp/s.png")
    <Figure ...>
  """
  if callable(schedules):
    schedules = {"schedule": schedules}
  elif not isinstance(schedules, Mapping):
    schedules = {f"schedule {i}": s for i, s in enumerate(schedules)}
  if not schedules or not all(callable(s) for s in schedules.values()):
    raise ValueError(f"schedules must be one or more schedules; got {schedules!r}.")
  steps = _checks.count("steps", steps)
  if steps >= 2**31:
    raise ValueError(f"steps must be an integer in [1, 2**31 - 1] (steps are int32); got {steps}.")
  t = jnp.asarray(np.unique(np.linspace(0, steps - 1, min(steps, MAX_POINTS)).round()), jnp.int32)
  figure = Figure(figsize=(8, 4.5), layout="constrained")
  axes = figure.add_subplot()
  for label, schedule in schedules.items():
    axes.plot(np.asarray(t), np.asarray(jax.vmap(schedule)(t)), label=label, linewidth=1.5)
  axes.set_xlabel("step")
  axes.set_ylabel("learning rate")
  if log_scale:
    axes.set_yscale("log")
  if title:
    axes.set_title(title)
  axes.grid(alpha=0.3)
  axes.legend(fontsize="small", ncols=2 if len(schedules) > 6 else 1)
  from lrlab.sweep.plots import common  # here, not above: the schedules sit below the sweep

  return common.save(figure, path)
