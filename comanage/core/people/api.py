"""The People API: members (list, change role, deactivate, remove) and invitations (list,
invite, re-send, withdraw), through the same services and permissions as the pages."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import mixins, serializers, status
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.routers import SimpleRouter

from comanage.core.api import TenantViewSet
from comanage.core.http import signed_in_user
from comanage.core.models import Invitation, Membership, Role

from . import selectors, services


class MemberSerializer(serializers.ModelSerializer):
    email = serializers.EmailField(source="user.email", read_only=True)
    first_name = serializers.CharField(source="user.first_name", read_only=True)
    last_name = serializers.CharField(source="user.last_name", read_only=True)
    npi = serializers.SerializerMethodField()
    last_login = serializers.SerializerMethodField()
    two_factor = serializers.SerializerMethodField()
    sign_in = serializers.SerializerMethodField(help_text="SSO, Password or SSO or password.")

    class Meta:
        model = Membership
        fields = [
            "id",
            "email",
            "first_name",
            "last_name",
            "role",
            "npi",
            "is_active",
            "created_at",
            "last_login",
            "two_factor",
            "sign_in",
        ]
        read_only_fields = fields

    def _person(self, membership: Membership) -> selectors.Person | None:
        return self.context.get("people", {}).get(membership.pk)

    def get_npi(self, membership: Membership) -> str:
        return membership.physician.npi if membership.physician is not None else ""

    def get_last_login(self, membership: Membership) -> Any:
        value = membership.user.last_login
        return serializers.DateTimeField().to_representation(value) if value else None

    def get_two_factor(self, membership: Membership) -> bool:
        person = self._person(membership)
        return bool(person and person.two_factor)

    def get_sign_in(self, membership: Membership) -> str:
        person = self._person(membership)
        return person.sign_in if person else ""


class RoleChangeSerializer(serializers.Serializer):
    role = serializers.CharField(help_text=f"One of: {', '.join(Role.values)}.")
    npi = serializers.CharField(
        required=False,
        allow_blank=True,
        default="",
        help_text="For the physician role: the physician record's NPI.",
    )


class InvitationSerializer(serializers.ModelSerializer):
    npi = serializers.SerializerMethodField()
    status = serializers.CharField(read_only=True)
    invited_by = serializers.EmailField(source="invited_by.email", read_only=True, default=None)

    class Meta:
        model = Invitation
        fields = [
            "id",
            "email",
            "role",
            "npi",
            "status",
            "invited_by",
            "created_at",
            "sent_at",
            "expires_at",
            "accepted_at",
            "revoked_at",
        ]
        read_only_fields = fields

    def get_npi(self, invitation: Invitation) -> str:
        return invitation.physician.npi if invitation.physician is not None else ""


class InviteSerializer(serializers.Serializer):
    email = serializers.EmailField()
    role = serializers.CharField(help_text=f"One of: {', '.join(Role.values)}.")
    npi = serializers.CharField(
        required=False,
        allow_blank=True,
        default="",
        help_text="For the physician role: the physician record's NPI.",
    )


class EmptySerializer(serializers.Serializer):
    pass


@extend_schema(tags=["people"])
class MemberViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, TenantViewSet):
    """The organization's members: role, status, last sign-in, two-factor, how they sign in.

    Changing a role, deactivating and removing follow the rules of the People page: the last
    administrator stays, nobody raises their own role, a removed or deactivated member's
    sessions and tokens end at once.
    """

    queryset = Membership.objects.select_related("user", "physician")
    serializer_class = MemberSerializer
    permission_map = {
        "list": "people.view",
        "retrieve": "people.view",
        "role": "people.manage",
        "deactivate": "people.manage",
        "reactivate": "people.manage",
        "destroy": "people.manage",
    }
    filterset_fields = ["role", "is_active"]
    ordering_fields = ["id", "created_at"]
    ordering = ["id"]

    def get_serializer_context(self) -> dict[str, Any]:
        context = dict(super().get_serializer_context())
        if not getattr(self, "swagger_fake_view", False) and self.membership is not None:
            context["people"] = {
                p.membership.pk: p for p in selectors.people_of(organization=self.organization)
            }
        return context

    @extend_schema(
        summary="Change a member's role", request=RoleChangeSerializer, responses=MemberSerializer
    )
    @action(detail=True, methods=["post"])
    def role(self, request: Request, **kwargs: str) -> Response:
        membership = self.get_object()
        body = RoleChangeSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        membership = services.membership_role_change(
            membership=membership, actor=signed_in_user(request), **body.validated_data
        )
        return Response(self.get_serializer(membership).data)

    def _member_changed(self, request: Request, change: Callable[..., Membership]) -> Response:
        """Apply a member service (``membership=``, ``actor=``) and answer the member."""
        membership = change(membership=self.get_object(), actor=signed_in_user(request))
        return Response(self.get_serializer(membership).data)

    @extend_schema(
        summary="Deactivate a member (their sessions and tokens end now)",
        request=EmptySerializer,
        responses=MemberSerializer,
    )
    @action(detail=True, methods=["post"])
    def deactivate(self, request: Request, **kwargs: str) -> Response:
        return self._member_changed(request, services.membership_deactivate)

    @extend_schema(
        summary="Reactivate a deactivated member",
        request=EmptySerializer,
        responses=MemberSerializer,
    )
    @action(detail=True, methods=["post"])
    def reactivate(self, request: Request, **kwargs: str) -> Response:
        return self._member_changed(request, services.membership_reactivate)

    @extend_schema(
        summary="Remove a member from the organization (sessions and tokens end)",
        responses={204: OpenApiResponse(description="Removed.")},
    )
    def destroy(self, request: Request, **kwargs: str) -> Response:
        services.membership_remove(membership=self.get_object(), actor=signed_in_user(request))
        return Response(status=status.HTTP_204_NO_CONTENT)


@extend_schema(tags=["people"])
class InvitationViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, TenantViewSet):
    """Invitations by e-mail with a role; the link works once, until it expires."""

    queryset = Invitation.objects.select_related("invited_by", "physician")
    serializer_class = InvitationSerializer
    permission_map = {
        "list": "people.view",
        "retrieve": "people.view",
        "create": "people.manage",
        "resend": "people.manage",
        "revoke": "people.manage",
    }
    filterset_fields = ["role", "email"]
    ordering_fields = ["id", "created_at"]
    ordering = ["-created_at", "-id"]

    def _base_url(self) -> str:
        return self.request.build_absolute_uri("/").rstrip("/")

    @extend_schema(
        summary="Invite someone by e-mail with a role",
        request=InviteSerializer,
        responses={201: InvitationSerializer},
    )
    def create(self, request: Request, **kwargs: str) -> Response:
        body = InviteSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        invitation, _raw = services.invitation_create(
            organization=self.organization,
            actor=signed_in_user(request),
            base_url=self._base_url(),
            **body.validated_data,
        )
        return Response(InvitationSerializer(invitation).data, status=status.HTTP_201_CREATED)

    @extend_schema(
        summary="Re-send an invitation (a new link; the old one stops working)",
        request=EmptySerializer,
        responses=InvitationSerializer,
    )
    @action(detail=True, methods=["post"])
    def resend(self, request: Request, **kwargs: str) -> Response:
        invitation = self.get_object()
        services.invitation_resend(
            invitation=invitation, actor=signed_in_user(request), base_url=self._base_url()
        )
        return Response(InvitationSerializer(invitation).data)

    @extend_schema(
        summary="Withdraw an invitation", request=EmptySerializer, responses=InvitationSerializer
    )
    @action(detail=True, methods=["post"])
    def revoke(self, request: Request, **kwargs: str) -> Response:
        invitation = self.get_object()
        services.invitation_revoke(invitation=invitation, actor=signed_in_user(request))
        return Response(InvitationSerializer(invitation).data)


router = SimpleRouter()
router.register("members", MemberViewSet, basename="api-member")
router.register("invitations", InvitationViewSet, basename="api-invitation")
