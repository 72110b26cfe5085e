import random

import numpy as np
import pytest

from wellbeing.stats.detector import (
    HISTORY_CYCLES,
    CyclePoint,
    detect_deterioration,
    high_level,
    participation_drop,
    team_chart_batch,
    team_status_windowed,
)


def _stable(cycles: int, *, level: float = 50.0, sd: float = 3.0, n: int = 12, seed: int = 1):
    rng = random.Random(seed)
    return [CyclePoint(index=level + rng.gauss(0, sd), n=n) for _ in range(cycles)]


def test_stable_team_is_in_control_against_its_own_baseline():
    # given two stable years
    history = _stable(30)

    # when
    result = detect_deterioration(history)

    # then
    assert result.status == "in_control"
    assert result.baseline_source == "team"
    assert result.baseline_mean == pytest.approx(50, abs=3)
    assert result.shifted_cycles == 0
    assert result.statistic is not None and result.threshold is not None
    assert result.statistic <= result.threshold


def test_sustained_rise_signals_with_evidence():
    # given a baseline then four cycles three sds higher
    history = _stable(20) + [CyclePoint(index=59.0 + d, n=12) for d in (0.5, -0.5, 1.0, 0.0)]

    # when
    result = detect_deterioration(history)

    # then
    assert result.status == "signal"
    assert result.shifted_cycles >= 2
    assert result.statistic > result.threshold
    assert result.slope_per_cycle is not None and result.slope_per_cycle > 0
    assert result.mann_kendall_p is not None and result.mann_kendall_p < 0.05


def test_a_fall_never_signals():
    history = _stable(20) + [CyclePoint(index=30.0, n=12)] * 6
    assert detect_deterioration(history).status == "in_control"


@pytest.mark.parametrize(
    "history",
    [
        [],
        [CyclePoint(None, 0)] * 30,
        [CyclePoint(float("nan"), 8)] * 30,
        [CyclePoint(50.0, 0)] * 30,
    ],
)
def test_empty_or_all_missing_history_has_not_enough_data(history):
    result = detect_deterioration(history, org_mean=50, org_sd=5)
    assert result.status == "not_enough_data"
    assert result.statistic is None and result.reason


def test_hidden_cycles_are_skipped_not_counted():
    # given the same figures with hidden (below k) cycles interleaved
    base = _stable(20) + [CyclePoint(index=58.0, n=12)] * 3
    gappy: list[CyclePoint] = []
    for point in base:
        gappy += [point, CyclePoint(index=None, n=3)]

    # then the chart sees exactly the same evidence
    a, b = detect_deterioration(base), detect_deterioration(gappy)
    assert (a.status, a.shifted_cycles) == (b.status, b.shifted_cycles)
    assert a.statistic == pytest.approx(b.statistic)


def test_short_history_falls_back_to_the_organisation_baseline():
    # given eight cycles well above the organisation's usual level
    history = [CyclePoint(index=70.0, n=10)] * 8

    # when
    result = detect_deterioration(history, org_mean=50.0, org_sd=5.0)

    # then
    assert result.baseline_source == "organisation"
    assert result.status == "signal"


def test_short_history_without_organisation_figures_waits():
    result = detect_deterioration(_stable(8))
    assert result.status == "not_enough_data"
    assert result.baseline_source == ""


def test_organisation_fallback_needs_min_history():
    result = detect_deterioration(_stable(4), org_mean=50.0, org_sd=5.0, min_history=6)
    assert result.status == "not_enough_data"


def test_small_n_cycles_are_shrunk_toward_the_organisation_mean():
    # given one small-n cycle far above the organisation in the fallback
    history = [CyclePoint(index=50.0, n=10)] * 6 + [CyclePoint(index=75.0, n=3)]
    kwargs = {"org_mean": 50.0, "org_sd": 5.0}

    plain = detect_deterioration(history, **kwargs)
    shrunk = detect_deterioration(history, **kwargs, org_within_sd=20.0, org_between_sd=5.0)

    # then shrinkage moves the chart less
    assert shrunk.statistic < plain.statistic


