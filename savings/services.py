"""Writes of the savings app (spec section 4): opportunities, data imports, calculations,
safeguard flags, termination for cause from a flag.

``savings_for_year`` gathers a programme year's inputs from the records and calls the pure
engine (:mod:`savings.engine`); everything else stores or moves records.
"""

from __future__ import annotations

import csv
import dataclasses
import datetime as dt
import hashlib
import json
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from django.core.exceptions import ValidationError
from django.core.files import File
from django.core.files.uploadedfile import UploadedFile
from django.db import OperationalError, transaction
from django.db.models import Max
from django.utils import timezone
from simple_history.utils import bulk_create_with_history, bulk_update_with_history

from agreements.models import (
    Agreement,
    AgreementTerms,
    ComplianceFlag,
    FlagSeverity,
    Participation,
    Physician,
    ProgrammeYear,
)
from agreements.selectors import terms_for_year
from agreements.services import flag_raise
from comanage.core import master_imports, uploads
from comanage.core.audit import event_record
from comanage.core.import_mappings import import_mapping_resolve, import_mappings_saved
from comanage.core.jobs import DuplicateJob, job_create, job_enqueue, job_progress
from comanage.core.models import Job, User
from comanage.core.money import ZERO, format_money, round_rational, to_decimal
from comanage.core.security import case_ids_for_storage
from comanage.core.serialise import jsonable
from comanage.core.tabular.mapping import ColumnMapping, FieldSet, MappedBatches
from comanage.core.tabular.mapping import check as tabular_check
from comanage.core.tabular.problems import TableRefused
from comanage.core.tabular.step import mapping_step

from . import case_rows, columnar, engine, importing, items, selectors
from .models import (
    CalculationKind,
    DataImport,
    ImportKind,
    ImportPeriod,
    ImportStatus,
    Item,
    ItemImport,
    OpportunityStatus,
    PriceItem,
    SavingsCalculation,
    SavingsOpportunity,
)
from .overrides import agreed_item_codes, savings_overrides_parse
from .sources import sources as installed_sources

__all__ = ["DuplicateJob", "DuplicateUpload", "ImportRefused", "SavingsComputation"]

IMPORT_JOB_KIND = "savings.import"
CALCULATION_JOB_KIND = "savings.calculation"


class DuplicateUpload(ValidationError):
    """The same file (by SHA-256) is already applied for this agreement."""

    def __init__(self, existing: DataImport):
        super().__init__(
            f"This file was already imported (#{existing.pk}, {existing.period_label}, "
            f"{existing.uploaded_at:%Y-%m-%d %H:%M}); it is not applied twice.",
            code="duplicate_file",
        )
        self.existing = existing


class ImportRefused(Exception):
    """The file has problems; nothing was stored."""

    def __init__(self, problems: importing.Problems, message: str = ""):
        self.problems = problems
        self.message = message or (
            f"{problems.total} problem{'s' if problems.total != 1 else ''}"
            " found; nothing was changed."
        )
        super().__init__(self.message)


# --------------------------------------------------------------------------------------------
# Opportunities


def _opportunity_clean(data: dict[str, Any]) -> dict[str, Any]:
    def codes(value: Any) -> list[str]:
        if isinstance(value, str):
            value = value.replace("\n", ",").split(",")
        return sorted({str(v).strip() for v in value or [] if str(v).strip()})

    clean = dict(data)
    if "case_types" in clean:
        clean["case_types"] = codes(clean["case_types"])
    if "item_codes" in clean:
        clean["item_codes"] = codes(clean["item_codes"])
    for name in ("savings_target", "floor_per_case"):
        if clean.get(name) not in (None, ""):
            clean[name] = to_decimal(clean[name])
        elif name in clean:
            clean[name] = None if name == "floor_per_case" else clean[name]
    return clean


def _opportunity_validate(opportunity: SavingsOpportunity) -> None:
    errors: dict[str, str] = {}
    if not opportunity.case_types:
        errors["case_types"] = "Name at least one case type."
    if not opportunity.item_codes:
        errors["item_codes"] = "Name at least one item."
    if opportunity.savings_target is None or opportunity.savings_target < 0:
        errors["savings_target"] = "The savings target must be zero or more."
    elif opportunity.savings_target != round_rational(opportunity.savings_target):
        errors["savings_target"] = "The savings target is an amount in cents."
    if opportunity.floor_per_case is not None and opportunity.floor_per_case < 0:
        errors["floor_per_case"] = "The floor must not be negative."
    if errors:
        raise ValidationError(errors)
    opportunity.full_clean(exclude=["organization", "created_by", "effective_from_year"])


def _next_programme_year(agreement: Agreement, today: dt.date) -> ProgrammeYear | None:
    return agreement.programme_years.filter(start__gt=today).order_by("start").first()


@transaction.atomic
def opportunity_create(
    *, agreement: Agreement, data: dict[str, Any], user: User | None, today: dt.date | None = None
) -> SavingsOpportunity:
    """Add an opportunity. Before execution it is identified at signing; afterwards it is an
    amendment that earns only from the next programme year (spec 4)."""
    today = today or timezone.localdate()
    clean = _opportunity_clean(data)
    opportunity = SavingsOpportunity(
        organization=agreement.organization, agreement=agreement, created_by=user, **clean
    )
    if agreement.is_frozen:
        if opportunity.status == OpportunityStatus.PROPOSED:
            raise ValidationError(
                "The agreement is executed: proposals belong to the design "
                "phase. Add an amendment instead."
            )
        next_year = _next_programme_year(agreement, today)
        if next_year is None:
            raise ValidationError(
                "The agreement is executed and has no later programme year: "
                "an opportunity added now could never earn."
            )
        opportunity.identified_at_signing = False
        opportunity.effective_from_year = next_year
    else:
        opportunity.identified_at_signing = True
        opportunity.effective_from_year = None
    _opportunity_validate(opportunity)
    opportunity.save()
    when = (
        "identified at signing"
        if opportunity.identified_at_signing
        else f"amendment from {opportunity.effective_from_year}"
    )
    event_record(
        organization=agreement.organization,
        name="savings.opportunity_added",
        actor=user,
        obj=opportunity,
        summary=f"{opportunity} ({when})",
    )
    return opportunity


def _frozen_check(opportunity: SavingsOpportunity) -> None:
    if opportunity.agreement.is_frozen and (
        opportunity.identified_at_signing
        or opportunity.effective_from_year is None
        or opportunity.effective_from_year.start <= timezone.localdate()
    ):
        raise ValidationError(
            "The agreement is executed: this opportunity is frozen. "
            "A change is an amendment effective from a future year.",
            code="frozen",
        )


@transaction.atomic
def opportunity_update(
    *, opportunity: SavingsOpportunity, data: dict[str, Any], user: User | None
) -> SavingsOpportunity:
    _frozen_check(opportunity)
    for name, value in _opportunity_clean(data).items():
        if name in {
            "key",
            "name",
            "case_types",
            "item_codes",
            "floor_per_case",
            "savings_target",
            "base_year",
            "finding",
        }:
            setattr(opportunity, name, value)
    _opportunity_validate(opportunity)
    opportunity.save()
    return opportunity


@transaction.atomic
def opportunity_accept(*, opportunity: SavingsOpportunity, user: User | None) -> SavingsOpportunity:
    """A design-phase proposal becomes part of the agreement (before execution only)."""
    _frozen_check(opportunity)
    opportunity.status = OpportunityStatus.AGREED
    opportunity.save(update_fields=["status"])
    return opportunity


@transaction.atomic
def opportunity_delete(*, opportunity: SavingsOpportunity, user: User | None) -> None:
    _frozen_check(opportunity)
    event_record(
        organization=opportunity.organization,
        name="savings.opportunity_removed",
        actor=user,
        obj=opportunity,
        summary=str(opportunity),
    )
    opportunity.delete()


def opportunity_propose_from_finding(
    *,
    agreement: Agreement,
    user: User | None,
    key: str,
    name: str,
    case_type: str,
    item_codes: Iterable[str],
    savings_target: Decimal,
    base_year: int,
    finding: str,
) -> SavingsOpportunity:
    """The analysis page turns a finding into a proposed opportunity with its target."""
    return opportunity_create(
        agreement=agreement,
        user=user,
        data={
            "key": key,
            "name": name,
            "case_types": [case_type],
            "item_codes": list(item_codes),
            "savings_target": savings_target,
            "base_year": base_year,
            "finding": finding,
            "status": OpportunityStatus.PROPOSED,
        },
    )


