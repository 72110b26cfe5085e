"""One API root; each app contributes its routes under /api/."""

from django.urls import include, path

urlpatterns = [
    path("", include("wellbeing.api_urls")),
    path("", include("checkins.api_urls")),
    path("", include("notifications.api_urls")),
]
