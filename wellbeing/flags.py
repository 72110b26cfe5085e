"""Trend detection over stored, published aggregates and the flag life cycle.

Kinds: ``high_stress`` (stress above the organisation's level for consecutive cycles),
``rising_stress`` (the deterioration detector signals on stress), ``empathy_risk`` (customer-
facing team: stress rising together with client-related burnout rising or high -- the headline
flag) and ``participation_drop``.  Life cycle: open -> acknowledged -> resolved automatically after
``resolve_after_cycles`` cycles back in control (hysteresis: a cycle out of control restarts the
count), or dismissed with a reason.  A flag resolved recently reopens instead of duplicating;
a rising severity escalates.

Never: use a figure that was not published (suppressed cycles are gaps), put anything from fewer
than k people in evidence or alerts, log answers, or let one team's failure stop the others.
"""

from __future__ import annotations

import logging
import math
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, timedelta
from functools import cache
from typing import Any

import numpy as np
import psycopg
from django.db import DatabaseError, connection, transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_noop
from numpy.typing import NDArray
from psycopg import sql as psycopg_sql

from . import flag_text, policy
from .analytics import FlagChange
from .analytics_selectors import TeamTree, team_tree
from .bulk import instances_copy
from .close_reads import CloseReads, Columns
from .customer_metrics import customer_evidence
from .errors import ServiceError
from .models import (
    CycleResult,
    DetectionColumns,
    Flag,
    FlagEvent,
    FlagSettings,
    Organisation,
    Scope,
    TeamAggregate,
    TeamLead,
    TeamParticipation,
    User,
)
from .packed import packed_records, packed_values
from .stats._data import positions, sorted_unique
from .stats.detector import (
    HISTORY_CYCLES,
    IN_CONTROL,
    NOT_ENOUGH_DATA,
    SIGNAL,
    CyclePoint,
    Detection,
    detect_deterioration,
    detect_deterioration_batch,
    high_level,
    participation_drop,
)
from .stats.screening import (
    deterioration_may_signal,
    high_level_may_fire,
    participation_may_drop,
    trend_may_rise,
)
from .stats.shrinkage import between_team_variance

logger = logging.getLogger(__name__)

EVIDENCE_CYCLES = 12  # published points quoted in a flag's evidence
TREND_P = 0.05

FIRING = "firing"  # the rule fires: open, keep open, maybe escalate
IN_CONTROL_STATE = "in_control"  # counts toward automatic resolution
ELEVATED = "elevated"  # not firing but not in control either: restarts the resolution count
NO_DATA = "no_data"  # suppressed or too little history: neither counts

SEVERITY_RANK = {Flag.Severity.WATCH: 0, Flag.Severity.WARNING: 1, Flag.Severity.CRITICAL: 2}

# Stored on the flag as these English texts (its record), shown translated (``gettext``).
SUGGESTED_ACTIONS = {
    "wellness_check": gettext_noop(
        "Hold a short wellness check-in conversation with the team (not with "
        "individuals about their answers: the check-ins are anonymous)."
    ),
    "workload_review": gettext_noop(
        "Review workload and staffing: queue volumes, overtime, open "
        "positions, and whether work can be paused, moved or shared."
    ),
    "support_resources": gettext_noop(
        "Remind the team of the support resources available to them "
        "(employee assistance, occupational health, counselling)."
    ),
    "peer_support": gettext_noop(
        "Encourage peer support and role models: pair people up, let experienced "
        "colleagues share how they handle hard customer contacts, and lead by example on breaks."
    ),
    "recovery": gettext_noop(
        "Protect recovery time: real breaks between difficult contacts, no after-hours "
        "messages, and time off that is actually taken."
    ),
    "participation": gettext_noop(
        "Ask the team, openly and without pressure, whether the check-in still "
        "feels safe and worth their time; explain what was done with earlier results."
    ),
    "next_checkin": gettext_noop(
        "Watch the next check-in to see whether the actions are making a difference."
    ),
}


def settings_for(organisation: Organisation) -> FlagSettings:
    """The organisation's flag settings (defaults if none were saved; not written here)."""
    try:
        return organisation.flag_settings
    except FlagSettings.DoesNotExist:
        return FlagSettings(organisation=organisation)


@dataclass
class Evaluation:
    status: str  # FIRING | IN_CONTROL_STATE | ELEVATED | NO_DATA
    severity: str = Flag.Severity.WATCH
    actions: list[str] = field(default_factory=list)
    evidence: dict[str, Any] = field(default_factory=dict)


@dataclass
class _Series:
    periods: list[date]
    points: list[CyclePoint]

    @property
    def indices(self) -> list[float | None]:
        return [p.index for p in self.points]

    @property
    def latest(self) -> float | None:
        return self.points[-1].index if self.points else None

    def published(self, last: int = EVIDENCE_CYCLES) -> list[dict[str, Any]]:
        """The last ``last`` published figures, oldest first."""
        pairs: list[dict[str, Any]] = []
        for d, p in zip(reversed(self.periods), reversed(self.points), strict=True):
            if len(pairs) == last:
                break
            if p.index is not None:
                pairs.append({"period_start": d.isoformat(), "index": round(p.index, 1)})
        return pairs[::-1]


def _r(value: float | None, digits: int = 2) -> float | None:
    if value is None or not math.isfinite(value):
        return None
    return round(float(value), digits)


def _detection_evidence(det: Detection) -> dict[str, Any]:
    return {
        "status": det.status,
        "statistic": _r(det.statistic),
        "threshold": _r(det.threshold),
        "baseline_mean": _r(det.baseline_mean, 1),
        "baseline_sd": _r(det.baseline_sd, 2),
        "baseline_source": det.baseline_source,
        "shifted_cycles": det.shifted_cycles,
        "slope_per_cycle": _r(det.slope_per_cycle),
        "slope_ci": [_r(det.slope_low), _r(det.slope_high)],
        "mann_kendall_p": _r(det.mann_kendall_p, 4),
        "trend": _trend(det),
    }


def _trend(det: Detection) -> str | None:
    """The recent trend's verdict (``flag_text.TRENDS``); ``None`` without enough points."""
    slope, p = det.slope_per_cycle, det.mann_kendall_p
    if slope is None or p is None:
        return None
    if slope > 0 and p < TREND_P:
        return flag_text.TREND_UP
    return flag_text.TREND_FLAT_OR_FALLING if slope <= 0 else flag_text.TREND_UNCLEAR


def _trend_up(det: Detection) -> bool:
    return _trend(det) == flag_text.TREND_UP


@dataclass(frozen=True)
class OrgBaseline:
    """Organisation-wide figures for teams with little history of their own."""

    mean: float | None = None
    sd: float | None = None
    within_sd: float | None = None
    between_sd: float | None = None

    def detect(self, points: Sequence[CyclePoint]) -> Detection:
        return detect_deterioration(
            points,
            org_mean=self.mean,
            org_sd=self.sd,
            org_within_sd=self.within_sd,
            org_between_sd=self.between_sd,
        )

    def detect_many(self, histories: Sequence[Sequence[CyclePoint]]) -> list[Detection]:
        return detect_deterioration_batch(
            histories,
            org_mean=self.mean,
            org_sd=self.sd,
            org_within_sd=self.within_sd,
            org_between_sd=self.between_sd,
        )


