"""Imports of reference lists (the physician roster, the item master): small files read whole,
checked row by row, applied whole or not at all.

The pieces, in the order a file goes through them:

* :func:`read_table`: a CSV or XLSX file as a :class:`Table` (the file's own headers, every
  value as text, the file's row numbers);
* :func:`layout_apply`: a named :class:`Layout` renames the file's headers to the importer's
  canonical fields (:class:`CanonicalTable`). This is the step the column-mapping module will
  replace; the importers (``agreements.roster``, ``savings.items``) read canonical tables only;
* the importer's parser checks every row and returns clean rows or :class:`Problems`;
* the app's service applies the clean rows in one transaction, in a Celery job.

:class:`MasterImport` is the abstract record of one uploaded file (kept with its SHA-256, who
uploaded it, its status and the job that applied or refused it); each app has its own.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
import re
import zipfile
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, TypeVar

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.files import File
from django.core.files.uploadedfile import UploadedFile
from django.db import models

from . import uploads
from .tenancy import TenantModel

MAX_PROBLEMS_KEPT = 100
MAX_ROWS = 200_000
PREVIEW_ROWS = 10
XLSX_MAX_EXPANDED_BYTES = 256 << 20


class MasterImportStatus(models.TextChoices):
    UPLOADED = "uploaded", "Awaiting confirmation"
    QUEUED = "queued", "Queued"
    APPLIED = "applied", "Applied"
    FAILED = "failed", "Refused"
    CANCELLED = "cancelled", "Discarded"


def _master_import_path(instance: MasterImport, filename: str) -> str:
    # Under MEDIA_ROOT, which has no public URL: served only through a view, if at all.
    return (
        f"org-{instance.organization_id}/{instance._meta.model_name}/"
        f"{instance.sha256[:16]}-{filename}"
    )


class MasterImport(TenantModel):
    """One uploaded reference file, awaiting confirmation, applied or refused (audited)."""

    file = models.FileField(upload_to=_master_import_path, max_length=300, blank=True)
    original_name = models.CharField(max_length=255)
    sha256 = models.CharField(max_length=64)
    size = models.PositiveBigIntegerField(default=0)
    file_format = models.CharField(max_length=5, default="csv")
    layout = models.CharField(max_length=20, help_text="The named column layout read.")
    status = models.CharField(
        max_length=10, choices=MasterImportStatus.choices, default=MasterImportStatus.UPLOADED
    )
    job = models.ForeignKey(
        "core.Job", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    summary = models.JSONField(default=dict, blank=True, help_text="What the import changed.")
    uploaded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    uploaded_at = models.DateTimeField(auto_now_add=True)
    applied_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        abstract = True
        ordering = ["-uploaded_at", "-id"]

    def __str__(self) -> str:
        return f"{self._meta.verbose_name} #{self.pk} · {self.original_name}"


_Import = TypeVar("_Import", bound=MasterImport)


# --------------------------------------------------------------------------------------------
# Problems


@dataclass
class Problem:
    row: int | None
    column: str
    message: str

    def as_dict(self) -> dict[str, Any]:
        return {"row": self.row, "column": self.column, "message": self.message}


@dataclass
class Problems:
    """Row, column (the file's own header) and reason; the first 100 are kept, all counted."""

    items: list[Problem] = field(default_factory=list)
    total: int = 0

    def add(self, *, row: int | None, column: str, message: str) -> None:
        self.total += 1
        if len(self.items) < MAX_PROBLEMS_KEPT:
            self.items.append(Problem(row, column, message))

    def __bool__(self) -> bool:
        return self.total > 0

    def as_list(self) -> list[dict[str, Any]]:
        return [p.as_dict() for p in self.items]


class ImportRefused(Exception):
    """The file has problems; nothing was stored."""

    def __init__(self, problems: Problems, message: str = ""):
        self.problems = problems
        self.message = message or (
            f"{problems.total} problem{'s' if problems.total != 1 else ''} found; "
            "nothing was changed."
        )
        super().__init__(self.message)


# --------------------------------------------------------------------------------------------
# Reading


@dataclass
class Table:
    """A file as read: its headers, every value as text, and the file row of each row."""

    columns: list[str]
    rows: list[list[str]]
    row_numbers: list[int]


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, dt.datetime):
        return value.date().isoformat() if value.time() == dt.time() else value.isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))  # an NPI or a code stored as a number
    return str(value).strip()


