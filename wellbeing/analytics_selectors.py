"""Reads of the stored analytics (aggregates, participation, flags) for dashboards and the API.

Everything here reads the rollup tables written at cycle close (``wellbeing/aggregation.py``),
never raw responses, and is scoped by ``wellbeing.policy.visible_team_ids``.  A suppressed cell is
returned as a gap with no number; nothing here can return a figure from fewer than k people
because such figures are never stored.  Query counts do not grow with teams or cycles.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any, TypeVar

import numpy as np
from django.db import connection
from django.db.models import QuerySet
from numpy.typing import NDArray
from psycopg import sql

from . import policy
from .analytics import DIMENSIONS
from .models import (
    CycleResult,
    Flag,
    Organisation,
    Scope,
    Team,
    TeamAggregate,
    TeamParticipation,
)
from .packed import packed_records
from .policy import AnyUser
from .stats._data import sorted_unique

# --- The team tree as plain data (shared by aggregation and flags) ----------------------------


@dataclass(frozen=True)
class TeamInfo:
    id: int
    parent_id: int | None
    name: str
    public_id: str
    customer_facing: bool
    is_active: bool = True


@dataclass
class TeamTree:
    teams: dict[int, TeamInfo]
    children: dict[int | None, list[int]] = field(default_factory=dict)

    def ancestors(self, team_id: int) -> list[int]:
        """Parent, grandparent, ... (cycle-safe)."""
        found: list[int] = []
        node = self.teams.get(team_id)
        while node is not None and node.parent_id is not None and node.parent_id not in found:
            found.append(node.parent_id)
            node = self.teams.get(node.parent_id)
        return found


def team_tree(*, organisation: Organisation) -> TeamTree:
    """All teams of the organisation in one query."""
    teams: dict[int, TeamInfo] = {}
    children: dict[int | None, list[int]] = defaultdict(list)
    for pk, parent_id, name, public_id, customer_facing, is_active in Team.objects.filter(
        organisation=organisation
    ).values_list("id", "parent_id", "name", "public_id", "customer_facing", "is_active"):
        teams[pk] = TeamInfo(pk, parent_id, name, str(public_id), customer_facing, is_active)
        children[parent_id].append(pk)
    return TeamTree(teams=teams, children=dict(children))


# --- Primary series: a parent team's figure is its subtree, a leaf team's its own ------------

_SCOPE_PRIORITY = {Scope.SUBTREE: 0, Scope.TEAM: 1}


_T = TypeVar("_T")
_K = TypeVar("_K")


def headline(
    items: Iterable[_T], *, key: Callable[[_T], _K], scope: Callable[[_T], str]
) -> dict[_K, _T]:
    """``key`` -> the item of a team's headline scope among ``items``: a parent team's subtree
    before its direct members (organisation-wide rows are not a team's)."""
    chosen: dict[_K, _T] = {}
    for item in items:
        at = key(item)
        current = chosen.get(at)
        if (
            current is None
            or _SCOPE_PRIORITY[Scope(scope(item))] < _SCOPE_PRIORITY[Scope(scope(current))]
        ):
            chosen[at] = item
    return chosen


def primary_rows(rows: Iterable[TeamAggregate]) -> dict[tuple[int, int, str], TeamAggregate]:
    """(result id, team id, dimension) -> the team's headline row (subtree before direct)."""
    return headline(
        rows,
        key=lambda row: (row.result_id, _team_id(row), row.dimension),
        scope=lambda row: row.scope,
    )


def primary_participation(
    rows: Iterable[TeamParticipation],
) -> dict[tuple[int, int], TeamParticipation]:
    return headline(
        rows, key=lambda row: (row.result_id, _team_id(row)), scope=lambda row: row.scope
    )


def _team_id(row: TeamAggregate | TeamParticipation) -> int:
    assert row.team_id is not None
    return row.team_id


# --- Dashboards ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class TrendPoint:
    period_start: date
    published: bool  # False: fewer than k (or complementary suppression) -- a gap, no numbers
    n: int | None
    index: float | None
    ci_low: float | None
    ci_high: float | None
    participation_rate: float | None


def team_trend(*, team: Team, dimension: str, cycles: int = 26) -> list[TrendPoint]:
    """The team's last ``cycles`` cycles for one dimension, oldest first (two queries, rows as
    tuples).  The caller checks ``policy.can_view_team`` first."""
    if dimension not in DIMENSIONS:
        raise ValueError(f"unknown dimension {dimension!r}")
    rows = TeamAggregate.objects.filter(
        result__organisation_id=team.organisation_id,  # the cell index, by result (models)
        team=team,
        dimension=dimension,
        scope__in=[Scope.TEAM, Scope.SUBTREE],
    ).order_by("-result__period_start", "-result__closed_at")[: cycles * 2]
    # result id -> (scope, published, n, index, ci_low, ci_high, period_start, closed_at) of the
    # team's headline row: a parent team's subtree before its direct members (``primary_rows``).
    chosen: dict[int, tuple] = {}
    for result_id, *values in rows.values_list(
        "result_id",
        "scope",
        "published",
        "n",
        "index",
        "ci_low",
        "ci_high",
        "result__period_start",
        "result__closed_at",
    ):
        current = chosen.get(result_id)
        if current is None or (values[0] == Scope.SUBTREE and current[0] != Scope.SUBTREE):
            chosen[result_id] = tuple(values)
    results = sorted(chosen, key=lambda pk: (chosen[pk][6], chosen[pk][7]))[-cycles:]
    rates: dict[int, tuple[str, float | None]] = {}
    for result_id, scope, published, rate in TeamParticipation.objects.filter(
        team=team, result__in=results
    ).values_list("result_id", "scope", "published", "rate"):
        current = rates.get(result_id)
        if current is None or (scope == Scope.SUBTREE and current[0] != Scope.SUBTREE):
            rates[result_id] = (scope, rate if published else None)
    points = []
    for result_id in results:
        _, published, n, index, ci_low, ci_high, period_start, _ = chosen[result_id]
        points.append(
            TrendPoint(
                period_start=period_start,
                published=published,
                n=n if published else None,
                index=index if published else None,
                ci_low=ci_low if published else None,
                ci_high=ci_high if published else None,
                participation_rate=rates[result_id][1] if result_id in rates else None,
            )
        )
    return points


# Slotted, not frozen: the heatmap builds one cell per team and dimension (56,000 at 8,000
# teams) and a frozen dataclass's ``__init__`` costs several times more.
@dataclass(slots=True)
class HeatmapCell:
    # The fields are the API's cell, serialised as they are (``analytics_api.HeatmapView``).
    dimension: str
    published: bool
    index: float | None  # to one decimal, as shown (the colour follows the shown value)
    n: int | None
    change: float | None  # since the team's previous cycle; None unless both sides may be shown


@dataclass(slots=True)
class HeatmapRow:
    team_id: int | None  # None: the organisation row
    team_public_id: str | None
    name: str
    parent_public_id: str | None
    customer_facing: bool
    period_start: date | None
    cells: tuple[HeatmapCell, ...]


@dataclass(frozen=True)
class Heatmap:
    dimensions: tuple[str, ...]
    rows: tuple[HeatmapRow, ...]


# How many recent cycle results the heatmap looks through to find each team's latest two.
HEATMAP_RESULTS = 12

# One stored aggregate as the heatmap needs it, a record of numbers (tens of thousands of them
# per request at 8,000 teams, read as one array): the organisation's cells have team 0; the
# code holds the scope (bit 0: subtree), published (bit 1), delta_published (bit 2) and the
# dimension's position in ``DIMENSIONS`` (above); a missing index is NaN.
_HEATMAP_RECORD = np.dtype(
    [("result", ">i8"), ("team", ">i8"), ("code", ">i2"), ("n", ">i8"), ("index", ">f8")]
)
_SUBTREE, _PUBLISHED, _DELTA_PUBLISHED, _DIMENSION_SHIFT = 1, 2, 4, 3


def _heatmap_records(result_ids: Sequence[int], team_ids: Sequence[int] | None) -> NDArray[Any]:
    """The aggregates of ``result_ids`` (of the teams ``team_ids`` only, unless None) in
    ``DIMENSIONS``, as ``_HEATMAP_RECORD``: packed by PostgreSQL, else built from the rows."""
    if not result_ids:
        return np.zeros(0, dtype=_HEATMAP_RECORD)
    if connection.vendor == "postgresql":
        teams = sql.SQL(" AND team_id = ANY(%s)") if team_ids is not None else sql.SQL("")
        params: list[Any] = [list(DIMENSIONS), list(result_ids)]
        if team_ids is not None:
            params.append(list(team_ids))
        return packed_records(
            sql.SQL(
                "SELECT int8send(result_id) || int8send(COALESCE(team_id, 0))"
                " || int2send(((CASE WHEN scope = 'subtree' THEN 1 ELSE 0 END)"
                " + (CASE WHEN published THEN 2 ELSE 0 END)"
                " + (CASE WHEN delta_published THEN 4 ELSE 0 END)"
                " + (array_position(%s::text[], dimension::text) - 1) * {})::int2)"
                " || int8send(COALESCE(n, 0)::int8) || float8send(COALESCE(index, 'NaN'))"
                " AS packed FROM {} WHERE result_id = ANY(%s){}"
            ).format(
                sql.Literal(1 << _DIMENSION_SHIFT),
                sql.Identifier(TeamAggregate._meta.db_table),
                teams,
            ),
            params,
            _HEATMAP_RECORD,
        )
    rows = TeamAggregate.objects.filter(result_id__in=result_ids, dimension__in=DIMENSIONS)
    if team_ids is not None:
        rows = rows.filter(team_id__in=team_ids)
    position = {d: i for i, d in enumerate(DIMENSIONS)}
    return np.array(
        [
            (
                result_id,
                team_id or 0,
                (scope == Scope.SUBTREE)
                + _PUBLISHED * published
                + _DELTA_PUBLISHED * delta_published
                + (position[dimension] << _DIMENSION_SHIFT),
                n or 0,
                np.nan if index is None else index,
            )
            for result_id, team_id, scope, dimension, published, delta_published, index, n in (
                rows.values_list(
                    "result_id", "team_id", "scope", "dimension", "published",
                    "delta_published", "index", "n",
                )
            )
        ],
        dtype=_HEATMAP_RECORD,
    )  # fmt: skip


def organisation_heatmap(*, organisation: Organisation, user: AnyUser) -> Heatmap:
    """Teams x dimensions at each team's latest cycle, with the change since its previous one.

    Leads see their subtrees; admins also get the organisation row.  Only the rows the page
    shows are fetched, as one array of numbers: the aggregates of the organisation's latest two
    results, and older ones (of the last ``HEATMAP_RESULTS``) only for the teams that have a
    gap there.  A team's cell of a result is its subtree's where it has one (a parent team's
    headline), else its own.  At most four queries after the visibility check, whatever the
    number of teams or cycles."""
    is_admin = policy.is_org_admin(user, organisation)
    if is_admin:
        # An admin sees every team of the organisation (``visible_team_ids``) -- no id list.
        team_rows = Team.objects.filter(organisation=organisation)
    else:
        visible = policy.visible_team_ids(user)
        if user.is_authenticated and getattr(user, "organisation_id", None) != organisation.pk:
            visible = set()
        if not visible:
            return Heatmap(dimensions=DIMENSIONS, rows=())
        team_rows = Team.objects.filter(pk__in=visible)
    results = list(
        CycleResult.objects.filter(organisation=organisation)
        .order_by("-period_start", "-closed_at")
        .values_list("pk", "period_start")[:HEATMAP_RESULTS]
    )
    teams = {
        pk: (name, public_id, parent_public_id, customer_facing)
        for pk, name, public_id, parent_public_id, customer_facing in team_rows.order_by(
            "name"
        ).values_list("pk", "name", "public_id", "parent__public_id", "customer_facing")
    }
    # the rows shown: the teams', and the organisation's (team 0) for an admin
    shown = np.array([*teams, *([0] if is_admin else [])], dtype=np.int64)
    records = _heatmap_records([pk for pk, _ in results[:2]], None)
    records = records[np.isin(records["team"], shown)]
    older_ids = [pk for pk, _ in results[2:]]
    if older_ids:
        # A team missing from one of the latest two results: its latest two are further back.
        complete = sorted_unique(
            records["team"][_two_results(records, results[0][0])].astype(np.int64)
        )
        gaps = np.setdiff1d(shown[shown > 0], complete)  # the organisation is in every result
        if gaps.size:
            records = np.concatenate([records, _heatmap_records(older_ids, gaps.tolist())])
    if not records.size:
        return Heatmap(dimensions=DIMENSIONS, rows=())
    # Newest first; a lower rank is a later result.
    result_ids = np.array([pk for pk, _ in results], dtype=np.int64)
    by_id = np.argsort(result_ids)
    rank = by_id[np.searchsorted(result_ids[by_id], records["result"].astype(np.int64))]
    team = records["team"].astype(np.int64)
    code = records["code"].astype(np.int64)
    dimension = code >> _DIMENSION_SHIFT
    # Per (team, dimension): its cells by rank, the subtree's first within a rank; the first of
    # each rank is the primary cell, the first two primary cells the latest and the one before.
    order = np.lexsort((-(code & _SUBTREE), rank, dimension, team))
    team, dimension, rank, code = team[order], dimension[order], rank[order], code[order]
    index = records["index"][order].astype(np.float64)
    n = records["n"][order].astype(np.int64)
    group = np.ones(order.size, dtype=bool)  # first of its (team, dimension)
    group[1:] = (team[1:] != team[:-1]) | (dimension[1:] != dimension[:-1])
    primary = group.copy()
    primary[1:] |= rank[1:] != rank[:-1]
    at = np.flatnonzero(primary)
    latest = at[group[at]]
    second = np.append(at[1:], -1)[group[at]]  # the next primary cell: same group, or not
    has_previous = (second >= 0) & ~group[np.maximum(second, 0)]
    previous = np.where(has_previous, second, 0)
    published = (code[latest] & _PUBLISHED) > 0
    with np.errstate(invalid="ignore"):
        changes = index[latest] - index[previous]
    # The close judged a change against the previous figure of the same group (the over-time
    # rule): a team that gained or lost its sub-teams since then changed groups.
    change_shown = (
        published
        & has_previous
        & ((code[latest] & _DELTA_PUBLISHED) > 0)
        & ((code[previous] & _PUBLISHED) > 0)
        & ((code[latest] & _SUBTREE) == (code[previous] & _SUBTREE))
        & np.isfinite(changes)
    )
    period = [start for _, start in results]
    cells: dict[int, list[HeatmapCell | None]] = {}
    latest_rank: dict[int, int] = {}
    for t, d, r, shown_cell, value, count, change, with_change in zip(
        team[latest].tolist(), dimension[latest].tolist(), rank[latest].tolist(),
        published.tolist(), index[latest].tolist(), n[latest].tolist(), changes.tolist(),
        change_shown.tolist(), strict=True,
    ):  # fmt: skip
        row = cells.get(t)
        if row is None:
            row = cells[t] = [None] * len(DIMENSIONS)
            latest_rank[t] = r
        elif r < latest_rank[t]:
            latest_rank[t] = r
        if shown_cell:
            row[d] = HeatmapCell(
                DIMENSIONS[d],
                True,
                None if math.isnan(value) else round(value, 1),
                count,
                round(change, 1) if with_change else None,
            )

    def build(team_id: int) -> HeatmapRow:
        info = teams.get(team_id)
        return HeatmapRow(
            team_id=team_id or None,
            team_public_id=str(info[1]) if info else None,
            name=info[0] if info else organisation.name,
            parent_public_id=str(info[2]) if info and info[2] is not None else None,
            customer_facing=bool(info and info[3]),
            period_start=period[latest_rank[team_id]],
            cells=tuple(
                cell or HeatmapCell(name, False, None, None, None)
                for name, cell in zip(DIMENSIONS, cells[team_id], strict=True)
            ),
        )

    out = [build(0)] if is_admin and 0 in cells else []
    out.extend(build(team_id) for team_id in teams if team_id in cells)
    return Heatmap(dimensions=DIMENSIONS, rows=tuple(out))


def _two_results(records: NDArray[Any], latest_id: int) -> NDArray[np.bool_]:
    """Per record of the latest two results (``latest_id`` the later): whether its team has
    cells of both in each dimension it has."""
    team = records["team"].astype(np.int64)
    width = len(DIMENSIONS)
    cell = team * width + (records["code"].astype(np.int64) >> _DIMENSION_SHIFT)
    seen = sorted_unique(cell * 2 + (records["result"] == latest_id))
    cells, counts = np.unique(seen // 2, return_counts=True)
    return ~np.isin(team, cells[counts < 2] // width)


@dataclass(frozen=True)
class Distribution:
    period_start: date
    n: int
    buckets: tuple[tuple[int, int], ...]  # (low, high) index bounds of each bucket
    counts: tuple[int, ...]


def team_latest_distribution(*, team: Team, dimension: str) -> Distribution | None:
    """The spread of answers at the team's latest cycle; None when suppressed or no data."""
    rows = list(
        TeamAggregate.objects.filter(
            result__organisation_id=team.organisation_id,
            team=team,
            dimension=dimension,
            scope__in=[Scope.TEAM, Scope.SUBTREE],
        )
        .select_related("result")
        .order_by("-result__period_start", "-result__closed_at")[:2]
    )
    chosen = primary_rows(rows)
    if not chosen:
        return None
    latest = max(chosen.values(), key=lambda r: (r.result.period_start, r.result.closed_at))
    if not latest.published or not latest.distribution or latest.n is None:
        return None
    counts = tuple(int(c) for c in latest.distribution)
    width = 100 / len(counts)
    buckets = tuple((round(i * width), round((i + 1) * width)) for i in range(len(counts)))
    return Distribution(
        period_start=latest.result.period_start, n=latest.n, buckets=buckets, counts=counts
    )


ACTIVE_FLAG_STATES: tuple[str, ...] = (Flag.State.OPEN, Flag.State.ACKNOWLEDGED)


def flags_for(*, user: AnyUser, states: Sequence[str] = ACTIVE_FLAG_STATES) -> QuerySet[Flag]:
    """Flags on teams the user may see, newest first."""
    visible = policy.visible_team_ids(user)
    return (
        Flag.objects.filter(team_id__in=visible, state__in=list(states))
        .select_related("team", "acknowledged_by")
        .order_by("-opened_at", "-pk")
    )
