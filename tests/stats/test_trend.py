import math

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from scipy import stats as scipy_stats

from wellbeing.stats.shrinkage import between_team_variance, shrink_mean, shrinkage_weight
from wellbeing.stats.trend import mann_kendall, theil_sen


def test_theil_sen_ignores_an_outlier_hand_computed():
    # given y = 1, 2, 3, 4, 10 at x = 0..4: pairwise slopes 1 (x6), 2.25, 2.67, 3.5, 6
    result = theil_sen([1, 2, 3, 4, 10])

    # then the median slope is 1 and the intercept median(y - x) = 1
    assert result.slope == pytest.approx(1.0)
    assert result.intercept == pytest.approx(1.0)
    assert result.slope_low <= 1.0 <= result.slope_high


def test_theil_sen_uses_given_positions_and_skips_missing_points():
    # given a gap (cycle 2 hidden) the slope is per cycle, not per observation
    result = theil_sen([10, 12, None, 16], [0, 1, 2, 3])
    assert result.slope == pytest.approx(2.0)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.integers(min_value=0, max_value=60),  # positions, with repeats
            st.integers(min_value=0, max_value=20).map(lambda v: v * 5.0),  # values, with ties
        ),
        min_size=2,
        max_size=40,
    ),
    st.sampled_from([0.9, 0.95, 0.99]),
)
def test_theil_sen_matches_scipy_theilslopes_with_ties(points, confidence):
    xs = [float(x) for x, _ in points]
    ys = [y for _, y in points]
    assume(len(set(xs)) >= 2)
    ours = theil_sen(ys, xs, confidence=confidence)
    with np.errstate(invalid="ignore"):  # scipy's bounds are NaN when ties leave no variance
        reference = scipy_stats.theilslopes(ys, xs, alpha=confidence)
    assert ours.slope == pytest.approx(reference.slope, abs=1e-12)
    assert ours.slope_low == pytest.approx(reference.low_slope, abs=1e-12, nan_ok=True)
    assert ours.slope_high == pytest.approx(reference.high_slope, abs=1e-12, nan_ok=True)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.integers(min_value=0, max_value=10).map(float), min_size=2, max_size=52))
def test_mann_kendall_p_values_match_the_normal_distribution(values):
    result = mann_kendall(values)
    assert result.p_increasing == pytest.approx(scipy_stats.norm.sf(result.z), rel=1e-12, abs=0)
    assert result.p_value == pytest.approx(min(1.0, 2 * scipy_stats.norm.sf(abs(result.z))))


def test_theil_sen_needs_two_positions():
    with pytest.raises(ValueError):
        theil_sen([5.0])


def test_mann_kendall_strictly_increasing_five_points():
    # S = 10, Var(S) = 5*4*15/18 = 16.667, Z = (10-1)/4.0825 = 2.2045
    result = mann_kendall([1, 2, 3, 4, 5])
    assert result.s == 10
    assert result.tau == pytest.approx(1.0)
    assert result.z == pytest.approx(9 / math.sqrt(50 / 3))
    assert result.p_value == pytest.approx(0.02749, abs=1e-4)
    assert result.p_increasing == pytest.approx(0.013745, abs=1e-5)


def test_mann_kendall_with_ties_corrects_the_variance():
    # y = 1, 1, 2, 3: S = 5; one tie of 2 -> Var = (4*3*13 - 2*1*9) / 18 = 7.667
    result = mann_kendall([1, 1, 2, 3])
    assert result.s == 5
    assert result.z == pytest.approx(4 / math.sqrt(138 / 18))


def test_mann_kendall_decreasing_series_is_no_evidence_of_increase():
    result = mann_kendall([5, 4, 3, 2, 1])
    assert result.s == -10
    assert result.p_increasing == pytest.approx(1 - 0.013745, abs=1e-5)


def test_mann_kendall_on_too_little_data_is_neutral():
    result = mann_kendall([None, 3.0])
    assert (result.s, result.p_value, result.p_increasing) == (0, 1.0, 1.0)


def test_shrinkage_halfway_when_noise_equals_between_team_variance():
    # given within sd 20 over n = 4 (noise variance 100) and between sd 10 (variance 100)
    assert shrinkage_weight(team_n=4, within_sd=20, between_sd=10) == pytest.approx(0.5)
    assert shrink_mean(60.0, 4, 20.0, 50.0, 10.0) == pytest.approx(55.0)


def test_large_teams_keep_their_mean_and_identical_teams_collapse_to_the_organisation():
    assert shrink_mean(60.0, 10_000, 20.0, 50.0, 10.0) == pytest.approx(60.0, abs=0.01)
    assert shrink_mean(60.0, 8, 20.0, 50.0, 0.0) == 50.0
    assert shrink_mean(60.0, 0, 20.0, 50.0, 10.0) == 50.0


def test_between_team_variance_by_moments_and_floored():
    # var(40, 50, 60) = 100; noise = 10**2 / 10 = 10
    assert between_team_variance([40, 50, 60], [10, 10, 10], within_sd=10) == pytest.approx(90.0)
    assert between_team_variance([50, 51, 49], [5, 5, 5], within_sd=20) == 0.0
    assert between_team_variance([50, None, 70], [5, 5, 0], within_sd=20) == 0.0


def test_between_team_variance_of_arrays_skips_what_a_list_skips():
    # the close passes numpy columns (NaN = not published); lists may hold None, NaN or inf
    means = [40.0, None, 55.0, float("nan"), 60.0, float("inf"), 70.0]
    ns = [10, 12, 0, 8, 10, 9, 20]
    expected = between_team_variance([40, 60, 70], [10, 10, 20], within_sd=10)
    assert expected == pytest.approx(np.var([40, 60, 70], ddof=1) - (10 + 10 + 5) / 3)
    assert between_team_variance(means, ns, within_sd=10) == pytest.approx(expected)
    as_arrays = np.array([np.nan if m is None else m for m in means]), np.array(ns, dtype=float)
    assert between_team_variance(*as_arrays, within_sd=10) == pytest.approx(expected)
