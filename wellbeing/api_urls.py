from django.urls import path
from rest_framework.routers import DefaultRouter

from . import analytics_api, api, comments_api, impact_api

router = DefaultRouter()
router.register("organisations", api.OrganisationViewSet, basename="organisation")
router.register("teams", api.TeamViewSet, basename="team")
router.register("flags", analytics_api.FlagViewSet, basename="flag")

urlpatterns = [
    path(
        "teams/<uuid:public_id>/trend/",
        analytics_api.TrendView.as_view(),
        name="team-trend",
    ),
    path(
        "teams/<uuid:public_id>/comments/",
        comments_api.TeamCommentsView.as_view(),
        name="team-comments",
    ),
    path("heatmap/", analytics_api.HeatmapView.as_view(), name="heatmap"),
    path(
        "customer-metrics/",
        impact_api.CustomerMetricValuesView.as_view(),
        name="customer-metric-values",
    ),
    path(
        "customer-metrics/impact/",
        impact_api.CustomerImpactView.as_view(),
        name="customer-impact",
    ),
    *router.urls,
]
