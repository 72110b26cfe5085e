"""What a cycle close reads that does not depend on the cycle's answers, read while it reads them.

The close starts by reading the cycle's answers' indices (stored when they were released, or
scored then by PostgreSQL when they were not).  Several of its other reads need nothing from
that step: the team tree, the cells the previous cycles published (the over-time differencing
rule's look-back), the people behind this cycle's figures and the previous cycle's, with that
cycle's layout (the same rule's rosters: the people each cycle asked, or else the organisation's
memberships), the earlier cycles of the flag window, and reads of the caller's own (the check-in close: each team's invited
count, once the opening has written every invitation).  ``CloseReads.ahead`` starts them on
other database connections, in two threads that each read theirs one after another in the
order the close takes them, so PostgreSQL serves them on the other core meanwhile; the close
then takes each one when it gets there, waiting only for those not read yet.

Only on PostgreSQL and only when the caller is outside a transaction: a second connection sees
committed rows only, so inside someone's transaction (tests wrapped in one, a caller's atomic
block) every read runs inline, through the same functions, when it is first needed.  A read
ahead that fails (e.g. no connection slot left) is logged by its name and error type and done
inline.

What is read ahead is what the close would read half a second later: results are immutable once
stored (a recompute stores a new one, which the close then reads inline, by its id), and a
membership or team changed while a cycle closes is a race the close always had.  A cycle's own
roster is read ahead only when the caller names the cycle (``cycle_key``), once its invitations
are all written.
"""

from __future__ import annotations

import logging
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from datetime import date
from typing import TYPE_CHECKING, Any

import numpy as np
from django.db import connection, connections
from django.db.models import Subquery
from numpy.typing import NDArray

from .models import CycleResult, Organisation

if TYPE_CHECKING:
    from .aggregation import Earlier
    from .analytics import Roster, RosterSource
    from .analytics_selectors import TeamTree

logger = logging.getLogger(__name__)

Columns = tuple[dict[str, NDArray[Any]], dict[str, NDArray[Any]]]