def distribution_cap_proposed(*, agreement: Agreement) -> Decimal:
    """Sum of the targets of the opportunities identified at signing: the proposed cap."""
    return sum(
        (
            o.savings_target
            for o in selectors.opportunities_of(agreement=agreement)
            if o.identified_at_signing
        ),
        ZERO,
    )


# --------------------------------------------------------------------------------------------
# Imports


def _sha256(handle: Any) -> tuple[str, int]:
    digest = hashlib.sha256()
    size = 0
    handle.seek(0)
    for chunk in iter(lambda: handle.read(1 << 20), b""):
        digest.update(chunk)
        size += len(chunk)
    handle.seek(0)
    return digest.hexdigest(), size


def _period(
    agreement: Agreement, period: str, programme_year: ProgrammeYear | None, base_year: int | None
) -> tuple[dt.date, dt.date]:
    if period == ImportPeriod.PROGRAMME:
        if programme_year is None or programme_year.agreement_id != agreement.pk:
            raise ValidationError({"programme_year": "Choose a programme year of this agreement."})
        return programme_year.start, programme_year.end
    if not base_year or not 1990 <= int(base_year) <= 2100:
        raise ValidationError({"base_year": "Give the base year (e.g. 2024)."})
    return dt.date(int(base_year), 1, 1), dt.date(int(base_year), 12, 31)


@transaction.atomic
def data_import_receive(
    *,
    agreement: Agreement,
    kind: str,
    period: str,
    upload: UploadedFile | File,
    user: User | None,
    programme_year: ProgrammeYear | None = None,
    base_year: int | None = None,
) -> DataImport:
    """Keep the uploaded file with its SHA-256, uploader and time, awaiting confirmation.

    Raises :class:`DuplicateUpload` when the same file is already applied (or queued) for the
    same period of the agreement (the same price list may serve two years)."""
    if kind not in ImportKind.values:
        raise ValidationError({"kind": "Choose usage or prices."})
    if kind == ImportKind.PRICES and period != ImportPeriod.PROGRAMME:
        raise ValidationError({"period": "A price file belongs to a programme year."})
    if period == ImportPeriod.BASE:
        programme_year = None
    else:
        base_year = None
    start, end = _period(agreement, period, programme_year, base_year)
    name = Path(getattr(upload, "name", "") or "upload.csv").name
    suffix = name.rsplit(".", 1)[-1].lower() if "." in name else ""
    if suffix not in ("csv", "xlsx", "txt"):
        raise ValidationError({"file": "Upload a CSV (.csv, .txt) or an Excel workbook (.xlsx)."})
    # Before reading it: an oversize file is refused at once (413), an empty one too.
    uploads.upload_size_check(kind=kind, size=getattr(upload, "size", None))
    sha256, size = _sha256(upload)
    uploads.upload_size_check(kind=kind, size=size)
    existing = selectors.import_applied_with_checksum(
        agreement=agreement,
        sha256=sha256,
        kind=kind,
        programme_year=programme_year,
        base_year=base_year,
    )
    if existing is not None:
        raise DuplicateUpload(existing)
    data_import = DataImport(
        organization=agreement.organization,
        agreement=agreement,
        kind=kind,
        period=period,
        programme_year=programme_year,
        base_year=base_year,
        period_start=start,
        period_end=end,
        original_name=name[:255],
        sha256=sha256,
        size=size,
        file_format="xlsx" if suffix == "xlsx" else "csv",
        uploaded_by=user,
    )
    data_import.file.save(name, upload if isinstance(upload, File) else File(upload), save=False)
    data_import.save()
    event_record(
        organization=agreement.organization,
        name="savings.file_uploaded",
        actor=user,
        obj=data_import,
        summary=f"{data_import} sha256 {sha256[:12]}",
        data={"sha256": sha256, "size": size},
    )
    if data_import.file_format == "xlsx":
        # The mapping step needs the sheets and their first rows: the worker reads them.
        from .tasks import data_import_head_task

        job = job_create(
            organization=data_import.organization,
            kind=HEAD_JOB_KIND,
            user=user,
            params={"data_import_id": data_import.pk, "file": data_import.original_name},
        )
        job_enqueue(job=job, task=data_import_head_task)
    return data_import


def data_import_preview(*, data_import: DataImport, rows: int = 10) -> dict[str, Any]:
    with data_import.file.open("rb") as handle:
        return importing.preview(
            handle, file_format=data_import.file_format, kind=data_import.kind, rows=rows
        )


def _fields(kind: str) -> FieldSet:
    return importing.USAGE_FIELDS if kind == ImportKind.USAGE else importing.PRICE_FIELDS


HEAD_JOB_KIND = "savings.workbook_head"


def _step_problem(message: str) -> dict[str, Any]:
    return {
        "problems": [{"row": None, "column": "", "message": message}],
        "columns": [],
        "sheets": [],
        "saved": None,
    }


def data_import_head_read(*, data_import: DataImport) -> DataImport:
    """Read an Excel workbook's sheets and first rows for the mapping step (worker only)."""
    try:
        with data_import.file.open("rb") as handle:
            head = importing.workbook_head(handle)
    except uploads.FileProblem as problem:
        head = {"error": problem.message}
    except (*_UNREADABLE, Exception) as exc:  # noqa: BLE001 - any unreadable workbook
        head = {"error": f"the workbook cannot be read: {str(exc)[:200]}"}
    data_import.workbook_head = head
    data_import.save(update_fields=["workbook_head"])
    return data_import


def data_import_mapping_step(
    *, data_import: DataImport, sheet: str = "", header_row: int | None = None
) -> dict[str, Any]:
    """What the mapping form shows: the sheets, the header row, each column with sample
    values and its proposed field (a saved mapping with the same header is chosen again)."""
    saved = import_mappings_saved(kind=data_import.kind)
    sheets: list[str] = []
    if data_import.file_format == "xlsx":
        head = data_import.workbook_head or {}
        if not head:
            return {"pending": True, "problems": [], "columns": [], "sheets": [], "saved": None}
        if head.get("error"):
            return _step_problem(head["error"])
        sheets = list(head.get("sheets") or [])
        if sheet not in sheets:
            sheet = sheets[0] if sheets else ""
        rows = (head.get("rows") or {}).get(sheet, [])
    else:
        with data_import.file.open("rb") as handle:
            rows = importing.csv_head_rows(handle)
    return mapping_step(
        rows,
        fields=_fields(data_import.kind),
        saved=saved,
        sheets=sheets,
        sheet=sheet,
        header_row=header_row,
    )


def data_import_map(
    *,
    data_import: DataImport,
    user: User | None,
    mapping_id: Any = None,
    columns: dict[str, str] | None = None,
    date_format: str = "auto",
    sheet: str = "",
    save_as: str = "",
) -> DataImport:
    """Record how the file is read before it is confirmed: a saved mapping (by id), or the
    columns the user matched in the form (saved under ``save_as`` when named), or, with
    neither, the saved mapping whose header the file has. A file in the canonical layout
    needs none. Raises ``ValidationError`` naming what is wrong (a required field with no
    column, two columns to one field, a header that cannot be found, an empty sheet)."""
    if data_import.status not in (ImportStatus.UPLOADED, ImportStatus.FAILED):
        raise ValidationError("This import was already started.")
    chosen, used = import_mapping_resolve(
        organization=data_import.organization,
        kind=data_import.kind,
        fields=_fields(data_import.kind),
        step_for=lambda sheet, header_row: data_import_mapping_step(
            data_import=data_import, sheet=sheet, header_row=header_row
        ),
        user=user,
        mapping_id=mapping_id,
        columns=columns,
        date_format=date_format,
        sheet=sheet,
        save_as=save_as,
    )
    data_import.mapping = chosen if used else None
    data_import.mapping_used = used
    data_import.save(update_fields=["mapping", "mapping_used"])
    return data_import


