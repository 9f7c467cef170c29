"""Entry point of the tenant scope for the web UI and the API, and security headers."""

from __future__ import annotations

import time
from collections.abc import Callable

from django.contrib.auth import SESSION_KEY
from django.http import Http404, HttpRequest, HttpResponse
from django.urls import Resolver404, resolve
from django.utils import timezone
from django_scopes import scope

from .http import api_not_found, is_api
from .models import Organization
from .selectors import membership_of, membership_state
from .tenancy import organization_zone
from .versioning import data_version_forget

ORG_KWARG = "org_slug"


class TenantMiddleware:
    """For URLs carrying ``<org_slug>``, resolve the organization, enter its scope and
    activate its time zone.

    An unknown slug is a 404. A signed-in user who is not a member gets a 404 too: an outsider
    learns nothing about another organization. API requests authenticate inside DRF, so their
    membership is checked there (``comanage.core.api.OrganizationMember``); the scope is already
    active. URLs without an organization run with no scope at all, so any tenant-owned query they
    attempt raises instead of falling back to every tenant.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        request.organization = None  # type: ignore[attr-defined]
        request.membership = None  # type: ignore[attr-defined]
        try:
            match = resolve(request.path_info)
        except Resolver404:
            return self.get_response(request)
        slug = match.kwargs.get(ORG_KWARG)
        if slug is None:
            return self.get_response(request)
        api = is_api(request)
        organization: Organization | None
        if not api and request.user.is_authenticated:
            # The user's active memberships with their organizations answer the tenant check
            # (cached while unchanged: selectors.memberships_checked); the organization
            # switcher reuses them.
            # The organization's data version comes in the same round trip (kept for this
            # request only: versioning.data_version_prefetched).
            memberships, roles = membership_state(user=request.user, organization_slug=slug)
            request.all_memberships = memberships  # type: ignore[attr-defined]
            # TwoFactorMiddleware's question (does any role need a second factor?), answered
            # from the same entry.
            request.membership_roles = roles  # type: ignore[attr-defined]
            membership = membership_of(memberships, slug)
            if membership is None:  # no such organization, or not a member: the same 404
                raise Http404("No such organization.")
            organization = membership.organization
            request.membership = membership  # type: ignore[attr-defined]
        else:
            organization = Organization.objects.filter(slug=slug).first()
            if organization is None:
                if api:
                    return api_not_found()
                raise Http404("No such organization.")
        request.organization = organization  # type: ignore[attr-defined]
        # Every date of the organization's pages (and API answers) in its own time zone.
        try:
            with (
                scope(organization=organization),
                timezone.override(organization_zone(organization)),
            ):
                response = self.get_response(request)
                # Render lazily-rendered responses while the scope is still active.
                if hasattr(response, "render") and not getattr(response, "is_rendered", True):
                    response.render()
        finally:
            data_version_forget()
        return response


CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; font-src 'self' data:; connect-src 'self'; frame-src 'self'; "
    "object-src 'self'; frame-ancestors 'self'; base-uri 'self'; form-action 'self'"
)


class SecurityHeadersMiddleware:
    """A Content-Security-Policy with no inline script, and related headers."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if not request.path_info.startswith("/api/docs"):
            response.headers.setdefault("Content-Security-Policy", CSP)
        response.headers.setdefault("Referrer-Policy", "same-origin")
        response.headers.setdefault(
            "Permissions-Policy", "camera=(), microphone=(), geolocation=()"
        )
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        return response


class SlidingSessionMiddleware:
    """Sessions end after ``SESSION_COOKIE_AGE`` of inactivity, and activity pushes the expiry
    forward, but the session is written at most once a minute rather than on every request
    (``SESSION_SAVE_EVERY_REQUEST`` costs a database write per page view).

    Only a signed-in session is touched: an API request signed with a token carries no session
    (its user comes from the token), and touching the empty session it gets would store a new
    session row and send a cookie with every script's call."""

    TOUCH_KEY = "_touched"
    INTERVAL_SECONDS = 60

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        session = getattr(request, "session", None)
        user = getattr(request, "user", None)
        if (
            session is not None
            and user is not None
            and user.is_authenticated
            and SESSION_KEY in session
        ):
            now = int(time.time())
            if now - int(session.get(self.TOUCH_KEY, 0)) >= self.INTERVAL_SECONDS:
                session[self.TOUCH_KEY] = now  # marks it modified: saved with a new expiry
        return response