# --- Rules ----------------------------------------------------------------------------------


def _evaluate_high_stress(stress: _Series, settings: FlagSettings) -> Evaluation:
    level, consecutive = settings.high_stress_level, settings.high_stress_consecutive
    latest = stress.latest
    if latest is None:
        return Evaluation(NO_DATA)
    if high_level(stress.indices, threshold=level, consecutive=consecutive):
        severity = Flag.Severity.CRITICAL if latest >= level + 15 else Flag.Severity.WARNING
        return Evaluation(
            FIRING,
            severity=severity,
            actions=["wellness_check", "workload_review", "support_resources", "next_checkin"],
            evidence={
                "dimension": "stress",
                "statistic": _r(latest, 1),
                "threshold": level,
                "consecutive_cycles": consecutive,
                "cycles": stress.published(),
            },
        )
    return Evaluation(ELEVATED if latest > level else IN_CONTROL_STATE)


def _evaluate_rising_stress(
    stress: _Series, org: OrgBaseline, det: Detection | None = None
) -> tuple[Evaluation, Detection]:
    """``det``: the stress detection of ``stress`` when the caller has it already."""
    if det is None:
        det = org.detect(stress.points)
    if stress.latest is None or det.status == NOT_ENOUGH_DATA:
        return Evaluation(NO_DATA), det
    if det.status != SIGNAL:
        return Evaluation(IN_CONTROL_STATE if det.status == IN_CONTROL else NO_DATA), det
    severity = (
        Flag.Severity.CRITICAL
        if det.shifted_cycles >= 4
        else Flag.Severity.WARNING
        if det.shifted_cycles >= 2
        else Flag.Severity.WATCH
    )
    return (
        Evaluation(
            FIRING,
            severity=severity,
            actions=["wellness_check", "workload_review", "recovery", "next_checkin"],
            evidence={
                "dimension": "stress",
                **_detection_evidence(det),
                "cycles": stress.published(),
            },
        ),
        det,
    )


def _evaluate_empathy_risk(
    stress: _Series,
    stress_det: Detection,
    burnout: _Series,
    org: OrgBaseline,
    settings: FlagSettings,
    burnout_det: Detection | None = None,
) -> Evaluation:
    """The empathy-risk rule; a firing evaluation cites no customer evidence yet
    (``_with_customer_evidence``)."""
    if stress.latest is None or stress_det.status == NOT_ENOUGH_DATA:
        return Evaluation(NO_DATA)
    if burnout_det is None:
        burnout_det = org.detect(burnout.points)
    stress_signal = stress_det.status == SIGNAL
    stress_rising = stress_signal or _trend_up(stress_det)
    burnout_signal = burnout_det.status == SIGNAL
    burnout_latest = burnout.latest
    burnout_high = burnout_latest is not None and burnout_latest >= settings.client_burnout_level
    burnout_rising = burnout_signal or _trend_up(burnout_det)
    if not (stress_rising and (burnout_rising or burnout_high)):
        return Evaluation(ELEVATED if stress_rising else IN_CONTROL_STATE)
    if stress_signal and burnout_signal:
        severity = Flag.Severity.CRITICAL
    elif stress_signal or burnout_signal:
        severity = Flag.Severity.WARNING
    else:
        severity = Flag.Severity.WATCH
    return Evaluation(
        FIRING,
        severity=severity,
        actions=[
            "wellness_check",
            "workload_review",
            "support_resources",
            "peer_support",
            "next_checkin",
        ],
        evidence={
            "dimension": "stress",
            **_detection_evidence(stress_det),
            "cycles": stress.published(),
            "client_burnout": {
                **_detection_evidence(burnout_det),
                "latest": _r(burnout_latest, 1),
                "rising": burnout_rising,
                "high_level": settings.client_burnout_level,
                "cycles": burnout.published(),
            },
        },
    )


def _with_customer_evidence(evaluation: Evaluation, customer: dict[str, Any] | None) -> Evaluation:
    """A firing empathy-risk evaluation citing the team's worsening customer metric, if any, as
    supporting evidence (it never fires the flag)."""
    if evaluation.status != FIRING:
        return evaluation
    return replace(
        evaluation,
        evidence={**evaluation.evidence, **({"customer": customer} if customer else {})},
    )


def _evaluate_participation(periods: list[date], rates: list[float | None]) -> Evaluation:
    if not rates or rates[-1] is None:
        return Evaluation(NO_DATA)
    det = participation_drop(rates)
    if det.status == NOT_ENOUGH_DATA:
        return Evaluation(NO_DATA)
    if det.status != SIGNAL:
        return Evaluation(IN_CONTROL_STATE)
    cycles = [
        {"period_start": d.isoformat(), "rate": round(r, 3)}
        for d, r in zip(periods, rates, strict=True)
        if r is not None
    ][-EVIDENCE_CYCLES:]
    return Evaluation(
        FIRING,
        severity=Flag.Severity.WARNING if det.shifted_cycles >= 2 else Flag.Severity.WATCH,
        actions=["participation", "wellness_check", "next_checkin"],
        evidence={
            "dimension": "participation",
            **_detection_evidence(det),
            "latest_rate": round(rates[-1], 3),
            "usual_rate": _r(det.baseline_mean, 3),
            "cycles": cycles,
        },
    )


# --- The cycle-close entry point ------------------------------------------------------------


@dataclass
class _Context:
    result: CycleResult
    tree: TeamTree
    settings: FlagSettings
    leads: dict[int, set[int]]
    admins: list[int]
    now: Any


def _history_columns_orm(
    result_ids: Sequence[int], dimensions: Sequence[str]
) -> tuple[dict[str, NDArray[Any]], dict[str, NDArray[Any]]]:
    """The window's team/subtree rows as columns (aggregates of ``dimensions``, participation)."""
    aggregate_rows = TeamAggregate.objects.filter(
        result_id__in=list(result_ids),
        dimension__in=list(dimensions),
        scope__in=[Scope.TEAM, Scope.SUBTREE],
        team__isnull=False,
    ).values_list("result_id", "team_id", "scope", "dimension", "published", "n", "index", "sd")
    participation_rows = TeamParticipation.objects.filter(
        result_id__in=list(result_ids),
        scope__in=[Scope.TEAM, Scope.SUBTREE],
        team__isnull=False,
    ).values_list("result_id", "team_id", "scope", "published", "rate")
    return columns_of_rows(list(aggregate_rows), list(participation_rows), dimensions)


def columns_of_rows(
    aggregate_rows: Sequence[Sequence[Any]],
    participation_rows: Sequence[Sequence[Any]],
    dimensions: Sequence[str],
) -> Columns:
    """Window columns of team/subtree rows given as values: aggregates as (result, team, scope,
    dimension, published, n, index, sd), participation as (result, team, scope, published,
    rate), None where a figure is not published."""
    code = {dimension: d for d, dimension in enumerate(dimensions)}
    nan = math.nan
    agg = {
        "result": np.array([r[0] for r in aggregate_rows], dtype=np.int64),
        "team": np.array([r[1] for r in aggregate_rows], dtype=np.int64),
        "subtree": np.array([r[2] == Scope.SUBTREE for r in aggregate_rows], dtype=bool),
        "dim": np.array([code[r[3]] for r in aggregate_rows], dtype=np.int64),
        "published": np.array([bool(r[4]) for r in aggregate_rows], dtype=bool),
        "n": np.array([r[5] or 0 for r in aggregate_rows], dtype=np.float64),
        "index": np.array([nan if r[6] is None else r[6] for r in aggregate_rows], dtype=float),
        "sd": np.array([nan if r[7] is None else r[7] for r in aggregate_rows], dtype=float),
    }
    part = {
        "result": np.array([r[0] for r in participation_rows], dtype=np.int64),
        "team": np.array([r[1] for r in participation_rows], dtype=np.int64),
        "subtree": np.array([r[2] == Scope.SUBTREE for r in participation_rows], dtype=bool),
        "published": np.array([bool(r[3]) for r in participation_rows], dtype=bool),
        "rate": np.array([nan if r[4] is None else r[4] for r in participation_rows], dtype=float),
    }
    return agg, part


