"""The dashboard pages: who sees what, what is shown, and what is never shown."""

from __future__ import annotations

import csv
import io
import re
from datetime import timedelta

import pytest
from django.utils import timezone

from tests.dashboards.conftest import FlagFactory, record_history
from tests.factories import (
    MembershipFactory,
    OrganisationFactory,
    TeamLeadFactory,
    UserFactory,
    team_with_members,
)
from wellbeing.models import AuditEntry, Flag, FlagEvent

pytestmark = pytest.mark.django_db


def team_url(team) -> str:
    return f"/dashboards/teams/{team.public_id}/"


def said_did_url(team) -> str:
    return f"/dashboards/teams/{team.public_id}/you-said-we-did/"


def ack_url(flag) -> str:
    return f"/dashboards/teams/{flag.team.public_id}/flags/{flag.public_id}/acknowledge/"


def rising(team, i, dimension):
    return 30.0 + 2.5 * i if dimension in ("stress", "client_burnout") else 40.0


# --- Lead dashboard ---------------------------------------------------------------------------


def test_lead_sees_a_chart_and_a_table_for_every_dimension(client, org, support, lead):
    # given six closed cycles
    record_history(organisation=org, teams=[support], cycles=6, level=rising)
    client.force_login(lead)
    # when
    response = client.get(team_url(support))
    # then
    assert response.status_code == 200
    html = response.content.decode()
    assert html.count('class="chart trend-chart"') >= 8  # 7 dimensions + participation
    assert 'role="img"' in html and "<desc id=" in html
    assert html.count('<details class="table-alt">') >= 8
    assert "Client-related burnout" in html
    # and the latest stress index (30 + 2.5 * 5) is in the table alternative
    assert ">42.5<" in html


def test_cycles_below_k_are_gaps_labelled_not_enough_responses_never_numbers(
    client, org, support, lead
):
    # given a cycle in which only 3 of 8 answered (k = 5), at a level found nowhere else
    record_history(
        organisation=org,
        teams=[support],
        cycles=4,
        level=lambda t, i, d: 77.7 if i == 2 else 20.0,
        responded=lambda t, i: 3 if i == 2 else 8,
    )
    client.force_login(lead)
    # when
    html = client.get(team_url(support)).content.decode()
    # then the gap is labelled and the hidden mean appears nowhere (in any format)
    assert "Not enough responses" in html
    assert "77.7" not in html and "77,7" not in html and ">78<" not in html
    assert 'class="gap"' in html


def test_window_toggle_shows_52_cycles(client, org, support, lead):
    record_history(organisation=org, teams=[support], cycles=30)
    client.force_login(lead)
    short = client.get(team_url(support)).content.decode()
    long = client.get(team_url(support) + "?cycles=52").content.decode()
    assert short.count('<g class="point">') == 26 * 8
    assert long.count('<g class="point">') == 30 * 8
    assert 'href="?cycles=52" aria-current="page"' in long


def test_lead_of_a_parent_team_sees_its_sub_teams(client, org):
    parent = team_with_members(organisation=org, size=0, name="Customer Care")
    child = team_with_members(organisation=org, size=6, name="Tier 2", parent=parent)
    parent_lead = TeamLeadFactory(team=parent).user
    client.force_login(parent_lead)
    assert client.get(team_url(child)).status_code == 200
    assert f'href="{team_url(child)}"' in client.get(team_url(parent)).content.decode()


@pytest.mark.parametrize("who", ["other_lead", "employee", "other_org_admin"])
def test_people_who_may_not_see_a_team_get_404(client, org, support, who):
    other = team_with_members(organisation=org, size=5, name="Billing")
    user = {
        "other_lead": lambda: TeamLeadFactory(team=other).user,
        "employee": lambda: support.memberships.first().user,
        "other_org_admin": lambda: UserFactory(is_org_admin=True),
    }[who]()
    client.force_login(user)
    assert client.get(team_url(support)).status_code == 404


def test_anonymous_visitors_are_sent_to_sign_in(client, support):
    response = client.get(team_url(support))
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]


