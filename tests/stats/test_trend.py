import math

import pytest

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
