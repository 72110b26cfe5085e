"""Employee-facing check-in pages, mounted under /checkin/."""

from django.urls import path

from . import views

app_name = "checkins"
urlpatterns = [
    path("t/<str:token>/", views.token_start, name="token"),
    path("answer/", views.answer, name="answer"),
    path("cycle/<uuid:cycle_id>/", views.answer_signed_in, name="answer_cycle"),
    path("thanks/", views.thanks, name="thanks"),
    path("mine/", views.mine, name="mine"),
    path("privacy/", views.privacy, name="privacy"),
]
