"""Thin, idempotent Celery tasks: take ids, load, call one service."""

from __future__ import annotations

from celery import shared_task

from . import services
from .models import Cycle


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
        cycle_open_chunk_task.delay(cycle_id)


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