def _csv_rows(stream: IO[bytes]) -> Iterator[list[str]]:
    data = stream.read()
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise uploads.FileProblem(
            f"the file is not UTF-8 text (byte {exc.start + 1:,}); save it as CSV UTF-8"
        ) from exc
    yield from csv.reader(io.StringIO(text, newline=""))


def _xlsx_rows(stream: IO[bytes]) -> Iterator[list[str]]:
    from openpyxl import load_workbook

    uploads.xlsx_check(stream)
    # A reference file is read in the web request for its preview: a tighter cap on what the
    # workbook expands to than the worker's (Python's zipfile never inflates past it).
    with zipfile.ZipFile(stream) as archive:
        expanded = sum(entry.file_size for entry in archive.infolist())
    stream.seek(0)
    if expanded > XLSX_MAX_EXPANDED_BYTES:
        raise uploads.FileProblem(
            f"the workbook expands to {expanded / (1 << 20):,.0f} MB, over the limit of "
            f"{XLSX_MAX_EXPANDED_BYTES >> 20} MB for this import; save it as CSV UTF-8 instead"
        )
    try:
        workbook = load_workbook(stream, read_only=True, data_only=True)
    except (zipfile.BadZipFile, OSError, ValueError, KeyError) as exc:
        raise uploads.FileProblem(f"the workbook cannot be read: {str(exc)[:200]}") from exc
    try:
        sheet = workbook.worksheets[0]
        for values in sheet.iter_rows(values_only=True):
            yield [_cell(v) for v in values]
    finally:
        workbook.close()


def read_table(stream: IO[bytes], *, file_format: str, max_rows: int = MAX_ROWS) -> Table:
    """The first non-empty row is the header; empty rows are skipped; row numbers are the
    file's (the header's row is 1 when it is the first line). Raises ``FileProblem``."""
    stream.seek(0)
    try:
        source = _xlsx_rows(stream) if file_format == "xlsx" else _csv_rows(stream)
        header: list[str] | None = None
        rows: list[list[str]] = []
        numbers: list[int] = []
        for number, values in enumerate(source, start=1):
            cells = [v.strip() if isinstance(v, str) else _cell(v) for v in values]
            if not any(cells):
                continue
            if header is None:
                while cells and not cells[-1]:
                    cells.pop()  # Excel's empty cells right of the header
                header = cells
                continue
            if len(cells) > len(header) and any(cells[len(header) :]):
                raise uploads.FileProblem(
                    f"this row has {len(cells)} values but the header names {len(header)} columns",
                    row=number,
                )
            if len(rows) >= max_rows:
                raise uploads.FileProblem(
                    f"the file has more than {max_rows:,} rows, the limit for this import; "
                    "split it",
                    row=number,
                )
            cells = (cells + [""] * len(header))[: len(header)]
            rows.append(cells)
            numbers.append(number)
    except csv.Error as exc:
        raise uploads.FileProblem(f"the CSV cannot be read: {exc}") from exc
    if header is None:
        raise uploads.FileProblem("the file is empty: no header row")
    if not rows:
        raise uploads.FileProblem("the file has a header but no rows", row=2)
    return Table(columns=header, rows=rows, row_numbers=numbers)


# --------------------------------------------------------------------------------------------
# Layouts: the file's headers -> canonical fields


def header_key(text: str) -> str:
    """How headers are compared: case, spaces, dashes and underscores do not matter."""
    return re.sub(r"[\s_\-]+", " ", text.strip().casefold())


@dataclass(frozen=True)
class Layout:
    """A named set of header -> field renames (the built-in "saved mappings")."""

    key: str
    label: str
    columns: dict[str, str]  # header as written in such files -> canonical field
    signature: tuple[str, ...] = ()  # headers that identify such a file

    def field_for(self, header: str) -> str | None:
        wanted = header_key(header)
        for name, canonical in self.columns.items():
            if header_key(name) == wanted:
                return canonical
        return None

    def matches(self, headers: Iterable[str]) -> bool:
        keys = {header_key(h) for h in headers}
        return bool(self.signature) and all(header_key(s) in keys for s in self.signature)


