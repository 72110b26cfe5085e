"""Exactly-once under concurrency and faults, on real PostgreSQL, Redis, SMTP and workers.

Bounded: 1,000 messages, each scenario well under 60 s.
"""

from __future__ import annotations

import shutil
import subprocess
import threading
from datetime import UTC, datetime

import pytest
from django.db import connection, connections, transaction

from notifications import marks, services, tasks
from notifications.models import Message
from notifications.services import messages_enqueue_bulk, outbox_sweep
from tests.factories import OrganisationFactory
from wellbeing.models import User

from .conftest import free_port, wait_until
from .helpers import always_available, invitation

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

COUNT = 1000


def people(count: int) -> tuple:
    organisation = OrganisationFactory()
    users = User.objects.bulk_create(
        [
            User(email=f"invitee{i}@example.test", organisation=organisation, password="!")
            for i in range(count)
        ]
    )
    always_available(users)
    return organisation, users


def enqueue_invitations(organisation, users) -> int:
    with transaction.atomic():
        return messages_enqueue_bulk(
            [invitation(organisation, user, f"cycle-1:invite:{user.pk}") for user in users]
        )


def database_url() -> str:
    settings = connection.settings_dict
    user = settings.get("USER") or "root"
    host = settings.get("HOST") or "127.0.0.1"
    port = settings.get("PORT") or 5432
    return f"postgres://{user}@{host}:{port}/{settings['NAME']}"


def dead_worker_sessions_ended() -> bool:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity "
            "WHERE application_name = %s AND datname = current_database()",
            [marks.APPLICATION_NAME],
        )
        return cursor.fetchone()[0] == 0


def assert_exactly_once(smtp, users) -> None:
    received = smtp.recipients()
    duplicates = {address for address in received if received.count(address) > 1}
    assert not duplicates, f"{len(duplicates)} addresses got more than one mail"
    assert sorted(received) == sorted(user.email for user in users)


def test_two_concurrent_delivery_runs_send_each_invitation_exactly_once(
    postgres, smtp_settings, settings
):
    # given a thousand committed invitations
    settings.PULSE_OUTBOX_BATCH_SIZE = 50
    organisation, users = people(COUNT)
    assert enqueue_invitations(organisation, users) == COUNT
    start = threading.Barrier(2)
    errors: list[BaseException] = []
    sent_by_run: list[int] = []

    def run() -> None:
        try:
            start.wait(timeout=10)
            sent_by_run.append(tasks.outbox_deliver())
        except BaseException as exc:  # surface in the main thread
            errors.append(exc)
        finally:
            connections.close_all()

    # when the delivery task runs twice at the same time
    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    # then every invitation reached the SMTP server exactly once
    assert not errors
    assert sum(sent_by_run) == COUNT
    assert min(sent_by_run) > 0, "the runs did not overlap; the test proved nothing"
    assert_exactly_once(smtp_settings, users)
    assert Message.objects.filter(state="sent").count() == COUNT


def test_killed_worker_loses_and_duplicates_nothing_after_restart_and_sweep(
    postgres, redis_url, smtp_server, celery_broker, celery_worker, settings
):
    # given a real worker on Redis, a thousand invitations, and an SMTP server that holds the
    # 301st recipient so that we kill the worker at a known point in the middle of a batch
    import redis

    redis.Redis.from_url(redis_url).flushdb()
    celery_broker(redis_url)
    settings.PULSE_OUTBOX_BATCH_SIZE = 200
    smtp_server.hold_rcpt_number = 301
    organisation, users = people(COUNT)
    worker = celery_worker(
        database_url=database_url(), broker_url=redis_url, smtp_port=smtp_server.port
    )
    # when the invitations are committed (delivery tasks are queued on commit)
    assert enqueue_invitations(organisation, users) == COUNT
    holding = smtp_server.holding.wait(timeout=60)
    assert holding, f"the worker never reached the 301st mail:\n{worker.log()[-3000:]}"
    # and the worker is SIGKILLed mid-batch, its SMTP session then dropped
    worker.kill()
    smtp_server.release.set()
    assert smtp_server.count() == 300
    # (the dead worker's last "sent" mark was on its way, not necessarily committed yet: the
    # sweeper below stands in for ten minutes of claim timeout, so first let PostgreSQL finish
    # what the dead worker sent — its sessions end once it has read and run all of it)
    wait_until(dead_worker_sessions_ended, timeout=30, what="the dead worker's sessions to end")
    stuck = Message.objects.filter(state="claimed").count()
    assert stuck > 0
    # and a new worker starts, and the sweeper runs once the dead claims have timed out
    # (the timeout is passed in instead of waiting ten minutes)
    restarted = celery_worker(
        database_url=database_url(), broker_url=redis_url, smtp_port=smtp_server.port
    )
    released, due = outbox_sweep(claim_timeout_seconds=0)
    assert released == stuck
    wait_until(
        lambda: Message.objects.filter(state="sent").count() == COUNT,
        timeout=60,
        what=f"all sent; worker log:\n{restarted.log()[-2000:]}",
    )
    # then each invitation reached the SMTP server exactly once
    assert_exactly_once(smtp_server, users)


