"""Empirical-Bayes shrinkage of small teams toward the organisation mean.

A team mean from few people is noisy; the best guess of its true level is a weighted average
of its own mean and the organisation's, weighted by how much teams really differ (between-team
variance) against how noisy this team's mean is (within-team variance / n).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import NDArray

from ._data import is_number


def shrinkage_weight(*, team_n: int, within_sd: float, between_sd: float) -> float:
    """Weight on the team's own mean: B / (B + W/n), 0 when teams do not differ at all."""
    if team_n <= 0:
        return 0.0
    between = max(0.0, between_sd) ** 2
    noise = max(0.0, within_sd) ** 2 / team_n
    if between + noise == 0.0:
        return 1.0  # nothing varies: the team's mean is exact
    return between / (between + noise)


def shrink_mean(
    team_mean: float, team_n: int, within_sd: float, org_mean: float, between_sd: float
) -> float:
    """Posterior mean of the team's true level (normal-normal model)."""
    w = shrinkage_weight(team_n=team_n, within_sd=within_sd, between_sd=between_sd)
    return w * team_mean + (1.0 - w) * org_mean


def between_team_variance(
    team_means: Sequence[float | None] | NDArray[np.float64],
    team_ns: Sequence[int] | NDArray[np.float64],
    within_sd: float,
) -> float:
    """Method-of-moments between-team variance, floored at 0.

    The spread of observed team means is the true spread plus each mean's sampling noise, so
    ``var(means) - mean(within_sd**2 / n)``.  Teams with a missing mean or n = 0 are skipped.
    Arrays (the close passes thousands of teams) are taken as they are, NaN = missing.
    """
    if len(team_means) != len(team_ns):
        raise ValueError("team_means and team_ns must have the same length")
    if isinstance(team_means, np.ndarray):
        means = team_means.astype(np.float64, copy=False)
    else:
        means = np.array([float(m) if is_number(m) else np.nan for m in team_means])
    ns = np.asarray(team_ns, dtype=np.float64)
    kept = np.isfinite(means) & (ns > 0)
    if int(kept.sum()) < 2:
        return 0.0
    observed = float(np.var(means[kept], ddof=1))
    noise = float(np.mean(within_sd**2 / ns[kept]))
    return max(0.0, observed - noise)
