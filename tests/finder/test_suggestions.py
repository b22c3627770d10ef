"""Every suggestion rule on hand-built loss curves whose answer is known."""

import numpy as np
import pytest

from lrlab.finder import suggestions

LRS = np.logspace(-6, 1, 50)


# --- steep --------------------------------------------------------------------------------------


def test_steep_picks_the_left_end_of_the_steepest_segment_in_log_lr():
  # Piecewise linear in log10(lr): slope -0.1 per point, then -0.5 on the segment 20 -> 21.
  losses = 5.0 - 0.1 * np.arange(50)
  losses[21:] -= 0.4
  out = suggestions.steep(LRS, losses)
  assert out.index == 20 and out.lr == LRS[20] and out.reason is None


def test_steep_ignores_the_skipped_head_and_tail_and_reports_original_indices():
  losses = 5.0 - 0.1 * np.arange(50)
  losses[3:] -= 2.0  # the steepest drop, 2 -> 3, lies in the skipped head
  losses[30:] -= 0.3
  out = suggestions.steep(LRS, losses, skip_start=5, skip_end=5)
  assert out.index == 29


def test_steep_stops_at_the_first_non_finite_loss_as_fastai_drops_everything_after_a_nan():
  losses = 5.0 - 0.1 * np.arange(50)
  losses[40] = np.nan
  losses[45:] = -100.0  # a cliff after the NaN must not count
  assert suggestions.steep(LRS, losses).index < 40


def test_steep_needs_two_points():
  out = suggestions.steep(LRS[:5], np.ones(5), skip_start=2, skip_end=2)
  assert out.lr is None and "needs at least 2" in out.reason


# --- valley -------------------------------------------------------------------------------------


def test_valley_on_a_monotone_descent_then_rise():
  # 0..29 strictly decreasing (a valley of 30 points starting at 0), then rising.
  losses = np.r_[np.linspace(3.0, 1.0, 30), np.linspace(1.5, 4.0, 20)]
  # fastai: end e = 29, d_e = 30, s = e - d_e = -1; index s + floor(30/3) + floor(30/6) = 14.
  out = suggestions.valley(LRS, losses)
  assert out.index == 14 and out.lr == LRS[14]


def test_valley_is_a_subsequence_not_a_contiguous_run():
  # A bump at 10 breaks contiguity but not the longest decreasing subsequence.
  losses = np.r_[np.linspace(3.0, 2.0, 10), [5.0], np.linspace(1.9, 1.0, 19), np.full(20, 6.0)]
  # Longest strictly decreasing subsequence: indices 0..9 and 11..29 (29 points), ending at e = 29.
  # s = 29 - 29 = 0, (e - s) / 3 = 9.67: index 0 + 9 + 4 = 13.
  assert suggestions.valley(LRS, losses).index == 13


def test_valley_takes_the_first_of_equally_long_valleys():
  # Two ramps of 10 points; the second lies above the first, so neither extends the other.
  losses = np.r_[np.linspace(2, 1, 10), np.linspace(5, 4, 10)]
  # The first ends at e = 9 with s = 9 - 10 = -1: index -1 + floor(10/3) + floor(10/6) = 3
  # (the second would give 9 + 3 + 1 = 13).
  assert suggestions.valley(LRS[:20], losses).index == 3


def test_valley_of_a_loss_that_never_decreases_is_none():
  out = suggestions.valley(LRS, np.linspace(1, 2, 50))
  assert out.lr is None and "never decreases" in out.reason


def test_valley_clamps_fastais_negative_index_to_the_first_point():
  # A two-point valley at the very start: fastai's index is -1, which wraps to the last point.
  out = suggestions.valley(LRS[:5], np.array([2.0, 1.0, 3.0, 4.0, 5.0]))
  assert out.index == 0


# --- minimum ------------------------------------------------------------------------------------


def test_minimum_is_a_tenth_of_the_rate_at_the_lowest_loss():
  losses = (np.log10(LRS) + 2.0) ** 2  # lowest at lr = 1e-2 (a grid point? no: the nearest)
  k = int(np.argmin(losses))
  out = suggestions.minimum(LRS, losses)
  assert out.index == k and out.lr == pytest.approx(LRS[k] / 10)


def test_minimum_sees_only_the_window():
  losses = np.linspace(2, 1, 50)
  assert suggestions.minimum(LRS, losses, skip_end=5).index == 44


# --- slide --------------------------------------------------------------------------------------


def test_slide_on_a_v_shaped_curve_finds_the_kink_minus_the_window():
  # Slope -1 up to index 29, +1 after: np.gradient is -1, 0 (at 29), +1. Windows of 15 whose
  # ends straddle the kink differ by more than thresh; the first level window is (28, 13),
  # so the last remembered left end is 14.
  i = np.arange(40)
  losses = np.where(i <= 29, -i, -29 + (i - 29)).astype(float)
  out = suggestions.slide(LRS[:40], losses)
  assert out.index == 14 and out.lr == LRS[14]


