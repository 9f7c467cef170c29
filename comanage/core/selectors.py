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


# This process's guess of each organization's id from its slug, learned from the tenant check
# and verified on every use: it only lets the organization's data version come in the same
# round trip as the memberships (a wrong or missing guess costs one more round trip, never a
# wrong answer).
_ORG_ID_BY_SLUG: dict[str, int] = {}


def memberships_checked(*, user: User, organization_slug: str | None = None) -> list[Membership]:
    """``memberships_of``, for the tenant check of every organization page: from the cache
    while the user's memberships and the organizations are unchanged.

    The entry is stored with the user's membership version and the organizations' version,
    read before the rows (or in the same atomic read: one ``MGET``); saving or deleting any of
    the user's memberships, or any organization, bumps one of them (at once and again on
    commit, ``comanage.core.versioning``), so a removed or changed membership is obeyed on the
    next request. The minute's expiry bounds what a bump lost while the cache was unreachable
    could leave behind; while it is unreachable every request reads the database (an
    unreadable version never matches). The organizations' per-organization hashing key is not
    stored in the cache.

    With ``organization_slug`` (the tenant check of that organization's page), the
    organization's data version is read in the same round trip and kept for this request
    (``versioning.data_version_prefetched``): read before the page reads any data, as every
    cached page requires.
    """
    return membership_state(user=user, organization_slug=organization_slug)[0]


def membership_of(memberships: list[Membership], organization_slug: str) -> Membership | None:
    """The membership of ``organization_slug`` among ``memberships_checked``'s: the tenant
    check's answer (None: not a member, or no such active organization, which read the same)."""
    return next((m for m in memberships if m.organization.slug == organization_slug), None)


def membership_roles(*, user: User) -> frozenset[str]:
    """The roles of the user's active memberships (in any organization, active or not):
    from the same cached entry as ``memberships_checked``."""
    return membership_state(user=user)[1]


def membership_state(
    *, user: User, organization_slug: str | None = None
) -> tuple[list[Membership], frozenset[str]]:
    """(``memberships_checked``, ``membership_roles``) in one round trip."""
    from django.core.cache import cache

    from . import versioning

    key = f"memberships:{user.pk}"
    version_keys = versioning.membership_version_keys(user.pk)
    guess = _ORG_ID_BY_SLUG.get(organization_slug) if organization_slug else None
    data_key = versioning.data_version_key(guess) if guess is not None else None
    keys = [*version_keys, key] + ([data_key] if data_key else [])
    found = cache.get_many(keys)
    versions = versioning.membership_versions_found(user.pk, found)
    entry = found.get(key)
    if isinstance(entry, tuple) and len(entry) == 3 and entry[0] == versions:
        memberships, roles = entry[1], entry[2]
    else:
        with scopes_disabled():
            active = list(
                Membership.objects.select_related("organization")
                .defer("organization__case_id_key")
                .filter(user=user, is_active=True)
            )
        memberships = [m for m in active if m.organization.is_active]
        roles = frozenset(m.role for m in active)
        memberships.sort(key=lambda m: (m.organization.name.casefold(), m.organization_id))
        cache.set(key, (versions, memberships, roles), MEMBERSHIPS_CACHE_SECONDS)
    if organization_slug:
        for m in memberships:
            if m.organization.slug == organization_slug:
                _ORG_ID_BY_SLUG[organization_slug] = m.organization_id
                if data_key and guess == m.organization_id and found.get(data_key) is not None:
                    versioning.data_version_prefetched(m.organization_id, int(found[data_key]))
                break
    return memberships, roles


def user_may_sign_in(user: User) -> bool:
    """False for someone whose every membership is gone with a deactivated organization (or
    was deactivated): they cannot sign in or use a token. Installation staff and people
    without any membership yet (someone between invitation and acceptance) are not refused
    here; the tenant check refuses them every organization page. Every API request asks, so
    a usable membership is first looked for in the tenant check's cached entry (kept exact by
    the versions every membership and organization change bumps); only someone without one
    costs a query."""
    if user.is_superuser or getattr(user, "is_installation_admin", False):
        return True
    if memberships_checked(user=user):
        return True
    from django.db.models import Count, Q

    with scopes_disabled():
        counts = Membership.objects.filter(user=user).aggregate(
            total=Count("pk"),
            usable=Count("pk", filter=Q(is_active=True, organization__is_active=True)),
        )
    return counts["total"] == 0 or counts["usable"] > 0
