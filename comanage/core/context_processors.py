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
    return {
        "organization": getattr(request, "organization", None),
        "membership": membership,
        "can": _Can(membership),
        "all_memberships": _all_memberships(request, user),
    }


def _all_memberships(request: HttpRequest, user: Any) -> list[Any]:
    if not user or not user.is_authenticated:
        return []
    loaded = getattr(request, "all_memberships", None)  # TenantMiddleware read them already
    return loaded if loaded is not None else memberships_of(user=user)
