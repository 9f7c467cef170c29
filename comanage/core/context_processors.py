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
        "all_memberships": memberships_of(user=user) if user and user.is_authenticated else [],
    }