_AGGREGATE_RECORD = np.dtype(
    [("result", ">i8"), ("team", ">i8"), ("code", ">i2"), ("n", ">i8"), ("index", ">f8"),
     ("sd", ">f8")]
)  # fmt: skip
_PARTICIPATION_RECORD = np.dtype(
    [("result", ">i8"), ("team", ">i8"), ("code", ">i2"), ("rate", ">f8")]
)  # fmt: skip


DETECTION_DIMENSIONS = ("stress", "client_burnout")  # the window's, in their stored codes


def _packed_aggregate_rows(
    dimensions: Sequence[str], where: psycopg_sql.Composable
) -> psycopg_sql.Composable:
    """The team/subtree aggregate rows of ``dimensions`` matching ``where``, one ``packed``
    value each in the ``_AGGREGATE_RECORD`` layout (the code: bit 0 subtree, bit 1 published,
    the dimension's position above)."""
    dimension_code = psycopg_sql.SQL(" ").join(
        psycopg_sql.SQL("WHEN {} THEN {}").format(
            psycopg_sql.Literal(d), psycopg_sql.Literal(4 * i)
        )
        for i, d in enumerate(dimensions)
    )
    return psycopg_sql.SQL(
        "SELECT int8send(result_id::int8) || int8send(team_id::int8) || int2send(("
        "(CASE WHEN scope = 'subtree' THEN 1 ELSE 0 END)"
        " + (CASE WHEN published THEN 2 ELSE 0 END)"
        " + (CASE dimension {codes} END))::int2) || int8send(coalesce(n, 0)::int8)"
        " || float8send(coalesce(index, 'NaN')::float8)"
        " || float8send(coalesce(sd, 'NaN')::float8) AS packed "
        "FROM {table} WHERE {where} AND dimension IN ({names}) "
        "AND scope IN ('team', 'subtree') AND team_id IS NOT NULL"
    ).format(
        codes=dimension_code,
        table=psycopg_sql.Identifier(TeamAggregate._meta.db_table),
        where=where,
        names=psycopg_sql.SQL(", ").join(psycopg_sql.Literal(d) for d in dimensions),
    )


def _packed_participation_rows(where: psycopg_sql.Composable) -> psycopg_sql.Composable:
    """The team/subtree participation rows matching ``where`` (``_PARTICIPATION_RECORD``)."""
    return psycopg_sql.SQL(
        "SELECT int8send(result_id::int8) || int8send(team_id::int8) || int2send(("
        "(CASE WHEN scope = 'subtree' THEN 1 ELSE 0 END)"
        " + (CASE WHEN published THEN 2 ELSE 0 END))::int2)"
        " || float8send(coalesce(rate, 'NaN')::float8) AS packed "
        "FROM {table} WHERE {where} AND scope IN ('team', 'subtree') AND team_id IS NOT NULL"
    ).format(table=psycopg_sql.Identifier(TeamParticipation._meta.db_table), where=where)


def detection_columns_store(result_ids: Sequence[int]) -> None:
    """Pack each result's window rows into its ``DetectionColumns`` (replacing any), in the
    caller's transaction; nothing off PostgreSQL."""
    if connection.vendor != "postgresql" or not result_ids:
        return
    each = psycopg_sql.SQL("result_id = r.id")
    statement = psycopg_sql.SQL(
        "INSERT INTO {columns} (result_id, aggregates, participation) SELECT r.id, "
        "(SELECT coalesce(string_agg(packed, ''::bytea), ''::bytea) FROM ({aggregates}) a), "
        "(SELECT coalesce(string_agg(packed, ''::bytea), ''::bytea) FROM ({participation}) p) "
        "FROM {results} r WHERE r.id = ANY(%s) ON CONFLICT (result_id) DO UPDATE SET "
        "aggregates = excluded.aggregates, participation = excluded.participation"
    ).format(
        columns=psycopg_sql.Identifier(DetectionColumns._meta.db_table),
        aggregates=_packed_aggregate_rows(DETECTION_DIMENSIONS, each),
        participation=_packed_participation_rows(each),
        results=psycopg_sql.Identifier(CycleResult._meta.db_table),
    )
    connection.ensure_connection()
    with psycopg.Cursor(connection.connection) as cursor:
        cursor.execute(statement, [[int(r) for r in result_ids]])


def detection_columns_of(result_id: int, columns: Columns) -> None:
    """Store a result's ``DetectionColumns`` (replacing any) packed from its window columns as
    ``columns_of_rows`` gives them (``DETECTION_DIMENSIONS``), the values
    ``detection_columns_store`` packs from its stored rows: for the close, which has them in
    hand, so PostgreSQL need not read back what it has just been given.  In the caller's
    transaction; nothing off PostgreSQL."""
    if connection.vendor != "postgresql":
        return
    agg, part = columns
    aggregates = np.empty(agg["team"].size, dtype=_AGGREGATE_RECORD)
    aggregates["result"] = agg["result"]
    aggregates["team"] = agg["team"]
    aggregates["code"] = agg["subtree"] + 2 * agg["published"] + 4 * agg["dim"]
    aggregates["n"] = agg["n"]
    aggregates["index"] = agg["index"]
    aggregates["sd"] = agg["sd"]
    participation = np.empty(part["team"].size, dtype=_PARTICIPATION_RECORD)
    participation["result"] = part["result"]
    participation["team"] = part["team"]
    participation["code"] = part["subtree"] + 2 * part["published"]
    participation["rate"] = part["rate"]
    if not (
        (agg["result"] == result_id).all()
        and (part["result"] == result_id).all()
        and (aggregates["n"] == agg["n"]).all()
    ):
        raise ValueError("columns of another result, or a count that is not a whole number")
    connection.ensure_connection()
    with psycopg.Cursor(connection.connection) as cursor:
        cursor.execute(
            psycopg_sql.SQL(
                "INSERT INTO {} (result_id, aggregates, participation) VALUES (%s, %b, %b) "
                "ON CONFLICT (result_id) DO UPDATE SET aggregates = excluded.aggregates, "
                "participation = excluded.participation"
            ).format(psycopg_sql.Identifier(DetectionColumns._meta.db_table)),
            [result_id, aggregates.tobytes(), participation.tobytes()],
        )


