"""Does a team's stress precede worse customer service?  The within-team lagged association.

For one customer metric (CSAT, QA/empathy score, complaint rate, ...) and one wellbeing index
(stress or client-related burnout, 0-100, higher is worse), and a lag of L weeks, every pair
(index of team g in week t - L, metric of team g in week t) is one observation.  Team fixed
effects: both sides are demeaned within team, so a team that is simply always more stressed and
always rated lower does not count -- only *changes within a team* do.  The slope is the pooled OLS
slope of the demeaned metric on the demeaned lagged index; its standard error is cluster-robust by
team (CR2, Bell & McCaffrey 2002, with the small-sample correction of Pustejovsky & Tipton 2018
for the absorbed team effects), the interval uses Student's t with G - 1 degrees of freedom
(G = teams), because a handful of teams is the normal case here and CR1 with normal quantiles
is too narrow then.

This is an association, not proof of cause: a busy season can raise stress and lower CSAT at the
same time.  The wording that leaves the server must say so.

The headline picks the lag with the strongest evidence among 0-4 weeks; because five lags were
looked at, its interval is widened (Bonferroni, 1 - 0.05 / 5 per lag) so that "no association at
any lag" is still wrong at most 5 % of the time when there is none.

Pure: numpy and scipy only, no Django.  The caller must pass published (>= k) figures only.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray
from scipy import stats as _scipy_stats

from ._data import is_number
from .trend import mann_kendall, theil_sen

MIN_TEAMS = 5
MIN_TEAM_WEEKS = 30
DEFAULT_LAGS: tuple[int, ...] = (0, 1, 2, 3, 4)
CONFIDENCE = 0.95

# One team's weekly figures: week number (any integer calendar, e.g. days since 1970 // 7)
# -> value.  Missing weeks are simply absent; None/NaN count as missing too.
WeekSeries = Mapping[int, float | None]


@dataclass(frozen=True)
class LagEstimate:
    """The association at one lag.  ``enough`` False means no slope is reported at all."""

    lag: int
    enough: bool
    n_teams: int
    n_team_weeks: int
    slope: float | None = None  # metric units per index point
    se: float | None = None
    ci_low: float | None = None
    ci_high: float | None = None
    confidence: float = CONFIDENCE
    t: float | None = None
    p_value: float | None = None

    @property
    def excludes_zero(self) -> bool:
        return (
            self.enough
            and self.ci_low is not None
            and self.ci_high is not None
            and (self.ci_low > 0 or self.ci_high < 0)
        )


@dataclass(frozen=True)
class ImpactSummary:
    """Every lag, plus the headline: the strongest lag with a family-wise interval."""

    lags: tuple[LagEstimate, ...]
    headline: LagEstimate | None  # None: not enough data at any lag
    min_teams: int
    min_team_weeks: int

    @property
    def enough(self) -> bool:
        return self.headline is not None

    @property
    def association(self) -> bool:
        """True when the headline interval excludes 0 (an association, not a cause)."""
        return self.headline is not None and self.headline.excludes_zero


def lagged_pairs(
    index: Mapping[Any, WeekSeries], metric: Mapping[Any, WeekSeries], lag: int
) -> dict[Hashable, tuple[list[float], list[float]]]:
    """team -> (index at week t - lag, metric at week t) for every week where both exist."""
    if lag < 0:
        raise ValueError("lag must be >= 0")
    pairs: dict[Hashable, tuple[list[float], list[float]]] = {}
    for team, values in metric.items():
        stress = index.get(team)
        if not stress:
            continue
        xs: list[float] = []
        ys: list[float] = []
        for week in sorted(values):
            y = values[week]
            x = stress.get(week - lag)
            if is_number(x) and is_number(y):
                xs.append(float(x))
                ys.append(float(y))
        if xs:
            pairs[team] = (xs, ys)
    return pairs


def _inverse_sqrt_psd(matrix: NDArray[np.float64]) -> NDArray[np.float64]:
    """Symmetric (pseudo-)inverse square root; null directions stay null."""
    values, vectors = np.linalg.eigh(matrix)
    keep = values > 1e-10 * max(1.0, float(values.max(initial=0.0)))
    inv = np.zeros_like(values)
    inv[keep] = 1.0 / np.sqrt(values[keep])
    return (vectors * inv) @ vectors.T


def fixed_effects_slope(
    pairs: Mapping[Any, tuple[Sequence[float], Sequence[float]]],
    *,
    lag: int = 0,
    confidence: float = CONFIDENCE,
    min_teams: int = MIN_TEAMS,
    min_team_weeks: int = MIN_TEAM_WEEKS,
) -> LagEstimate:
    """Within-team OLS slope of y on x with a CR2 cluster-robust interval (t, G - 1 df).

    A team counts when it has at least two pairs and its x varies; below ``min_teams`` teams or
    ``min_team_weeks`` pairs the estimate is ``enough=False`` and carries no numbers."""
    xs_by_team: list[NDArray[np.float64]] = []
    ys_by_team: list[NDArray[np.float64]] = []
    for xs, ys in pairs.values():
        x = np.asarray(xs, dtype=float)
        y = np.asarray(ys, dtype=float)
        if x.size < 2:
            continue
        x = x - x.mean()
        if not np.any(np.abs(x) > 1e-12):
            continue
        xs_by_team.append(x)
        ys_by_team.append(y - y.mean())
    g = len(xs_by_team)
    n = int(sum(x.size for x in xs_by_team))
    if g < min_teams or n < min_team_weeks or g < 2:
        return LagEstimate(lag=lag, enough=False, n_teams=g, n_team_weeks=n, confidence=confidence)
    sxx = float(sum(float(x @ x) for x in xs_by_team))
    slope = float(sum(float(x @ y) for x, y in zip(xs_by_team, ys_by_team, strict=True)) / sxx)
    meat = 0.0
    for x, y in zip(xs_by_team, ys_by_team, strict=True):
        resid = y - slope * x
        size = x.size
        # The team's block of the hat matrix of the full dummy regression: its own mean plus
        # its share of the slope.  CR2 rescales residuals by (I - H_gg)^(-1/2).
        h = np.full((size, size), 1.0 / size) + np.outer(x, x) / sxx
        adjusted = _inverse_sqrt_psd(np.eye(size) - h) @ resid
        meat += float(x @ adjusted) ** 2
    se = math.sqrt(meat) / sxx
    df = g - 1
    quantile = float(_scipy_stats.t.ppf(0.5 + confidence / 2, df))
    t = slope / se if se > 0 else math.inf
    p_value = float(2 * _scipy_stats.t.sf(abs(t), df)) if math.isfinite(t) else 0.0
    return LagEstimate(
        lag=lag,
        enough=True,
        n_teams=g,
        n_team_weeks=n,
        slope=slope,
        se=se,
        ci_low=slope - quantile * se,
        ci_high=slope + quantile * se,
        confidence=confidence,
        t=t,
        p_value=p_value,
    )


def lagged_association(
    index: Mapping[Any, WeekSeries],
    metric: Mapping[Any, WeekSeries],
    *,
    lag: int,
    confidence: float = CONFIDENCE,
    min_teams: int = MIN_TEAMS,
    min_team_weeks: int = MIN_TEAM_WEEKS,
) -> LagEstimate:
    """The within-team association between ``index`` ``lag`` weeks earlier and ``metric``."""
    return fixed_effects_slope(
        lagged_pairs(index, metric, lag),
        lag=lag,
        confidence=confidence,
        min_teams=min_teams,
        min_team_weeks=min_team_weeks,
    )


def impact_summary(
    index: Mapping[Any, WeekSeries],
    metric: Mapping[Any, WeekSeries],
    *,
    lags: Sequence[int] = DEFAULT_LAGS,
    confidence: float = CONFIDENCE,
    min_teams: int = MIN_TEAMS,
    min_team_weeks: int = MIN_TEAM_WEEKS,
) -> ImpactSummary:
    """Each lag at ``confidence``, and the headline: the lag with the largest |t|, with an
    interval at 1 - (1 - confidence) / len(lags) so the family of lags keeps ``confidence``."""
    per_lag = tuple(
        lagged_association(
            index,
            metric,
            lag=lag,
            confidence=confidence,
            min_teams=min_teams,
            min_team_weeks=min_team_weeks,
        )
        for lag in lags
    )
    usable = [e for e in per_lag if e.enough and e.t is not None]
    headline = None
    if usable:
        best = max(usable, key=lambda e: abs(e.t or 0.0))
        family = 1 - (1 - confidence) / max(1, len(usable))
        headline = lagged_association(
            index,
            metric,
            lag=best.lag,
            confidence=family,
            min_teams=min_teams,
            min_team_weeks=min_team_weeks,
        )
    return ImpactSummary(
        lags=per_lag, headline=headline, min_teams=min_teams, min_team_weeks=min_team_weeks
    )


@dataclass(frozen=True)
class MetricTrend:
    """Is a team's customer metric getting worse?  Theil-Sen slope and Mann-Kendall test."""

    weeks: int
    slope_per_week: float | None  # metric units per week (sign as measured)
    slope_low: float | None
    slope_high: float | None
    p_worsening: float | None  # one-sided Mann-Kendall p for a trend in the worse direction
    first: float | None
    latest: float | None
    worsening: bool


