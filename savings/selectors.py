"""Reads of the savings app: current imports, usage as engine frames, stored calculations."""

from __future__ import annotations

import io
from decimal import Decimal

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
from django.db import connection
from django.db.models import Q, QuerySet

from agreements.models import Agreement, AgreementKind, ProgrammeYear

from . import columnar, engine
from .importing import USAGE_COLUMNS
from .models import (
    CalculationKind,
    DataImport,
    ImportKind,
    ImportPeriod,
    ImportStatus,
    Item,
    PriceItem,
    SavingsCalculation,
    SavingsOpportunity,
    UsageRow,
)


def savings_agreements() -> QuerySet[Agreement]:
    return Agreement.objects.filter(kind=AgreementKind.SHARED_SAVINGS).select_related("practice")


def opportunities_of(*, agreement: Agreement) -> QuerySet[SavingsOpportunity]:
    return SavingsOpportunity.objects.filter(agreement=agreement).select_related(
        "effective_from_year"
    )


def import_current(
    *,
    agreement: Agreement,
    kind: str,
    programme_year: ProgrammeYear | None = None,
    base_year: int | None = None,
) -> DataImport | None:
    lookup = {"agreement": agreement, "kind": kind, "is_current": True}
    if programme_year is not None:
        lookup.update(period=ImportPeriod.PROGRAMME, programme_year=programme_year)
    else:
        lookup.update(period=ImportPeriod.BASE, base_year=base_year)
    return DataImport.objects.filter(**lookup).first()


def imports_of(*, agreement: Agreement) -> QuerySet[DataImport]:
    return DataImport.objects.filter(agreement=agreement).select_related(
        "programme_year", "uploaded_by", "job"
    )


def import_applied_with_checksum(
    *,
    agreement: Agreement,
    sha256: str,
    kind: str,
    programme_year: ProgrammeYear | None = None,
    base_year: int | None = None,
) -> DataImport | None:
    """The same file already applied (or queued) for the same period of the agreement."""
    return DataImport.objects.filter(
        agreement=agreement,
        sha256=sha256,
        kind=kind,
        programme_year=programme_year,
        base_year=base_year,
        status__in=[ImportStatus.APPLIED, ImportStatus.QUEUED],
    ).first()


def usage_frame(*, data_import: DataImport) -> pd.DataFrame:
    """The import's rows as the engine's frame: every column a string, amounts exact.

    PostgreSQL streams the rows out with ``COPY ... TO STDOUT`` (numeric as exact text) and
    pyarrow parses them as strings; SQLite goes through the ORM.
    """
    if connection.vendor == "postgresql":
        table = UsageRow._meta.db_table
        select = ", ".join(
            f"{c}::text" if c in ("federal_program", "reviewed", "opted_out") else c
            for c in USAGE_COLUMNS
        )
        buffer = io.BytesIO()
        with connection.cursor() as cursor:
            # Identifiers only from the model and USAGE_COLUMNS; the id is a bound parameter.
            sql = cursor.mogrify(
                f"COPY (SELECT {select} FROM {table} WHERE data_import_id = %s) "  # noqa: S608
                "TO STDOUT WITH (FORMAT csv)",
                [data_import.pk],
            ).decode()
            cursor.cursor.copy_expert(sql, buffer)
        buffer.seek(0)
        if not buffer.getbuffer().nbytes:
            return pd.DataFrame({c: pd.Series(dtype=str) for c in USAGE_COLUMNS})
        arrow = pacsv.read_csv(
            buffer,
            read_options=pacsv.ReadOptions(column_names=list(USAGE_COLUMNS)),
            convert_options=pacsv.ConvertOptions(
                column_types={c: pa.string() for c in USAGE_COLUMNS},
                strings_can_be_null=False,
                quoted_strings_can_be_null=False,
            ),
        )
        return arrow.to_pandas()
    rows = UsageRow.objects.filter(data_import=data_import).values_list(*USAGE_COLUMNS)

    def text(value: object) -> str:
        if value is None:
            return ""
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, Decimal):
            return str(value)
        if hasattr(value, "isoformat"):
            return value.isoformat()
        return str(value)

    data = [[text(v) for v in row] for row in rows]
    return pd.DataFrame(data, columns=list(USAGE_COLUMNS), dtype=str)


_COLUMNS_SELECT = (
    "case_id, case_type, physician_npi, item_code, "
    "service_date - DATE '0001-01-01' + 1, federal_program, opted_out, "
    "notice_date IS NOT NULL, (severity_weight * 10000)::bigint, "
    "(quantity * 10000)::bigint, (unit_cost * 10000)::bigint"
)
_COLUMNS_NAMES = (
    "case_id",
    "case_type",
    "physician_npi",
    "item_code",
    "day",
    "federal",
    "opted_out",
    "has_notice",
    "severity",
    "quantity",
    "unit_cost",
)
_STORED_DIGITS = 4  # numeric(16,4) / numeric(10,4): exact integers at 10**4


