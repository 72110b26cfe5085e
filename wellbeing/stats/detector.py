"""The production deterioration detector: is a team's index rising against its own baseline?

Input is one team's history for one dimension, oldest first, one ``CyclePoint`` per cycle; a
cycle whose figure is hidden by the anonymity guard (fewer than k respondents) or missing is
``index=None`` and is skipped explicitly, so nothing below k can ever be evidence.

Method (details and the simulation that tunes it: ``docs/statistics.md``, ``bench/detection.py``):

1. Baseline.  Monitoring starts after ``baseline_cycles`` (12) usable cycles; each monitored
   cycle is compared with the team's first min(usable cycles before it, 26) usable cycles, so
   the baseline grows while the team is new and is then frozen.  The variance of a cycle mean
   with n respondents is ``b + w/n``: ``w`` the respondents' pooled within-cycle variance (from
   the stored sds: hundreds of degrees of freedom), ``b`` the between-cycle variance beyond
   sampling noise (floored at 0).  Without stored sds it is the between-cycle variance of the
   baseline means scaled by n_h / n.  Either way a cycle with fewer respondents moves the chart
   less (small-n points are shrunk toward the baseline).  With too little history the
   organisation's mean and sd of team-cycle indices stand in, and small-n cycles are shrunk
   toward the organisation mean (empirical Bayes) when its within/between sds are given.
2. Later cycles are standardised and fed to a one-sided upper EWMA (``ewma.py``) whose limits
   include the uncertainty of the estimated baseline mean.  Only a rise can signal.
3. Theil-Sen slope and Mann-Kendall test over the recent cycles are reported as evidence.

Never raises on empty, short or all-missing histories: the answer is "not_enough_data".
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial

import numpy as np
from numpy.typing import NDArray

from ._data import is_number
from .ewma import ewma_upper_batch
from .shrinkage import shrink_mean
from .trend import mann_kendall, theil_sen

SIGNAL = "signal"
IN_CONTROL = "in_control"
NOT_ENOUGH_DATA = "not_enough_data"

# Smallest sd of a cycle mean we believe (index points): a flat baseline (everyone answering the
# same for weeks) must not turn a 1-point wobble into an alarm.
MIN_SD = 1.0
TREND_WINDOW = 12
MIN_TREND_POINTS = 4
# The baseline grows from ``baseline_cycles`` (12) usable cycles, when monitoring starts, to this
# many and is then frozen: half a year of weekly cycles halves the error variance of the mean.
MAX_BASELINE_CYCLES = 26
# The EWMA limits of the production detector, tuned by ``bench/detection.py --tune`` so that the
# in-control ARL with *estimated* baselines, read through the production window
# (``HISTORY_CYCLES``), stays >= 500 cycles (docs/statistics.md).  The limits also carry the
# baseline-mean uncertainty term (``baseline_n``), and the respondents' pooled spread slightly
# overstates the noise of a cycle mean (people's stable personal levels).  ``DETECTOR_L``
# applies when the stored cycles carry the respondents' sd (production),
# ``DETECTOR_L_WITHOUT_SD`` otherwise.
DETECTOR_L = 2.6
DETECTOR_L_WITHOUT_SD = 2.95
# How far back the detector looks: the organisation's last 52 cycles (a year of weekly
# cycles).  A team's baseline is the start of this window, so for a team older than the window
# it rolls forward: roughly the half-year before the last half-year.  A rise that lasts longer
# becomes the team's new usual level (``high_stress`` still flags a level that stays high).
HISTORY_CYCLES = 52


@dataclass(frozen=True)
class CyclePoint:
    index: float | None  # the team's 0-100 index for the cycle; None = below k / missing
    n: int  # respondents behind the index
    sd: float | None = None  # the respondents' sample sd of the index (None = not stored)


@dataclass(frozen=True)
class Detection:
    status: str  # "signal" | "in_control" | "not_enough_data"
    statistic: float | None  # EWMA value at the last usable cycle (standardised units)
    threshold: float | None  # the control limit it is compared to
    baseline_mean: float | None
    baseline_sd: float | None
    baseline_source: str  # "team" | "organisation" ("" when there is no baseline)
    shifted_cycles: int  # consecutive recent usable cycles with the chart above its limit
    slope_per_cycle: float | None
    slope_low: float | None
    slope_high: float | None
    mann_kendall_p: float | None  # one-sided p-value for an increasing trend
    reason: str = ""  # why there is no verdict (``NOT_ENOUGH_DATA``); empty otherwise


def _not_enough(reason: str, source: str = "") -> Detection:
    return Detection(
        status=NOT_ENOUGH_DATA,
        statistic=None,
        threshold=None,
        baseline_mean=None,
        baseline_sd=None,
        baseline_source=source,
        shifted_cycles=0,
        slope_per_cycle=None,
        slope_low=None,
        slope_high=None,
        mann_kendall_p=None,
        reason=reason,
    )


def _as_arrays(
    history: Sequence[CyclePoint],
) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]]:
    x = np.array(
        [float(p.index) if is_number(p.index) and p.n > 0 else np.nan for p in history],
        dtype=np.float64,
    )
    n = np.array([float(p.n) if p.n > 0 else np.nan for p in history], dtype=np.float64)
    s = np.array(
        [float(p.sd) if is_number(p.sd) and p.sd >= 0 else np.nan for p in history],
        dtype=np.float64,
    )
    return x, n, s


@dataclass(frozen=True)
class TeamBaseline:
    """Per team x cycle: the prospective baseline each monitored cycle is compared with.

    ``mean``/``sd``/``size`` are NaN where the cycle is not monitored; ``sd`` is the sd of a cycle
    mean at the baseline's harmonic-mean n (what ``Detection.baseline_sd`` reports), ``size`` the
    number of usable cycles in the baseline, ``within`` whether the respondents' own spread was
    used (else the between-cycle spread), ``z`` the standardised monitored cycles.
    """

    mean: NDArray[np.float64]
    sd: NDArray[np.float64]
    size: NDArray[np.float64]
    within: NDArray[np.bool_]
    z: NDArray[np.float64]


def team_baseline_batch(
    x: NDArray[np.float64],
    n: NDArray[np.float64],
    s: NDArray[np.float64] | None = None,
    *,
    baseline_cycles: int = 12,
    max_baseline_cycles: int = MAX_BASELINE_CYCLES,
) -> TeamBaseline:
    """Vectorised prospective baselines over teams x cycles (NaN = no usable figure).

    A usable cycle is monitored once the team has ``baseline_cycles`` usable cycles before it; its
    baseline is the team's first min(usable cycles before it, ``max_baseline_cycles``) usable
    cycles, so the baseline grows while the team is new and is then frozen (a later rise is never
    absorbed into it).  Variance of a cycle mean with n respondents: ``b + w / n`` where ``w`` is
    the pooled within-cycle variance of the respondents (from ``s``, the cycles' respondent sds)
    and ``b >= 0`` the between-cycle variance beyond sampling noise (method of moments, floored at
    0).  Without respondent sds for every baseline cycle it is the between-cycle variance of the
    baseline means scaled by n_h / n (n_h the harmonic-mean baseline n).  Floored at ``MIN_SD``.
    """
    x = np.atleast_2d(np.asarray(x, dtype=np.float64))
    n = np.atleast_2d(np.asarray(n, dtype=np.float64))
    s = np.full_like(x, np.nan) if s is None else np.atleast_2d(np.asarray(s, dtype=np.float64))
    cap = max(baseline_cycles, max_baseline_cycles)
    usable = np.isfinite(x) & np.isfinite(n) & (n > 0)
    count = np.cumsum(usable, axis=1)
    in_base = usable & (count <= cap)

    def before(values: NDArray[np.float64]) -> NDArray[np.float64]:
        """Sum over the baseline cycles strictly before each cycle: a running sum, a cycle
        (column) at a time over every team at once (added in the order ``np.cumsum`` adds them,
        in a third less time than it over these short rows)."""
        kept = np.where(in_base, values, 0.0)
        total = np.empty_like(kept)
        total[:, :1] = 0.0
        for j in range(1, kept.shape[1]):
            np.add(total[:, j - 1], kept[:, j - 1], out=total[:, j])
        return total

    xv = np.where(usable, x, 0.0)
    nv = np.where(usable, n, 1.0)
    has_sd = usable & np.isfinite(s) & (n >= 2)
    sv = np.where(has_sd, s, 0.0)
    size = before(np.ones_like(x))
    monitored = usable & (size >= baseline_cycles)
    with np.errstate(invalid="ignore", divide="ignore"):
        sum_x = before(xv)
        mean = sum_x / size
        var_means = (before(xv**2) - size * mean**2) / (size - 1)
        var_means = np.maximum(var_means, 0.0)
        inv_n = before(1.0 / nv)
        n_h = size / inv_n
        degrees = before(nv - 1.0)
        within = (before(has_sd.astype(float)) == size) & (degrees > 0)
        # pooled within-cycle variance; read only where every baseline cycle has its sd
        # (``within``), where the degrees of freedom are those of the cycles with an sd
        w = before((nv - 1.0) * sv**2) / degrees
        b = np.maximum(var_means - w * inv_n / size, 0.0)
        var_at_n = np.where(within, b + w / nv, var_means * n_h / nv)
        var_at_nh = np.where(within, b + w / n_h, var_means)
        var_at_n = np.maximum(var_at_n, MIN_SD**2)
        sd = np.sqrt(np.maximum(var_at_nh, MIN_SD**2))
        z = np.where(monitored, (x - mean) / np.sqrt(var_at_n), np.nan)
    nan = np.nan
    return TeamBaseline(
        mean=np.where(monitored, mean, nan),
        sd=np.where(monitored, sd, nan),
        size=np.where(monitored, size, nan),
        within=monitored & within,
        z=z,
    )


def team_chart_batch(
    x: NDArray[np.float64],
    n: NDArray[np.float64],
    s: NDArray[np.float64] | None = None,
    *,
    baseline_cycles: int = 12,
    max_baseline_cycles: int = MAX_BASELINE_CYCLES,
    lam: float = 0.2,
    L: float = DETECTOR_L,
    L_without_sd: float = DETECTOR_L_WITHOUT_SD,
    base: TeamBaseline | None = None,
) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.bool_]]:
    """Vectorised team-baseline chart: (statistics, limits, above) over teams x cycles.

    ``above[i, t]`` is True when the chart is above its limit at cycle t (carrying over cycles
    with no usable figure) -- i.e. ``detect_deterioration(history[: t + 1]).status == "signal"``
    for a team with no organisation fallback.  The benchmark uses this; production calls it
    with one row, so both run the same code.  Teams whose baseline lacks respondent sds use
    ``L_without_sd`` (the between-cycle sd is estimated from far fewer degrees of freedom).
    ``base``: ``team_baseline_batch`` of the same arrays, when the caller has it already.
    """
    if base is None:
        base = team_baseline_batch(
            x, n, s, baseline_cycles=baseline_cycles, max_baseline_cycles=max_baseline_cycles
        )
    stats, limits = ewma_upper_batch(base.z, lam=lam, L=1.0, baseline_n=base.size)
    # the limit is L x (the standardised limit); L depends on how the team's sd was estimated,
    # decided per cycle from its baseline (carried over unobserved cycles like the limit)
    observed = np.isfinite(base.z)
    within = _carry(base.within, observed)
    limits = limits * np.where(within, L, L_without_sd)
    with np.errstate(invalid="ignore"):
        above = np.isfinite(limits) & (stats > limits)
    return stats, limits, above


def monitored_in_window(
    x: NDArray[np.float64],
    n: NDArray[np.float64],
    *,
    window: int = HISTORY_CYCLES,
    baseline_cycles: int = 12,
) -> NDArray[np.bool_]:
    """Per team x cycle: whether the last ``window`` cycles up to it hold more than
    ``baseline_cycles`` usable ones, i.e. whether ``detect_deterioration`` on that window has a
    team baseline (else, without organisation figures, it answers "not_enough_data")."""
    x = np.atleast_2d(np.asarray(x, dtype=np.float64))
    n = np.atleast_2d(np.asarray(n, dtype=np.float64))
    usable = np.isfinite(x) & np.isfinite(n) & (n > 0)
    # count[:, j] = usable cycles before cycle j; the window up to t is count[t + 1] - count[lo]
    count = np.concatenate([np.zeros((x.shape[0], 1)), np.cumsum(usable, axis=1)], axis=1)
    t = np.arange(x.shape[1])
    lo = np.maximum(0, t - window + 1)
    return (count[:, t + 1] - count[:, lo]) > baseline_cycles


def team_status_windowed(
    x: NDArray[np.float64],
    n: NDArray[np.float64],
    s: NDArray[np.float64] | None = None,
    *,
    window: int = HISTORY_CYCLES,
    baseline_cycles: int = 12,
    max_baseline_cycles: int = MAX_BASELINE_CYCLES,
    lam: float = 0.2,
    L: float = DETECTOR_L,
    L_without_sd: float = DETECTOR_L_WITHOUT_SD,
) -> tuple[NDArray[np.bool_], NDArray[np.bool_]]:
    """(above, monitored) over teams x cycles when at every cycle the chart sees only the last
    ``window`` cycles, as production does (the flag job reads ``HISTORY_CYCLES``).

    ``above[i, t]`` is ``detect_deterioration(history[max(0, t - window + 1) : t + 1]).status
    == "signal"``; ``monitored[i, t]`` is whether that call has a team baseline (more than
    ``baseline_cycles`` usable cycles in the window).  The chart is causal, so the first
    ``window`` cycles come from one run; each later cycle needs its own window."""
    x = np.atleast_2d(np.asarray(x, dtype=np.float64))
    n = np.atleast_2d(np.asarray(n, dtype=np.float64))
    s = np.full_like(x, np.nan) if s is None else np.atleast_2d(np.asarray(s, dtype=np.float64))
    monitored = monitored_in_window(x, n, window=window, baseline_cycles=baseline_cycles)
    chart = partial(
        team_chart_batch, baseline_cycles=baseline_cycles, max_baseline_cycles=max_baseline_cycles,
        lam=lam, L=L, L_without_sd=L_without_sd,
    )  # fmt: skip
    head = min(window, x.shape[1])
    above = np.zeros(x.shape, dtype=bool)
    _, _, above[:, :head] = chart(x[:, :head], n[:, :head], s[:, :head])
    for t in range(head, x.shape[1]):
        lo = t - window + 1
        _, _, last = chart(x[:, lo : t + 1], n[:, lo : t + 1], s[:, lo : t + 1])
        above[:, t] = last[:, -1]
    return above & monitored, monitored


def _carry(values: NDArray[np.bool_], observed: NDArray[np.bool_]) -> NDArray[np.bool_]:
    out = np.zeros(values.shape, dtype=bool)
    current = np.zeros(values.shape[0], dtype=bool)
    for j in range(values.shape[1]):
        current = np.where(observed[:, j], values[:, j], current)
        out[:, j] = current
    return out


def _trend(x: NDArray[np.float64]) -> tuple[float | None, float | None, float | None, float | None]:
    positions = np.flatnonzero(np.isfinite(x))[-TREND_WINDOW:]
    if positions.size < MIN_TREND_POINTS:
        return None, None, None, None
    ys = [float(v) for v in x[positions]]
    xs = [float(p) for p in positions]
    ts = theil_sen(ys, xs)
    mk = mann_kendall(ys)
    return ts.slope, ts.slope_low, ts.slope_high, mk.p_increasing


def detect_deterioration(
    history: Sequence[CyclePoint],
    *,
    org_mean: float | None = None,
    org_sd: float | None = None,
    baseline_cycles: int = 12,
    min_history: int = 6,
    lam: float = 0.2,
    L: float = DETECTOR_L,
    org_within_sd: float | None = None,
    org_between_sd: float | None = None,
    max_baseline_cycles: int = MAX_BASELINE_CYCLES,
    L_without_sd: float = DETECTOR_L_WITHOUT_SD,
) -> Detection:
    """Run the deterioration chart on one team's history (oldest first).

    ``org_mean``/``org_sd``: the organisation's mean and sd of team-cycle indices for this
    dimension, used until the team has more than ``baseline_cycles`` usable cycles.
    ``org_within_sd``/``org_between_sd`` (optional): respondent-level sd and between-team sd,
    enabling shrinkage of small-n cycles toward ``org_mean`` in that fallback.
    The team baseline grows from ``baseline_cycles`` to ``max_baseline_cycles`` usable cycles
    (``team_baseline_batch``); ``L`` is the limit when every baseline cycle carries the
    respondents' ``sd``, ``L_without_sd`` when not.
    """
    return detect_deterioration_batch(
        [history],
        org_mean=org_mean,
        org_sd=org_sd,
        baseline_cycles=baseline_cycles,
        min_history=min_history,
        lam=lam,
        L=L,
        org_within_sd=org_within_sd,
        org_between_sd=org_between_sd,
        max_baseline_cycles=max_baseline_cycles,
        L_without_sd=L_without_sd,
    )[0]


def _padded(
    arrays: Sequence[tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]]],
) -> list[NDArray[np.float64]]:
    """Histories' (x, n, s) of different lengths as three matrices, one row each, padded at
    their ends with cycles that have no figure.  Every step of the team chart works row by row
    and only looks back, so a row up to its own length is what its history alone gives."""
    width = max(x.size for x, _, _ in arrays)
    padded = [np.full((len(arrays), width), np.nan) for _ in range(3)]
    for row, columns in enumerate(arrays):
        for matrix, values in zip(padded, columns, strict=True):
            matrix[row, : values.size] = values
    return padded


def detect_deterioration_batch(
    histories: Sequence[Sequence[CyclePoint]],
    *,
    org_mean: float | None = None,
    org_sd: float | None = None,
    baseline_cycles: int = 12,
    min_history: int = 6,
    lam: float = 0.2,
    L: float = DETECTOR_L,
    org_within_sd: float | None = None,
    org_between_sd: float | None = None,
    max_baseline_cycles: int = MAX_BASELINE_CYCLES,
    L_without_sd: float = DETECTOR_L_WITHOUT_SD,
) -> list[Detection]:
    """``detect_deterioration`` of each history (same organisation figures and settings), the
    team-baseline charts of all of them computed at once: the close evaluates hundreds of teams,
    and one chart per call was mostly numpy's per-call cost."""
    if baseline_cycles < 2:
        raise ValueError("baseline_cycles must be at least 2")
    if min_history < 1:
        raise ValueError("min_history must be at least 1")
    arrays = [_as_arrays(history) for history in histories]
    usable = [int(np.isfinite(x).sum()) for x, _, _ in arrays]
    charted = [i for i, count in enumerate(usable) if count > baseline_cycles]
    row_of = {i: row for row, i in enumerate(charted)}
    if charted:
        kwargs = {"baseline_cycles": baseline_cycles, "max_baseline_cycles": max_baseline_cycles}
        xm, nm, sm = _padded([arrays[i] for i in charted])
        base = team_baseline_batch(xm, nm, sm, **kwargs)
        stats, limits, _ = team_chart_batch(
            xm, nm, sm, **kwargs, lam=lam, L=L, L_without_sd=L_without_sd, base=base
        )
    out = []
    for i, (x, n, s) in enumerate(arrays):
        chart = None
        if i in row_of:
            row, size = row_of[i], x.size
            chart = (
                base.mean[row, :size],
                base.sd[row, :size],
                stats[row, :size],
                limits[row, :size],
            )
        out.append(
            _detect_one(
                x, n, s, usable[i], chart,
                org_mean=org_mean, org_sd=org_sd, baseline_cycles=baseline_cycles,
                min_history=min_history, lam=lam, L=L, org_within_sd=org_within_sd,
                org_between_sd=org_between_sd,
            )
        )  # fmt: skip
    return out


def _detect_one(
    x: NDArray[np.float64],
    n: NDArray[np.float64],
    s: NDArray[np.float64],
    usable: int,
    chart: tuple[NDArray[np.float64], ...] | None,
    *,
    org_mean: float | None,
    org_sd: float | None,
    baseline_cycles: int,
    min_history: int,
    lam: float,
    L: float,
    org_within_sd: float | None,
    org_between_sd: float | None,
) -> Detection:
    """One history's detection; ``chart``: its team-baseline chart (baseline mean and sd,
    statistics, limits) when it has more than ``baseline_cycles`` usable cycles."""
    if usable == 0:
        return _not_enough("There are no cycles with enough responses yet.")

    slope, slope_low, slope_high, mk_p = _trend(x)
    if chart is not None:
        source = "team"
        mean_row, sd_row, stats, limits = chart
        last_usable = np.flatnonzero(np.isfinite(mean_row))[-1]
        base_mean = float(mean_row[last_usable])
        base_sd = float(sd_row[last_usable])
        # limits are NaN on the baseline cycles: only later cycles are monitored
        monitored = np.isfinite(x) & np.isfinite(limits)
    elif usable >= min_history and is_number(org_mean) and is_number(org_sd):
        source = "organisation"
        base_mean, base_sd = float(org_mean), max(float(org_sd), MIN_SD)
        shrunk = x.copy()
        if is_number(org_within_sd) and is_number(org_between_sd):
            for i in np.flatnonzero(np.isfinite(x)):
                shrunk[i] = shrink_mean(
                    float(x[i]),
                    int(n[i]),
                    float(org_within_sd),
                    base_mean,
                    float(org_between_sd),
                )
        z = (shrunk - base_mean) / base_sd
        stats_m, limits_m = ewma_upper_batch(z[None, :], lam=lam, L=L)
        stats, limits = stats_m[0], limits_m[0]
        monitored = np.isfinite(x)
    else:
        needed = baseline_cycles + 1 if not is_number(org_mean) else min_history
        return _not_enough(
            f"{usable} cycle{'s' if usable != 1 else ''} with enough responses so far; "
            f"the trend check needs {needed}."
        )

    positions = np.flatnonzero(monitored)
    last = positions[-1]
    statistic, threshold = float(stats[last]), float(limits[last])
    shifted = 0
    for pos in positions[::-1]:
        if stats[pos] > limits[pos]:
            shifted += 1
        else:
            break
    status = SIGNAL if shifted > 0 else IN_CONTROL
    return Detection(
        status=status,
        statistic=statistic,
        threshold=threshold,
        baseline_mean=base_mean,
        baseline_sd=base_sd,
        baseline_source=source,
        shifted_cycles=shifted,
        slope_per_cycle=slope,
        slope_low=slope_low,
        slope_high=slope_high,
        mann_kendall_p=mk_p,
    )


def participation_drop(
    rates: Sequence[float | None],
    *,
    baseline_cycles: int = 12,
    min_history: int = 6,
    min_drop: float = 0.2,
    z_limit: float = 3.0,
    min_spread: float = 0.05,
) -> Detection:
    """A sharp fall of the response rate (0-1) against the team's own recent history.

    Reference = median of up to ``baseline_cycles`` usable rates before the latest one; spread =
    1.4826 x MAD, floored at ``min_spread``.  The latest rate signals when it is at least
    ``min_drop`` (absolute, e.g. 0.2 = 20 points) AND ``z_limit`` spreads below the reference.
    """
    values = [float(r) for r in rates if is_number(r)]
    if any(v < 0.0 or v > 1.0 for v in values):
        raise ValueError("response rates must lie in [0, 1]")
    if len(values) < min_history + 1:
        return _not_enough(
            f"{len(values)} cycle{'s' if len(values) != 1 else ''} of participation so far; "
            f"the check needs {min_history + 1}."
        )

    def drop_at(i: int) -> tuple[bool, float, float, float]:
        # a dozen values: plain Python (numpy's per-call cost is most of the time here)
        history = values[max(0, i - baseline_cycles) : i]
        ref = statistics.median(history)
        spread = max(min_spread, 1.4826 * statistics.median([abs(v - ref) for v in history]))
        z = (ref - values[i]) / spread
        return (ref - values[i] >= min_drop and z >= z_limit), z, ref, spread

    fired, z_last, ref, spread = drop_at(len(values) - 1)
    shifted = 0
    for i in range(len(values) - 1, min_history - 1, -1):
        if drop_at(i)[0]:
            shifted += 1
        else:
            break
    recent = values[-TREND_WINDOW:]
    ts = theil_sen(recent) if len(recent) >= MIN_TREND_POINTS else None
    mk = mann_kendall([-v for v in recent]) if len(recent) >= MIN_TREND_POINTS else None
    status = SIGNAL if fired else IN_CONTROL
    return Detection(
        status=status,
        statistic=z_last,
        threshold=z_limit,
        baseline_mean=ref,
        baseline_sd=spread,
        baseline_source="team",
        shifted_cycles=shifted,
        slope_per_cycle=ts.slope if ts else None,
        slope_low=ts.slope_low if ts else None,
        slope_high=ts.slope_high if ts else None,
        mann_kendall_p=mk.p_increasing if mk else None,  # p for a *falling* rate
    )


def high_level(indices: Sequence[float | None], *, threshold: float, consecutive: int) -> bool:
    """True when the last ``consecutive`` usable indices are all above ``threshold``.

    Missing cycles (None/NaN, e.g. below k) are skipped: they neither break nor extend the run.
    """
    if consecutive < 1:
        raise ValueError("consecutive must be at least 1")
    values = [float(v) for v in indices if is_number(v)]
    if len(values) < consecutive:
        return False
    return all(v > threshold for v in values[-consecutive:])
