"""Dashboards: mounted at ``/dashboards/`` by ``config/urls.py``."""

from django.urls import path

from . import dashboard_views as views

app_name = "dashboards"

urlpatterns = [
    path("", views.landing, name="landing"),
    path("organisation/", views.organisation_overview, name="organisation"),
    path("organisation/export.csv", views.organisation_export, name="organisation-export"),
    path("teams/<uuid:public_id>/", views.team_dashboard, name="team"),
    path("teams/<uuid:public_id>/export.csv", views.team_export, name="team-export"),
    path(
        "teams/<uuid:public_id>/flags/<uuid:flag_id>/acknowledge/",
        views.flag_acknowledge_view,
        name="flag-acknowledge",
    ),
    path(
        "teams/<uuid:public_id>/flags/<uuid:flag_id>/dismiss/",
        views.flag_dismiss_view,
        name="flag-dismiss",
    ),
    path(
        "teams/<uuid:public_id>/you-said-we-did/",
        views.you_said_we_did,
        name="you-said-we-did",
    ),
]
