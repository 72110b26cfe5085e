"""Who may see and change what.  Every view and API endpoint asks this module, nowhere else.

Roles: a superuser (operator) manages everything through Django admin, whose writes go through
the same services and audit log as the product's pages; an organisation admin sees and
configures their whole organisation; a team lead sees aggregates of the teams they lead and
those teams' subtrees; an employee sees only their own check-ins.
"""

from __future__ import annotations

from django.contrib.auth.models import AnonymousUser
from django.db import connection

from .models import Organisation, Team, TeamLead, User
from .selectors import team_subtree_ids

AnyUser = User | AnonymousUser


def is_org_admin(user: AnyUser, organisation: Organisation | None = None) -> bool:
    if not user.is_authenticated or not user.is_active:
        return False
    assert isinstance(user, User)
    if not user.is_org_admin or user.organisation_id is None:
        return False
    return organisation is None or user.organisation_id == organisation.pk


def is_team_lead(user: AnyUser) -> bool:
    if not user.is_authenticated or not user.is_active:
        return False
    return TeamLead.objects.filter(user_id=user.pk).exists()


def visible_team_ids(user: AnyUser) -> set[int]:
    """Teams whose aggregates ``user`` may see: all of their organisation for admins, the led
    subtrees for leads, none otherwise."""
    if not user.is_authenticated or not user.is_active:
        return set()
    assert isinstance(user, User)
    organisation = user.organisation
    if organisation is None:
        return set()
    if is_org_admin(user):
        return set(Team.objects.filter(organisation=organisation).values_list("id", flat=True))
    led = TeamLead.objects.filter(user=user, team__organisation=organisation).values_list(
        "team_id", flat=True
    )
    led_ids = list(led)
    if not led_ids:
        return set()
    return team_subtree_ids(organisation=organisation, roots=led_ids)


def can_view_team(user: AnyUser, team: Team) -> bool:
    """Admins of the team's organisation; leads of the team or one of its ancestors.

    Same answer as ``team.pk in visible_team_ids(user)``, in one query: the team's chain of
    ancestors (within its organisation) against the user's led teams, instead of loading the
    whole team tree."""
    if not user.is_authenticated or not user.is_active:
        return False
    assert isinstance(user, User)
    if user.organisation_id is None or user.organisation_id != team.organisation_id:
        return False
    if user.is_org_admin:
        return True
    with connection.cursor() as cursor:
        cursor.execute(
            _LEADS_TEAM_OR_ANCESTOR,
            [team.pk, team.organisation_id, team.organisation_id, user.pk],
        )
        return cursor.fetchone() is not None


_LEADS_TEAM_OR_ANCESTOR = f"""
    WITH RECURSIVE chain(id, parent_id) AS (
        SELECT id, parent_id FROM {Team._meta.db_table} WHERE id = %s AND organisation_id = %s
        UNION
        SELECT t.id, t.parent_id FROM {Team._meta.db_table} t
        JOIN chain c ON t.id = c.parent_id
        WHERE t.organisation_id = %s
    )
    SELECT 1 FROM {TeamLead._meta.db_table} l
    JOIN chain c ON l.team_id = c.id
    WHERE l.user_id = %s
    LIMIT 1
"""  # noqa: S608 - table names from the models, values as parameters


def can_configure_organisation(user: AnyUser, organisation: Organisation) -> bool:
    return is_org_admin(user, organisation)


def can_act_on_team_flags(user: AnyUser, team: Team) -> bool:
    """Leads (of the team or an ancestor) and admins may acknowledge or dismiss flags."""
    return can_view_team(user, team)
