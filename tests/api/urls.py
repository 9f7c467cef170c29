"""The site's URLs plus a test-only organization view set (for 403 and fail-closed checks)."""

from django.urls import include, path
from rest_framework import mixins, serializers
from rest_framework.response import Response

from comanage.core.api import TenantViewSet
from comanage.core.models import Job
from comanage.urls import urlpatterns as site_urlpatterns


class _JobKindSerializer(serializers.Serializer):
    kind = serializers.CharField(max_length=50)
    amount = serializers.DecimalField(max_digits=12, decimal_places=2)


class AdminOnlyViewSet(mixins.ListModelMixin, TenantViewSet):
    queryset = Job.objects.all  # never evaluated: only the permission checks matter here
    serializer_class = _JobKindSerializer
    permission_map = {"list": "org.manage", "create": "org.manage"}  # "undeclared" is missing

    def list(self, request, org_slug):  # type: ignore[no-untyped-def]
        return Response({"ok": True})

    def create(self, request, org_slug):  # type: ignore[no-untyped-def]
        serializer = _JobKindSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        return Response(serializer.validated_data, status=201)

    def undeclared(self, request, org_slug):  # type: ignore[no-untyped-def]
        return Response({"ok": True})


urlpatterns = [
    path(
        "api/v1/organizations/<slug:org_slug>/test/admin-only/",
        AdminOnlyViewSet.as_view({"get": "list", "post": "create"}),
    ),
    path(
        "api/v1/organizations/<slug:org_slug>/test/undeclared/",
        AdminOnlyViewSet.as_view({"get": "undeclared"}),
    ),
    path("", include(site_urlpatterns)),
]
