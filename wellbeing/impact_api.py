"""API for customer-service signals: a helpdesk export posts weekly team values, admins read the
organisation-level lagged association.  Organisation admins only (session or DRF token of an
admin).  Thin: parse, call ``wellbeing.customer_metrics``, render.

``POST /api/customer-metrics/`` takes a list of ``{metric, team, week_start, value}`` (or
``{"values": [...], "dry_run": true}``); any bad item refuses the whole batch with a 400 listing
every item's problems (``fields`` keyed "row N", N counted from 1) and nothing is written.
Posting the same values again changes nothing.
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    PolymorphicProxySerializer,
    extend_schema,
)
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from .api import IsOrganisationAdmin
from .customer_metrics import (
    customer_metric_values_import,
    metric_issues_error,
    metric_items_read,
    metric_values_plan,
    organisation_impact,
    today_for,
)
from .errors import ServiceError
from .models import Organisation, User
from .stats.impact import LagEstimate


def _admin_organisation(request: Request) -> tuple[User, Organisation]:
    user = request.user
    assert isinstance(user, User) and user.organisation is not None  # IsOrganisationAdmin
    return user, user.organisation


def _truthy(value: Any) -> bool:
    return value is True or str(value).lower() in {"1", "true", "yes"}


# --- What the schema says (documentation only: the views read and write plain data) --------


class CustomerMetricValueSerializer(serializers.Serializer):
    metric = serializers.CharField(
        help_text="The metric's key: csat, csat_mean, qa_empathy, complaint_rate, "
        "escalation_rate, fcr or one defined at /manage/metrics/."
    )
    team = serializers.CharField(
        help_text="The team's public id, its path from the top of the tree "
        '("Customer Experience / Support Tier 1"), or its name when that is unique.'
    )
    week_start = serializers.DateField(
        help_text="Any day of the week; stored as that week's Monday."
    )
    value = serializers.FloatField(
        help_text="A number in the metric's valid range (a string with a decimal comma is "
        "accepted too)."
    )


class CustomerMetricValuesBatchSerializer(serializers.Serializer):
    values = CustomerMetricValueSerializer(many=True)
    dry_run = serializers.BooleanField(
        required=False, default=False, help_text="Only check and count; write nothing."
    )


class CustomerMetricCountsSerializer(serializers.Serializer):
    metric_create = serializers.IntegerField(help_text="Standard metrics defined by this call.")
    value_create = serializers.IntegerField()
    value_update = serializers.IntegerField()
    unchanged = serializers.IntegerField()


class CustomerMetricValuesResultSerializer(serializers.Serializer):
    applied = serializers.BooleanField(help_text="False for a dry run: nothing was written.")
    counts = CustomerMetricCountsSerializer()
    digest = serializers.CharField(
        required=False, help_text="A dry run's plan (only in a dry run's answer)."
    )


class ImpactEstimateSerializer(serializers.Serializer):
    lag_weeks = serializers.IntegerField()
    enough_data = serializers.BooleanField()
    teams = serializers.IntegerField()
    team_weeks = serializers.IntegerField()
    slope_per_index_point = serializers.FloatField(
        allow_null=True, help_text="Metric units per index point; null without enough data."
    )
    ci_low = serializers.FloatField(allow_null=True)
    ci_high = serializers.FloatField(allow_null=True)
    confidence = serializers.FloatField(
        help_text="The interval's level: 0.95 per lag, Bonferroni-widened for the headline."
    )
    p_value = serializers.FloatField(allow_null=True)


class ImpactMinimumSerializer(serializers.Serializer):
    teams = serializers.IntegerField()
    team_weeks = serializers.IntegerField()


class CustomerImpactItemSerializer(serializers.Serializer):
    metric = serializers.CharField()
    metric_name = serializers.CharField()
    dimension = serializers.CharField(help_text="stress or client_burnout")
    enough_data = serializers.BooleanField()
    association = serializers.BooleanField(
        help_text="The headline's interval excludes 0 (an association, not proof of cause)."
    )
    headline = ImpactEstimateSerializer(
        allow_null=True, help_text="The lag with the largest |t|; null without enough data."
    )
    lags = ImpactEstimateSerializer(many=True)
    minimum = ImpactMinimumSerializer()
    note = serializers.CharField()


class CustomerImpactSerializer(serializers.Serializer):
    results = CustomerImpactItemSerializer(many=True)


class CustomerMetricValuesView(APIView):
    permission_classes = [IsOrganisationAdmin]

    @extend_schema(
        request={
            "application/json": PolymorphicProxySerializer(
                component_name="CustomerMetricValuesRequest",
                serializers=[
                    CustomerMetricValueSerializer(many=True),
                    CustomerMetricValuesBatchSerializer,
                ],
                resource_type_field_name=None,
                many=False,
            )
        },
        parameters=[
            OpenApiParameter(
                "dry_run",
                OpenApiTypes.BOOL,
                description="Only check and count; write nothing (as dry_run in the body).",
            )
        ],
        responses={200: CustomerMetricValuesResultSerializer},
    )
    def post(self, request: Request) -> Response:
        user, organisation = _admin_organisation(request)
        body = request.data
        dry_run = _truthy(request.query_params.get("dry_run", ""))
        if isinstance(body, dict) and "values" in body:
            dry_run = dry_run or _truthy(body.get("dry_run", False))
            unknown = sorted(set(body) - {"values", "dry_run"})
            if unknown:
                raise ServiceError(
                    "invalid",
                    "Unknown top-level fields.",
                    fields={"file": [f"{name}: unknown field" for name in unknown]},
                )
            body = body["values"]
        rows, issues = metric_items_read(body)
        today = today_for(organisation)
        if issues or dry_run:
            # Report every item's problems at once: the read's and the database's.
            plan = metric_values_plan(organisation=organisation, rows=rows, today=today)
            if issues or plan.issues:
                raise metric_issues_error(
                    sorted(issues + plan.issues, key=lambda i: (i.row or 0, i.column))
                )
            return Response({"applied": False, "counts": plan.counts(), "digest": plan.digest})
        result = customer_metric_values_import(
            organisation=organisation, rows=rows, actor=user, today=today, source="API"
        )
        return Response({"applied": True, "counts": result.counts})


def _estimate(e: LagEstimate | None) -> dict[str, Any] | None:
    if e is None:
        return None

    def r(value: float | None, digits: int = 4) -> float | None:
        return None if value is None else round(value, digits)

    return {
        "lag_weeks": e.lag,
        "enough_data": e.enough,
        "teams": e.n_teams,
        "team_weeks": e.n_team_weeks,
        "slope_per_index_point": r(e.slope),
        "ci_low": r(e.ci_low),
        "ci_high": r(e.ci_high),
        "confidence": round(e.confidence, 4),
        "p_value": r(e.p_value),
    }


class CustomerImpactView(APIView):
    """The within-team lagged association per metric and dimension (published figures only)."""

    permission_classes = [IsOrganisationAdmin]

    @extend_schema(responses={200: CustomerImpactSerializer})
    def get(self, request: Request) -> Response:
        _user, organisation = _admin_organisation(request)
        out = []
        for item in organisation_impact(organisation=organisation):
            summary = item.summary
            out.append(
                {
                    "metric": item.metric.key,
                    "metric_name": item.metric.name,
                    "dimension": item.dimension,
                    "enough_data": summary.enough,
                    "association": summary.association,
                    "headline": _estimate(summary.headline),
                    "lags": [_estimate(e) for e in summary.lags],
                    "minimum": {"teams": summary.min_teams, "team_weeks": summary.min_team_weeks},
                    "note": "An association within teams over time, not proof of cause.",
                }
            )
        return Response({"results": out})
