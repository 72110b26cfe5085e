"""Reads about the organisation used by pages, the API and other apps."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from datetime import date

from django.db.models import QuerySet

from .models import Membership, Organisation, Team, User


def team_children_map(*, organisation: Organisation) -> dict[int | None, list[int]]:
    """parent id -> child ids for the whole organisation, in one query."""
    children: dict[int | None, list[int]] = defaultdict(list)
    for team_id, parent_id in Team.objects.filter(organisation=organisation).values_list(
        "id", "parent_id"
    ):
        children[parent_id].append(team_id)
    return children


def team_subtree_ids(*, organisation: Organisation, roots: Iterable[int]) -> set[int]:
    """The given teams and all their descendants."""
    children = team_children_map(organisation=organisation)
    result: set[int] = set()
    stack = list(roots)
    while stack:
        team_id = stack.pop()
        if team_id in result:
            continue
        result.add(team_id)
        stack.extend(children.get(team_id, ()))
    return result


def team_members_on(*, team_ids: Iterable[int], day: date) -> QuerySet[Membership]:
    """Memberships of active people in these teams on ``day``."""
    return Membership.objects.filter(
        Membership.active_on(day), team_id__in=list(team_ids), user__is_active=True
    )


def team_path(*, team: Team) -> str:
    parts = []
    node: Team | None = team
    while node is not None:
        parts.append(node.name)
        node = node.parent
    return " / ".join(reversed(parts))


def organisation_people(*, organisation: Organisation) -> QuerySet[User]:
    return User.objects.filter(organisation=organisation).order_by("full_name", "email")
