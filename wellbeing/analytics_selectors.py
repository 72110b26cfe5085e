"""Reads of the stored analytics (aggregates, participation, flags) for dashboards and the API.

Everything here reads the rollup tables written at cycle close (``wellbeing/aggregation.py``),
never raw responses, and is scoped by ``wellbeing.policy.visible_team_ids``.  A suppressed cell is
returned as a gap with no number; nothing here can return a figure from fewer than k people
because such figures are never stored.  Query counts do not grow with teams or cycles.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date

from django.db.models import QuerySet

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
from .policy import AnyUser

# --- The team tree as plain data (shared by aggregation and flags) ----------------------------


@dataclass(frozen=True)
class TeamInfo:
    id: int
    parent_id: int | None
    name: str
    public_id: str
    customer_facing: bool


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
    for pk, parent_id, name, public_id, customer_facing in Team.objects.filter(
        organisation=organisation
    ).values_list("id", "parent_id", "name", "public_id", "customer_facing"):
        teams[pk] = TeamInfo(pk, parent_id, name, str(public_id), customer_facing)
        children[parent_id].append(pk)
    return TeamTree(teams=teams, children=dict(children))


# --- Primary series: a parent team's figure is its subtree, a leaf team's its own ------------

_SCOPE_PRIORITY = {Scope.SUBTREE: 0, Scope.TEAM: 1}


def primary_rows(rows: Iterable[TeamAggregate]) -> dict[tuple[int, int, str], TeamAggregate]:
    """(result id, team id, dimension) -> the team's headline row (subtree before direct)."""
    chosen: dict[tuple[int, int, str], TeamAggregate] = {}
    for row in rows:
        assert row.team_id is not None
        key = (row.result_id, row.team_id, row.dimension)
        current = chosen.get(key)
        if (
            current is None
            or _SCOPE_PRIORITY[Scope(row.scope)] < _SCOPE_PRIORITY[Scope(current.scope)]
        ):
            chosen[key] = row
    return chosen


def primary_participation(
    rows: Iterable[TeamParticipation],
) -> dict[tuple[int, int], TeamParticipation]:
    chosen: dict[tuple[int, int], TeamParticipation] = {}
    for row in rows:
        assert row.team_id is not None
        key = (row.result_id, row.team_id)
        current = chosen.get(key)
        if (
            current is None
            or _SCOPE_PRIORITY[Scope(row.scope)] < _SCOPE_PRIORITY[Scope(current.scope)]
        ):
            chosen[key] = row
    return chosen


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

# One stored aggregate as the heatmap needs it: a ``.values_list`` row of these fields, used as
# a plain tuple (thousands of them per request at 8,000 teams).
_HEATMAP_FIELDS = (
    "result_id",
    "team_id",
    "scope",
    "dimension",
    "published",
    "delta_published",
    "index",
    "n",
)
_RESULT, _TEAM, _SCOPE, _DIMENSION, _PUBLISHED, _DELTA_PUBLISHED, _INDEX, _N = range(8)


def organisation_heatmap(*, organisation: Organisation, user: AnyUser) -> Heatmap:
    """Teams x dimensions at each team's latest cycle, with the change since its previous one.

    Leads see their subtrees; admins also get the organisation row.  Only the rows the page
    shows are fetched, as plain tuples: the aggregates of the organisation's latest two results,
    and older ones (of the last ``HEATMAP_RESULTS``) only for the teams that have a gap there.
    At most four queries after the visibility check, whatever the number of teams or cycles."""
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
    # Newest first; a lower rank is a later result (the order the old code sorted by).
    rank = {pk: i for i, (pk, _) in enumerate(results)}
    period = dict(results)
    teams = {
        pk: (name, public_id, parent_public_id, customer_facing)
        for pk, name, public_id, parent_public_id, customer_facing in team_rows.order_by(
            "name"
        ).values_list("pk", "name", "public_id", "parent__public_id", "customer_facing")
    }
    # (team or None, dimension) -> {result rank: the primary cell of that result}
    series: dict[tuple[int | None, str], dict[int, tuple]] = {}
    subtree = str(Scope.SUBTREE)

    def take(rows: Iterable[tuple]) -> None:
        # Team rows are TEAM or SUBTREE (a database constraint); the organisation row has no
        # team.  A parent team's headline is its subtree, a leaf team's its own (primary_rows).
        for cell in rows:
            team_id = cell[_TEAM]
            if team_id is None:
                if not is_admin:
                    continue
            elif team_id not in teams:
                continue
            key = (team_id, cell[_DIMENSION])
            by_rank = series.get(key)
            if by_rank is None:
                by_rank = series[key] = {}
            result_rank = rank[cell[_RESULT]]
            if cell[_SCOPE] == subtree or result_rank not in by_rank:
                by_rank[result_rank] = cell

    latest_ids = [pk for pk, _ in results[:2]]
    take(TeamAggregate.objects.filter(result_id__in=latest_ids).values_list(*_HEATMAP_FIELDS))
    # A team missing from one of the latest two results: its latest two are further back.
    older_ids = [pk for pk, _ in results[2:]]
    if older_ids:
        gaps = {team_id for (team_id, _), by_rank in series.items() if len(by_rank) < 2}
        gaps.update(teams.keys() - {team_id for team_id, _ in series})
        gaps.discard(None)  # the organisation row is in every result
        if gaps:
            take(
                TeamAggregate.objects.filter(
                    result_id__in=older_ids, team_id__in=sorted(gaps)
                ).values_list(*_HEATMAP_FIELDS)
            )

    def build(team_id: int | None) -> HeatmapRow:
        cells = []
        latest_period: date | None = None
        for dimension in DIMENSIONS:
            by_rank = series.get((team_id, dimension))
            if not by_rank:
                cells.append(HeatmapCell(dimension, False, None, None, None))
                continue
            # Usually one or two ranks (the latest two results); a lower rank is later.
            ranks = list(by_rank)
            previous = None
            if len(ranks) == 1:
                latest = by_rank[ranks[0]]
            else:
                if len(ranks) > 2:
                    ranks = sorted(ranks)[:2]
                elif ranks[1] < ranks[0]:
                    ranks.reverse()
                latest, previous = by_rank[ranks[0]], by_rank[ranks[1]]
            latest_start = period[latest[_RESULT]]
            if latest_period is None or latest_start > latest_period:
                latest_period = latest_start
            if not latest[_PUBLISHED]:
                cells.append(HeatmapCell(dimension, False, None, None, None))
                continue
            index = latest[_INDEX]
            change = None
            if (
                previous is not None
                and latest[_DELTA_PUBLISHED]
                and previous[_PUBLISHED]
                and previous[_INDEX] is not None
                and index is not None
            ):
                change = round(index - previous[_INDEX], 1)
            shown = None if index is None else round(index, 1)
            cells.append(HeatmapCell(dimension, True, shown, latest[_N], change))
        team = teams.get(team_id) if team_id is not None else None
        return HeatmapRow(
            team_id=team_id,
            team_public_id=str(team[1]) if team else None,
            name=team[0] if team else organisation.name,
            parent_public_id=str(team[2]) if team and team[2] is not None else None,
            customer_facing=bool(team and team[3]),
            period_start=latest_period,
            cells=tuple(cells),
        )

    present = {team_id for team_id, _ in series}
    out = []
    if is_admin and None in present:
        out.append(build(None))
    out.extend(build(team_id) for team_id in teams if team_id in present)
    return Heatmap(dimensions=DIMENSIONS, rows=tuple(out))


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
