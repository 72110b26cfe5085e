"""Small helpers shared by the statistics modules (explicit handling of missing values) and
the close (the unique values of a large integer array)."""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import TypeGuard

import numpy as np
from numpy.typing import NDArray


def is_number(value: object) -> TypeGuard[float]:
    """True for a finite real number; None, NaN and infinities count as missing."""
    if value is None or isinstance(value, bool):
        return False
    try:
        return math.isfinite(float(value))  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return False


def finite(values: Iterable[object]) -> list[float]:
    """The finite values, in order; missing ones (None/NaN/inf) dropped explicitly."""
    return [float(v) for v in values if is_number(v)]


def sorted_unique(values: NDArray[np.int64]) -> NDArray[np.int64]:
    """``np.unique`` of a large integer array by one sort: numpy 2.4's ``unique`` (and
    ``union1d``, built on it) took 0.2-0.5 s on the close's hundreds of thousands of keys, a
    sort 10-20 ms.  Values spanning a range not much wider than their count (team ids) are
    marked in a table instead, which takes a few milliseconds for a million of them."""
    if values.size:
        low = int(values.min())
        span = int(values.max()) - low + 1
        if span <= 4 * values.size:
            seen = np.zeros(span, dtype=bool)
            seen[values - low] = True
            return (np.flatnonzero(seen) + low).astype(values.dtype, copy=False)
    ordered = np.sort(values)
    keep = np.ones(ordered.size, dtype=bool)
    np.not_equal(ordered[1:], ordered[:-1], out=keep[1:])
    return ordered[keep]


def positions(table: NDArray[np.int64], values: NDArray[np.int64]) -> NDArray[np.int64]:
    """Where each of ``values`` sits in ``table`` (sorted, unique, holding every one of them):
    ``np.searchsorted``, or for a table not much wider than it is long (team ids), a lookup
    array indexed by value, ten to twenty times faster for a million values."""
    if table.size and values.size:
        low = int(table[0])
        span = int(table[-1]) - low + 1
        if span <= 4 * table.size:
            at = np.zeros(span, dtype=np.int64)
            at[table - low] = np.arange(table.size)
            return at[values - low]
    return np.searchsorted(table, values).astype(np.int64, copy=False)
