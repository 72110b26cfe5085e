"""The analytics entry point the check-in close job calls (contract between the apps).

Check-ins compute, per team and dimension, the respondents' 0-100 indices (higher = worse) and
hand them over here as plain data; wellbeing stores the per-cycle aggregates (through the
anonymity guard), runs trend detection and updates flags.  Wellbeing never imports check-ins, so
alerts come back as plain data (``FlagChange``) for the caller to put in the notifications outbox.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from .models import Organisation

if TYPE_CHECKING:
    from .analytics_selectors import TeamTree
    from .close_reads import CloseReads

# Every dimension Pulse measures; indices are 0-100 with higher meaning worse.
DIMENSIONS: tuple[str, ...] = (
    "stress",
    "wellbeing",
    "client_burnout",
    "burnout",
    "workload",
    "recovery",
    "support",
)


@dataclass(frozen=True)
class TeamCycleInput:
    """One team's results for one closed cycle, as check-ins hand them over."""

    team_id: int
    invited: int
    responded: int
    # dimension -> one 0-100 index per respondent who answered items of that dimension (a list,
    # or a float array; None/NaN = missing)
    scores: Mapping[str, Sequence[float | None] | NDArray[np.float64]] = field(default_factory=dict)


@dataclass(frozen=True)
class CycleScores:
    """Every team's per-respondent indices of one cycle at once, as the close computes them:
    ``team_ids`` sorted, and per dimension each team's count of indices (``team_ids`` order)
    and all of them in one float array, team after team.  Handed over beside the teams
    (``cycle_results_record``), so thousands of teams' indices need no object per team."""

    team_ids: NDArray[np.int64]
    counts: Mapping[str, NDArray[np.int64]]
    values: Mapping[str, NDArray[np.float64]]

    def by_team(self) -> dict[int, dict[str, NDArray[np.float64]]]:
        """The same indices team by team (``TeamCycleInput.scores``), each a view."""
        out: dict[int, dict[str, NDArray[np.float64]]] = {}
        team_ids = self.team_ids.tolist()
        for dimension, counts in self.counts.items():
            edges = np.concatenate([[0], np.cumsum(counts)]).tolist()
            values = self.values[dimension]
            for team_id, low, high in zip(team_ids, edges[:-1], edges[1:], strict=True):
                if high > low:
                    out.setdefault(team_id, {})[dimension] = values[low:high]
        return out


# The people one cycle asked to answer: the team and the person of each invitation, as two
# arrays of ids (a person once per cycle).  The over-time rule compares these, cycle by cycle.
Roster = tuple[NDArray[np.int64], NDArray[np.int64]]
# Given cycle keys, the ``Roster`` of each cycle the caller knows (the others left out).
RosterSource = Callable[[Sequence[uuid.UUID]], Mapping[uuid.UUID, Roster]]


@dataclass(frozen=True)
class FlagChange:
    """A flag opened, escalated or resolved by this cycle, with whom to alert and what to say.

    ``context`` holds aggregate facts only (never anything from fewer than k people)."""

    flag_id: int
    team_id: int
    kind: str
    change: str  # "opened" | "escalated" | "resolved" | "reopened"
    severity: str
    recipient_ids: tuple[int, ...]
    context: dict
    idempotency_key: str


def cycle_results_record(
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
    """Store aggregates for a closed cycle, detect trends, update flags; idempotent per cycle_key.

    Runs inside the caller's transaction.  Returns the flag changes that need alerts.
    ``reads``: from ``cycle_results_reads`` for the same organisation and period, entered
    before the caller computed ``teams``.  ``scores``: every team's indices at once, instead
    of each team's own ``scores`` (which must then be empty).  ``rosters``: who each cycle
    asked, by cycle key (when not given to ``cycle_results_reads``): the over-time rule
    compares the people behind two cycles' figures; without it, the memberships on each
    period's start as they are at the close stand in for them, which miss a membership entered
    later with an earlier start, and the people asked for another of their teams."""
    from .aggregation import cycle_results_store  # implemented with the trends capability

    return cycle_results_store(
        organisation=organisation,
        cycle_key=cycle_key,
        period_start=period_start,
        closed_at=closed_at,
        teams=teams,
        reads=reads,
        scores=scores,
        rosters=rosters,
    )


def cycle_comments_record(
    *,
    organisation: Organisation,
    cycle_key: uuid.UUID,
    teams: Sequence[TeamCycleInput],
    comments: Mapping[int, Sequence[str]],
    tree: TeamTree | None = None,
) -> int:
    """Store a closed cycle's free-text comments (``comments``: team id -> that team's comments)
    for the groups the guard lets out at the organisation's comment threshold, shuffled;
    nothing when comments are off.  After ``cycle_results_record`` for the same ``cycle_key``
    and ``teams``, in the caller's transaction; idempotent.  Returns the groups stored."""
    from .comments import cycle_comments_store

    return cycle_comments_store(
        organisation=organisation, cycle_key=cycle_key, teams=teams, comments=comments, tree=tree
    )


def cycle_results_reads(
    *,
    organisation: Organisation,
    period_start: date,
    first: Mapping[str, Callable[[], Any]] | None = None,
    rosters: RosterSource | None = None,
    cycle_key: uuid.UUID | None = None,
) -> AbstractContextManager[CloseReads]:
    """Start what ``cycle_results_record`` reads that does not depend on the answers, so the
    database serves it while the caller scores them (``wellbeing.close_reads``).  Enter it
    before starting the transaction that scores and records the cycle.  ``first``: the
    caller's own such reads, by name, read before the rest (``CloseReads.get``).
    ``rosters``: who each cycle asked (see ``cycle_results_record``); ``cycle_key``: this
    cycle's, when its invitations are all written, to read its roster ahead too."""
    from .close_reads import CloseReads

    return CloseReads.ahead(
        organisation=organisation,
        period_start=period_start,
        first=first,
        rosters=rosters,
        cycle_key=cycle_key,
    )
