"""The Django admin names teams by the same rules as the services and the people import."""

from __future__ import annotations

import pytest
from django.urls import reverse

from tests.factories import TeamFactory
from wellbeing.models import Team, User


@pytest.fixture
def operator_client(client, db):
    user = User.objects.create_superuser(email="operator@example.test", password="x-very-long-pw")
    client.force_login(user)
    return client


def _form(team_or_org, **overrides):
    data = {"name": "Support", "parent": "", "customer_facing": "", "is_active": "on"}
    data.update(overrides)
    data.setdefault("organisation", team_or_org.pk)
    return data | {"leads-TOTAL_FORMS": "0", "leads-INITIAL_FORMS": "0"}


@pytest.mark.parametrize(
    ("name", "message"),
    [("Support / Tier 1", "cannot contain “/”"), ("SUPPORT", "already exists")],
)
def test_add_refuses_names_the_services_refuse(operator_client, organisation, name, message):
    TeamFactory(organisation=organisation, name="Support")
    response = operator_client.post(
        reverse("admin:wellbeing_team_add"), _form(organisation, name=name)
    )
    assert response.status_code == 200  # the form again, with the error
    assert message in response.content.decode()
    assert Team.objects.filter(organisation=organisation).count() == 1


def test_a_kept_legacy_name_with_a_slash_can_still_be_saved(operator_client, organisation):
    legacy = TeamFactory(organisation=organisation, name="Sales / EMEA")
    response = operator_client.post(
        reverse("admin:wellbeing_team_change", args=[legacy.pk]),
        _form(organisation, name="Sales / EMEA", customer_facing="on"),
    )
    assert response.status_code == 302
    legacy.refresh_from_db()
    assert legacy.customer_facing


def test_add_accepts_a_plain_name(operator_client, organisation):
    response = operator_client.post(
        reverse("admin:wellbeing_team_add"), _form(organisation, name="Billing")
    )
    assert response.status_code == 302
    assert Team.objects.filter(organisation=organisation, name="Billing").exists()
