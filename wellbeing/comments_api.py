"""Read-only API over a team's stored free-text comments.  Thin, as ``analytics_api``: parse,
ask the policy, call the selector, render.  A team the caller may not see is a 404; comments come
only from ``TeamComments`` (stored through the guard at close), shuffled on every answer.
"""

from __future__ import annotations

import re
from datetime import date

from django.shortcuts import get_object_or_404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.renderers import BrowsableAPIRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from . import policy
from .analytics_api import _member
from .api import IsOrganisationMember
from .comments_selectors import team_comments
from .errors import ServiceError
from .models import Scope, Team
from .renderers import FastJSONRenderer

LATEST = "latest"
_ISO_DAY = re.compile(r"\d{4}-\d{2}-\d{2}", re.ASCII)


class TeamCommentsSerializer(serializers.Serializer):
    team_id = serializers.UUIDField()
    enabled = serializers.BooleanField(
        help_text="Whether the organisation has free-text comments on; when off, none are shown."
    )
    threshold = serializers.IntegerField(
        help_text="Comments are shown only for groups of at least this many people."
    )
    period_start = serializers.DateField(
        allow_null=True,
        help_text="Start of the cycle the comments come from; null when none can be shown.",
    )
    scope = serializers.ChoiceField(
        choices=[Scope.TEAM.value, Scope.SUBTREE.value],
        allow_null=True,
        help_text="`subtree`: written in the team and its sub-teams; `team`: in the team itself.",
    )
    comments = serializers.ListField(
        child=serializers.CharField(), help_text="Word for word, in a new random order each time."
    )


def _period(raw: str) -> date | None:
    """The ``cycle`` parameter: None for the latest, else a cycle's start date."""
    if raw == LATEST:
        return None
    if _ISO_DAY.fullmatch(raw):
        try:
            return date.fromisoformat(raw)
        except ValueError:  # 2026-02-30
            pass
    raise ServiceError(
        "invalid",
        "Bad cycle.",
        fields={"cycle": ["Give `latest` or the date a cycle started on, as YYYY-MM-DD."]},
    )


class TeamCommentsView(APIView):
    renderer_classes = [FastJSONRenderer, BrowsableAPIRenderer]
    permission_classes = [IsOrganisationMember]

    @extend_schema(
        summary="A team's free-text comments of one cycle",
        description=(
            "The comments of the team's headline group (its whole subtree for a team with "
            "sub-teams, else its own people) from the latest cycle that has any, or from the "
            "cycle given by `cycle`. Stored at the cycle's close only for groups of at least "
            "the organisation's comment threshold (and never where subtracting a visible group "
            "would single out fewer people); nothing while comments are off."
        ),
        parameters=[
            OpenApiParameter(
                "cycle",
                OpenApiTypes.STR,
                description="`latest` (default) or the start date of a cycle (YYYY-MM-DD).",
            ),
        ],
        responses=TeamCommentsSerializer,
    )
    def get(self, request: Request, public_id: str) -> Response:
        team = get_object_or_404(
            Team.objects.select_related("organisation"),
            public_id=public_id,
            organisation_id=_member(request).organisation_id,
        )
        if not policy.can_view_team(request.user, team):
            raise ServiceError("not_found", "No such team.", status=404)
        period = _period(request.query_params.get("cycle", LATEST))
        shown = team_comments(team=team, period_start=period)
        return Response(
            {
                "team_id": str(team.public_id),
                "enabled": shown.enabled,
                "threshold": shown.threshold,
                "period_start": shown.period_start.isoformat() if shown.period_start else None,
                "scope": shown.scope,
                "comments": shown.comments,
            }
        )
