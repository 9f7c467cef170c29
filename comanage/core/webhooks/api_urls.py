"""Mounted under /api/v1/organizations/<org_slug>/."""

from rest_framework.routers import SimpleRouter

from .api import WebhookDeliveryViewSet, WebhookEndpointViewSet

_router = SimpleRouter()
_router.register("webhooks", WebhookEndpointViewSet, basename="api-webhook")
_router.register("webhook-deliveries", WebhookDeliveryViewSet, basename="api-webhook-delivery")
urlpatterns = _router.urls