def _encoded(column: pa.ChunkedArray | pa.Array) -> tuple[np.ndarray, list[str]]:
    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks()
    if not pa.types.is_dictionary(column.type):
        column = pc.dictionary_encode(column)
    return (
        column.indices.to_numpy(zero_copy_only=False).astype(np.int64, copy=False),
        column.dictionary.to_pylist(),
    )


def _columns_from_arrow(table: pa.Table) -> engine.UsageColumns:
    case_code, case_values = _encoded(table.column("case_id"))
    type_code, type_values = _encoded(table.column("case_type"))
    npi_code, npi_values = _encoded(table.column("physician_npi"))
    item_code, item_values = _encoded(table.column("item_code"))

    def ints(name: str) -> np.ndarray:
        return table.column(name).to_numpy().astype(np.int64, copy=False)

    def flags(name: str) -> np.ndarray:
        return table.column(name).to_numpy(zero_copy_only=False).astype(bool, copy=False)

    # Quantities are stored at 10**4 but are mostly whole: fewer digits keep the engine's
    # exact int64 sums under their overflow bound (above it they fall back to Python ints).
    quantity, quantity_digits = ints("quantity"), _STORED_DIGITS
    while quantity_digits and quantity.size and not (quantity % 10).any():
        quantity, quantity_digits = quantity // 10, quantity_digits - 1

    return engine.UsageColumns(
        case_code=case_code,
        case_values=case_values,
        case_type_code=type_code,
        case_type_values=type_values,
        npi_code=npi_code,
        npi_values=npi_values,
        item_code=item_code,
        item_values=item_values,
        service_day=ints("day"),
        federal=flags("federal"),
        opted_out=flags("opted_out"),
        has_notice=flags("has_notice"),
        severity=ints("severity"),
        severity_digits=_STORED_DIGITS,
        quantity=quantity,
        quantity_digits=quantity_digits,
        unit_cost=ints("unit_cost"),
    )


def _dictionary_encoded(table: pa.Table) -> pa.Table:
    """The text columns as dictionaries with 64-bit indices: what the engine takes, so a
    memory-mapped file hands them over without a copy."""
    columns = []
    for name in table.column_names:
        column = table.column(name).combine_chunks()
        if name in _COLUMNS_NAMES[:4]:
            encoded = pc.dictionary_encode(column)
            column = pa.DictionaryArray.from_arrays(
                encoded.indices.cast(pa.int64()), encoded.dictionary
            )
        columns.append(column)
    return pa.table(columns, names=table.column_names)


def usage_columns(*, data_import: DataImport) -> engine.UsageColumns:
    """The import's rows as typed, exact columns for the engine (its fast path).

    An applied import's columns are kept in a memory-mapped Arrow file (``savings.columnar``),
    written on the first read and verified on every read; otherwise (and to build that file)
    they come from the database (:func:`_usage_table_from_database`).
    """
    if columnar.cacheable(data_import):
        table = columnar.table_read(data_import)
        if table is None:
            table = _dictionary_encoded(_usage_table_from_database(data_import))
            columnar.table_write(data_import, table)
        return _columns_from_arrow(table)
    return _columns_from_arrow(_usage_table_from_database(data_import))