def test_flag_shows_explanation_evidence_chart_and_suggested_actions(client, org, support, lead):
    record_history(organisation=org, teams=[support], cycles=5, level=rising)
    flag = FlagFactory(team=support, evidence={"dimension": "stress", "slope_per_cycle": 2.5})
    client.force_login(lead)
    html = client.get(team_url(support)).content.decode()
    assert flag.explanation in html
    assert "Review workload and staffing" in html
    assert f'id="flag-{flag.public_id}-stress"' in html  # evidence chart
    assert f'id="flag-{flag.public_id}-client_burnout"' in html
    assert "change per cycle (Theil–Sen slope)" in html
    assert "Record action and acknowledge" in html


def test_lead_acknowledges_a_flag_with_action_and_follow_up(client, org, support, lead):
    # given an open flag
    flag = FlagFactory(team=support)
    client.force_login(lead)
    follow_up = timezone.localdate() + timedelta(days=14)
    # when
    response = client.post(
        ack_url(flag),
        {"action_taken": "Weekly team huddle; two temps for the queue", "follow_up_on": follow_up},
    )
    # then
    assert response.status_code == 302
    assert response["Location"].endswith(team_url(support) + "#flags")
    flag.refresh_from_db()
    assert flag.state == Flag.State.ACKNOWLEDGED
    assert flag.action_taken == "Weekly team huddle; two temps for the queue"
    assert flag.follow_up_on == follow_up
    assert FlagEvent.objects.filter(flag=flag, kind="acknowledged", actor=lead).count() == 1
    entry = AuditEntry.objects.get(action="flag.acknowledge")
    assert entry.actor == lead and entry.organisation == org


def test_acknowledging_without_an_action_shows_the_form_again_and_changes_nothing(
    client, support, lead
):
    flag = FlagFactory(team=support)
    client.force_login(lead)
    response = client.post(ack_url(flag), {"action_taken": "   "})
    assert response.status_code == 400
    assert "This field is required." in response.content.decode()
    flag.refresh_from_db()
    assert flag.state == Flag.State.OPEN
    assert not AuditEntry.objects.exists()


def test_follow_up_in_the_past_is_refused(client, support, lead):
    flag = FlagFactory(team=support)
    client.force_login(lead)
    yesterday = timezone.localdate() - timedelta(days=1)
    response = client.post(ack_url(flag), {"action_taken": "Talked", "follow_up_on": yesterday})
    assert response.status_code == 400
    assert "cannot be in the past" in response.content.decode()
    flag.refresh_from_db()
    assert flag.state == Flag.State.OPEN


def test_acknowledging_twice_reports_the_conflict(client, support, lead):
    flag = FlagFactory(team=support)
    client.force_login(lead)
    client.post(ack_url(flag), {"action_taken": "First"})
    response = client.post(ack_url(flag), {"action_taken": "Second"}, follow=True)
    assert response.redirect_chain == [(team_url(support) + "#flags", 302)]
    assert "The flag is acknowledged, not open." in response.content.decode()
    flag.refresh_from_db()
    assert flag.action_taken == "First"
    assert AuditEntry.objects.filter(action="flag.acknowledge").count() == 1


def dismiss_url(flag) -> str:
    return f"/dashboards/teams/{flag.team.public_id}/flags/{flag.public_id}/dismiss/"


@pytest.mark.parametrize(
    ("url", "data"), [(ack_url, {"action_taken": "x"}), (dismiss_url, {"reason": "x"})]
)
def test_only_leads_and_admins_of_the_team_may_act_on_its_flags(client, org, support, url, data):
    flag = FlagFactory(team=support)
    other = team_with_members(organisation=org, size=5, name="Billing")
    for user in (TeamLeadFactory(team=other).user, support.memberships.first().user):
        client.force_login(user)
        assert client.post(url(flag), data).status_code == 404
    flag.refresh_from_db()
    assert flag.state == Flag.State.OPEN


