"""The experiments' statistics on constructed data with known answers."""

import math

import numpy as np
import pytest
import scipy.stats

from lrlab import analysis
from lrlab.analysis import decades, holm, seed_band, spearman, verdict


def test_seed_band_ignores_nan():
  mean, low, high = seed_band(np.array([[1.0, np.nan], [3.0, 4.0], [5.0, 8.0]]))
  np.testing.assert_allclose(mean, [3.0, 6.0])
  np.testing.assert_allclose(low, [1.0, 4.0])
  np.testing.assert_allclose(high, [5.0, 8.0])


@pytest.mark.parametrize(
  ("interval", "expected"),
  [((1e-4, 1e-1), 3.0), ((0.5, 0.5), 0.0), ((0.0, 1.0), math.nan), ((math.nan, 1.0), math.nan)],
)
def test_decades(interval, expected):
  assert decades(interval) == pytest.approx(expected, nan_ok=True)


def test_spearman_matches_the_definition_with_ties():
  x = np.array([1.0, 2.0, 3.0, 4.0, 5.0])
  y = np.array([2.0, 1.0, 4.0, 4.0, 5.0])
  # Ranks: x = 0..4; y = [1, 0, 2.5, 2.5, 4]; Pearson correlation of the ranks.
  rx, ry = np.arange(5.0), np.array([1.0, 0.0, 2.5, 2.5, 4.0])
  expected = np.sum((rx - 2) * (ry - 2)) / math.sqrt(np.sum((rx - 2) ** 2) * np.sum((ry - 2) ** 2))
  assert spearman(x, y) == pytest.approx(expected)
  assert spearman(x, x**3) == pytest.approx(1.0)
  assert math.isnan(spearman(x, np.ones(5)))
  with pytest.raises(ValueError, match="equal length"):
    spearman(x, y[:3])


def test_spearman_is_scipys_with_diverged_runs_tied_last():
  scipy_stats = pytest.importorskip("scipy.stats")
  rng = np.random.default_rng(0)
  a, b = rng.normal(size=12), rng.normal(size=12)
  a[[2, 7, 9]] = np.nan  # three diverged runs: tied, above every number
  b[4] = b[5]
  reference = scipy_stats.spearmanr(np.where(np.isnan(a), np.inf, a), b).statistic
  assert spearman(a, b) == pytest.approx(reference)
  assert spearman(b, 2 * b + 1) == pytest.approx(scipy_stats.spearmanr(b, b).statistic)


@pytest.mark.parametrize(
  ("effect", "noise", "sign", "expected"),
  [
    (1.0, 0.1, 1, "supported"),
    (-1.0, 0.1, 1, "refuted"),
    (-1.0, 0.1, -1, "supported"),
    (0.15, 0.1, 1, "inconclusive"),  # within 2 noise scales
    (0.25, 0.1, 1, "supported"),
    (0.0, 0.0, 1, "inconclusive"),
    (0.01, 0.0, 1, "supported"),  # deterministic: any effect is real
    (math.nan, 0.1, 1, "inconclusive"),
  ],
)
def test_verdict(effect, noise, sign, expected):
  assert verdict(effect, noise, expected_sign=sign) == expected


def test_verdict_rejects_bad_sign():
  with pytest.raises(ValueError, match="expected_sign"):
    verdict(1.0, 0.1, expected_sign=0)


def _holm_rejects(p, alpha):
  """Holm's sequentially rejective procedure as the 1979 paper states it."""
  rejected = np.zeros(len(p), bool)
  for k, i in enumerate(np.argsort(p, kind="stable")):
    if p[i] > alpha / (len(p) - k):
      break
    rejected[i] = True
  return rejected


def test_holm_rejects_as_the_sequential_procedure():
  rng = np.random.default_rng(0)
  for m in (1, 2, 5, 16):
    for _ in range(50):
      p = rng.uniform(0, 0.2, m) ** 2
      adjusted = holm(p)
      assert np.all(adjusted >= p) and np.all(adjusted <= 1)
      for alpha in (0.01, 0.0455, 0.05, 0.1):
        np.testing.assert_array_equal(adjusted <= alpha, _holm_rejects(p, alpha))


def test_holm_by_hand_and_nan():
  # sorted 0.005, 0.01, 0.03, 0.04 -> 4 x 0.005, 3 x 0.01, 2 x 0.03, max(0.06, 1 x 0.04)
  np.testing.assert_allclose(holm([0.01, 0.04, 0.03, 0.005]), [0.03, 0.06, 0.06, 0.02])
  np.testing.assert_allclose(holm([0.2, np.nan, 0.01]), [0.2, np.nan, 0.02])  # m = 2


