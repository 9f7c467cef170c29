"""Reads of the savings app: current imports, usage as engine frames, stored calculations."""

from __future__ import annotations

import io
from decimal import Decimal

import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
from django.db import connection
from django.db.models import QuerySet

from agreements.models import Agreement, AgreementKind, ProgrammeYear

from .importing import USAGE_COLUMNS
from .models import (
    CalculationKind,
    DataImport,
    ImportKind,
    ImportPeriod,
    ImportStatus,
    PriceItem,
    SavingsCalculation,
    SavingsOpportunity,
    UsageRow,
)


def savings_agreements() -> QuerySet[Agreement]:
    return Agreement.objects.filter(kind=AgreementKind.SHARED_SAVINGS).select_related("practice")


def opportunities_of(*, agreement: Agreement) -> QuerySet[SavingsOpportunity]:
    return SavingsOpportunity.objects.filter(agreement=agreement).select_related(
        "effective_from_year")


def import_current(*, agreement: Agreement, kind: str, programme_year: ProgrammeYear | None = None,
                   base_year: int | None = None) -> DataImport | None:
    lookup = {"agreement": agreement, "kind": kind, "is_current": True}
    if programme_year is not None:
        lookup.update(period=ImportPeriod.PROGRAMME, programme_year=programme_year)
    else:
        lookup.update(period=ImportPeriod.BASE, base_year=base_year)
    return DataImport.objects.filter(**lookup).first()


def imports_of(*, agreement: Agreement) -> QuerySet[DataImport]:
    return DataImport.objects.filter(agreement=agreement).select_related(
        "programme_year", "uploaded_by", "job")


def import_applied_with_checksum(*, agreement: Agreement, sha256: str, kind: str,
                                 programme_year: ProgrammeYear | None = None,
                                 base_year: int | None = None) -> DataImport | None:
    """The same file already applied (or queued) for the same period of the agreement."""
    return DataImport.objects.filter(agreement=agreement, sha256=sha256, kind=kind,
                                     programme_year=programme_year, base_year=base_year,
                                     status__in=[ImportStatus.APPLIED, ImportStatus.QUEUED]
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
            for c in USAGE_COLUMNS)
        buffer = io.BytesIO()
        with connection.cursor() as cursor:
            sql = cursor.mogrify(
                f"COPY (SELECT {select} FROM {table} WHERE data_import_id = %s) "
                "TO STDOUT WITH (FORMAT csv)", [data_import.pk]).decode()
            cursor.cursor.copy_expert(sql, buffer)
        buffer.seek(0)
        if not buffer.getbuffer().nbytes:
            return pd.DataFrame({c: pd.Series(dtype=str) for c in USAGE_COLUMNS})
        arrow = pacsv.read_csv(
            buffer,
            read_options=pacsv.ReadOptions(column_names=list(USAGE_COLUMNS)),
            convert_options=pacsv.ConvertOptions(
                column_types={c: pa.string() for c in USAGE_COLUMNS},
                strings_can_be_null=False, quoted_strings_can_be_null=False))
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
            return value.isoformat()  # type: ignore[no-any-return]
        return str(value)

    data = [[text(v) for v in row] for row in rows]
    return pd.DataFrame(data, columns=list(USAGE_COLUMNS), dtype=str)


def prices_of(*, data_import: DataImport) -> dict[str, Decimal]:
    return dict(PriceItem.objects.filter(data_import=data_import)
                .values_list("item_code", "unit_cost"))


def calculation_latest(*, programme_year: ProgrammeYear, kind: str = CalculationKind.YEAR
                       ) -> SavingsCalculation | None:
    return SavingsCalculation.objects.filter(programme_year=programme_year, kind=kind).first()


def calculations_of(*, agreement: Agreement) -> QuerySet[SavingsCalculation]:
    return SavingsCalculation.objects.filter(agreement=agreement).select_related(
        "programme_year", "created_by")


def usage_items_of(*, data_import: DataImport) -> set[str]:
    return set(UsageRow.objects.filter(data_import=data_import)
               .values_list("item_code", flat=True).distinct())


def import_kind_label(kind: str) -> str:
    return ImportKind(kind).label