def metric_trend(
    values: Sequence[float | None], *, higher_is_better: bool, alpha: float = 0.05
) -> MetricTrend:
    """``worsening``: the Theil-Sen slope points the bad way and Mann-Kendall's one-sided p for
    that direction is below ``alpha`` (at least 5 weeks of values)."""
    xs = [float(i) for i, v in enumerate(values) if is_number(v)]
    ys = [float(v) for v in values if is_number(v)]
    if len(ys) < 5 or len(set(xs)) < 2:
        return MetricTrend(len(ys), None, None, None, None, ys[0] if ys else None,
                           ys[-1] if ys else None, False)  # fmt: skip
    sen = theil_sen(ys, xs)
    mk = mann_kendall(ys)
    # mann_kendall's one-sided p is for an increase; a fall is the mirror image.
    p_up = mk.p_increasing
    p_down = float(_scipy_stats.norm.cdf(mk.z)) if math.isfinite(mk.z) else 1.0
    p_worse = p_down if higher_is_better else p_up
    bad_direction = sen.slope < 0 if higher_is_better else sen.slope > 0
    return MetricTrend(
        weeks=len(ys),
        slope_per_week=sen.slope,
        slope_low=sen.slope_low,
        slope_high=sen.slope_high,
        p_worsening=p_worse,
        first=ys[0],
        latest=ys[-1],
        worsening=bool(bad_direction and p_worse < alpha),
    )
