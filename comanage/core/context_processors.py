from __future__ import annotations

from typing import Any

from django.http import HttpRequest

from .permissions import membership_can
from .selectors import memberships_of


class _Can:
    """``{% if can.report_approve %}``: permission checks for the menu, via the one checker."""

    def __init__(self, membership: Any):
        self._membership = membership

    def __getattr__(self, name: str) -> bool:
        if name.startswith("_"):
            raise AttributeError(name)
        return membership_can(self._membership, name.replace("_", ".", 1))


def tenant(request: HttpRequest) -> dict[str, Any]:
    membership = getattr(request, "membership", None)
    user = getattr(request, "user", None)
    organization = getattr(request, "organization", None)
    return {
        "organization": organization,
        "membership": membership,
        "can": _Can(membership),
        "all_memberships": _all_memberships(request, user),
        # The page's name for the menu (none on a page no URL matched) and what the cached menu
        # varies on: the organization's address, the role and the page alone (base.html).
        "url_name": getattr(getattr(request, "resolver_match", None), "url_name", None) or "",
        "menu_key": ":".join(
            str(v)
            for v in (
                getattr(organization, "pk", ""),
                getattr(organization, "slug", ""),
                getattr(membership, "role", ""),
                getattr(membership, "is_active", ""),
                getattr(membership, "physician_id", ""),
            )
        ),
    }


def _all_memberships(request: HttpRequest, user: Any) -> list[Any]:
    if not user or not user.is_authenticated:
        return []
    loaded = getattr(request, "all_memberships", None)  # TenantMiddleware read them already
    return loaded if loaded is not None else memberships_of(user=user)
