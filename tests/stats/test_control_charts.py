"""Control charts against published ARL figures and independent Monte-Carlo/Markov checks."""

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from wellbeing.stats.cusum import cusum_upper, siegmund_arl
from wellbeing.stats.ewma import ewma_upper, ewma_upper_arl, ewma_upper_batch


def _run_lengths(signals: np.ndarray) -> np.ndarray:
    horizon = signals.shape[1]
    return np.where(signals.any(axis=1), signals.argmax(axis=1) + 1, horizon)


def test_two_sided_ewma_matches_lucas_saccucci_arl():
    # given lambda 0.2, L 2.962 with asymptotic limits: ARL0 = 500, ARL(1 sd) = 10.5
    # (Lucas & Saccucci 1990, as tabulated in Montgomery, Table 9.11)
    rng = np.random.default_rng(20240601)
    for shift, expected, runs, horizon, tol in [
        (0.0, 500, 1000, 3000, 0.15),
        (1.0, 10.5, 2000, 200, 0.06),
    ]:
        z = rng.standard_normal((runs, horizon)) + shift

        # when the unreflected EWMA runs on z and on -z (its mirror image)
        up, lim = ewma_upper_batch(z, lam=0.2, L=2.962, asymptotic=True, reflect=False)
        signals = np.abs(up) > lim

        # then the average run length matches the table
        assert _run_lengths(signals).mean() == pytest.approx(expected, rel=tol)


def test_reflected_upper_ewma_monte_carlo_agrees_with_markov_chain():
    # given the Markov-chain ARL of the one-sided chart (Brook & Evans 1972)
    lam, L = 0.2, 2.9
    rng = np.random.default_rng(7)
    for shift, runs, horizon, tol in [(0.0, 1000, 3000, 0.15), (1.0, 2000, 200, 0.06)]:
        expected = ewma_upper_arl(lam=lam, L=L, shift=shift)
        z = rng.standard_normal((runs, horizon)) + shift

        # when the chart runs by Monte Carlo with a fixed seed
        stats, limits = ewma_upper_batch(z, lam=lam, L=L, asymptotic=True)

        # then both agree within the Monte-Carlo error
        assert _run_lengths(stats > limits).mean() == pytest.approx(expected, rel=tol)


def test_reflected_upper_ewma_is_faster_than_two_sided_at_equal_false_alarms():
    # one-sided L=2.9 has ARL0 ~ 545 > 500, and still beats the two-sided 10.5 at 1 sd
    assert ewma_upper_arl(lam=0.2, L=2.9) > 500
    assert ewma_upper_arl(lam=0.2, L=2.9, shift=1.0) < 10.5


def test_ewma_never_signals_on_a_fall_and_skips_missing_values():
    # given values that only fall, with gaps
    z = [-1.0, None, -3.0, float("nan"), -2.0]

    # when
    result = ewma_upper(z)

    # then the reflected statistic stays at its start and missing points carry over
    assert result.first_signal is None
    assert result.statistics == [0.0] * 5
    assert not np.isnan(result.limits[0]) and result.limits[1] == result.limits[0]


def test_ewma_signals_on_a_sustained_rise_with_hand_computed_values():
    # given lambda 0.5 and three values of 2: Z = 1, 1.5, 1.75
    result = ewma_upper([2.0, 2.0, 2.0], lam=0.5, L=3.0)

    # then limits are 3 * sqrt(1/3 * (1 - 0.25 ** t))
    assert result.statistics == pytest.approx([1.0, 1.5, 1.75])
    assert result.limits == pytest.approx(
        [1.5, 3 * np.sqrt((1 - 0.0625) / 3), 3 * np.sqrt((1 - 0.25**3) / 3)]
    )
    assert result.first_signal == 2  # 1.75 > 1.718
    assert ewma_upper([2.0, 2.0, 2.0], lam=0.5, L=2.0).first_signal == 1


def test_baseline_uncertainty_widens_the_limits():
    plain = ewma_upper([0.0] * 20)
    estimated = ewma_upper([0.0] * 20, baseline_n=12)
    assert estimated.limits[-1] > plain.limits[-1]
    assert estimated.limits[-1] == pytest.approx(
        2.9 * np.sqrt(0.2 / 1.8 * (1 - 0.8**40) + (1 - 0.8**20) ** 2 / 12), rel=1e-9
    )


