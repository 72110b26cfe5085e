"""Comments on the team dashboard and in the API: only what the close stored through the guard,
only for those who may see the team, shuffled, as plain text."""

from __future__ import annotations

import random
import uuid
from collections import Counter
from datetime import UTC, date, datetime, timedelta

import pytest
from rest_framework.test import APIClient

from tests.dashboards.conftest import FIRST_PERIOD
from tests.factories import (
    MembershipFactory,
    OrganisationFactory,
    TeamLeadFactory,
    UserFactory,
    team_with_members,
)
from wellbeing.analytics import TeamCycleInput, cycle_comments_record, cycle_results_record
from wellbeing.comments_selectors import team_comments
from wellbeing.models import Organisation, Team

pytestmark = pytest.mark.django_db

NOTE = "Comments are shown for groups of at least 8 people"


def team_url(team: Team) -> str:
    return f"/dashboards/teams/{team.public_id}/"


def api_url(team: Team, cycle: str | None = None) -> str:
    query = "" if cycle is None else f"?cycle={cycle}"
    return f"/api/teams/{team.public_id}/comments/{query}"


def close_cycle(
    organisation: Organisation, week: int, groups: dict[Team, tuple[int, list[str]]]
) -> date:
    """A closed cycle as the close stores it: results, then comments (respondents, comments)."""
    period = FIRST_PERIOD + timedelta(weeks=week)
    key = uuid.uuid4()
    teams = [
        TeamCycleInput(team_id=t.pk, invited=n + 1, responded=n) for t, (n, _) in groups.items()
    ]
    cycle_results_record(
        organisation=organisation,
        cycle_key=key,
        period_start=period,
        closed_at=datetime.combine(period + timedelta(days=4), datetime.min.time(), UTC),
        teams=teams,
    )
    cycle_comments_record(
        organisation=organisation,
        cycle_key=key,
        teams=teams,
        comments={t.pk: texts for t, (_, texts) in groups.items()},
    )
    return period


@pytest.fixture
def org(db) -> Organisation:
    return OrganisationFactory(anonymity_threshold=5, comment_threshold=8, comments_enabled=True)


@pytest.fixture
def support(org) -> Team:
    return team_with_members(organisation=org, size=10, name="Support")


@pytest.fixture
def lead(support):
    return TeamLeadFactory(team=support).user


def comment_items(html: str) -> list[str]:
    section = html.split('<ul class="comments">', 1)[1].split("</ul>", 1)[0]
    return [item.split("</li>", 1)[0] for item in section.split("<li>")[1:]]


# --- Dashboard --------------------------------------------------------------------------------


def test_lead_sees_the_latest_cycles_comments_as_plain_text(client, org, support, lead):
    # given an older cycle's comment and a newer cycle's three, one of them markup
    close_cycle(org, 0, {support: (9, ["Old news"])})
    latest = ["<script>alert(1)</script>", "Too many tickets\nand no breaks", "Fine"]
    close_cycle(org, 1, {support: (9, latest)})
    client.force_login(lead)
    # when the lead opens the team's dashboard
    html = client.get(team_url(support)).content.decode()
    # then the newer cycle's comments are listed, escaped, with the threshold said
    assert 'id="comments"' in html and NOTE in html
    assert Counter(comment_items(html)) == Counter(
        ["&lt;script&gt;alert(1)&lt;/script&gt;", "Too many tickets\nand no breaks", "Fine"]
    )
    assert "<script>alert(1)" not in html and "Old news" not in html


def test_admins_overview_shows_the_organisations_comments_through_the_guard(
    client, org, support, lead
):
    # given a cycle where Support (nine answered) and a team of three wrote comments: shown
    # side by side, the organisation's group minus Support's would be the three
    trio = team_with_members(organisation=org, size=3, name="Trio")
    close_cycle(org, 0, {support: (9, ["support words"]), trio: (3, ["trio words"])})
    admin = UserFactory(organisation=org, is_org_admin=True)
    client.force_login(admin)
    # when the admin opens the overview
    html = client.get("/dashboards/organisation/").content.decode()
    # then the organisation's comments are listed, mixed, said to come from across it ...
    assert NOTE in html and "written across the organisation" in html
    assert Counter(comment_items(html)) == Counter(["support words", "trio words"])
    # ... and Support's own are held back (the guard's complementary suppression)
    team_html = client.get(team_url(support)).content.decode()
    assert "words" not in team_html and "No comments to show yet." in team_html
    # and a lead cannot open the overview at all
    client.force_login(lead)
    assert client.get("/dashboards/organisation/").status_code == 404


def test_comments_of_a_group_below_the_threshold_are_not_shown(client, org, lead):
    # given the lead's team had seven respondents (k = 5, comment threshold 8)
    small = team_with_members(organisation=org, size=7, name="Small")
    TeamLeadFactory(team=small, user=lead)
    close_cycle(org, 0, {small: (7, ["I am one of seven"])})
    client.force_login(lead)
    html = client.get(team_url(small)).content.decode()
    # then only the note says why there is nothing
    assert NOTE in html and "No comments to show yet." in html
    assert "one of seven" not in html


def test_a_small_sub_teams_comments_appear_only_within_its_parents(client, org):
    # given a region whose sub-teams are a desk of ten and a night shift of three
    region = team_with_members(organisation=org, size=0, name="Region")
    desk = team_with_members(organisation=org, size=10, name="Desk", parent=region)
    night = team_with_members(organisation=org, size=3, name="Night", parent=region)
    close_cycle(org, 0, {desk: (10, ["desk words"]), night: (3, ["night words"])})
    admin = UserFactory(organisation=org, is_org_admin=True)
    client.force_login(admin)
    # then neither sub-team's page shows a comment: the night shift is below the threshold,
    # and the region minus the desk would be the night shift
    for team in (desk, night):
        html = client.get(team_url(team)).content.decode()
        assert "words" not in html and "No comments to show yet." in html
    # and the region (13 people) shows both, mixed
    region_html = client.get(team_url(region)).content.decode()
    assert sorted(comment_items(region_html)) == ["desk words", "night words"]
    assert "this team and its sub-teams" in region_html


