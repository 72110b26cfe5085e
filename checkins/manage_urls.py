"""/manage/checkins/ — check-in configuration pages for organisation admins."""

from django.urls import path

from . import manage_views as views

app_name = "manage_checkins"
urlpatterns = [
    path("questions/", views.questions, name="questions"),
    path("questions/<int:pk>/", views.question_edit, name="question"),
    path("surveys/", views.surveys, name="surveys"),
    path("surveys/<int:pk>/", views.survey_edit, name="survey"),
    path("surveys/<int:pk>/publish/", views.survey_publish, name="survey_publish"),
    path("schedules/", views.schedules, name="schedules"),
    path("schedules/<uuid:public_id>/", views.schedule_edit, name="schedule"),
    path("schedules/<uuid:public_id>/pause/", views.schedule_pause, name="schedule_pause"),
    path("support/", views.support, name="support"),
    path("channels/", views.channels, name="channels"),
]
