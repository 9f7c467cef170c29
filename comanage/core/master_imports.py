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
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, TypeVar

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.files import File
from django.core.files.uploadedfile import UploadedFile
from django.db import models

from . import uploads
from .tabular import formats
from .tabular.mapping import ColumnMapping, Field, FieldSet, MappedBatches, check, unique_names
from .tabular.problems import MAX_PROBLEMS, Problem, Problems, TableRefused
from .tabular.step import mapping_step
from .tabular.workbook import HEAD_SHEETS
from .tenancy import TenantModel

__all__ = ["Problem", "Problems"]  # the tabular collector, as the importers name it

MAX_PROBLEMS_KEPT = MAX_PROBLEMS
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


class MappedImport(models.Model):
    """What every import read through the mapping step records: the saved mapping that read
    the file, if one did, and how the file was read (kept with the import, as it was then)."""

    mapping = models.ForeignKey(
        "core.ImportMapping",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        help_text="The saved mapping that read the file (none: the columns as proposed, or the "
        "canonical layout).",
    )
    mapping_used = models.JSONField(
        default=dict,
        blank=True,
        help_text="How the file was read: columns to fields, date format, header row, sheet, "
        "and the mapping's name and version.",
    )

    class Meta:
        abstract = True


class MasterImport(TenantModel, MappedImport):
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

    @property
    def mapping_label(self) -> str:
        """Which saved mapping read the file, in words ("" for the built-in layouts)."""
        used = self.mapping_used or {}
        if used.get("name"):
            return f"{used['name']}, version {used.get('version', 1)}"
        return ""


_Import = TypeVar("_Import", bound=MasterImport)


# --------------------------------------------------------------------------------------------
# Problems: the one collector of comanage.core.tabular (row, column, reason)


class ImportRefused(TableRefused):
    """The file has problems; nothing was stored."""

    def __init__(self, problems: Problems, message: str = ""):
        self.message = message or (
            f"{problems.total} problem{'s' if problems.total != 1 else ''} found; "
            "nothing was changed."
        )
        super().__init__(problems, self.message)


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
    reader = csv.reader(io.StringIO(text, newline=""))
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            raise _CsvRowUnreadable(exc, text, reader.line_num) from exc
        yield row


def _csv_problem(exc: csv.Error, header: list[str] | None) -> uploads.FileProblem:
    if isinstance(exc, _CsvRowUnreadable):
        return exc.problem(header)
    return uploads.FileProblem(f"the CSV cannot be read: {exc}")


class _CsvRowUnreadable(csv.Error):
    """A CSV row the csv module refuses (a cell over its size limit): its line and, for a
    cell too long, which field it is (by position, named by the header later)."""

    def __init__(self, error: csv.Error, text: str, line: int):
        super().__init__(str(error))
        self.line = line
        self.position: int | None = None
        if "field larger than field limit" in str(error):
            limit = csv.field_size_limit()
            lines = text.splitlines()
            fields = lines[line - 1].split(",") if 0 < line <= len(lines) else []
            self.position = next((i for i, f in enumerate(fields) if len(f) > limit), None)

    def problem(self, header: list[str] | None) -> uploads.FileProblem:
        """The row, the column (the file's own header) and the reason."""
        if self.position is None:
            return uploads.FileProblem(f"the CSV cannot be read: {self}", row=self.line)
        column = (
            header[self.position]
            if header is not None and self.position < len(header)
            else f"column {self.position + 1}"
        )
        return uploads.FileProblem(
            f"the cell is longer than {csv.field_size_limit():,} characters",
            row=self.line,
            column=column,
        )


def _workbook(stream: IO[bytes]) -> Any:
    """The workbook, read-only, once its sizes are checked (``FileProblem`` otherwise)."""
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
        return load_workbook(stream, read_only=True, data_only=True)
    except (zipfile.BadZipFile, OSError, ValueError, KeyError) as exc:
        raise uploads.FileProblem(f"the workbook cannot be read: {str(exc)[:200]}") from exc


def sheet_names(stream: IO[bytes]) -> list[str]:
    stream.seek(0)
    workbook = _workbook(stream)
    try:
        return list(workbook.sheetnames)
    finally:
        workbook.close()