class CloseReads:
    """The close's answer-independent reads for one organisation and period: each one either
    read ahead (``ahead``) or, otherwise, read inline when asked for."""

    # The reads ahead, in two lanes, each one after another on its own thread and connection,
    # so that each is there when the close asks for it.  The first lane: the tree, then the
    # flag window's columns, the largest, wanted once the window's dimensions are summarised.
    # The second lane: the caller's own (wanted once the answers are scored), the look-back's
    # cells, then the rosters of the over-time rule ("people"), both wanted after the window's
    # columns (in one lane with those, the rosters came later than the rule asked for them).  With the
    # caller's own read first in the first lane, the window's columns came after the window's
    # dimensions were summarised, and the flag step, which starts from both, waited for them:
    # the analytic phase took 0.70 s against 0.61 s (medians of ten closes at 100,000 people,
    # alternating).
    LANES = (("tree", "history_columns"), ("published_keys", "people"))
    NAMES = tuple(name for lane in LANES for name in lane)

    def __init__(
        self,
        *,
        organisation: Organisation,
        period_start: date,
        first: Mapping[str, Callable[[], Any]] | None = None,
        rosters: RosterSource | None = None,
        cycle_key: uuid.UUID | None = None,
    ) -> None:
        self.organisation = organisation
        self.period_start = period_start
        self.first = dict(first or {})
        self.rosters = rosters
        self.cycle_key = cycle_key
        self._futures: dict[str, Future[Any]] = {}
        self._early: dict[str, Any] = {}
        self._asked: dict[uuid.UUID, Roster] = {}
        self._memberships: tuple[NDArray[np.int64], ...] | None = None

    @classmethod
    @contextmanager
    def ahead(
        cls,
        *,
        organisation: Organisation,
        period_start: date,
        first: Mapping[str, Callable[[], Any]] | None = None,
        rosters: RosterSource | None = None,
        cycle_key: uuid.UUID | None = None,
    ) -> Iterator[CloseReads]:
        """The reads, started now on a second connection when it would see what this one sees
        (see the module docstring); ``first``: the caller's own reads of that kind, by name,
        read before the rest (``get``); ``rosters``: who each cycle asked, by cycle key;
        ``cycle_key``: this cycle's, to read its roster ahead.  Leaving the block waits for
        the thread, which closes its connection."""
        reads = cls(
            organisation=organisation,
            period_start=period_start,
            first=first,
            rosters=rosters,
            cycle_key=cycle_key,
        )
        if connection.vendor != "postgresql" or connection.in_atomic_block:
            yield reads
            return
        with ExitStack() as lanes:
            for i, names in enumerate(cls.LANES):
                pool = lanes.enter_context(
                    ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"close-reads-{i}")
                )
                lane = (*reads.first, *names) if i == 1 else names
                for name in lane:
                    reads._futures[name] = pool.submit(reads._read_ahead, name, last=lane[-1])
            yield reads

    def get(self, name: str) -> Any:
        """The caller's own read ``name`` (given as ``first``): read ahead, or read now; None
        when it was not given."""
        if name not in self.first:
            return None
        early = self._read(name)
        return early if early is not None else self.first[name]()

    def _read_ahead(self, name: str, *, last: str) -> Any:
        """Read ``name`` on this thread's connection, closed after ``last``, its lane's last."""
        from .aggregation import _published_keys, membership_arrays, recent_results
        from .analytics_selectors import team_tree
        from .flags import DETECTION_DIMENSIONS, HISTORY_CYCLES, _history_columns_copy

        try:
            if name in self.first:
                return self.first[name]()
            if name == "tree":
                return team_tree(organisation=self.organisation)
            if name == "people":
                # the latest earlier period's results with their layouts, the rosters of this
                # cycle and of those results that keep who was asked, and the memberships when
                # anything is to be listed from them
                layouts = _layouts(self.organisation, before=self.period_start)
                earlier = [row for rows in layouts.values() for row in rows]
                keys = [key for key, asked, nodes in earlier if asked and nodes]
                if self.cycle_key is not None:
                    keys.append(self.cycle_key)
                asked = dict(self.rosters(keys)) if self.rosters is not None and keys else {}
                members = (
                    self.rosters is None
                    or (self.cycle_key is not None and self.cycle_key not in asked)
                    or any(not asked_ and nodes for _, asked_, nodes in earlier)
                )
                return {
                    "layouts": layouts,
                    "asked": asked,
                    "memberships": membership_arrays(self.organisation) if members else None,
                }
            if name == "published_keys":
                by_period, _ = recent_results(
                    organisation_id=self.organisation.pk, before=self.period_start
                )
                return {
                    tuple(sorted(ids)): _published_keys(ids, None) for ids in by_period.values()
                }
            # the window the flag job will read is this cycle's result and the ones before it
            window = sorted(
                CycleResult.objects.filter(
                    organisation=self.organisation, period_start__lt=self.period_start
                )
                .order_by("-period_start", "-closed_at")
                .values_list("pk", flat=True)[: HISTORY_CYCLES - 1]
            )
            return window, _history_columns_copy(window, DETECTION_DIMENSIONS)
        finally:
            if name == last:
                connections.close_all()  # this thread's connections only

    def _read(self, name: str) -> Any:
        """What was read ahead under ``name``, or None (not read ahead, or the read failed)."""
        future = self._futures.pop(name, None)
        if future is not None:
            try:
                self._early[name] = future.result()
            except Exception as exc:
                logger.warning(
                    "event=close_reads status=failed read=%s error=%s", name, type(exc).__name__
                )
        return self._early.get(name)

    def tree(self) -> TeamTree:
        from .analytics_selectors import team_tree

        early = self._read("tree")
        return early if early is not None else team_tree(organisation=self.organisation)

    def memberships(self) -> tuple[NDArray[np.int64], ...]:
        """``aggregation.membership_arrays`` of the organisation, read once."""
        from .aggregation import membership_arrays

        if self._memberships is None:
            early = self._read("people")
            if early is not None and early["memberships"] is not None:
                self._memberships = early["memberships"]
            else:
                self._memberships = membership_arrays(self.organisation)
        return self._memberships

    def _roster(self, cycle_key: uuid.UUID) -> Roster | None:
        """Who the cycle ``cycle_key`` asked (``rosters``); None when that is not known."""
        if self.rosters is None:
            return None
        if cycle_key not in self._asked:
            early = self._read("people")
            roster = early["asked"].get(cycle_key) if early is not None else None
            if roster is None:
                roster = self.rosters([cycle_key]).get(cycle_key)
            if roster is None:
                return None
            self._asked[cycle_key] = roster
        return self._asked[cycle_key]

    def _members_on(self, day: date) -> Roster:
        """The memberships on ``day`` as (team ids, user ids)."""
        teams, users, starts, ends = self.memberships()
        active = (starts <= day.toordinal()) & (ends >= day.toordinal())
        return teams[active], users[active]

    def people(self, cycle_key: uuid.UUID, period_start: date) -> tuple[Roster, bool]:
        """The people behind the figures of the cycle being stored, and whether they are the
        people it asked (``rosters``) or, without those, the memberships on its period start."""
        roster = self._roster(cycle_key)
        if roster is not None:
            return roster, True
        return self._members_on(period_start), False

    def earlier(self, period: date) -> list[Earlier]:
        """The organisation's results of ``period`` (before this cycle's), each with its layout
        and the people behind it as they are listed now: those its cycle asked, or the
        memberships on its period start, whichever its layout counted."""
        from .aggregation import _LAYOUT_RECORD, Earlier

        early = self._read("people")
        rows = early["layouts"].get(period) if early is not None else None
        if rows is None:
            rows = _layouts(self.organisation, period=period).get(period, [])
        out = []
        for cycle_key, asked, nodes in rows:
            if nodes is None:
                out.append(Earlier(None, None))
                continue
            layout = np.frombuffer(nodes, dtype=_LAYOUT_RECORD)
            if not layout.size:
                none = np.zeros(0, dtype=np.int64)
                out.append(Earlier(layout, (none, none)))
            elif asked:
                out.append(Earlier(layout, self._roster(cycle_key)))
            else:
                out.append(Earlier(layout, self._members_on(period)))
        return out

    def published_keys(
        self, result_ids: Sequence[int], team_ids: NDArray[np.int64]
    ) -> NDArray[np.int64]:
        """``aggregation._published_keys``, from the cells read ahead when ``result_ids`` are
        the results of one of the periods just before."""
        from .aggregation import _published_keys, cell_teams

        early = self._read("published_keys")
        keys: NDArray[np.int64] | None = None
        if early is not None:
            keys = early.get(tuple(sorted(result_ids)))
        if keys is None:
            return _published_keys(result_ids, team_ids)
        return keys[np.isin(cell_teams(keys), team_ids)]

    def history_columns(self, result_ids: Sequence[int], dimensions: Sequence[str]) -> Columns:
        """The flag window's columns (``flags._history_columns_copy``, or the ORM's on another
        database): the results read ahead taken from what was read, any other (the cycle being
        closed) read now."""
        from .flags import DETECTION_DIMENSIONS, history_columns_reader

        read = history_columns_reader()
        early = self._read("history_columns")
        if early is None or tuple(dimensions) != DETECTION_DIMENSIONS:
            return read(result_ids, dimensions)
        window, (agg, part) = early
        have = sorted(set(window) & set(result_ids))
        missing = sorted(set(result_ids) - set(have))
        if have == window and not missing:
            return agg, part  # the whole window read ahead: as it is, not copied
        parts = [(agg, part) if have == window else _rows_of(agg, part, have)]
        if missing:
            parts.append(read(missing, dimensions))
        return (
            {key: np.concatenate([p[0][key] for p in parts]) for key in agg},
            {key: np.concatenate([p[1][key] for p in parts]) for key in part},
        )