def data_import_start(*, data_import: DataImport, user: User | None) -> Job:
    """Confirm: queue the import as a job. The same file for the same target is one job."""
    from .tasks import data_import_task

    if data_import.status not in (ImportStatus.UPLOADED, ImportStatus.FAILED):
        raise ValidationError("This import was already started.")
    target = data_import.programme_year_id or f"base{data_import.base_year}"
    job = job_create(
        organization=data_import.organization,
        kind=IMPORT_JOB_KIND,
        user=user,
        params={"data_import_id": data_import.pk, "file": data_import.original_name},
        dedupe_key=f"savings-import:{data_import.agreement_id}:{data_import.kind}:"
        f"{target}:{data_import.sha256}",
    )
    data_import.job = job
    data_import.status = ImportStatus.QUEUED
    data_import.save(update_fields=["job", "status"])
    job_enqueue(job=job, task=data_import_task)
    return job


def _usage_rules(data_import: DataImport) -> importing.UsageRules:
    catalogue = None
    if data_import.programme_year_id:
        prices = selectors.import_current(
            agreement=data_import.agreement,
            kind=ImportKind.PRICES,
            programme_year=data_import.programme_year,
        )
        if prices is not None:
            catalogue = frozenset(selectors.prices_of(data_import=prices))
    npis = frozenset(Physician.objects.values_list("npi", flat=True))
    return importing.UsageRules(
        period_start=data_import.period_start,
        period_end=data_import.period_end,
        period_label=data_import.period_label.lower(),
        known_npis=npis,
        catalogue=catalogue,
    )


def _progress(job_id: int | None, handle: Any, size: int, phase: str) -> Any:
    def report() -> None:
        if job_id is not None and size:
            try:
                position = handle.tell()
            except (OSError, ValueError):
                return
            job_progress(job_id, int(85 * min(position, size) / size), phase)

    return report


_UNREADABLE = (
    uploads.FileProblem,
    importing.RaggedRows,
    importing.pa.ArrowInvalid,
    UnicodeDecodeError,
    ValueError,
    KeyError,
    OSError,
    csv.Error,
    zipfile.BadZipFile,
)


def _unreadable(
    data_import: DataImport,
    problems: importing.Problems,
    exc: BaseException,
    *,
    expected: int,
    first_row: int | None,
) -> None:
    """Record why the file cannot be read, by row (the fast reader does not say where)."""
    if isinstance(exc, uploads.FileProblem):
        problems.add(row=exc.row, column="", message=exc.message)
        return
    if data_import.file_format == "xlsx":
        problems.add(
            row=first_row, column="", message=f"the workbook cannot be read: {str(exc)[:200]}"
        )
        return
    name = data_import.file.name
    assert name is not None  # an import always has its file
    with data_import.file.storage.open(name, "rb") as fresh:
        found, total = importing.explain_unreadable(
            fresh, expected=expected, error=exc, first_row=first_row
        )
    for row, message in found:
        problems.add(row=row, column="", message=message)
    problems.total += total - len(found)


def _mapping_of(data_import: DataImport) -> ColumnMapping | None:
    used = data_import.mapping_used or {}
    return ColumnMapping.from_json(used) if used.get("columns") else None


def _open(
    data_import: DataImport, handle: Any, problems: importing.Problems, progress: Any = None
) -> tuple[list[str], Any]:
    try:
        return importing.open_batches(
            handle,
            file_format=data_import.file_format,
            progress=progress,
            mapping=_mapping_of(data_import),
        )
    except _UNREADABLE as exc:
        _unreadable(data_import, problems, exc, expected=_header_width(handle), first_row=2)
        problems.trim()
        raise ImportRefused(problems) from exc


def _header_width(handle: Any) -> int:
    handle.seek(0)
    try:
        return len(uploads.csv_header(handle.read(uploads.HEADER_MAX_BYTES + 4), at_end=True))
    except uploads.FileProblem:
        return 0
    finally:
        handle.seek(0)


class _Reading:
    """Batches until the file stops being readable; that is a problem named by row, not a
    crash. The caller keeps ``row`` (the first row of the next batch) up to date."""

    def __init__(self, data_import: DataImport, problems: importing.Problems, names: list[str]):
        self.data_import, self.problems, self.names = data_import, problems, names
        self.row = 2  # the header is row 1

    def batches(self, batches: Any) -> Any:
        try:
            yield from batches
        except _UNREADABLE as exc:
            _unreadable(
                self.data_import, self.problems, exc, expected=len(self.names), first_row=self.row
            )


def _mapped(
    data_import: DataImport, names: list[str], problems: importing.Problems
) -> MappedBatches | None:
    """The file's own columns read into the canonical fields, when a mapping reads it; its
    columns must all be in the header (a problem naming the column otherwise)."""
    mapping = _mapping_of(data_import)
    if mapping is None:
        return None
    fields = _fields(data_import.kind)
    for issue in tabular_check(fields, names, mapping.columns):
        problems.add(row=mapping.header_row, column=issue["column"], message=issue["message"])
    if problems.total:
        raise ImportRefused(problems)
    mapped = MappedBatches(fields=fields, mapping=mapping, first_row=mapping.header_row + 1)
    problems.labels = mapped.labels
    return mapped


def _convert(mapped: MappedBatches, batch: Any, row: int) -> Any:
    try:
        return mapped.convert(batch, first_row=row)
    except TableRefused as refused:
        raise ImportRefused(refused.problems) from refused


def _apply_usage(data_import: DataImport, handle: Any, job_id: int | None) -> tuple[int, int]:
    """Validate and load a usage file; returns (rows, distinct cases)."""
    problems = importing.Problems()
    names, batches = _open(
        data_import,
        handle,
        problems,
        progress=_progress(job_id, handle, data_import.size, "Checking and loading rows"),
    )
    mapped = _mapped(data_import, names, problems)
    if mapped is not None:
        names = mapped.names
    first = mapped.first_row if mapped is not None else 2
    header_row = first - 1
    missing = [c for c in importing.USAGE_REQUIRED if c not in names]
    if missing:
        for column in missing:
            problems.add(row=header_row, column=column, message=f"the header lacks column {column}")
        raise ImportRefused(problems)
    rules = _usage_rules(data_import)
    loader = importing.UsageLoader(
        organization_id=data_import.organization_id, data_import_id=data_import.pk
    )
    case_ids: list[Any] = []
    items: list[Any] = []
    case_fields: list[Any] = []  # spec 4 edge case "one case, many rows"
    starts = []
    row = first  # the row after the header
    reading = _Reading(data_import, problems, names)
    reading.row = row
    try:
        for batch in reading.batches(batches):
            if mapped is not None:
                batch = _convert(mapped, batch, row)
            table = importing.validate_usage_batch(
                batch, first_row=row, rules=rules, problems=problems
            )
            case_ids.append(table.column("case_id").combine_chunks())
            items.append(table.column("item_code").combine_chunks())
            case_fields.append(table.select(["case_id", *case_rows.CASE_FIELDS]))
            starts.append(row)
            row += batch.num_rows
            reading.row = row
            problems.trim()
            if not problems.total:
                # Duplicate checks and messages use the file's own ids; storage may hash them.
                stored_ids = case_ids_for_storage(data_import.organization, table.column("case_id"))
                loader.add(
                    table.set_column(table.schema.get_field_index("case_id"), "case_id", stored_ids)
                )
        if not problems.total and row > first:
            # The rows are published (on PostgreSQL the staging table becomes the import's
            # partition) while the whole file is checked for duplicate rows; a duplicate raises
            # below and the transaction takes the rows back out.
            if job_id is not None:
                job_progress(job_id, 90, "Writing the rows")
            loader.start_publish()
        case_rows.case_agreement_checks(problems, case_fields, starts)
        importing.duplicate_checks(problems, case_ids, items, starts)
        if row == first and not problems.total:
            problems.add(row=None, column="", message="the file has no data rows")
        if problems.total:
            problems.trim()
            raise ImportRefused(problems)
        loader.finish()
    finally:
        loader.close()
    # The file's distinct cases, counted here rather than by a query over the rows just written.
    cases = importing.pc.count_distinct(
        importing.pa.chunked_array(case_ids, importing.pa.string())
    ).as_py()
    return loader.rows, cases