def _history_columns_copy(
    result_ids: Sequence[int], dimensions: Sequence[str]
) -> tuple[dict[str, NDArray[Any]], dict[str, NDArray[Any]]]:
    """``_history_columns_orm`` packed by PostgreSQL (``wellbeing.packed``): the results'
    ``DetectionColumns`` where they have them, the rows of the others."""
    if not result_ids:
        return _history_columns_orm(result_ids, dimensions)
    stored: list[int] = []
    if tuple(dimensions) == DETECTION_DIMENSIONS:
        stored = list(
            DetectionColumns.objects.filter(result_id__in=list(result_ids)).values_list(
                "result_id", flat=True
            )
        )
    rest = sorted(set(result_ids) - set(stored))
    aggregates_parts: list[NDArray[Any]] = []
    participation_parts: list[NDArray[Any]] = []
    if stored:
        columns = psycopg_sql.Identifier(DetectionColumns._meta.db_table)
        for column, dtype, parts in (
            ("aggregates", _AGGREGATE_RECORD, aggregates_parts),
            ("participation", _PARTICIPATION_RECORD, participation_parts),
        ):
            query = psycopg_sql.SQL("SELECT {} AS packed FROM {} WHERE result_id = ANY(%s)")
            parts.append(
                packed_values(
                    query.format(psycopg_sql.Identifier(column), columns), [stored], dtype
                )
            )
    if rest:
        ids = psycopg_sql.SQL(", ").join(psycopg_sql.Literal(int(r)) for r in rest)
        where = psycopg_sql.SQL("result_id IN ({})").format(ids)
        aggregates_parts.append(
            packed_records(_packed_aggregate_rows(dimensions, where), None, _AGGREGATE_RECORD)
        )
        participation_parts.append(
            packed_records(_packed_participation_rows(where), None, _PARTICIPATION_RECORD)
        )
    aggregates = np.concatenate(aggregates_parts)
    participation = np.concatenate(participation_parts)
    code = aggregates["code"].astype(np.int64)
    agg = {
        "result": aggregates["result"].astype(np.int64),
        "team": aggregates["team"].astype(np.int64),
        "subtree": (code & 1).astype(bool),
        "published": (code & 2).astype(bool),
        "dim": code >> 2,
        "n": aggregates["n"].astype(np.float64),
        "index": aggregates["index"].astype(np.float64),
        "sd": aggregates["sd"].astype(np.float64),
    }
    pcode = participation["code"].astype(np.int64)
    part = {
        "result": participation["result"].astype(np.int64),
        "team": participation["team"].astype(np.int64),
        "subtree": (pcode & 1).astype(bool),
        "published": (pcode & 2).astype(bool),
        "rate": participation["rate"].astype(np.float64),
    }
    return agg, part


def history_columns_reader(
    *, binary: bool | None = None
) -> Callable[[Sequence[int], Sequence[str]], Columns]:
    """How the window's columns are read: a binary COPY (``binary``; by default on PostgreSQL)
    or the ORM."""
    if binary is None:
        binary = connection.vendor == "postgresql"
    return _history_columns_copy if binary else _history_columns_orm


class _History:
    """Per dimension, teams x cycles matrices of the primary (subtree before team) rows of the
    window; a team's series is its row with the absent cycles left out."""

    def __init__(self, results: Sequence[CycleResult]) -> None:
        self.results = list(results)
        self.periods = [r.period_start for r in self.results]
        self.column = {r.pk: j for j, r in enumerate(self.results)}
        self.team_ids: NDArray[np.int64] = np.zeros(0, dtype=np.int64)
        self.row: dict[int, int] = {}
        self.dims: dict[str, dict[str, NDArray[Any]]] = {}
        self.rates: dict[str, NDArray[Any]] = {}

    def _rows(self, team_ids: Sequence[int]) -> NDArray[np.int64]:
        return np.searchsorted(self.team_ids, np.asarray(team_ids, dtype=np.int64))

    @classmethod
    def load(
        cls,
        results: Sequence[CycleResult],
        dimensions: Sequence[str],
        *,
        binary: bool | None = None,
        columns: Sequence[Columns] | None = None,
    ) -> _History:
        """The window's rows, read with a binary COPY on PostgreSQL (``binary``), else the ORM;
        or given as ``columns``, in one or more parts (e.g. what was read ahead and the cycle's
        own rows), each placed where it belongs without joining them first."""
        history = cls(results)
        result_ids = sorted(history.column)
        parts = (
            list(columns)
            if columns is not None
            else [history_columns_reader(binary=binary)(result_ids, dimensions)]
        )
        teams = sorted_unique(
            np.concatenate([rows["team"] for part in parts for rows in part]).astype(np.int64)
        )
        history.team_ids = teams
        history.row = {int(t): i for i, t in enumerate(teams)}
        shape = (len(teams), len(history.results))
        sorted_ids = np.array(result_ids, dtype=np.int64)
        column_of = np.array([history.column[r] for r in result_ids], dtype=np.int64)

        def cells(rows: dict[str, NDArray[Any]]) -> NDArray[np.int64]:
            """Each row's cell in a flattened teams x cycles matrix."""
            i = positions(teams, rows["team"])
            return i * shape[1] + column_of[positions(sorted_ids, rows["result"])]

        placed = [
            (
                agg,
                cells(agg),
                np.where(agg["published"], agg["index"], np.nan),
                np.where(agg["published"], agg["sd"], np.nan),
            )
            for agg, _ in parts
        ]
        for d, dimension in enumerate(dimensions):
            m = {
                "present": np.zeros(shape, dtype=bool),
                "published": np.zeros(shape, dtype=bool),
                "index": np.full(shape, np.nan),
                "n": np.zeros(shape),
                "sd": np.full(shape, np.nan),
                "subtree": np.zeros(shape, dtype=bool),
            }
            flat = {name: matrix.reshape(-1) for name, matrix in m.items()}
            of_dimension = [agg["dim"] == d for agg, _, _, _ in placed]
            # team rows first, then subtree rows: the subtree row is the team's headline row
            for subtree in (False, True):
                for (agg, agg_cells, index, sd), mine in zip(placed, of_dimension, strict=True):
                    selected = np.flatnonzero(mine & (agg["subtree"] == subtree))
                    at = agg_cells[selected]
                    flat["present"][at] = True
                    flat["subtree"][at] = subtree
                    flat["published"][at] = agg["published"][selected]
                    flat["n"][at] = agg["n"][selected]
                    flat["index"][at] = index[selected]
                    flat["sd"][at] = sd[selected]
            history.dims[dimension] = m
        r = {
            "present": np.zeros(shape, dtype=bool),
            "rate": np.full(shape, np.nan),
            "subtree": np.zeros(shape, dtype=bool),
        }
        flat = {name: matrix.reshape(-1) for name, matrix in r.items()}
        rates = [
            (part, cells(part), np.where(part["published"], part["rate"], np.nan))
            for _, part in parts
        ]
        for subtree in (False, True):
            for part, part_cells, rate in rates:
                selected = np.flatnonzero(part["subtree"] == subtree)
                at = part_cells[selected]
                flat["present"][at] = True
                flat["subtree"][at] = subtree
                flat["rate"][at] = rate[selected]
        history.rates = r
        return history

    def detector_arrays(
        self, dimension: str
    ) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]]:
        """x, n, s as ``detect_deterioration`` reads a team's points (NaN = not usable)."""
        m = self.dims[dimension]
        n = np.where(m["present"] & (m["n"] > 0), m["n"], np.nan)
        x = np.where(np.isfinite(n), m["index"], np.nan)
        s = np.where(m["sd"] >= 0, m["sd"], np.nan)
        return x, n, s

    def series(self, team_id: int, dimension: str) -> _Series:
        m = self.dims[dimension]
        i = self.row.get(team_id)
        periods: list[date] = []
        points: list[CyclePoint] = []
        if i is None:
            return _Series(periods, points)
        columns = np.flatnonzero(m["present"][i])
        # the row's cells as Python values at once (indexing numpy cell by cell is slow)
        for j, published, index, n, sd in zip(
            columns.tolist(),
            m["published"][i, columns].tolist(),
            m["index"][i, columns].tolist(),
            m["n"][i, columns].tolist(),
            m["sd"][i, columns].tolist(),
            strict=True,
        ):
            periods.append(self.periods[j])
            points.append(
                CyclePoint(
                    index=index if published and not math.isnan(index) else None,
                    n=int(n),
                    sd=sd if published and not math.isnan(sd) else None,
                )
            )
        return _Series(periods, points)

    def participation(self, team_id: int) -> tuple[list[date], list[float | None]]:
        i = self.row.get(team_id)
        if i is None:
            return [], []
        columns = np.flatnonzero(self.rates["present"][i])
        rates = [float(v) for v in self.rates["rate"][i, columns]]
        return (
            [self.periods[j] for j in columns],
            [None if math.isnan(v) else v for v in rates],
        )

    def org_baseline(self, dimension: str, latest_result_id: int) -> OrgBaseline:
        """The organisation's figures over the window's published primary rows of every team:
        mean and sd of the team indices, the pooled within-team sd, and the between-team sd of
        the latest cycle."""
        m = self.dims[dimension]
        published = m["present"] & m["published"] & np.isfinite(m["index"])
        if int(published.sum()) < 2:
            return OrgBaseline()
        indices = m["index"][published]
        mean = float(indices.mean())
        sd = float(indices.std(ddof=1))
        sds = m["sd"][published & np.isfinite(m["sd"])]
        within = float(np.sqrt(np.mean(sds * sds))) if sds.size else None
        between = None
        j = self.column.get(latest_result_id)
        last = published[:, j] if j is not None else np.zeros(len(self.team_ids), dtype=bool)
        if within is not None and j is not None and int(last.sum()) >= 2:
            between = math.sqrt(between_team_variance(m["index"][last, j], m["n"][last, j], within))
        return OrgBaseline(mean=mean, sd=sd, within_sd=within, between_sd=between)


