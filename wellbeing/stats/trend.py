"""Robust trend evidence: Theil-Sen slope with its interval, and the Mann-Kendall trend test.

Used as plain-language evidence next to a control-chart signal, never as the alarm itself.
Missing values (None/NaN) are dropped explicitly together with their x positions.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats as _scipy_stats

from ._data import is_number


@dataclass(frozen=True)
class TheilSen:
    slope: float
    intercept: float
    slope_low: float
    slope_high: float


@dataclass(frozen=True)
class MannKendall:
    s: int
    tau: float  # Kendall's tau-a: s / (n (n - 1) / 2)
    z: float  # continuity-corrected normal score
    p_value: float  # two-sided
    p_increasing: float  # one-sided, for an increasing trend


def _pairs(
    y: Sequence[float | None], x: Sequence[float | None] | None
) -> tuple[list[float], list[float]]:
    xs = list(range(len(y))) if x is None else list(x)
    if len(xs) != len(y):
        raise ValueError("x and y must have the same length")
    kept = [
        (float(a), float(b)) for a, b in zip(xs, y, strict=True) if is_number(a) and is_number(b)
    ]
    return [a for a, _ in kept], [b for _, b in kept]


def theil_sen(
    y: Sequence[float | None], x: Sequence[float | None] | None = None, *, confidence: float = 0.95
) -> TheilSen:
    """Median of pairwise slopes (Theil 1950, Sen 1968); intercept = median(y - slope x).

    The interval is Sen's, from the normal approximation of Kendall's S (scipy's ``theilslopes``).
    Needs at least two distinct x values, else ValueError.
    """
    xs, ys = _pairs(y, x)
    if len(set(xs)) < 2:
        raise ValueError("Theil-Sen needs at least two distinct x values")
    result = _scipy_stats.theilslopes(ys, xs, alpha=confidence)
    intercept = float(np.median(np.asarray(ys) - result.slope * np.asarray(xs)))
    return TheilSen(
        slope=float(result.slope),
        intercept=intercept,
        slope_low=float(result.low_slope),
        slope_high=float(result.high_slope),
    )


def mann_kendall(y: Sequence[float | None]) -> MannKendall:
    """Mann (1945) / Kendall (1975) test with the tie correction of the variance.

    With fewer than two values there is no evidence either way: s = 0 and p = 1.
    """
    _, values = _pairs(y, None)
    n = len(values)
    if n < 2:
        return MannKendall(s=0, tau=0.0, z=0.0, p_value=1.0, p_increasing=1.0)
    arr = np.asarray(values)
    diffs = np.sign(arr[None, :] - arr[:, None])
    s = int(np.triu(diffs, k=1).sum())
    _, tie_counts = np.unique(arr, return_counts=True)
    ties = sum(int(t) * (int(t) - 1) * (2 * int(t) + 5) for t in tie_counts if t > 1)
    var_s = (n * (n - 1) * (2 * n + 5) - ties) / 18.0
    if var_s <= 0:
        z = 0.0
    elif s > 0:
        z = (s - 1) / math.sqrt(var_s)
    elif s < 0:
        z = (s + 1) / math.sqrt(var_s)
    else:
        z = 0.0
    p_two = float(2.0 * _scipy_stats.norm.sf(abs(z)))
    p_up = float(_scipy_stats.norm.sf(z))
    return MannKendall(
        s=s, tau=s / (n * (n - 1) / 2.0), z=float(z), p_value=min(1.0, p_two), p_increasing=p_up
    )
