"""The real close stores comments through the guard; the recompute command rebuilds them."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta
from io import StringIO

import pytest
import time_machine
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext

from checkins import services
from checkins.models import Cycle, Invitation
from checkins.selectors import invitation_questions
from tests.checkins.conftest import FIRST_OPEN, ensure_library, make_schedule, open_cycle
from tests.factories import OrganisationFactory, team_with_members
from wellbeing.models import Organisation, Scope, Team, TeamComments


def answer_with_comments(cycle: Cycle, comment_of) -> list[str]:
    """Everyone invited answers; ``comment_of(number)`` is each one's comment (or None)."""
    written = []
    with time_machine.travel(FIRST_OPEN + timedelta(hours=1), tick=False):
        for number, invitation in enumerate(Invitation.objects.filter(cycle=cycle).order_by("pk")):
            comment = comment_of(number)
            questions = invitation_questions(invitation=invitation)
            services.checkin_submit(
                invitation=invitation,
                answers={q.pk: q.scale_min for q in questions if q.is_scale},
                comment=comment,
            )
            if comment:
                written.append(comment)
    return written


def closed(organisation: Organisation, teams: list[Team], comment_of) -> tuple[Cycle, list[str]]:
    schedule = make_schedule(organisation=organisation, teams=teams, survey=ensure_library())
    cycle = open_cycle(schedule)
    written = answer_with_comments(cycle, comment_of)
    assert services.cycle_close(cycle=cycle, now=cycle.closes_at) is True
    cycle.refresh_from_db()
    return cycle, written


@pytest.fixture
def org(db) -> Organisation:
    return OrganisationFactory(anonymity_threshold=5, comment_threshold=8, comments_enabled=True)


def test_close_stores_the_comments_of_a_team_at_the_threshold(org):
    # given a team of nine where six write a comment (one of them only spaces: none)
    team = team_with_members(organisation=org, size=9, name="Support")
    comments = {0: "Too many tickets", 1: "  ", 3: "Great lead", 4: "Tired", 7: "<b>Help</b>"}
    cycle, written = closed(org, [team], lambda n: comments.get(n))
    # then its comments are stored once for the team and once for the organisation
    rows = {(r.team_id, r.scope): r.comments for r in TeamComments.objects.all()}
    expected = Counter(text for text in written if text.strip())
    assert rows.keys() == {(team.pk, Scope.TEAM), (None, Scope.ORGANISATION)}
    assert Counter(rows[(team.pk, Scope.TEAM)]) == expected
    assert all(r.result.cycle_key == cycle.public_id for r in TeamComments.objects.all())


def test_close_stores_no_comments_of_a_team_below_the_threshold(org):
    small = team_with_members(organisation=org, size=7, name="Small")
    closed(org, [small], lambda n: f"comment {n}")
    assert not TeamComments.objects.exists()


def test_close_stores_no_comments_when_they_were_turned_off_before_it(org):
    team = team_with_members(organisation=org, size=9)
    schedule = make_schedule(organisation=org, teams=[team], survey=ensure_library())
    cycle = open_cycle(schedule)
    answer_with_comments(cycle, lambda n: f"comment {n}")
    Organisation.objects.filter(pk=org.pk).update(comments_enabled=False)
    assert services.cycle_close(cycle=cycle, now=cycle.closes_at) is True
    assert not TeamComments.objects.exists()


def test_close_reads_the_comments_once_and_writes_them_in_one_insert(org):
    team = team_with_members(organisation=org, size=9)
    schedule = make_schedule(organisation=org, teams=[team], survey=ensure_library())
    cycle = open_cycle(schedule)
    answer_with_comments(cycle, lambda n: f"comment {n}")
    with CaptureQueriesContext(connection) as queries:
        services.cycle_close(cycle=cycle, now=cycle.closes_at)
    sql = [q["sql"] for q in queries.captured_queries]
    reads = [s for s in sql if s.startswith("SELECT") and "checkins_response" in s]
    assert sum('"comment"' in s for s in reads) == 1
    assert sum(s.startswith("INSERT") and "wellbeing_teamcomments" in s for s in sql) == 1


def test_recompute_rebuilds_the_comments_idempotently(org):
    team = team_with_members(organisation=org, size=9)
    cycle, written = closed(org, [team], lambda n: f"comment {n}")
    before = sorted((r.scope, sorted(r.comments)) for r in TeamComments.objects.all())
    TeamComments.objects.all().delete()
    out = StringIO()
    for _ in range(2):
        call_command("recompute_aggregates", "--cycle-key", str(cycle.public_id), stdout=out)
    after = sorted((r.scope, sorted(r.comments)) for r in TeamComments.objects.all())
    assert after == before and len(before) == 2
    assert "comment_groups=2" in out.getvalue()
