"""Reads of the stored free-text comments for the dashboards and the API.

Reads ``TeamComments`` only (written at close through the guard, ``wellbeing.comments``), never
check-in responses; shows nothing while the organisation has comments off; shuffles the list
afresh on every read.  The caller decides who may see the team (``wellbeing.policy``).
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import date

from .comments import comment_threshold
from .errors import ServiceError
from .guard import shuffled
from .models import CycleResult, Organisation, Scope, Team, TeamComments, TeamParticipation

# How far back the latest cycle with comments is looked for (two rows per cycle at most).
LOOK_BACK_ROWS = 200


@dataclass(frozen=True)
class TeamCommentsShown:
    """What a team's comments section shows: comments of one cycle, or none."""

    enabled: bool  # the organisation has comments on
    threshold: int  # comments are shown for groups of at least this many people
    period_start: date | None = None  # the cycle the comments come from
    scope: str | None = None  # Scope.SUBTREE (a parent team's) or Scope.TEAM
    comments: list[str] = field(default_factory=list)


def team_comments(
    *, team: Team, period_start: date | None = None, rng: random.Random | None = None
) -> TeamCommentsShown:
    """The team's stored comments of its latest cycle that has them (or of the cycle starting on
    ``period_start``), from its headline group: the whole subtree for a team that had sub-teams
    in that cycle, its own people otherwise.  Shuffled on every call (``rng``: tests only).

    ``ServiceError`` ``not_found`` (404) when no stored cycle of the organisation starts on
    ``period_start``.  At most four queries; the caller checks ``policy.can_view_team``."""
    organisation = team.organisation
    shown = TeamCommentsShown(
        enabled=organisation.comments_enabled, threshold=comment_threshold(organisation)
    )
    if not organisation.comments_enabled:
        return shown
    results = CycleResult.objects.filter(organisation_id=organisation.pk)
    if period_start is not None:
        results = results.filter(period_start=period_start)
        if not results.exists():
            raise ServiceError("not_found", "No closed cycle starts on that date.", status=404)
    rows = list(
        TeamComments.objects.filter(
            team=team, scope__in=[Scope.TEAM, Scope.SUBTREE], result__in=results
        )
        .order_by("-result__period_start", "-result__closed_at", "-result_id")
        .values_list("pk", "result_id", "scope", "result__period_start")[:LOOK_BACK_ROWS]
    )
    if not rows:
        return shown
    # A team's own group is its headline only when it had no sub-teams in that cycle: the close
    # stores a participation row for every group of the cycle, published or not.
    parent_in = set(
        TeamParticipation.objects.filter(
            team=team, scope=Scope.SUBTREE, result_id__in={row[1] for row in rows}
        ).values_list("result_id", flat=True)
    )
    by_result: dict[int, dict[str, tuple[int, date]]] = {}
    for pk, result_id, scope, period in rows:
        by_result.setdefault(result_id, {})[scope] = (pk, period)
    for result_id in dict.fromkeys(row[1] for row in rows):  # latest first
        groups = by_result[result_id]
        headline = Scope.SUBTREE if Scope.SUBTREE in groups or result_id in parent_in else None
        scope = headline or Scope.TEAM
        if scope not in groups:
            continue  # the headline group was held back (or wrote nothing) that cycle
        pk, period = groups[scope]
        texts = TeamComments.objects.filter(pk=pk).values_list("comments", flat=True).first()
        return TeamCommentsShown(
            enabled=True,
            threshold=shown.threshold,
            period_start=period,
            scope=str(scope),
            comments=shuffled([str(text) for text in texts or ()], rng=rng),
        )
    return shown


def organisation_comments(
    *, organisation: Organisation, rng: random.Random | None = None
) -> TeamCommentsShown:
    """The organisation-wide comments of the latest cycle that stored them (the group of every
    team the cycle asked), shuffled on every call; for admins (the caller checks)."""
    shown = TeamCommentsShown(
        enabled=organisation.comments_enabled, threshold=comment_threshold(organisation)
    )
    if not organisation.comments_enabled:
        return shown
    row = (
        TeamComments.objects.filter(
            result__organisation_id=organisation.pk, team__isnull=True, scope=Scope.ORGANISATION
        )
        .order_by("-result__period_start", "-result__closed_at", "-result_id")
        .values_list("result__period_start", "comments")
        .first()
    )
    if row is None:
        return shown
    period, texts = row
    return TeamCommentsShown(
        enabled=True,
        threshold=shown.threshold,
        period_start=period,
        scope=str(Scope.ORGANISATION),
        comments=shuffled([str(text) for text in texts or ()], rng=rng),
    )
