"""Row counts of every tenant-owned table: "the database is unchanged" made checkable."""

from __future__ import annotations

from django.apps import apps
from django.db import connection

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
    """``{"app.Model": rows}`` for every tenant-owned model (``exclude`` by label).

    One query for all the tables (the bad-values walk counts before and after each of its
    thousands of requests; a query per table made the counting most of its time). The rows of
    each table as stored, with no manager's filter: the same as ``_base_manager.count()``.
    """
    models = [m for m in tenant_models() if m._meta.label not in exclude]
    quote = connection.ops.quote_name
    # Table names from the models, not from input.
    columns = ", ".join(
        f"(SELECT COUNT(*) FROM {quote(m._meta.db_table)})"  # noqa: S608
        for m in models
    )
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {columns}")
        row = cursor.fetchone()
    return {m._meta.label: int(n) for m, n in zip(models, row, strict=True)}
