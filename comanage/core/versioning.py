"""A per-organization data version, so a cached figure can never be stale.

Every write to a tenant-owned row bumps its organization's version (the receivers below for
saves, deletes and many-to-many changes; ``data_version_bump`` called explicitly after bulk
writes that send no signals: ``.update()``, ``bulk_create``, ``COPY`` imports, and
``job_succeed`` as the catch-all every import finishes through). Page caches put the version in
their key (``versioned_key``), so a write makes every older entry unreachable: nothing is ever
deleted, old entries simply age out.

Two details keep a reader from caching old figures under a new version:

* the bump happens at once (the writer's own transaction sees its change on its next read) and
  again when the transaction commits (a reader who took the first bump before the commit and
  cached what it could still see is superseded by the second);
* a missing version (cache cleared, evicted, restarted) is initialised from the clock, never 0,
  so an older entry that survived a version's loss is never reached again.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from contextvars import ContextVar
from typing import Any, TypeVar

from django.core.cache import cache
from django.db import transaction

from .tenancy import TenantOwned

__all__ = [
    "data_version",
    "data_version_bump",
    "data_version_forget",
    "data_version_key",
    "data_version_prefetched",
    "membership_versions",
    "page_cached",
    "versioned_key",
]

T = TypeVar("T")
# Entries are never invalidated, only outdated by a new version: this bounds the garbage.
PAGE_CACHE_SECONDS = 60 * 60


def _key(organization_id: int) -> str:
    return f"org-data-version:{organization_id}"


def _fresh() -> int:
    # Microseconds since the epoch: larger than any version an earlier run could have reached
    # by incrementing (unless it bumped a million times a second).
    return time.time_ns() // 1000


# The data version the tenant check read for this request's organization, in the same round
# trip as the memberships (comanage.core.selectors): (organization id, version), or None.
# Reading it there is reading it before the page reads any data, which is all a page cache
# needs; a bump made by this request forgets it, so a page rendered after its own write reads
# the bumped version.
_prefetched: ContextVar[tuple[int, int] | None] = ContextVar(
    "data_version_prefetched", default=None
)


def data_version_key(organization_id: int) -> str:
    return _key(organization_id)


def data_version_prefetched(organization_id: int, version: int) -> None:
    """Keep ``version`` as the organization's data version for the rest of this request."""
    _prefetched.set((organization_id, version))


def data_version_forget() -> None:
    """End of the request (``TenantMiddleware``), or a bump: read the version afresh."""
    _prefetched.set(None)


def data_version(organization_id: int) -> int:
    """The organization's current data version (initialised on first use), or the one the
    tenant check read for this request."""
    prefetched = _prefetched.get()
    if prefetched is not None and prefetched[0] == organization_id:
        return prefetched[1]
    return _version(_key(organization_id))


def _version(key: str) -> int:
    version = cache.get(key)
    if version is None:
        cache.add(key, _fresh(), timeout=None)
        version = cache.get(key)
        if version is None:  # the cache is unavailable: a version nothing is stored under
            return _fresh()
    return int(version)


def _bump_now(key: str) -> None:
    if key.startswith("org-data-version:"):
        data_version_forget()
    try:
        cache.incr(key)
    except ValueError:  # missing (or the cache is down): start again from the clock
        cache.set(key, _fresh(), timeout=None)


def data_version_bump(organization_id: int) -> None:
    """Mark the organization's data as changed: now, and again when the transaction commits."""
    if organization_id is None:
        return
    _bump(_key(organization_id))


def _bump(key: str) -> None:
    _bump_now(key)
    transaction.on_commit(lambda: _bump_now(key))


# Who belongs where: a version per user, bumped when one of their memberships is saved or
# deleted, and one for every organization's own row (name, address, colours). The tenant check
# caches a user's memberships under both (comanage.core.selectors.memberships_checked).
ORGANIZATIONS_KEY = "organizations-version"


def _membership_key(user_id: int) -> str:
    return f"membership-version:{user_id}"


def membership_version_keys(user_id: int) -> list[str]:
    return [_membership_key(user_id), ORGANIZATIONS_KEY]


def membership_versions(user_id: int) -> tuple[int, int]:
    """(the user's membership version, the organizations' version), in one round trip when
    both are set."""
    return membership_versions_found(user_id, cache.get_many(membership_version_keys(user_id)))


def membership_versions_found(user_id: int, found: dict[str, Any]) -> tuple[int, int]:
    """``membership_versions`` from the answer of a ``get_many`` that asked for
    ``membership_version_keys`` (among others); a missing one is initialised."""
    keys = membership_version_keys(user_id)
    return (
        int(found[keys[0]]) if keys[0] in found else _version(keys[0]),
        int(found[keys[1]]) if keys[1] in found else _version(keys[1]),
    )


def versioned_key(organization_id: int, page: str, *params: Any, version: int | None = None) -> str:
    """A cache key for a figure of ``page`` computed at the organization's current version
    (or at ``version``, read by the caller before it read any data)."""
    parts = ":".join(str(p) for p in params)
    if version is None:
        version = data_version(organization_id)
    return f"page:{organization_id}:{version}:{page}:{parts}"


def page_cached(
    organization_id: int,
    page: str,
    *params: Any,
    compute: Callable[[], T],
    version: int | None = None,
) -> T:
    """``compute()``, cached under the organization's current data version.

    Only user-independent figures belong here (no CSRF token, no menu, no permission-dependent
    rows unless the permission is in ``params``); a piece that depends on a physician must
    carry the physician's id in ``params``.

    A view that also caches rendered HTML under the version (``{% cache %}`` keyed on
    ``data_version``) reads the version once, before it reads any data, and passes it here:
    what is stored under a version is then never older than that version.
    """
    key = versioned_key(organization_id, page, *params, version=version)
    value = cache.get(key)
    if value is None:
        value = compute()
        cache.set(key, value, PAGE_CACHE_SECONDS)
    return value


def _on_write(sender: Any, instance: Any = None, **kwargs: Any) -> None:
    if isinstance(instance, TenantOwned):
        data_version_bump(instance.organization_id)
    label = sender._meta.label if hasattr(sender, "_meta") else ""
    if label == "core.Membership":
        _bump(_membership_key(instance.user_id))
    elif label == "core.Organization":
        _bump(ORGANIZATIONS_KEY)


def _on_m2m(sender: Any, instance: Any = None, action: str = "", **kwargs: Any) -> None:
    if action.startswith("post_") and isinstance(instance, TenantOwned):
        data_version_bump(instance.organization_id)


def connect_receivers() -> None:
    """Connected once, from ``CoreConfig.ready``: for every model, filtered on ``TenantOwned``
    (so a model added later is covered without registering it)."""
    from django.db.models.signals import m2m_changed, post_delete, post_save

    post_save.connect(_on_write, dispatch_uid="org-data-version-save")
    post_delete.connect(_on_write, dispatch_uid="org-data-version-delete")
    m2m_changed.connect(_on_m2m, dispatch_uid="org-data-version-m2m")
