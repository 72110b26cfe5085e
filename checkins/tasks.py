"""Thin, idempotent Celery tasks: take ids, load, call one service."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from celery import Task, shared_task
from django.conf import settings

from config.publishing import publish

from . import services
from .models import Cycle

logger = logging.getLogger("pulse.checkins")

# The longest rest between two chunks of an opening, whatever the chunk took.
OPENING_REST_MAX_SECONDS = 5.0


def enqueue(task: Task, *args: Any) -> bool:
    """Queue ``task`` without letting a broker outage reach the caller.

    Called from ``on_commit`` hooks, so the work is already committed: a failure is logged and
    left to the tick, which re-queues unfinished openings, due releases and ended cycles every
    minute (``config.publishing``: one quick retry, a kept connection per thread)."""
    queued, error = publish(task, args=args)
    if error is not None:
        logger.warning(
            "event=task_publish_failed task=%s error=%s detail=tick_will_retry", task.name, error
        )
    return queued == 1


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
    """Invite one chunk of members, then re-queue for the next chunk (no task per person).

    Between chunks the worker rests ``PULSE_OPENING_REST_PERCENT`` of the chunk's time: at the
    default 50 % an opening takes half as long again and leaves the database to the check-ins
    answered meanwhile for a third of its time."""
    cycle = Cycle.objects.filter(pk=cycle_id).first()
    if cycle is None:
        return
    started = time.monotonic()
    if services.cycle_open_chunk(cycle=cycle):
        opening_rest(time.monotonic() - started)
        enqueue(cycle_open_chunk_task, cycle_id)


def opening_rest(chunk_seconds: float, sleep: Callable[[float], Any] = time.sleep) -> float:
    """Sleep for the configured share of a chunk's time (at most ``OPENING_REST_MAX_SECONDS``)
    and return how long."""
    rest = min(chunk_seconds * settings.PULSE_OPENING_REST_PERCENT / 100, OPENING_REST_MAX_SECONDS)
    if rest > 0:
        sleep(rest)
    return rest


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
