"""Read-only API over stored analytics, plus the two flag actions.  Thin: parse, ask the policy,
call a selector or service, render.  Public ids in URLs; a team the caller may not see is a 404.
Nothing here computes a figure: suppressed cells come out as ``published: false`` with nulls.
"""

from __future__ import annotations

from django.shortcuts import get_object_or_404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.renderers import BrowsableAPIRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from . import analytics_selectors, policy
from .analytics import DIMENSIONS
from .api import IsOrganisationMember
from .api_errors import ErrorSerializer
from .errors import ServiceError
from .flags import flag_acknowledge, flag_dismiss
from .models import Flag, Team, User
from .renderers import FastJSONRenderer


def _member(request: Request) -> User:
    """The signed-in organisation member (``IsOrganisationMember`` has already checked)."""
    assert isinstance(request.user, User)
    return request.user


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 1)


class TrendPointSerializer(serializers.Serializer):
    period_start = serializers.DateField()
    published = serializers.BooleanField()
    n = serializers.IntegerField(allow_null=True)
    index = serializers.FloatField(allow_null=True)
    ci_low = serializers.FloatField(allow_null=True)
    ci_high = serializers.FloatField(allow_null=True)
    participation_rate = serializers.FloatField(allow_null=True)


class TrendSerializer(serializers.Serializer):
    team_id = serializers.UUIDField()
    dimension = serializers.CharField()
    points = TrendPointSerializer(many=True)


class HeatmapCellSerializer(serializers.Serializer):
    dimension = serializers.CharField()
    published = serializers.BooleanField()
    index = serializers.FloatField(allow_null=True)
    n = serializers.IntegerField(allow_null=True)
    change = serializers.FloatField(allow_null=True)


class HeatmapRowSerializer(serializers.Serializer):
    team_id = serializers.UUIDField(allow_null=True, source="team_public_id")
    name = serializers.CharField()
    parent_id = serializers.UUIDField(allow_null=True, source="parent_public_id")
    customer_facing = serializers.BooleanField()
    period_start = serializers.DateField(allow_null=True)
    cells = HeatmapCellSerializer(many=True)


class HeatmapSerializer(serializers.Serializer):
    dimensions = serializers.ListField(child=serializers.CharField())
    rows = HeatmapRowSerializer(many=True)


class TrendView(APIView):
    renderer_classes = [FastJSONRenderer, BrowsableAPIRenderer]
    permission_classes = [IsOrganisationMember]

    @extend_schema(
        parameters=[
            OpenApiParameter("dimension", OpenApiTypes.STR, enum=list(DIMENSIONS)),
            OpenApiParameter("cycles", OpenApiTypes.INT, description="1-104, default 26"),
        ],
        responses=TrendSerializer,
    )
    def get(self, request: Request, public_id: str) -> Response:
        team = get_object_or_404(
            Team, public_id=public_id, organisation_id=_member(request).organisation_id
        )
        if not policy.can_view_team(request.user, team):
            raise ServiceError("not_found", "No such team.", status=404)
        dimension = request.query_params.get("dimension", "stress")
        if dimension not in DIMENSIONS:
            raise ServiceError(
                "invalid",
                "Unknown dimension.",
                fields={"dimension": [f"Choose one of: {', '.join(DIMENSIONS)}."]},
            )
        try:
            cycles = int(request.query_params.get("cycles", 26))
        except ValueError:
            cycles = -1
        if not 1 <= cycles <= 104:
            raise ServiceError(
                "invalid", "Bad cycle count.", fields={"cycles": ["A number from 1 to 104."]}
            )
        points = analytics_selectors.team_trend(team=team, dimension=dimension, cycles=cycles)
        # Plain dicts in ``TrendSerializer``'s shape (no serializer pass per point).
        data = {
            "team_id": str(team.public_id),
            "dimension": dimension,
            "points": [
                {
                    "period_start": p.period_start.isoformat(),
                    "published": p.published,
                    "n": p.n,
                    "index": _round(p.index),
                    "ci_low": _round(p.ci_low),
                    "ci_high": _round(p.ci_high),
                    "participation_rate": p.participation_rate,
                }
                for p in points
            ],
        }
        return Response(data)