@pytest.mark.parametrize("state", [Flag.State.OPEN, Flag.State.ACKNOWLEDGED])
def test_lead_dismisses_a_flag_with_a_reason(client, org, support, lead, state):
    # given an open or acknowledged flag, offered for dismissal on the dashboard
    flag = FlagFactory(team=support, state=state)
    client.force_login(lead)
    assert f'action="{dismiss_url(flag)}"' in client.get(team_url(support)).content.decode()
    # when the lead dismisses it with a reason
    response = client.post(dismiss_url(flag), {"reason": " Planned product launch week "})
    # then it is closed with the reason, in its history and the audit log
    assert response.status_code == 302
    assert response["Location"].endswith(team_url(support) + "#flags")
    flag.refresh_from_db()
    assert flag.state == Flag.State.DISMISSED
    assert (flag.dismissed_by, flag.dismissed_reason) == (lead, "Planned product launch week")
    assert FlagEvent.objects.filter(flag=flag, kind="dismissed", actor=lead).count() == 1
    entry = AuditEntry.objects.get(action="flag.dismiss")
    assert (entry.actor, entry.organisation) == (lead, org)
    assert entry.before == {"state": state}
    # and the dashboard no longer lists it
    assert f'id="flag-{flag.public_id}"' not in client.get(team_url(support)).content.decode()


@pytest.mark.parametrize(
    "post",
    [None, ("acknowledge", {"action_taken": " "}), ("dismiss", {"reason": " "})],
    ids=["blank", "acknowledge-error", "dismiss-error"],
)
def test_every_description_a_flag_form_field_points_to_is_on_the_page(client, support, lead, post):
    # given an open flag, with both its forms on the card (one of them with an error)
    flag = FlagFactory(team=support)
    client.force_login(lead)
    if post is None:
        html = client.get(team_url(support)).content.decode()
    else:
        verb, data = post
        html = client.post(f"{team_url(support)}flags/{flag.public_id}/{verb}/", data)
        html = html.content.decode()
    ids = re.findall(r'\sid="([^"]+)"', html)
    assert len(ids) == len(set(ids))
    # then each field's help text and error, read out with it, is the element it names
    card = html[html.index(f'id="flag-{flag.public_id}"') :]
    card = card[: card.index("</article>")]
    described = [
        ref for refs in re.findall(r'aria-describedby="([^"]+)"', card) for ref in refs.split()
    ]
    assert len(described) >= 3  # the two fields' help texts and the reason's
    assert [ref for ref in described if ref not in ids] == []
    for label in re.findall(r'<label for="([^"]+)"', card):
        assert f'id="{label}"' in card


def test_dismissing_without_a_reason_shows_the_form_open_again_and_changes_nothing(
    client, support, lead
):
    flag = FlagFactory(team=support)
    client.force_login(lead)
    response = client.post(dismiss_url(flag), {"reason": "  "})
    assert response.status_code == 400
    html = response.content.decode()
    assert '<details class="dismiss" open>' in html
    assert "This field is required." in html
    flag.refresh_from_db()
    assert flag.state == Flag.State.OPEN
    assert not AuditEntry.objects.exists()


def test_dismissing_a_dismissed_flag_reports_the_conflict(client, support, lead):
    flag = FlagFactory(team=support)
    client.force_login(lead)
    client.post(dismiss_url(flag), {"reason": "Launch week"})
    response = client.post(dismiss_url(flag), {"reason": "Again"}, follow=True)
    # a dismissed flag is not on the dashboard any more: the team page says why nothing changed
    assert response.redirect_chain == [(team_url(support) + "#flags", 302)]
    assert "The flag is already dismissed." in response.content.decode()
    flag.refresh_from_db()
    assert flag.dismissed_reason == "Launch week"
    assert AuditEntry.objects.filter(action="flag.dismiss").count() == 1


def test_acknowledge_needs_post(client, support, lead):
    flag = FlagFactory(team=support)
    client.force_login(lead)
    assert client.get(ack_url(flag)).status_code == 405


# --- You said, we did --------------------------------------------------------------------------


def test_team_members_see_what_leads_did_without_numbers_or_names(client, org, support, lead):
    # given an acknowledged flag whose explanation carries figures
    FlagFactory(
        team=support,
        state=Flag.State.ACKNOWLEDGED,
        acknowledged_by=lead,
        acknowledged_at=timezone.now(),
        action_taken="We hired two more people for the phone queue.",
        explanation="Stress index 68.4 for 3 cycles",
    )
    member = support.memberships.first().user
    client.force_login(member)
    # when
    response = client.get(said_did_url(support))
    # then
    html = response.content.decode()
    assert response.status_code == 200
    assert "We hired two more people for the phone queue." in html
    assert "Stress was rising together with the strain of working with customers." in html
    assert "68.4" not in html and "68,4" not in html
    assert lead.full_name not in html and lead.email not in html


