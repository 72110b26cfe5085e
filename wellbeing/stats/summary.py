"""Summary of one group's 0-100 indices for one cycle: n, mean, spread, interval, distribution.

Pure: the caller decides (through ``wellbeing.guard``) whether a summary may leave the server;
this module never does, and it never returns anything for an empty group.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass

from scipy import stats as _scipy_stats

from ._data import finite

INDEX_MIN = 0.0
INDEX_MAX = 100.0


@dataclass(frozen=True)
class Summary:
    n: int
    mean: float
    sd: float  # sample standard deviation (n - 1); 0.0 for a single score
    ci_low: float
    ci_high: float
    distribution: tuple[int, ...]  # counts in equal-width buckets over 0-100, last one closed


def summarise(
    scores: Sequence[float | None], *, buckets: int = 5, confidence: float = 0.95
) -> Summary | None:
    """Summarise per-respondent indices (0-100, higher = worse).

    Missing scores (None/NaN) are dropped; None when nothing is left.  The interval is a Student-t
    interval on the mean clipped to [0, 100]; with one score it is the whole scale (no spread can
    be estimated from one person).  Scores outside [0, 100] are a caller bug and raise ValueError.
    """
    if buckets < 1:
        raise ValueError("buckets must be at least 1")
    if not 0.0 < confidence < 1.0:
        raise ValueError("confidence must be between 0 and 1")
    values = finite(scores)
    if not values:
        return None
    if any(v < INDEX_MIN or v > INDEX_MAX for v in values):
        raise ValueError("scores must lie in [0, 100]")

    n = len(values)
    mean = math.fsum(values) / n
    if n == 1:
        sd = 0.0
        ci_low, ci_high = INDEX_MIN, INDEX_MAX
    else:
        sd = statistics.stdev(values)
        t = float(_scipy_stats.t.ppf(0.5 + confidence / 2.0, n - 1))
        half = t * sd / math.sqrt(n)
        ci_low = max(INDEX_MIN, mean - half)
        ci_high = min(INDEX_MAX, mean + half)

    counts = [0] * buckets
    width = (INDEX_MAX - INDEX_MIN) / buckets
    for v in values:
        # 100 belongs to the last bucket; every other bucket is half-open [lo, hi).
        counts[min(int((v - INDEX_MIN) // width), buckets - 1)] += 1
    return Summary(
        n=n, mean=mean, sd=sd, ci_low=ci_low, ci_high=ci_high, distribution=tuple(counts)
    )
