"""The vectorised screens agree with the per-team rules they stand in for (random histories)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from wellbeing.stats.detector import (
    SIGNAL,
    TREND_WINDOW,
    CyclePoint,
    detect_deterioration,
    detect_deterioration_batch,
    high_level,
    participation_drop,
)
from wellbeing.stats.screening import (
    deterioration_may_signal,
    high_level_may_fire,
    last_values,
    participation_may_drop,
    trend_may_rise,
)
from wellbeing.stats.trend import mann_kendall


def _histories(seed: int, teams: int = 300, cycles: int = 40):
    rng = np.random.default_rng(seed)
    level = rng.uniform(25, 60, size=(teams, 1))
    drift = np.where(rng.random((teams, 1)) < 0.3, rng.uniform(0.5, 3.0, size=(teams, 1)), 0.0)
    start = rng.integers(0, cycles, size=(teams, 1))
    t = np.arange(cycles)[None, :]
    n = rng.integers(1, 15, size=(teams, cycles)).astype(float)
    x = (
        level
        + drift * np.maximum(0, t - start)
        + rng.normal(0, 12, size=(teams, cycles)) / np.sqrt(n)
    )
    x = np.clip(np.round(x, int(rng.integers(0, 3))), 0, 100)
    s = rng.uniform(5, 20, size=(teams, cycles))
    s[rng.random((teams, cycles)) < 0.05] = np.nan  # some cycles without a stored sd
    gaps = rng.random((teams, cycles)) < rng.uniform(0, 0.4, size=(teams, 1))
    x[gaps] = np.nan
    short = rng.random(teams) < 0.3  # teams with little history
    x[short, : cycles - 10] = np.nan
    return x, n, s


def _points(x, n, s):
    return [
        CyclePoint(
            index=None if math.isnan(v) else float(v),
            n=int(m),
            sd=None if math.isnan(d) else float(d),
        )
        for v, m, d in zip(x, n, s, strict=True)
    ]


@pytest.mark.parametrize("seed", [1, 2, 3])
@pytest.mark.parametrize("org", [None, (45.0, 9.0, None, None), (45.0, 9.0, 14.0, 6.0)])
def test_deterioration_screen_equals_the_detector(seed, org):
    x, n, s = _histories(seed)
    org_mean, org_sd, within, between = org or (None, None, None, None)
    for cut in (x.shape[1], 20, 9):
        xs, ns, ss = x[:, :cut], n[:, :cut], s[:, :cut]
        may, enough = deterioration_may_signal(
            xs, ns, ss, org_mean=org_mean, org_sd=org_sd, org_within_sd=within,
            org_between_sd=between,
        )  # fmt: skip
        for i in range(xs.shape[0]):
            det = detect_deterioration(
                _points(xs[i], ns[i], ss[i]),
                org_mean=org_mean,
                org_sd=org_sd,
                org_within_sd=within,
                org_between_sd=between,
            )
            assert may[i] == (det.status == SIGNAL), (seed, cut, i)
            assert enough[i] == (det.status != "not_enough_data"), (seed, cut, i)


def test_deterioration_screen_ignores_absent_cycles():
    # a team's series with the organisation's other cycles inserted as gaps gives the same answer
    x, n, s = _histories(5, teams=100, cycles=30)
    wide = np.full((100, 45), np.nan)
    cols = np.sort(np.random.default_rng(0).choice(45, size=30, replace=False))
    wide[:, cols] = x
    wide_n = np.full((100, 45), np.nan)
    wide_n[:, cols] = n
    wide_s = np.full((100, 45), np.nan)
    wide_s[:, cols] = s
    narrow, _ = deterioration_may_signal(x, n, s, org_mean=None, org_sd=None)
    spread, _ = deterioration_may_signal(wide, wide_n, wide_s, org_mean=None, org_sd=None)
    assert (narrow == spread).all() and narrow.any()


@pytest.mark.parametrize("seed", [1, 2])
def test_trend_screen_equals_mann_kendall(seed):
    x, _, _ = _histories(seed)
    x = np.round(x / 5) * 5  # many ties
    may = trend_may_rise(x)
    for i in range(x.shape[0]):
        values = [float(v) for v in x[i] if not math.isnan(v)][-TREND_WINDOW:]
        up = len(values) >= 4 and mann_kendall(values).p_increasing < 0.05
        assert may[i] == up, (seed, i)


def test_high_level_screen_equals_high_level():
    x, _, _ = _histories(4)
    for threshold in (50.0, 50.5):
        for consecutive in (1, 2, 3):
            may = high_level_may_fire(x, threshold=threshold, consecutive=consecutive)
            for i in range(x.shape[0]):
                row = [None if math.isnan(v) else float(v) for v in x[i]]
                fires = high_level(row, threshold=threshold, consecutive=consecutive)
                if threshold == 50.5:
                    assert may[i] == fires
                else:  # an index exactly at the level is re-checked exactly (the margin)
                    assert may[i] or not fires


@pytest.mark.parametrize("seed", [1, 2, 3])
@pytest.mark.parametrize("grid", [False, True])
def test_participation_screen_equals_participation_drop(seed, grid):
    rng = np.random.default_rng(seed)
    teams, cycles = 400, 30
    rates = np.clip(rng.normal(0.7, 0.08, size=(teams, cycles)), 0, 1)
    drops = rng.random(teams) < 0.3
    rates[drops, -1] -= rng.uniform(0.1, 0.5, size=int(drops.sum()))
    rates = np.clip(np.round(rates, 2) if grid else rates, 0, 1)
    rates[rng.random((teams, cycles)) < 0.2] = np.nan
    rates[rng.random(teams) < 0.2, :-5] = np.nan
    may = participation_may_drop(rates)
    fired = 0
    for i in range(teams):
        row = [None if math.isnan(v) else float(v) for v in rates[i]]
        signal = participation_drop(row).status == SIGNAL
        fired += signal
        if grid:  # rates on a 0.01 grid hit the 0.2 drop exactly: the margin re-checks those
            assert may[i] or not signal, (seed, i)
        else:
            assert may[i] == signal, (seed, i)
    assert fired > 10


def test_participation_screen_sends_invalid_rates_to_the_exact_check():
    rates = np.array([[0.5] * 10 + [1.5], [0.5] * 11])
    assert participation_may_drop(rates).tolist() == [True, False]


def test_last_values_right_aligns_the_latest_finite_values():
    x = np.array([[1.0, np.nan, 2.0, 3.0], [np.nan, np.nan, np.nan, 4.0]])
    out = last_values(x, 2)
    assert out[0].tolist() == [2.0, 3.0]
    assert math.isnan(out[1, 0]) and out[1, 1] == 4.0


@pytest.mark.parametrize("seed", [5, 6])
def test_detecting_many_teams_at_once_equals_detecting_each_alone(seed):
    # given histories of different lengths: long ones, short ones, with gaps and missing sds
    x, n, s = _histories(seed, teams=120, cycles=52)
    rng = np.random.default_rng(seed)
    lengths = rng.integers(0, 53, size=len(x))
    histories = [_points(x[i, :k], n[i, :k], s[i, :k]) for i, k in enumerate(lengths)]
    org = {"org_mean": 45.0, "org_sd": 8.0, "org_within_sd": 14.0, "org_between_sd": 4.0}
    # when detected in one batch
    together = detect_deterioration_batch(histories, **org)
    # then every team's detection is exactly the one it gets alone (same figures, to the bit)
    alone = [detect_deterioration(h, **org) for h in histories]
    assert [repr(d) for d in together] == [repr(d) for d in alone]
    assert {d.baseline_source for d in together} >= {"team", "organisation"}
    assert any(d.status == SIGNAL for d in together)