def test_open_and_dismissed_flags_are_not_on_you_said_we_did(client, support):
    FlagFactory(team=support, kind=Flag.Kind.RISING_STRESS)
    FlagFactory(
        team=support,
        kind=Flag.Kind.HIGH_STRESS,
        state=Flag.State.DISMISSED,
        dismissed_reason="Known seasonal peak",
        action_taken="Nothing to do",
    )
    client.force_login(support.memberships.first().user)
    html = client.get(said_did_url(support)).content.decode()
    assert "Nothing to report yet." in html
    assert "Nothing to do" not in html


def test_people_outside_the_team_cannot_see_its_you_said_we_did(client, org, support):
    other = team_with_members(organisation=org, size=5, name="Billing")
    client.force_login(other.memberships.first().user)
    assert client.get(said_did_url(support)).status_code == 404


def test_a_former_member_no_longer_sees_the_page(client, support):
    member = MembershipFactory(team=support, ended_on=timezone.localdate() - timedelta(days=1)).user
    client.force_login(member)
    assert client.get(said_did_url(support)).status_code == 404


def test_landing_lists_led_teams_and_own_team_pages(client, org, support, lead):
    client.force_login(lead)
    html = client.get("/dashboards/").content.decode()
    assert f'href="{team_url(support)}"' in html
    client.force_login(support.memberships.first().user)
    html = client.get("/dashboards/").content.decode()
    assert said_did_url(support) in html and f'href="{team_url(support)}"' not in html


# --- Admin overview and export -----------------------------------------------------------------


def test_admin_overview_greys_and_labels_suppressed_cells(client, org, support, admin):
    # given two small teams below k (together >= k, so no complementary suppression is needed)
    small = [team_with_members(organisation=org, size=5, name=f"Night {i}") for i in (1, 2)]
    record_history(
        organisation=org,
        teams=[support, *small],
        cycles=2,
        level=lambda t, i, d: 66.6 if t in small else 30.0,
        responded=lambda t, i: 3 if t in small else 8,
    )
    client.force_login(admin)
    # when
    html = client.get("/dashboards/organisation/").content.decode()
    # then
    assert 'class="heat suppressed"' in html
    assert "not enough responses" in html
    assert "66.6" not in html and "66,6" not in html
    assert "Support Tier 1" in html and ">30.0<" in html


def test_admin_overview_lists_open_flags_most_severe_first(client, org, support, admin):
    other = team_with_members(organisation=org, size=6, name="Billing")
    FlagFactory(team=other, kind=Flag.Kind.RISING_STRESS, severity=Flag.Severity.WATCH)
    FlagFactory(team=support, severity=Flag.Severity.CRITICAL)
    FlagFactory(team=other, kind=Flag.Kind.HIGH_STRESS, severity=Flag.Severity.WARNING)
    client.force_login(admin)
    html = client.get("/dashboards/organisation/").content.decode()
    section = html[html.index("open-flags-heading") : html.index("log-heading")]
    assert section.index("Critical") < section.index("Warning") < section.index("Watch")


def test_admin_overview_log_shows_flag_events(client, org, support, admin, lead):
    flag = FlagFactory(team=support)
    client.force_login(lead)
    client.post(ack_url(flag), {"action_taken": "Cut the weekend shifts"})
    client.force_login(admin)
    html = client.get("/dashboards/organisation/").content.decode()
    assert "Cut the weekend shifts" in html


def test_leads_and_employees_do_not_get_the_admin_overview(client, support, lead):
    for user in (lead, support.memberships.first().user):
        client.force_login(user)
        assert client.get("/dashboards/organisation/").status_code == 404
        assert client.get("/dashboards/organisation/export.csv").status_code == 404


