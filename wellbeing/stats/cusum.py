"""One-sided (upper) tabular CUSUM on standardised values, and Siegmund's ARL approximation.

``C_t = max(0, C_{t-1} + z_t - k)``, signal when ``C_t > h`` (Page 1954; Montgomery, Introduction
to Statistical Quality Control, ch. 9).  Missing values (None/NaN) are skipped: C carries over.
The often-quoted ARL0 of 168 (h=4) and 465 (h=5) for k=0.5 are for the *two-sided* scheme; the
one-sided chart alone runs about twice as long in control (see ``siegmund_arl``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from ._data import is_number

DEFAULT_H = 5.0


@dataclass(frozen=True)
class CusumResult:
    statistics: list[float]
    threshold: float
    first_signal: int | None


def cusum_upper(z: Sequence[float | None], *, k: float = 0.5, h: float = DEFAULT_H) -> CusumResult:
    if h <= 0:
        raise ValueError("h must be positive")
    c = 0.0
    out: list[float] = []
    first: int | None = None
    for i, value in enumerate(z):
        if is_number(value):
            c = max(0.0, c + float(value) - k)
            if first is None and c > h:
                first = i
        out.append(c)
    return CusumResult(statistics=out, threshold=h, first_signal=first)


def siegmund_arl(*, k: float, h: float, shift: float = 0.0) -> float:
    """Siegmund's (1985) approximation of the one-sided CUSUM ARL for a mean shift (sd units)."""
    delta = shift - k
    b = h + 1.166
    if abs(delta) < 1e-12:
        return b * b
    return (math.exp(-2.0 * delta * b) + 2.0 * delta * b - 1.0) / (2.0 * delta * delta)