@dataclass
class CanonicalTable:
    """Rows keyed by canonical field; ``sources`` names each field's column in the file."""

    fields: list[str]
    rows: list[dict[str, str]]
    row_numbers: list[int]
    sources: dict[str, str]
    ignored: list[str]

    def source(self, name: str) -> str:
        return self.sources.get(name, name)


def layout_detect(layouts: list[Layout], headers: list[str]) -> Layout:
    """The first layout whose signature headers are all in the file; else the first one."""
    for layout in layouts:
        if layout.matches(headers):
            return layout
    return layouts[0]


def layout_apply(table: Table, layout: Layout) -> CanonicalTable:
    """Rename the file's columns; two columns that read as one field is a ``FileProblem``."""
    sources: dict[str, str] = {}
    positions: dict[str, int] = {}
    ignored: list[str] = []
    for index, header in enumerate(table.columns):
        name = layout.field_for(header) if header else None
        if name is None:
            if header:
                ignored.append(header)
            continue
        if name in sources:
            raise uploads.FileProblem(
                f"the columns “{sources[name]}” and “{header}” both give the "
                f"{name.replace('_', ' ')}; remove one of them",
                row=1,
            )
        sources[name] = header
        positions[name] = index
    rows = [{name: values[i] for name, i in positions.items()} for values in table.rows]
    return CanonicalTable(
        fields=list(positions),
        rows=rows,
        row_numbers=table.row_numbers,
        sources=sources,
        ignored=ignored,
    )


def preview(
    canonical: CanonicalTable,
    *,
    required: Iterable[str],
    labels: Mapping[str, str],
    rows: int = PREVIEW_ROWS,
) -> dict[str, Any]:
    """What the upload page shows before confirming: the fields found (with their ``labels``
    and the column each came from), the required ones missing (by label), the ignored columns
    and the first rows."""
    return {
        "mapping": [
            {"field": f, "label": labels[f], "column": canonical.source(f)}
            for f in canonical.fields
        ],
        "missing": [labels[name] for name in required if name not in canonical.sources],
        "ignored": canonical.ignored,
        "rows": [[row.get(f, "") for f in canonical.fields] for row in canonical.rows[:rows]],
        "row_count": len(canonical.rows),
    }


# --------------------------------------------------------------------------------------------
# Receiving a file


def sha256_of(handle: Any) -> tuple[str, int]:
    digest = hashlib.sha256()
    size = 0
    handle.seek(0)
    for chunk in iter(lambda: handle.read(1 << 20), b""):
        digest.update(chunk)
        size += len(chunk)
    handle.seek(0)
    return digest.hexdigest(), size


def upload_prepare(*, upload: UploadedFile | File, kind: str) -> dict[str, Any]:
    """Check an upload's name and size before anything reads it; its SHA-256 and format."""
    name = Path(getattr(upload, "name", "") or "upload.csv").name
    suffix = name.rsplit(".", 1)[-1].lower() if "." in name else ""
    if suffix not in ("csv", "xlsx", "txt"):
        raise ValidationError(
            {"file": "Upload a CSV (.csv, .txt) or an Excel workbook (.xlsx)."}, code="file_type"
        )
    uploads.upload_size_check(kind=kind, size=getattr(upload, "size", None))
    sha256, size = sha256_of(upload)
    uploads.upload_size_check(kind=kind, size=size)
    return {
        "original_name": name[:255],
        "sha256": sha256,
        "size": size,
        "file_format": "xlsx" if suffix == "xlsx" else "csv",
    }


def file_store(instance: MasterImport, upload: UploadedFile | File) -> None:
    instance.file.save(
        instance.original_name, upload if isinstance(upload, File) else File(upload), save=False
    )


def table_of(instance: MasterImport) -> Table:
    """The stored file as a table (``FileProblem`` when it cannot be read)."""
    if not instance.file:
        raise uploads.FileProblem("the file was removed (the import was discarded)")
    with instance.file.open("rb") as handle:
        return read_table(handle, file_format=instance.file_format)


# --------------------------------------------------------------------------------------------
# The life of an import (each app's services call these with its own model, job kind, task)


