"""Sweep figures: PNGs with the expected artists, drawn from (loaded) results."""

import re

import matplotlib.image
import numpy as np
import pytest
from matplotlib.collections import PolyCollection

from lrlab import sweep
from tests import figures
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
  """The labels of the lines a legend can show (matplotlib hides those starting with "_")."""
  return [line.get_label() for line in axes.get_lines() if not line.get_label().startswith("_")]


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
  lines = {line.get_label(): line for line in figure.axes[0].get_lines()}
  np.testing.assert_allclose(lines[labels[2]].get_ydata(), [0.6, 0.9, 0.7, 0], 1e-6)


def test_sensitivity_marks_divergence_on_the_thin_lines_in_their_colour(two_d, tmp_path):
  # momentum = 0.5 diverged at lr = 1: its thin line gets an x there, in its own colour.
  figure = sweep.plot_sensitivity(two_d, tmp_path / "s.png")
  axes = figure.axes[0]
  thin = next(line for line in axes.get_lines() if line.get_label() == "momentum=0.5")
  marks = [line for line in axes.get_lines() if line.get_label() == "_diverged"]
  assert len(marks) == 1 and marks[0].get_color() == thin.get_color() == "C2"
  assert marks[0].get_xdata().tolist() == [1.0] and marks[0].get_ydata().tolist() == [0.0]
  legend = [t.get_text() for t in axes.get_legend().get_texts()]
  assert legend[-1] == "diverged (any seed), thin line's colour"


def test_sensitivity_of_a_positive_loss_has_a_log_y_axis(u_shaped, tmp_path):
  loss = sweep.plot_sensitivity(u_shaped, tmp_path / "loss.png", "final_val_loss")
  assert loss.axes[0].get_yscale() == "log"
  accuracy = sweep.plot_sensitivity(u_shaped, tmp_path / "acc.png")
  assert accuracy.axes[0].get_yscale() == "linear"


def test_a_usable_range_of_one_value_stays_visible(tmp_path):
  # A sharp peak: only lr = 0.01 is within 0.05 of the best.
  result = synthetic.make_result({"lr": LRS}, [[0.1, 0.2, 0.3, 0.4, 0.9, 0.4, 0.3, 0.2, 0.1]])
  assert result.usable_range() == (LRS[4], LRS[4])
  figure = sweep.plot_sensitivity(result, tmp_path / "s.png")
  (span,) = [p for p in figure.axes[0].patches if p.get_label().startswith("usable range")]
  assert span.get_label() == "usable range (tol 0.05): only lr=0.01"
  left, right = span.get_x(), span.get_x() + span.get_width()
  # 2% of the grid's 4 decades, centred on the value in log space.
  np.testing.assert_allclose(np.log10([left, right]), [-2.04, -1.96], atol=1e-9)


@pytest.mark.parametrize(
  ("config", "subtitle"),
  [
    (
      {"tx": {"optimizer": "sgd", "momentum": 0.9, "schedule": "cosine"}, "batch_size": None},
      "sgd (momentum=0.9), cosine schedule, 40 steps, full batch",
    ),
    (
      {"tx": "adam", "schedule": {"name": "one_cycle", "pct_start": 0.3}, "batch_size": 32},
      "adam, one_cycle (pct_start=0.3) schedule, 40 steps, batch 32",
    ),
    ({"cross_validated": 5}, "40 steps, 5-fold cross-validated"),
  ],
)
def test_default_titles_describe_the_training(tmp_path, config, subtitle):
  result = synthetic.make_result({"lr": LRS[:3]}, [[0.5, 0.6, 0.5]], config=config)
  figure = sweep.plot_sensitivity(result, tmp_path / "s.png")
  assert figure.axes[0].get_title() == f"synthetic: final_val_accuracy vs lr\n{subtitle}"
  figure = sweep.plot_curves(result, tmp_path / "c.png")
  assert figure.axes[0].get_title() == f"synthetic: val_loss\n{subtitle}"