def _xlsx_rows(stream: IO[bytes], sheet: str = "") -> Iterator[list[str]]:
    workbook = _workbook(stream)
    try:
        if sheet and sheet not in workbook.sheetnames:
            raise uploads.FileProblem(f"the workbook has no sheet named “{sheet[:100]}”")
        ws = workbook[sheet] if sheet else workbook.worksheets[0]
        for values in ws.iter_rows(values_only=True):
            yield [_cell(v) for v in values]
    finally:
        workbook.close()


def head_rows(stream: IO[bytes], *, file_format: str, sheet: str = "", rows: int = 40) -> list:
    """The first rows of the file (or of the sheet) as text, for the mapping step; blank rows
    kept, so that a row's place is its number in the file."""
    from .tabular.header import csv_head_rows

    if file_format != "xlsx":
        return csv_head_rows(stream)
    stream.seek(0)
    out: list[list[str]] = []
    for values in _xlsx_rows(stream, sheet):
        out.append([v.strip() for v in values])
        if len(out) >= rows:
            break
    stream.seek(0)
    return out


def _body_row(
    cells: list[str], header: list[str], number: int, full: bool, max_rows: int
) -> list[str]:
    """A data row as wide as the header; ``FileProblem`` for a row too wide, or one too many."""
    if len(cells) > len(header) and any(cells[len(header) :]):
        raise uploads.FileProblem(
            f"this row has {len(cells)} values but the header names {len(header)} columns",
            row=number,
        )
    if full:
        raise uploads.FileProblem(
            f"the file has more than {max_rows:,} rows, the limit for this import; split it",
            row=number,
        )
    return (cells + [""] * len(header))[: len(header)]


def read_table(
    stream: IO[bytes],
    *,
    file_format: str,
    max_rows: int = MAX_ROWS,
    header_row: int | None = None,
    sheet: str = "",
) -> Table:
    """The header is the row ``header_row`` (title rows above it skipped), else the first
    non-empty row; empty rows are skipped; row numbers are the file's (the header's row is 1
    when it is the first line). Raises ``FileProblem``."""
    stream.seek(0)
    try:
        source = _xlsx_rows(stream, sheet) if file_format == "xlsx" else _csv_rows(stream)
        header: list[str] | None = None
        rows: list[list[str]] = []
        numbers: list[int] = []
        for number, values in enumerate(source, start=1):
            if header_row is not None and number < header_row:
                continue
            cells = [v.strip() if isinstance(v, str) else _cell(v) for v in values]
            if not any(cells):
                if number == header_row:
                    raise uploads.FileProblem(f"row {number} is empty: no header there", row=number)
                continue
            if header is None:
                while cells and not cells[-1]:
                    cells.pop()  # Excel's empty cells right of the header
                header = cells
                continue
            rows.append(_body_row(cells, header, number, len(rows) >= max_rows, max_rows))
            numbers.append(number)
    except csv.Error as exc:
        raise _csv_problem(exc, header) from exc
    if header is None:
        where = f"the sheet “{sheet[:100]}”" if sheet else "the file"
        raise uploads.FileProblem(f"{where} is empty: no header row")
    if not rows:
        raise uploads.FileProblem("the file has a header but no rows", row=(header_row or 1) + 1)
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
    read_as: str = ""  # the mapping or built-in layout that read it, in words

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
        "layout": canonical.read_as,
        "mapping": [
            {"field": f, "label": labels[f], "column": canonical.source(f)}
            for f in canonical.fields
        ],
        "missing": [labels[name] for name in required if name not in canonical.sources],
        "ignored": canonical.ignored,
        "rows": [[row.get(f, "") for f in canonical.fields] for row in canonical.rows[:rows]],
        "row_count": len(canonical.rows),
    }


def master_import_preview(
    *,
    instance: MasterImport,
    required: Iterable[str],
    labels: Mapping[str, str],
    check: Callable[[CanonicalTable], Problems],
) -> dict[str, Any]:
    """An upload's preview (:func:`preview`) read through its mapping, with every row's
    problems as ``check`` (the importer's own row checks) finds them; the files are small, so
    they are checked whole here and again when applied. A file that cannot be read: its
    ``error``."""
    try:
        canonical = canonical_of(instance)
    except uploads.FileProblem as problem:
        return {
            "error": problem.message,
            "problems": [],
            "problem_count": 0,
            "missing": [],
            "mapping": [],
            "rows": [],
        }
    result = preview(canonical, required=required, labels=labels)
    problems = check(canonical)
    result.update(error="", problems=problems.as_list(), problem_count=problems.total)
    return result