def test_slide_on_a_straight_line_keeps_the_first_window():
  out = suggestions.slide(LRS, 3.0 - 0.01 * np.arange(50))
  assert out.index == 50 - 1 - 15


def test_slide_runs_off_the_start_when_the_gradient_never_levels():
  out = suggestions.slide(LRS, np.exp(np.arange(50) / 3.0))
  assert out.index == 0


def test_slide_adjust_value_and_window_width():
  losses = 3.0 - 0.01 * np.arange(50)
  out = suggestions.slide(LRS, losses, lr_diff=5, adjust_value=0.5)
  assert out.index == 44 and out.lr == pytest.approx(LRS[44] / 2)
  assert "needs at least 16" in suggestions.slide(LRS[:15], losses[:15]).reason


# --- lightning ----------------------------------------------------------------------------------


def test_lightning_matches_torch_gradient_with_the_rates_as_coordinates():
  torch = pytest.importorskip("torch")
  rng = np.random.default_rng(0)
  for _ in range(5):
    losses = np.cumsum(rng.normal(size=50))
    expected = torch.gradient(torch.tensor(losses[10:-1]), spacing=[torch.tensor(LRS[10:-1])])[0]
    out = suggestions.lightning(LRS, losses)
    assert out.index == 10 + int(torch.argmin(expected))


def test_lightning_measures_slope_against_the_linear_rate_unlike_steep():
  # Equal drops per point on a geometric grid: the drop per unit of *linear* rate is largest
  # where the rates are smallest, while steep (log rate) sees a tie and adds a bigger drop later.
  losses = 5.0 - 0.1 * np.arange(50)
  losses[31:] -= 0.3
  assert suggestions.steep(LRS, losses).index == 30
  assert suggestions.lightning(LRS, losses).index == 10  # the first point after the skip


def test_lightning_filters_non_finite_losses_instead_of_truncating():
  losses = 5.0 - 0.01 * np.arange(50)
  losses[40:42] = -1e6  # a cliff ...
  losses[20] = np.nan  # ... after a NaN is still seen
  out = suggestions.lightning(LRS, losses, skip_start=0, skip_end=0)
  assert out.index in (39, 40)  # central differences around the cliff


def test_lightning_needs_two_points_after_its_skip():
  out = suggestions.lightning(LRS[:12], np.ones(12))
  assert out.lr is None and "10 at the start and 1 at the end" in out.reason


# --- windows and validation ---------------------------------------------------------------------


def test_suggest_uses_each_sources_window():
  assert suggestions.windows(100)["steep"] == (10, 5)
  assert suggestions.windows(100)["lightning"] == (10, 1)
  losses = np.linspace(3, 1, 100)
  losses[5] = -10.0  # inside fastai's skipped head of 10: ignored by minimum
  out = suggestions.suggest(np.logspace(-7, 1, 100), losses, steps=100)
  assert list(out) == list(suggestions.RULES)
  assert out["minimum"].index == 94  # the last point of the window [10, 95)


def test_min_steps_is_the_fewest_steps_at_which_every_rule_has_its_points():
  n = suggestions.min_steps()
  assert n == 23
  for steps, computable in ((n, True), (n - 1, False)):
    out = suggestions.suggest(np.logspace(-7, 1, steps), np.linspace(3, 1, steps), steps=steps)
    assert (out["slide"].lr is not None) is computable


def test_bad_inputs_raise_clear_errors():
  with pytest.raises(ValueError, match="same length"):
    suggestions.steep(LRS, np.ones(3))
  with pytest.raises(ValueError, match="skip_start must be an integer >= 0"):
    suggestions.steep(LRS, np.ones(50), skip_start=-1)
  with pytest.raises(ValueError, match="lr_diff"):
    suggestions.slide(LRS, np.ones(50), lr_diff=0)


def test_valley_lands_half_way_along_a_long_valley_not_a_third():
  # fastai's index s + int(L / 3) + int(L / 6) with s = e - L: the docstring called it a third.
  for length in (30, 60, 90):
    losses = np.r_[np.linspace(0.1, 0.5, 10), np.linspace(5.0, 1.0, length), np.full(20, 9.0)]
    lrs = np.logspace(-7, 1, losses.size)
    start = 10 + length - 1 - length  # e - d_e
    expected = start + int(length / 3) + int(length / 3 / 2)
    assert suggestions.valley(lrs, losses).index == expected
    assert abs((expected - start) / length - 0.5) < 0.02
  assert "half-way" in suggestions.valley.__doc__.splitlines()[0]
