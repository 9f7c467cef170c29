"""Row counts of every tenant-owned table: "the database is unchanged" made checkable."""

from __future__ import annotations

from django.apps import apps
from django_scopes import scopes_disabled

from comanage.core.tenancy import TenantOwned


def tenant_models() -> list[type]:
    """Tenant-owned models and every other model carrying an organization (their history)."""

    def owned(model: type) -> bool:
        return issubclass(model, TenantOwned) or any(
            f.name == "organization" for f in model._meta.concrete_fields
        )

    return sorted(
        (m for m in apps.get_models() if owned(m) and not m._meta.proxy),
        key=lambda m: m._meta.label,
    )


def tenant_row_counts(*, exclude: tuple[str, ...] = ()) -> dict[str, int]:
    """``{"app.Model": rows}`` for every tenant-owned model (``exclude`` by label)."""
    with scopes_disabled():
        return {
            m._meta.label: m._base_manager.count()
            for m in tenant_models()
            if m._meta.label not in exclude
        }
