"""The leads' digest at close: each active lead gets the results of their teams and sub-teams (what
their dashboards show them) as stored through the guard: the stress index and participation when
published, "too few answers" otherwise, and the open flags; muted digests are kept back, and
nobody else gets one."""

from __future__ import annotations

import pytest
import time_machine
from django.test import override_settings

from checkins import services
from checkins.models import Invitation
from checkins.selectors import invitation_questions
from notifications.models import Message, NotificationPreference, State
from notifications.rendering import render_message
from tests.checkins.conftest import make_schedule, open_cycle
from tests.checkins.test_close import DURING
from tests.dashboards.conftest import FlagFactory
from tests.factories import TeamFactory, TeamLeadFactory, UserFactory, team_with_members
from wellbeing.analytics_selectors import primary_rows
from wellbeing.models import Team, TeamAggregate
from wellbeing.policy import visible_team_ids
from wellbeing.selectors import team_path

pytestmark = pytest.mark.django_db

SITE = "https://pulse.example.com"


def answer(cycle, team, n: int) -> None:
    with time_machine.travel(DURING, tick=False):
        for invitation in Invitation.objects.filter(cycle=cycle, team=team).order_by("pk")[:n]:
            questions = invitation_questions(invitation=invitation)
            answers = {q.pk: q.scale_max for q in questions if q.is_scale}
            services.checkin_submit(invitation=invitation, answers=answers, comment=None)


def digest_of(cycle, person) -> Message:
    return Message.objects.get(kind="digest", idempotency_key=f"dig:{cycle.public_id}:{person.pk}")


@pytest.fixture
def teams(org, team):
    return team, team_with_members(organisation=org, size=6, name="Billing")


@pytest.fixture
def closed(org, teams, weekly_pulse):
    """Close a cycle in which five of each team's six answered (k = 5), or ``answered`` of
    them."""

    def close(answered=(5, 5)):
        schedule = make_schedule(organisation=org, teams=list(teams), survey=weekly_pulse)
        cycle = open_cycle(schedule)
        for team, n in zip(teams, answered, strict=True):
            answer(cycle, team, n)
        services.cycle_close(cycle=cycle, now=cycle.closes_at)
        return cycle

    return close


@override_settings(SITE_URL=SITE)
def test_each_lead_reads_their_teams_results(org, teams, closed):
    # given a lead of both teams, a lead of the first only, and someone who leads nothing
    support, billing = teams
    both = TeamLeadFactory(team=support, user__organisation=org).user
    TeamLeadFactory(team=billing, user=both)
    one = TeamLeadFactory(team=support, user__organisation=org).user
    bystander = UserFactory(organisation=org)
    # when the cycle closes with five of each team's six answering
    cycle = closed()
    # then the lead of both reads both teams' published figures, by name, and the link
    digest = render_message(digest_of(cycle, both))
    assert digest.button_url == f"{SITE}/dashboards/"
    lines = [line for line in digest.text.splitlines() if line.startswith("- ")]
    assert lines == [
        "- Billing: stress 100 of 100, 83 % took part",
        "- Support Tier 1: stress 100 of 100, 83 % took part",
    ]
    assert "Billing: stress 100 of 100, 83 % took part" in digest.html
    # and the other lead only their own team; people who lead nothing get no digest
    other = render_message(digest_of(cycle, one))
    assert "Support Tier 1" in other.text and "Billing" not in other.text
    assert not Message.objects.filter(kind="digest", recipient=bystander).exists()
    assert Message.objects.filter(kind="digest").count() == 2


