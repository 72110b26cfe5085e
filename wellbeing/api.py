"""Read-only API over the organisation, scoped by the policy module."""

from __future__ import annotations

from rest_framework import permissions, serializers, viewsets

from . import policy
from .models import Organisation, Team


class IsOrganisationMember(permissions.BasePermission):
    message = "You need an account in an organisation."

    def has_permission(self, request, view) -> bool:  # noqa: ANN001
        return bool(
            request.user.is_authenticated and getattr(request.user, "organisation_id", None)
        )


class IsOrganisationAdmin(permissions.BasePermission):
    message = "Only organisation admins may do this."

    def has_permission(self, request, view) -> bool:  # noqa: ANN001
        return policy.is_org_admin(request.user)


class OrganisationSerializer(serializers.ModelSerializer):
    class Meta:
        model = Organisation
        fields = ["public_id", "name", "slug", "timezone", "locale", "anonymity_threshold"]


class TeamSerializer(serializers.ModelSerializer):
    parent_id = serializers.UUIDField(source="parent.public_id", read_only=True, allow_null=True)

    class Meta:
        model = Team
        fields = ["public_id", "name", "parent_id", "customer_facing", "is_active"]


class OrganisationViewSet(viewsets.ReadOnlyModelViewSet):
    queryset = Organisation.objects.none()  # for the schema; requests use get_queryset
    serializer_class = OrganisationSerializer
    permission_classes = [IsOrganisationMember]
    lookup_field = "public_id"

    def get_queryset(self):
        return Organisation.objects.filter(pk=self.request.user.organisation_id).order_by("pk")


class TeamViewSet(viewsets.ReadOnlyModelViewSet):
    """Teams the caller may see: the whole organisation for admins, led subtrees for leads."""

    queryset = Team.objects.none()  # for the schema; requests use get_queryset
    serializer_class = TeamSerializer
    permission_classes = [IsOrganisationMember]
    lookup_field = "public_id"
    filterset_fields = ["customer_facing", "is_active"]

    def get_queryset(self):
        return (
            Team.objects.filter(pk__in=policy.visible_team_ids(self.request.user))
            .select_related("parent")
            .order_by("name")
        )