def test_holm_rejects_bad_input():
  with pytest.raises(ValueError, match="p_values"):
    holm([0.5, 1.5])
  with pytest.raises(ValueError, match="p_values"):
    holm([[0.5]])


def test_alpha_is_the_two_sided_level_of_two_standard_errors():
  assert math.isclose(analysis.ALPHA, 2 * scipy.stats.norm.sf(2.0), rel_tol=1e-12)


def test_paired_difference_is_the_paired_t_statistic_plus_the_test_sets_error():
  rng = np.random.default_rng(0)
  a, b = rng.uniform(0.6, 0.7, 5), rng.uniform(0.6, 0.7, 5)
  seeds_only = analysis.paired_difference(a, b)
  t = scipy.stats.ttest_rel(a, b).statistic  # mean(d) / (std(d, ddof=1) / sqrt(S))
  assert seeds_only["z"] == pytest.approx(t, rel=1e-12) and seeds_only["se_test_set"] == 0
  with_test = analysis.paired_difference(a, b, test_examples=1000)
  binomial = np.sqrt((a.mean() * (1 - a.mean()) + b.mean() * (1 - b.mean())) / 1000)
  assert with_test["se"] == pytest.approx(np.hypot(seeds_only["se"], binomial), rel=1e-12)
  assert with_test["p"] == pytest.approx(2 * scipy.stats.norm.sf(abs(with_test["z"])), rel=1e-9)
  assert np.isnan(analysis.paired_difference([0.5], [0.4])["se"])  # one seed: no error
  with pytest.raises(ValueError, match="one shape"):
    analysis.paired_difference([1.0, 2.0], [1.0])


def test_p_t_is_the_paired_t_tests_and_welchs_with_the_test_set():
  rng = np.random.default_rng(1)
  for seeds in (2, 5, 8):
    a, b = rng.normal(size=seeds), rng.normal(size=seeds) + 0.5
    found = analysis.paired_difference(a, b)
    assert found["df"] == seeds - 1
    assert found["p_t"] == pytest.approx(scipy.stats.ttest_rel(a, b).pvalue, rel=1e-12)
  # With the test set's binomial error (infinitely many degrees of freedom), Welch and
  # Satterthwaite's df = SE^4 / (SE_seeds^4 / (S - 1)).
  a, b = rng.uniform(0.6, 0.7, 5), rng.uniform(0.6, 0.7, 5)
  found = analysis.paired_difference(a, b, test_examples=1000)
  df = found["se"] ** 4 / (found["se_seeds"] ** 4 / 4)
  assert found["df"] == pytest.approx(df, rel=1e-12)
  assert found["p_t"] == pytest.approx(2 * scipy.stats.t.sf(abs(found["z"]), df), rel=1e-12)
  # The 2-SE rule's p at 5 seeds against the exact-size one: |z| = 2 is p 0.0455, p_t 0.116.
  assert 2 * scipy.stats.t.sf(2.0, 4) == pytest.approx(0.1161, abs=1e-4)


def test_paired_difference_refuses_percent_accuracies_with_a_test_set():
  # 90 % read as 90: p (1 - p) < 0 was clamped to 0, silently dropping the binomial error.
  with pytest.raises(ValueError, match=r"a and b must be accuracies in \[0, 1\].*90"):
    analysis.paired_difference([90.0, 80.0, 70.0], [80.0, 80.0, 60.0], test_examples=100)
  with pytest.raises(ValueError, match=r"test_examples must be an integer >= 1; got 99\.5"):
    analysis.paired_difference([0.9, 0.8], [0.8, 0.7], test_examples=99.5)
  found = analysis.paired_difference([0.9, np.nan], [0.8, 0.7], test_examples=100)
  assert np.isnan(found["gap"])  # a diverged run's NaN is still let through


def test_an_extra_error_is_welch_satterthwaites_with_infinite_df():
  rng = np.random.default_rng(2)
  a, b = rng.normal(size=5), rng.normal(size=5)
  seeds_only = analysis.paired_difference(a, b)
  found = analysis.paired_difference(a, b, extra_se=0.3)
  se = math.hypot(seeds_only["se"], 0.3)
  df = se**4 / (seeds_only["se_seeds"] ** 4 / 4)
  assert found["se"] == pytest.approx(se, rel=1e-12) and found["se_test_set"] == 0
  assert found["df"] == pytest.approx(df, rel=1e-12)
  assert found["z"] == pytest.approx((a - b).mean() / se, rel=1e-12)
  assert found["p_t"] == pytest.approx(2 * scipy.stats.t.sf(abs(found["z"]), df), rel=1e-12)
  with pytest.raises(ValueError, match="extra_se"):
    analysis.paired_difference(a, b, extra_se=-1.0)


