"""Bare baselines served by the same gunicorn: one INSERT; aggregates via ``.values()``.

They skip everything the product adds on purpose (forms, validation, policy, selectors,
serializers) but go through the same middleware, so a ratio shows what the product costs.
"""

from __future__ import annotations

import uuid

from django.db import connection
from django.http import HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt

from wellbeing.models import CycleResult, Team, TeamAggregate

BARE_TABLE = "bench_bare_insert"


@csrf_exempt
def bare_insert(request: HttpRequest) -> JsonResponse:
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {BARE_TABLE} (id, payload) VALUES (%s, %s)",  # noqa: S608
            [str(uuid.uuid4()), request.body.decode()[:2000]],
        )
    return JsonResponse({"ok": True})


def bare_trend(request: HttpRequest, public_id: uuid.UUID) -> JsonResponse:
    team = Team.objects.values("id").get(public_id=public_id)
    cycles = int(request.GET.get("cycles", 104))
    rows = list(
        TeamAggregate.objects.filter(team_id=team["id"], dimension="stress")
        .order_by("-result__period_start")
        .values("result__period_start", "published", "n", "index", "ci_low", "ci_high")[:cycles]
    )
    return JsonResponse({"points": rows[::-1]})


def bare_heatmap(request: HttpRequest) -> JsonResponse:
    organisation_id = int(request.GET["organisation"])
    latest = (
        CycleResult.objects.filter(organisation_id=organisation_id)
        .order_by("-period_start")
        .values_list("pk", flat=True)[:2]
    )
    rows = list(
        TeamAggregate.objects.filter(result_id__in=list(latest)).values(
            "result_id", "team_id", "scope", "dimension", "published", "index", "n"
        )
    )
    return JsonResponse({"rows": rows})