def test_a_growing_baseline_widens_each_limit_by_its_own_baseline_size():
    # given baselines of 12, 12, then 20 and 26 points behind the four observations
    z = np.zeros((1, 4))
    sizes = np.array([[12.0, 12.0, 20.0, 26.0]])

    # when
    _, limits = ewma_upper_batch(z, L=2.9, baseline_n=sizes)

    # then each limit carries the uncertainty of the baseline that point was standardised with
    t = np.arange(1, 5)
    expected = 2.9 * np.sqrt(0.2 / 1.8 * (1 - 0.8 ** (2 * t)) + (1 - 0.8**t) ** 2 / sizes[0])
    assert limits[0] == pytest.approx(expected, rel=1e-12)
    _, constant = ewma_upper_batch(z, L=2.9, baseline_n=np.full((1, 4), 12.0))
    assert constant[0] == pytest.approx(ewma_upper([0.0] * 4, baseline_n=12).limits, rel=1e-12)


def _one_row_chart(z, *, lam, L, baseline_n):
    """The reflected upper chart of one series, step by step from the module's formulas."""
    stat, limit, seen, stats, limits = 0.0, math.nan, 0, [], []
    for value, m in zip(z, baseline_n, strict=True):
        if math.isfinite(value):
            seen += 1
            stat = max(0.0, (1 - lam) * stat + lam * value)
            var = lam / (2 - lam) * (1 - (1 - lam) ** (2 * seen))
            if math.isfinite(m) and m > 0:
                var += (1 - (1 - lam) ** seen) ** 2 / m
            limit = L * math.sqrt(var)
        stats.append(stat)
        limits.append(limit)
    return stats, limits


@settings(max_examples=60, deadline=None)
@given(
    rows=st.integers(min_value=1, max_value=6),
    cols=st.integers(min_value=1, max_value=40),
    seed=st.integers(min_value=0, max_value=2**32 - 1),
    gaps=st.floats(min_value=0.0, max_value=0.6),
)
def test_the_batch_chart_equals_each_series_charted_on_its_own(rows, cols, seed, gaps):
    # given series with gaps and a baseline size per point (some unknown)
    rng = np.random.default_rng(seed)
    z = rng.normal(0.5, 1.5, size=(rows, cols))
    z[rng.random((rows, cols)) < gaps] = np.nan
    m = rng.integers(0, 30, size=(rows, cols)).astype(float)
    m[rng.random((rows, cols)) < 0.2] = np.nan
    # when charted together
    stats, limits = ewma_upper_batch(z, lam=0.2, L=2.7, baseline_n=m)
    # then every row is what the step-by-step chart gives for it alone
    for i in range(rows):
        expected_stats, expected_limits = _one_row_chart(z[i], lam=0.2, L=2.7, baseline_n=m[i])
        assert stats[i].tolist() == pytest.approx(expected_stats, rel=1e-12, abs=1e-12)
        assert limits[i].tolist() == pytest.approx(expected_limits, rel=1e-12, nan_ok=True)


def test_empty_input_gives_an_empty_chart():
    assert ewma_upper([]).first_signal is None


@pytest.mark.parametrize(("h", "two_sided"), [(4.0, 168), (5.0, 465)])
def test_siegmund_matches_published_two_sided_cusum_arl(h, two_sided):
    # the two-sided scheme's ARL0 is half the one-sided one (symmetric sides)
    assert siegmund_arl(k=0.5, h=h) / 2 == pytest.approx(two_sided, rel=0.02)


def test_siegmund_matches_published_cusum_arl_for_a_one_sd_shift():
    # Montgomery Table 9.4 (k = 0.5, h = 4): ARL(1 sd) = 8.38
    assert siegmund_arl(k=0.5, h=4.0, shift=1.0) == pytest.approx(8.38, rel=0.02)


def test_cusum_monte_carlo_agrees_with_siegmund():
    rng = np.random.default_rng(11)
    for shift, runs, horizon, tol in [(0.0, 600, 2500, 0.12), (1.0, 1500, 120, 0.05)]:
        lengths = []
        for row in rng.standard_normal((runs, horizon)) + shift:
            first = cusum_upper(row.tolist(), k=0.5, h=4.0).first_signal
            lengths.append(horizon if first is None else first + 1)
        assert np.mean(lengths) == pytest.approx(siegmund_arl(k=0.5, h=4.0, shift=shift), rel=tol)


def test_cusum_hand_computed_and_missing_values_carry_over():
    result = cusum_upper([1.0, None, 2.0, -5.0, 3.0], k=0.5, h=2.0)
    assert result.statistics == [0.5, 0.5, 2.0, 0.0, 2.5]
    assert result.first_signal == 4
    assert result.threshold == 2.0
