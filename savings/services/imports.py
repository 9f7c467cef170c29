"""Case-level cost data imports: receive, preview, read the head, map, start, apply (usage and
prices), discard, or import straight from a path.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import zipfile
from decimal import Decimal
from pathlib import Path
from typing import Any

from django.core.exceptions import ValidationError
from django.core.files import File
from django.core.files.uploadedfile import UploadedFile
from django.db import OperationalError, transaction
from django.db.models import Max
from django.utils import timezone

from agreements.models import (
    Agreement,
    Physician,
    ProgrammeYear,
)
from comanage.core import uploads
from comanage.core.audit import event_record
from comanage.core.import_mappings import import_mapping_resolve, import_mappings_saved
from comanage.core.jobs import job_create, job_enqueue, job_progress
from comanage.core.models import Job, User
from comanage.core.security import case_ids_for_storage
from comanage.core.tabular.mapping import ColumnMapping, FieldSet, MappedBatches
from comanage.core.tabular.mapping import check as tabular_check
from comanage.core.tabular.problems import TableRefused
from comanage.core.tabular.step import mapping_step, sheet_to_read

from .. import case_rows, importing, selectors
from ..models import (
    DataImport,
    ImportKind,
    ImportPeriod,
    ImportStatus,
    PriceItem,
)

IMPORT_JOB_KIND = "savings.import"


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
        from ..tasks import data_import_head_task

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
        heads = head.get("rows") or {}
        if sheet not in sheets:
            sheet = sheet_to_read(heads, fields=_fields(data_import.kind), saved=saved)
        rows = heads.get(sheet, [])
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
    from ..tasks import data_import_task

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
    """Batches, each with the file's number of its first row, until the file stops being
    readable; that is a problem named by row, not a crash. ``row`` is the row after the last
    batch given; ``rows`` counts the rows given."""

    def __init__(
        self, data_import: DataImport, problems: importing.Problems, names: list[str], row: int
    ):
        self.data_import, self.problems, self.names = data_import, problems, names
        self.row = row
        self.rows = 0

    def batches(self, batches: Any) -> Any:
        try:
            for first, batch in batches:
                yield first, batch
                self.row = first + batch.num_rows
                self.rows += batch.num_rows
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
    mapped = MappedBatches(
        fields=fields,
        mapping=mapping,
        first_row=mapping.header_row + 1,
        dictionary=data_import.kind == ImportKind.USAGE,
    )
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
    reading = _Reading(data_import, problems, names, first)  # the row after the header
    try:
        for row, batch in reading.batches(batches):
            if mapped is not None:
                batch = _convert(mapped, batch, row)
            table = importing.validate_usage_batch(
                batch, first_row=row, rules=rules, problems=problems
            )
            case_ids.append(table.column("case_id").combine_chunks())
            items.append(table.column("item_code").combine_chunks())
            case_fields.append(table.select(["case_id", *case_rows.CASE_FIELDS]))
            starts.append(row)
            problems.trim()
            if not problems.total:
                # Duplicate checks and messages use the file's own ids; storage may hash them.
                stored_ids = case_ids_for_storage(data_import.organization, table.column("case_id"))
                loader.add(
                    table.set_column(table.schema.get_field_index("case_id"), "case_id", stored_ids)
                )
        if not problems.total and reading.rows:
            # The rows are published (on PostgreSQL the staging table becomes the import's
            # partition) while the whole file is checked for duplicate rows; a duplicate raises
            # below and the transaction takes the rows back out.
            if job_id is not None:
                job_progress(job_id, 90, "Writing the rows")
            loader.start_publish()
        # The case ids numbered once for the whole file: both checks and the count use them.
        case_codes = case_rows.codes(importing.pa.chunked_array(case_ids, importing.pa.string()))
        case_rows.case_agreement_checks(problems, case_fields, starts, case_codes=case_codes)
        importing.duplicate_checks(problems, case_ids, items, starts, case_codes=case_codes)
        if not reading.rows and not problems.total:
            problems.add(row=None, column="", message="the file has no data rows")
        if problems.total:
            problems.trim()
            raise ImportRefused(problems)
        loader.finish()
    finally:
        loader.close()
    # The file's distinct cases, counted here rather than by a query over the rows just written
    # (the case ids have no null: one number each, plus the one kept for a null).
    return loader.rows, case_codes[1] - 1


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
    reading = _Reading(data_import, problems, names, row)
    for row, batch in reading.batches(batches):
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
        uploads.stored_file_remove_on_commit(data_import.file)
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
