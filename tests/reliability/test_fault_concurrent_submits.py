"""Two hundred people submit at the same moment, and one link is sent fifty times at once,
through a real gunicorn on PostgreSQL.  Every person is accepted once, the shared link once,
and after the close the participation count equals the responses stored."""

from __future__ import annotations

import json
import threading
import time

import httpx
import pytest

from checkins import services
from checkins.models import Cycle, Invitation, PendingAnswer, Response
from notifications.models import Message
from wellbeing.models import Scope, TeamParticipation

from .builders import answers_for, end_window, organisation_utc, schedule_due_now, team_of_people
from .faults import database_url

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

PEOPLE = 200
SAME_LINK = 50


def token_of(invitation: Invitation) -> str:
    message = Message.objects.get(idempotency_key=f"inv:{invitation.public_id}")
    return message.sensitive_context["url"].rstrip("/").rsplit("/", 1)[-1]


def test_concurrent_submits_are_each_accepted_once_and_all_counted(postgres, gunicorn):
    # given an open cycle for four teams of fifty and a small team whose first link leaks
    organisation = organisation_utc(k=5)
    teams = [
        team_of_people(organisation=organisation, size=PEOPLE // 4, name=f"Desk {i}")
        for i in range(4)
    ]
    shared = team_of_people(organisation=organisation, size=6, name="Night shift")
    schedule_due_now(organisation=organisation, teams=[*teams, shared])
    cycle = Cycle.objects.get(pk=services.tick_run().opened[0])
    services.cycle_open_all(cycle=cycle)
    invitations = list(Invitation.objects.filter(cycle=cycle).order_by("pk"))
    leaked = next(inv for inv in invitations if inv.team_id == shared.pk)
    people = [inv for inv in invitations if inv.team_id != shared.pk]
    assert len(people) == PEOPLE
    bodies = [
        json.dumps({"token": token_of(inv), "answers": answers_for(inv, value=1 + n % 5)})
        for n, inv in enumerate(people)
    ]
    leaked_body = json.dumps({"token": token_of(leaked), "answers": answers_for(leaked)})
    requests = [("person", body) for body in bodies] + [("same", leaked_body)] * SAME_LINK
    web = gunicorn(
        database_url=database_url(), workers=2, threads=8, env={"DATABASE_POOL_MAX": "8"}
    )
    start = threading.Barrier(len(requests))
    results: list[tuple[str, int]] = []

    def post(client: httpx.Client, kind: str, body: str) -> None:
        start.wait(timeout=30)
        response = client.post(
            "/api/checkins/submit/", content=body, headers={"Content-Type": "application/json"}
        )
        results.append((kind, response.status_code))

    # when all 250 requests are released at the same moment, one thread each
    started = time.monotonic()
    limits = httpx.Limits(max_connections=len(requests))
    with httpx.Client(base_url=web.base_url, timeout=60, limits=limits) as client:
        threads = [threading.Thread(target=post, args=(client, *item)) for item in requests]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=90)
    elapsed = time.monotonic() - started
    assert len(results) == len(requests)

    # then every person was accepted exactly once, and the shared link once
    person = [status for kind, status in results if kind == "person"]
    same = sorted(status for kind, status in results if kind == "same")
    assert person == [201] * PEOPLE, {s: person.count(s) for s in set(person)}
    assert same == [201] + [409] * (SAME_LINK - 1), {s: same.count(s) for s in set(same)}
    accepted = PEOPLE + 1
    assert Invitation.objects.filter(cycle=cycle, answered=True).count() == accepted
    stored = PendingAnswer.objects.filter(cycle=cycle).count()
    stored += Response.objects.filter(cycle=cycle).count()
    assert stored == accepted
    # and after the close, participation equals the responses stored
    end_window(cycle)
    assert services.cycle_close(cycle=Cycle.objects.get(pk=cycle.pk)) is True
    responses = Response.objects.filter(cycle=cycle).count()
    assert responses == accepted
    assert PendingAnswer.objects.filter(cycle=cycle).count() == 0
    overall = TeamParticipation.objects.get(
        result__cycle_key=cycle.public_id, scope=Scope.ORGANISATION
    )
    assert overall.responded == responses
    assert "Traceback" not in web.log()
    print(
        f"\nconcurrent submits: {len(results)} requests in {elapsed:.1f}s, accepted {accepted}, "
        f"responses stored {responses}"
    )
