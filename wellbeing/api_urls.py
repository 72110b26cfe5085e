from django.urls import path
from rest_framework.routers import DefaultRouter

from . import analytics_api, api

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
    path("heatmap/", analytics_api.HeatmapView.as_view(), name="heatmap"),
    *router.urls,
]