def field_labels(names: Iterable[str], **words: str) -> dict[str, str]:
    """Each field's label, as pages and problems name it: its name in words
    (``unit_of_measure``: "unit of measure") unless ``words`` names it otherwise."""
    return {name: words.get(name, name.replace("_", " ")) for name in names}


# --------------------------------------------------------------------------------------------
# The mapping step: the built-in layouts propose, a saved mapping reads (the same step as the
# usage, price and case-file imports: comanage.core.tabular.step, comanage.core.import_mappings)


@dataclass(frozen=True)
class MasterSpec:
    """What one kind of reference file is read into: the saved mappings' ``kind``, the
    canonical fields (their aliases are every built-in layout's headers for them), and the
    date format read when the mapping says "detect" and the dates fit two (the importer's
    documented order; "" refuses such a column)."""

    kind: str
    fields: FieldSet
    layouts: tuple[Layout, ...]
    date_default: str = ""


_SPECS: dict[str, MasterSpec] = {}


def master_spec(
    *,
    model: str,
    kind: str,
    layouts: Iterable[Layout],
    names: Iterable[str],
    labels: Mapping[str, str],
    required: Iterable[str],
    kinds: Mapping[str, str] | None = None,
    date_default: str = "",
) -> MasterSpec:
    """Build the spec of ``model`` (``"app_label.modelname"``) and register it, so that the
    shared steps below find it from an import record."""
    layouts = tuple(layouts)
    needed = set(required)
    fields = tuple(
        Field(
            name,
            labels[name][:1].upper() + labels[name][1:],
            (kinds or {}).get(name, "text"),
            name in needed,
            tuple(h for lay in layouts for h, f in lay.columns.items() if f == name),
        )
        for name in names
    )
    spec = MasterSpec(
        kind=kind, fields=FieldSet(fields), layouts=layouts, date_default=date_default
    )
    _SPECS[model] = spec
    return spec


def spec_of(instance: MasterImport) -> MasterSpec:
    return _SPECS[instance._meta.label_lower]


def _file_format(instance: MasterImport) -> str:
    return getattr(instance, "file_format", "csv")


def master_mapping_step(
    *, instance: MasterImport, sheet: str = "", header_row: int | None = None
) -> dict[str, Any]:
    """What the mapping form shows for the stored file: its sheets, the header row, each
    column with sample values and its proposed field (a saved mapping with the same header is
    chosen again)."""
    from .import_mappings import import_mappings_saved

    spec = spec_of(instance)
    if not instance.file:
        return _step_problem("the file was removed (the import was discarded)")
    saved = import_mappings_saved(kind=spec.kind)
    sheets: list[str] = []
    try:
        with instance.file.open("rb") as handle:
            if _file_format(instance) != "xlsx":
                rows = head_rows(handle, file_format="csv")
                return mapping_step(rows, fields=spec.fields, saved=saved, header_row=header_row)
            sheets = sheet_names(handle)
            if sheet in sheets:
                candidates = [sheet]
            else:
                # no sheet chosen: a saved mapping's sheet first, then each sheet in order; the
                # first whose header is found (an empty or notes sheet in front passed over)
                named = [m.mapping.sheet for m in saved if m.mapping.sheet in sheets]
                candidates = list(dict.fromkeys([*named, *sheets[:HEAD_SHEETS]]))
            first = None
            for candidate in candidates:
                rows = head_rows(handle, file_format="xlsx", sheet=candidate)
                step = mapping_step(
                    rows,
                    fields=spec.fields,
                    saved=saved,
                    sheets=sheets,
                    sheet=candidate,
                    header_row=header_row,
                )
                if step["saved"] or (step["header_row"] and not step["problems"]):
                    return step
                first = first or step
            if first is not None:
                return first
    except uploads.FileProblem as problem:
        return _step_problem(problem.message)
    except OSError:
        return _step_problem("the stored file cannot be read: upload it again")
    return _step_problem("the workbook has no sheets")