def master_import_start(*, instance: MasterImport, user: Any, job_kind: str, task: Any) -> Any:
    """Confirm: queue the import as a job (the worker applies it whole or refuses it)."""
    from .jobs import job_create, job_enqueue

    if instance.status not in (MasterImportStatus.UPLOADED, MasterImportStatus.FAILED):
        raise ValidationError(
            f"This import is {instance.get_status_display().lower()}: it cannot be started again.",
            code="state",
        )
    job = job_create(
        organization=instance.organization,
        kind=job_kind,
        user=user,
        params={"import_id": instance.pk, "file": instance.original_name},
        dedupe_key=f"{job_kind}:{instance.pk}:{instance.sha256}:{instance.job_id or 0}",
    )
    instance.job = job
    instance.status = MasterImportStatus.QUEUED
    instance.save(update_fields=["job", "status"])
    job_enqueue(job=job, task=task)
    return job


def master_import_discard(*, instance: _Import, user: Any, event: str) -> _Import:
    """Discard an import never applied: its file is removed; nothing else changes (audited)."""
    from .audit import event_record

    if instance.status in (MasterImportStatus.APPLIED, MasterImportStatus.CANCELLED):
        raise uploads.ImportNotDiscardable(
            f"This import is {instance.get_status_display().lower()}: it cannot be discarded.",
            code="state",
        )
    uploads.import_job_release(job_id=instance.job_id)
    if instance.file:
        instance.file.delete(save=False)
    instance.status = MasterImportStatus.CANCELLED
    instance.save(update_fields=["file", "status"])
    event_record(
        organization=instance.organization,
        name=event,
        actor=user,
        obj=instance,
        summary=f"{instance}: discarded",
    )
    return instance


def master_import_run(
    *, instance: MasterImport, job: Any, apply: Any, event: str, result_url: str
) -> None:
    """The task's body: apply, or record the problems; the job says which."""
    from django.utils import timezone

    from .audit import event_record
    from .jobs import job_fail, job_progress, job_succeed

    job_progress(job.pk, 5, "Reading the file")
    try:
        summary = apply(instance=instance, user=job.created_by)
    except ImportRefused as refused:
        type(instance).objects.filter(pk=instance.pk).update(status=MasterImportStatus.FAILED)
        event_record(
            organization=instance.organization,
            name=f"{event}_refused",
            actor=job.created_by,
            obj=instance,
            summary=f"{instance}: {refused.message}",
        )
        job_fail(
            job.pk,
            message=refused.message,
            errors=refused.problems.as_list(),
            error_count=refused.problems.total,
        )
        return
    except Exception:
        type(instance).objects.filter(pk=instance.pk).update(status=MasterImportStatus.FAILED)
        raise
    type(instance).objects.filter(pk=instance.pk).update(
        status=MasterImportStatus.APPLIED, summary=summary, applied_at=timezone.now()
    )
    event_record(
        organization=instance.organization,
        name=event,
        actor=job.created_by,
        obj=instance,
        summary=f"{instance}: "
        + ", ".join(f"{v} {k.replace('_', ' ')}" for k, v in summary.items()),
        data=summary,
    )
    job_succeed(
        job.pk,
        message="Applied: "
        + ", ".join(f"{v} {k.replace('_', ' ')}" for k, v in summary.items())
        + ".",
        result={"import_id": instance.pk, **summary},
        result_url=result_url,
    )


def refused_reading(exc: uploads.FileProblem) -> ImportRefused:
    problems = Problems()
    problems.add(row=exc.row, column="", message=exc.message)
    return ImportRefused(problems)


def summary_lines(summary: dict[str, Any]) -> list[tuple[str, int]]:
    """``{"physicians_created": 3}`` as ``[("Physicians created", 3)]`` for the pages."""
    return [(key.replace("_", " ").capitalize(), value) for key, value in summary.items()]


def master_import_apply_now(*, instance: MasterImport, apply: Any, user: Any) -> dict[str, Any]:
    """Apply at once, without a job (demo data, commands): the same record as the job leaves."""
    from django.utils import timezone

    summary = apply(instance=instance, user=user)
    instance.status = MasterImportStatus.APPLIED
    instance.summary = summary
    instance.applied_at = timezone.now()
    instance.save(update_fields=["status", "summary", "applied_at"])
    return summary
