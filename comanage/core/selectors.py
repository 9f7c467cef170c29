"""Reads that cross the tenant boundary on purpose: which organizations a user belongs to."""

from __future__ import annotations

from django_scopes import scopes_disabled

from .models import Membership, Organization, User


def membership_for(*, user: User, organization: Organization) -> Membership | None:
    """The user's active membership of ``organization``, or None."""
    if not user or not user.is_authenticated:
        return None
    with scopes_disabled():
        return (
            Membership.objects.select_related("physician")
            .filter(user=user, organization=organization, is_active=True)
            .first()
        )


def memberships_of(*, user: User) -> list[Membership]:
    """All active memberships of a user, with their organizations: the organization switcher,
    and the tenant check of every organization page (so this query runs on each of them:
    sorted here rather than in SQL, which is cheaper to build)."""
    if not user or not user.is_authenticated:
        return []
    with scopes_disabled():
        memberships = list(Membership.objects.select_related("organization")
                           .filter(user=user, is_active=True))
    return sorted(memberships, key=lambda m: (m.organization.name.casefold(), m.organization_id))
