"""An organization's webhook endpoints and the deliveries made to them."""

from __future__ import annotations

import json
from typing import Any

from django.conf import settings
from django.db import models
from django.utils import timezone
from simple_history.models import HistoricalRecords

from comanage.core.tenancy import TenantOwned

# The events an endpoint may subscribe to, each with what it means to an integrator.
EVENT_TYPES: dict[str, str] = {
    "import.applied": "A cost, price, usage or case file was applied.",
    "import.refused": "A file was refused; nothing from it was stored.",
    "calculation.finished": "A calculation run was recorded (a new version of the figures).",
    "report.submitted": "An adjudication report was submitted to counsel.",
    "report.approved": "Counsel approved a report; its figures are frozen.",
    "report.returned": "Counsel returned a report with comments.",
    "payment.authorised": "The CEO authorised a report's payments.",
    "payment.recorded": "A payment line was recorded as paid.",
    "compliance_flag.raised": "A compliance flag was opened.",
}


class WebhookEndpoint(TenantOwned):
    """An HTTPS URL that receives the organization's events, signed with its secret."""

    url = models.URLField(max_length=500)
    description = models.CharField(max_length=200, blank=True)
    events = models.JSONField(default=list, help_text="Event types this endpoint receives.")
    # Standard Webhooks secret (``whsec_`` + base64). Shown once, on creation; needed in clear
    # to sign, so it is never returned again and is excluded from the change history.
    secret = models.CharField(max_length=100, editable=False)
    enabled = models.BooleanField(default=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)

    # Audited like every domain model (``TenantModel``), but without the secret.
    history = HistoricalRecords(excluded_fields=["secret"])

    class Meta:
        ordering = ["url", "pk"]

    def __str__(self) -> str:
        return self.url


class DeliveryStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    SENDING = "sending", "Sending"
    RETRYING = "retrying", "Waiting to retry"
    SUCCEEDED = "succeeded", "Delivered"
    FAILED = "failed", "Failed"


class WebhookDelivery(TenantOwned):
    """One event for one endpoint: the signed body, and how its attempts went."""

    endpoint = models.ForeignKey(
        WebhookEndpoint, on_delete=models.CASCADE, related_name="deliveries"
    )
    event_id = models.CharField(max_length=60, help_text="The webhook-id header (msg_...).")
    event_type = models.CharField(max_length=60)
    business_event = models.ForeignKey(
        "core.BusinessEvent", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    payload = models.TextField(help_text="The JSON body, exactly as signed and sent.")
    status = models.CharField(
        max_length=10, choices=DeliveryStatus.choices, default=DeliveryStatus.PENDING, db_index=True
    )
    attempts = models.PositiveIntegerField(default=0)
    response_code = models.PositiveIntegerField(null=True, blank=True)
    response_excerpt = models.CharField(max_length=500, blank=True)
    error = models.CharField(max_length=300, blank=True)
    claimed_at = models.DateTimeField(null=True, blank=True)
    last_attempt_at = models.DateTimeField(null=True, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at", "-pk"]
        constraints = [
            models.UniqueConstraint(
                fields=["endpoint", "event_id"], name="webhook_delivery_once_per_event"
            )
        ]

    def __str__(self) -> str:
        return f"{self.event_type} {self.event_id} -> {self.endpoint_id}"

    @property
    def payload_data(self) -> Any:
        return json.loads(self.payload) if self.payload else None
