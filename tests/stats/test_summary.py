import math

import pytest

from wellbeing.stats.summary import summarise


def test_summary_of_five_scores_matches_hand_computed_t_interval():
    # given five indices with mean 30 and sd sqrt(250)
    scores = [10, 20, 30, 40, 50]

    # when
    s = summarise(scores)

    # then: t(0.975, 4) = 2.7764, half-width = 2.7764 * 15.8114 / sqrt(5) = 19.632
    assert s is not None
    assert s.n == 5
    assert s.mean == pytest.approx(30.0)
    assert s.sd == pytest.approx(math.sqrt(250))
    assert s.ci_low == pytest.approx(30 - 19.632, abs=1e-3)
    assert s.ci_high == pytest.approx(30 + 19.632, abs=1e-3)
    assert s.distribution == (1, 2, 2, 0, 0)


def test_missing_scores_are_dropped_and_all_missing_gives_none():
    assert summarise([None, float("nan")]) is None
    assert summarise([]) is None
    s = summarise([None, 40.0, float("nan"), 60.0])
    assert s is not None and s.n == 2 and s.mean == pytest.approx(50.0)


def test_interval_is_clipped_to_the_scale():
    s = summarise([0, 100, 100])
    assert s is not None
    assert s.ci_low == 0.0 and s.ci_high == 100.0


def test_single_score_has_no_spread_and_the_whole_scale_as_interval():
    s = summarise([70])
    assert s is not None
    assert (s.sd, s.ci_low, s.ci_high) == (0.0, 0.0, 100.0)


def test_top_of_scale_lands_in_the_last_bucket():
    s = summarise([0, 19.99, 20, 100], buckets=5)
    assert s is not None
    assert s.distribution == (2, 1, 0, 0, 1)


def test_buckets_are_configurable_and_sum_to_n():
    s = summarise([5, 15, 55, 95], buckets=10)
    assert s is not None
    assert len(s.distribution) == 10 and sum(s.distribution) == 4


@pytest.mark.parametrize("bad", [[-1.0], [100.5]])
def test_scores_outside_the_scale_are_rejected(bad):
    with pytest.raises(ValueError):
        summarise(bad)


def test_wider_confidence_gives_a_wider_interval():
    narrow = summarise([40, 50, 60, 45], confidence=0.8)
    wide = summarise([40, 50, 60, 45], confidence=0.99)
    assert narrow is not None and wide is not None
    assert wide.ci_high - wide.ci_low > narrow.ci_high - narrow.ci_low
