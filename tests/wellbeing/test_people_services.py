"""The services every edge (pages, import, Django admin) uses to change people, memberships and
leads: their rules and their audit entries."""

from __future__ import annotations

from datetime import date

import pytest

from tests.factories import MembershipFactory, OrganisationFactory, TeamFactory, UserFactory
from wellbeing import services
from wellbeing.errors import ServiceError
from wellbeing.models import AuditEntry, User


def test_the_only_admin_cannot_be_deactivated(db):
    admin = UserFactory(is_org_admin=True)
    with pytest.raises(ServiceError) as error:
        services.person_deactivate(person=admin, actor=None, ended_on=date(2026, 3, 2))
    assert error.value.code == "last_admin"
    admin.refresh_from_db()
    assert admin.is_active


def test_an_admin_with_another_active_admin_beside_them_can_be_deactivated(db):
    admin = UserFactory(is_org_admin=True)
    UserFactory(organisation=admin.organisation, is_org_admin=True)
    services.person_deactivate(person=admin, actor=None, ended_on=date(2026, 3, 2))
    admin.refresh_from_db()
    assert not admin.is_active


def test_correcting_a_memberships_start_is_audited_as_a_change(db):
    membership = MembershipFactory(started_on=date(2025, 1, 6))
    services.membership_update(
        membership=membership, actor=None, started_on=date(2025, 1, 13), ended_on=None
    )
    entry = AuditEntry.objects.get(action="membership.change")
    assert (entry.before, entry.after) == (
        {"dates": ["2025-01-06", None]},
        {"dates": ["2025-01-13", None]},
    )


def test_an_unchanged_membership_writes_no_audit_entry(db):
    membership = MembershipFactory(started_on=date(2025, 1, 6))
    services.membership_update(
        membership=membership, actor=None, started_on=date(2025, 1, 6), ended_on=None
    )
    assert not AuditEntry.objects.exists()


def test_a_membership_never_crosses_organisations(db):
    person = UserFactory()
    foreign = TeamFactory(organisation=OrganisationFactory())
    with pytest.raises(ServiceError):
        services.membership_start(
            user=person, team=foreign, started_on=date(2025, 1, 6), actor=None
        )


def test_moving_a_team_to_where_it_is_writes_no_audit_entry(db):
    team = TeamFactory()
    services.team_move(team=team, new_parent=None, actor=None)
    assert not AuditEntry.objects.exists()


def test_a_person_outside_any_organisation_is_updated_without_an_audit_entry(db):
    operator = User.objects.create_user(email="ops@example.test")
    services.person_update(person=operator, actor=None, full_name="Ops")
    operator.refresh_from_db()
    assert operator.full_name == "Ops"
    assert not AuditEntry.objects.exists()


def test_only_a_person_in_an_organisation_can_be_its_admin(db):
    operator = User.objects.create_user(email="ops@example.test")
    with pytest.raises(ServiceError) as error:
        services.person_update(person=operator, actor=None, is_org_admin=True)
    assert "is_org_admin" in error.value.fields
