"""The webhooks settings pages: /o/<org>/settings/webhooks/. Administrators only."""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from comanage.core.http import signed_in_user
from comanage.core.views import org_view

from . import services
from .models import EVENT_TYPES, WebhookDelivery, WebhookEndpoint


def _errors(exc: ValidationError) -> list[str]:
    if hasattr(exc, "error_dict"):
        return [f"{field}: {m}" for field, ms in exc.message_dict.items() for m in ms]
    return list(exc.messages)


def _form_values(request: HttpRequest) -> dict:
    return {
        "url": request.POST.get("url", "").strip(),
        "description": request.POST.get("description", "").strip(),
        "events": request.POST.getlist("events"),
        "enabled": request.POST.get("enabled") == "on",
    }


@org_view("org.manage")
def webhook_list(request: HttpRequest, org_slug: str) -> HttpResponse:
    """The endpoints, and a form to register one; its secret is shown once, here."""
    values: dict = {"url": "", "description": "", "events": list(EVENT_TYPES), "enabled": True}
    new_secret = new_endpoint = None
    errors: list[str] = []
    if request.method == "POST":
        values = _form_values(request)
        try:
            new_endpoint, new_secret = services.endpoint_create(
                organization=request.organization,  # type: ignore[attr-defined]
                url=values["url"],
                events=values["events"],
                description=values["description"],
                enabled=values["enabled"],
                user=signed_in_user(request),
            )
            values = {"url": "", "description": "", "events": list(EVENT_TYPES), "enabled": True}
        except ValidationError as exc:
            errors = _errors(exc)
    endpoints = WebhookEndpoint.objects.order_by("url", "pk")
    return render(
        request,
        "webhooks/list.html",
        {
            "endpoints": endpoints,
            "event_types": EVENT_TYPES,
            "values": values,
            "errors": errors,
            "new_secret": new_secret,
            "new_endpoint": new_endpoint,
        },
        status=400 if errors else 200,
    )


@org_view("org.manage")
def webhook_detail(request: HttpRequest, org_slug: str, pk: int) -> HttpResponse:
    """One endpoint: edit it, rotate its secret, delete it; its deliveries, re-sendable."""
    endpoint = get_object_or_404(WebhookEndpoint, pk=pk)
    errors: list[str] = []
    new_secret = None
    if request.method == "POST":
        if "delete" in request.POST:
            services.endpoint_delete(endpoint=endpoint, user=request.user)  # type: ignore[arg-type]
            messages.success(request, "Endpoint deleted.")
            return redirect("webhook_list", org_slug=org_slug)
        if "rotate" in request.POST:
            new_secret = services.endpoint_secret_rotate(endpoint=endpoint, user=request.user)  # type: ignore[arg-type]
        else:
            try:
                services.endpoint_update(
                    endpoint=endpoint,
                    user=request.user,  # type: ignore[arg-type]
                    **_form_values(request),
                )
                messages.success(request, "Endpoint saved.")
                return redirect("webhook_detail", org_slug=org_slug, pk=endpoint.pk)
            except ValidationError as exc:
                errors = _errors(exc)
                endpoint.refresh_from_db()
    deliveries = WebhookDelivery.objects.filter(endpoint=endpoint).order_by("-created_at", "-pk")[
        :100
    ]
    return render(
        request,
        "webhooks/detail.html",
        {
            "endpoint": endpoint,
            "event_types": EVENT_TYPES,
            "deliveries": deliveries,
            "errors": errors,
            "new_secret": new_secret,
        },
        status=400 if errors else 200,
    )


@require_POST
@org_view("org.manage")
def webhook_redeliver(request: HttpRequest, org_slug: str, pk: int) -> HttpResponse:
    delivery = get_object_or_404(WebhookDelivery, pk=pk)
    try:
        services.delivery_redeliver(delivery=delivery, user=request.user)  # type: ignore[arg-type]
        messages.success(request, f"Delivery {delivery.event_id} queued again.")
    except services.RedeliveryRefused as exc:
        messages.error(request, str(exc))
    return redirect("webhook_detail", org_slug=org_slug, pk=delivery.endpoint_id)