def _screen(
    history: _History,
    team_ids: Sequence[int],
    *,
    tree: TeamTree,
    settings: FlagSettings,
    baselines: dict[str, OrgBaseline],
) -> Screened:
    """Per rule, the teams among ``team_ids`` it may fire for (all of them vectorised)."""
    if not team_ids:
        return Screened.every(())
    rows = history._rows(team_ids)
    ids = np.asarray(team_ids, dtype=np.int64)

    detector_arrays = cache(history.detector_arrays)  # once per dimension for the screen

    def may_signal(
        dimension: str, at: NDArray[np.int64]
    ) -> tuple[NDArray[np.bool_], NDArray[np.bool_]]:
        x, n, s = detector_arrays(dimension)
        org = baselines[dimension]
        return deterioration_may_signal(
            x[at],
            n[at],
            s[at],
            org_mean=org.mean,
            org_sd=org.sd,
            org_within_sd=org.within_sd,
            org_between_sd=org.between_sd,
        )

    stress = history.dims["stress"]
    stress_signal, stress_enough = may_signal("stress", rows)
    high = high_level_may_fire(
        stress["index"][rows],
        threshold=settings.high_stress_level,
        consecutive=settings.high_stress_consecutive,
    )
    drop = participation_may_drop(history.rates["rate"][rows])
    empathy = np.zeros(len(ids), dtype=bool)
    customer = np.array([tree.teams[int(t)].customer_facing for t in ids], dtype=bool)
    if customer.any():
        # the empathy rule concerns customer-facing teams only: its figures for their rows
        facing = rows[customer]
        x_stress = detector_arrays("stress")[0][facing]
        stress_rising = stress_signal[customer] | trend_may_rise(x_stress)
        burnout = history.dims["client_burnout"]
        burnout_signal, _ = may_signal("client_burnout", facing)
        x_burnout = detector_arrays("client_burnout")[0][facing]
        burnout_rising = burnout_signal | trend_may_rise(x_burnout)
        # the latest burnout figure is the last present row's (None when not published)
        present = burnout["present"][facing]
        has = present.any(axis=1)
        last = present.shape[1] - 1 - np.argmax(present[:, ::-1], axis=1)
        latest = np.where(has, burnout["index"][facing, last], np.nan)
        level = float(settings.client_burnout_level)
        with np.errstate(invalid="ignore"):
            burnout_high = np.isfinite(latest) & (latest >= level - 1e-7 * (1.0 + abs(level)))
        empathy[customer] = (
            stress_enough[customer] & stress_rising & (burnout_rising | burnout_high)
        )
    return Screened(
        {
            Flag.Kind.HIGH_STRESS: {int(t) for t in ids[high]},
            Flag.Kind.RISING_STRESS: {int(t) for t in ids[stress_signal]},
            Flag.Kind.EMPATHY_RISK: {int(t) for t in ids[empathy]},
            Flag.Kind.PARTICIPATION_DROP: {int(t) for t in ids[drop]},
        }
    )


@dataclass(frozen=True)
class Screened:
    """What ``_screen`` lets through: per rule (a flag kind), the teams it may fire for."""

    rules: dict[str, set[int]]

    @classmethod
    def every(cls, team_ids: Iterable[int]) -> Screened:
        """Every rule for every team in ``team_ids``: what evaluating without a screen does."""
        teams = set(team_ids)
        return cls({kind: set(teams) for kind in Flag.Kind.values})

    @property
    def teams(self) -> set[int]:
        """The teams some rule may fire for."""
        return set().union(*self.rules.values())


# The rules that read a team's stress chart (the empathy rule, client burnout's too).
_CHARTED_RULES = frozenset({Flag.Kind.RISING_STRESS, Flag.Kind.EMPATHY_RISK})