def _step_problem(message: str) -> dict[str, Any]:
    return {
        "problems": [{"row": None, "column": "", "message": message}],
        "columns": [],
        "sheets": [],
        "saved": None,
        "issues": [],
        "hints": [],
    }


def master_import_map(
    *,
    instance: MasterImport,
    user: Any,
    mapping_id: Any = None,
    columns: dict[str, str] | None = None,
    date_format: str = "auto",
    sheet: str = "",
    save_as: str = "",
) -> MasterImport:
    """Record how the file is read before it is confirmed: a saved mapping (by id), or the
    columns the user matched (saved under ``save_as`` when named), or, with neither, the
    saved mapping whose header the file has, else the built-in layouts' proposal. Raises
    ``ValidationError`` naming what is wrong (a required field with no column, two columns to
    one field, a header that cannot be found, an empty sheet)."""
    from .import_mappings import import_mapping_resolve

    if instance.status not in (MasterImportStatus.UPLOADED, MasterImportStatus.FAILED):
        raise ValidationError("This import was already started.", code="state")
    spec = spec_of(instance)
    chosen, used = import_mapping_resolve(
        organization=instance.organization,
        kind=spec.kind,
        fields=spec.fields,
        step_for=lambda sheet, header_row: master_mapping_step(
            instance=instance, sheet=sheet, header_row=header_row
        ),
        user=user,
        mapping_id=mapping_id,
        columns=columns,
        date_format=date_format,
        sheet=sheet,
        save_as=save_as,
    )
    if not used:
        # The file's own header, read by the built-in layouts (recorded all the same, so the
        # import says what read it).
        step = master_mapping_step(instance=instance, sheet=sheet)
        if step.get("header_row"):
            proposal = {c["header"]: c["field"] for c in step["columns"] if c["field"]}
            used = ColumnMapping(
                proposal, date_format, step["header_row"], step.get("sheet", "")
            ).as_json()
    instance.mapping = chosen
    instance.mapping_used = used
    instance.save(update_fields=["mapping", "mapping_used"])
    return instance


def _mapping_of(instance: MasterImport) -> tuple[ColumnMapping, str]:
    """The mapping that reads the file and its name: the one recorded; else the saved mapping
    whose header the file has; else the built-in layouts' proposal. ``FileProblem`` when the
    header cannot be found or the sheet is empty."""
    used = instance.mapping_used or {}
    if used.get("columns"):
        name = used.get("name")
        label = f"{name}, version {used.get('version', 1)}" if name else "the columns matched"
        return ColumnMapping.from_json(used), label
    step = master_mapping_step(instance=instance)
    if (
        step["problems"]
        and step.get("columns") == []
        and "header" in step["problems"][0]["message"]
    ):
        # No row names two known columns: the first row is the header when it names one
        # (the importer then names each required field it lacks).
        first = master_mapping_step(instance=instance, header_row=1)
        if not first["problems"] and any(c["field"] for c in first["columns"]):
            step = first
    if step["problems"]:
        raise uploads.FileProblem(step["problems"][0]["message"])
    if step.get("saved"):
        from .import_mappings import import_mapping_get, import_mapping_read

        saved = import_mapping_get(kind=spec_of(instance).kind, mapping_id=step["saved"]["id"])
        return import_mapping_read(saved, step), f"{saved.name}, version {saved.version}"
    proposal = {c["header"]: c["field"] for c in step["columns"] if c["field"]}
    layout = next(
        (lay.label for lay in spec_of(instance).layouts if lay.key == instance.layout),
        "the built-in columns",
    )
    return ColumnMapping(proposal, "auto", step["header_row"], step.get("sheet", "")), layout


