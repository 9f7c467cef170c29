from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import generics, serializers

from .models import Membership
from .selectors import memberships_of


class MembershipSerializer(serializers.Serializer):
    slug = serializers.CharField(source="organization.slug")
    name = serializers.CharField(source="organization.name")
    role = serializers.CharField()


@extend_schema(summary="Organizations you belong to, with your role in each")
class OrganizationListView(generics.ListAPIView):
    serializer_class = MembershipSerializer
    pagination_class = None
    comanage_permission = None  # not organization-scoped: lists only the user's own

    def get_queryset(self) -> list[Membership]:  # type: ignore[override]
        return memberships_of(user=self.request.user)  # type: ignore[arg-type]