@dataclass
class FlagStep:
    """One cycle's flag step: detection for every team in the result, and flags moved through
    their life cycle.  ``prepare`` and ``read_window`` read what the rules need; ``compute``
    screens the rules for every team at once (numpy over teams x cycles), runs the detectors of
    the teams to evaluate and evaluates their rules one team at a time (with their evidence),
    without touching the database; ``write`` adds the customer evidence an empathy flag cites
    and moves their flags.

    A team's rule is evaluated only when it may fire for the team or the team already has a
    flag of that rule the cycle may move -- without a flag to move, a rule that cannot fire
    changes nothing; so a team whose only screened rule is participation, say, is not charted
    for stress at all.  Each team is evaluated on its own and written in its own savepoint: a
    failure is logged (team id and error type only) and the other teams carry on; a failure of
    the screening sends every rule of every team down that path.
    The close computes on a thread while it builds and copies the aggregate rows, so it gives
    the result's own rows as values (``current``) rather than reading them back."""

    result: CycleResult
    tree: TeamTree
    settings: FlagSettings
    results: list[CycleResult]
    newer: set[int]
    movable: list[Flag]
    reads: CloseReads | None = None
    columns: Columns | None = None
    current: Columns | None = None
    history: _History | None = None
    evaluate: list[int] = field(default_factory=list)
    rules: dict[int, set[str]] = field(default_factory=dict)  # per team evaluated: its rules
    flags: dict[tuple[int, str], Flag] = field(default_factory=dict)
    baselines: dict[str, OrgBaseline] = field(default_factory=dict)
    series: dict[tuple[int, str], _Series] = field(default_factory=dict)
    detections: dict[tuple[int, str], Detection] = field(default_factory=dict)
    evaluations: dict[int, dict[str, Evaluation]] = field(default_factory=dict)

    @classmethod
    def prepare(
        cls,
        *,
        result: CycleResult,
        tree: TeamTree | None = None,
        reads: CloseReads | None = None,
    ) -> FlagStep:
        """The window's rows are read by ``read_window``: give the result's own team and
        subtree rows of ``DETECTION_DIMENSIONS`` as ``current`` (columns as
        ``columns_of_rows`` gives them) before it, when they are not readable yet."""
        organisation = result.organisation
        results = list(
            CycleResult.objects.filter(
                organisation=organisation, period_start__lte=result.period_start
            ).order_by("-period_start", "-closed_at")[:HISTORY_CYCLES]
        )
        results.reverse()
        # Figures stored later than this cycle (a past cycle recomputed or closed late): the
        # flags already moved on for those teams.  A weekly close has none: the results are
        # looked up first, and their figures only when there are some.
        later = list(
            CycleResult.objects.filter(
                organisation=organisation, period_start__gt=result.period_start
            ).values_list("pk", flat=True)
        )
        newer = (
            set(
                TeamAggregate.objects.filter(result_id__in=later)
                .values_list("team_id", flat=True)
                .distinct()
            )
            if later
            else set()
        )
        settings = settings_for(organisation)
        reopen_after = result.closed_at - timedelta(days=settings.reopen_within_days)
        # The organisation's flags this cycle can move: live, resolved recently (re-opened
        # rather than duplicated), or dismissed and still muting their rule (until the team has
        # been back in control once).  Picked by state, not by a list of thousands of team ids.
        movable = (
            Q(state__in=Flag.ACTIVE_STATES)
            | Q(state=Flag.State.RESOLVED, resolved_at__gte=reopen_after)
            | Q(state=Flag.State.DISMISSED, in_control_streak=0)
        )
        return cls(
            result=result,
            tree=tree or team_tree(organisation=organisation),
            settings=settings,
            results=results,
            reads=reads,
            newer=newer,
            movable=list(
                Flag.objects.filter(movable, organisation=organisation).order_by("opened_at", "pk")
            ),
        )

    def read_window(self) -> None:
        """Read the window's rows (but the result's own when they are given as ``current``)."""
        read = self.reads.history_columns if self.reads else history_columns_reader()
        ids = [r.pk for r in self.results if self.current is None or r.pk != self.result.pk]
        self.columns = read(sorted(ids), DETECTION_DIMENSIONS)

    def compute(self) -> None:
        """The screen and the detections (after ``read_window``); no database access."""
        result, tree = self.result, self.tree
        if self.columns is None:
            raise RuntimeError("the window was not read")
        parts = [self.columns]
        if self.current is not None:
            parts.append(self.current)
        history = self.history = _History.load(self.results, DETECTION_DIMENSIONS, columns=parts)
        column = history.column.get(result.pk)
        current_teams: list[int] = []
        if column is not None and len(history.team_ids):
            present_now = np.zeros(len(history.team_ids), dtype=bool)
            for m in history.dims.values():
                present_now |= m["present"][:, column]
            current_teams = [int(t) for t in history.team_ids[present_now]]
        self.baselines = {
            dimension: history.org_baseline(dimension, result.pk)
            for dimension in ("stress", "client_burnout")
        }
        in_cycle = set(current_teams)
        for flag in self.movable:
            if flag.team_id in in_cycle:
                self.flags[(flag.team_id, flag.kind)] = flag  # ascending: the newest wins
        candidates = [t for t in current_teams if t not in self.newer and t in tree.teams]
        try:
            screened = _screen(
                history, candidates, tree=tree, settings=self.settings, baselines=self.baselines
            )
        except Exception as exc:
            logger.error(
                "event=flag_screening status=failed result_id=%s error=%s",
                result.pk,
                type(exc).__name__,
            )
            screened = Screened.every(candidates)
        rules: dict[int, set[str]] = defaultdict(set)
        for team_id, kind in self.flags:
            rules[team_id].add(kind)
        for kind, teams in screened.rules.items():
            for team_id in teams:
                rules[team_id].add(kind)
        self.evaluate = [t for t in candidates if rules.get(t)]
        self.rules = {t: rules[t] for t in self.evaluate}
        # the stress chart for the rules that read it; client burnout's for the empathy rule
        stress = [t for t in self.evaluate if self.rules[t] & _CHARTED_RULES]
        burnout = [
            t
            for t in self.evaluate
            if Flag.Kind.EMPATHY_RISK in self.rules[t] and tree.teams[t].customer_facing
        ]
        if stress:
            self.series, self.detections = _detections_batch(
                history, stress, burnout, baselines=self.baselines, result=result
            )
        self._evaluate()

    def _evaluate(self) -> None:
        """Every rule of each team ``compute`` chose, from the window alone (no database): the
        customer evidence an empathy flag cites is added by ``write``.  A team whose evaluation
        fails is logged and left out."""
        history, baselines, detections, tree = (
            self.history, self.baselines, self.detections, self.tree
        )  # fmt: skip
        assert history is not None

        def series_of(team_id: int, dimension: str) -> _Series:
            found = self.series.get((team_id, dimension))
            return found if found is not None else history.series(team_id, dimension)

        for team_id in self.evaluate:
            rules = self.rules[team_id]
            evaluations: dict[str, Evaluation] = {}
            try:
                if rules - {Flag.Kind.PARTICIPATION_DROP}:
                    stress = series_of(team_id, "stress")
                if Flag.Kind.HIGH_STRESS in rules:
                    evaluations[Flag.Kind.HIGH_STRESS] = _evaluate_high_stress(
                        stress, self.settings
                    )
                if rules & _CHARTED_RULES:
                    rising, stress_det = _evaluate_rising_stress(
                        stress, baselines["stress"], detections.get((team_id, "stress"))
                    )
                if Flag.Kind.RISING_STRESS in rules:
                    evaluations[Flag.Kind.RISING_STRESS] = rising
                if Flag.Kind.EMPATHY_RISK in rules and tree.teams[team_id].customer_facing:
                    evaluations[Flag.Kind.EMPATHY_RISK] = _evaluate_empathy_risk(
                        stress,
                        stress_det,
                        series_of(team_id, "client_burnout"),
                        baselines["client_burnout"],
                        self.settings,
                        burnout_det=detections.get((team_id, "client_burnout")),
                    )
                if Flag.Kind.PARTICIPATION_DROP in rules:
                    periods, rates = history.participation(team_id)
                    evaluations[Flag.Kind.PARTICIPATION_DROP] = _evaluate_participation(
                        periods, rates
                    )
            except Exception as exc:
                _log_team_failure(self.result, team_id, exc)
                continue
            self.evaluations[team_id] = evaluations

    def write(self) -> list[FlagChange]:
        """Move the flags of the teams ``compute`` evaluated; the changes to alert."""
        if not self.evaluations:
            return []
        result, tree = self.result, self.tree
        organisation = result.organisation
        # Customer evidence is cited by a firing empathy flag only: only those teams' is read.
        citing = [
            team_id
            for team_id, evaluations in self.evaluations.items()
            if (empathy := evaluations.get(Flag.Kind.EMPATHY_RISK)) and empathy.status == FIRING
        ]
        customer = customer_evidence(team_ids=citing, until=result.period_start)
        # Alerts go to the leads of an evaluated team and of its ancestors: only theirs are read.
        alerted = {a for t in self.evaluations for a in (t, *tree.ancestors(t))}
        leads: dict[int, set[int]] = defaultdict(set)
        for team_id, user_id in TeamLead.objects.filter(
            team__organisation=organisation, team_id__in=sorted(alerted), user__is_active=True
        ).values_list("team_id", "user_id"):
            leads[team_id].add(user_id)
        admins = list(
            User.objects.filter(organisation=organisation, is_org_admin=True, is_active=True)
            .order_by("pk")
            .values_list("pk", flat=True)
        )
        ctx = _Context(result, tree, self.settings, leads, admins, timezone.now())
        planned: dict[int, _TeamWrites] = {}
        for team_id, evaluations in self.evaluations.items():
            writes = _TeamWrites()
            try:
                for kind, evaluation in evaluations.items():
                    if kind == Flag.Kind.EMPATHY_RISK:
                        evaluation = _with_customer_evidence(evaluation, customer.get(team_id))
                    _flag_apply(
                        ctx=ctx,
                        writes=writes,
                        team_id=team_id,
                        kind=kind,
                        evaluation=evaluation,
                        current=self.flags.get((team_id, kind)),
                    )
            except Exception as exc:
                _log_team_failure(result, team_id, exc)
                continue
            planned[team_id] = writes
        return _flags_write(ctx, planned)