def _usage_table_from_database(data_import: DataImport) -> pa.Table:
    """The import's rows as a typed Arrow table (the columns of ``_COLUMNS_NAMES``).

    PostgreSQL does the conversion (amounts to integer ten-thousandths, dates to ordinals) and
    streams the rows out with ``COPY ... TO STDOUT``; pyarrow reads them with fixed types. No
    amount passes through float; nothing is parsed per value in Python. SQLite (tests, the
    demo) goes through the ORM to the same columns.
    """
    if connection.vendor == "postgresql":
        buffer = io.BytesIO()
        with connection.cursor() as cursor:
            # Identifiers only from the model and _COLUMNS_SELECT; the id is a bound parameter.
            sql = cursor.mogrify(
                f"COPY (SELECT {_COLUMNS_SELECT} FROM {UsageRow._meta.db_table} "  # noqa: S608
                "WHERE data_import_id = %s) TO STDOUT WITH (FORMAT csv)",
                [data_import.pk],
            ).decode()
            cursor.cursor.copy_expert(sql, buffer)
        size = buffer.getbuffer().nbytes
        buffer.seek(0)
        types = {n: pa.string() for n in _COLUMNS_NAMES[:4]}
        types.update({n: pa.int64() for n in ("day", "severity", "quantity", "unit_cost")})
        types.update({n: pa.bool_() for n in ("federal", "opted_out", "has_notice")})
        if not size:
            return pa.table({n: pa.array([], types[n]) for n in _COLUMNS_NAMES})
        return pacsv.read_csv(
            buffer,
            read_options=pacsv.ReadOptions(column_names=list(_COLUMNS_NAMES), block_size=16 << 20),
            convert_options=pacsv.ConvertOptions(
                column_types=types,
                true_values=["t"],
                false_values=["f"],
                strings_can_be_null=False,
                quoted_strings_can_be_null=False,
            ),
        )
    rows = list(
        UsageRow.objects.filter(data_import=data_import).values_list(
            "case_id",
            "case_type",
            "physician_npi",
            "item_code",
            "service_date",
            "federal_program",
            "opted_out",
            "notice_date",
            "severity_weight",
            "quantity",
            "unit_cost",
        )
    )
    scale = Decimal(10) ** _STORED_DIGITS
    columns = list(zip(*rows, strict=True)) if rows else [()] * 11
    return pa.table(
        {
            "case_id": pa.array(columns[0], pa.string()),
            "case_type": pa.array(columns[1], pa.string()),
            "physician_npi": pa.array(columns[2], pa.string()),
            "item_code": pa.array(columns[3], pa.string()),
            "day": pa.array([d.toordinal() for d in columns[4]], pa.int64()),
            "federal": pa.array(columns[5], pa.bool_()),
            "opted_out": pa.array(columns[6], pa.bool_()),
            "has_notice": pa.array([d is not None for d in columns[7]], pa.bool_()),
            "severity": pa.array([int(v * scale) for v in columns[8]], pa.int64()),
            "quantity": pa.array([int(v * scale) for v in columns[9]], pa.int64()),
            "unit_cost": pa.array([int(v * scale) for v in columns[10]], pa.int64()),
        }
    )


def prices_of(*, data_import: DataImport) -> dict[str, Decimal]:
    return dict(
        PriceItem.objects.filter(data_import=data_import).values_list("item_code", "unit_cost")
    )


def calculation_latest(
    *, programme_year: ProgrammeYear, kind: str = CalculationKind.YEAR
) -> SavingsCalculation | None:
    return SavingsCalculation.objects.filter(programme_year=programme_year, kind=kind).first()


def calculations_of(*, agreement: Agreement) -> QuerySet[SavingsCalculation]:
    return SavingsCalculation.objects.filter(agreement=agreement).select_related(
        "programme_year", "created_by"
    )


def usage_items_of(*, data_import: DataImport) -> set[str]:
    return set(
        UsageRow.objects.filter(data_import=data_import)
        .values_list("item_code", flat=True)
        .distinct()
    )


def import_kind_label(kind: str) -> str:
    return ImportKind(kind).label


def item_opportunities() -> list[SavingsOpportunity]:
    """The opportunities items can be assigned to: those of shared-savings agreements."""
    return list(
        SavingsOpportunity.objects.filter(agreement__kind=AgreementKind.SHARED_SAVINGS)
        .select_related("agreement")
        .order_by("agreement__name", "key")
    )


def items_search(
    *,
    text: str = "",
    manufacturer: str = "",
    category: str = "",
    assigned_to: SavingsOpportunity | None = None,
    unassigned_in: list[SavingsOpportunity] | None = None,
) -> QuerySet[Item]:
    """The item master filtered by text (code or description), manufacturer and category, and
    by assignment: to one opportunity, or to none of ``unassigned_in``."""
    found = Item.objects.all()
    for word in text.split():
        found = found.filter(Q(code__icontains=word) | Q(description__icontains=word))
    if manufacturer:
        found = found.filter(manufacturer=manufacturer)
    if category:
        found = found.filter(category=category)
    if assigned_to is not None:
        found = found.filter(code__in=list(assigned_to.item_codes))
    if unassigned_in is not None:
        taken = {code for o in unassigned_in for code in o.item_codes}
        found = found.exclude(code__in=list(taken))
    return found.order_by("code")


def item_facets() -> dict[str, list[str]]:
    """The manufacturers and categories of the item master, for the filters."""
    return {
        "manufacturers": list(
            Item.objects.exclude(manufacturer="")
            .order_by("manufacturer")
            .values_list("manufacturer", flat=True)
            .distinct()
        ),
        "categories": list(
            Item.objects.exclude(category="")
            .order_by("category")
            .values_list("category", flat=True)
            .distinct()
        ),
    }
