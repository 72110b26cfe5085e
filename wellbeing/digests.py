"""The leads' digest after each close: this check-in's results for the teams each person leads.

Per team it gives what the team's dashboard shows first, read from the rows the close has just
stored through the anonymity guard: the headline stress index (the subtree's cell before the
direct members', ``analytics_selectors.primary_rows``) and the share who took part, each only
when published; a team whose figures are hidden says so, with no number.  No change since the
last check-in is given (the dashboard shows changes only where the over-time rule allows them),
and the open flags are counted.  People mute digests on their notification preferences.
"""

from __future__ import annotations

import uuid
from collections import Counter, defaultdict
from operator import itemgetter
from typing import Any

from .analytics_selectors import headline
from .models import (
    CycleResult,
    Flag,
    Organisation,
    Scope,
    TeamAggregate,
    TeamLead,
    TeamParticipation,
)


def _headline(rows: list[tuple[int, str, bool, Any]]) -> dict[int, tuple[bool, Any]]:
    """team id -> (published, value) of its headline cell (``analytics_selectors.headline``)."""
    chosen = headline(rows, key=itemgetter(0), scope=itemgetter(1))
    return {team_id: (published, value) for team_id, (_, _, published, value) in chosen.items()}


def lead_digests(*, organisation: Organisation, cycle_key: uuid.UUID) -> dict[int, dict[str, Any]]:
    """Active lead's user id -> their digest's context (``teams``: one entry per team they lead
    that has results in this cycle, by name; ``period``), for the cycle stored as ``cycle_key``."""
    result = CycleResult.objects.filter(organisation=organisation, cycle_key=cycle_key).first()
    if result is None:
        return {}
    scopes = [Scope.SUBTREE, Scope.TEAM]
    stress = _headline(
        list(
            TeamAggregate.objects.filter(
                result=result, dimension="stress", scope__in=scopes, team__isnull=False
            ).values_list("team_id", "scope", "published", "index")
        )
    )
    participation = _headline(
        list(
            TeamParticipation.objects.filter(
                result=result, scope__in=scopes, team__isnull=False
            ).values_list("team_id", "scope", "published", "rate")
        )
    )
    leads = TeamLead.objects.filter(
        team_id__in=list(stress), user__is_active=True, team__is_active=True
    ).values_list("user_id", "team_id", "team__name")
    open_flags = Counter(
        Flag.objects.filter(
            organisation=organisation, team_id__in=list(stress), state__in=Flag.ACTIVE_STATES
        ).values_list("team_id", flat=True)
    )
    teams: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for user_id, team_id, name in leads:
        shown, index = stress[team_id]
        rate_shown, rate = participation.get(team_id, (False, None))
        teams[user_id].append(
            {
                "name": name,
                "shown": bool(shown and index is not None),
                "stress": round(index) if shown and index is not None else None,
                "participation": round(rate * 100) if rate_shown and rate is not None else None,
                "open_flags": open_flags.get(team_id, 0),
            }
        )
    period = result.period_start.isoformat()
    return {
        user_id: {"teams": sorted(entries, key=lambda t: t["name"].casefold()), "period": period}
        for user_id, entries in teams.items()
    }