def _detections_batch(
    history: _History,
    team_ids: Sequence[int],
    customer_facing: Sequence[int],
    *,
    baselines: dict[str, OrgBaseline],
    result: CycleResult,
) -> tuple[dict[tuple[int, str], _Series], dict[tuple[int, str], Detection]]:
    """The series and detections the rules need, per (team, dimension): stress for every team in
    ``team_ids``, client burnout for those in ``customer_facing``, each dimension's charts in
    one batch.  Both empty if that fails (logged): each team then reads and detects on its own,
    in its own ``try``, so one team's bad history cannot stop the others."""
    series: dict[tuple[int, str], _Series] = {}
    detections: dict[tuple[int, str], Detection] = {}
    try:
        for dimension, teams in (("stress", team_ids), ("client_burnout", customer_facing)):
            keys = [(t, dimension) for t in teams]
            series.update((key, history.series(*key)) for key in keys)
            found = baselines[dimension].detect_many([series[k].points for k in keys])
            detections.update(zip(keys, found, strict=True))
    except Exception as exc:
        logger.error(
            "event=flag_detection_batch status=failed result_id=%s error=%s",
            result.pk,
            type(exc).__name__,
        )
        return {}, {}
    return series, detections


def _log_team_failure(result: CycleResult, team_id: int, exc: Exception) -> None:
    logger.error(
        "event=flag_detection status=failed result_id=%s team_id=%s error=%s",
        result.pk,
        team_id,
        type(exc).__name__,
    )


_FLAG_FIELDS = tuple(f.name for f in Flag._meta.concrete_fields if not f.primary_key)


@dataclass
class _TeamWrites:
    """One team's flag writes, planned while its rules are evaluated (see ``_flags_write``).
    Each event is also the change it announces."""

    inserts: list[Flag] = field(default_factory=list)
    updates: list[tuple[Flag, tuple[str, ...]]] = field(default_factory=list)
    events: list[tuple[Flag, str, str, str]] = field(default_factory=list)  # kind, severity, note

    def save(self, flag: Flag, fields: Sequence[str] = _FLAG_FIELDS) -> None:
        if flag.pk is None:
            self.inserts.append(flag)
        else:
            self.updates.append((flag, tuple(fields)))

    def event(self, flag: Flag, kind: str, *, severity: str, note: str = "") -> None:
        self.events.append((flag, kind, severity, note))


def _write(ctx: _Context, batches: Sequence[_TeamWrites]) -> None:
    instances_copy(Flag, [flag for b in batches for flag in b.inserts])
    by_fields: dict[tuple[str, ...], list[Flag]] = defaultdict(list)
    for b in batches:
        for flag, fields in b.updates:
            by_fields[fields].append(flag)
    for fields, flags in by_fields.items():
        Flag.objects.bulk_update(flags, fields)
    FlagEvent.objects.bulk_create(
        [
            FlagEvent(
                flag_id=flag.pk,
                kind=kind,
                at=ctx.now,
                cycle_period=ctx.result.period_start,
                severity=severity,
                note=note,
            )
            for b in batches
            for flag, kind, severity, note in b.events
        ]
    )


def _flags_write(ctx: _Context, planned: dict[int, _TeamWrites]) -> list[FlagChange]:
    """Every team's planned writes in a few statements; if that fails, team by team, each in
    its own savepoint, so one team's failure (logged) does not stop the others."""
    written = list(planned)
    try:
        with transaction.atomic():
            _write(ctx, list(planned.values()))
    except DatabaseError:
        written = []
        for team_id, writes in planned.items():
            for flag in writes.inserts:  # given an id by the insert that was rolled back
                flag.pk = None
                flag._state.adding = True
            try:
                with transaction.atomic():
                    _write(ctx, [writes])
            except DatabaseError as exc:
                _log_team_failure(ctx.result, team_id, exc)
                continue
            written.append(team_id)
    return [_change(ctx, flag, kind) for t in written for flag, kind, _, _ in planned[t].events]


def _flag_apply(
    *,
    ctx: _Context,
    writes: _TeamWrites,
    team_id: int,
    kind: str,
    evaluation: Evaluation,
    current: Flag | None,
) -> None:
    period = ctx.result.period_start
    if current is not None and current.last_evaluated_period >= period:
        return  # this cycle was already counted for this flag
    if evaluation.status == FIRING:
        _on_firing(
            ctx=ctx, writes=writes, team_id=team_id, kind=kind, ev=evaluation, current=current
        )
        return
    if current is None:
        return
    current.last_evaluated_period = period
    if evaluation.status == NO_DATA:
        writes.save(current, ["last_evaluated_period"])
        return
    if evaluation.status == ELEVATED:
        current.in_control_streak = 0
        writes.save(current, ["last_evaluated_period", "in_control_streak"])
        return
    # back in control
    current.in_control_streak += 1
    if (
        current.state in Flag.ACTIVE_STATES
        and current.in_control_streak >= ctx.settings.resolve_after_cycles
    ):
        current.state = Flag.State.RESOLVED
        current.resolved_at = ctx.result.closed_at
        writes.save(current)
        writes.event(
            current,
            FlagEvent.Kind.RESOLVED,
            severity=current.severity,
            note=f"Back in control for {current.in_control_streak} check-ins.",
        )
        return
    writes.save(current, ["last_evaluated_period", "in_control_streak"])


