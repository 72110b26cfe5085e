"""The within-team lagged association estimator (``wellbeing.stats.impact``), pure.

The simulation tests generate teams whose CSAT responds to their own measured stress index
``LAG`` weeks later with a known slope (and data sets with no effect at all), then check that the
estimator's 95 % interval covers the true slope in about 95 % of data sets, that the headline
finds the right lag, and that it claims an association when there is none at most about 5 % of
the time.  Seeds are fixed: the rates are reproducible, and a biased estimator or a too-narrow
standard error moves them outside the bounds.
"""

from __future__ import annotations

import numpy as np
import pytest

from wellbeing.stats.impact import (
    fixed_effects_slope,
    impact_summary,
    lagged_association,
    lagged_pairs,
    metric_trend,
)

LAG = 2
BETA = -0.3  # CSAT points per stress-index point
DATA_SETS = 200


def simulate(rng, *, teams=8, weeks=26, beta=BETA, lag=LAG):
    """Stress: team level + AR(1) swings + sometimes a climb, measured with noise.
    CSAT: team level + AR(1) noise + beta x (measured stress ``lag`` weeks before)."""
    index, metric = {}, {}
    warm = 6
    for g in range(teams):
        level = rng.uniform(25, 60)
        swing = np.zeros(weeks + warm)
        for t in range(1, weeks + warm):
            swing[t] = 0.6 * swing[t - 1] + rng.normal(0, 6)
        climb = rng.choice([0.0, 0.0, 2.0]) * np.maximum(0, np.arange(weeks + warm) - weeks / 2)
        x = level + swing + climb + rng.normal(0, 3, weeks + warm)
        noise = np.zeros(weeks + warm)
        for t in range(1, weeks + warm):
            noise[t] = 0.4 * noise[t - 1] + rng.normal(0, 2)
        y = rng.uniform(75, 90) + noise
        y[lag:] += beta * (x[: len(x) - lag] - level)
        index[f"team-{g}"] = {w: float(x[w]) for w in range(weeks + warm)}
        metric[f"team-{g}"] = {w: float(y[w]) for w in range(warm, weeks + warm)}
    return index, metric


def test_noise_free_within_team_slope_is_recovered_even_when_teams_differ_in_level():
    # given teams whose CSAT falls 0.5 per stress point within the team, while the more stressed
    # teams have the *higher* CSAT overall (a between-team pattern fixed effects must ignore)
    index, metric = {}, {}
    for g in range(6):
        stress = {w: 20.0 + 10 * g + (w % 5) * 3.0 + w for w in range(12)}
        index[g] = stress
        metric[g] = {w: 50.0 + 8 * g - 0.5 * stress[w - 1] for w in range(1, 12)}
    # when
    estimate = lagged_association(index, metric, lag=1)
    # then
    assert estimate.enough
    assert estimate.slope == pytest.approx(-0.5, abs=1e-9)
    assert estimate.n_teams == 6 and estimate.n_team_weeks == 66


def test_pairs_join_the_index_lag_weeks_before_the_metric_and_skip_missing_weeks():
    index = {"a": {1: 10.0, 2: None, 3: 30.0}}
    metric = {"a": {3: 1.0, 4: 2.0, 5: 3.0}}
    assert lagged_pairs(index, metric, 2) == {"a": ([10.0, 30.0], [1.0, 3.0])}


def test_too_few_teams_or_team_weeks_is_not_enough_data_and_carries_no_numbers():
    rng = np.random.default_rng(3)
    index, metric = simulate(rng, teams=4, weeks=26)
    few_teams = lagged_association(index, metric, lag=LAG)
    index, metric = simulate(rng, teams=6, weeks=5)  # 6 teams x 5 weeks = 30 ... minus none
    short = lagged_association(index, metric, lag=LAG, min_team_weeks=31)
    for estimate in (few_teams, short):
        assert not estimate.enough
        assert estimate.slope is None and estimate.ci_low is None and estimate.se is None
    summary = impact_summary({}, {})
    assert summary.headline is None and not summary.association


def test_a_team_without_variation_in_stress_does_not_count():
    pairs = {g: ([40.0, 41.0, 39.0, 40.0, 42.0, 38.0], [80, 79, 81, 80, 78, 82]) for g in range(5)}
    pairs["flat"] = ([50.0] * 6, [70, 71, 72, 73, 74, 75])
    estimate = fixed_effects_slope(pairs, min_team_weeks=10)
    assert estimate.n_teams == 5


def test_interval_covers_the_true_lagged_effect_in_about_95_percent_of_data_sets():
    rng = np.random.default_rng(20250901)
    covered = right_lag = headline_covers = 0
    for _ in range(DATA_SETS):
        index, metric = simulate(rng)
        estimate = lagged_association(index, metric, lag=LAG)
        covered += estimate.ci_low <= BETA <= estimate.ci_high
        summary = impact_summary(index, metric)
        right_lag += summary.headline.lag == LAG
        headline_covers += summary.headline.ci_low <= BETA <= summary.headline.ci_high
    assert 0.91 <= covered / DATA_SETS <= 0.98
    assert right_lag / DATA_SETS >= 0.9
    assert headline_covers / DATA_SETS >= 0.9


def test_without_an_effect_the_interval_covers_zero_at_the_stated_rate():
    rng = np.random.default_rng(7)
    covers_zero = claims = 0
    for _ in range(DATA_SETS):
        index, metric = simulate(rng, beta=0.0)
        estimate = lagged_association(index, metric, lag=LAG)
        covers_zero += estimate.ci_low <= 0.0 <= estimate.ci_high
        claims += impact_summary(index, metric).association
    assert 0.91 <= covers_zero / DATA_SETS <= 0.98
    # the headline looks at five lags; its family-wise interval keeps false claims near 5 %
    assert claims / DATA_SETS <= 0.09


def test_with_few_teams_the_interval_stays_honest():
    # five teams (the minimum): the t interval with G - 1 df must not be too narrow
    rng = np.random.default_rng(11)
    covered = 0
    for _ in range(DATA_SETS):
        index, metric = simulate(rng, teams=5)
        estimate = lagged_association(index, metric, lag=LAG)
        covered += estimate.ci_low <= BETA <= estimate.ci_high
    assert 0.91 <= covered / DATA_SETS <= 0.98


def test_metric_trend_calls_a_steady_fall_of_a_higher_is_better_metric_worsening():
    falling = [90, 89.5, 88, 87.2, 86, 85.1, 84, 82.5]
    assert metric_trend(falling, higher_is_better=True).worsening
    assert not metric_trend(falling, higher_is_better=False).worsening
    flat = [85, 86, 84, 85, 86, 84, 85, 85]
    assert not metric_trend(flat, higher_is_better=True).worsening
    assert not metric_trend([90, 80, None, None], higher_is_better=True).worsening
