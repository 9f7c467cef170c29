"""Webhook endpoints (create, update, delete), the fan-out of business events to them, and one
delivery attempt. Views, the API and the Celery task call these; nothing else writes.

Deliveries follow the Standard Webhooks specification (https://www.standardwebhooks.com/): the
body is JSON ``{"type", "timestamp", "data"}``; the ``webhook-id``, ``webhook-timestamp`` and
``webhook-signature`` headers carry the id (the same on every retry, so receivers can drop
duplicates), the time of this attempt and an HMAC-SHA256 over ``id.timestamp.body``.
"""

from __future__ import annotations

import base64
import datetime as dt
import ipaddress
import json
import logging
import secrets
import socket
import uuid
from dataclasses import dataclass
from decimal import Decimal
from typing import Any
from urllib.parse import urlsplit

import requests
from django.apps import apps
from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from django_scopes import scope
from kombu.exceptions import OperationalError
from standardwebhooks import Webhook

from comanage.core.models import BusinessEvent, Organization, User
from comanage.core.money import round_money
from comanage.core.serialise import jsonable

from .models import EVENT_TYPES, DeliveryStatus, WebhookDelivery, WebhookEndpoint

log = logging.getLogger(__name__)

# Business events (``comanage.core.audit.event_record`` names) -> webhook event types.
EVENT_MAP: dict[str, str] = {
    "savings.file_applied": "import.applied",
    "indicator.import_applied": "import.applied",
    "import.refused": "import.refused",
    "calculation.recorded": "calculation.finished",
    "report.submitted": "report.submitted",
    "report.approved": "report.approved",
    "report.returned": "report.returned",
    "payment.authorised": "payment.authorised",
    "payment.recorded": "payment.recorded",
    "compliance_flag.raised": "compliance_flag.raised",
}

MAX_ATTEMPTS = 6  # per sending: the first try and five retries (30 s, 1, 2, 4, 8 min)
RETRY_BASE_SECONDS = 30
RETRY_MAX_SECONDS = 3600
TIMEOUT_SECONDS = 10
EXCERPT_CHARS = 500
STALE_CLAIM = dt.timedelta(minutes=5)  # a worker that died mid-send frees the delivery


def retry_delay(attempt: int) -> int:
    """Seconds to wait after failed attempt number ``attempt``: exponential, bounded."""
    return int(min(RETRY_BASE_SECONDS * 2 ** max(attempt - 1, 0), RETRY_MAX_SECONDS))


