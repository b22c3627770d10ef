"""``schedules.plot`` draws every schedule given, with a legend, to a PNG."""

import matplotlib.image
import numpy as np

from lrlab import schedules


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