def _apply_prices(data_import: DataImport, handle: Any) -> int:
    problems = importing.Problems()
    names, batches = _open(data_import, handle, problems)
    mapped = _mapped(data_import, names, problems)
    if mapped is not None:
        names = mapped.names
    row = mapped.first_row if mapped is not None else 2
    missing = [c for c in importing.PRICE_COLUMNS if c not in names]
    for column in missing:
        problems.add(row=row - 1, column=column, message=f"the header lacks column {column}")
    if missing:
        raise ImportRefused(problems)
    prices: dict[str, tuple[str, int]] = {}
    reading = _Reading(data_import, problems, names)
    reading.row = row
    for batch in reading.batches(batches):
        if mapped is not None:
            batch = _convert(mapped, batch, row)
        table = importing.validate_price_batch(batch, first_row=row, problems=problems)
        for offset, (item, cost) in enumerate(
            zip(
                table.column("item_code").to_pylist(),
                table.column("unit_cost").to_pylist(),
                strict=True,
            )
        ):
            if item in prices:
                problems.add(
                    row=row + offset,
                    column="item_code",
                    message=f"duplicate row: item {item} is already on row {prices[item][1]}",
                )
            elif item:
                prices[item] = (cost, row + offset)
        row += batch.num_rows
        reading.row = row
    usage = selectors.import_current(
        agreement=data_import.agreement,
        kind=ImportKind.USAGE,
        programme_year=data_import.programme_year,
    )
    if usage is not None:
        for item in sorted(selectors.usage_items_of(data_import=usage) - set(prices)):
            problems.add(
                row=None,
                column="item_code",
                message=f"the price file has no price for item {item}, used in the "
                f"year's usage (import #{usage.pk})",
            )
    if not prices and not problems.total:
        problems.add(row=None, column="", message="the file has no data rows")
    if problems.total:
        problems.trim()
        raise ImportRefused(problems)
    PriceItem.objects.bulk_create(
        [
            PriceItem(
                organization_id=data_import.organization_id,
                data_import=data_import,
                item_code=item,
                unit_cost=Decimal(cost),
            )
            for item, (cost, _row) in sorted(prices.items())
        ]
    )
    return len(prices)


def data_import_apply(*, data_import: DataImport, job_id: int | None = None) -> DataImport:
    """Validate the whole file and load it, in one transaction: all or nothing.

    On success the import becomes the current one for its period (the previous one is kept,
    superseded). Raises :class:`ImportRefused` with the problems; then nothing changed."""
    with transaction.atomic():
        data_import = DataImport.objects.select_for_update().get(pk=data_import.pk)
        if data_import.status == ImportStatus.APPLIED:
            return data_import  # a redelivered task: already done
        if data_import.status == ImportStatus.CANCELLED:
            problems = importing.Problems()
            problems.add(row=None, column="", message="the import was discarded")
            raise ImportRefused(problems, message="The import was discarded; nothing was changed.")
        with data_import.file.open("rb") as handle:
            cases = 0
            if data_import.kind == ImportKind.USAGE:
                rows, cases = _apply_usage(data_import, handle, job_id)
            else:
                rows = _apply_prices(data_import, handle)
        same_period = DataImport.objects.filter(
            agreement=data_import.agreement,
            kind=data_import.kind,
            period=data_import.period,
            programme_year=data_import.programme_year,
            base_year=data_import.base_year,
        )
        previous = same_period.filter(is_current=True).exclude(pk=data_import.pk).first()
        if previous is not None:
            previous.is_current = False
            previous.save(update_fields=["is_current"])
        data_import.version = (same_period.aggregate(v=Max("version"))["v"] or 0) + 1
        data_import.is_current = True
        data_import.status = ImportStatus.APPLIED
        data_import.row_count = rows
        data_import.applied_at = timezone.now()
        if data_import.kind == ImportKind.USAGE:
            data_import.case_count = cases
        data_import.save()
        event_record(
            organization=data_import.organization,
            name="savings.file_applied",
            actor=data_import.uploaded_by,
            obj=data_import,
            summary=f"{data_import}: {rows} rows, version {data_import.version}"
            + (f", supersedes #{previous.pk}" if previous else ""),
            data={
                "sha256": data_import.sha256,
                "rows": rows,
                "supersedes": previous.pk if previous else None,
            },
        )
    return data_import


def data_import_mark_failed(*, data_import: DataImport) -> None:
    DataImport.objects.filter(pk=data_import.pk).exclude(
        status__in=[ImportStatus.APPLIED, ImportStatus.CANCELLED]
    ).update(status=ImportStatus.FAILED)


ImportNotDiscardable = uploads.ImportNotDiscardable


def data_import_discard(*, data_import: DataImport, user: User | None) -> DataImport:
    """Discard an import that was never applied: awaiting confirmation, failed, or queued with
    a job that is not running (a lost worker leaves it queued for good). Nothing else
    changes; the stored file is removed; the record stays, cancelled, with an audit event."""
    with transaction.atomic():
        try:
            # A running import holds its row for its whole transaction: do not wait for it.
            with transaction.atomic():
                data_import = DataImport.objects.select_for_update(nowait=True).get(
                    pk=data_import.pk
                )
        except OperationalError as exc:
            raise ImportNotDiscardable(
                "This import is running: wait for it to finish (or fail), then discard it.",
                code="running",
            ) from exc
        if data_import.status == ImportStatus.APPLIED:
            raise ImportNotDiscardable(
                "This import was applied: it cannot be discarded. Upload a corrected file "
                "for the same period; it supersedes this one.",
                code="applied",
            )
        if data_import.status == ImportStatus.CANCELLED:
            return data_import
        uploads.import_job_release(job_id=data_import.job_id)
        name = data_import.file.name
        data_import.status = ImportStatus.CANCELLED
        data_import.is_current = False
        data_import.file = ""
        data_import.save(update_fields=["status", "is_current", "file"])
        event_record(
            organization=data_import.organization,
            name="savings.import_discarded",
            actor=user,
            obj=data_import,
            summary=f"{data_import} discarded (never applied)",
            data={"sha256": data_import.sha256, "file": name},
        )
        storage = DataImport._meta.get_field("file").storage
        if name:
            transaction.on_commit(lambda: storage.delete(name))
    return data_import


def data_import_from_path(
    *,
    agreement: Agreement,
    kind: str,
    period: str,
    path: str | Path,
    user: User | None,
    programme_year: ProgrammeYear | None = None,
    base_year: int | None = None,
) -> DataImport:
    """Receive and apply a file synchronously (the demo, tests, scripts)."""
    with open(path, "rb") as handle:
        data_import = data_import_receive(
            agreement=agreement,
            kind=kind,
            period=period,
            upload=File(handle, name=Path(path).name),
            user=user,
            programme_year=programme_year,
            base_year=base_year,
        )
    try:
        return data_import_apply(data_import=data_import)
    except ImportRefused:
        data_import_mark_failed(data_import=data_import)
        raise


# --------------------------------------------------------------------------------------------
# The calculation


@dataclass(frozen=True, kw_only=True)
class SavingsComputation:
    """The engine result for a programme year plus the inputs that produced it."""

    programme_year_id: int
    result: engine.SavingsResult
    inputs: dict[str, Any]
    inputs_checksum: str
    projection: bool = False
    as_of: dt.date | None = None
    projected_gross_savings: Decimal | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def result_checksum(self) -> str:
        return self.result.checksum()


OVERRIDE_KEYS = {"terms", "quantity_pct", "prices", "already_distributed", "key_indicators_met"}
TERM_FIELDS = (
    "physician_share_pct",
    "admin_fee_monthly",
    "distribution_cap",
    "volume_cap_scope",
    "negative_opportunities",
    "quality_gate",
    "min_savings_threshold_pct",
    "leaver_policy",
    "reprice_baseline",
    "severity_tolerance_pct",
)


def _terms_for_year(programme_year: ProgrammeYear) -> AgreementTerms:
    try:
        return terms_for_year(programme_year=programme_year)
    except AgreementTerms.DoesNotExist:
        raise engine.SavingsInputError(
            f"no terms of the agreement are in force on {programme_year.start}"
        ) from None


