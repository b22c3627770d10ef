"""The range test's figure: loss against learning rate on a log axis, each suggestion marked."""

import os
from typing import TYPE_CHECKING

import numpy as np
from matplotlib.figure import Figure

from lrlab.finder.suggestions import FASTAI_SKIP_END
from lrlab.sweep.plots import common

if TYPE_CHECKING:  # the result draws itself with this module, so only the type is imported
  from lrlab.finder.result import FinderResult

_FIELDS = ("lrs", "losses", "smoothed", "num_recorded", "points", "stop_lr", "config")

_MARKERS = {"steep": "v", "valley": "o", "minimum": "s", "slide": "D", "lightning": "^"}


def plot_range_test(
  result: "FinderResult",
  path: str | os.PathLike | None = None,
  *,
  reference: dict[str, float] | None = None,
) -> Figure:
  """Draw a range test: smoothed loss (and the raw loss, faint) against the learning rate.

  The x-axis is logarithmic. Each rule's suggestion is marked on the smoothed
  curve (interpolated in ``log(lr)``; ``minimum`` is marked at its suggestion,
  a tenth of the minimum's rate) and named in the legend; rules that cannot be
  computed are listed as such. A dotted line marks where the test stopped. The
  y-axis is cut at the highest smoothed loss before fastai's last five points,
  (and the lowest raw loss), so the explosion at the end does not flatten the curve.

  Args:
    result: a :class:`~lrlab.finder.FinderResult`.
    path: where to write the PNG, atomically (``None``: do not write); parent folders are
      created.
    reference: extra rates to draw as vertical lines, ``{label: lr}`` (e.g. the
      best rate of a sweep, or ``2/L``).

  Returns:
    The ``matplotlib.figure.Figure``.

  Example:
    >>> figure = lrlab.finder.plot_range_test(lrlab.finder.result._example())
    >>> figure.axes[0].get_xscale()
    'log'
  """
  if not all(hasattr(result, field) for field in _FIELDS):
    raise ValueError(f"result must be an lrlab.finder.FinderResult; got {type(result)}.")
  n = result.num_recorded
  lrs, raw, smooth = result.lrs[:n], result.losses[:n], result.smoothed[:n]
  figure = Figure(figsize=(7, 4.5))
  ax = figure.add_subplot()
  ax.set_xscale("log")
  ax.plot(lrs, raw, color="0.75", linewidth=0.8, label="raw loss")
  ax.plot(lrs, smooth, color="C0", linewidth=1.8, label="smoothed loss")
  finite = np.isfinite(smooth)
  for k, (name, point) in enumerate(result.points.items()):
    if point.lr is None:
      ax.plot([], [], linestyle="none", label=f"{name}: not computable")
      continue
    y = np.interp(np.log(point.lr), np.log(lrs[finite]), smooth[finite]) if finite.any() else 0
    ax.plot(
      point.lr,
      y,
      marker=_MARKERS.get(name, "o"),
      markersize=8,
      linestyle="none",
      color=f"C{k + 1}",
      label=f"{name}: {point.lr:.3g}",
    )
  if result.stop_lr is not None:
    ax.axvline(result.stop_lr, color="k", linestyle=":", linewidth=1, label="stopped")
  for k, (label, lr) in enumerate((reference or {}).items()):
    ax.axvline(lr, color=f"C{k + 6}", linestyle="--", linewidth=1.2, label=f"{label}: {lr:.3g}")
  head = slice(0, max(1, n - FASTAI_SKIP_END))
  shown, both = smooth[head], np.r_[smooth[head], raw[head]]
  shown, both = shown[np.isfinite(shown)], both[np.isfinite(both)]
  if shown.size:
    low, high = both.min(), shown.max()
    margin = 0.05 * (high - low) or 0.05 * abs(high) or 0.05
    ax.set_ylim(low - margin, high + 3 * margin)
  ax.set_xlabel("learning rate")
  ax.set_ylabel("training loss")
  ax.set_title(f"LR range test: {result.config.get('task', '')}")
  ax.legend(fontsize=8, loc="best")
  ax.grid(True, which="major", alpha=0.3)
  figure.tight_layout()
  if path is not None:
    common.save(figure, path)  # atomically: a failed write leaves the previous figure whole
  return figure
