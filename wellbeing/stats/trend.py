"""Robust trend evidence: Theil-Sen slope with its interval, and the Mann-Kendall trend test.

Used as plain-language evidence next to a control-chart signal, never as the alarm itself.
Missing values (None/NaN) are dropped explicitly together with their x positions.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from statistics import NormalDist

import numpy as np
from numpy.typing import NDArray

from ._data import is_number

_NORMAL = NormalDist()


def _normal_sf(z: float) -> float:
    """P(Z > z) for a standard normal Z, accurate in the far tail too."""
    return 0.5 * math.erfc(z / math.sqrt(2.0))


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


def _repeat_term(values: NDArray[np.float64]) -> int:
    """sum of t (t - 1) (2t + 5) over the groups of t equal values (tie corrections).  Counted
    in plain Python: a dozen values, where numpy's sort-based grouping costs more per call."""
    counts = Counter(values.tolist()).values()
    return sum(t * (t - 1) * (2 * t + 5) for t in counts if t > 1)


def theil_sen(
    y: Sequence[float | None], x: Sequence[float | None] | None = None, *, confidence: float = 0.95
) -> TheilSen:
    """Median of pairwise slopes (Theil 1950, Sen 1968); intercept = median(y - slope x).

    The interval is Sen's (1968, eq. 2.6): the ranks of the sorted pairwise slopes that lie
    z sigma around the middle, sigma from the normal approximation of Kendall's S with ties in
    x and in y corrected for -- as scipy's ``theilslopes`` computes it (the tests compare the
    two), here without its per-call overhead, since the close runs it for hundreds of teams.
    Needs at least two distinct x values, else ValueError.
    """
    xs, ys = _pairs(y, x)
    if len(set(xs)) < 2:
        raise ValueError("Theil-Sen needs at least two distinct x values")
    xa, ya = np.asarray(xs), np.asarray(ys)
    dx = xa[:, None] - xa
    dy = ya[:, None] - ya
    rising = dx > 0
    slopes = np.sort(dy[rising] / dx[rising])
    slope = float(np.median(slopes))
    alpha = 1.0 - confidence if confidence > 0.5 else confidence
    z = _NORMAL.inv_cdf(alpha / 2.0)
    n, pairs = ya.size, slopes.size
    variance = (n * (n - 1) * (2 * n + 5) - _repeat_term(xa) - _repeat_term(ya)) / 18.0
    low = high = math.nan  # so many ties that the approximation has no variance left
    if variance >= 0:
        sigma = math.sqrt(variance)
        low = float(slopes[max(round((pairs + z * sigma) / 2.0) - 1, 0)])
        high = float(slopes[min(round((pairs - z * sigma) / 2.0), pairs - 1)])
    return TheilSen(
        slope=slope,
        intercept=float(np.median(ya - slope * xa)),
        slope_low=low,
        slope_high=high,
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
    var_s = (n * (n - 1) * (2 * n + 5) - _repeat_term(arr)) / 18.0
    if var_s <= 0:
        z = 0.0
    elif s > 0:
        z = (s - 1) / math.sqrt(var_s)
    elif s < 0:
        z = (s + 1) / math.sqrt(var_s)
    else:
        z = 0.0
    p_two = 2.0 * _normal_sf(abs(z))
    p_up = _normal_sf(z)
    return MannKendall(
        s=s, tau=s / (n * (n - 1) / 2.0), z=float(z), p_value=min(1.0, p_two), p_increasing=p_up
    )