def _engine_terms(
    terms: AgreementTerms, cap: Decimal, overrides: dict[str, Any]
) -> engine.SavingsTerms:
    values: dict[str, Any] = {
        "physician_share_pct": terms.physician_share_pct,
        "admin_fee_monthly": terms.admin_fee_monthly,
        "distribution_cap": cap,
        "volume_cap_scope": terms.volume_cap_scope,
        "negative_opportunities": terms.negative_opportunities,
        "quality_gate": terms.quality_gate,
        "min_savings_threshold_pct": terms.min_savings_threshold_pct,
        "leaver_policy": terms.leaver_policy,
        "reprice_baseline": terms.reprice_baseline,
        "severity_tolerance_pct": terms.severity_tolerance_pct,
    }
    for name, value in (overrides.get("terms") or {}).items():
        if name not in TERM_FIELDS:
            raise engine.SavingsInputError(f"unknown term to override: {name}")
        if name == "reprice_baseline":
            value = value if isinstance(value, bool) else str(value).lower() == "true"
        elif name in (
            "physician_share_pct",
            "admin_fee_monthly",
            "distribution_cap",
            "min_savings_threshold_pct",
            "severity_tolerance_pct",
        ):
            value = None if value in (None, "") else to_decimal(value)
        values[name] = value
    result = engine.SavingsTerms(**values)
    result.validate()
    return result


def _scale_quantities(frame: pd.DataFrame, quantity_pct: dict[str, Any]) -> pd.DataFrame:
    frame = frame.copy()
    for item, pct in quantity_pct.items():
        factor = to_decimal(str(pct)) / 100
        if factor < 0:
            raise engine.SavingsInputError(f"quantity change for {item} must not go below 0%")
        mask = frame["item_code"] == item
        frame.loc[mask, "quantity"] = [
            str(Decimal(q) * factor) for q in frame.loc[mask, "quantity"]
        ]
    return frame


def _scale_quantity_columns(
    usage: engine.UsageColumns, quantity_pct: dict[str, Any]
) -> engine.UsageColumns | None:
    """:func:`_scale_quantities` on typed columns, exactly: each factor ``pct / 100`` is an
    integer at ``10**d``, every quantity moves to ``quantity_digits + max(d)``. ``None`` when
    the products would not fit in 64 bits (the caller then takes the text path)."""
    factors: dict[str, tuple[int, int]] = {}
    for item, pct in quantity_pct.items():
        factor = to_decimal(str(pct)) / 100
        if factor < 0:
            raise engine.SavingsInputError(f"quantity change for {item} must not go below 0%")
        sign, digits, exponent = factor.as_tuple()
        integer = int("".join(map(str, digits)) or "0")
        if not isinstance(exponent, int):
            return None
        factors[str(item)] = (integer * 10 ** max(exponent, 0), max(-exponent, 0))
    extra = max((d for _, d in factors.values()), default=0)
    multiplier = np.full(len(usage.item_values), 10**extra, dtype=object)
    for position, value in enumerate(usage.item_values):
        if value in factors:
            integer, digits = factors[value]
            multiplier[position] = integer * 10 ** (extra - digits)
    largest = int(np.abs(usage.quantity).max()) if len(usage) else 0
    if largest * max(multiplier.tolist(), default=1) >= 2**62:
        return None
    scaled = usage.quantity * multiplier.astype(np.int64)[np.asarray(usage.item_code)]
    return dataclasses.replace(
        usage, quantity=scaled, quantity_digits=usage.quantity_digits + extra
    )


def _same_period(usage: engine.UsageColumns, start: dt.date, days: int) -> engine.UsageColumns:
    """Rows in the first ``days`` days from ``start`` (the base year's same months)."""
    return usage.up_to(start + dt.timedelta(days=days - 1))


def _already_distributed(programme_year: ProgrammeYear) -> tuple[Decimal, list[dict[str, Any]]]:
    """What earlier years of the term paid to the practice (spec 4 split step 3).

    Per earlier year: the distributions recorded as paid in the adjudication app when there are
    any; otherwise the ``amount_paid`` of that year's latest stored savings calculation;
    otherwise nothing. Each year's source is recorded in the inputs.
    """
    total = ZERO
    sources: list[dict[str, Any]] = []
    earlier = ProgrammeYear.objects.filter(
        agreement_id=programme_year.agreement_id, number__lt=programme_year.number
    ).order_by("number")
    for year in earlier:
        paid = installed_sources().distributions_paid(year)
        if paid is not None:
            source = "adjudication payments"
        if paid is None:
            calc = selectors.calculation_latest(programme_year=year)
            if calc is not None:
                paid, source = calc.amount_paid, f"savings calculation #{calc.pk}"
        if paid is None:
            paid, source = ZERO, "nothing recorded"
        total += to_decimal(paid)
        sources.append({"year": year.number, "amount": str(paid), "source": source})
    return total, sources


def _key_indicators(programme_year: ProgrammeYear) -> list[engine.KeyIndicatorOutcome]:
    return list(installed_sources().key_indicators(programme_year))


def _import_record(data_import: DataImport | None) -> dict[str, Any] | None:
    if data_import is None:
        return None
    record: dict[str, Any] = {
        "id": data_import.pk,
        "file": data_import.original_name,
        "sha256": data_import.sha256,
        "version": data_import.version,
        "rows": data_import.row_count,
    }
    if data_import.mapping_used:
        # Which mapping (and version) read the file; a canonical file has none (and its
        # record, so the inputs' checksum, is as before).
        used = data_import.mapping_used
        record["mapping"] = {
            "id": used.get("mapping_id"),
            "name": used.get("name", ""),
            "version": used.get("version"),
            "label": data_import.mapping_label,
        }
    return record


