"""The administration overview's "Getting started" list: each step done or not as the
organisation is, the check-ins' steps included without wellbeing importing them."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from django.urls import reverse

from checkins.models import SupportResource
from tests.checkins.conftest import ensure_library, make_schedule
from tests.factories import OrganisationFactory, TeamFactory, TeamLeadFactory, team_with_members
from wellbeing.models import Membership
from wellbeing.setup_steps import setup_steps

pytestmark = pytest.mark.django_db

LABELS = [
    "Create your teams",
    "Add people to their teams",
    "Give every team a lead",
    "Schedule the check-ins",
    "Add support resources",
]


def _done(organisation) -> dict[str, bool]:
    return {step.label: step.done for step in setup_steps(organisation)}


def test_a_new_organisation_has_every_step_to_do_in_order():
    organisation = OrganisationFactory()
    steps = setup_steps(organisation)
    assert [s.label for s in steps] == LABELS
    assert not any(s.done for s in steps)


def test_each_step_is_done_once_the_organisation_has_it(django_assert_max_num_queries):
    # given an organisation with a staffed, led team, a running schedule and a helpline
    organisation = OrganisationFactory()
    team = team_with_members(organisation=organisation, size=3, name="Care")
    TeamLeadFactory(team=team)
    make_schedule(organisation=organisation, teams=[team], survey=ensure_library())
    SupportResource.objects.create(organisation=organisation, title="Helpline")
    # then every step is done, in a handful of queries however large it is
    with django_assert_max_num_queries(6):
        steps = setup_steps(organisation)
    assert all(s.done for s in steps), [s.label for s in steps if not s.done]


def test_teams_with_people_but_no_lead_are_counted_in_the_hint():
    organisation = OrganisationFactory()
    for name in ("Care", "Billing"):
        team_with_members(organisation=organisation, size=2, name=name)
    TeamFactory(organisation=organisation, name="Empty")  # no people: needs no lead yet
    [lead_step] = [s for s in setup_steps(organisation) if s.label == "Give every team a lead"]
    assert not lead_step.done
    assert lead_step.hint == "2 teams with people have no lead yet."


def test_ended_memberships_and_stopped_schedules_do_not_count():
    organisation = OrganisationFactory()
    team = team_with_members(organisation=organisation, size=2, name="Care")
    Membership.objects.filter(team=team).update(
        started_on=date(2025, 1, 1), ended_on=date(2025, 6, 30)
    )
    survey = ensure_library()
    make_schedule(organisation=organisation, teams=[team], survey=survey, paused=True)
    make_schedule(
        organisation=organisation,
        teams=[TeamFactory(organisation=organisation, name="Spring team")],
        survey=survey,
        name="Spring",
        start_date=date.today() - timedelta(days=90),
        end_date=date.today() - timedelta(days=30),
    )
    done = _done(organisation)
    assert not done["Add people to their teams"] and not done["Schedule the check-ins"]


def test_the_overview_lists_the_steps_with_their_state(admin_client, world):
    html = admin_client.get(reverse("manage:overview")).content.decode()
    assert "Getting started" in html
    assert f'<a href="{reverse("manage_checkins:schedules")}">Schedule the check-ins</a>' in html
    assert '<li class="done">' in html and '<li class="todo">' in html
