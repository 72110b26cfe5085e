"""Erasing a person removes everything that points to them and nothing that does not:
the anonymous answers and the team aggregates are exactly as before."""

from __future__ import annotations

import json
from datetime import date

import pytest
from django.contrib.auth import get_user_model
from django.contrib.sessions.models import Session
from django.urls import reverse

from checkins.models import Invitation, InvitationToken, Response
from notifications.models import Message, NotificationPreference
from tests.factories import OrganisationFactory, TeamLeadFactory, UserFactory, team_with_members
from tests.reliability.helpers import answered_cycle
from wellbeing import services
from wellbeing.errors import ServiceError
from wellbeing.models import AuditEntry, Membership, TeamAggregate, TeamLead, TeamParticipation
from wellbeing.person_deletion import ERASED_PERSON, person_erase


def response_snapshot() -> list[tuple]:
    return sorted(
        Response.objects.values_list("id", "cycle_id", "team_id", "answers", "comment"), key=repr
    )


def aggregate_snapshot() -> list[tuple]:
    return sorted(
        list(TeamAggregate.objects.values_list()) + list(TeamParticipation.objects.values_list()),
        key=repr,
    )


@pytest.fixture
def world(db):
    organisation = OrganisationFactory(anonymity_threshold=5)
    UserFactory(organisation=organisation, is_org_admin=True)  # someone else runs the org
    team = team_with_members(organisation=organisation, size=6, name="Care Desk")
    cycle = answered_cycle(organisation=organisation, team=team)
    person = Membership.objects.filter(team=team).first().user
    TeamLeadFactory(user=person, team=team_with_members(organisation=organisation, size=0))
    NotificationPreference.objects.create(user=person, mute_digests=True)
    return organisation, team, cycle, person


def test_erasure_removes_the_account_and_everything_pointing_to_it(world, client):
    organisation, team, cycle, person = world
    # given the person was invited (with a token and an outbox message), leads a team,
    # has preferences, a session and failed login attempts
    client.force_login(person)
    client.post(reverse("login"), {"username": person.email, "password": "nope"})
    assert Invitation.objects.filter(user=person).exists()
    assert InvitationToken.objects.filter(invitation__user=person).exists()
    assert Message.objects.filter(recipient=person).exists()
    from axes.models import AccessAttempt

    assert AccessAttempt.objects.filter(username__iexact=person.email).exists()
    assert any(
        s.get_decoded().get("_auth_user_id") == str(person.pk) for s in Session.objects.all()
    )
    invitation_ids = list(Invitation.objects.filter(user=person).values_list("pk", flat=True))
    # when they are erased
    summary = person_erase(user=person)
    # then nothing that pointed to them is left
    assert not get_user_model().objects.filter(pk=person.pk).exists()
    assert not Membership.objects.filter(user_id=person.pk).exists()
    assert not TeamLead.objects.filter(user_id=person.pk).exists()
    assert not Invitation.objects.filter(pk__in=invitation_ids).exists()
    assert not InvitationToken.objects.filter(invitation_id__in=invitation_ids).exists()
    assert not Message.objects.filter(recipient_id=person.pk).exists()
    assert not NotificationPreference.objects.filter(user_id=person.pk).exists()
    assert all(
        s.get_decoded().get("_auth_user_id") != str(person.pk) for s in Session.objects.all()
    )
    assert not AccessAttempt.objects.filter(username__iexact=person.email).exists()
    assert summary["wellbeing.User"] == 1
    assert summary["checkins.Invitation"] == len(invitation_ids)


def test_erasure_leaves_anonymous_answers_and_aggregates_exactly_as_they_were(world):
    organisation, team, cycle, person = world
    responses_before = response_snapshot()
    aggregates_before = aggregate_snapshot()
    assert len(responses_before) == 6 and aggregates_before
    person_erase(user=person)
    assert response_snapshot() == responses_before
    assert aggregate_snapshot() == aggregates_before


def test_erasure_is_audited_without_naming_the_person(world):
    organisation, team, cycle, person = world
    admin = get_user_model().objects.get(organisation=organisation, is_org_admin=True)
    email, name = person.email, person.full_name
    person_erase(user=person, actor=admin)
    entry = AuditEntry.objects.get(organisation=organisation, action="person.erase")
    assert entry.actor == admin
    stored = json.dumps([entry.target_repr, entry.before, entry.after])
    assert email not in stored and name not in stored
    assert entry.after["rows_deleted"]["wellbeing.User"] == 1


def test_the_audit_log_keeps_what_happened_but_not_who_it_happened_to(world):
    # given an audit log that names the person as a target and as a recorded value (with a
    # name that has a character JSON stores escaped), and names someone else too
    organisation, team, cycle, person = world
    admin = get_user_model().objects.get(organisation=organisation, is_org_admin=True)
    person.full_name = "Zoë Weiß"
    person.save(update_fields=["full_name"])
    other = UserFactory(organisation=organisation, full_name="Zoë Weißmann")
    other_team = team_with_members(organisation=organisation, size=0, name="Night Desk")
    services.team_lead_assign(user=person, team=other_team, actor=admin)
    services.team_lead_assign(user=other, team=other_team, actor=admin)
    services.person_deactivate(person=person, actor=admin, ended_on=date.today())
    AuditEntry.objects.create(
        organisation=organisation, action="people.import", target_repr="3 rows",
        after={"rows": [{"email": person.email.upper(), "lead": "no"}, {"email": other.email}]},
    )  # fmt: skip
    entries = AuditEntry.objects.filter(organisation=organisation).exclude(action="person.erase")
    actions_before = sorted(entries.values_list("action", flat=True))

    # when the person is erased
    summary = person_erase(user=person, actor=admin)

    # then no entry holds their name or address, every entry is still there, and the other
    # person's entries are untouched
    for entry in entries:
        stored = json.dumps([entry.target_repr, entry.before, entry.after], ensure_ascii=False)
        assert 'Zoë Weiß"' not in stored and person.email.casefold() not in stored.casefold()
    assert sorted(entries.values_list("action", flat=True)) == actions_before
    assert entries.filter(action="person.deactivate", target_repr=ERASED_PERSON).exists()
    leads = [e.after["lead"] for e in entries.filter(action="lead.add")]
    assert set(leads) == {ERASED_PERSON, "Zoë Weißmann"}
    [imported] = entries.filter(action="people.import")
    assert imported.after["rows"] == [
        {"email": ERASED_PERSON, "lead": "no"},
        {"email": other.email},
    ]
    assert summary["wellbeing.AuditEntry (name replaced)"] >= 3


def test_the_only_admin_cannot_be_erased(db):
    organisation = OrganisationFactory()
    admin = UserFactory(organisation=organisation, is_org_admin=True)
    with pytest.raises(ServiceError) as error:
        person_erase(user=admin)
    assert error.value.code == "last_admin"
    assert get_user_model().objects.filter(pk=admin.pk).exists()


def test_erasure_logs_no_email_address(world, caplog):
    organisation, team, cycle, person = world
    email = person.email
    with caplog.at_level("DEBUG"):
        person_erase(user=person)
    assert all(email not in record.getMessage() for record in caplog.records)