def _layouts(
    organisation: Organisation, *, before: date | None = None, period: date | None = None
) -> dict[date, list[tuple[uuid.UUID, bool | None, bytes | None]]]:
    """The organisation's results of ``period``, or of the latest period before ``before``, by
    period: each one's cycle key, whether its layout counted the people asked, and its layout
    (``ResultLayout.nodes``; None for both when it kept none)."""
    results = CycleResult.objects.filter(organisation=organisation)
    if period is None:
        latest = (
            results.filter(period_start__lt=before)
            .order_by("-period_start")
            .values("period_start")[:1]
        )
        results = results.filter(period_start=Subquery(latest))
    else:
        results = results.filter(period_start=period)
    out: dict[date, list[tuple[uuid.UUID, bool | None, bytes | None]]] = defaultdict(list)
    for period_start, cycle_key, asked, nodes in results.order_by("pk").values_list(
        "period_start", "cycle_key", "layout__asked", "layout__nodes"
    ):
        out[period_start].append((cycle_key, asked, None if nodes is None else bytes(nodes)))
    return dict(out)


def _rows_of(
    agg: dict[str, NDArray[Any]], part: dict[str, NDArray[Any]], result_ids: Sequence[int]
) -> Columns:
    """The rows of ``result_ids`` in history columns."""
    ids = np.asarray(result_ids, dtype=np.int64)
    a, p = np.isin(agg["result"], ids), np.isin(part["result"], ids)
    return {k: v[a] for k, v in agg.items()}, {k: v[p] for k, v in part.items()}