def test_a_small_n_cycle_moves_the_team_chart_less_than_a_full_one():
    history = _stable(14, n=20)
    full = detect_deterioration(history + [CyclePoint(index=60.0, n=20)])
    small = detect_deterioration(history + [CyclePoint(index=60.0, n=5)])
    assert small.statistic < full.statistic


def test_the_baseline_grows_to_twenty_six_cycles_and_is_then_frozen():
    # given forty stable cycles
    history = _stable(40)
    values = [p.index for p in history]

    # then the baseline is every earlier cycle while the team is new, then the first 26
    assert detect_deterioration(history[:20]).baseline_mean == pytest.approx(sum(values[:19]) / 19)
    assert detect_deterioration(history).baseline_mean == pytest.approx(sum(values[:26]) / 26)
    assert detect_deterioration(history, max_baseline_cycles=12).baseline_mean == pytest.approx(
        sum(values[:12]) / 12
    )


def test_a_rise_after_the_baseline_is_frozen_is_not_absorbed_within_the_history_given():
    # given a frozen baseline and then a long spell six points higher
    history = _stable(26) + _stable(30, level=56.0, seed=2)

    # when
    result = detect_deterioration(history)

    # then the chart still compares with the old level and keeps signalling
    assert result.baseline_mean == pytest.approx(sum(p.index for p in history[:26]) / 26)
    assert result.status == "signal" and result.shifted_cycles >= 10


def _with_spread(cycles: int, *, between: float, within: float, n: int, seed: int = 3):
    rng = random.Random(seed)
    return [CyclePoint(index=50 + rng.gauss(0, between), n=n, sd=within) for _ in range(cycles)]


def test_the_respondents_spread_sets_the_sd_of_a_cycle_mean():
    # given 16 respondents a cycle with sd 20 (sampling sd of the mean 5) and a steadier series
    history = _with_spread(20, between=2.0, within=20.0, n=16)

    # when
    result = detect_deterioration(history)

    # then the sd of a cycle mean is the sampling sd: the steadier spread is noise, not a signal
    assert result.baseline_sd == pytest.approx(5.0)
    without = detect_deterioration([CyclePoint(p.index, p.n) for p in history])
    assert without.baseline_sd is not None and without.baseline_sd < 3.0


def test_between_cycle_variation_beyond_sampling_noise_is_added():
    # given cycle means far more variable than 16 respondents with sd 4 can explain
    history = _with_spread(26, between=6.0, within=4.0, n=16)

    # when
    result = detect_deterioration(history)

    # then the sd of a cycle mean follows the between-cycle spread, not the tiny sampling sd 1
    assert result.baseline_sd is not None and 4.0 < result.baseline_sd < 8.0


def test_a_baseline_missing_a_respondent_sd_uses_the_between_cycle_chart():
    # given the same figures, once with every sd stored and once with one missing
    full = _with_spread(20, between=2.0, within=20.0, n=16)
    gap = list(full)
    gap[3] = CyclePoint(gap[3].index, gap[3].n)

    # then the gappy history falls back to the between-cycle sd and its own limit
    plain = detect_deterioration([CyclePoint(p.index, p.n) for p in full])
    fallback = detect_deterioration(gap)
    assert fallback.baseline_sd == pytest.approx(plain.baseline_sd)
    assert fallback.threshold == pytest.approx(plain.threshold)
    assert fallback.threshold != pytest.approx(detect_deterioration(full).threshold)


def test_flat_baseline_does_not_turn_a_wobble_into_an_alarm():
    history = [CyclePoint(index=50.0, n=10)] * 12 + [CyclePoint(index=50.5, n=10)] * 3
    assert detect_deterioration(history).status == "in_control"


def test_participation_drop_signals_on_a_sharp_fall_only():
    usual = [0.72, 0.70, 0.74, 0.69, 0.71, 0.73, 0.70, 0.72]
    assert participation_drop(usual + [0.35]).status == "signal"
    assert participation_drop(usual + [0.62]).status == "in_control"
    assert participation_drop(usual + [0.95]).status == "in_control"


def test_participation_drop_with_little_history_waits_and_skips_missing():
    assert participation_drop([0.7, None, 0.2]).status == "not_enough_data"
    result = participation_drop([0.7, 0.7, None, 0.7, 0.7, 0.7, 0.7, 0.7, 0.1])
    assert result.status == "signal" and result.shifted_cycles == 1


