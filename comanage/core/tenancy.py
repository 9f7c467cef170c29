"""Tenancy that fails closed.

Every tenant-owned model derives from ``TenantModel``: it carries its ``organization`` and its
default manager is a django-scopes ``ScopedManager``, so a query made without an active scope
raises ``ScopeError`` instead of returning every hospital's rows. The scope is entered once per
entry point: ``TenantMiddleware`` for the web and API, ``tenant_task`` for Celery,
``organization_scope`` for management commands and the shell. Escapes are explicit
(``scopes_disabled()``) and rare.
"""

from __future__ import annotations

import zoneinfo
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, TypeVar

from django.db import models
from django_scopes import ScopedManager, scope, scopes_disabled
from simple_history.models import HistoricalRecords

if TYPE_CHECKING:
    from .models import Organization, User

__all__ = [
    "TenantManager",
    "TenantModel",
    "TenantOwned",
    "organization_scope",
    "scope",
    "scopes_disabled",
]


_M = TypeVar("_M", bound=models.Model)

if TYPE_CHECKING:  # to mypy (and django-stubs), a plain Manager of the model it is on

    class TenantManager(models.Manager[_M]):
        """``Agreement.objects`` is a ``TenantManager[Agreement]``: its rows are typed."""

else:  # django-scopes builds its manager class inside a function: give it a name mypy can find

    class TenantManager(type(ScopedManager(organization="organization"))):
        """The default manager of tenant-owned rows: no query without an active scope."""


class TenantOwned(models.Model):
    """Abstract base of tenant-owned rows that are not audit material (job progress, events)."""

    organization = models.ForeignKey(
        "core.Organization", on_delete=models.PROTECT, related_name="+", editable=False
    )

    objects = TenantManager()

    class Meta:
        abstract = True


class TenantModel(TenantOwned):
    """Abstract base of every tenant-owned domain model: scoped manager and audit history."""

    history = HistoricalRecords(inherit=True)
    # Read by django-simple-history when the row is saved or deleted: who acted (when no
    # request says it) and why.
    _history_user: User | None
    _change_reason: str

    class Meta:
        abstract = True


@contextmanager
def organization_scope(organization: Organization | int | str) -> Iterator[Organization]:
    """Enter the tenant scope of one organization (by instance, id or slug)."""
    from .models import Organization

    if not isinstance(organization, Organization):
        lookup = {"pk": organization} if str(organization).isdigit() else {"slug": organization}
        organization = Organization.objects.get(**lookup)
    with scope(organization=organization):
        yield organization


def organization_zone(organization: Any) -> zoneinfo.ZoneInfo | None:
    """The organization's time zone (``Organization.time_zone``), or None when it has none that
    the system knows (the installation's ``TIME_ZONE`` applies then)."""
    name = getattr(organization, "time_zone", "") or ""
    try:
        return zoneinfo.ZoneInfo(name) if name else None
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return None