def test_curves_stop_at_divergence_and_their_limits_ignore_it(tmp_path):
  # lr = 1 blew up: its loss is 1e6 at every point after it diverged (frozen) at step 15.
  result = synthetic.make_result({"lr": LRS[:3]}, [[0.5, 0.6, 0.5]], [[False, False, True]])
  val_loss = result.history.val_loss.copy()
  val_loss[0, 2, 2:] = 1e6
  result = sweep.SweepResult(
    result.grid, result.seeds, result.history._replace(val_loss=val_loss), result.config
  )
  figure = sweep.plot_curves(result, tmp_path / "c.png")
  axes = figure.axes[0]
  drawn = [line for line in axes.get_lines() if not line.get_label().startswith("_")]
  assert [len(line.get_xdata()) for line in drawn] == [5, 5, 2]  # steps 0, 10; not 20..40
  (mark,) = [line for line in axes.get_lines() if line.get_label() == "_diverged"]
  assert mark.get_marker() == "x" and mark.get_xdata().tolist() == [10]
  assert mark.get_color() == drawn[2].get_color()
  healthy = np.concatenate([line.get_ydata() for line in drawn[:2]])
  low, high = axes.get_ylim()
  margin = (healthy.max() / healthy.min()) ** 0.05  # log axis: 5% of the decades on each side
  np.testing.assert_allclose([low, high], [healthy.min() / margin, healthy.max() * margin])


def test_figures_are_written_atomically(u_shaped, tmp_path, monkeypatch):
  draw = lambda path: sweep.plot_sensitivity(u_shaped, path)
  figures.assert_written_atomically(draw, tmp_path / "s.png", monkeypatch)
  sweep.plot_sensitivity(u_shaped, tmp_path / "s.pdf")
  assert (tmp_path / "s.pdf").read_bytes().startswith(b"%PDF")  # the suffix picks the format


def test_curves_one_line_per_member_with_a_log_colorbar(u_shaped, tmp_path):
  path = tmp_path / "curves.png"
  figure = sweep.plot_curves(u_shaped, path)
  assert _is_png(path)
  axes, colorbar = figure.axes
  lines = [line for line in axes.get_lines() if not line.get_label().startswith("_")]
  assert len(lines) == 9
  np.testing.assert_array_equal(lines[0].get_xdata(), synthetic.STEPS)
  np.testing.assert_allclose(lines[4].get_ydata(), u_shaped.history.val_loss[:, 4].mean(0))
  assert [line.get_linestyle() for line in lines] == ["-"] * 6 + ["--"] * 3
  assert colorbar.get_ylabel() == "lr"
  assert colorbar.get_yscale() == "log"  # a LogNorm colour scale
  assert axes.get_yscale() == "log"
  colors_ = [line.get_color() for line in lines]
  assert len(set(map(tuple, colors_))) == 9  # one colour per learning rate
  legend = [t.get_text() for t in axes.get_legend().get_texts()]
  assert legend == ["diverged (any seed): stops there"]


def test_curves_of_the_learning_rate_and_on_a_product_grid(two_d, tmp_path):
  figure = sweep.plot_curves(two_d, tmp_path / "lr.png", "learning_rate")
  lines = [line for line in figure.axes[0].get_lines() if not line.get_label().startswith("_")]
  assert len(lines) == 4  # the lr slice at momentum 0.9
  assert len(lines[0].get_xdata()) == synthetic.NUM_STEPS
  assert len(lines[3].get_xdata()) == 16  # lr = 1 diverged at step 15: steps 0 to 15 drawn
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


