"""A real Celery worker is SIGKILLed in the middle of opening a 10,000-person cycle.

After a restart, the tick and the outbox sweeper finish the job: one invitation per person,
and each invitation mail reaches the SMTP server exactly once.  The kill lands at a known point
(the SMTP server holds one recipient) so it is never inside the documented at-least-once window
between the server's 250 and the worker's "sent" update.
"""

from __future__ import annotations

import time

import pytest
from django.db.models import Count

from checkins import services
from checkins.models import Cycle, Invitation
from notifications.models import Message
from notifications.services import outbox_release_stuck, outbox_sweep
from wellbeing.models import User

from .builders import organisation_utc, schedule_due_now, team_of_people
from .faults import database_url, wait_until

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

PEOPLE = 10_000
HELD_RECIPIENT = 1_500  # inside the first chunk's deliveries, before the opening has finished


def test_worker_killed_mid_open_invites_and_mails_everyone_exactly_once(
    postgres, own_redis, smtp_server, celery_broker, celery_worker
):
    # given 10,000 people in five teams, a schedule due now and a real worker on our own Redis
    celery_broker(own_redis.url)
    organisation = organisation_utc()
    teams = [
        team_of_people(organisation=organisation, size=PEOPLE // 5, name=f"Contact centre {i}")
        for i in range(5)
    ]
    schedule_due_now(organisation=organisation, teams=teams)
    smtp_server.hold_rcpt_number = HELD_RECIPIENT
    worker = celery_worker(
        database_url=database_url(), broker_url=own_redis.url, smtp_port=smtp_server.port
    )
    started = time.monotonic()
    # when beat's tick opens the cycle (the opening runs chunk by chunk in the worker)
    opened = services.tick_run().opened
    assert len(opened) == 1
    cycle_id = opened[0]
    assert smtp_server.holding.wait(timeout=90), f"never reached:\n{worker.log()[-3000:]}"
    # and the worker is SIGKILLed while delivering, with only part of the cycle opened
    worker.kill()
    smtp_server.release.set()
    smtp_server.hold_rcpt_number = None
    cycle = Cycle.objects.get(pk=cycle_id)
    invited_at_kill = cycle.invited_count
    assert 0 < invited_at_kill < PEOPLE and not cycle.opened_fully
    assert smtp_server.count() == HELD_RECIPIENT - 1
    # and the dead worker's claims are released (the sweeper after its claim timeout; the
    # timeout is passed in rather than waited for, before any live worker holds a claim)
    assert outbox_release_stuck(claim_timeout_seconds=0) > 0
    # and a new worker starts while beat keeps running the tick and the sweeper
    restarted = celery_worker(
        database_url=database_url(), broker_url=own_redis.url, smtp_port=smtp_server.port
    )
    services.tick_run()
    outbox_sweep()
    wait_until(
        lambda: Cycle.objects.filter(pk=cycle_id, opened_fully=True).exists(),
        timeout=120,
        what=f"the opening to finish:\n{restarted.log()[-3000:]}",
    )
    outbox_sweep()
    wait_until(
        lambda: smtp_server.count() >= PEOPLE,
        timeout=120,
        what=f"all invitations delivered:\n{restarted.log()[-3000:]}",
    )
    elapsed = time.monotonic() - started

    # then every member has exactly one invitation
    per_user = (
        Invitation.objects.filter(cycle_id=cycle_id).values("user_id").annotate(n=Count("pk"))
    )
    assert per_user.count() == PEOPLE
    assert max(row["n"] for row in per_user) == 1
    assert Cycle.objects.get(pk=cycle_id).invited_count == PEOPLE
    # and exactly one invitation message each, all sent
    assert Message.objects.filter(kind="invitation").count() == PEOPLE
    assert Message.objects.filter(kind="invitation", state="sent").count() == PEOPLE
    # and the SMTP server received each address exactly once
    received = smtp_server.recipients()
    members = set(User.objects.filter(organisation=organisation).values_list("email", flat=True))
    assert len(received) == PEOPLE, f"{len(received) - PEOPLE} duplicate mails"
    assert set(received) == members
    print(
        f"\nworker kill: invited at kill {invited_at_kill}, mails sent {len(received)} of "
        f"{PEOPLE} expected, {elapsed:.0f}s"
    )