@pytest.mark.parametrize("vertex", [0.3, -0.2, 0.0, 0.49])
def test_refine_best_finds_the_vertex_of_a_sampled_parabola(vertex):
  x = np.linspace(-3, 3, 13)  # step 0.5: the vertex is within half a step of x = 0
  peak = -((x - vertex) ** 2)
  assert analysis.refine_best(x, peak, larger_is_better=True) == pytest.approx(vertex, abs=1e-12)
  assert analysis.refine_best(x, -peak, larger_is_better=False) == pytest.approx(vertex, abs=1e-12)


def test_refine_best_finds_the_vertex_on_an_uneven_grid():
  # A 1-3-10 grid of rates is uneven in log10; the even-grid formula missed the vertex by
  # 0.016 decade here. The vertex of NumPy's exact quadratic fit through the three points:
  x = np.log10([1e-3, 3e-3, 1e-2, 3e-2])
  scores = 1.0 - (x + 2.4) ** 2
  expected = -np.polyfit(x[:3], scores[:3], 2)[1] / (2 * np.polyfit(x[:3], scores[:3], 2)[0])
  assert expected == pytest.approx(-2.4, abs=1e-9)
  assert analysis.refine_best(x, scores, larger_is_better=True) == pytest.approx(-2.4, abs=1e-12)
  assert analysis.refine_best(x, -scores, larger_is_better=False) == pytest.approx(-2.4, abs=1e-12)
  rng = np.random.default_rng(0)  # random uneven grids and scores: NumPy's fit's vertex
  for _ in range(50):
    x, scores = np.sort(rng.uniform(-3, 3, 5)), rng.normal(size=5)
    k = int(np.argmax(scores))
    if 0 < k < 4:
      a2, a1, _ = np.polyfit(x[k - 1 : k + 2], scores[k - 1 : k + 2], 2)
      found = analysis.refine_best(x, scores, larger_is_better=True)
      assert found == pytest.approx(-a1 / (2 * a2), abs=1e-9)


def test_refine_best_keeps_the_grid_point_at_an_edge_or_next_to_nan():
  x = np.arange(4.0)
  assert analysis.refine_best(x, [4.0, 3.0, 2.0, 1.0], larger_is_better=True) == 0.0
  assert analysis.refine_best(x, [1.0, 3.0, np.nan, 1.0], larger_is_better=True) == 1.0
  assert analysis.refine_best(x, [1.0, 2.0, 2.0, 1.0], larger_is_better=True) == 1.5


@pytest.mark.parametrize("df", [1e8, 1e10, 1e16, 1e60, 1e300])
@pytest.mark.parametrize("t", [0.5, 2.0, 3.0])
def test_p_t_is_students_at_huge_degrees_of_freedom(t, df):
  expected = 2 * scipy.stats.t.sf(t, df)
  assert analysis.stats._two_sided_t(t, df) == pytest.approx(expected, rel=1e-4)


def test_a_constant_accuracy_gap_with_a_test_set_term_gets_the_normal_p_t():
  # The same 2-point gap in every seed: SE_seeds is float round-off (~1e-17), so Welch's df is
  # ~1e59 and p_t must be the normal law's p (0.099), not a negative number.
  a = np.array([0.93, 0.91, 0.92, 0.95, 0.94])
  b = np.array([0.91, 0.89, 0.90, 0.93, 0.92])
  d = analysis.paired_difference(a, b, test_examples=1000)
  assert d["df"] > 1e50
  assert 0 <= d["p_t"] <= 1
  assert d["p_t"] == pytest.approx(d["p"], rel=1e-9)
  assert d["p_t"] == pytest.approx(2 * scipy.stats.norm.sf(abs(d["z"])), rel=1e-9)


def test_the_same_nonzero_difference_in_every_seed_is_the_paired_t_tests_infinite_t():
  # steps to target are multiples of eval_every: a slower rate can be slower by exactly the
  # same number of steps in every seed.
  low, fast = np.array([400.0, 400, 400, 400, 400]), np.array([200.0, 200, 200, 200, 200])
  reference = scipy.stats.ttest_rel(low, fast)
  assert reference.statistic == math.inf and reference.pvalue == 0.0
  d = analysis.paired_difference(low, fast)
  assert d["gap"] == 200.0 and d["se"] == 0.0
  assert d["z"] == math.inf and d["p"] == 0.0 and d["p_t"] == 0.0
  assert d["df"] == reference.df == 4
  assert analysis.paired_difference(fast, low)["z"] == -math.inf
  # and Holm keeps it in the family instead of dropping a NaN
  adjusted = analysis.holm([d["p"], 0.03])
  assert adjusted.tolist() == [0.0, 0.03]


