"""``schedules.plot`` draws every schedule given, with a legend, to a PNG."""

import matplotlib.image
import numpy as np
import pytest

from lrlab import schedules
from tests import figures


def test_plot_writes_png_with_one_line_per_schedule(tmp_path):
  named = {
    "cosine": schedules.cosine_annealing(0.1, 50),
    "one-cycle": schedules.one_cycle(0.1, 50),
  }
  path = tmp_path / "sub" / "schedules.png"
  figure = schedules.plot(named, 60, path, title="two", log_scale=True)
  axes = figure.axes[0]
  assert [line.get_label() for line in axes.get_lines()] == ["cosine", "one-cycle"]
  np.testing.assert_allclose(
    axes.get_lines()[0].get_ydata(), schedules.cosine_annealing(0.1, 50)(np.arange(60)), rtol=1e-6
  )
  assert axes.get_yscale() == "log"
  assert matplotlib.image.imread(path).shape[2] in (3, 4)


def test_plot_accepts_a_single_schedule_or_a_list(tmp_path):
  figure = schedules.plot(schedules.constant(0.1), 5, tmp_path / "one.png")
  assert len(figure.axes[0].get_lines()) == 1
  figure = schedules.plot(
    [schedules.constant(0.1), schedules.linear(0, 1, 4)], 5, tmp_path / "l.png"
  )
  assert [line.get_label() for line in figure.axes[0].get_lines()] == ["schedule 0", "schedule 1"]


def test_a_long_budget_is_drawn_at_evenly_spaced_steps_in_int32(tmp_path):
  # 2**31 - 1 steps were evaluated one by one (8 GiB of steps); 2**31 overflowed int32.
  steps = 2**31 - 1
  figure = schedules.plot(schedules.linear(1.0, 0.0, steps), steps, tmp_path / "long.png")
  (line,) = figure.axes[0].get_lines()
  x = np.asarray(line.get_xdata())
  assert len(x) == schedules.plotting.MAX_POINTS and x[0] == 0 and x[-1] == steps - 1
  np.testing.assert_allclose(np.diff(x), (steps - 1) / (len(x) - 1), rtol=1e-4)
  np.testing.assert_allclose(line.get_ydata(), 1.0 - x / steps, atol=1e-6)
  with pytest.raises(ValueError, match=r"^steps must be an integer in \[1, 2\*\*31 - 1\]"):
    schedules.plot(schedules.constant(0.1), 2**31, tmp_path / "over.png")


def test_the_figure_is_written_atomically(tmp_path, monkeypatch):
  # The figure was written in place: a failed write left half a PNG where the last one was.
  draw = lambda path: schedules.plot(schedules.constant(0.1), 5, path)
  figures.assert_written_atomically(draw, tmp_path / "s.png", monkeypatch)