def savings_for_year(
    *,
    programme_year: ProgrammeYear,
    overrides: dict[str, Any] | None = None,
    already_distributed: Decimal | None = None,
    as_of: dt.date | None = None,
) -> SavingsComputation:
    """Gather a programme year's inputs from the records and run the engine (spec 4).

    * terms in force on the year's first day; the distribution cap is the terms' cap, or the
      sum of the targets identified at signing when the terms leave it empty;
    * the agreed opportunities; base-year usage (the current import of their base year),
      year N-1's usage for the baseline reset, the year's usage and price file (current
      imports); participants; key quality indicators (``indicators.services`` when present);
    * ``already_distributed`` defaults to what earlier years paid (see
      :func:`_already_distributed`);
    * ``as_of`` makes a projection: usage to that date against the same months of the base and
      prior years, fees for the months elapsed, and a full-year run rate of gross savings.

    ``overrides`` (what-if, nothing stored changes): ``terms`` {field: value},
    ``quantity_pct`` {item: percent of recorded quantity}, ``prices`` {item: unit cost},
    ``already_distributed``, ``key_indicators_met`` (bool for every key indicator).
    Raises :class:`engine.SavingsInputError` with the reason a year cannot be computed.
    """
    agreement = programme_year.agreement
    terms_record = _terms_for_year(programme_year)
    opportunities = [
        o
        for o in selectors.opportunities_of(agreement=agreement)
        if o.status == OpportunityStatus.AGREED
    ]
    # Strict: unknown keys or items, negative prices, non-finite numbers, non-booleans and NUL
    # are each a 400 naming the field, before anything is computed or stored.
    overrides = savings_overrides_parse(
        overrides=overrides, item_codes={str(c) for o in opportunities for c in o.item_codes}
    )
    if not opportunities:
        raise engine.SavingsInputError("the agreement has no agreed savings opportunities")
    cap = terms_record.distribution_cap
    if cap is None:
        cap = sum((o.savings_target for o in opportunities if o.identified_at_signing), ZERO)
    terms = _engine_terms(terms_record, cap, overrides)

    base_years = sorted({o.base_year for o in opportunities})
    base_imports = []
    for year in base_years:
        found = selectors.import_current(agreement=agreement, kind=ImportKind.USAGE, base_year=year)
        if found is None:
            raise engine.SavingsInputError(f"base-year {year} usage has not been imported")
        base_imports.append(found)
    current_import = selectors.import_current(
        agreement=agreement, kind=ImportKind.USAGE, programme_year=programme_year
    )
    if current_import is None:
        raise engine.SavingsInputError(f"{programme_year.label}: usage has not been imported")
    price_import = selectors.import_current(
        agreement=agreement, kind=ImportKind.PRICES, programme_year=programme_year
    )
    if price_import is None:
        raise engine.SavingsInputError(
            f"{programme_year.label}: the price file is missing; the year cannot be calculated"
        )
    prior_year = ProgrammeYear.objects.filter(
        agreement=agreement, number=programme_year.number - 1
    ).first()
    prior_import = None
    if prior_year is not None:
        prior_import = selectors.import_current(
            agreement=agreement, kind=ImportKind.USAGE, programme_year=prior_year
        )
        if prior_import is None:
            raise engine.SavingsInputError(
                f"{prior_year.label}: usage is needed for the baseline reset and is missing"
            )

    # The year and its what-ifs: each import prepared once (parsed, checked, summed) and kept
    # (savings.columnar). A projection, or the stored form off: typed, exact columns from the
    # database; a what-if on quantities rescales them exactly (text only beyond 64 bits).
    prepared = None
    if as_of is None:
        prepared = columnar.year_usage(
            base_imports=base_imports,
            current_import=current_import,
            prior_import=prior_import,
            quantity_pct=overrides.get("quantity_pct"),
        )
    base_frame: Any
    current_frame: Any
    prior_frame: Any
    if prepared is not None:
        base_frame, current_frame, prior_frame = prepared
        base_parts = []
    else:
        base_parts = [selectors.usage_columns(data_import=i) for i in base_imports]
        base_frame = engine.UsageColumns.concat(base_parts)
        current_frame = selectors.usage_columns(data_import=current_import)
        if overrides.get("quantity_pct"):
            scaled = _scale_quantity_columns(current_frame, overrides["quantity_pct"])
            current_frame = (
                scaled
                if scaled is not None
                else _scale_quantities(
                    selectors.usage_frame(data_import=current_import), overrides["quantity_pct"]
                )
            )
        prior_frame = selectors.usage_columns(data_import=prior_import) if prior_import else None
    prices: dict[str, Any] = selectors.prices_of(data_import=price_import)
    for item, cost in (overrides.get("prices") or {}).items():
        prices[str(item)] = to_decimal(str(cost))

    year_end = programme_year.end
    # Edge case "fee months" (spec 4): twelve fees for a twelve-month year whatever day it
    # starts on, one per started month for a shorter year; the engine applies and notes it.
    fee_months: int | None = None
    projection = as_of is not None
    if as_of is not None:
        as_of = min(max(as_of, programme_year.start), programme_year.end)
        elapsed = (as_of - programme_year.start).days + 1
        if isinstance(current_frame, engine.UsageColumns):
            current_frame = current_frame.up_to(as_of)
        else:
            current_frame = current_frame[current_frame["service_date"] <= as_of.isoformat()]
        base_frame = engine.UsageColumns.concat(
            [
                _same_period(part, i.period_start, elapsed)
                for part, i in zip(base_parts, base_imports, strict=True)
            ]
        )
        if prior_frame is not None and prior_year is not None:
            prior_frame = _same_period(prior_frame, prior_year.start, elapsed)
        from agreements.fees import fee_months_elapsed

        fee_months = fee_months_elapsed(programme_year.start, as_of)
    del base_parts

    participants = [
        engine.Participant(
            physician_id=str(p.physician_id),
            npi=p.physician.npi,
            last_name=p.physician.last_name,
            first_name=p.physician.first_name,
            join_date=p.join_date,
            leave_date=p.leave_date,
            termination_date=p.termination_date,
            for_cause=p.for_cause,
        )
        for p in Participation.objects.filter(agreement=agreement).select_related("physician")
    ]
    engine_opportunities = [
        engine.Opportunity(
            key=o.key,
            name=o.name,
            case_types=tuple(o.case_types),
            item_codes=tuple(o.item_codes),
            savings_target=o.savings_target,
            floor_per_case=o.floor_per_case,
            identified_at_signing=o.identified_at_signing,
            effective_from_year=o.effective_from_year.start.year if o.effective_from_year else None,
        )
        for o in opportunities
    ]
    distributed_sources: list[dict[str, Any]] = []
    if "already_distributed" in overrides:
        already = to_decimal(str(overrides["already_distributed"]))
        distributed_sources = [{"source": "override"}]
    elif already_distributed is not None:
        already = to_decimal(already_distributed)
        distributed_sources = [{"source": "given by the caller"}]
    else:
        already, distributed_sources = _already_distributed(programme_year)
    indicators = _key_indicators(programme_year)
    assumed_met: list[str] = []
    if projection:
        # In-year, an indicator not measured yet is no evidence of harm: the projection assumes
        # it met (and says so); the year's calculation takes the outcomes as they are.
        assumed_met = [k.key for k in indicators if k.result is None and not k.met]
        indicators = [
            engine.KeyIndicatorOutcome(
                key=k.key,
                name=k.name,
                met=True,
                baseline=k.baseline,
                result=k.result,
                tolerance_pct=k.tolerance_pct,
            )
            if k.key in assumed_met
            else k
            for k in indicators
        ]
    if "key_indicators_met" in overrides:
        met = overrides["key_indicators_met"] is True  # parsed strictly above
        indicators = [
            engine.KeyIndicatorOutcome(
                key=k.key,
                name=k.name,
                met=met,
                baseline=k.baseline,
                result=k.result,
                tolerance_pct=k.tolerance_pct,
            )
            for k in indicators
        ]

    # The names the rule notes give the periods (part of the inputs: they are in the result).
    labels = {
        "year_label": programme_year.label,
        "base_year_label": "base year " + ", ".join(str(y) for y in base_years),
        "prior_year_label": prior_year.label if prior_year is not None else "the prior year",
    }
    result = engine.savings_compute(
        terms=terms,
        opportunities=engine_opportunities,
        participants=participants,
        year_start=programme_year.start,
        year_end=year_end,
        base_usage=base_frame,
        current_usage=current_frame,
        current_prices=prices,
        prior_usage=prior_frame,
        fee_months=fee_months,
        already_distributed=already,
        key_indicators=indicators,
        **labels,
    )

    projected = None
    if as_of is not None:  # a projection
        projected = round_rational(
            Fraction(result.gross_savings)
            * programme_year.days
            / ((as_of - programme_year.start).days + 1)
        )
    inputs = {
        "rules_version": engine.RULES_VERSION,
        "agreement_id": agreement.pk,
        "programme_year": {
            "id": programme_year.pk,
            "number": programme_year.number,
            "start": programme_year.start.isoformat(),
            "end": programme_year.end.isoformat(),
        },
        "terms": {"id": terms_record.pk, "version": terms_record.version, **jsonable(terms)},
        "opportunities": [jsonable(o) for o in engine_opportunities],
        "participants": [jsonable(p) for p in participants],
        "base_usage": [_import_record(i) for i in base_imports],
        "prior_usage": _import_record(prior_import),
        "usage": _import_record(current_import),
        "price_file": _import_record(price_import),
        "fee_months": result.fee_months,
        "labels": labels,
        "already_distributed": str(already),
        "already_distributed_sources": distributed_sources,
        "key_indicators": [jsonable(k) for k in indicators],
        "overrides": jsonable(overrides),
        "as_of": as_of.isoformat() if as_of else None,
        "key_indicators_assumed_met_in_projection": assumed_met,
    }
    checksum = hashlib.sha256(
        json.dumps(inputs, sort_keys=True, separators=(",", ":")).encode()
    ).hexdigest()
    return SavingsComputation(
        programme_year_id=programme_year.pk,
        result=result,
        inputs=inputs,
        inputs_checksum=checksum,
        projection=projection,
        as_of=as_of,
        projected_gross_savings=projected,
    )


