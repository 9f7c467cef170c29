"""The core's API routes. Mounted under /api/v1/organizations/<org_slug>/ (``org_urlpatterns``)
and /api/v1/ (``user_urlpatterns``)."""

from rest_framework.routers import SimpleRouter

from .api_views import ApiTokenViewSet, JobViewSet
from .people.api import router as people_router

_org_router = SimpleRouter()
_org_router.register("jobs", JobViewSet, basename="api-job")
org_urlpatterns = _org_router.urls
org_urlpatterns += people_router.urls  # members, invitations (comanage.core.people.api)

_user_router = SimpleRouter()
_user_router.register("tokens", ApiTokenViewSet, basename="api-token")
user_urlpatterns = _user_router.urls
