from rest_framework.routers import DefaultRouter

from . import api

router = DefaultRouter()
router.register("organisations", api.OrganisationViewSet, basename="organisation")
router.register("teams", api.TeamViewSet, basename="team")

urlpatterns = router.urls