def test_high_level_needs_consecutive_usable_cycles_above_threshold():
    assert high_level([40, 70, 72, 71], threshold=65, consecutive=3) is True
    assert high_level([70, 60, 72, 71], threshold=65, consecutive=3) is False
    assert high_level([70, None, 72, float("nan"), 71], threshold=65, consecutive=3) is True
    assert high_level([70, 72], threshold=65, consecutive=3) is False
    assert high_level([], threshold=65, consecutive=1) is False
    with pytest.raises(ValueError):
        high_level([70], threshold=65, consecutive=0)


def test_a_rise_older_than_the_window_becomes_the_usual_level():
    # given a team six points higher for the last sixty cycles, read as the flag job reads it
    history = (_stable(26) + _stable(60, level=56.0, seed=2))[-HISTORY_CYCLES:]

    # then its baseline is the start of the window (already the new level) and it is in control
    result = detect_deterioration(history)
    assert result.baseline_mean == pytest.approx(56.0, abs=1.5)
    assert result.status == "in_control"


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_the_windowed_batch_chart_is_the_detector_on_each_window(seed):
    # given random histories with hidden cycles, respondent sds and a rise in the middle
    rng = np.random.default_rng(seed)
    teams, cycles, window = 6, 70, 30
    n = rng.integers(3, 25, (teams, cycles)).astype(float)
    x = 50 + rng.normal(0, 4, (teams, cycles)) + np.where(np.arange(cycles) > 40, 5.0, 0.0)
    x[n < 5] = np.nan  # hidden below k
    s = np.where(rng.random((teams, cycles)) < 0.9, rng.uniform(8, 16, (teams, cycles)), np.nan)

    # when every cycle is judged on the last ``window`` cycles, in one batch
    above, monitored = team_status_windowed(x, n, s, window=window)

    # then each status is what detect_deterioration says on that window
    for i in range(teams):
        history = [
            CyclePoint(
                index=None if np.isnan(x[i, j]) else float(x[i, j]),
                n=int(n[i, j]),
                sd=None if np.isnan(s[i, j]) else float(s[i, j]),
            )
            for j in range(cycles)
        ]
        for t in range(cycles):
            status = detect_deterioration(history[max(0, t - window + 1) : t + 1]).status
            expected = "signal" if above[i, t] else "in_control"
            assert status == (expected if monitored[i, t] else "not_enough_data"), (i, t)


def test_the_chart_of_many_teams_at_once_is_each_teams_own_detection():
    # given teams with gaps, some without respondent sds, some rising after cycle 18
    rng = np.random.default_rng(3)
    teams, cycles = 60, 30
    x = rng.normal(50.0, 4.0, (teams, cycles)) + np.where(
        (np.arange(teams) % 3 == 0)[:, None] & (np.arange(cycles) >= 18), 6.0, 0.0
    )
    n = rng.integers(3, 30, (teams, cycles)).astype(float)
    s = rng.normal(15.0, 2.0, (teams, cycles))
    x[rng.random((teams, cycles)) < 0.15] = np.nan
    s[np.arange(teams) % 4 == 1] = np.nan
    stats, limits, above = team_chart_batch(x, n, s)
    # then at each team's last usable cycle the batch says what its own detection says
    checked = 0
    for i in range(teams):
        det = detect_deterioration(
            [
                CyclePoint(
                    index=None if np.isnan(x[i, j]) else float(x[i, j]),
                    n=int(n[i, j]),
                    sd=None if np.isnan(s[i, j]) else float(s[i, j]),
                )
                for j in range(cycles)
            ]
        )
        last = int(np.flatnonzero(np.isfinite(x[i]))[-1])
        if det.baseline_source != "team":
            continue
        checked += 1
        assert bool(above[i, last]) == (det.status == "signal")
        assert stats[i, last] == pytest.approx(det.statistic, abs=1e-12)
        assert limits[i, last] == pytest.approx(det.threshold, abs=1e-12)
    assert checked > teams // 2 and above[:, -1].any()


def test_the_chart_of_an_empty_window_is_empty():
    empty = np.zeros((3, 0))
    assert [a.shape for a in team_chart_batch(empty, empty, empty)] == [(3, 0)] * 3
