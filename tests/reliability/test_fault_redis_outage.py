"""The broker (a Redis of the test's own) dies while people submit and while a cycle opens.

Accepting an answer must never need the broker: submits keep succeeding, fast, and nothing is
lost.  Work whose task could not be queued is picked up by the tick and the outbox sweeper
once Redis is back, and a real worker then finishes everything: mails delivered once, pending
answers released, the cycle closed.
"""

from __future__ import annotations

import json
import logging
import time

import pytest
from django.test import Client

from checkins import services, tasks
from checkins.models import Cycle, Invitation, PendingAnswer, Response
from notifications.models import Message
from notifications.services import outbox_sweep
from wellbeing.models import Scope, TeamParticipation

from .builders import (
    answers_for,
    end_window,
    links_by_address,
    organisation_utc,
    schedule_due_now,
    team_of_people,
)
from .faults import database_url, wait_until

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

SUBMIT_BUDGET_SECONDS = 5.0


def submit_by_api(token: str, invitation: Invitation) -> tuple[int, float]:
    started = time.monotonic()
    response = Client().post(
        "/api/checkins/submit/",
        data=json.dumps({"token": token, "answers": answers_for(invitation)}),
        content_type="application/json",
    )
    return response.status_code, time.monotonic() - started


def submit_by_form(token: str, invitation: Invitation) -> tuple[int, float]:
    started = time.monotonic()
    browser = Client()
    exchanged = browser.post(f"/checkin/t/{token}/")
    assert exchanged.status_code == 302, exchanged.status_code
    answered = browser.post(
        "/checkin/answer/", {f"q{qid}": value for qid, value in answers_for(invitation).items()}
    )
    return answered.status_code, time.monotonic() - started


def test_submits_and_an_opening_during_a_broker_outage_lose_nothing(
    postgres, own_redis, smtp_server, celery_broker, celery_worker, caplog
):
    # given a worker on our own Redis, and a cycle for ten people whose invitations went out
    caplog.set_level(logging.INFO)
    celery_broker(own_redis.url)
    organisation = organisation_utc(k=5)
    answering = team_of_people(organisation=organisation, size=10, name="Support", tag="sup")
    worker = celery_worker(
        database_url=database_url(), broker_url=own_redis.url, smtp_port=smtp_server.port
    )
    schedule_due_now(organisation=organisation, teams=[answering])
    assert len(services.tick_run().opened) == 1
    wait_until(
        lambda: smtp_server.count() == 10,
        timeout=60,
        what=f"the invitations; worker log:\n{worker.log()[-2000:]}",
    )
    first = Cycle.objects.get(schedule__teams=answering)
    tokens = links_by_address(smtp_server)
    invitations = list(Invitation.objects.filter(cycle=first).select_related("user"))

    # when Redis dies
    own_redis.stop()
    # and everyone submits, half through the API and half through the form
    outcomes = []
    for number, invitation in enumerate(invitations):
        submit = submit_by_api if number % 2 else submit_by_form
        outcomes.append(submit(tokens[invitation.user.email], invitation))
    # and a second schedule's cycle opens meanwhile (the tick, then the opening task's body)
    opening = team_of_people(organisation=organisation, size=30, name="Billing", tag="bil")
    schedule_due_now(organisation=organisation, teams=[opening], name="Billing pulse")
    report = services.tick_run()
    assert len(report.opened) == 1
    second = Cycle.objects.get(pk=report.opened[0])
    tasks.cycle_open_chunk_task(second.pk)

    # then every answer was accepted quickly, and all are kept
    assert [status for status, _ in outcomes] == [302 if n % 2 == 0 else 201 for n in range(10)]
    slowest = max(seconds for _, seconds in outcomes)
    assert slowest < SUBMIT_BUDGET_SECONDS, f"a submit took {slowest:.1f}s without a broker"
    assert Invitation.objects.filter(cycle=first, answered=True).count() == 10
    kept = PendingAnswer.objects.filter(cycle=first).count()
    kept += Response.objects.filter(cycle=first).count()
    assert kept == 10
    # and the opening during the outage committed its invitations and their messages
    assert Invitation.objects.filter(cycle=second).count() == 30
    assert Message.objects.filter(kind="invitation", state="pending").count() == 30
    assert "event=task_publish_failed" in caplog.text
    assert "event=outbox_publish_failed" in caplog.text

    # when Redis is back and beat runs the tick and the sweeper
    own_redis.start()
    services.tick_run()
    outbox_sweep()
    # then the worker delivers the outage's invitations, each once
    wait_until(
        lambda: smtp_server.count() == 40,
        timeout=90,
        what=f"the outage's invitations; worker log:\n{worker.log()[-2000:]}",
    )
    received = smtp_server.recipients()
    assert len(set(received)) == 40
    # and the answers waiting for the lost release task are released while the cycle is open
    wait_until(
        lambda: Response.objects.filter(cycle=first).count() == 10,
        timeout=60,
        what=f"the release; worker log:\n{worker.log()[-2000:]}",
    )
    # and when the window ends, the tick closes the cycle with every answer counted
    end_window(first)
    services.tick_run()
    wait_until(
        lambda: Cycle.objects.get(pk=first.pk).state == Cycle.State.CLOSED,
        timeout=60,
        what=f"the close; worker log:\n{worker.log()[-2000:]}",
    )
    assert PendingAnswer.objects.filter(cycle=first).count() == 0
    assert Response.objects.filter(cycle=first).count() == 10
    participation = TeamParticipation.objects.get(
        result__cycle_key=first.public_id, team=answering, scope=Scope.TEAM
    )
    assert participation.responded == 10
    assert smtp_server.count() == 40, "closing must not re-send any invitation"
