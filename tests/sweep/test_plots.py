"""Sweep figures: PNGs with the expected artists, drawn from (loaded) results."""

import matplotlib.image
import numpy as np
import pytest
from matplotlib.collections import PolyCollection

from lrlab import sweep
from tests.sweep import synthetic
from tests.sweep.synthetic import LRS


@pytest.fixture(scope="module")
def u_shaped():
  return synthetic.u_shaped()


@pytest.fixture(scope="module")
def two_d():
  return synthetic.two_dimensional()


def _is_png(path):
  return matplotlib.image.imread(path).shape[2] in (3, 4)


def _labels(axes):
  return [line.get_label() for line in axes.get_lines()]


def test_sensitivity_draws_the_u_curve_band_divergence_best_and_range(u_shaped, tmp_path):
  path = tmp_path / "deep" / "sensitivity.png"
  figure = sweep.plot_sensitivity(u_shaped, path)
  assert _is_png(path)
  axes = figure.axes[0]
  assert axes.get_xscale() == "log"
  labels = _labels(axes)
  assert labels == [
    "seed mean, 2 seeds",
    "diverged (any seed)",
    "diverges from",
    "best lr=0.01",
  ]
  mean_line, diverged, threshold, best = axes.get_lines()
  np.testing.assert_allclose(mean_line.get_xdata(), LRS)
  np.testing.assert_allclose(
    mean_line.get_ydata(), u_shaped.seed_mean("final_val_accuracy"), rtol=1e-6
  )
  np.testing.assert_allclose(diverged.get_xdata(), LRS[6:])  # lr = 0.1 diverged in one seed
  assert diverged.get_color() == "red"
  assert threshold.get_xdata()[0] == pytest.approx(LRS[6])
  assert best.get_xdata()[0] == 1e-2 and best.get_ydata()[0] == pytest.approx(0.9)
  bands = [c for c in axes.collections if isinstance(c, PolyCollection)]
  assert len(bands) == 1 and bands[0].get_label() == "seed min to max"
  spans = [p for p in axes.patches if p.get_label().startswith("usable range")]
  assert len(spans) == 1
  np.testing.assert_allclose(spans[0].get_x(), LRS[3])
  np.testing.assert_allclose(spans[0].get_x() + spans[0].get_width(), LRS[5])


def test_sensitivity_of_a_loss_leaves_diverged_members_as_gaps(u_shaped, tmp_path):
  figure = sweep.plot_sensitivity(
    u_shaped, tmp_path / "loss.png", "final_val_loss", band="std", title="loss"
  )
  axes = figure.axes[0]
  assert axes.get_title() == "loss" and "lower is better" in axes.get_ylabel()
  y = axes.get_lines()[0].get_ydata()
  assert np.all(np.isnan(y[6:])) and np.all(np.isfinite(y[:6]))
  with pytest.raises(ValueError, match="band must be one of"):
    sweep.plot_sensitivity(u_shaped, tmp_path / "x.png", band="iqr")


def test_sensitivity_on_a_product_grid_draws_one_line_per_other_setting(two_d, tmp_path):
  figure = sweep.plot_sensitivity(two_d, tmp_path / "s.png")
  labels = _labels(figure.axes[0])
  assert labels[:2] == ["momentum=0", "momentum=0.5"]  # the other groups, thin
  assert labels[2] == "seed mean, 1 seed (momentum=0.9)"
  assert "best lr=0.01" in labels and "diverged (any seed)" in labels
  # Along lr at momentum 0.9: 0.6, 0.9, 0.7 and 0 (diverged).
  np.testing.assert_allclose(figure.axes[0].get_lines()[2].get_ydata(), [0.6, 0.9, 0.7, 0], 1e-6)


