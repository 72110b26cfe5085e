"""The leads' digest after each close: this check-in's results for the teams each person leads.

A lead's digest covers the teams their dashboards show them (``policy.visible_team_ids``): the
teams they lead and all their sub-teams, in tree order (a parent before its sub-teams, siblings
by name), each named by its path from the top of the organisation ("Support / Tier 1"), since a
team's name is unique only under its parent.  Per team it gives what the team's dashboard shows
first, read from the rows the close has just stored through the anonymity guard: the headline
stress index (the subtree's cell before the direct members', ``analytics_selectors.headline``)
and the share who took part, each only when published; a team whose figures are hidden says so,
with no number.  No change since the last check-in is given (the dashboard shows changes only
where the over-time rule allows them), and the open flags are counted.  It never computes a
figure of its own: a sub-team listed under its parent shows only what the guard published for
it, so the listing cannot be differenced into a hidden cell.  People mute digests on their
notification preferences.
"""

from __future__ import annotations

import uuid
from collections import Counter, defaultdict
from collections.abc import Iterator
from operator import itemgetter
from typing import Any

from .analytics_selectors import TeamTree, headline, team_tree
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


def _teams_in_tree_order(
    *, tree: TeamTree, leads_of: dict[int, frozenset[int]]
) -> Iterator[tuple[int, str, str, bool, frozenset[int]]]:
    """Every team of ``tree``: (id, name, path, active, who sees it as a lead — the leads of the
    team or of one of its ancestors, as ``policy.visible_team_ids`` gives them), parents before
    their sub-teams, siblings by name."""

    def last_first(team_ids: list[int]) -> list[int]:
        # reversed, so that the stack below pops siblings in order of their names
        def by_name(team_id: int) -> tuple[str, str, int]:
            name = tree.teams[team_id].name
            return name.casefold(), name, team_id

        return sorted(team_ids, key=by_name, reverse=True)

    empty: frozenset[int] = frozenset()
    # (team, its ancestors' names, who sees its parent); a stack, not recursion: trees are deep
    stack = [(team_id, (), empty) for team_id in last_first(tree.children.get(None, []))]
    while stack:
        team_id, above, inherited = stack.pop()
        team = tree.teams[team_id]
        path = (*above, team.name)
        viewers = inherited | leads_of.get(team_id, empty)
        yield team_id, team.name, " / ".join(path), team.is_active, viewers
        stack.extend((child, path, viewers) for child in last_first(tree.children.get(team_id, [])))


def lead_digests(*, organisation: Organisation, cycle_key: uuid.UUID) -> dict[int, dict[str, Any]]:
    """Active lead's user id -> their digest's context (``teams``: one entry per team they can
    see on their dashboards — the teams they lead and their sub-teams — that is active and has
    results in this cycle, in tree order; ``period``), for the cycle stored as ``cycle_key``.
    Six queries, however many leads and teams."""
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
    if not stress:
        return {}
    led: dict[int, set[int]] = defaultdict(set)
    for user_id, team_id in TeamLead.objects.filter(
        team__organisation=organisation, user__organisation=organisation, user__is_active=True
    ).values_list("user_id", "team_id"):
        led[team_id].add(user_id)
    if not led:
        return {}
    open_flags = Counter(
        Flag.objects.filter(
            organisation=organisation, team_id__in=list(stress), state__in=Flag.ACTIVE_STATES
        ).values_list("team_id", flat=True)
    )
    teams: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for team_id, name, path, is_active, viewers in _teams_in_tree_order(
        tree=team_tree(organisation=organisation),
        leads_of={team: frozenset(ids) for team, ids in led.items()},
    ):
        if not viewers or not is_active or team_id not in stress:
            continue
        shown, index = stress[team_id]
        rate_shown, rate = participation.get(team_id, (False, None))
        entry = {
            "name": name,
            "path": path,
            "shown": bool(shown and index is not None),
            "stress": round(index) if shown and index is not None else None,
            "participation": round(rate * 100) if rate_shown and rate is not None else None,
            "open_flags": open_flags.get(team_id, 0),
        }
        for user_id in viewers:
            teams[user_id].append(entry)
    period = result.period_start.isoformat()
    return {user_id: {"teams": entries, "period": period} for user_id, entries in teams.items()}
