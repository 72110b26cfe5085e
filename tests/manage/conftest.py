"""Fixtures for the in-product admin pages: an organisation with an admin, a lead, an employee,
and a second organisation whose names must never appear."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from tests.factories import (
    MembershipFactory,
    OrganisationFactory,
    TeamFactory,
    TeamLeadFactory,
    UserFactory,
)
from wellbeing.models import Organisation, Team, User


@dataclass
class World:
    organisation: Organisation
    admin: User
    lead: User
    employee: User
    support: Team
    billing: Team
    other_admin: User
    other_team: Team


@pytest.fixture
def world(db) -> World:
    organisation = OrganisationFactory(name="Acme", slug="acme")
    admin = UserFactory(organisation=organisation, is_org_admin=True, email="admin@acme.test")
    cx = TeamFactory(organisation=organisation, name="Customer Care")
    support = TeamFactory(organisation=organisation, name="Frontline Alpha", parent=cx)
    billing = TeamFactory(organisation=organisation, name="Billing")
    lead = TeamLeadFactory(team=support).user
    employee = MembershipFactory(team=support).user
    other = OrganisationFactory(name="Globex", slug="globex")
    other_admin = UserFactory(organisation=other, is_org_admin=True)
    other_team = TeamFactory(organisation=other, name="Zyxwvut Secret Team")
    return World(
        organisation=organisation,
        admin=admin,
        lead=lead,
        employee=employee,
        support=support,
        billing=billing,
        other_admin=other_admin,
        other_team=other_team,
    )


@pytest.fixture
def admin_client(client, world):
    client.force_login(world.admin)
    return client
