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
            .filter(
                user=user, organization=organization, is_active=True, organization__is_active=True
            )
            .first()
        )


def memberships_of(*, user: User) -> list[Membership]:
    """All active memberships of a user, with their organizations: the organization switcher,
    and the tenant check of every organization page (so this query runs on each of them:
    sorted here rather than in SQL, which is cheaper to build)."""
    if not user or not user.is_authenticated:
        return []
    with scopes_disabled():
        memberships = list(
            Membership.objects.select_related("organization").filter(
                user=user, is_active=True, organization__is_active=True
            )
        )
    return sorted(memberships, key=lambda m: (m.organization.name.casefold(), m.organization_id))


MEMBERSHIPS_CACHE_SECONDS = 60


def memberships_checked(*, user: User) -> list[Membership]:
    """``memberships_of``, for the tenant check of every organization page: from the cache
    while the user's memberships and the organizations are unchanged.

    The entry is stored with the user's membership version and the organizations' version,
    read before the rows; saving or deleting any of the user's memberships, or any
    organization, bumps one of them (at once and again on commit, ``comanage.core.versioning``),
    so a removed or changed membership is obeyed on the next request. The minute's expiry
    bounds what a bump lost while the cache was unreachable could leave behind; while it is
    unreachable every request reads the database (an unreadable version never matches).
    The organizations' per-organization hashing key is not stored in the cache.
    """
    from django.core.cache import cache

    from .versioning import membership_versions

    versions = membership_versions(user.pk)
    key = f"memberships:{user.pk}"
    entry = cache.get(key)
    if entry is not None and entry[0] == versions:
        return entry[1]
    with scopes_disabled():
        memberships = list(
            Membership.objects.select_related("organization")
            .defer("organization__case_id_key")
            .filter(user=user, is_active=True, organization__is_active=True)
        )
    memberships.sort(key=lambda m: (m.organization.name.casefold(), m.organization_id))
    cache.set(key, (versions, memberships), MEMBERSHIPS_CACHE_SECONDS)
    return memberships


def user_may_sign_in(user: User) -> bool:
    """False for someone whose every membership is gone with a deactivated organization (or
    was deactivated): they cannot sign in or use a token. Installation staff and people
    without any membership yet (someone between invitation and acceptance) are not refused
    here; the tenant check refuses them every organization page."""
    if user.is_superuser or getattr(user, "is_installation_admin", False):
        return True
    from django.db.models import Count, Q

    with scopes_disabled():
        counts = Membership.objects.filter(user=user).aggregate(
            total=Count("pk"),
            usable=Count("pk", filter=Q(is_active=True, organization__is_active=True)),
        )
    return counts["total"] == 0 or counts["usable"] > 0