def secret_generate() -> str:
    """A Standard Webhooks secret: ``whsec_`` and 32 random bytes in base64."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


# ---------------------------------------------------------------------------------------------
# Endpoints


def _address_refused(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
        ip = ip.ipv4_mapped
    return not ip.is_global or ip.is_multicast


def url_check(url: str) -> None:
    """Refuse a URL that is not HTTPS or whose host resolves to a loopback, private,
    link-local or otherwise non-public address (the server must not be a proxy into the
    hospital's network). ``COMANAGE_WEBHOOKS_ALLOW_PRIVATE`` (tests, local) allows both."""
    allow_private = getattr(settings, "COMANAGE_WEBHOOKS_ALLOW_PRIVATE", False)
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise ValidationError({"url": f"Not a valid URL: {exc}."}) from None
    if parts.scheme not in (("https", "http") if allow_private else ("https",)):
        raise ValidationError({"url": "The URL must start with https://."})
    if not parts.hostname:
        raise ValidationError({"url": "The URL has no host."})
    if parts.username or parts.password:
        raise ValidationError(
            {
                "url": "Put no user name or password in the URL; the "
                "signature authenticates each delivery."
            }
        )
    if allow_private:
        return
    try:
        infos = socket.getaddrinfo(parts.hostname, port or 443, proto=socket.IPPROTO_TCP)
    except (socket.gaierror, UnicodeError):
        raise ValidationError({"url": f"The host {parts.hostname} cannot be resolved."}) from None
    # An IP socket address starts with its host (typeshed allows an int for other families).
    addresses = {str(info[4][0]) for info in infos}
    refused = sorted(address for address in addresses if _address_refused(address))
    if refused or not infos:
        raise ValidationError(
            {
                "url": f"The host {parts.hostname} resolves to a loopback, "
                f"private or link-local address ({', '.join(refused)}); "
                "only public addresses receive webhooks."
            }
        )


def events_check(events: Any) -> list[str]:
    if not isinstance(events, list | tuple) or not events:
        raise ValidationError({"events": "Choose at least one event."})
    unknown = sorted({str(e) for e in events} - set(EVENT_TYPES))
    if unknown:
        raise ValidationError(
            {"events": f"Unknown event(s): {', '.join(unknown)}. Known: {', '.join(EVENT_TYPES)}."}
        )
    return [e for e in EVENT_TYPES if e in set(events)]


def endpoint_create(
    *,
    organization: Organization,
    url: str,
    events: list[str],
    user: User | None,
    description: str = "",
    enabled: bool = True,
) -> tuple[WebhookEndpoint, str]:
    """Register an endpoint; returns it and its secret (shown once, never again)."""
    url_check(url)
    events = events_check(events)
    secret = secret_generate()
    endpoint = WebhookEndpoint.objects.create(
        organization=organization,
        url=url,
        events=events,
        description=description[:200],
        enabled=enabled,
        secret=secret,
        created_by=user,
    )
    return endpoint, secret


def endpoint_update(
    *, endpoint: WebhookEndpoint, user: User | None, **changes: Any
) -> WebhookEndpoint:
    """Change ``url``, ``events``, ``description`` or ``enabled``; checks as on creation."""
    allowed = {"url", "events", "description", "enabled"}
    unknown = set(changes) - allowed
    if unknown:
        raise ValidationError({sorted(unknown)[0]: "This field cannot be changed."})
    if "url" in changes:
        url_check(changes["url"])
    if "events" in changes:
        changes["events"] = events_check(changes["events"])
    if "description" in changes:
        changes["description"] = (changes["description"] or "")[:200]
    for name, value in changes.items():
        setattr(endpoint, name, value)
    if changes:
        endpoint.save(update_fields=list(changes))
    return endpoint


def endpoint_secret_rotate(*, endpoint: WebhookEndpoint, user: User | None) -> str:
    """A new secret (shown once); deliveries from now on are signed with it."""
    endpoint.secret = secret_generate()
    endpoint.save(update_fields=["secret"])
    return endpoint.secret


def endpoint_delete(*, endpoint: WebhookEndpoint, user: User | None) -> None:
    endpoint.delete()


# ---------------------------------------------------------------------------------------------
# From business event to deliveries


def _money(value: Any) -> str | None:
    return None if value is None else f"{round_money(value):.2f}"


def _summary(obj: Any) -> dict[str, Any]:
    """Ids and a minimal summary of the event's object (never names or free text)."""
    label = obj._meta.label
    if label == "adjudication.AdjudicationReport":
        amounts = [line.amount for line in obj.payment_lines.all()]  # from authorisation on
        return {
            "report": obj.pk,
            "run": obj.run_id,
            "agreement": obj.agreement_id,
            "programme_year": obj.programme_year_id,
            "version": obj.version,
            "status": obj.status,
            "calculation_hash": obj.calculation_hash,
            "total_compensation": _money(obj.run.read.totals.total_compensation),
            "payments_total": _money(sum(amounts, Decimal("0"))) if amounts else None,
        }
    if label == "adjudication.PaymentLine":
        return {
            "payment_line": obj.pk,
            "report": obj.report_id,
            "kind": obj.kind,
            "physician": obj.physician_id,
            "amount": _money(obj.amount),
            "paid_amount": _money(obj.paid_amount),
            "paid_on": obj.paid_on.isoformat() if obj.paid_on else None,
        }
    if label == "adjudication.CalculationRun":
        return {
            "run": obj.pk,
            "agreement": obj.agreement_id,
            "programme_year": obj.programme_year_id,
            "version": obj.version,
            "kind": obj.kind,
            "calculation_hash": obj.calculation_hash,
        }
    if label == "agreements.ComplianceFlag":
        return {
            "flag": obj.pk,
            "kind": obj.kind,
            "severity": obj.severity,
            "blocking": obj.blocking,
            "agreement": obj.agreement_id,
            "programme_year": obj.programme_year_id,
        }
    if label == "savings.DataImport":
        return {
            "import": obj.pk,
            "source": "savings",
            "kind": obj.kind,
            "agreement": obj.agreement_id,
            "status": obj.status,
            "row_count": obj.row_count,
        }
    if label == "indicators.CaseImport":
        return {
            "import": obj.pk,
            "source": "indicators",
            "kind": "cases",
            "agreement": obj.agreement_id,
            "programme_year": obj.programme_year_id,
            "status": obj.status,
            "row_count": obj.row_count,
        }
    return {"id": obj.pk}


def payload_build(*, event: BusinessEvent, event_type: str) -> dict[str, Any]:
    """The body for ``event``, built inside its organization's scope: the scoped managers
    cannot load another organization's rows, so none can end up in the payload."""
    obj = None
    if event.object_type and event.object_id:
        try:
            model = apps.get_model(event.object_type)
        except (LookupError, ValueError):
            model = None
        if model is not None:
            obj = model.objects.filter(pk=event.object_id).first()
    data: dict[str, Any] = {
        "organization": event.organization.slug,
        "event": {"id": event.pk, "name": event.name},
        "object_type": event.object_type or None,
        "object": _summary(obj) if obj is not None else None,
    }
    return {"type": event_type, "timestamp": event.occurred_at.isoformat(), "data": jsonable(data)}


def business_event_dispatch(*, event: BusinessEvent) -> list[WebhookDelivery]:
    """Offer ``event`` to its organization's enabled endpoints that subscribe to it: one
    delivery row each, sent by a task once the transaction that recorded the event commits."""
    event_type = EVENT_MAP.get(event.name)
    if event_type is None:
        return []
    organization = Organization.objects.get(pk=event.organization_id)
    with scope(organization=organization):
        endpoints = [
            e
            for e in WebhookEndpoint.objects.filter(organization=organization, enabled=True)
            if event_type in (e.events or [])
        ]
        if not endpoints:
            return []
        event.organization = organization
        body = json.dumps(
            payload_build(event=event, event_type=event_type), sort_keys=True, separators=(",", ":")
        )
        event_id = f"msg_{uuid.uuid4().hex}"
        deliveries = [
            WebhookDelivery.objects.create(
                organization=organization,
                endpoint=endpoint,
                event_id=event_id,
                event_type=event_type,
                business_event=event,
                payload=body,
            )
            for endpoint in endpoints
        ]
    for delivery in deliveries:
        delivery_enqueue(delivery=delivery)
    return deliveries


def delivery_schedule(
    *, organization_id: int, delivery_id: int, attempt: int = 1, countdown: int | None = None
) -> None:
    """Send the task now (``delivery_enqueue`` waits for the commit)."""
    from .tasks import webhook_deliver

    try:
        webhook_deliver.apply_async(
            kwargs={
                "organization_id": organization_id,
                "delivery_id": delivery_id,
                "attempt": attempt,
            },
            countdown=countdown,
        )
    except OperationalError:  # the broker is down: the row stays as it is; "send again" works
        log.exception("webhook delivery %s could not be queued", delivery_id)


def delivery_enqueue(*, delivery: WebhookDelivery) -> None:
    """Queue the first attempt once the transaction that created the row commits."""
    organization_id, delivery_id = delivery.organization_id, delivery.pk
    transaction.on_commit(
        lambda: delivery_schedule(organization_id=organization_id, delivery_id=delivery_id)
    )


class RedeliveryRefused(Exception):
    pass


def delivery_redeliver(*, delivery: WebhookDelivery, user: User | None) -> WebhookDelivery:
    """Send a delivery again (same event id and body, signed afresh)."""
    updated = (
        WebhookDelivery.objects.filter(pk=delivery.pk)
        .exclude(status=DeliveryStatus.SENDING)
        .update(status=DeliveryStatus.PENDING, error="")
    )
    if not updated:
        raise RedeliveryRefused("This delivery is being sent right now; wait for the result.")
    delivery.refresh_from_db()
    delivery_enqueue(delivery=delivery)
    return delivery


# ---------------------------------------------------------------------------------------------
# One attempt


@dataclass(frozen=True)
class AttemptOutcome:
    sent: bool  # False: nothing was claimed (already delivered, or another worker has it)
    status: str = ""
    attempts: int = 0
    retry: bool = False


def delivery_attempt(*, delivery_id: int, may_retry: bool = True) -> AttemptOutcome:
    """Claim the delivery (a conditional UPDATE: two workers never both send it), POST it
    signed, record the outcome. ``retry`` says a transient failure (connection error, 5xx,
    429) will be tried again; the caller says whether retries are left (``may_retry``)."""
    now = timezone.now()
    claimable = Q(status__in=[DeliveryStatus.PENDING, DeliveryStatus.RETRYING]) | Q(
        status=DeliveryStatus.SENDING, claimed_at__lt=now - STALE_CLAIM
    )
    delivery = WebhookDelivery.objects.filter(pk=delivery_id).first()
    if delivery is None:
        return AttemptOutcome(sent=False)
    claimed = WebhookDelivery.objects.filter(
        claimable, pk=delivery_id, attempts=delivery.attempts
    ).update(status=DeliveryStatus.SENDING, claimed_at=now, attempts=delivery.attempts + 1)
    if not claimed:
        return AttemptOutcome(sent=False)
    delivery.refresh_from_db()
    endpoint = delivery.endpoint
    code: int | None = None
    excerpt = error = ""
    permanent = False  # a refusal no retry can cure (disabled endpoint, refused address)
    if not endpoint.enabled:
        error, permanent = "The endpoint is disabled.", True
    else:
        try:
            url_check(endpoint.url)  # again: the host may resolve elsewhere by now
        except ValidationError as exc:
            error = "; ".join(exc.message_dict.get("url", ["Refused URL."]))[:300]
            permanent = True
    if not error:
        sent_at = timezone.now()
        signature = Webhook(endpoint.secret).sign(
            msg_id=delivery.event_id, timestamp=sent_at, data=delivery.payload
        )
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "Comanage-Webhooks/1",
            "webhook-id": delivery.event_id,
            "webhook-timestamp": str(int(sent_at.timestamp())),
            "webhook-signature": signature,
        }
        try:
            response = requests.post(
                endpoint.url,
                data=delivery.payload.encode(),
                headers=headers,
                timeout=TIMEOUT_SECONDS,
                allow_redirects=False,
            )
            code = response.status_code
            excerpt = response.text[:EXCERPT_CHARS]
        except requests.RequestException as exc:
            error = f"{type(exc).__name__}: {exc}"[:300]
    if not error and code is not None and 200 <= code < 300:
        status, retry = DeliveryStatus.SUCCEEDED, False
    else:
        # Connection errors, timeouts, 5xx and 429 may pass; another 4xx or a redirect won't.
        transient = not permanent and (code is None or code == 429 or code >= 500)
        retry = transient and may_retry
        status = DeliveryStatus.RETRYING if retry else DeliveryStatus.FAILED
    WebhookDelivery.objects.filter(pk=delivery.pk, status=DeliveryStatus.SENDING).update(
        status=status,
        response_code=code,
        response_excerpt=excerpt,
        error=error,
        last_attempt_at=timezone.now(),
        delivered_at=timezone.now() if status == DeliveryStatus.SUCCEEDED else None,
    )
    return AttemptOutcome(sent=True, status=status, attempts=delivery.attempts, retry=retry)
