"""Who may see and change what.  Every view and API endpoint asks this module, nowhere else.

Roles: a superuser (operator) manages everything through Django admin; an organisation admin
sees and configures their whole organisation; a team lead sees aggregates of the teams they lead
and those teams' subtrees; an employee sees only their own check-ins.
"""

from __future__ import annotations

from django.contrib.auth.models import AnonymousUser

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
    if is_org_admin(user, team.organisation):
        return True
    return team.pk in visible_team_ids(user)


def can_configure_organisation(user: AnyUser, organisation: Organisation) -> bool:
    return is_org_admin(user, organisation)


def can_act_on_team_flags(user: AnyUser, team: Team) -> bool:
    """Leads (of the team or an ancestor) and admins may acknowledge or dismiss flags."""
    return can_view_team(user, team)
