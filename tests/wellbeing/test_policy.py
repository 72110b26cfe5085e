import pytest
from django.contrib.auth.models import AnonymousUser

from tests.factories import (
    MembershipFactory,
    OrganisationFactory,
    TeamFactory,
    TeamLeadFactory,
    UserFactory,
)
from wellbeing import policy

pytestmark = pytest.mark.django_db


@pytest.fixture
def two_orgs():
    org1, org2 = OrganisationFactory(), OrganisationFactory()
    cx = TeamFactory(organisation=org1, name="CX")
    tier1 = TeamFactory(organisation=org1, parent=cx, name="Tier 1")
    eng = TeamFactory(organisation=org1, name="Engineering")
    other = TeamFactory(organisation=org2, name="Elsewhere")
    return {"org1": org1, "org2": org2, "cx": cx, "tier1": tier1, "eng": eng, "other": other}


def test_admin_sees_every_team_of_their_organisation_only(two_orgs):
    admin = UserFactory(organisation=two_orgs["org1"], is_org_admin=True)
    visible = policy.visible_team_ids(admin)
    assert visible == {two_orgs["cx"].pk, two_orgs["tier1"].pk, two_orgs["eng"].pk}
    assert not policy.can_view_team(admin, two_orgs["other"])


def test_lead_sees_their_team_and_its_subtree(two_orgs):
    lead = TeamLeadFactory(team=two_orgs["cx"]).user
    assert policy.visible_team_ids(lead) == {two_orgs["cx"].pk, two_orgs["tier1"].pk}
    assert not policy.can_view_team(lead, two_orgs["eng"])


def test_lead_of_a_child_does_not_see_the_parent(two_orgs):
    lead = TeamLeadFactory(team=two_orgs["tier1"]).user
    assert policy.visible_team_ids(lead) == {two_orgs["tier1"].pk}
    assert not policy.can_view_team(lead, two_orgs["cx"])


def test_employee_sees_no_team_aggregates(two_orgs):
    employee = MembershipFactory(team=two_orgs["tier1"]).user
    assert policy.visible_team_ids(employee) == set()
    assert not policy.can_view_team(employee, two_orgs["tier1"])


def test_anonymous_and_inactive_users_see_nothing(two_orgs):
    assert policy.visible_team_ids(AnonymousUser()) == set()
    admin = UserFactory(organisation=two_orgs["org1"], is_org_admin=True, is_active=False)
    assert policy.visible_team_ids(admin) == set()
    assert not policy.is_org_admin(admin)


def test_admin_of_one_organisation_cannot_configure_another(two_orgs):
    admin2 = UserFactory(organisation=two_orgs["org2"], is_org_admin=True)
    assert policy.can_configure_organisation(admin2, two_orgs["org2"])
    assert not policy.can_configure_organisation(admin2, two_orgs["org1"])


def test_team_api_lists_only_visible_teams(client, two_orgs):
    lead = TeamLeadFactory(team=two_orgs["tier1"]).user
    client.force_login(lead)
    response = client.get("/api/teams/")
    assert response.status_code == 200
    names = [team["name"] for team in response.json()["results"]]
    assert names == ["Tier 1"]


def test_team_api_hides_other_teams_with_404(client, two_orgs):
    lead = TeamLeadFactory(team=two_orgs["tier1"]).user
    client.force_login(lead)
    response = client.get(f"/api/teams/{two_orgs['eng'].public_id}/")
    assert response.status_code == 404
    assert "Engineering" not in response.content.decode()


def test_team_api_requires_authentication(client):
    response = client.get("/api/teams/")
    assert response.status_code in (401, 403)
    assert "error" in response.json()


def test_can_view_team_agrees_with_visible_team_ids_for_every_user_and_team(two_orgs):
    # given a deeper tree and leads at several levels, an admin, an employee and a stray lead
    # record that points into another organisation
    org1 = two_orgs["org1"]
    level3 = TeamFactory(organisation=org1, parent=two_orgs["tier1"], name="Level 3")
    level4 = TeamFactory(organisation=org1, parent=level3, name="Level 4")
    teams = [*(two_orgs[k] for k in ("cx", "tier1", "eng", "other")), level3, level4]
    users = [
        TeamLeadFactory(team=two_orgs["cx"]).user,
        TeamLeadFactory(team=level3).user,
        TeamLeadFactory(team=level4).user,
        UserFactory(organisation=org1, is_org_admin=True),
        UserFactory(organisation=two_orgs["org2"], is_org_admin=True),
        MembershipFactory(team=level4).user,
        AnonymousUser(),
    ]
    two_teams = TeamLeadFactory(team=two_orgs["eng"]).user
    TeamLeadFactory(team=level4, user=two_teams)
    stray = UserFactory(organisation=two_orgs["org2"])
    TeamLeadFactory(team=two_orgs["cx"], user=stray)
    users += [two_teams, stray]
    # then the one-query check gives the same answer as membership in the visible set
    for user in users:
        visible = policy.visible_team_ids(user)
        for team in teams:
            assert policy.can_view_team(user, team) == (team.pk in visible), (user, team.name)
