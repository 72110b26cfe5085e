"""HTML pages of the organisation and the health endpoints."""

from __future__ import annotations

import logging

from django.contrib.auth.decorators import login_required
from django.db import connection
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from . import policy

logger = logging.getLogger("pulse.health")


@require_GET
@never_cache
def healthz(request: HttpRequest) -> JsonResponse:
    """The process is alive.  Touches nothing else."""
    return JsonResponse({"status": "ok"})


def _database_ready() -> tuple[bool, str]:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except Exception as exc:  # any driver error means "not ready"
        return False, type(exc).__name__
    return True, "ok"


def _broker_ready() -> tuple[bool, str]:
    from config.celery import app

    try:
        with app.connection_for_write() as conn:
            conn.ensure_connection(max_retries=1, timeout=2)
    except Exception as exc:  # kombu raises many transport-specific types
        return False, type(exc).__name__
    return True, "ok"


@require_GET
@never_cache
def readyz(request: HttpRequest) -> JsonResponse:
    """Database and broker reachable: 200, else 503 naming what is down."""
    db_ok, db_detail = _database_ready()
    broker_ok, broker_detail = _broker_ready()
    ready = db_ok and broker_ok
    if not ready:
        logger.warning("event=not_ready database=%s broker=%s", db_detail, broker_detail)
    return JsonResponse(
        {
            "status": "ok" if ready else "unavailable",
            "checks": {"database": db_detail, "broker": broker_detail},
        },
        status=200 if ready else 503,
    )


@login_required
def home(request: HttpRequest) -> HttpResponse:
    """Send each person to the page they come for: admins to the organisation overview, leads to
    their dashboards, everyone else to their own check-ins."""
    user = request.user
    if policy.is_org_admin(user):
        return redirect("dashboards:organisation")
    if policy.is_team_lead(user):
        return redirect("dashboards:landing")
    if getattr(user, "organisation_id", None):
        return redirect("checkins:mine")
    return render(request, "wellbeing/home.html", {})
