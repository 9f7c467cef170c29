"""The request as the views see it, typed for mypy.

``TenantMiddleware`` sets ``organization`` and ``membership`` (and ``all_memberships``) on every
request whose URL carries an organization; django-htmx's middleware sets ``htmx``. Views behind
``org_view`` / ``OrgPermissionMixin`` take an ``OrgRequest`` instead of a bare ``HttpRequest``
so that ``request.membership.role`` is checked rather than ignored.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, cast

from django.http import HttpRequest

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
