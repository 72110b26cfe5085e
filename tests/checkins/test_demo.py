"""Demo history: 26 closed weekly cycles through the real release/close path, idempotent; of
the messages their closes write, only the latest week's are left to send."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from checkins.demo import HISTORY_NOT_SENT, STRAINED_COMMENTS, history_seed
from checkins.models import Cycle, Invitation, PendingAnswer, Response, SupportResource
from checkins.services import cycle_scores
from notifications.models import Message, State
from wellbeing.comments_selectors import team_comments
from wellbeing.demo import organisation_seed
from wellbeing.models import Flag, Organisation, Team
from wellbeing.setup_steps import setup_steps

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


@pytest.fixture
def demo_org(db):
    organisation, _ = organisation_seed(today=date(2026, 11, 25))
    return organisation


def test_history_has_26_closed_weeks_70_percent_participation_and_a_drifting_team(demo_org):
    summary = history_seed(organisation=demo_org, weeks=26, now=NOW)
    assert summary["cycles"] == 26
    cycles = Cycle.objects.filter(organisation=demo_org)
    assert cycles.count() == 26 and set(cycles.values_list("state", flat=True)) == {"closed"}
    assert PendingAnswer.objects.count() == 0
    rate = Response.objects.count() / Invitation.objects.count()
    assert 0.6 < rate < 0.8
    assert not Invitation.objects.exclude(question_ids=[]).exists()
    # and Support Tier 1's stress climbs in the last weeks until an empathy-risk flag opens
    team = Team.objects.get(organisation=demo_org, name="Support Tier 1")
    cycles = list(Cycle.objects.filter(organisation=demo_org).order_by("period_start"))

    def mean(cycle, dimension):
        values = cycle_scores(cycle=cycle).get(team.pk, {}).get(dimension, [])
        return sum(values) / len(values)

    early = [mean(c, "stress") for c in cycles[:10]]
    late = [mean(c, "stress") for c in cycles[-3:]]
    assert min(late) > max(early)
    assert mean(cycles[-1], "client_burnout") > mean(cycles[5], "client_burnout") + 15
    assert Flag.objects.filter(team=team, kind="empathy_risk", state="open").exists()
    # and the team's lead has comments to read, strained ones in the drift's last week
    shown = team_comments(team=team)
    assert shown.period_start == cycles[-1].period_start and len(shown.comments) >= 2
    assert set(shown.comments) <= set(STRAINED_COMMENTS)
    # and the organisation is set up as the administration's "Getting started" list asks
    assert all(step.done for step in setup_steps(demo_org))


def test_running_the_history_twice_adds_nothing(demo_org):
    history_seed(organisation=demo_org, weeks=26, now=NOW)
    counts = (Cycle.objects.count(), Invitation.objects.count(), Response.objects.count())
    again = history_seed(organisation=demo_org, weeks=26, now=NOW)
    assert again["cycles"] == 0 and again["skipped"] == 26
    assert (Cycle.objects.count(), Invitation.objects.count(), Response.objects.count()) == counts
    assert SupportResource.objects.filter(organisation=demo_org).count() == 2


def test_zero_weeks_of_history_seeds_none(demo_org):
    assert history_seed(organisation=demo_org, weeks=0, now=NOW)["cycles"] == 0
    assert not Cycle.objects.exists()


def test_seed_demo_with_zero_weeks_seeds_the_organisation_without_history(db):
    call_command("seed_demo", "--weeks", "0", stdout=StringIO())
    assert Organisation.objects.exists() and not Cycle.objects.exists()


@pytest.mark.parametrize("weeks", ["100000000", "521", "-1", "many"])
def test_seed_demo_refuses_weeks_out_of_range_before_seeding_anything(db, weeks):
    with pytest.raises(CommandError, match="--weeks"):
        call_command("seed_demo", "--weeks", weeks, stdout=StringIO())
    assert not Organisation.objects.exists()


def messages_of(cycle) -> dict[str, set[str]]:
    """State -> kinds of the messages about ``cycle`` (their keys carry its public id)."""
    found: dict[str, set[str]] = {}
    for state, kind in Message.objects.filter(
        idempotency_key__contains=f":{cycle.public_id}:"
    ).values_list("state", "kind"):
        found.setdefault(state, set()).add(kind)
    return found


def test_only_the_latest_weeks_messages_are_left_to_send(demo_org):
    # when the demo's history is seeded
    history_seed(organisation=demo_org, weeks=26, now=NOW)
    *past, latest = Cycle.objects.filter(organisation=demo_org).order_by("period_start")
    # then the latest week's summary and digests (and flag alerts, if any) wait to be sent
    assert set(messages_of(latest)) == {State.PENDING}
    assert {"cycle_summary", "digest"} <= messages_of(latest)[State.PENDING]
    pending = Message.objects.filter(state=State.PENDING)
    assert (
        pending.count()
        == Message.objects.filter(idempotency_key__contains=f":{latest.public_id}:").count()
    )
    # and every earlier week's are in the outbox as cancelled, saying why; none was sent
    for cycle in past:
        assert set(messages_of(cycle)) == {State.CANCELLED}
    history = Message.objects.exclude(idempotency_key__contains=f":{latest.public_id}:")
    assert set(history.values_list("kind", flat=True)) == {"cycle_summary", "digest", "flag_alert"}
    assert set(history.values_list("state", "last_error")) == {(State.CANCELLED, HISTORY_NOT_SENT)}
    assert history.count() > 300
    assert not Message.objects.filter(state=State.SENT).exists()


def test_a_later_run_adding_weeks_leaves_only_the_new_latest_weeks_messages_to_send(demo_org):
    # given the history seeded, and the latest week's messages not sent yet
    history_seed(organisation=demo_org, weeks=26, now=NOW)
    before = Cycle.objects.filter(organisation=demo_org).latest("period_start")
    # when the demo is seeded again two weeks later
    summary = history_seed(organisation=demo_org, weeks=26, now=NOW + timedelta(weeks=2))
    # then the new latest week's wait, and what the earlier latest week left is cancelled
    assert summary["cycles"] == 2
    latest = Cycle.objects.filter(organisation=demo_org).latest("period_start")
    assert set(messages_of(latest)) == {State.PENDING}
    assert set(messages_of(before)) == {State.CANCELLED}
    assert set(
        Message.objects.filter(state=State.PENDING).values_list("idempotency_key", flat=True)
    ) == {
        key
        for key in Message.objects.values_list("idempotency_key", flat=True)
        if f":{latest.public_id}:" in key
    }
