"""Per-cycle aggregates stored through the anonymity guard, then trend detection and flags.

For one closed cycle: per team (its direct members), per parent team (its whole subtree) and for
the organisation, and per dimension, store n, the 0-100 index, its spread, a t-interval and a
bucketed distribution, plus participation.  The guard (``wellbeing.guard``) is applied HERE, at
store time: a cell that may not be published (fewer than k, or complementary suppression against
differencing) is stored without any number, not even its n, so no later code can leak it.

Never: read check-in responses (check-ins hand over plain indices), log answers or scores, or let
one team's corrupted input stop the others.  Idempotent per ``cycle_key``: storing again replaces
the cycle's rows in one transaction (and does not re-run flags for that cycle).
"""

from __future__ import annotations

import contextvars
import logging
import math
import uuid
from collections import defaultdict
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from itertools import chain, repeat
from typing import TYPE_CHECKING, Any, cast

import numpy as np
from django.db import connection, transaction
from django.db.models import Max, QuerySet
from numpy.typing import NDArray
from psycopg import sql

from .analytics_selectors import TeamTree
from .bulk import gc_paused, rows_copying
from .close_reads import CloseReads, Columns
from .errors import ServiceError
from .guard import GuardTree, validate_k
from .models import (
    CycleResult,
    Membership,
    Organisation,
    ResultLayout,
    Scope,
    TeamAggregate,
    TeamParticipation,
)
from .packed import packed_records
from .stats._data import sorted_unique

if TYPE_CHECKING:
    from .analytics import CycleScores, FlagChange, Roster, RosterSource, TeamCycleInput

logger = logging.getLogger(__name__)

ORGANISATION_NODE = 0  # team ids are positive; a parent's direct group is -team_id


Scores = Sequence[float] | NDArray[np.float64]  # one dimension's indices of a team


@dataclass
class _CleanInput:
    invited: int
    responded: int
    scores: dict[str, Scores]  # finite, within 0-100


class CorruptInput(ValueError):
    """A team's hand-over cannot be trusted; the team is left out of this cycle's figures."""


def _clean_scores(values: object, responded: int) -> list[float]:
    """One dimension's indices as floats without the missing ones; CorruptInput when a value
    is not a number, outside 0-100, or there are more scores than respondents."""
    try:
        if isinstance(values, np.ndarray):
            if values.dtype.kind not in "fiu" or values.ndim != 1:
                raise CorruptInput("a score is not a number")
            numbers = values.astype(np.float64, copy=False).tolist()
        elif isinstance(values, list) and (types := set(map(type, values))) <= {float, int}:
            # plain numbers (the close's own hand-over: floats only)
            numbers = [float(v) for v in values] if int in types else list(values)
        else:
            numbers = []
            for value in values:  # type: ignore[attr-defined]
                if value is None:
                    continue  # a skipped dimension: missing, not an error
                if isinstance(value, bool) or not isinstance(value, int | float):
                    raise CorruptInput("a score is not a number")
                numbers.append(float(value))
    except OverflowError:
        raise CorruptInput("a score is outside 0-100") from None
    # A team's few values are checked in Python, which for lists this short costs less than
    # numpy's per-call overhead (the close does this for every team and dimension).  One
    # exact sum tells whether any value is NaN (missing) or infinite; only then is the list
    # filtered value by value.
    try:
        total = math.fsum(numbers)
    except (OverflowError, ValueError):  # infinities of both signs, or a huge value
        total = math.inf
    kept = numbers if math.isfinite(total) else [v for v in numbers if v == v]
    if kept and not (min(kept) >= 0.0 and max(kept) <= 100.0):
        raise CorruptInput("a score is outside 0-100")
    if len(kept) > responded:
        raise CorruptInput("more scores than respondents")
    return kept


def _clean(team_input: TeamCycleInput) -> _CleanInput:
    from .analytics import DIMENSIONS

    invited, responded = team_input.invited, team_input.responded
    if not all(
        isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in (invited, responded)
    ):
        raise CorruptInput("counts must be non-negative integers")
    if responded > invited:
        raise CorruptInput("more respondents than invitees")
    scores: dict[str, Scores] = {}
    for dimension, values in (team_input.scores or {}).items():
        if dimension not in DIMENSIONS:
            raise CorruptInput("unknown dimension")
        scores[dimension] = _clean_scores(values, responded)
    return _CleanInput(invited=invited, responded=responded, scores=scores)


def _clean_batch(teams: Sequence[TeamCycleInput]) -> dict[int, _CleanInput] | None:
    """Every team's hand-over checked at once, for the common case the close hands over: counts
    as integers and each dimension's scores a list of floats or a float array, within 0-100.
    Then every team's scores pass ``_clean`` unchanged and are kept as they are.  None when any
    team needs ``_clean``'s value-by-value handling (an integer or a missing value among the
    scores, or a broken rule): the caller then cleans team by team, so only the broken team is
    left out.

    One pass per dimension over all teams' values instead of a check per team and dimension
    (tens of thousands of short lists at 8,000 teams)."""
    from .analytics import DIMENSIONS

    known = set(DIMENSIONS)
    by_dimension: dict[str, list[Any]] = defaultdict(list)
    out: dict[int, _CleanInput] = {}
    for team in teams:
        invited, responded = team.invited, team.responded
        if type(invited) is not int or type(responded) is not int:
            return None
        if not 0 <= responded <= invited:
            return None
        scores: dict[str, Scores] = {}
        for dimension, values in (team.scores or {}).items():
            if type(values) is not list and not _float_vector(values):
                return None  # a subclass, another array: team by team
            if dimension not in known or len(values) > responded:
                return None
            # its values are checked below, all teams at once
            scores[dimension] = cast(Scores, values)
            by_dimension[dimension].append(values)
        out[team.team_id] = _CleanInput(invited=invited, responded=responded, scores=scores)
    for lists in by_dimension.values():
        values = list(chain.from_iterable(v for v in lists if type(v) is list))
        if set(map(type, values)) - {float}:
            return None
        arrays = [v for v in lists if type(v) is not list]
        array = np.concatenate([np.array(values, dtype=np.float64), *arrays])
        if not array.size:
            continue
        # NaN fails both comparisons, an infinity one of them
        if not (array.min() >= 0.0 and array.max() <= 100.0):
            return None
    return out


def _batch_checked(scores: CycleScores, teams: Sequence[TeamCycleInput]) -> CycleScores | None:
    """``scores`` when every team's indices can be vouched for at once, as ``_clean_batch``
    does for teams' own: the arrays well formed, every index within 0-100 (NaN fails) and no
    team with more indices than respondents; else None (the caller then goes team by team).
    Indices of teams not in ``teams`` are left out (``_owned_scores``)."""
    from .analytics import DIMENSIONS

    if any(team.scores for team in teams):
        raise ValueError("each team's own scores must be empty when scores are given")
    team_ids = scores.team_ids
    if not (
        type(team_ids) is np.ndarray
        and team_ids.ndim == 1
        and team_ids.dtype == np.dtype(np.int64)
        and bool((np.diff(team_ids) > 0).all())
        and set(scores.counts) == set(scores.values)
        and set(scores.counts) <= set(DIMENSIONS)
    ):
        return None
    # each batch team's respondents (no limit for a team not handed over: left out anyway)
    limit = np.full(team_ids.size, np.iinfo(np.int64).max, dtype=np.int64)
    at = _positions_in(np.array([t.team_id for t in teams], dtype=np.int64), team_ids)
    responded = np.array([t.responded for t in teams], dtype=np.int64)
    limit[at >= 0] = responded[at[at >= 0]]
    for dimension, counts in scores.counts.items():
        values = scores.values[dimension]
        if not (
            type(counts) is np.ndarray
            and counts.shape == team_ids.shape
            and counts.dtype == np.dtype(np.int64)
            and _float_vector(values)
            and int(counts.sum()) == values.size
            and bool((counts >= 0).all())
            and bool((counts <= limit).all())
        ):
            return None
        # NaN fails both comparisons, an infinity one of them
        if values.size and not (values.min() >= 0.0 and values.max() <= 100.0):
            return None
    return scores