def test_a_team_below_k_is_named_without_a_figure_as_the_guard_stored_it(org, teams, closed):
    # given two of Billing's six answer (below k = 5): the guard hides it, and Support's
    # figure with it (else Billing's would be the organisation's minus Support's)
    support, billing = teams
    lead = TeamLeadFactory(team=support, user__organisation=org).user
    TeamLeadFactory(team=billing, user=lead)
    cycle = closed(answered=(5, 2))
    text = render_message(digest_of(cycle, lead)).text
    stored = {
        row.team_id: row.published
        for row in TeamAggregate.objects.filter(
            result__cycle_key=cycle.public_id, dimension="stress", team__isnull=False
        )
    }
    assert stored[billing.pk] is False
    for team in teams:
        [line] = [ln for ln in text.splitlines() if ln.startswith(f"- {team.name}:")]
        if stored[team.pk]:
            assert "stress" in line
        else:
            assert line == f"- {team.name}: too few answers to show results"


def test_the_digest_counts_the_open_flags(org, teams, closed):
    support, _ = teams
    lead = TeamLeadFactory(team=support, user__organisation=org).user
    FlagFactory(team=support)
    cycle = closed()
    assert "; 1 open flag" in render_message(digest_of(cycle, lead)).text


def test_a_muted_or_deactivated_lead_gets_no_digest(org, teams, closed):
    support, billing = teams
    muted = TeamLeadFactory(team=support, user__organisation=org).user
    NotificationPreference.objects.create(user=muted, mute_digests=True)
    gone = TeamLeadFactory(team=billing, user__organisation=org, user__is_active=False).user
    cycle = closed()
    assert digest_of(cycle, muted).state == State.CANCELLED
    assert not Message.objects.filter(kind="digest", recipient=gone).exists()


def test_a_german_lead_reads_the_digest_in_german(org, teams, closed):
    support, _ = teams
    lead = TeamLeadFactory(team=support, user__organisation=org, user__language="de").user
    cycle = closed()
    text = render_message(digest_of(cycle, lead)).text
    assert "- Support Tier 1: Stress 100 von 100, 83 % haben teilgenommen" in text


@pytest.fixture
def care(org, weekly_pulse):
    """Customer Care (no one directly in it) over Tier 2 and Tier 1 (created in that order),
    and Nights under Tier 1: six people in each; one schedule for the whole tree."""
    root = TeamFactory(organisation=org, name="Customer Care")
    tier2 = team_with_members(organisation=org, size=6, name="Tier 2", parent=root)
    tier1 = team_with_members(organisation=org, size=6, name="Tier 1", parent=root)
    nights = team_with_members(organisation=org, size=6, name="Nights", parent=tier1)
    schedule = make_schedule(organisation=org, teams=[root], survey=weekly_pulse)
    return {"root": root, "tier1": tier1, "tier2": tier2, "nights": nights, "schedule": schedule}


def close_care(care, answered=None):
    """Close a cycle of the Customer Care tree in which five of each team's six answered, or
    ``answered[name]`` of them."""
    cycle = open_cycle(care["schedule"])
    for name in ("tier1", "tier2", "nights"):
        answer(cycle, care[name], (answered or {}).get(name, 5))
    services.cycle_close(cycle=cycle, now=cycle.closes_at)
    return cycle


def team_lines(cycle, person) -> list[str]:
    return [
        line for line in render_message(digest_of(cycle, person)).text.splitlines()
        if line.startswith("- ")
    ]  # fmt: skip


def test_a_lead_reads_their_sub_teams_under_their_team_by_path_in_tree_order(org, care):
    # given a lead of the top team, and a lead of Tier 1 who leads Nights as well
    top = TeamLeadFactory(team=care["root"], user__organisation=org).user
    middle = TeamLeadFactory(team=care["tier1"], user__organisation=org).user
    TeamLeadFactory(team=care["nights"], user=middle)
    # when a cycle closes with five of each team's six answering
    cycle = close_care(care)
    # then each reads every team below theirs, each once, a parent before its sub-teams,
    # siblings by name, named by their path
    assert team_lines(cycle, top) == [
        "- Customer Care: stress 100 of 100, 83 % took part",
        "- Customer Care / Tier 1: stress 100 of 100, 83 % took part",
        "- Customer Care / Tier 1 / Nights: stress 100 of 100, 83 % took part",
        "- Customer Care / Tier 2: stress 100 of 100, 83 % took part",
    ]
    assert team_lines(cycle, middle) == [
        "- Customer Care / Tier 1: stress 100 of 100, 83 % took part",
        "- Customer Care / Tier 1 / Nights: stress 100 of 100, 83 % took part",
    ]
    # and the HTML and chat versions list the same
    digest = render_message(digest_of(cycle, top))
    assert "Customer Care / Tier 1 / Nights: stress 100 of 100" in digest.html
    assert "• Customer Care / Tier 2: stress 100 of 100" in digest.chat_text