class HeatmapView(APIView):
    renderer_classes = [FastJSONRenderer, BrowsableAPIRenderer]
    permission_classes = [IsOrganisationMember]

    @extend_schema(responses=HeatmapSerializer)
    def get(self, request: Request) -> Response:
        user = _member(request)
        assert user.organisation is not None  # IsOrganisationMember
        heatmap = analytics_selectors.organisation_heatmap(
            organisation=user.organisation, user=user
        )
        # Plain dicts in ``HeatmapSerializer``'s shape: running the serializer over every team's
        # cells cost more than reading them (thousands of teams x seven dimensions).
        rows = [
            {
                "team_id": row.team_public_id,
                "name": row.name,
                "parent_id": row.parent_public_id,
                "customer_facing": row.customer_facing,
                "period_start": row.period_start.isoformat() if row.period_start else None,
                # ``HeatmapCell`` has exactly the API cell's fields: the renderer writes it as is.
                "cells": row.cells,
            }
            for row in heatmap.rows
        ]
        return Response({"dimensions": list(heatmap.dimensions), "rows": rows})


class FlagSerializer(serializers.ModelSerializer):
    id = serializers.UUIDField(source="public_id", read_only=True)
    team_id = serializers.UUIDField(source="team.public_id", read_only=True)
    team_name = serializers.CharField(source="team.name", read_only=True)
    acknowledged_by = serializers.CharField(
        source="acknowledged_by.get_full_name", read_only=True, allow_null=True, default=None
    )

    class Meta:
        model = Flag
        fields = [
            "id",
            "team_id",
            "team_name",
            "kind",
            "severity",
            "state",
            "opened_at",
            "first_cycle_period",
            "last_cycle_period",
            "evidence",
            "explanation",
            "suggested_actions",
            "acknowledged_by",
            "acknowledged_at",
            "action_taken",
            "follow_up_on",
            "resolved_at",
            "dismissed_reason",
        ]
        read_only_fields = fields


class AcknowledgeSerializer(serializers.Serializer):
    action_taken = serializers.CharField(max_length=2000)
    follow_up_on = serializers.DateField(required=False, allow_null=True)


class DismissSerializer(serializers.Serializer):
    reason = serializers.CharField(max_length=2000)


FLAG_NOT_ACTIONABLE = OpenApiResponse(
    ErrorSerializer, description="The flag is no longer open (already acknowledged or closed)."
)


class FlagViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Flags on teams the caller may see.  ``?state=open,acknowledged`` (default) or ``all``."""

    queryset = Flag.objects.none()  # for the schema; requests use get_queryset
    serializer_class = FlagSerializer
    permission_classes = [IsOrganisationMember]
    lookup_field = "public_id"
    filterset_fields: list[str] = []

    def get_queryset(self):
        raw = self.request.query_params.get("state", "")
        if raw == "all":
            states: tuple[str, ...] = tuple(Flag.State.values)
        elif raw:
            states = tuple(s for s in raw.split(",") if s in Flag.State.values)
        else:
            states = analytics_selectors.ACTIVE_FLAG_STATES
        if self.action in ("retrieve", "acknowledge", "dismiss"):
            states = tuple(Flag.State.values)
        return analytics_selectors.flags_for(user=self.request.user, states=states)

    @extend_schema(
        parameters=[OpenApiParameter("state", OpenApiTypes.STR)], responses=FlagSerializer
    )
    def list(self, request: Request, *args, **kwargs) -> Response:
        return super().list(request, *args, **kwargs)

    @extend_schema(
        request=AcknowledgeSerializer, responses={200: FlagSerializer, 409: FLAG_NOT_ACTIONABLE}
    )
    @action(detail=True, methods=["post"])
    def acknowledge(self, request: Request, public_id: str | None = None) -> Response:
        flag = self.get_object()
        body = AcknowledgeSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        flag = flag_acknowledge(
            flag=flag,
            user=_member(request),
            action_taken=body.validated_data["action_taken"],
            follow_up_on=body.validated_data.get("follow_up_on"),
        )
        return Response(FlagSerializer(flag).data, status=status.HTTP_200_OK)

    @extend_schema(
        request=DismissSerializer, responses={200: FlagSerializer, 409: FLAG_NOT_ACTIONABLE}
    )
    @action(detail=True, methods=["post"])
    def dismiss(self, request: Request, public_id: str | None = None) -> Response:
        flag = self.get_object()
        body = DismissSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        flag = flag_dismiss(flag=flag, user=_member(request), reason=body.validated_data["reason"])
        return Response(FlagSerializer(flag).data, status=status.HTTP_200_OK)