def _dense_span(*arrays: NDArray[np.int64]) -> tuple[int, int] | None:
    """(lowest value, span) of the values of ``arrays`` when a table indexed by value would be
    small beside them (ids of one organisation, mostly: a few times their number), else None."""
    sizes = sum(a.size for a in arrays)
    if not sizes:
        return None
    low = min(int(a.min()) for a in arrays if a.size)
    span = max(int(a.max()) for a in arrays if a.size) - low + 1
    return (low, span) if span <= 4 * sizes + 4096 else None


def _positions_in(haystack: NDArray[np.int64], needles: NDArray[np.int64]) -> NDArray[np.int64]:
    """Each needle's position in ``haystack`` (distinct values, any order), -1 where absent:
    through a table indexed by value when that is small beside the two (ids of one
    organisation, mostly), else by sorting."""
    if not haystack.size:
        return np.full(needles.size, -1, dtype=np.int64)
    dense = _dense_span(haystack, needles)
    if dense is not None:
        low, span = dense
        table = np.full(span, -1, dtype=np.int64)
        table[haystack - low] = np.arange(haystack.size, dtype=np.int64)
        return table[needles - low]
    order = np.argsort(haystack)
    at = order[np.minimum(np.searchsorted(haystack, needles, sorter=order), haystack.size - 1)]
    return np.where(haystack[at] == needles, at, -1).astype(np.int64)


def _owned_scores(
    scores: CycleScores, dimension: str, direct_teams: NDArray[np.int64]
) -> tuple[NDArray[np.int64], NDArray[np.int64], NDArray[np.float64]]:
    """One dimension's indices of ``scores`` for the layout's direct teams: per direct team its
    count, and the indices with each one's direct team (position in ``direct_teams``)."""
    per_direct = np.zeros(direct_teams.size, dtype=np.int64)
    counts = scores.counts.get(dimension)
    if counts is None:
        return per_direct, np.zeros(0, dtype=np.int64), np.zeros(0)
    direct_of = _positions_in(direct_teams, scores.team_ids)
    found = direct_of >= 0
    per_direct[direct_of[found]] = counts[found]
    owner = np.repeat(direct_of, counts)
    kept = owner >= 0
    return per_direct, owner[kept], scores.values[dimension][kept]


def _float_vector(values: object) -> bool:
    return type(values) is np.ndarray and values.ndim == 1 and values.dtype == np.dtype(np.float64)


@dataclass
class _Layout:
    """The guard's view of the organisation for this cycle: one node per published group."""

    parent: dict[int, int | None] = field(default_factory=dict)  # node -> parent node
    direct: dict[int, int] = field(default_factory=dict)  # node -> team whose input it holds
    rows: list[tuple[int, int | None, str]] = field(default_factory=list)  # node, team, scope


def _layout(tree: TeamTree, inputs: Collection[int]) -> _Layout:
    """Teams in the cycle and their ancestors; a parent with direct members gets a leaf node for
    them so that 'parent minus children' is a cell the guard can see and protect."""
    included: set[int] = set()
    for team_id in inputs:
        included.add(team_id)
        included.update(tree.ancestors(team_id))
    has_children = {tree.teams[t].parent_id for t in included} - {None}
    layout = _Layout()
    layout.parent[ORGANISATION_NODE] = None
    layout.rows.append((ORGANISATION_NODE, None, Scope.ORGANISATION))
    for team_id in sorted(included):
        parent_id = tree.teams[team_id].parent_id
        layout.parent[team_id] = parent_id if parent_id in included else ORGANISATION_NODE
        if team_id in has_children:
            layout.rows.append((team_id, team_id, Scope.SUBTREE))
            if team_id in inputs:
                layout.parent[-team_id] = team_id
                layout.direct[-team_id] = team_id
                layout.rows.append((-team_id, team_id, Scope.TEAM))
        else:
            layout.rows.append((team_id, team_id, Scope.TEAM))
            if team_id in inputs:
                layout.direct[team_id] = team_id
    return layout


def layout_guarded(
    tree: TeamTree, counts: Mapping[int, int], *, k: int
) -> tuple[_Layout, _Rollup, set[int]]:
    """The layout of a cycle's groups for these per-team counts of people (``counts``: every
    team of the cycle, in ``tree``), as arrays, and the nodes the guard lets out at ``k``."""
    layout = _layout(tree, counts)
    rollup = _Rollup(layout)
    by_node = [0] * len(rollup.nodes)
    for node in rollup.direct:
        by_node[rollup.position[node]] = int(counts[layout.direct[node]])
    guard_tree = GuardTree(rollup.nodes, [layout.parent[node] for node in rollup.nodes])
    return layout, rollup, guard_tree.publishable(by_node, k=k)


def organisation_count_publishable(*, tree: TeamTree, counts: Mapping[int, int], k: int) -> bool:
    """May a cycle's organisation-wide count of people be shown, for these per-team counts
    (``counts``: every team the cycle invited people in)?  The guard's decision for the
    organisation's row at close: a total shown beside published teams while a team below k is
    hidden would give that team's count away by subtraction."""
    teams = {team_id: n for team_id, n in counts.items() if team_id in tree.teams}
    if not teams:
        return False
    return ORGANISATION_NODE in layout_guarded(tree, teams, k=k)[2]


_MEMBERSHIP_RECORD = np.dtype([("team", ">i8"), ("user", ">i8"), ("start", ">i4"), ("end", ">i4")])
_OPEN_END = 10**8  # an ordinal after any date: a membership with no end


def membership_arrays(organisation: Organisation) -> tuple[NDArray[np.int64], ...]:
    """The organisation's memberships as four arrays: team, user, first and last day
    (``date.toordinal``; ``_OPEN_END`` when it has not ended): the over-time rule's rosters
    when the caller does not say whom each cycle asked.  Those of people deactivated since are
    kept: deactivating ends them, and a leaver left out of both rosters would let the change
    across their leaving show."""
    memberships = Membership.objects.filter(team__organisation=organisation).values_list(
        "team_id", "user_id", "started_on", "ended_on"
    )
    if connection.vendor == "postgresql":
        query, params = memberships.query.sql_with_params()
        packed = packed_records(
            # Django's own SQL for the queryset above, its parameters passed separately; days
            # as ordinals (date.toordinal: 0001-01-01 is 1)
            "SELECT int8send(m.team_id::int8) || int8send(m.user_id::int8)"  # noqa: S608
            " || int4send((m.started_on - DATE '0001-01-01') + 1)"
            f" || int4send(COALESCE((m.ended_on - DATE '0001-01-01') + 1, {_OPEN_END}))"
            f" AS packed FROM ({query}) m(team_id, user_id, started_on, ended_on)",
            params,
            _MEMBERSHIP_RECORD,
        )
        return tuple(packed[name].astype(np.int64) for name in ("team", "user", "start", "end"))
    rows = list(memberships)
    return (
        np.array([r[0] for r in rows], dtype=np.int64),
        np.array([r[1] for r in rows], dtype=np.int64),
        np.array([r[2].toordinal() for r in rows], dtype=np.int64),
        np.array([_OPEN_END if r[3] is None else r[3].toordinal() for r in rows], dtype=np.int64),
    )


