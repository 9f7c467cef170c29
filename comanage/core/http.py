"""The request as the views see it, typed for mypy.

``TenantMiddleware`` sets ``organization`` and ``membership`` (and ``all_memberships``) on every
request whose URL carries an organization; django-htmx's middleware sets ``htmx``. Views behind
``org_view`` / ``OrgPermissionMixin`` take an ``OrgRequest`` instead of a bare ``HttpRequest``
so that ``request.membership.role`` is checked rather than ignored.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, cast

from django.http import HttpRequest, JsonResponse

if TYPE_CHECKING:
    from django_htmx.middleware import HtmxDetails
    from rest_framework.request import Request

    from .models import Membership, Organization, User


class OrgRequest(HttpRequest):
    """An ``HttpRequest`` inside an organization (never instantiated: an annotation only)."""

    organization: Organization
    membership: Membership
    all_memberships: list[Membership]
    htmx: HtmxDetails


def signed_in_user(request: HttpRequest | Request) -> User:
    """``request.user`` of a view that only a signed-in user reaches (``login_required``,
    ``org_view``, an authenticated API view): typed as the ``User`` it then always is."""
    return cast("User", request.user)


def is_api(request: HttpRequest) -> bool:
    """A request to the API (``/api/…``): answered in JSON, never with a page for people."""
    return request.path_info.startswith("/api/")


def api_error(status: int, code: str, message: str) -> JsonResponse:
    """An error answered outside DRF's handler (a middleware, Django's own 400/403/404/500) in
    the API's one shape, ``{"errors": [{"field", "code", "message"}]}``
    (``comanage.core.api.exception_handler``): a script never gets another."""
    return JsonResponse(
        {"errors": [{"field": None, "code": code, "message": message}]}, status=status
    )


def api_not_found() -> JsonResponse:
    """The API's 404 in its one error shape (``comanage.core.api.exception_handler``).

    The message is DRF's own ``NotFound`` text, the one an outsider gets for an organization
    that exists: an unknown slug and someone else's organization must read the same.
    """
    from rest_framework.exceptions import NotFound

    return api_error(404, NotFound.default_code, str(NotFound.default_detail))