def test_marks_fall_back_to_django_when_the_mark_session_dies_mid_batch_and_none_is_lost(
    postgres, smtp_settings, settings, caplog
):
    # given 60 committed invitations, delivered with overlapped "sent" marks on a session of
    # their own, and an SMTP server that holds the 20th recipient while we kill that session
    settings.PULSE_OUTBOX_BATCH_SIZE = 100
    organisation, users = people(60)
    assert enqueue_invitations(organisation, users) == 60
    smtp_settings.hold_rcpt_number = 20
    terminated: list[int] = []

    def kill_mark_session() -> None:
        try:
            if smtp_settings.holding.wait(timeout=30):
                with connection.cursor() as cursor:
                    cursor.execute(
                        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                        "WHERE application_name = %s AND datname = current_database()",
                        [marks.APPLICATION_NAME],
                    )
                    terminated.extend(row[0] for row in cursor.fetchall())
        finally:
            smtp_settings.release.set()  # the held recipient gets a 451: retried later
            connections.close_all()

    killer = threading.Thread(target=kill_mark_session)
    killer.start()
    # when delivery runs through the batch
    with caplog.at_level("WARNING", logger="pulse.notifications"):
        report = services.outbox_deliver_due()
    killer.join(timeout=30)
    # then the session was really killed, the rest of the batch was marked through Django's
    # connection, and every accepted message is marked sent exactly once
    assert terminated == [True]
    assert "event=outbox_marks_fallback" in caplog.text
    assert (report.sent, report.retried, report.lost_claims) == (59, 1, 0)
    received = smtp_settings.recipients()
    assert len(received) == len(set(received)) == 59
    sent = set(Message.objects.filter(state="sent").values_list("recipient__email", flat=True))
    assert sent == set(received)
    assert Message.objects.filter(state="pending").count() == 1


def test_broker_down_at_enqueue_loses_nothing_and_the_sweeper_delivers_later(
    postgres, smtp_server, celery_broker, celery_worker, tmp_path
):
    redis_server = shutil.which("redis-server")
    if redis_server is None:
        pytest.skip("needs the redis-server binary to run a broker of its own")
    # given a broker that is down (a dedicated Redis port with nothing listening yet)
    port = free_port()
    broker_url = f"redis://127.0.0.1:{port}/0"
    celery_broker(broker_url)
    organisation, users = people(200)
    # when invitations are enqueued: the transaction commits although publishing fails
    assert enqueue_invitations(organisation, users) == 200
    assert Message.objects.filter(state="pending").count() == 200
    # and later the broker comes back, a worker starts and the periodic sweeper runs
    server = subprocess.Popen(
        [
            redis_server,
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(tmp_path),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        import redis

        client = redis.Redis(host="127.0.0.1", port=port, socket_connect_timeout=1)

        def answers() -> bool:
            try:
                return bool(client.ping())
            except redis.exceptions.ConnectionError:
                return False

        wait_until(answers, timeout=10, what="the dedicated redis-server")
        worker = celery_worker(
            database_url=database_url(), broker_url=broker_url, smtp_port=smtp_server.port
        )
        due = tasks.outbox_sweep()
        wait_until(
            lambda: Message.objects.filter(state="sent").count() == 200,
            timeout=60,
            what=f"all sent; worker log:\n{worker.log()[-2000:]}",
        )
    finally:
        server.terminate()
        server.wait(timeout=10)
    # then every invitation arrived exactly once
    assert_exactly_once(smtp_server, users)
    assert due == 200


def test_now_is_inside_the_always_available_window():
    # guards the fixtures above: "always available" preferences hold nothing back at any time
    from datetime import time
    from zoneinfo import ZoneInfo

    from notifications.quiet_hours import next_allowed_time

    moment = datetime(2025, 6, 15, 23, 59, 59, tzinfo=UTC)  # a Sunday night
    assert (
        next_allowed_time(
            moment,
            tz=ZoneInfo("Europe/Berlin"),
            work_start=time(0),
            work_end=time(23, 59, 59, 999999),
            work_days=range(7),
        )
        == moment
    )
