"""Beat was down for three hours, then two schedulers fire at once: ten tick tasks run on two
real worker processes at the same time.  The missed opening happens once, late; the window that
passed entirely during the outage is recorded as missed, not opened; nobody is invited twice."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.db.models import Count

from checkins import tasks
from checkins.models import Cycle, Invitation
from notifications.models import Message

from .builders import organisation_utc, schedule_due_now, team_of_people
from .faults import database_url, wait_until

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

TICKS = 10
TICK_DONE = re.compile(r"Task checkins\.tasks\.tick\[[^\]]+\] succeeded")


def test_concurrent_ticks_after_three_hours_without_beat_open_once_and_record_the_missed(
    postgres, own_redis, smtp_server, celery_broker, celery_worker
):
    # given two schedules whose openings fell into a three-hour beat outage: one still open
    # (opened 2 h ago for 96 h), one whose one-hour window ended during the outage
    celery_broker(own_redis.url)
    organisation = organisation_utc()
    late_team = team_of_people(organisation=organisation, size=20, name="Late")
    gone_team = team_of_people(organisation=organisation, size=20, name="Gone")
    late = schedule_due_now(
        organisation=organisation, teams=[late_team], opened_ago=timedelta(hours=2), name="Late"
    )
    gone = schedule_due_now(
        organisation=organisation,
        teams=[gone_team],
        opened_ago=timedelta(hours=2, minutes=50),
        open_hours=1,
        name="Gone",
    )
    assert not Cycle.objects.exists()
    # and two real workers
    workers = [
        celery_worker(
            database_url=database_url(),
            broker_url=own_redis.url,
            smtp_port=smtp_server.port,
            name=name,
        )
        for name in ("a", "b")
    ]

    wait_until(lambda: all(" ready." in w.log() for w in workers), timeout=60, what="both workers")

    # when beat comes back twice over: ten tick tasks at once
    for _ in range(TICKS):
        assert tasks.enqueue(tasks.tick)
    wait_until(
        lambda: sum(len(TICK_DONE.findall(w.log())) for w in workers) == TICKS,
        timeout=60,
        what="the ticks to run",
    )

    # then both workers ticked, and each schedule got exactly one cycle
    assert all(TICK_DONE.search(w.log()) for w in workers), "the ticks did not run in parallel"
    late_cycle = Cycle.objects.get(schedule=late)
    gone_cycle = Cycle.objects.get(schedule=gone)
    assert late_cycle.state == Cycle.State.OPEN
    assert gone_cycle.state == Cycle.State.MISSED
    assert not Invitation.objects.filter(cycle=gone_cycle).exists()
    # and the late opening invites and mails each member once
    wait_until(
        lambda: smtp_server.count() >= 20,
        timeout=60,
        what=f"the invitations:\n{workers[0].log()[-1500:]}\n{workers[1].log()[-1500:]}",
    )
    per_user = Invitation.objects.filter(cycle=late_cycle).values("user_id").annotate(n=Count("pk"))
    assert sorted(row["n"] for row in per_user) == [1] * 20
    assert Message.objects.filter(kind="invitation").count() == 20
    received = smtp_server.recipients()
    assert len(received) == 20 and len(set(received)) == 20
