"""Row counts of every tenant-owned table: "the database is unchanged" made checkable."""

from __future__ import annotations

import functools
from collections.abc import Iterable
from typing import Any

from django.apps import apps
from django.db import connection

from comanage.core.tenancy import TenantOwned


@functools.cache
def tenant_models() -> tuple[type, ...]:
    """Tenant-owned models and every other model carrying an organization (their history).

    Cached: the models are those of the process, and finding them again was a tenth of the
    bad-values walk's time (it is asked before and after each request)."""

    def owned(model: type) -> bool:
        return issubclass(model, TenantOwned) or any(
            f.name == "organization" for f in model._meta.concrete_fields
        )

    return tuple(
        sorted(
            (m for m in apps.get_models() if owned(m) and not m._meta.proxy),
            key=lambda m: m._meta.label,
        )
    )


def row_counts(models: Iterable[type]) -> dict[str, int]:
    """``{"app.Model": rows}`` for ``models``, in one query.

    The bad-values walk and the isolation walk count before and after each of their thousands
    of requests; a query per table made the counting most of their time. The rows of each table
    as stored, with no manager's filter: the same as ``_base_manager.count()``.
    """
    models = list(models)
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


def tenant_row_counts(*, exclude: tuple[str, ...] = ()) -> dict[str, int]:
    """``{"app.Model": rows}`` for every tenant-owned model (``exclude`` by label)."""
    return row_counts([m for m in tenant_models() if m._meta.label not in exclude])


class RowCounts:
    """``tenant_row_counts()`` (plus the models ``also``) for a walk of many
    requests made in this connection's open transaction (a test's, with Django's test client),
    counted again only when a row may have come or gone.

    Counting every tenant table of the demo (COUNT(*) over all their rows) before and after each
    of the bad-values walk's requests was 40% of its time, while almost every request stores
    nothing. PostgreSQL keeps, for the open transaction, how many rows each table has had
    inserted and deleted (``pg_stat_xact_user_tables``: attempted actions, those of rolled-back
    savepoints included, so within a transaction the numbers only grow; for a partitioned
    table, those of its partitions, whichever exist at the time); a TRUNCATE gives the
    table a new ``relfilenode``; and ``transaction_timestamp()`` tells one transaction from the
    next. A table's row count changes only through one of these, so while none of them has
    moved for any counted table since the last count, that count still holds and is returned
    as it is; when one has, the tables are counted again. Same counts, same comparisons, as
    counting every time.

    On another database than PostgreSQL, or with ``track_counts`` off, every call counts.
    A ``RowCounts`` lives for one test: a rollback to a savepoint taken before its last count
    (the end of a test in a module's transaction) would put rows back without a mark; and the
    requests must run in this connection (rows another connection commits leave no mark here).
    """

    def __init__(self, *, also: tuple[type, ...] = ()) -> None:
        self.models = (*tenant_models(), *also)
        self._tables = sorted({m._meta.db_table for m in self.models})
        self._last: tuple[Any, dict[str, int]] | None = None
        self._marked: bool | None = None  # known at the first call (it asks the database)
        self._oids: list[int] = []
        self.counted = 0  #: how many times the tables were actually counted

    def _start(self) -> None:
        """Whether marks can be trusted here, and the counted tables' oids."""
        self._marked = False
        if connection.vendor != "postgresql":
            return
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT current_setting('track_counts') = 'on', %s::regclass[]::oid[]",
                [self._tables],
            )
            self._marked, self._oids = cursor.fetchone()

    def _mark(self) -> Any:
        """What moves whenever a row of a counted table may have been added or removed."""
        with connection.cursor() as cursor:
            # The functions behind pg_stat_xact_user_tables' n_tup_ins and n_tup_del, called
            # for the counted tables only (the view itself groups every table with its indexes:
            # asking it cost half of the counting it saves).
            # A partitioned table (the usage rows, one partition per import) keeps no counts of
            # its own: its partitions do, so they are asked too, as they are now (an import
            # attaches a new one, which changes the mark by itself).
            cursor.execute(
                "SELECT transaction_timestamp(), array_agg(("
                "  t, pg_stat_get_xact_tuples_inserted(t), pg_stat_get_xact_tuples_deleted(t),"
                "  pg_relation_filenode(t)) ORDER BY t)::text "
                "FROM (SELECT DISTINCT coalesce(p.relid, r) AS t FROM unnest(%s::oid[]) r"
                "      LEFT JOIN LATERAL pg_partition_tree(r) p ON true) tables",
                [self._oids],
            )
            return cursor.fetchone()

    def __call__(self) -> dict[str, int]:
        if self._marked is None:
            self._start()
        if not self._marked:
            self.counted += 1
            return row_counts(self.models)
        mark = self._mark()
        if self._last is None or self._last[0] != mark:
            self.counted += 1
            self._last = (mark, row_counts(self.models))
        return dict(self._last[1])
