"""One-sided (upper) EWMA control chart on standardised values.

Only deterioration matters to Pulse, so the chart watches the upper side only and reflects at
``start`` (Crowder & Hamilton 1992): the statistic never drifts below its target, which keeps it
from building up "credit" during a good spell and so reacts faster when things turn.

Limits are time-varying: at the t-th observation the variance of the unreflected statistic is
``lam/(2-lam) * (1 - (1-lam)**(2t))`` (Lucas & Saccucci 1990).  When the values were standardised
with a mean estimated from ``baseline_n`` points, the estimation error of that mean is carried by
every later point, so ``(1-(1-lam)**t)**2 / baseline_n`` is added (it does not average away).
``baseline_n`` may also be an array shaped like ``z`` (a baseline that grew while monitoring):
each observation's limit then uses the size of the baseline that point was standardised with.
Missing values (None/NaN) are skipped explicitly: the statistic and its limit carry over.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

# Known parameters: the reflected one-sided chart with lambda 0.2 has ARL0 ~ 545 at L = 2.9
# (``ewma_upper_arl``).  The production detector uses its own, simulation-tuned limit.
DEFAULT_L = 2.9


@dataclass(frozen=True)
class EwmaResult:
    statistics: list[float]
    limits: list[float]
    first_signal: int | None  # position in the input of the first value above its limit


def _limit_variance(
    t: NDArray[np.float64],
    lam: float,
    baseline_n: float | NDArray[np.float64] | None,
    asymptotic: bool,
) -> NDArray[np.float64]:
    decay = (1.0 - lam) ** t
    var = lam / (2.0 - lam) * (np.ones_like(t) if asymptotic else 1.0 - decay**2)
    if baseline_n is not None:
        var = var + (1.0 - decay) ** 2 / baseline_n
    return var


def ewma_upper_batch(
    z: NDArray[np.float64],
    *,
    lam: float = 0.2,
    L: float = DEFAULT_L,
    start: float = 0.0,
    baseline_n: int | NDArray[np.float64] | None = None,
    asymptotic: bool = False,
    reflect: bool = True,
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Vectorised chart over rows of ``z`` (series x time); NaN = no observation.

    Returns (statistics, limits) with the shape of ``z``; before a row's first observation the
    statistic is ``start`` and the limit is NaN.  ``ewma_upper`` is this function on one row.
    """
    if not 0.0 < lam <= 1.0:
        raise ValueError("lam must be in (0, 1]")
    if L <= 0:
        raise ValueError("L must be positive")
    z = np.atleast_2d(np.asarray(z, dtype=float))
    rows, cols = z.shape
    per_point = baseline_n is not None and np.ndim(baseline_n) > 0
    if per_point:
        m = np.broadcast_to(np.atleast_2d(np.asarray(baseline_n, dtype=float)), z.shape)
    # The limits depend only on how many observations came before (and the baseline size), so
    # they are computed for the whole matrix at once and carried over unobserved cycles; only
    # the statistic's recursion runs cycle by cycle.
    observed = np.isfinite(z)
    t = np.maximum(np.cumsum(observed, axis=1), 1.0)
    if per_point:
        usable = observed & np.isfinite(m) & (m > 0)
        var = _limit_variance(t, lam, np.where(usable, m, np.inf), asymptotic)
    else:
        scalar = float(baseline_n) if baseline_n else None  # type: ignore[arg-type]
        var = _limit_variance(t, lam, scalar, asymptotic)
    last_seen = np.maximum.accumulate(np.where(observed, np.arange(cols), -1), axis=1)
    point_limits = start + L * np.sqrt(var)
    limits = np.where(
        last_seen >= 0,
        np.take_along_axis(point_limits, np.maximum(last_seen, 0), axis=1),
        np.nan,
    )
    stats = np.empty_like(z)
    current = np.full(rows, float(start))
    for j in range(cols):
        seen = observed[:, j]
        if seen.any():
            updated = (1.0 - lam) * current + lam * np.where(seen, z[:, j], 0.0)
            if reflect:
                updated = np.maximum(start, updated)
            current = np.where(seen, updated, current)
        stats[:, j] = current
    return stats, limits


def ewma_upper(
    z: Sequence[float | None],
    *,
    lam: float = 0.2,
    L: float = DEFAULT_L,
    start: float = 0.0,
    baseline_n: int | None = None,
    asymptotic: bool = False,
    reflect: bool = True,
) -> EwmaResult:
    """Upper EWMA of standardised values ``z`` (in-control mean 0, sd 1)."""
    values = np.array([np.nan if v is None else float(v) for v in z], dtype=float)
    if values.size == 0:
        return EwmaResult(statistics=[], limits=[], first_signal=None)
    stats, limits = ewma_upper_batch(
        values[None, :],
        lam=lam,
        L=L,
        start=start,
        baseline_n=baseline_n,
        asymptotic=asymptotic,
        reflect=reflect,
    )
    above = np.isfinite(values) & (stats[0] > limits[0])
    first = int(np.argmax(above)) if above.any() else None
    return EwmaResult(
        statistics=[float(s) for s in stats[0]],
        limits=[float(v) for v in limits[0]],
        first_signal=first,
    )


def ewma_upper_arl(*, lam: float, L: float, shift: float = 0.0, states: int = 300) -> float:
    """ARL of the reflected upper EWMA with asymptotic limits, known parameters (Markov chain).

    Brook & Evans (1972) discretisation: one state for the reflecting barrier at 0 plus
    ``states`` equal intervals below the limit; the ARL is the expected number of steps to leave
    the in-control region, starting at 0.  Used to check the chart and to document its L.
    """
    from scipy.stats import norm

    h = L * float(np.sqrt(lam / (2.0 - lam)))
    width = h / states
    centres = np.concatenate(([0.0], (np.arange(states) + 0.5) * width))
    edges = np.arange(states + 1) * width
    base = (1.0 - lam) * centres[:, None]
    cdf = norm.cdf((edges[None, :] - base) / lam - shift)
    q = np.empty((states + 1, states + 1))
    q[:, 0] = norm.cdf((0.0 - base[:, 0]) / lam - shift)  # reflected onto the barrier
    q[:, 1:] = np.diff(cdf, axis=1)
    arl = np.linalg.solve(np.eye(states + 1) - q, np.ones(states + 1))
    return float(arl[0])
