"""Installation staff's pages: every organization, create one (inviting its first
administrator), deactivate and reactivate. Not organization pages: staff need no membership."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_http_methods

from comanage.core.http import signed_in_user
from comanage.core.models import Organization
from comanage.core.people.forms import OrganizationCreateForm, apply_errors
from comanage.core.views import public_view

from . import services


def installation_view(view: Callable) -> Callable:
    """Signed in, and installation staff (superuser or ``is_installation_admin``): else 403."""

    @public_view
    @login_required
    @functools.wraps(view)
    def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if not services.is_installation_staff(request.user):  # type: ignore[arg-type]
            raise PermissionDenied("Only the installation's staff manage organizations.")
        return view(request, *args, **kwargs)

    return wrapped


@installation_view
@require_http_methods(["GET", "POST"])
def organizations(request: HttpRequest) -> HttpResponse:
    form = OrganizationCreateForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            organization, invitation, _raw = services.organization_create(
                actor=signed_in_user(request),
                base_url=request.build_absolute_uri("/").rstrip("/"),
                **form.cleaned_data,
            )
        except ValidationError as exc:
            apply_errors(form, exc)
        else:
            messages.success(
                request, f"{organization.name} created; invitation sent to {invitation.email}."
            )
            return redirect("installation_organization", slug=organization.slug)
    return render(
        request,
        "core/installation/organizations.html",
        {"rows": services.organization_summaries(), "form": form},
        status=400 if form.errors else 200,
    )


@installation_view
@require_http_methods(["GET", "POST"])
def organization_detail(request: HttpRequest, slug: str) -> HttpResponse:
    organization = get_object_or_404(Organization, slug=slug)
    if request.method == "POST":
        action = request.POST.get("action")
        if action == "deactivate":
            services.organization_deactivate(organization=organization, actor=request.user)  # type: ignore[arg-type]
            messages.success(
                request,
                f"{organization.name} is deactivated: nobody of it can "
                "sign in or use a token; its data stays.",
            )
        elif action == "reactivate":
            services.organization_reactivate(organization=organization, actor=request.user)  # type: ignore[arg-type]
            messages.success(request, f"{organization.name} is active again.")
        else:
            messages.error(request, "Choose to deactivate or reactivate.")
        return redirect("installation_organization", slug=organization.slug)
    row = next(
        r for r in services.organization_summaries() if r["organization"].pk == organization.pk
    )
    return render(request, "core/installation/organization.html", {"row": row, "org": organization})