def test_export_has_only_published_numbers_and_neutralises_formulas(client, org, admin):
    # given a team named like a formula and two teams below k
    formula = team_with_members(organisation=org, size=8, name='=HYPERLINK("http://x")')
    small = [team_with_members(organisation=org, size=5, name=f"Night {i}") for i in (1, 2)]
    record_history(
        organisation=org,
        teams=[formula, *small],
        cycles=2,
        level=lambda t, i, d: 66.6 if t in small else 30.0,
        responded=lambda t, i: 3 if t in small else 8,
    )
    client.force_login(admin)
    # when
    response = client.get("/dashboards/organisation/export.csv")
    # then
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    assert "attachment" in response["Content-Disposition"]
    body = response.content.decode()
    rows = {r[0]: r for r in csv.reader(io.StringIO(body))}
    assert not any(cell.startswith(("=", "+", "@")) for r in rows.values() for cell in r)
    formula_row = rows['\'=HYPERLINK("http://x")']
    assert formula_row[4] == "30.0"  # stress, published
    assert rows["Night 1"][4] == "not enough responses"
    assert rows["Night 1"][3] == "not enough responses"  # participation of 3 is hidden too
    assert "66.6" not in body


def test_export_of_another_organisation_is_not_reachable(client, org, support):
    record_history(organisation=org, teams=[support], cycles=1)
    outsider = UserFactory(organisation=OrganisationFactory(), is_org_admin=True)
    client.force_login(outsider)
    body = client.get("/dashboards/organisation/export.csv").content.decode()
    assert "Support Tier 1" not in body


def test_a_flag_resting_on_one_cycle_names_that_cycle_once(client, org, support, lead):
    record_history(organisation=org, teams=[support], cycles=3)
    flag = FlagFactory(team=support)
    flag.last_cycle_period = flag.first_cycle_period
    flag.save(update_fields=["last_cycle_period"])
    client.force_login(lead)
    html = client.get(team_url(support)).content.decode()
    assert "Check-in of " in html and "Cycles from" not in html
    flag.last_cycle_period = flag.first_cycle_period + timedelta(weeks=2)
    flag.save(update_fields=["last_cycle_period"])
    assert "Cycles from" in client.get(team_url(support)).content.decode()


def test_a_lead_downloads_what_the_team_page_shows(client, org, support, lead):
    # given three cycles, the middle one answered by fewer than k
    periods = record_history(
        organisation=org,
        teams=[support],
        cycles=3,
        level=lambda t, i, d: 40.0 + 10 * i,
        responded=lambda t, i: 3 if i == 1 else 8,
    )
    client.force_login(lead)
    # when the lead downloads the team's figures
    response = client.get(f"/dashboards/teams/{support.public_id}/export.csv")
    # then it is a CSV attachment, newest cycle first, one row per cycle and dimension
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    assert 'filename="pulse-' in response["Content-Disposition"]
    assert "support-tier-1" in response["Content-Disposition"]
    header, *rows = list(csv.reader(io.StringIO(response.content.decode())))
    assert header == [
        "Cycle starting", "Dimension", "Index", "Interval from", "Interval to", "Responses",
        "Participation %",
    ]  # fmt: skip
    assert [r[0] for r in rows[:: len(rows) // 3]] == [p.isoformat() for p in reversed(periods)]
    stress = {r[0]: r for r in rows if r[1] == "Stress"}
    newest, hidden, oldest = (stress[p.isoformat()] for p in reversed(periods))
    assert (newest[2], newest[5], newest[6]) == ("60.0", "8", "100.0")
    assert float(newest[3]) < 60.0 < float(newest[4])
    assert oldest[2] == "40.0"
    # and the cycle below k carries no number at all, as on the page
    assert hidden[2:] == ["not enough responses", "", "", "", "not enough responses"]
    assert "50.0" not in response.content.decode()


def test_the_team_download_follows_the_page_s_reach(client, org, support, lead):
    record_history(organisation=org, teams=[support], cycles=1)
    other = team_with_members(organisation=org, size=8, name="Billing")
    client.force_login(lead)
    assert client.get(f"/dashboards/teams/{other.public_id}/export.csv").status_code == 404
    client.force_login(support.memberships.first().user)
    assert client.get(f"/dashboards/teams/{support.public_id}/export.csv").status_code == 404
    client.logout()
    response = client.get(f"/dashboards/teams/{support.public_id}/export.csv")
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]
