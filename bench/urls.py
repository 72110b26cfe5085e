"""The product's URLs plus the bare baselines (bench settings only, never production)."""

from django.urls import include, path

from . import bare_views

urlpatterns = [
    path("bench/bare/insert/", bare_views.bare_insert),
    path("bench/bare/trend/<uuid:public_id>/", bare_views.bare_trend),
    path("bench/bare/heatmap/", bare_views.bare_heatmap),
    path("", include("config.urls")),
]