def test_curves_one_line_per_member_with_a_log_colorbar(u_shaped, tmp_path):
  path = tmp_path / "curves.png"
  figure = sweep.plot_curves(u_shaped, path)
  assert _is_png(path)
  axes, colorbar = figure.axes
  lines = axes.get_lines()
  assert len(lines) == 9
  np.testing.assert_array_equal(lines[0].get_xdata(), synthetic.STEPS)
  np.testing.assert_allclose(lines[4].get_ydata(), u_shaped.history.val_loss[:, 4].mean(0))
  assert [line.get_linestyle() for line in lines] == ["-"] * 6 + ["--"] * 3
  assert colorbar.get_ylabel() == "lr"
  assert colorbar.get_yscale() == "log"  # a LogNorm colour scale
  assert axes.get_yscale() == "log"
  colors_ = [line.get_color() for line in lines]
  assert len(set(map(tuple, colors_))) == 9  # one colour per learning rate
  assert [t.get_text() for t in axes.get_legend().get_texts()] == ["diverged (any seed)"]


def test_curves_of_the_learning_rate_and_on_a_product_grid(two_d, tmp_path):
  figure = sweep.plot_curves(two_d, tmp_path / "lr.png", "learning_rate")
  lines = figure.axes[0].get_lines()
  assert len(lines) == 4  # the lr slice at momentum 0.9
  assert len(lines[0].get_xdata()) == synthetic.NUM_STEPS
  np.testing.assert_allclose([line.get_ydata()[0] for line in lines], [1e-3, 1e-2, 1e-1, 1], 1e-6)
  figure = sweep.plot_curves(two_d, tmp_path / "m.png", "val_accuracy", axis="momentum")
  assert len(figure.axes[0].get_lines()) == 3 and figure.axes[1].get_ylabel() == "momentum"
  assert figure.axes[0].get_yscale() == "linear"
  with pytest.raises(ValueError, match="metric must be one of"):
    sweep.plot_curves(two_d, tmp_path / "x.png", "final_val_loss")


def test_heatmap_cells_marks_and_errors(two_d, u_shaped, tmp_path):
  path = tmp_path / "heat.png"
  figure = sweep.plot_heatmap(two_d, path)
  assert _is_png(path)
  axes, colorbar = figure.axes
  image = axes.get_images()[0]
  expected = np.where(np.isnan(synthetic.TABLE_2D), 0.0, synthetic.TABLE_2D).T  # rows: momentum
  np.testing.assert_allclose(np.ma.filled(image.get_array(), np.nan), expected, rtol=1e-6)
  assert axes.get_xlabel() == "lr" and axes.get_ylabel() == "momentum"
  assert [t.get_text() for t in axes.get_xticklabels()] == ["0.001", "0.01", "0.1", "1"]
  marks = [(line.get_marker(), line.get_xdata()[0], line.get_ydata()[0]) for line in axes.lines]
  assert sorted(marks) == [("*", 1, 2), ("x", 3, 1), ("x", 3, 2)]
  assert "final_val_accuracy" in colorbar.get_ylabel()
  assert len(axes.texts) == 12
  with pytest.raises(ValueError, match="needs a second axis"):
    sweep.plot_heatmap(u_shaped, tmp_path / "x.png")
  with pytest.raises(ValueError, match="must differ"):
    sweep.plot_heatmap(two_d, tmp_path / "x.png", x_axis="lr", y_axis="lr")
  tied = sweep.zipped(lr=[0.1, 0.1, 0.2], momentum=[0.9, 0.9, 0.0])
  result = synthetic.make_result(tied, [[0.5, 0.6, 0.7]])
  with pytest.raises(ValueError, match="needs a product grid"):
    sweep.plot_heatmap(result, tmp_path / "x.png")


def test_plot_all_from_a_loaded_result(two_d, u_shaped, tmp_path):
  loaded = sweep.SweepResult.load(two_d.save(tmp_path / "run"))
  paths = sweep.plot_all(loaded, tmp_path / "figures")
  names = [p.name for p in paths]
  assert names == [
    "sensitivity.png",
    "curves_val_loss.png",
    "curves_val_accuracy.png",
    "curves_learning_rate.png",
    "heatmap_lr_momentum.png",
  ]
  assert all(_is_png(p) for p in paths)
  regression = synthetic.make_result({"lr": LRS[:3]}, [[0.2, 0.6, 0.5]], regression=True)
  names = [p.name for p in sweep.plot_all(regression, tmp_path / "reg")]
  assert names == ["sensitivity.png", "curves_val_loss.png", "curves_learning_rate.png"]
