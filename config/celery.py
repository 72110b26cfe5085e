"""The Celery application: settings under the CELERY_ namespace, tasks autodiscovered."""

from __future__ import annotations

import contextlib
import logging
import os
from pathlib import Path

from celery import Celery
from celery.signals import celeryd_init, setup_logging

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.local")

app = Celery("pulse")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

logger = logging.getLogger("pulse.heartbeat")


@setup_logging.connect
def logging_from_django_settings(**kwargs) -> None:
    """Worker and beat log through Django's ``LOGGING``, as the web does: key=value lines, every
    one through the token-redacting filter, at ``LOG_LEVEL`` (Celery's ``--loglevel`` has no
    effect).  A receiver of this signal stops Celery from installing its own handlers (its
    format, without the filter) on the root and task loggers."""
    from django.conf import settings
    from django.utils.log import configure_logging

    configure_logging(settings.LOGGING_CONFIG, settings.LOGGING)
    # What Celery does unless a receiver configures logging: print() and stray writes to the
    # standard streams (a task's, a library's) become log lines, so they are redacted too.
    if app.conf.worker_redirect_stdouts:
        app.log.redirect_stdouts(app.conf.worker_redirect_stdouts_level)


@app.task(name="config.celery.heartbeat", ignore_result=True)
def heartbeat() -> str:
    """Logged every minute by the worker so an operator can see worker and beat are alive."""
    logger.info("event=heartbeat status=alive")
    return "alive"


@app.task(name="config.celery.sessions_clear_expired", ignore_result=True)
def sessions_clear_expired() -> None:
    """Delete expired sessions, whose rows Django otherwise keeps: a check-in's says roughly
    when its link was used."""
    from importlib import import_module

    from django.conf import settings

    import_module(settings.SESSION_ENGINE).SessionStore.clear_expired()


def session_group_file(proc: Path = Path("/proc"), pid: int | str = "self") -> Path | None:
    """The file holding the niceness of a process's (by default this one's) session group,
    where Linux schedules the process by one: autogroup is on, and the session has a group of
    its own.  A session begun without one (by the system, or before autogroup was on) is in the
    default group, whose file reads empty and whose share cannot be set."""
    enabled = proc / "sys/kernel/sched_autogroup_enabled"
    own = proc / str(pid) / "autogroup"
    try:
        applies = enabled.read_text().strip() == "1" and bool(own.read_text().strip())
    except OSError:
        return None
    return own if applies else None


@celeryd_init.connect
def worker_priority_lower(**kwargs) -> None:
    """Lower the worker's CPU priority by ``PULSE_WORKER_NICENESS`` as it starts, before its
    pool exists.  On Linux the niceness belongs to each thread and a new thread takes its
    creator's: every thread already running gets it here, and pool threads and child processes
    started later inherit it.

    Where Linux schedules by session first (autogroup, on by default in most distributions),
    a thread's niceness weighs only against the other threads of its session, and each
    session's group shares the CPUs equally with the others (the web server's, the
    database's): the worker then lowers its group's niceness too, when the session is its own
    (it leads it).  Containers are scheduled by their control group instead (docker-compose.yml
    gives the worker a smaller CPU share)."""
    from django.conf import settings

    increment = int(getattr(settings, "PULSE_WORKER_NICENESS", 0))
    if increment <= 0 or not hasattr(os, "nice"):
        return
    niceness = os.nice(0) + increment
    threads = Path("/proc/self/task")
    if threads.is_dir():
        for thread in threads.iterdir():
            with contextlib.suppress(OSError):  # a thread that has ended meanwhile
                os.setpriority(os.PRIO_PROCESS, int(thread.name), niceness)
    else:
        os.nice(increment)
    group = "none"
    session_group = session_group_file()
    if session_group is not None:
        group = "shared"  # with the processes started beside it: theirs to set
        if os.getsid(0) == os.getpid():
            try:
                session_group.write_text(f"{niceness}\n")
                group = "lowered"
            except OSError:
                group = "unchanged"
    logger.info("event=worker_priority niceness=%d session_group=%s", niceness, group)


@celeryd_init.connect
def worker_heap_kept(**kwargs) -> None:
    """Let the worker keep ``PULSE_WORKER_HEAP_KEEP_MB`` of freed memory for its next large
    arrays (``config.allocator``), before its pool exists: pool processes forked later start
    with the same allocator settings."""
    from django.conf import settings

    from .allocator import keep_freed_memory

    keep_freed_memory(int(getattr(settings, "PULSE_WORKER_HEAP_KEEP_MB", 0)) * 1024 * 1024)
