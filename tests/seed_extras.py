"""Objects the demo does not hold but walks over every route or write address by id."""

from __future__ import annotations

from typing import Any


def webhook_with_failed_delivery(organization: Any, *, url: str, user: Any = None) -> Any:
    """A webhook endpoint of ``organization`` (its address takes nothing) and one failed
    delivery of it; returns the endpoint."""
    from comanage.core.webhooks.models import DeliveryStatus, WebhookDelivery
    from comanage.core.webhooks.services import endpoint_create

    endpoint, _secret = endpoint_create(
        organization=organization, url=url, events=["report.approved"], user=user
    )
    WebhookDelivery.objects.create(
        organization=organization,
        endpoint=endpoint,
        event_id=f"msg_seed{endpoint.pk}",
        event_type="report.approved",
        payload="{}",
        status=DeliveryStatus.FAILED,
    )
    return endpoint