@transaction.atomic
def savings_calculation_run(
    *,
    programme_year: ProgrammeYear,
    user: User | None,
    kind: str = CalculationKind.YEAR,
    overrides: dict[str, Any] | None = None,
    as_of: dt.date | None = None,
    job_id: int | None = None,
) -> SavingsCalculation:
    """Compute and store. Idempotent: identical inputs return the stored calculation."""
    if kind == CalculationKind.PROJECTION and as_of is None:
        as_of = min(timezone.localdate(), programme_year.end)
    if kind != CalculationKind.PROJECTION:
        as_of = None
    if kind == CalculationKind.YEAR and overrides:
        raise ValidationError(
            {"overrides": "A programme-year calculation takes no overrides; run a scenario."}
        )
    if kind == CalculationKind.YEAR:
        _refuse_final_before_year_end(programme_year)
    if job_id is not None:
        job_progress(job_id, 10, "Gathering the year's data")
    computation = savings_for_year(programme_year=programme_year, overrides=overrides, as_of=as_of)
    if job_id is not None:
        job_progress(job_id, 80, "Storing the figures")
    existing = SavingsCalculation.objects.filter(
        programme_year=programme_year, kind=kind, inputs_checksum=computation.inputs_checksum
    ).first()
    if existing is not None:
        return existing
    result = computation.result
    calculation = SavingsCalculation.objects.create(
        organization=programme_year.organization,
        agreement=programme_year.agreement,
        programme_year=programme_year,
        kind=kind,
        as_of=as_of,
        overrides=computation.inputs["overrides"],
        inputs=computation.inputs,
        inputs_checksum=computation.inputs_checksum,
        result=result.to_dict(),
        result_checksum=result.checksum(),
        gross_savings=result.gross_savings,
        physician_pool=result.physician_pool,
        amount_paid=result.amount_paid,
        projected_gross_savings=computation.projected_gross_savings,
        created_by=user,
    )
    if kind == CalculationKind.YEAR:
        safeguard_flags_raise(calculation=calculation)
    event_record(
        organization=programme_year.organization,
        name="savings.calculated",
        actor=user,
        obj=calculation,
        summary=f"{calculation.get_kind_display()} {programme_year.label}: gross savings "
        f"{format_money(result.gross_savings)}, paid {format_money(result.amount_paid)}",
        data={"result_checksum": calculation.result_checksum},
    )
    return calculation


def _refuse_final_before_year_end(programme_year: ProgrammeYear) -> None:
    from agreements.services import programme_year_refuse_final_run

    programme_year_refuse_final_run(programme_year=programme_year)


def savings_calculation_start(
    *,
    programme_year: ProgrammeYear,
    user: User | None,
    kind: str = CalculationKind.YEAR,
    overrides: dict[str, Any] | None = None,
) -> Job:
    from .tasks import savings_calculation_task

    if kind == CalculationKind.YEAR:
        _refuse_final_before_year_end(programme_year)
    if kind == CalculationKind.YEAR and overrides:
        raise ValidationError(
            {"overrides": "A programme-year calculation takes no overrides; run a scenario."}
        )
    # Checked before the job is stored: a bad value is the caller's 400 now, not a failed job
    # later (and a NUL would not even reach the job table on PostgreSQL).
    overrides = savings_overrides_parse(
        overrides=overrides, item_codes=agreed_item_codes(agreement=programme_year.agreement)
    )
    imports = DataImport.objects.filter(
        agreement_id=programme_year.agreement_id, is_current=True
    ).values_list("pk", flat=True)
    fingerprint = hashlib.sha256(
        json.dumps(
            {
                "imports": sorted(imports),
                "overrides": overrides or {},
                "kind": kind,
                "day": timezone.localdate().isoformat(),
                "opportunities": list(
                    SavingsOpportunity.objects.filter(
                        agreement_id=programme_year.agreement_id
                    ).values_list("pk", "savings_target")
                ),
                "terms": list(
                    AgreementTerms.objects.filter(
                        agreement_id=programme_year.agreement_id
                    ).values_list("pk", "version")
                ),
                "participations": list(
                    Participation.objects.filter(
                        agreement_id=programme_year.agreement_id
                    ).values_list("pk", "termination_date", "leave_date", "for_cause")
                ),
            },
            sort_keys=True,
            default=str,
        ).encode()
    ).hexdigest()[:32]
    job = job_create(
        organization=programme_year.organization,
        kind=CALCULATION_JOB_KIND,
        user=user,
        params={"programme_year_id": programme_year.pk, "kind": kind, "overrides": overrides or {}},
        dedupe_key=f"savings-calc:{programme_year.pk}:{fingerprint}",
    )
    job_enqueue(job=job, task=savings_calculation_task)
    return job


# --------------------------------------------------------------------------------------------
# Safeguards (spec 4 split step 5; patients)

SAFEGUARD_KINDS = {
    "severity_change": ("savings_severity", FlagSeverity.WARNING),
    "federal_case_rise": ("savings_federal_rise", FlagSeverity.WARNING),
    "missing_patient_notice": ("savings_patient_notice", FlagSeverity.WARNING),
    "quality_gate": ("savings_quality", FlagSeverity.CRITICAL),
    "no_entitled_physicians": ("savings_no_entitled", FlagSeverity.CRITICAL),
}


def _flag_raise(**kwargs: Any) -> ComplianceFlag:
    flag, _created = flag_raise(**kwargs)
    return flag


def safeguard_flags_raise(*, calculation: SavingsCalculation) -> list[ComplianceFlag]:
    """Raise a compliance flag for each safeguard the year trips, with the figures behind it.

    Keys are stable (agreement, year, physician, check) so a rerun updates, never duplicates."""
    result = calculation.result
    year = calculation.programme_year
    agreement = calculation.agreement
    physicians = {
        str(p.pk): p for p in Physician.objects.filter(participations__agreement=agreement)
    }
    flags = []
    for row in result["physicians"]:
        guard = row["safeguards"]
        physician = physicians.get(row["physician_id"])
        checks = []
        if guard["severity_flag"]:
            checks.append(
                (
                    "severity_change",
                    f"Average case severity of Dr {row['last_name']} moved from "
                    f"{guard['base_average_severity']} to "
                    f"{guard['current_average_severity']} "
                    f"({guard['severity_change_pct']}%), beyond the "
                    f"±{result['terms']['severity_tolerance_pct']}% tolerance.",
                )
            )
        if guard["federal_rise_flag"]:
            checks.append(
                (
                    "federal_case_rise",
                    f"Federal-programme cases of Dr {row['last_name']} rose from "
                    f"{guard['base_federal_cases']} (base year) to "
                    f"{guard['current_federal_cases']}.",
                )
            )
        if guard["notice_flag"]:
            checks.append(
                (
                    "missing_patient_notice",
                    f"{guard['cases_without_notice']} case(s) of Dr {row['last_name']} "
                    "have no patient-notice record.",
                )
            )
        for code, message in checks:
            kind, severity = SAFEGUARD_KINDS[code]
            flags.append(
                _flag_raise(
                    organization=calculation.organization,
                    kind=kind,
                    key=f"savings:{agreement.pk}:{year.number}:{row['physician_id']}:{code}",
                    message=message,
                    agreement=agreement,
                    programme_year=year,
                    physician=physician,
                    severity=severity,
                    data={
                        "calculation_id": calculation.pk,
                        "check": code,
                        **guard,
                        "tolerance_pct": result["terms"]["severity_tolerance_pct"],
                    },
                )
            )
    for flag in result["flags"]:
        if flag["code"] == "quality_gate":
            kind, severity = SAFEGUARD_KINDS["quality_gate"]
            flags.append(
                _flag_raise(
                    organization=calculation.organization,
                    kind=kind,
                    key=f"savings:{agreement.pk}:{year.number}:quality_gate",
                    message=f"Key quality indicators worse than baseline: {flag['message']}",
                    agreement=agreement,
                    programme_year=year,
                    severity=severity,
                    data={
                        "calculation_id": calculation.pk,
                        "key_indicators": result["key_indicators"],
                    },
                )
            )
        elif flag["code"] == "no_entitled_physicians":
            # Spec 4 edge case "nobody entitled": a blocking compliance flag says why.
            kind, severity = SAFEGUARD_KINDS["no_entitled_physicians"]
            flags.append(
                _flag_raise(
                    organization=calculation.organization,
                    kind=kind,
                    key=f"savings:{agreement.pk}:{year.number}:no_entitled_physicians",
                    message=f"Nothing is paid for {year.label}: {flag['message']}.",
                    agreement=agreement,
                    programme_year=year,
                    severity=severity,
                    blocking=True,
                    data={
                        "calculation_id": calculation.pk,
                        "withheld": result["withheld_no_entitled"],
                    },
                )
            )
    return flags


