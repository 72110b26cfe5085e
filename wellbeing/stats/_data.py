"""Small helpers shared by the statistics modules (explicit handling of missing values)."""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import TypeGuard


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