def _date_formats(
    spec: MasterSpec, mapping: ColumnMapping, table: Table, names: list[str]
) -> dict[str, str]:
    """Each date field's format when the mapping says "detect": one the column fits, else the
    importer's documented order; a column whose dates fit two formats with no such order is a
    ``FileProblem`` naming the column, the row and the text."""
    import pyarrow as pa

    chosen: dict[str, str] = {}
    if mapping.date_format != "auto":
        return chosen
    for column, name in mapping.columns.items():
        f = spec.fields.get(name)
        if f is None or f.kind != "date" or column not in names:
            continue
        index = names.index(column)
        values = [r[index].strip() for r in table.rows]
        try:
            fmt = formats.detect_date_format(pa.array(values, pa.string()))
        except formats.AmbiguousDates as ambiguous:
            if not spec.date_default:
                row = table.row_numbers[values.index(ambiguous.example)]
                raise uploads.FileProblem(
                    f"{column}: “{ambiguous.example}”: {ambiguous}", row=row, column=column
                ) from ambiguous
            fmt = spec.date_default
        chosen[name] = fmt or "iso"
    return chosen


def canonical_of(instance: MasterImport, max_rows: int = MAX_ROWS) -> CanonicalTable:
    """The stored file read through its mapping (:func:`_mapping_of`): the file's columns
    renamed to the fields, dates, amounts, yes/no and NPIs made canonical text. A column the
    file lacks, two columns to one field, a header not found, an empty sheet: ``FileProblem``
    naming the column and the reason (nothing is stored)."""
    import pyarrow as pa

    if not instance.file:
        raise uploads.FileProblem("the file was removed (the import was discarded)")
    spec = spec_of(instance)
    mapping, read_as = _mapping_of(instance)
    try:
        with instance.file.open("rb") as handle:
            table = read_table(
                handle,
                file_format=_file_format(instance),
                max_rows=max_rows,
                header_row=mapping.header_row,
                sheet=mapping.sheet,
            )
    except OSError as exc:
        raise uploads.FileProblem("the stored file cannot be read: upload it again") from exc
    names = unique_names(table.columns)
    for problem in check(spec.fields, names, mapping.columns):
        if not (spec.fields.get(problem["column"]) and "required" in problem["message"]):
            # (a required field with no column is the importer's to name, row by row)
            raise uploads.FileProblem(
                f"{problem['column']}: {problem['message']}", row=mapping.header_row
            )
    batch = pa.RecordBatch.from_arrays(
        [pa.array([r[i] for r in table.rows], pa.string()) for i in range(len(names))],
        names=names,
    )
    mapped = MappedBatches(
        fields=spec.fields,
        mapping=mapping,
        first_row=mapping.header_row + 1,
        chosen=_date_formats(spec, mapping, table, names),
    )
    converted = mapped.convert(batch, first_row=mapping.header_row + 1)
    fields = list(converted.schema.names)
    columns = {name: converted.column(name).to_pylist() for name in fields}
    sources = {name: column for column, name in mapping.columns.items() if name in fields}
    return CanonicalTable(
        fields=fields,
        rows=[{name: columns[name][i] or "" for name in fields} for i in range(len(table.rows))],
        row_numbers=table.row_numbers,
        sources=sources,
        ignored=[
            n
            for n, own in zip(names, table.columns, strict=True)
            if n not in mapping.columns and own.strip()
        ],
        read_as=read_as,
    )


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


def master_import_save(*, instance: MasterImport, user: Any, event: str) -> None:
    """Store a new upload (its file already stored) and record ``event``, naming the file's
    SHA-256 and size (audited)."""
    from .audit import event_record

    instance.save()
    event_record(
        organization=instance.organization,
        name=event,
        actor=user,
        obj=instance,
        summary=f"{instance} sha256 {instance.sha256[:12]}",
        data={"sha256": instance.sha256, "size": instance.size},
    )


def master_import_start(*, instance: MasterImport, user: Any, job_kind: str, task: Any) -> Any:
    """Confirm: queue the import as a job (the worker applies it whole or refuses it)."""
    from .jobs import job_create, job_enqueue

    if instance.status not in (MasterImportStatus.UPLOADED, MasterImportStatus.FAILED):
        raise ValidationError(
            f"This import is {instance.get_status_display().lower()}: it cannot be started again.",
            code="state",
        )
    if not (instance.mapping_used or {}).get("columns"):
        # Confirmed without the mapping form (the API): the saved mapping whose header the
        # file has, else the built-in layouts' proposal, recorded with the import.
        master_import_map(instance=instance, user=user)
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
    uploads.stored_file_remove_on_commit(instance.file)
    instance.file = ""
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
    problems.add(row=exc.row, column=exc.column, message=exc.message)
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
