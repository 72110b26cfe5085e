"""/manage/ — the organisation admin's configuration pages (see ``manage_views``)."""

from django.urls import path

from . import manage_views as views

app_name = "manage"
urlpatterns = [
    path("", views.overview, name="overview"),
    path("teams/", views.teams, name="teams"),
    path("teams/<uuid:public_id>/", views.team_detail, name="team"),
    path(
        "teams/<uuid:public_id>/leads/<uuid:user_id>/remove/",
        views.team_lead_remove,
        name="team_lead_remove",
    ),
    path("people/", views.people, name="people"),
    path("people/<uuid:public_id>/deactivate/", views.person_deactivate, name="person_deactivate"),
    path(
        "people/<uuid:public_id>/sign-in-link/",
        views.person_sign_in_link,
        name="person_sign_in_link",
    ),
    path("people/import/", views.people_import, name="people_import"),
    path("people/import/confirm/", views.people_import_confirm, name="people_import_confirm"),
    path("privacy/", views.thresholds, name="thresholds"),
    path("flags/", views.flag_settings, name="flag_settings"),
    path("audit/", views.audit, name="audit"),
    path("metrics/", views.metrics, name="metrics"),
    path("metrics/confirm/", views.metrics_confirm, name="metrics_confirm"),
]