def test_a_parent_teams_comments_are_its_whole_subtrees(client, org):
    # given a parent of nine people of its own and a sub-team of nine: all three groups shown
    parent = team_with_members(organisation=org, size=9, name="Parent")
    child = team_with_members(organisation=org, size=9, name="Child", parent=parent)
    close_cycle(org, 0, {parent: (9, ["from the parent"]), child: (9, ["from the child"])})
    shown = team_comments(team=parent)
    assert shown.scope == "subtree"
    assert sorted(shown.comments) == ["from the child", "from the parent"]
    assert team_comments(team=child).comments == ["from the child"]


def test_no_comments_section_when_comments_are_off(client, org, support, lead):
    close_cycle(org, 0, {support: (9, ["Written while they were on"])})
    Organisation.objects.filter(pk=org.pk).update(comments_enabled=False)
    client.force_login(lead)
    html = client.get(team_url(support)).content.decode()
    assert 'id="comments"' not in html and "Written while" not in html


def test_lead_of_another_team_and_an_employee_get_404(client, org, support):
    close_cycle(org, 0, {support: (9, ["Private to support"])})
    other = team_with_members(organisation=org, size=6, name="Sales")
    outsiders = [
        TeamLeadFactory(team=other).user,
        MembershipFactory(team=support).user,  # a member of the team, not its lead
    ]
    for user in outsiders:
        client.force_login(user)
        assert client.get(team_url(support)).status_code == 404
        api = APIClient()
        api.force_login(user)
        response = api.get(api_url(support))
        assert response.status_code == 404
        assert "Private" not in response.content.decode()


def test_shown_comments_are_shuffled_again_on_every_read(org, support):
    written = [f"comment {i:02d}" for i in range(20)]
    close_cycle(org, 0, {support: (20, written)})
    orders = [tuple(team_comments(team=support, rng=random.Random(i)).comments) for i in range(4)]
    assert all(sorted(order) == written for order in orders)
    assert len(set(orders)) > 1  # seeded: the same every run, and not one fixed order


def test_the_dashboards_comments_take_at_most_three_queries(
    org, support, django_assert_max_num_queries
):
    close_cycle(org, 0, {support: (9, ["a"])})
    close_cycle(org, 1, {support: (9, ["b"])})
    with django_assert_max_num_queries(3):
        assert team_comments(team=support).comments == ["b"]


# --- API --------------------------------------------------------------------------------------


def test_api_gives_the_latest_or_the_chosen_cycles_comments(org, support, lead):
    first = close_cycle(org, 0, {support: (9, ["first"])})
    second = close_cycle(org, 1, {support: (9, ["second", "another"])})
    api = APIClient()
    api.force_login(lead)
    latest = api.get(api_url(support)).json()
    assert latest["period_start"] == second.isoformat() and latest["scope"] == "team"
    assert sorted(latest["comments"]) == ["another", "second"]
    assert latest["enabled"] is True and latest["threshold"] == 8
    assert latest["team_id"] == str(support.public_id)
    assert api.get(api_url(support, "latest")).json()["period_start"] == second.isoformat()
    chosen = api.get(api_url(support, first.isoformat())).json()
    assert chosen["comments"] == ["first"] and chosen["period_start"] == first.isoformat()


@pytest.mark.parametrize("cycle", ["", "last", "2025-9-1", "2025-02-30", "2025-W36-1", "20250901"])
def test_api_refuses_a_bad_cycle_with_a_400_naming_it(org, support, lead, cycle):
    close_cycle(org, 0, {support: (9, ["x"])})
    api = APIClient()
    api.force_login(lead)
    response = api.get(api_url(support, cycle))
    assert response.status_code == 400
    assert list(response.json()["error"]["fields"]) == ["cycle"]


def test_api_answers_404_for_a_date_no_cycle_starts_on(org, support, lead):
    close_cycle(org, 0, {support: (9, ["x"])})
    api = APIClient()
    api.force_login(lead)
    response = api.get(api_url(support, (FIRST_PERIOD + timedelta(days=1)).isoformat()))
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


def test_api_shows_nothing_when_comments_are_off_or_hidden(org, support, lead):
    small = team_with_members(organisation=org, size=7, name="Small")
    TeamLeadFactory(team=small, user=lead)
    close_cycle(org, 0, {support: (9, ["kept"]), small: (7, ["hidden"])})
    api = APIClient()
    api.force_login(lead)
    hidden = api.get(api_url(small)).json()
    assert hidden["comments"] == [] and hidden["period_start"] is None and hidden["enabled"]
    Organisation.objects.filter(pk=org.pk).update(comments_enabled=False)
    off = api.get(api_url(support)).json()
    assert off == {
        "team_id": str(support.public_id),
        "enabled": False,
        "threshold": 8,
        "period_start": None,
        "scope": None,
        "comments": [],
    }


def test_api_documents_the_comments_endpoint(client):
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/json").json()
    operation = schema["paths"]["/api/teams/{public_id}/comments/"]["get"]
    assert [p["name"] for p in operation["parameters"] if p["in"] == "query"] == ["cycle"]
    assert {"200", "400", "403", "404"} <= set(operation["responses"])