# One node of a result's layout as kept with it (``ResultLayout``): its cell (``_cell_base``),
# its parent's position (-1: the organisation's node has none), the team whose people it holds
# directly (0: none) and how many people were behind it.
_LAYOUT_RECORD = np.dtype([("cell", "<i8"), ("parent", "<i4"), ("team", "<i8"), ("people", "<i4")])


@dataclass
class Earlier:
    """An earlier result as the over-time rule compares with it: its layout (``_LAYOUT_RECORD``)
    and the people behind it as they are listed now, each None when not known (a result stored
    before layouts were kept, or whose cycle's invitations cannot be read): then no change
    since it may be shown."""

    nodes: NDArray[Any] | None
    people: Roster | None


class _Rosters:
    """The people behind each node of this cycle's layout, compared with the people behind an
    earlier result's nodes, for the over-time differencing rule (``delta_publishable``).

    The earlier people are placed in the earlier result's own layout (the tree as it was at its
    close, kept in ``ResultLayout``), whose nodes are matched with this cycle's by their cell
    (team and scope): a team moved, created or deleted in between changes the people behind a
    parent's figure as it did then.  The number of people kept with each earlier node is held
    against the number found there now: people no longer listed (erased, or their team deleted)
    count as leavers, and more people than there were (a membership entered since with a start
    before that cycle) hide the change.

    Most people are behind the same nodes in both: only those whose team differs, who are in
    one of the two only, or whose team's place in the tree differs, are compared one by one (the
    "movers"); everyone else counts in both rosters of every node that covers them."""

    def __init__(
        self,
        *,
        layout: _Layout,
        rollup: _Rollup,
        people: Roster,
        cells: NDArray[np.int64] | None = None,
    ) -> None:
        """``people``: this cycle's, as (team ids, user ids); people of teams without a direct
        node in the layout are left out.  ``cells``: each node's ``_cell_base`` (``rollup.nodes``
        order), when known already."""
        self.rollup = rollup
        self.nodes = len(rollup.nodes)
        if cells is None:
            cell_of = {node: _cell_base(team_id, scope) for node, team_id, scope in layout.rows}
            cells = np.array([cell_of[node] for node in rollup.nodes], dtype=np.int64)
        self.cells = cells
        self.direct_teams = np.array(
            [layout.direct[node] for node in rollup.direct], dtype=np.int64
        )
        teams, users = people
        owner = _positions_in(self.direct_teams, teams)
        keep = owner >= 0
        self.owner, self.user = owner[keep], users[keep]
        self.counts = self._distinct(self.owner, self.user)
        self._cover: NDArray[np.int64] | None = None

    def _distinct(self, owner: NDArray[np.int64], user: NDArray[np.int64]) -> NDArray[np.int64]:
        """Per node, the people among (``owner``, ``user``) in its subtree, each counted once.
        When nobody is listed twice, every (node, person) pair is one already: no need to sort
        them all to drop the repeats."""
        if not _distinct_values(user):
            base = int(user.max()) + 1
            return np.bincount(self._keys(owner, user, base) // base, minlength=self.nodes)
        _, node = self.rollup.expand(owner)
        return np.bincount(node, minlength=self.nodes)

    def _keys(
        self, owner: NDArray[np.int64], user: NDArray[np.int64], base: int
    ) -> NDArray[np.int64]:
        """Sorted unique ``node position * base + user id`` of people of this cycle's layout."""
        element, node = self.rollup.expand(owner)
        return sorted_unique(node * base + user[element])

    def layout_record(self) -> NDArray[Any]:
        """This cycle's layout as ``ResultLayout`` keeps it, with its people per node."""
        record = np.zeros(self.nodes, dtype=_LAYOUT_RECORD)
        record["cell"] = self.cells
        record["parent"] = self.rollup.parent
        record["team"][self.rollup.direct_at] = self.direct_teams
        record["people"] = self.counts
        return record

    def _stable(
        self, earlier: _Subtrees, earlier_teams: NDArray[np.int64], now_at: NDArray[np.int64]
    ) -> NDArray[np.bool_]:
        """Per direct node now: whether its team was a direct node of the earlier layout too,
        under nodes of the same cells as now (those cells that are in both layouts)."""
        nodes, direct = self.nodes, self.direct_teams.size
        then_of = _positions_in(earlier_teams, self.direct_teams)
        has = np.flatnonzero(then_of >= 0)
        element, node = earlier.expand(then_of[has])
        at = now_at[node]
        found = at >= 0
        before = sorted_unique(has[element[found]] * nodes + at[found])
        if self._cover is None:
            element, node = self.rollup.expand(np.arange(direct, dtype=np.int64))
            self._cover = sorted_unique(element * nodes + node)
        after = self._cover
        both = np.intersect1d(before, after, assume_unique=True)
        n_before = np.bincount(before // nodes, minlength=direct)
        n_after = np.bincount(after // nodes, minlength=direct)
        n_both = np.bincount(both // nodes, minlength=direct)
        return (then_of >= 0) & (n_before == n_after) & (n_both == n_after)

    def delta_publishable(
        self, earlier: NDArray[Any], people: Roster, *, k: int
    ) -> tuple[NDArray[np.bool_], NDArray[np.bool_]]:
        """Per node (``_Rollup.nodes`` order): may its change since an earlier result show,
        and had that result a node of the same cell.  ``earlier``: its layout
        (``_LAYOUT_RECORD``); ``people``: the people behind it as they are listed now."""
        nodes = self.nodes
        # each earlier node's position now (-1: no node of its cell now), and per node now the
        # number of people kept with its earlier node
        now_at = _positions_in(self.cells, earlier["cell"].astype(np.int64))
        matched = now_at >= 0
        present = np.zeros(nodes, dtype=bool)
        present[now_at[matched]] = True
        kept = np.zeros(nodes, dtype=np.int64)
        kept[now_at[matched]] = earlier["people"][matched]
        direct_at = np.flatnonzero(earlier["team"] > 0)
        earlier_teams = earlier["team"][direct_at].astype(np.int64)
        subtrees = _Subtrees(earlier["parent"].astype(np.int64), direct_at)
        teams, users = people
        then_owner = _positions_in(earlier_teams, teams)
        keep = then_owner >= 0
        then_owner, then_user, then_team = then_owner[keep], users[keep], teams[keep]
        # A person is behind the same nodes in both when they are listed for the same team in
        # both and that team sits under nodes of the same cells in both layouts: per person
        # listed, their team's direct node now where it does (-1 where it does not).
        stable = self._stable(subtrees, earlier_teams, now_at)
        now_of_then = _positions_in(self.direct_teams, then_team)
        then_slot = np.full(then_user.size, -1, dtype=np.int64)
        placed = now_of_then >= 0
        placed[placed] = stable[now_of_then[placed]]
        then_slot[placed] = now_of_then[placed]
        now_slot = np.where(stable[self.owner], self.owner, -1)
        now_moved, then_moved = _moved(self.user, now_slot, then_user, then_slot)
        base = max(int(self.user.max(initial=0)), int(then_user.max(initial=0))) + 1
        now_keys = self._keys(self.owner[now_moved], self.user[now_moved], base)
        element, node = subtrees.expand(then_owner[then_moved])
        at = now_at[node]
        found = at >= 0
        then_keys = sorted_unique(at[found] * base + then_user[then_moved][element[found]])
        shared = self.counts - np.bincount(now_keys // base, minlength=nodes)
        gone = kept - shared - np.bincount(then_keys // base, minlength=nodes)
        publishable = _delta_publishable_nodes(
            then_keys,
            now_keys,
            nodes=nodes,
            base=base,
            k=k,
            shared=shared,
            gone=np.maximum(gone, 0),
        )
        return publishable & (gone >= 0), present


def _distinct_values(values: NDArray[np.int64]) -> bool:
    """Whether no value of ``values`` is there twice."""
    dense = _dense_span(values)
    if dense is not None:
        return bool(np.bincount(values - dense[0], minlength=dense[1]).max(initial=0) <= 1)
    ordered = np.sort(values)
    return not bool((ordered[1:] == ordered[:-1]).any())


def _moved(
    now_user: NDArray[np.int64],
    now_slot: NDArray[np.int64],
    then_user: NDArray[np.int64],
    then_slot: NDArray[np.int64],
) -> tuple[NDArray[np.bool_], NDArray[np.bool_]]:
    """Which people listed now and then (``*_user``, each with its ``*_slot``: the direct node
    they count from, -1 where that is not the same in both layouts) are movers: people listed
    on one side only, or for another slot, or for a -1 slot, on either side; as one mask per
    side.  By a table indexed by person when each side lists a person once and the ids are
    close together (``_dense_span``), else by sorting."""
    dense = _dense_span(now_user, then_user)
    if dense is not None:
        low, span = dense
        count_now = np.bincount(now_user - low, minlength=span)
        count_then = np.bincount(then_user - low, minlength=span)
        if count_now.max(initial=0) <= 1 and count_then.max(initial=0) <= 1:
            # nobody listed: -2 now, -3 then, so a person on one side only differs
            slot_now = np.full(span, -2, dtype=np.int64)
            slot_now[now_user - low] = np.where(now_slot >= 0, now_slot, -4)
            slot_then = np.full(span, -3, dtype=np.int64)
            slot_then[then_user - low] = np.where(then_slot >= 0, then_slot, -5)
            moved = slot_now != slot_then
            return moved[now_user - low], moved[then_user - low]
    slots = int(max(now_slot.max(initial=0), then_slot.max(initial=0))) + 1
    now_pair = np.where(now_slot >= 0, now_user * slots + now_slot, -1)
    then_pair = np.where(then_slot >= 0, then_user * slots + then_slot, -2)
    now_same = (now_slot >= 0) & np.isin(now_pair, then_pair)
    then_same = (then_slot >= 0) & np.isin(then_pair, now_pair)
    movers = sorted_unique(np.concatenate([now_user[~now_same], then_user[~then_same]]))
    return np.isin(now_user, movers), np.isin(then_user, movers)


def _delta_publishable_nodes(
    then: NDArray[np.int64],
    now: NDArray[np.int64],
    *,
    nodes: int,
    base: int,
    k: int,
    shared: NDArray[np.int64] | None = None,
    gone: NDArray[np.int64] | None = None,
) -> NDArray[np.bool_]:
    """``delta_publishable`` for every node at once from its two rosters (``_Rosters._keys``).
    ``shared``: per node, people in both rosters who are not listed in ``then``/``now`` (when
    only the people who moved are passed); ``gone``: per node, people behind the earlier
    figure who are not listed in ``then`` any more (leavers)."""
    both = np.intersect1d(then, now, assume_unique=True)
    n_then = np.bincount(then // base, minlength=nodes)
    n_now = np.bincount(now // base, minlength=nodes)
    n_both = np.bincount(both // base, minlength=nodes)
    joined, left = n_now - n_both, n_then - n_both
    if shared is not None:
        n_then, n_now = n_then + shared, n_now + shared
    if gone is not None:
        n_then, left = n_then + gone, left + gone
    return (
        (np.minimum(n_then, n_now) >= k)
        & ((joined == 0) | (joined >= k))
        & ((left == 0) | (left >= k))
    )


@gc_paused()
def cycle_results_store(
    *,
    organisation: Organisation,
    cycle_key: uuid.UUID,
    period_start: date,
    closed_at: datetime,
    teams: Sequence[TeamCycleInput],
    reads: CloseReads | None = None,
    scores: CycleScores | None = None,
    rosters: RosterSource | None = None,
) -> list[FlagChange]:
    """Store the cycle's guarded aggregates and update flags; returns flag changes to alert.

    A second call with the same ``cycle_key`` replaces the stored figures and returns [] (the
    flags were already updated for this cycle).  ``reads``: the reads that do not depend on
    ``teams``, possibly started ahead (``CloseReads.ahead``).  ``rosters``: the people each
    cycle asked (``analytics.RosterSource``), when ``reads`` was not given them."""
    from .flags import (
        DETECTION_DIMENSIONS,
        FlagStep,
        columns_of_rows,
        detection_columns_of,
        detection_columns_store,
    )

    k = organisation.anonymity_threshold
    with transaction.atomic():
        previous = CycleResult.objects.select_for_update().filter(cycle_key=cycle_key).first()
        recompute = previous is not None
        replaced: bytes | None = None
        if previous is not None:
            if previous.organisation_id != organisation.pk:
                raise ServiceError(
                    "conflict", "This cycle belongs to another organisation.", status=409
                )
            kept = ResultLayout.objects.filter(result=previous).values_list("nodes", flat=True)
            replaced = next((bytes(nodes) for nodes in kept), None)
            previous.delete()
        result = CycleResult.objects.create(
            organisation=organisation,
            cycle_key=cycle_key,
            period_start=period_start,
            closed_at=closed_at,
            k=k,
        )
        if reads is None:
            reads = CloseReads(
                organisation=organisation, period_start=period_start, rosters=rosters
            )
        elif rosters is not None:
            reads.rosters = rosters
        tree = reads.tree()
        known: list[TeamCycleInput] = []
        for team_input in teams:
            if team_input.team_id not in tree.teams:
                logger.error(
                    "event=aggregate_input status=rejected reason=unknown_team team_id=%s",
                    team_input.team_id,
                )
                continue
            known.append(team_input)
        batch = _batch_checked(scores, known) if scores is not None else None
        inputs = _clean_batch(known) if scores is None or batch is not None else None
        if inputs is None and scores is not None:
            # as if each team had handed over its own indices
            by_team = scores.by_team()
            known = [replace(t, scores=by_team.get(t.team_id, {})) for t in known]
            batch = None
            inputs = _clean_batch(known)
        if inputs is None:
            inputs = {}
            for team_input in known:
                try:
                    inputs[team_input.team_id] = _clean(team_input)
                except CorruptInput as exc:
                    # The reason names the rule broken, never a value.
                    logger.error(
                        "event=aggregate_input status=rejected team_id=%s reason=%s",
                        team_input.team_id,
                        str(exc).replace(" ", "_"),
                    )
        # The flag step's reads first.  Its computing (numpy over teams x cycles, no database)
        # then runs on a thread from the cycle's own figures as soon as they are known, while
        # this thread builds the aggregate rows and PostgreSQL takes them.
        step = None
        if not recompute:
            step = FlagStep.prepare(result=result, tree=tree, reads=reads)
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="flag-step") as pool:
            computing: list[Future[None]] = []

            def figures(own: Columns) -> None:
                if step is not None:
                    step.current = own
                    step.read_window()  # read ahead by now, usually
                    # in this thread's context (its log fields)
                    computing.append(pool.submit(contextvars.copy_context().run, step.compute))

            aggregates = _aggregates_store(
                result=result,
                tree=tree,
                inputs=inputs,
                k=k,
                reads=reads,
                figures=figures,
                batch=batch,
            )
            if not computing:  # no figures at all this cycle
                figures(columns_of_rows([], [], DETECTION_DIMENSIONS))
            with rows_copying(TeamAggregate, _AGGREGATE_COLUMNS, aggregates, binary=True):
                for future in computing:
                    future.result()
        if step is not None and step.current is not None:
            detection_columns_of(result.pk, step.current)
        else:
            detection_columns_store([result.pk])
        if recompute:
            _later_changes_hidden(result, replaced)
        logger.info(
            "event=cycle_results_stored result_id=%s teams=%s recompute=%s",
            result.pk,
            len(inputs),
            recompute,
        )
        return [] if step is None else step.write()


def _teams_behind(nodes: bytes) -> dict[int, frozenset[int]]:
    """Per cell of a kept layout (``ResultLayout.nodes``), the teams whose people are behind it."""
    record = np.frombuffer(nodes, dtype=_LAYOUT_RECORD)
    direct_at = np.flatnonzero(record["team"] > 0)
    element, node = _Subtrees(record["parent"].astype(np.int64), direct_at).expand(
        np.arange(direct_at.size, dtype=np.int64)
    )
    behind: dict[int, set[int]] = defaultdict(set)
    for cell, team in zip(
        record["cell"][node].tolist(), record["team"][direct_at][element].tolist(), strict=True
    ):
        behind[cell].add(team)
    return {cell: frozenset(teams) for cell, teams in behind.items()}


def _later_changes_hidden(result: CycleResult, replaced: bytes | None) -> None:
    """After ``result`` replaced an earlier store of its cycle (``replaced``: that one's kept
    layout, None if it kept none): the later results' changes of every cell whose groups differ
    between the two (the tree changed in between; the recompute took today's) were judged
    against the old figure, and are hidden."""
    after = ResultLayout.objects.filter(result=result).values_list("nodes", flat=True).first()
    new = _teams_behind(bytes(after)) if after is not None else {}
    old = _teams_behind(replaced) if replaced is not None else None
    if old is None:
        changed = set(new)
    else:
        changed = {cell for cell in set(old) | set(new) if old.get(cell) != new.get(cell)}
    if not changed:
        return
    later = TeamAggregate.objects.filter(
        result__organisation_id=result.organisation_id,
        result__period_start__gt=result.period_start,
        delta_published=True,
    )
    hidden = [
        pk
        for part in _by_teams(later, {cell // 32 for cell in changed})
        for pk, team_id, scope in part.values_list("pk", "team_id", "scope")
        if _cell_base(team_id, scope) in changed
    ]
    for start in range(0, len(hidden), 5000):
        TeamAggregate.objects.filter(pk__in=hidden[start : start + 5000]).update(
            delta_published=False
        )
    logger.info(
        "event=later_changes_hidden result_id=%s cells=%s rows=%s",
        result.pk,
        len(changed),
        len(hidden),
    )


class _Subtrees:
    """A tree of nodes as arrays: every node's subtree as (direct node, node) pairs, so any
    additive figure of the direct nodes rolls up to every node with one ``bincount``.
    ``parent``: each node's parent's position (-1: none); ``direct_at``: the positions of the
    nodes that hold people directly (a direct node is referred to by its index in it)."""

    def __init__(self, parent: NDArray[np.int64], direct_at: NDArray[np.int64]) -> None:
        self.parent = parent
        self.direct_at = direct_at
        # A node's subtree holds a direct node when it is that node or one of its ancestors:
        # every direct node climbs the tree a level at a time, all of them at once.
        owner = np.arange(direct_at.size, dtype=np.int64)
        at = direct_at
        owners: list[NDArray[np.int64]] = []
        ats: list[NDArray[np.int64]] = []
        while at.size:
            if len(owners) > parent.size:  # deeper than a tree of these nodes can be
                raise ValueError("the layout's parents form a cycle")
            owners.append(owner)
            ats.append(at)
            above = parent[at] >= 0
            owner, at = owner[above], parent[at[above]]
        empty = np.zeros(0, dtype=np.int64)
        pair_direct = np.concatenate(owners) if owners else empty
        pair_node = np.concatenate(ats) if ats else empty
        order = np.lexsort((pair_node, pair_direct))
        self.pair_direct = pair_direct[order]
        self.pair_node = pair_node[order]
        # per direct node, its slice of the (sorted) pairs: the nodes whose subtree holds it
        self.count = np.bincount(self.pair_direct, minlength=direct_at.size)
        self.offset = np.concatenate([[0], np.cumsum(self.count)[:-1]]).astype(np.int64)

    def expand(self, owner: NDArray[np.int64]) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
        """For values owned by direct nodes: (value position, node) for every node whose
        subtree covers the value."""
        repeats = self.count[owner]
        element = np.repeat(np.arange(owner.size, dtype=np.int64), repeats)
        starts = np.repeat(self.offset[owner], repeats)
        run_start = np.repeat(np.cumsum(repeats) - repeats, repeats)
        within = np.arange(element.size, dtype=np.int64) - run_start
        return element, self.pair_node[starts + within]


class _Rollup(_Subtrees):
    """The layout as arrays (``_Subtrees``), its nodes in ``layout.parent`` order."""

    def __init__(self, layout: _Layout) -> None:
        self.nodes = list(layout.parent)
        self.position = {node: i for i, node in enumerate(self.nodes)}
        self.direct = list(layout.direct)
        super().__init__(
            np.array(
                [-1 if p is None else self.position[p] for p in layout.parent.values()],
                dtype=np.int64,
            ),
            np.array([self.position[node] for node in self.direct], dtype=np.int64),
        )

    def totals(self, per_direct: NDArray[np.float64]) -> NDArray[np.float64]:
        """node -> sum over its subtree's direct nodes (node order of ``self.nodes``)."""
        totals = np.bincount(
            self.pair_node, weights=per_direct[self.pair_direct], minlength=len(self.nodes)
        )
        return totals.astype(np.float64, copy=False)


@dataclass
class _Summaries:
    """Per node (``_Rollup.nodes`` order) what ``summarise`` gives for its subtree's scores."""

    n: NDArray[np.int64]
    mean: NDArray[np.float64]
    sd: NDArray[np.float64]
    ci_low: NDArray[np.float64]
    ci_high: NDArray[np.float64]
    distribution: NDArray[np.int64]  # nodes x BUCKETS


BUCKETS = len(TeamAggregate.BANDS)  # one column per bucket


def _buckets(x: NDArray[np.float64]) -> NDArray[np.int64]:
    """Each score's bucket, as ``stats.summary`` counts it (``min(x // width, BUCKETS - 1)``
    for scores within 0-100): the number of bucket edges at or below the score.  The edges are
    exact multiples of the width, so this is the same bucket, without a float division per
    score (several times slower over a cycle's scores)."""
    width = 100.0 / BUCKETS
    bucket = np.zeros(x.size, dtype=np.int64)
    for edge in range(1, BUCKETS):
        bucket += x >= edge * width
    return bucket


def summarise_rollup(
    rollup: _Rollup, scores: Sequence[Scores], *, confidence: float = 0.95
) -> _Summaries:
    """``summarise`` of every node's subtree scores at once (scores per direct node, in
    ``rollup.direct`` order, as ``_clean_scores`` gives them: finite and within 0-100).
    Two-pass spread about each node's own mean; t quantiles once per distinct n."""
    sizes = np.array([len(a) for a in scores], dtype=np.int64)
    # one pass over every team's numbers (lists), or their arrays joined
    if any(type(a) is np.ndarray for a in scores):
        values = np.concatenate([np.asarray(a, dtype=np.float64) for a in scores if len(a)])
    else:
        values = np.fromiter(chain.from_iterable(scores), np.float64, count=int(sizes.sum()))
    owner = np.repeat(np.arange(len(scores), dtype=np.int64), sizes)
    return summarise_owned(rollup, owner, values, confidence=confidence)


def summarise_owned(
    rollup: _Rollup,
    owner: NDArray[np.int64],
    values: NDArray[np.float64],
    *,
    confidence: float = 0.95,
) -> _Summaries:
    """``summarise_rollup`` of scores given as one array, with each score's direct node
    (position in ``rollup.direct``)."""
    from scipy import stats as scipy_stats

    nodes = len(rollup.nodes)
    element, node = rollup.expand(owner)
    x = values[element]
    n = np.bincount(node, minlength=nodes)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.bincount(node, weights=x, minlength=nodes) / n
        deviation = x - mean[node]
        m2 = np.bincount(node, weights=deviation * deviation, minlength=nodes)
        sd = np.where(n >= 2, np.sqrt(m2 / (n - 1)), 0.0)
    # all scores equal: no spread, exactly (as the exact variance gives)
    low = np.full(nodes, np.inf)
    high = np.full(nodes, -np.inf)
    np.minimum.at(low, node, x)
    np.maximum.at(high, node, x)
    sd = np.where(low == high, 0.0, sd)
    t = np.zeros(nodes)
    several = n >= 2
    if several.any():
        distinct, inverse = np.unique(n[several], return_inverse=True)
        quantiles = scipy_stats.t.ppf(0.5 + confidence / 2.0, distinct - 1)
        t[several] = np.asarray(quantiles, dtype=np.float64)[inverse]
    with np.errstate(invalid="ignore", divide="ignore"):
        half = t * sd / np.sqrt(n)
        ci_low = np.where(several, np.maximum(0.0, mean - half), 0.0)
        ci_high = np.where(several, np.minimum(100.0, mean + half), 100.0)
    bucket = _buckets(x)
    distribution = np.bincount(node * BUCKETS + bucket, minlength=nodes * BUCKETS).reshape(
        nodes, BUCKETS
    )
    return _Summaries(
        n=n, mean=mean, sd=sd, ci_low=ci_low, ci_high=ci_high, distribution=distribution
    )


_PARTICIPATION_COLUMNS = (
    "result_id",
    "team_id",
    "scope",
    "invited",
    "published",
    "responded",
    "rate",
)
_AGGREGATE_COLUMNS = (
    "result_id", "team_id", "scope", "dimension", "published", "delta_published",
    "n", "index", "sd", "ci_low", "ci_high", *TeamAggregate.BANDS,
)  # fmt: skip


def _aggregates_store(
    *,
    result: CycleResult,
    tree: TeamTree,
    inputs: dict[int, _CleanInput],
    k: int,
    reads: CloseReads,
    figures: Callable[[Columns], None] | None = None,
    batch: CycleScores | None = None,
) -> Iterator[tuple[Any, ...]]:
    """Copy the participation rows; returns the aggregate rows (``_AGGREGATE_COLUMNS``) for the
    caller to copy, built as they are taken (nothing in building them uses the database).
    ``figures`` is called, before those rows are built, with the team and subtree rows of the
    flag window's dimensions and of participation as columns, as ``flags.columns_of_rows``
    gives them.  ``batch``: the teams' indices handed over at once,
    checked (``_batch_checked``); each team's own are empty then."""
    from .analytics import DIMENSIONS
    from .flags import DETECTION_DIMENSIONS

    if not inputs:
        # no figures: nothing to compare with later, but a layout kept all the same (a result
        # of that period without one would hide every change since the period)
        ResultLayout.objects.create(result=result, nodes=b"", asked=False)
        return iter(())
    layout = _layout(tree, inputs)
    rollup = _Rollup(layout)
    guard_tree = GuardTree(rollup.nodes, [layout.parent[node] for node in rollup.nodes])
    direct_at = np.array([rollup.position[node] for node in rollup.direct], dtype=np.int64)
    guarded: dict[bytes, set[int]] = {}

    def guard(counts: NDArray[np.int64]) -> set[int]:
        """Publishable nodes for direct-node counts (``rollup.direct`` order), once per
        distinct set of counts (dimensions answered by the same people share it)."""
        key = counts.tobytes()
        if key not in guarded:
            by_node = np.zeros(len(rollup.nodes), dtype=np.int64)
            by_node[direct_at] = counts
            guarded[key] = guard_tree.publishable(by_node.tolist(), k=k)
        return guarded[key]

    # Participation: the respondent count is itself a figure about fewer-than-k people.
    direct_teams = [layout.direct[node] for node in rollup.direct]
    direct_array = np.array(direct_teams, dtype=np.int64)
    responded = np.array([inputs[t].responded for t in direct_teams], dtype=np.float64)
    invited = np.array([inputs[t].invited for t in direct_teams], dtype=np.float64)
    shown = guard(responded.astype(np.int64))
    # Every row's figures taken at its node as whole columns (see the aggregate rows below).
    row_nodes = [node for node, _, _ in layout.rows]
    row_teams = [team_id for _, team_id, _ in layout.rows]
    row_scopes = [scope for _, _, scope in layout.rows]
    at = np.array([rollup.position[node] for node in row_nodes], dtype=np.int64)
    row_invited = rollup.totals(invited)[at].astype(np.int64)
    row_responded = rollup.totals(responded)[at].astype(np.int64)
    row_shown = np.fromiter((node in shown for node in row_nodes), bool, len(row_nodes))
    rate = np.minimum(1.0, row_responded / np.maximum(row_invited, 1))
    own_rates = np.where(row_invited > 0, rate, 1.0)
    participation = list(
        zip(
            repeat(result.pk),
            row_teams,
            row_scopes,
            row_invited.tolist(),
            row_shown.tolist(),
            _published_column(row_responded, row_shown),
            _published_column(own_rates, row_shown),
            strict=False,
        )
    )

    # Every dimension's rows come in ``layout.rows`` order: the figures are taken at each row's
    # node as whole columns and the rows zipped from them (building each row in a Python loop
    # was the largest part of this function's own time).
    summarised: dict[str, tuple[NDArray[np.bool_], _Summaries]] = {}
    empty: list[float] = []

    def summarise(dimensions: Iterable[str]) -> None:
        for dimension in dimensions:
            if batch is not None:
                counts, owner, values = _owned_scores(batch, dimension, direct_array)
                if not counts.any():
                    continue  # the survey did not ask this dimension
                summaries = summarise_owned(rollup, owner, values)
            else:
                scores = [inputs[t].scores.get(dimension, empty) for t in direct_teams]
                counts = np.array([len(a) for a in scores], dtype=np.int64)
                if not counts.any():
                    continue  # the survey did not ask this dimension
                summaries = summarise_rollup(rollup, scores)
            allowed = guard(counts)
            visible = np.fromiter((node in allowed for node in row_nodes), bool, len(row_nodes))
            summarised[dimension] = (visible & (summaries.n[at] > 0), summaries)

    # The flag window's dimensions first: the flag step computes from them (on the caller's
    # thread) while the other dimensions are summarised.  PostgreSQL takes the participation
    # rows meanwhile (nothing in between uses the connection).
    with rows_copying(TeamParticipation, _PARTICIPATION_COLUMNS, participation, binary=True):
        summarise(d for d in DIMENSIONS if d in DETECTION_DIMENSIONS)
    if figures is not None:
        figures(_window_columns(result.pk, layout.rows, summarised, at, row_shown, own_rates))
    summarise(d for d in DIMENSIONS if d not in DETECTION_DIMENSIONS)
    # The people behind this cycle's figures (those it asked), kept per node with the layout
    # for the next closes' over-time rule.
    row_base = np.array(
        [_cell_base(t, scope) for t, scope in zip(row_teams, row_scopes, strict=True)],
        dtype=np.int64,
    )
    cells = np.zeros(len(rollup.nodes), dtype=np.int64)
    cells[at] = row_base
    people, asked = reads.people(result.cycle_key, result.period_start)
    rosters = _Rosters(layout=layout, rollup=rollup, people=people, cells=cells)
    ResultLayout.objects.create(result=result, nodes=rosters.layout_record().tobytes(), asked=asked)
    deltas: dict[date, NDArray[np.bool_]] = {}

    def delta_rule(previous_period: date) -> NDArray[np.bool_]:
        """Per node (``rollup.nodes`` order): may its change since ``previous_period`` show?
        Against every result of that period that had a figure of the node's cell; never when
        one of them did not keep its layout or its people cannot be listed."""
        if previous_period not in deltas:
            validate_k(k)
            allowed = np.ones(len(rollup.nodes), dtype=bool)
            seen = np.zeros(len(rollup.nodes), dtype=bool)
            for earlier in reads.earlier(previous_period):
                if earlier.nodes is None or earlier.people is None:
                    allowed[:] = False
                    break
                publishable, present = rosters.delta_publishable(earlier.nodes, earlier.people, k=k)
                allowed &= publishable | ~present
                seen |= present
            deltas[previous_period] = allowed & seen
        return deltas[previous_period]

    planned = [(d, *summarised[d]) for d in DIMENSIONS if d in summarised]
    # The over-time rule for the published cells that were published before: the keys of every
    # published cell at once, then per dimension the rows whose cell was, period by period.
    visible_rows = [np.flatnonzero(visible) for _, visible, _ in planned]
    per_cell = [
        row_base[rows] + DIMENSIONS.index(dimension)
        for (dimension, _, _), rows in zip(planned, visible_rows, strict=True)
    ]
    keys = np.concatenate(per_cell) if per_cell else np.zeros(0, dtype=np.int64)
    previous = _previous_published(result=result, keys=keys, published_keys=reads.published_keys)
    # A cell whose latest earlier published figure is older than a result its team took part in
    # since had a later figure, hidden: no change is shown across it (the heatmap compares with
    # a team's previous figure), so its rule is not worked out against the older one.
    previous[_later_figures(result=result, keys=keys, previous=previous)] = 0
    per_dimension: list[Iterator[tuple[Any, ...]]] = []
    start = 0
    for (dimension, visible, summaries), rows in zip(planned, visible_rows, strict=True):
        published = visible.tolist()
        periods = previous[start : start + rows.size]
        start += rows.size
        delta = np.zeros(len(published), dtype=bool)
        for ordinal in sorted_unique(periods[periods > 0]).tolist():
            chosen = rows[periods == ordinal]
            delta[chosen] = delta_rule(date.fromordinal(ordinal))[at[chosen]]
        per_dimension.append(
            zip(
                repeat(result.pk), row_teams, row_scopes, repeat(dimension), published,
                delta.tolist(),
                *[
                    _published_column(figure[at], visible)
                    for figure in (summaries.n, summaries.mean, summaries.sd,
                                   summaries.ci_low, summaries.ci_high, *summaries.distribution.T)
                ],
            )
        )  # fmt: skip
    # every value is of its column's type already (the counts per band included); a
    # layout row's cells are copied one after another (every dimension has a row per layout row), so
    # the unique cell index takes its entries in runs: about a tenth of the COPY's time less
    # than a dimension at a time.  The rows are built as the COPY takes them: PostgreSQL
    # starts on the first ones while the later ones are built.
    return chain.from_iterable(zip(*per_dimension, strict=True))


def _window_columns(
    result_id: int,
    rows: Sequence[tuple[int, int | None, str]],
    summarised: dict[str, tuple[NDArray[np.bool_], _Summaries]],
    at: NDArray[np.int64],
    shown: NDArray[np.bool_],
    rates: NDArray[np.float64],
) -> Columns:
    """The flag window's columns (as ``flags.columns_of_rows`` gives them) of this cycle's team
    and subtree rows (``rows``: ``_Layout.rows``; the organisation's has no team), taken from
    the figures as they are: per dimension of ``summarised`` in the flag window, whether each
    row is published and its n, mean and sd (unpublished: 0 and NaN); per row whether its
    participation is published (``shown``) and its rate (``rates``)."""
    from .flags import DETECTION_DIMENSIONS, columns_of_rows

    teamed = np.array([team_id is not None for _, team_id, _ in rows], dtype=bool)
    teams = np.array([team_id for _, team_id, _ in rows if team_id is not None], dtype=np.int64)
    subtree = np.array([scope == Scope.SUBTREE for _, _, scope in rows], dtype=bool)[teamed]
    parts: dict[str, list[NDArray[Any]]] = defaultdict(list)
    for dimension, (visible, summaries) in summarised.items():
        if dimension not in DETECTION_DIMENSIONS:
            continue
        published = visible[teamed]
        for name, values in (
            ("result", np.full(teams.size, result_id, dtype=np.int64)),
            ("team", teams),
            ("subtree", subtree),
            ("dim", np.full(teams.size, DETECTION_DIMENSIONS.index(dimension), dtype=np.int64)),
            ("published", published),
            ("n", np.where(published, summaries.n[at][teamed], 0.0)),
            ("index", np.where(published, summaries.mean[at][teamed], np.nan)),
            ("sd", np.where(published, summaries.sd[at][teamed], np.nan)),
        ):
            parts[name].append(values)
    empty, _ = columns_of_rows([], [], DETECTION_DIMENSIONS)  # each column's type
    published = shown[teamed]
    return (
        {
            name: np.concatenate(parts[name]).astype(none.dtype) if parts[name] else none
            for name, none in empty.items()
        },
        {
            "result": np.full(teams.size, result_id, dtype=np.int64),
            "team": teams,
            "subtree": subtree,
            "published": published,
            "rate": np.where(published, rates[teamed], np.nan),
        },
    )


def _published_column(values: NDArray[Any], visible: NDArray[np.bool_]) -> list[Any]:
    """Each row's figure as a Python number, None where the cell is not published."""
    figures = values.astype(object)
    figures[~visible] = None
    return figures.tolist()


# A cell (team, scope, dimension) as one integer, so the look-back compares arrays: the team id
# (0 for the organisation's cells) times 32, plus the scope's code times 8, plus the dimension's
# position in ``DIMENSIONS``.  The codes are the scopes' positions in this order.
_SCOPE_CODES = {"team": 0, "subtree": 1, "organisation": 2}
# How many earlier cycles the look-back reads one at a time (``_previous_published``)
LOOK_BACK_STEPS = 4
_CELL_KEY_RECORD = np.dtype([("key", ">i8")])


def _cell_base(team_id: int | None, scope: str) -> int:
    return (team_id or 0) * 32 + _SCOPE_CODES[scope] * 8


def cell_teams(keys: NDArray[np.int64]) -> NDArray[np.int64]:
    """The team id (0: the organisation) of each ``_cell_key``."""
    return keys // 32


def _cell_key(team_id: int | None, scope: str, dimension: str) -> int:
    from .analytics import DIMENSIONS

    return _cell_base(team_id, scope) + DIMENSIONS.index(dimension)


def _published_keys(
    result_ids: Sequence[int], team_ids: NDArray[np.int64] | None
) -> NDArray[np.int64]:
    """``_cell_key`` of the published cells of ``result_ids`` whose team (0: the organisation)
    is in ``team_ids`` (None: every team), as one array."""
    from .analytics import DIMENSIONS

    if connection.vendor == "postgresql":
        # ``_cell_key`` in SQL; the team list joined, not ``= ANY``: PostgreSQL compares each
        # row with every element of a bound array (1.1 s against 16 ms for 8,000 teams)
        teams, params = sql.SQL(""), [list(_SCOPE_CODES), list(DIMENSIONS)]
        if team_ids is not None:
            teams = sql.SQL(" JOIN unnest(%s::int8[]) t(id) ON t.id = COALESCE(a.team_id, 0)")
            params.append(team_ids.tolist())
        return packed_records(
            sql.SQL(
                "SELECT int8send(COALESCE(a.team_id, 0) * 32"
                " + array_position(%s::text[], a.scope::text) * 8 - 8"
                " + array_position(%s::text[], a.dimension::text) - 1) AS packed"
                " FROM wellbeing_teamaggregate a{teams}"
                " WHERE a.result_id = ANY(%s) AND a.published"
            ).format(teams=teams),
            [*params, list(result_ids)],
            _CELL_KEY_RECORD,
        )["key"].astype(np.int64)
    wanted = None if team_ids is None else set(team_ids.tolist())
    rows = TeamAggregate.objects.filter(result_id__in=result_ids, published=True)
    return np.array(
        [
            _cell_key(*row)
            for row in rows.values_list("team_id", "scope", "dimension")
            if wanted is None or (row[0] or 0) in wanted
        ],
        dtype=np.int64,
    )


def recent_results(
    *, organisation_id: int, before: date, steps: int = LOOK_BACK_STEPS
) -> tuple[dict[date, list[int]], bool]:
    """The organisation's ``steps`` latest results before ``before``, by period, and whether
    the earliest period's list is complete (fewer results were found than asked for, so none
    of that period was cut off)."""
    recent = list(
        CycleResult.objects.filter(organisation_id=organisation_id, period_start__lt=before)
        .order_by("-period_start")
        .values_list("pk", "period_start")[:steps]
    )
    by_period: dict[date, list[int]] = defaultdict(list)
    for pk, period in recent:
        by_period[period].append(pk)
    return dict(by_period), len(recent) < steps


def _by_teams(rows: QuerySet[Any], teams: Iterable[int]) -> list[QuerySet[Any]]:
    """``rows`` of these teams (0: the organisation) as separate querysets: the teams' by the
    team index, the organisation's apart (an OR with IS NULL would read every row)."""
    wanted = set(teams)
    parts = [rows.filter(team_id__in=sorted(wanted - {0}))] if wanted - {0} else []
    if 0 in wanted:
        parts.append(rows.filter(team__isnull=True))
    return parts


def _later_figures(
    *, result: CycleResult, keys: NDArray[np.int64], previous: NDArray[np.int64]
) -> NDArray[np.bool_]:
    """For each cell (``keys``, with ``previous`` from ``_previous_published``): did its team
    (0: the organisation) take part in a result after that previous period and before this
    one?  One read, of the teams whose previous figure is older than the latest earlier one."""
    later = np.zeros(keys.size, dtype=bool)
    found = previous[previous > 0]
    if not found.size:
        return later
    older = (previous > 0) & (previous < found.max())
    if not older.any():
        return later
    teams = cell_teams(keys[older])
    rows = TeamParticipation.objects.filter(
        result__organisation_id=result.organisation_id,
        result__period_start__gt=date.fromordinal(int(previous[older].min())),
        result__period_start__lt=result.period_start,
    )
    last: dict[int, int] = {}
    for part in _by_teams(rows, teams.tolist()):
        for team_id, period in part.values_list("team_id", "result__period_start"):
            team, ordinal = team_id or 0, period.toordinal()
            last[team] = max(last.get(team, 0), ordinal)
    cell_team = cell_teams(keys)
    for i in np.flatnonzero(older).tolist():
        later[i] = last.get(int(cell_team[i]), 0) > previous[i]
    return later


def _previous_published(
    *,
    result: CycleResult,
    keys: NDArray[np.int64],
    steps: int = LOOK_BACK_STEPS,
    published_keys: Callable[
        [Sequence[int], NDArray[np.int64]], NDArray[np.int64]
    ] = _published_keys,
) -> NDArray[np.int64]:
    """For each cell in ``keys`` (``_cell_key`` of the cells published now), the period of its
    latest earlier published figure as a day ordinal (``date.toordinal``), 0 if there is none.
    The cycles just before are read one at a time for the cells still unresolved (almost every
    cell was published last time); after ``steps`` of them the rest is one MAX over the whole
    history of those cells' teams.  The per-cycle reads filter on the result and the team and
    read only the cell index (``published`` is in it); ``published_keys`` does them."""
    out = np.zeros(keys.size, dtype=np.int64)
    if not keys.size:
        return out
    by_period, complete = recent_results(
        organisation_id=result.organisation_id, before=result.period_start, steps=steps
    )
    periods = sorted(by_period, reverse=True)
    for i, period in enumerate(periods):
        if i == len(periods) - 1 and not complete:
            break  # this period may have more results than were read: the MAX below covers it
        remaining = out == 0
        published = published_keys(by_period[period], sorted_unique(cell_teams(keys[remaining])))
        out[remaining & np.isin(keys, published)] = period.toordinal()
        if out.all():
            return out
    remaining = out == 0
    teams = sorted_unique(cell_teams(keys[remaining]))
    history = TeamAggregate.objects.filter(
        result__organisation_id=result.organisation_id,
        result__period_start__lt=result.period_start,
        published=True,
    )
    latest = {
        _cell_key(team_id, scope, dimension): period.toordinal()
        for part in _by_teams(history, teams.tolist())
        for team_id, scope, dimension, period in part.values("team_id", "scope", "dimension")
        .annotate(latest=Max("result__period_start"))
        .values_list("team_id", "scope", "dimension", "latest")
    }
    at = np.flatnonzero(remaining)
    out[at] = [latest.get(key, 0) for key in keys[at].tolist()]
    return out
