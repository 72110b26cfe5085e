"""Vectorised screening of every team's history before the per-team flag rules run.

The close evaluates the flag rules for thousands of teams, but only a team whose rule might fire
(or that already has a flag) needs the per-team evaluation with its evidence.  These functions
answer "might this rule fire?" for all teams at once over teams x cycles matrices (NaN = no
usable figure; columns are the organisation's cycles, so a team's own series is its row with the
absent cycles left out -- the detector skips unusable cycles, so the NaN columns change nothing).

Every answer is conservative: ``True`` whenever the exact rule (``detect_deterioration``,
``high_level``, ``participation_drop``, the Mann-Kendall test) could say it fires, with a small
margin against rounding differences; a ``True`` only costs the exact evaluation.  The detector's
own batch functions compute the charts, so a change of its constants applies here too
(``tests/stats/test_screening.py`` compares with the per-team functions on random histories).
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from .detector import (
    DETECTOR_L,
    MIN_TREND_POINTS,
    TREND_WINDOW,
    ewma_upper_batch,
    team_chart_batch,
)

# Relative margin of every comparison: the exact rule is re-run for anything this close.
MARGIN = 1e-7
# One-sided 5 % point of the normal distribution (Mann-Kendall p < 0.05 <=> z above it).
Z_95 = 1.6448536269514722


def _close_above(value: NDArray[np.float64], limit: NDArray[np.float64]) -> NDArray[np.bool_]:
    with np.errstate(invalid="ignore"):
        return (
            np.isfinite(value)
            & np.isfinite(limit)
            & (value > limit - MARGIN * (1.0 + np.abs(limit)))
        )


def last_values(x: NDArray[np.float64], count: int) -> NDArray[np.float64]:
    """Each row's last ``count`` finite values, right-aligned, NaN-padded on the left."""
    x = np.atleast_2d(np.asarray(x, dtype=np.float64))
    finite = np.isfinite(x)
    from_right = np.cumsum(finite[:, ::-1], axis=1)[:, ::-1]
    keep = finite & (from_right <= count)
    out = np.full((x.shape[0], count), np.nan)
    rows, cols = np.nonzero(keep)
    out[rows, count - from_right[rows, cols]] = x[rows, cols]
    return out


def deterioration_may_signal(
    x: NDArray[np.float64],
    n: NDArray[np.float64],
    s: NDArray[np.float64],
    *,
    org_mean: float | None,
    org_sd: float | None,
    org_within_sd: float | None = None,
    org_between_sd: float | None = None,
    baseline_cycles: int = 12,
    min_history: int = 6,
) -> tuple[NDArray[np.bool_], NDArray[np.bool_]]:
    """(may signal, has enough data) per row, for ``detect_deterioration`` with its defaults.

    ``x``/``n``/``s``: index, respondents and respondent sd per team x cycle as the detector
    reads them (NaN where not usable)."""
    x = np.atleast_2d(np.asarray(x, dtype=np.float64))
    n = np.atleast_2d(np.asarray(n, dtype=np.float64))
    s = np.atleast_2d(np.asarray(s, dtype=np.float64))
    usable_x = np.isfinite(x) & np.isfinite(n) & (n > 0)
    x = np.where(usable_x, x, np.nan)
    usable = usable_x.sum(axis=1)
    signal = np.zeros(x.shape[0], dtype=bool)
    enough = np.zeros(x.shape[0], dtype=bool)

    team = usable > baseline_cycles
    if team.any():
        rows = np.flatnonzero(team)
        stats, limits, _ = team_chart_batch(x[rows], n[rows], s[rows])
        signal[rows] = _at_last_monitored(x[rows], stats, limits)
        enough[rows] = True

    org_ok = org_mean is not None and org_sd is not None
    org_ok = org_ok and bool(np.isfinite(org_mean)) and bool(np.isfinite(org_sd))  # type: ignore[arg-type]
    fallback = (usable >= min_history) & ~team
    if org_ok and fallback.any():
        rows = np.flatnonzero(fallback)
        base_mean, base_sd = float(org_mean), max(float(org_sd), 1.0)  # type: ignore[arg-type]
        xr = x[rows]
        shrunk = xr.copy()
        if (
            org_within_sd is not None
            and org_between_sd is not None
            and np.isfinite(org_within_sd)
            and np.isfinite(org_between_sd)
        ):
            between = max(0.0, float(org_between_sd)) ** 2
            with np.errstate(invalid="ignore", divide="ignore"):
                noise = max(0.0, float(org_within_sd)) ** 2 / np.floor(n[rows])
                weight = np.where(between + noise == 0.0, 1.0, between / (between + noise))
                shrunk = np.where(np.isfinite(xr), weight * xr + (1.0 - weight) * base_mean, np.nan)
        z = (shrunk - base_mean) / base_sd
        stats, limits = ewma_upper_batch(z, lam=0.2, L=DETECTOR_L)
        signal[rows] = _at_last_monitored(xr, stats, limits)
        enough[rows] = True
    return signal, enough