def test_the_digest_lists_the_teams_the_lead_sees_on_the_dashboard(org, care):
    lead = TeamLeadFactory(team=care["tier1"], user__organisation=org).user
    cycle = close_care(care)
    listed = [line.removeprefix("- ").split(":")[0] for line in team_lines(cycle, lead)]
    visible = Team.objects.filter(pk__in=visible_team_ids(lead))
    assert sorted(listed) == sorted(team_path(team=team) for team in visible)


def test_a_sub_team_below_k_is_named_without_a_figure_as_the_guard_stored_it(org, care):
    # given two of Tier 2's six answer (below k = 5): the guard hides it, and with it whatever
    # would give it away by subtraction (Customer Care's subtree minus Tier 1's)
    lead = TeamLeadFactory(team=care["root"], user__organisation=org).user
    cycle = close_care(care, answered={"tier2": 2})
    rows = TeamAggregate.objects.filter(
        result__cycle_key=cycle.public_id, dimension="stress", team__isnull=False
    )
    # each team's headline cell, the one its dashboard shows first
    stored = {team_id: row.published for (_, team_id, _), row in primary_rows(rows).items()}
    assert stored[care["tier2"].pk] is False
    assert not all(stored[care[name].pk] for name in ("root", "tier1")), "no complementary cell"
    lines = dict(line.removeprefix("- ").split(": ", 1) for line in team_lines(cycle, lead))
    paths = {
        "root": "Customer Care",
        "tier1": "Customer Care / Tier 1",
        "tier2": "Customer Care / Tier 2",
        "nights": "Customer Care / Tier 1 / Nights",
    }
    for name, path in paths.items():
        if stored[care[name].pk]:
            assert lines[path].startswith("stress ")
        else:
            assert lines[path] == "too few answers to show results"


def test_a_sub_teams_open_flags_are_counted_in_its_parents_leads_digest(org, care):
    lead = TeamLeadFactory(team=care["root"], user__organisation=org).user
    FlagFactory(team=care["nights"])
    cycle = close_care(care)
    assert "- Customer Care / Tier 1 / Nights: stress 100 of 100, 83 % took part; 1 open flag" in (
        team_lines(cycle, lead)
    )


def test_a_close_told_to_cancel_its_messages_stores_them_cancelled_with_the_reason(
    org, teams, weekly_pulse
):
    # given a lead, an admin, and an open cycle (as the demo's history closes its past weeks)
    lead = TeamLeadFactory(team=teams[0], user__organisation=org).user
    UserFactory(organisation=org, is_org_admin=True)
    cycle = open_cycle(make_schedule(organisation=org, teams=list(teams), survey=weekly_pulse))
    for team in teams:
        answer(cycle, team, 5)
    # when it closes with a reason to cancel its messages
    services.cycle_close(cycle=cycle, now=cycle.closes_at, cancel_messages_reason="a reason")
    # then the digest and the summary are written, cancelled, saying why; invitations are not
    assert (digest_of(cycle, lead).state, digest_of(cycle, lead).last_error) == (
        State.CANCELLED,
        "a reason",
    )
    closing = Message.objects.filter(kind__in=["digest", "cycle_summary"])
    assert closing.count() == 2
    assert set(closing.values_list("state", "last_error")) == {(State.CANCELLED, "a reason")}
    assert Message.objects.filter(kind="invitation").exclude(last_error="a reason").count() == 12
