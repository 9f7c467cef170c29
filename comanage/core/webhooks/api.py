"""The webhooks API: an organization's endpoints (administrators only) and their deliveries,
which can be sent again. Writes go through ``services``."""

from __future__ import annotations

from django.core.exceptions import ValidationError as DjangoValidationError
from drf_spectacular.utils import extend_schema
from rest_framework import exceptions, serializers, status
from rest_framework.decorators import action
from rest_framework.mixins import ListModelMixin, RetrieveModelMixin
from rest_framework.response import Response

from comanage.core.api import Conflict, TenantViewSet

from . import services
from .models import EVENT_TYPES, WebhookDelivery, WebhookEndpoint


class EndpointSerializer(serializers.ModelSerializer):
    events = serializers.ListField(
        child=serializers.ChoiceField(choices=list(EVENT_TYPES)),
        allow_empty=False,
        help_text="Event types to receive: " + ", ".join(EVENT_TYPES) + ".",
    )
    url = serializers.CharField(max_length=500, help_text="An https:// URL on a public host.")

    class Meta:
        model = WebhookEndpoint
        fields = ["id", "url", "description", "events", "enabled", "created_at"]
        read_only_fields = ["id", "created_at"]


class EndpointCreatedSerializer(EndpointSerializer):
    secret = serializers.CharField(
        read_only=True,
        help_text="The signing secret (Standard Webhooks, whsec_...). Shown "
        "only in this response; store it now.",
    )

    class Meta(EndpointSerializer.Meta):
        fields = EndpointSerializer.Meta.fields + ["secret"]


class SecretSerializer(serializers.Serializer):
    secret = serializers.CharField(read_only=True)


class DeliverySerializer(serializers.ModelSerializer):
    payload = serializers.JSONField(source="payload_data", read_only=True)

    class Meta:
        model = WebhookDelivery
        fields = [
            "id",
            "endpoint",
            "event_id",
            "event_type",
            "status",
            "attempts",
            "response_code",
            "response_excerpt",
            "error",
            "last_attempt_at",
            "delivered_at",
            "created_at",
            "payload",
        ]
        read_only_fields = fields


def _service_call(func, **kwargs):
    try:
        return func(**kwargs)
    except DjangoValidationError as exc:
        detail = exc.message_dict if hasattr(exc, "error_dict") else exc.messages
        raise exceptions.ValidationError(detail) from None


class WebhookEndpointViewSet(ListModelMixin, RetrieveModelMixin, TenantViewSet):
    """Endpoints that receive this organization's events, signed per Standard Webhooks."""

    model = WebhookEndpoint
    serializer_class = EndpointSerializer
    filterset_fields = {"enabled": ["exact"], "created_at": ["gte", "lte"]}
    http_method_names = ["get", "post", "patch", "delete", "head", "options"]
    permission_map = {
        "list": "org.manage",
        "retrieve": "org.manage",
        "create": "org.manage",
        "partial_update": "org.manage",
        "destroy": "org.manage",
        "rotate_secret": "org.manage",
        "deliveries": "org.manage",
    }

    def get_queryset(self):
        return super().get_queryset().order_by("url", "pk")

    @extend_schema(request=EndpointSerializer, responses={201: EndpointCreatedSerializer})
    def create(self, request, org_slug=None):
        data = EndpointSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        endpoint, secret = _service_call(
            services.endpoint_create,
            organization=self.organization,
            url=values["url"],
            events=values["events"],
            description=values.get("description", ""),
            enabled=values.get("enabled", True),
            user=request.user,
        )
        body = EndpointSerializer(endpoint).data | {"secret": secret}
        return Response(body, status=status.HTTP_201_CREATED)

    @extend_schema(request=EndpointSerializer, responses={200: EndpointSerializer})
    def partial_update(self, request, org_slug=None, pk=None):
        endpoint = self.get_object()
        data = EndpointSerializer(endpoint, data=request.data, partial=True)
        data.is_valid(raise_exception=True)
        endpoint = _service_call(
            services.endpoint_update, endpoint=endpoint, user=request.user, **data.validated_data
        )
        return Response(EndpointSerializer(endpoint).data)

    def destroy(self, request, org_slug=None, pk=None):
        services.endpoint_delete(endpoint=self.get_object(), user=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(request=None, responses={200: SecretSerializer})
    @action(detail=True, methods=["post"], url_path="rotate-secret")
    def rotate_secret(self, request, org_slug=None, pk=None):
        """A new signing secret, shown once; later deliveries are signed with it."""
        secret = services.endpoint_secret_rotate(endpoint=self.get_object(), user=request.user)
        return Response({"secret": secret})

    @extend_schema(responses={200: DeliverySerializer(many=True)})
    @action(detail=True, methods=["get"])
    def deliveries(self, request, org_slug=None, pk=None):
        endpoint = self.get_object()
        queryset = WebhookDelivery.objects.filter(endpoint=endpoint).order_by("-created_at", "-pk")
        page = self.paginate_queryset(queryset)
        rows = DeliverySerializer(page if page is not None else queryset, many=True).data
        return self.get_paginated_response(rows) if page is not None else Response(rows)


class WebhookDeliveryViewSet(ListModelMixin, RetrieveModelMixin, TenantViewSet):
    """Every delivery made to this organization's endpoints (``?endpoint=<id>`` narrows)."""

    model = WebhookDelivery
    serializer_class = DeliverySerializer
    filterset_fields = {
        "endpoint": ["exact"],
        "event_type": ["exact"],
        "status": ["exact"],
        "created_at": ["gte", "lte"],
    }
    permission_map = {"list": "org.manage", "retrieve": "org.manage", "redeliver": "org.manage"}
    conflict_actions = {"redeliver"}  # read by comanage.core.schema: 409 when refused

    def get_queryset(self):
        return super().get_queryset().order_by("-created_at", "-pk")

    @extend_schema(request=None, responses={202: DeliverySerializer})
    @action(detail=True, methods=["post"])
    def redeliver(self, request, org_slug=None, pk=None):
        """Send the delivery again (same event id and body; a fresh signature)."""
        try:
            delivery = services.delivery_redeliver(delivery=self.get_object(), user=request.user)
        except services.RedeliveryRefused as exc:
            raise Conflict(str(exc)) from None
        return Response(DeliverySerializer(delivery).data, status=status.HTTP_202_ACCEPTED)