def _at_last_monitored(
    x: NDArray[np.float64], stats: NDArray[np.float64], limits: NDArray[np.float64]
) -> NDArray[np.bool_]:
    monitored = np.isfinite(x) & np.isfinite(limits)
    out = np.zeros(x.shape[0], dtype=bool)
    has = monitored.any(axis=1)
    last = x.shape[1] - 1 - np.argmax(monitored[:, ::-1], axis=1)
    rows = np.flatnonzero(has)
    out[rows] = _close_above(stats[rows, last[rows]], limits[rows, last[rows]])
    return out


def trend_may_rise(x: NDArray[np.float64]) -> NDArray[np.bool_]:
    """Rows whose last ``TREND_WINDOW`` finite values may show an upward Mann-Kendall trend
    (one-sided p < 0.05, tie-corrected variance)."""
    window = last_values(x, TREND_WINDOW)
    finite = np.isfinite(window)
    m = finite.sum(axis=1).astype(np.float64)
    with np.errstate(invalid="ignore"):
        diff = window[:, None, :] - window[:, :, None]  # [row, i, j] = x_j - x_i
    pair = finite[:, :, None] & finite[:, None, :]
    upper = np.triu(np.ones((TREND_WINDOW, TREND_WINDOW), dtype=bool), k=1)
    s = np.where(pair & upper, np.sign(np.nan_to_num(diff)), 0.0).sum(axis=(1, 2))
    equal = pair & (np.nan_to_num(diff) == 0.0)
    same = equal.sum(axis=2).astype(np.float64)  # per value: how many values equal it (itself too)
    ties = np.where(finite, (same - 1.0) * (2.0 * same + 5.0), 0.0).sum(axis=1)
    var_s = (m * (m - 1.0) * (2.0 * m + 5.0) - ties) / 18.0
    with np.errstate(invalid="ignore", divide="ignore"):
        z = np.where(var_s > 0, (s - 1.0) / np.sqrt(np.where(var_s > 0, var_s, 1.0)), 0.0)
    return (m >= MIN_TREND_POINTS) & (s > 0) & (z > Z_95 - 1e-6)


def high_level_may_fire(
    indices: NDArray[np.float64], *, threshold: float, consecutive: int
) -> NDArray[np.bool_]:
    """Rows whose last ``consecutive`` finite indices may all be above ``threshold``."""
    last = last_values(indices, max(consecutive, 1))
    limit = threshold - MARGIN * (1.0 + abs(threshold))
    with np.errstate(invalid="ignore"):
        return np.all(np.isfinite(last) & (last > limit), axis=1)


def participation_may_drop(
    rates: NDArray[np.float64],
    *,
    baseline_cycles: int = 12,
    min_history: int = 6,
    min_drop: float = 0.2,
    z_limit: float = 3.0,
    min_spread: float = 0.05,
) -> NDArray[np.bool_]:
    """Rows whose latest usable rate may signal in ``participation_drop`` (defaults alike), or
    whose rates are invalid (outside 0-1: the exact check raises, which must be seen)."""
    rates = np.atleast_2d(np.asarray(rates, dtype=np.float64))
    with np.errstate(invalid="ignore"):
        invalid = (np.isfinite(rates) & ((rates < 0.0) | (rates > 1.0))).any(axis=1)
    window = last_values(rates, baseline_cycles + 1)
    count = np.isfinite(rates).sum(axis=1)
    history, latest = window[:, :-1], window[:, -1]
    out = np.zeros(rates.shape[0], dtype=bool)
    rows = np.flatnonzero((count >= min_history + 1) & np.isfinite(latest))
    if rows.size:
        ref = np.nanmedian(history[rows], axis=1)
        mad = np.nanmedian(np.abs(history[rows] - ref[:, None]), axis=1)
        spread = np.maximum(min_spread, 1.4826 * mad)
        drop = ref - latest[rows]
        out[rows] = (drop >= min_drop - MARGIN) & (drop / spread >= z_limit - MARGIN * 10)
    return out | invalid