def test_no_difference_at_all_stays_undefined():
  d = analysis.paired_difference([1.0, 2.0, 3.0], [1.0, 2.0, 3.0])
  assert math.isnan(d["z"]) and math.isnan(d["p"]) and math.isnan(d["p_t"])
  assert math.isnan(analysis.paired_difference([0.5], [0.4])["z"])  # one seed, unchanged


@pytest.mark.parametrize("noise", [-0.05, -math.inf])
def test_a_negative_noise_is_refused_by_name(noise):
  with pytest.raises(ValueError, match="noise must be"):
    analysis.verdict(0.3, noise)


def test_nan_and_infinite_noise_stay_inconclusive():
  assert analysis.verdict(0.3, math.nan) == "inconclusive"
  assert analysis.verdict(0.3, math.inf) == "inconclusive"
  assert analysis.verdict(0.3, 0.05) == "supported"


def test_no_seeds_at_all_are_refused_in_one_line():
  # Empty input gave NaN with NumPy's "Mean of empty slice" warning, read later as a result.
  with pytest.raises(ValueError, match=r"a and b must hold at least one seed each; got 0"):
    analysis.paired_difference([], [])
  with pytest.raises(ValueError, match=r"values must hold at least one seed along axis 0"):
    seed_band(np.zeros((0, 3)))
  with pytest.raises(ValueError, match=r"along axis 1; got shape \(3, 0\)"):
    seed_band(np.zeros((3, 0)), axis=1)
  # every seed NaN at one point (all diverged) is still NaN there, as documented
  with pytest.warns(RuntimeWarning):
    mean, low, high = seed_band([[np.nan, 1.0], [np.nan, 3.0]])
  assert np.isnan([mean[0], low[0], high[0]]).all() and mean[1] == 2.0


def test_p_t_is_scipys_over_random_degrees_of_freedom_and_tails():
  # Welch-Satterthwaite's df is fractional and may fall below 1; a clear gap's p is far out in
  # the tail. 2,000 random (t, df) from df 0.3 to 1e5 and t 1e-4 to 60, p down to about 1e-250.
  rng = np.random.default_rng(7)
  df = np.exp(rng.uniform(np.log(0.3), np.log(1e5), 2000))
  t = np.exp(rng.uniform(np.log(1e-4), np.log(60.0), 2000))
  expected = 2 * scipy.stats.t.sf(t, df)
  found = np.array(
    [analysis.stats._two_sided_t(float(a), float(b)) for a, b in zip(t, df, strict=True)]
  )
  keep = expected > 1e-290  # scipy's own tail underflows below
  np.testing.assert_allclose(found[keep], expected[keep], rtol=1e-8)


def test_paired_difference_is_scipys_on_random_seeds_test_sets_and_extra_errors():
  rng = np.random.default_rng(8)
  for _ in range(200):
    seeds = int(rng.integers(2, 41))
    a = rng.uniform(0.3, 0.95, seeds)
    b = np.clip(a + rng.normal(rng.normal(0.0, 0.02), 0.03, seeds), 0.0, 1.0)
    n = int(rng.integers(50, 5000)) if rng.random() < 0.5 else None
    extra = float(rng.uniform(0.0, 0.02)) if rng.random() < 0.3 else 0.0
    found = analysis.paired_difference(a, b, test_examples=n, extra_se=extra)
    seeds_se = scipy.stats.sem(a - b)  # ddof 1
    binomial = (
      0.0 if n is None else np.sqrt((a.mean() * (1 - a.mean()) + b.mean() * (1 - b.mean())) / n)
    )
    se = np.sqrt(seeds_se**2 + binomial**2 + extra**2)
    z = (a - b).mean() / se
    df = (seeds - 1) * (se / seeds_se) ** 4
    assert found["se"] == pytest.approx(se, rel=1e-12)
    assert found["p"] == pytest.approx(2 * scipy.stats.norm.sf(abs(z)), rel=1e-9)
    assert found["df"] == pytest.approx(df, rel=1e-12)
    assert found["p_t"] == pytest.approx(2 * scipy.stats.t.sf(abs(z), df), rel=1e-8)
    if n is None and extra == 0:
      assert found["p_t"] == pytest.approx(scipy.stats.ttest_rel(a, b).pvalue, rel=1e-10)