def _on_firing(
    *,
    ctx: _Context,
    writes: _TeamWrites,
    team_id: int,
    kind: str,
    ev: Evaluation,
    current: Flag | None,
) -> None:
    period = ctx.result.period_start
    actions = [SUGGESTED_ACTIONS[a] for a in ev.actions]

    def refresh(flag: Flag) -> None:
        flag.evidence = ev.evidence
        flag.explanation = flag_text.record(kind, ev.evidence)
        flag.suggested_actions = actions
        flag.last_cycle_period = period
        flag.last_evaluated_period = period
        flag.in_control_streak = 0

    if current is not None and current.state in Flag.ACTIVE_STATES:
        escalated = (
            SEVERITY_RANK[Flag.Severity(ev.severity)]
            > SEVERITY_RANK[Flag.Severity(current.severity)]
        )
        refresh(current)
        if escalated:
            current.severity = ev.severity
        writes.save(current)
        if escalated:
            writes.event(current, FlagEvent.Kind.ESCALATED, severity=ev.severity)
        return

    if current is not None and current.state == Flag.State.DISMISSED:
        if (
            SEVERITY_RANK[Flag.Severity(ev.severity)]
            <= SEVERITY_RANK[Flag.Severity(current.severity)]
        ):
            # still the episode someone dismissed: keep it quiet
            current.last_cycle_period = period
            current.last_evaluated_period = period
            writes.save(current, ["last_cycle_period", "last_evaluated_period"])
            return
        current = None  # worse than what was dismissed: a new flag

    if current is not None and current.state == Flag.State.RESOLVED:
        refresh(current)
        current.state = Flag.State.OPEN
        current.severity = ev.severity
        current.resolved_at = None
        current.acknowledged_by = None
        current.acknowledged_at = None
        writes.save(current)
        writes.event(current, FlagEvent.Kind.REOPENED, severity=ev.severity)
        return

    flag = Flag(
        organisation_id=ctx.result.organisation_id,
        team_id=team_id,
        kind=kind,
        severity=ev.severity,
        state=Flag.State.OPEN,
        opened_at=ctx.result.closed_at,
        first_cycle_period=period,
    )
    refresh(flag)
    writes.save(flag)
    writes.event(flag, FlagEvent.Kind.OPENED, severity=ev.severity)


def flag_recipient_ids(
    *, tree: TeamTree, team_id: int, leads: dict[int, set[int]], admins: Sequence[int]
) -> tuple[int, ...]:
    """Leads of the team and of its ancestors, and the organisation's admins."""
    people: set[int] = set(admins)
    for t in [team_id, *tree.ancestors(team_id)]:
        people |= leads.get(t, set())
    return tuple(sorted(people))


def _change(ctx: _Context, flag: Flag, change: str) -> FlagChange:
    team = ctx.tree.teams[flag.team_id]
    return FlagChange(
        flag_id=flag.pk,
        team_id=flag.team_id,
        kind=flag.kind,
        change=change,
        severity=flag.severity,
        recipient_ids=flag_recipient_ids(
            tree=ctx.tree, team_id=flag.team_id, leads=ctx.leads, admins=ctx.admins
        ),
        context={
            "team_name": team.name,
            "team_public_id": team.public_id,
            "flag_public_id": str(flag.public_id),
            "kind_label": str(Flag.Kind(flag.kind).label),
            "explanation": flag.explanation,
            "explanation_facts": flag_text.facts(flag.kind, flag.evidence),
            "suggested_actions": list(flag.suggested_actions),
            "link_path": f"/dashboards/teams/{team.public_id}/",
        },
        idempotency_key=f"flag:{flag.pk}:{change}:{ctx.result.cycle_key}",
    )


# --- Actions by people ------------------------------------------------------------------------


def _flag_for_action(*, flag: Flag, user: User) -> Flag:
    if not policy.can_view_team(user, flag.team):
        raise ServiceError("not_found", "No such flag.", status=404)
    if not policy.can_act_on_team_flags(user, flag.team):
        raise ServiceError("forbidden", "You may not act on this team's flags.", status=403)
    locked = Flag.objects.select_for_update().get(pk=flag.pk)
    return locked


def flag_acknowledge(
    *, flag: Flag, user: User, action_taken: str, follow_up_on: date | None = None
) -> Flag:
    """A lead (of the team or an ancestor) or an admin records what they are doing about it."""
    action_taken = (action_taken or "").strip()
    if not action_taken:
        raise ServiceError(
            "invalid",
            "Say what you are doing about this flag.",
            fields={"action_taken": ["This field is required."]},
        )
    if len(action_taken) > 2000:
        raise ServiceError(
            "invalid", "That is too long.", fields={"action_taken": ["At most 2000 characters."]}
        )
    with transaction.atomic():
        locked = _flag_for_action(flag=flag, user=user)
        if locked.state != Flag.State.OPEN:
            raise ServiceError("conflict", f"The flag is {locked.state}, not open.", status=409)
        now = timezone.now()
        if follow_up_on is not None and follow_up_on < now.date():
            raise ServiceError(
                "invalid",
                "The follow-up date is in the past.",
                fields={"follow_up_on": ["Choose today or a later date."]},
            )
        locked.state = Flag.State.ACKNOWLEDGED
        locked.acknowledged_by = user
        locked.acknowledged_at = now
        locked.action_taken = action_taken
        locked.follow_up_on = follow_up_on
        locked.save()
        FlagEvent.objects.create(
            flag=locked, kind=FlagEvent.Kind.ACKNOWLEDGED, actor=user, at=now, note=action_taken
        )
        _audit_flag_action(
            locked,
            user,
            "acknowledge",
            {"action_taken": action_taken, "follow_up_on": follow_up_on},
        )
    return locked


def flag_dismiss(*, flag: Flag, user: User, reason: str) -> Flag:
    """Close a flag as not needing action (a known cause, a false alarm), with the reason."""
    reason = (reason or "").strip()
    if not reason:
        raise ServiceError(
            "invalid",
            "Say why this flag needs no action.",
            fields={"reason": ["This field is required."]},
        )
    if len(reason) > 2000:
        raise ServiceError(
            "invalid", "That is too long.", fields={"reason": ["At most 2000 characters."]}
        )
    with transaction.atomic():
        locked = _flag_for_action(flag=flag, user=user)
        if locked.state not in Flag.ACTIVE_STATES:
            raise ServiceError("conflict", f"The flag is already {locked.state}.", status=409)
        now = timezone.now()
        state = locked.state
        locked.state = Flag.State.DISMISSED
        locked.dismissed_by = user
        locked.dismissed_at = now
        locked.dismissed_reason = reason
        locked.in_control_streak = 0
        locked.save()
        FlagEvent.objects.create(
            flag=locked, kind=FlagEvent.Kind.DISMISSED, actor=user, at=now, note=reason
        )
        _audit_flag_action(locked, user, "dismiss", {"reason": reason}, before_state=state)
    return locked


def _audit_flag_action(
    flag: Flag,
    user: User,
    verb: str,
    details: dict[str, Any],
    *,
    before_state: str = Flag.State.OPEN,
) -> None:
    """A person's action on a flag in the organisation's audit log, in the action's transaction
    (the dashboard and the API alike)."""
    from .audit import audit_record

    audit_record(
        organisation=flag.organisation,
        actor=user,
        action=f"flag.{verb}",
        target=flag,
        before={"state": before_state},
        after={"state": flag.state, **details},
    )
