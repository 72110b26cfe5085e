"""Thin, idempotent Celery tasks: take ids, load, call one service."""

from __future__ import annotations

import contextlib
import logging
import os
import threading
from typing import Any

from celery import Task, shared_task

from . import services
from .models import Cycle

logger = logging.getLogger("pulse.checkins")


#: Per thread (and process): the broker connection publishes reuse, with the URL it was made for.
_publishing = threading.local()


def _publishing_connection(app: Any) -> tuple[Any, bool]:
    """This thread's publishing connection and whether it is new.  One new connection per
    publish cost a request several milliseconds; a changed broker URL (or a fork) gets a new one."""
    key = (os.getpid(), app.conf.broker_url)
    connection = getattr(_publishing, "connection", None)
    if connection is not None and _publishing.key == key:
        return connection, False
    _drop_publishing_connection()
    connection = app.connection_for_write()
    _publishing.connection, _publishing.key = connection, key
    return connection, True


def _drop_publishing_connection() -> None:
    connection = getattr(_publishing, "connection", None)
    _publishing.connection = None
    if connection is not None:
        with contextlib.suppress(Exception):  # it is being thrown away
            connection.release()


def enqueue(task: Task, *args: Any) -> bool:
    """Queue ``task`` without letting a broker outage reach the caller.

    Called from ``on_commit`` hooks, so the work is already committed: a failure is logged
    (one quick retry, no long hang in a request) and left to the tick, which re-queues
    unfinished openings, due releases and ended cycles every minute.  The connection is kept
    for the next publish; one that fails is dropped, and a kept one that fails (the broker
    restarted meanwhile) is replaced once by a fresh one."""
    for _attempt in range(2):
        try:
            connection, fresh = _publishing_connection(task.app)
            connection.ensure_connection(
                max_retries=1, interval_start=0, interval_step=0.2, timeout=3
            )
            task.apply_async(args=args, connection=connection, retry=False)
        except Exception as exc:  # kombu raises several types when the broker is unreachable
            _drop_publishing_connection()
            if not fresh:
                continue
            logger.warning(
                "event=task_publish_failed task=%s error=%s detail=tick_will_retry",
                task.name,
                type(exc).__name__,
            )
            return False
        return True
    return False


@shared_task(name="checkins.tasks.tick", ignore_result=True)
def tick() -> dict[str, int]:
    report = services.tick_run()
    return {
        "opened": len(report.opened),
        "missed": len(report.missed),
        "closing": len(report.closing),
        "reminders": report.reminders,
    }


@shared_task(name="checkins.tasks.cycle_open_chunk_task", ignore_result=True)
def cycle_open_chunk_task(cycle_id: int) -> None:
    """Invite one chunk of members, then re-queue for the next chunk (no task per person)."""
    cycle = Cycle.objects.filter(pk=cycle_id).first()
    if cycle is None:
        return
    if services.cycle_open_chunk(cycle=cycle):
        enqueue(cycle_open_chunk_task, cycle_id)


@shared_task(name="checkins.tasks.cycle_close_task", ignore_result=True)
def cycle_close_task(cycle_id: int) -> None:
    cycle = Cycle.objects.filter(pk=cycle_id).first()
    if cycle is not None:
        services.cycle_close(cycle=cycle)


@shared_task(name="checkins.tasks.pending_release_task", ignore_result=True)
def pending_release_task(cycle_id: int, team_id: int) -> None:
    cycle = Cycle.objects.select_related("organisation").filter(pk=cycle_id).first()
    if cycle is not None and cycle.state == Cycle.State.OPEN:
        services.pending_release(cycle=cycle, team_id=team_id)