def test_heatmap_lets_an_axis_zipped_with_x_move_along_with_it(tmp_path):
  # weight_decay is zipped with lr: each lr has its own, so fixing it at the best member's
  # value would leave one column of the lr x momentum product.
  grid = sweep.product(
    sweep.zipped(lr=[0.01, 0.1, 1.0], weight_decay=[1e-3, 1e-4, 1e-5]), momentum=[0.0, 0.9]
  )
  result = synthetic.make_result(grid, [[0.5, 0.55, 0.9, 0.8, 0.6, 0.4]])
  figure = sweep.plot_heatmap(result, tmp_path / "h.png", x_axis="lr", y_axis="momentum")
  axes = figure.axes[0]
  expected = [[0.5, 0.9, 0.6], [0.55, 0.8, 0.4]]  # rows momentum 0, 0.9; columns lr
  np.testing.assert_allclose(axes.get_images()[0].get_array(), expected, rtol=1e-6)
  assert [t.get_text() for t in axes.get_xticklabels()] == ["0.01", "0.1", "1"]
  # A third axis of a product with both is still fixed at the best member's value.
  grid = sweep.product(lr=[0.01, 0.1], momentum=[0.0, 0.9], nesterov=[0, 1])
  result = synthetic.make_result(grid, [[0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.9, 0.7]])
  figure = sweep.plot_heatmap(result, tmp_path / "p.png", x_axis="lr", y_axis="momentum")
  np.testing.assert_allclose(figure.axes[0].get_images()[0].get_array(), [[0.1, 0.5], [0.3, 0.9]])


def test_an_integer_axis_is_labelled_with_its_exact_values(tmp_path):
  # period = 1024 is not "1.02e+03" (which reads as 1020).
  grid = sweep.product(lr=[0.01, 0.1], period=[256, 512, 1024, 2048])
  result = synthetic.make_result(grid, [[0.5, 0.6, 0.7, 0.65, 0.55, 0.6, 0.9, 0.8]])
  figure = sweep.plot_heatmap(result, tmp_path / "h.png", x_axis="lr", y_axis="period")
  assert [t.get_text() for t in figure.axes[0].get_yticklabels()] == ["256", "512", "1024", "2048"]
  assert [t.get_text() for t in figure.axes[0].get_xticklabels()] == ["0.01", "0.1"]
  figure = sweep.plot_sensitivity(result, tmp_path / "s.png", axis="period")
  assert "best period=1024" in _labels(figure.axes[0])
  figure = sweep.plot_curves(result, tmp_path / "c.png", axis="period")
  assert _labels(figure.axes[0]) == ["period=256", "period=512", "period=1024", "period=2048"]


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


def test_plot_all_shades_the_usable_range_the_summary_prints(u_shaped, tmp_path, monkeypatch):
  # The U-curve: within 0.05 of the best, lr in [0.003162, 0.03162]; within 0.2, a wider range.
  drawn = {}
  draw = sweep.plots.folder.plot_sensitivity
  monkeypatch.setattr(
    sweep.plots.folder,
    "plot_sensitivity",
    lambda *args, **kwargs: drawn.setdefault("figure", draw(*args, **kwargs)),
  )
  for tolerance in (0.05, 0.2):
    drawn.clear()
    sweep.plot_all(u_shaped, tmp_path / str(tolerance), "final_val_accuracy", tolerance=tolerance)
    printed = u_shaped.summary("final_val_accuracy", tolerance=tolerance).splitlines()[2]
    lo, hi = (float(v) for v in re.search(r"lr in \[(\S+), (\S+)\]\.", printed).groups())
    (span,) = [p for p in drawn["figure"].axes[0].patches if p.get_label().startswith("usable")]
    left, right = span.get_x(), span.get_x() + span.get_width()
    np.testing.assert_allclose([left, right], [lo, hi], rtol=1e-3)  # the printed 4 digits
    assert span.get_label() == f"usable range (tol {tolerance:g}): lr {lo:.3g} to {hi:.3g}"
  assert (lo, hi) != (0.003162, 0.03162)  # 0.2 is wider than 0.05


def test_plot_all_draws_no_heatmap_for_an_axis_zipped_with_the_default_axis(tmp_path):
  grid = sweep.product(
    sweep.zipped(lr=[0.01, 0.1, 1.0], weight_decay=[1e-3, 1e-4, 1e-5]), momentum=[0.0, 0.9]
  )
  final = np.array([[0.5, 0.55, 0.9, 0.8, 0.6, 0.4]])
  result = synthetic.make_result(grid, final)
  names = [path.name for path in sweep.plot_all(result, tmp_path)]
  assert "heatmap_lr_weight_decay.png" not in names  # zipped with lr: not a product
  assert "heatmap_lr_momentum.png" in names  # a product with lr
