"""Check-in API routes, mounted under /api/."""

from django.urls import path
from rest_framework.routers import DefaultRouter

from . import api

router = DefaultRouter()
router.register("questions", api.QuestionViewSet, basename="question")
router.register("surveys", api.SurveyViewSet, basename="survey")
router.register("schedules", api.ScheduleViewSet, basename="schedule")
router.register("support-resources", api.SupportResourceViewSet, basename="support-resource")
router.register("cycles", api.CycleViewSet, basename="cycle")

urlpatterns = [
    path("checkins/submit/", api.CheckinSubmitView.as_view(), name="checkin-submit"),
    *router.urls,
]
