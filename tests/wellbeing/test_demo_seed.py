import pytest
from django.core.management import call_command

from wellbeing.demo import DEMO_SLUG, organisation_seed
from wellbeing.models import Membership, Organisation, Team, TeamLead, User

pytestmark = pytest.mark.django_db


def counts() -> tuple[int, int, int, int]:
    return (
        User.objects.count(),
        Team.objects.count(),
        Membership.objects.count(),
        TeamLead.objects.count(),
    )


def test_demo_organisation_is_realistic():
    organisation, logins = organisation_seed()
    teams = Team.objects.filter(organisation=organisation)
    assert 10 <= teams.count() <= 16
    assert teams.filter(parent__isnull=True).count() >= 3
    assert teams.filter(parent__parent__isnull=False).count() == 0  # at most 2-3 levels
    assert teams.filter(customer_facing=True, name__startswith="Support").count() >= 2
    assert 130 <= organisation.people.count() <= 170
    assert User.objects.get(email=logins.admin).is_org_admin
    assert all(TeamLead.objects.filter(team=team).exists() for team in teams)


def test_demo_seed_is_idempotent():
    organisation_seed()
    before = counts()
    organisation_seed()
    assert counts() == before
    assert Organisation.objects.filter(slug=DEMO_SLUG).count() == 1


def test_seed_demo_command_prints_logins_and_a_summary(capsys):
    call_command("seed_demo", "--no-history")
    output = capsys.readouterr().out
    assert "admin@northwind.example" in output
    assert "Demo ready:" in output.splitlines()[-1]


def test_demo_admin_sees_the_organisation_after_login(client):
    _, logins = organisation_seed()
    response = client.post(
        "/accounts/login/", {"username": logins.admin, "password": logins.password}, follow=True
    )
    assert response.status_code == 200
    assert response.redirect_chain[-1][0] == "/dashboards/organisation/"
    assert b"Northwind Services" in response.content
    teams_page = client.get("/manage/teams/")
    assert b"Support Tier 1" in teams_page.content
