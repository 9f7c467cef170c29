"""Sending webhook deliveries: the task takes ids, re-enters the tenant scope, claims the row
(``delivery_attempt``) and schedules the next attempt of a transient failure with a bounded
exponential back-off.

The next attempt is a new message with a countdown (what ``Task.retry`` sends), counted by
``attempt`` rather than Celery's retry counter, so "send again" from the UI starts a fresh
series of attempts and eager mode (tests) runs the series inline.
"""

from __future__ import annotations

from celery import shared_task
from django_scopes import scope

from comanage.core.models import Organization

from . import services


@shared_task(name="comanage.core.webhooks.tasks.webhook_deliver", acks_late=True)
def webhook_deliver(*, organization_id: int, delivery_id: int, attempt: int = 1) -> str:
    organization = Organization.objects.get(pk=organization_id)
    with scope(organization=organization):
        outcome = services.delivery_attempt(
            delivery_id=delivery_id, may_retry=attempt < services.MAX_ATTEMPTS
        )
        if outcome.retry:
            services.delivery_schedule(
                organization_id=organization_id,
                delivery_id=delivery_id,
                attempt=attempt + 1,
                countdown=services.retry_delay(attempt),
            )
    return outcome.status or "skipped"