@transaction.atomic
def participation_terminate_for_cause(
    *, flag: ComplianceFlag, termination_date: dt.date, reason: str, user: User | None
) -> Participation:
    """The programme committee terminates the flagged physician for cause; the flag is resolved
    with the decision. The physician forfeits the share of the year (spec 4 split step 5)."""
    flag = ComplianceFlag.objects.select_for_update().get(pk=flag.pk)
    if flag.resolved_at is not None:
        raise ValidationError("This flag is already resolved.")
    if flag.physician_id is None or flag.agreement_id is None:
        raise ValidationError("This flag is not about a participating physician.")
    if not (reason or "").strip():
        raise ValidationError({"reason": "Record the committee's reason."})
    participation = Participation.objects.select_for_update().get(
        agreement_id=flag.agreement_id, physician_id=flag.physician_id
    )
    if termination_date < participation.join_date:
        raise ValidationError(
            {"termination_date": "The termination date is before the physician joined."}
        )
    participation.termination_date = termination_date
    participation.for_cause = True
    participation.termination_reason = reason.strip()
    participation.save()
    flag.resolved_at = timezone.now()
    flag.resolved_by = user
    flag.resolution_note = (
        f"Terminated for cause on {termination_date.isoformat()} by the "
        f"programme committee: {reason.strip()}"
    )
    flag.save(update_fields=["resolved_at", "resolved_by", "resolution_note"])
    event_record(
        organization=flag.organization,
        name="savings.terminated_for_cause",
        actor=user,
        obj=participation,
        summary=flag.resolution_note[:300],
        data={"flag_id": flag.pk},
    )
    return participation


# --------------------------------------------------------------------------------------------
# Design phase


def opportunity_analysis_run(
    *,
    agreement: Agreement,
    base_year: int,
    case_types: list[str] | None = None,
    item_codes: list[str] | None = None,
) -> engine.OpportunityAnalysis:
    data_import = selectors.import_current(
        agreement=agreement, kind=ImportKind.USAGE, base_year=base_year
    )
    if data_import is None:
        raise engine.SavingsInputError(f"base-year {base_year} usage has not been imported")
    return engine.opportunity_analysis(
        usage=selectors.usage_columns(data_import=data_import),
        case_types=case_types or None,
        item_codes=item_codes or None,
    )


# --------------------------------------------------------------------------------------------
# The item master (issue 17): import, and assigning items to opportunities many at once


ITEM_IMPORT_JOB_KIND = "savings.item_import"


def _item_canonical(item_import: ItemImport) -> master_imports.CanonicalTable:
    table = master_imports.table_of(item_import)
    layout = next((lay for lay in items.LAYOUTS if lay.key == item_import.layout), None)
    return master_imports.layout_apply(
        table, layout or master_imports.layout_detect(items.LAYOUTS, table.columns)
    )


@transaction.atomic
def item_import_receive(*, organization: Any, upload: Any, user: User | None) -> ItemImport:
    """Keep the uploaded item master with its SHA-256, awaiting confirmation."""
    facts = master_imports.upload_prepare(upload=upload, kind="items")
    item_import = ItemImport(
        organization=organization, uploaded_by=user, layout=items.CANONICAL.key, **facts
    )
    master_imports.file_store(item_import, upload)
    item_import.save()
    event_record(
        organization=organization,
        name="items.file_uploaded",
        actor=user,
        obj=item_import,
        summary=f"{item_import} sha256 {item_import.sha256[:12]}",
        data={"sha256": item_import.sha256, "size": item_import.size},
    )
    return item_import


def item_import_preview(*, item_import: ItemImport) -> dict[str, Any]:
    """The fields found, the first rows and every row's problems (checked again on apply)."""
    try:
        canonical = _item_canonical(item_import)
    except uploads.FileProblem as problem:
        return {"error": problem.message, "problems": [], "missing": [], "mapping": [], "rows": []}
    result = master_imports.preview(canonical, required=items.REQUIRED, labels=items.FIELD_LABELS)
    _rows, problems = items.parse_items(canonical)
    result.update(error="", problems=problems.as_list(), problem_count=problems.total)
    return result


def item_import_start(*, item_import: ItemImport, user: User | None) -> Job:
    from .tasks import item_import_task

    return master_imports.master_import_start(
        instance=item_import, user=user, job_kind=ITEM_IMPORT_JOB_KIND, task=item_import_task
    )


def item_import_discard(*, item_import: ItemImport, user: User | None) -> ItemImport:
    return master_imports.master_import_discard(
        instance=item_import, user=user, event="items.discarded"
    )


@transaction.atomic
def item_import_apply(*, item_import: ItemImport, user: User | None) -> dict[str, int]:
    """Create the new codes and update the changed ones (each with its history); codes not in
    the file stay as they are. One problem anywhere: nothing is stored."""
    try:
        canonical = _item_canonical(item_import)
    except uploads.FileProblem as problem:
        raise master_imports.refused_reading(problem) from problem
    rows, problems = items.parse_items(canonical)
    if problems:
        raise master_imports.ImportRefused(problems)
    organization = item_import.organization
    existing: dict[str, Item] = {}
    codes = [r.code for r in rows]
    for start in range(0, len(codes), 5000):
        chunk = codes[start : start + 5000]
        for item in Item.objects.filter(
            organization=organization, code__in=chunk
        ).select_for_update():
            existing[item.code] = item
    fields = [f for f in items.FIELDS if f != "code"]
    new: list[Item] = []
    changed: list[Item] = []
    for row in rows:
        item = existing.get(row.code)
        if item is None:
            new.append(
                Item(organization=organization, **{f: getattr(row, f) for f in items.FIELDS})
            )
        elif any(getattr(item, f) != getattr(row, f) for f in fields):
            for f in fields:
                setattr(item, f, getattr(row, f))
            item.updated_at = timezone.now()
            changed.append(item)
    if new:
        bulk_create_with_history(new, Item, batch_size=2000, default_user=user)
    if changed:
        bulk_update_with_history(
            changed, Item, [*fields, "updated_at"], batch_size=2000, default_user=user
        )
    return {
        "items_created": len(new),
        "items_updated": len(changed),
        "items_unchanged": len(rows) - len(new) - len(changed),
    }


def _assignable(opportunity: SavingsOpportunity) -> None:
    try:
        _frozen_check(opportunity)
    except ValidationError as error:
        raise ValidationError({"opportunity": error.messages[0]}, code="frozen") from None


@transaction.atomic
def opportunity_items_assign(
    *, opportunity: SavingsOpportunity, codes: Iterable[str], user: User | None
) -> list[str]:
    """Add item codes of the master to an opportunity (those already in it are left); the
    engine reads ``item_codes`` as before. Returns the codes added."""
    opportunity = SavingsOpportunity.objects.select_for_update().get(pk=opportunity.pk)
    _assignable(opportunity)
    wanted = sorted({str(c).strip() for c in codes if str(c).strip()})
    if not wanted:
        raise ValidationError({"items": "Select at least one item."}, code="required")
    known = set(Item.objects.filter(code__in=wanted).values_list("code", flat=True))
    unknown = [c for c in wanted if c not in known]
    if unknown:
        raise ValidationError(
            {"items": f"Not in the item master: {', '.join(unknown[:10])}."}, code="unknown_item"
        )
    added = [c for c in wanted if c not in set(opportunity.item_codes)]
    if added:
        opportunity.item_codes = sorted({*opportunity.item_codes, *added})
        opportunity.save(update_fields=["item_codes"])
        event_record(
            organization=opportunity.organization,
            name="savings.items_assigned",
            actor=user,
            obj=opportunity,
            summary=f"{opportunity}: {len(added)} item{'s' if len(added) != 1 else ''} added",
            data={"added": added},
        )
    return added


@transaction.atomic
def opportunity_items_unassign(
    *, opportunity: SavingsOpportunity, codes: Iterable[str], user: User | None
) -> list[str]:
    """Take item codes out of an opportunity; at least one must stay (an opportunity names
    its items). Returns the codes removed."""
    opportunity = SavingsOpportunity.objects.select_for_update().get(pk=opportunity.pk)
    _assignable(opportunity)
    unwanted = {str(c).strip() for c in codes}
    removed = [c for c in opportunity.item_codes if c in unwanted]
    if not removed:
        raise ValidationError(
            {"items": "None of the selected items is assigned to this opportunity."},
            code="not_assigned",
        )
    remaining = [c for c in opportunity.item_codes if c not in unwanted]
    if not remaining:
        raise ValidationError(
            {"items": "An opportunity keeps at least one item: assign another one first."},
            code="required",
        )
    opportunity.item_codes = remaining
    opportunity.save(update_fields=["item_codes"])
    event_record(
        organization=opportunity.organization,
        name="savings.items_unassigned",
        actor=user,
        obj=opportunity,
        summary=f"{opportunity}: {len(removed)} item{'s' if len(removed) != 1 else ''} removed",
        data={"removed": removed},
    )
    return removed
