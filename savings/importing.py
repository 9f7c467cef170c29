"""Streaming validation and loading of usage and price files.

A file is read in batches (pyarrow's streaming CSV reader; openpyxl's read-only mode for XLSX),
every value kept as a string (no amount ever passes through float), and each batch is validated
with vectorised pyarrow compute functions. Valid batches are written on to the database:

* PostgreSQL: ``COPY`` (psycopg2 ``copy_expert``) into the import's unindexed staging table,
  which is then attached as the import's partition of the usage table (:class:`UsageLoader`);
* SQLite (tests, the demo): ``bulk_create``.

All of it runs inside the caller's transaction: if any row of the file is bad, nothing is kept
(the staging table goes with the rollback) and the problems are reported: row, column,
reason, the first :data:`MAX_PROBLEMS` and the total.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import wait as wait_for
from dataclasses import dataclass
from decimal import Decimal
from functools import cached_property, partial
from typing import IO, Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
from django.db import connection

from comanage.core import uploads
from comanage.core.tabular import mapping as tabular
from comanage.core.tabular import pgcopy
from comanage.core.tabular.header import csv_head_rows as header_csv_head_rows
from comanage.core.tabular.header import csv_rows
from comanage.core.tabular.mapping import Field, FieldSet, unique_names
from comanage.core.tabular.problems import MAX_PROBLEMS, Problems, short
from comanage.core.tabular.words import BOOL_WORDS, TRUE_WORDS
from comanage.core.tabular.workbook import cell_text

from .engine import USAGE_COLUMNS

BATCH_BYTES = 4 << 20
XLSX_BATCH_ROWS = 50_000

USAGE_REQUIRED = (
    "case_id",
    "service_date",
    "case_type",
    "physician_npi",
    "federal_program",
    "item_code",
    "quantity",
    "unit_cost",
    "severity_weight",
)
USAGE_OPTIONAL = ("payer", "notice_date", "reviewed", "opted_out")
PRICE_COLUMNS = ("item_code", "unit_cost")

# The fields a mapping reads a hospital's own export into, with the names exports use for them.
USAGE_FIELDS = FieldSet(
    (
        Field(
            "case_id",
            "Case id",
            "text",
            True,
            (
                "case",
                "case #",
                "case no",
                "case number",
                "encounter",
                "encounter id",
                "log id",
                "surgical case",
            ),
        ),
        Field(
            "service_date",
            "Service date",
            "date",
            True,
            ("dos", "date of service", "procedure date", "surgery date", "svc date", "case date"),
        ),
        Field(
            "case_type",
            "Case type",
            "text",
            True,
            (
                "drg",
                "ms drg",
                "ms-drg",
                "procedure",
                "procedure code",
                "procedure type",
                "cpt",
                "case code",
                "type",
                "case category",
            ),
        ),
        Field(
            "physician_npi",
            "Physician NPI",
            "npi",
            True,
            ("npi", "surgeon npi", "provider npi", "attending npi", "physician"),
        ),
        Field(
            "payer",
            "Payer",
            "text",
            False,
            ("payor", "insurance", "financial class", "primary payer"),
        ),
        Field(
            "federal_program",
            "Federal programme",
            "boolean",
            True,
            (
                "federal",
                "federal program",
                "federal payer",
                "govt payer",
                "government payer",
                "federal flag",
            ),
        ),
        Field(
            "item_code",
            "Item code",
            "text",
            True,
            (
                "item",
                "item #",
                "item no",
                "item number",
                "item id",
                "sku",
                "supply id",
                "supply code",
                "mfr catalog",
            ),
        ),
        Field(
            "quantity", "Quantity", "amount", True, ("qty", "qty used", "units", "quantity used")
        ),
        Field(
            "unit_cost",
            "Unit cost",
            "amount",
            True,
            ("cost", "unit price", "cost each", "each cost", "price"),
        ),
        Field(
            "severity_weight",
            "Severity weight",
            "amount",
            True,
            ("severity", "drg weight", "case weight", "weight", "cmi"),
        ),
        Field(
            "notice_date",
            "Notice date",
            "date",
            False,
            ("notified", "notification date", "notice sent", "date notified"),
        ),
        Field("reviewed", "Reviewed", "boolean", False, ("patient reviewed", "agreement reviewed")),
        Field(
            "opted_out", "Opted out", "boolean", False, ("opt out", "optout", "patient opted out")
        ),
    )
)
PRICE_FIELDS = FieldSet(
    (
        Field(
            "item_code",
            "Item code",
            "text",
            True,
            ("item", "item #", "item no", "item number", "sku", "supply id"),
        ),
        Field(
            "unit_cost",
            "Unit cost",
            "amount",
            True,
            ("cost", "unit price", "price", "cost each", "contract price"),
        ),
    )
)

# Documented column templates (the import page offers them for download).
USAGE_COLUMN_DOCS: tuple[tuple[str, str, str], ...] = (
    ("case_id", "required", "Case identifier; a case's rows share it. Up to 64 characters."),
    ("service_date", "required", "Date of service, YYYY-MM-DD, inside the period imported."),
    ("case_type", "required", "Procedure code or MS-DRG; decides the case's opportunities."),
    ("physician_npi", "required", "NPI of the responsible physician, registered in Comanage."),
    ("payer", "optional", "Payer name."),
    ("federal_program", "required", "true/false: a Federal health care programme payer."),
    ("item_code", "required", "Item (supply, device, drug); one row per item used in a case."),
    ("quantity", "required", "Quantity used, not negative, at most 4 decimals."),
    (
        "unit_cost",
        "required",
        "Acquisition cost per unit in dollars, not negative, at most 4 decimals, no currency sign.",
    ),
    ("severity_weight", "required", "Case severity, e.g. MS-DRG weight, not negative."),
    ("notice_date", "optional", "Date the patient was notified (YYYY-MM-DD); empty if none."),
    ("reviewed", "optional", "true/false: the patient reviewed the agreement."),
    ("opted_out", "optional", "true/false (empty = false): the patient opted out."),
)
PRICE_COLUMN_DOCS: tuple[tuple[str, str, str], ...] = (
    ("item_code", "required", "Item code, once per file."),
    (
        "unit_cost",
        "required",
        "The year's unit acquisition cost, not negative, at most 4 decimals.",
    ),
)

_NUMBER = r"^[0-9]{1,12}(\.[0-9]{1,4})?$"
_NEGATIVE = r"^-[0-9]+(\.[0-9]+)?$"
_TOO_PRECISE = r"^[0-9]+\.[0-9]{5,}$"
_BOOL_VALUES = list(BOOL_WORDS)
_TRUE_VALUES = list(TRUE_WORDS)


def normalise_header(name: str) -> str:
    return str(name).strip().lower().replace(" ", "_").replace("-", "_").lstrip("\ufeff")


# --------------------------------------------------------------------------------------------
# Reading


class RaggedRows(Exception):
    """The fast reader met a row with the wrong number of fields; the caller locates them
    (:func:`explain_unreadable`) from the start of the file."""


def _check_names(names: list[str]) -> None:
    known = set(USAGE_COLUMNS) | set(PRICE_COLUMNS)
    seen: set[str] = set()
    for name in names:
        if name in known and name in seen:
            raise uploads.FileProblem(f"column {name} appears twice in the header", row=1)
        seen.add(name)


def _open_csv_batches(
    stream: IO[bytes],
    *,
    progress: Callable[[], None] | None = None,
    mapping: tabular.ColumnMapping | None = None,
) -> tuple[list[str], Iterator[tuple[int, pa.RecordBatch]]]:
    """A streaming reader with every column read as string (empty stays empty), in batches of
    consecutive rows, each with its first row's number in the file (:func:`row_runs`).

    The header is read here (a bad one raises :class:`uploads.FileProblem` naming row 1). A
    row with the wrong number of fields stops the batches with :class:`RaggedRows`; text that
    is not UTF-8 with Arrow's ``ArrowInvalid``: both are then explained by
    :func:`explain_unreadable`, which names the rows."""
    first = stream.read(uploads.HEADER_MAX_BYTES + 4)
    stream.seek(0)
    names = uploads.csv_header(first, at_end=len(first) <= uploads.HEADER_MAX_BYTES + 3)
    skip_rows = 1
    if mapping is not None:
        # A mapped file: its own header names (title rows above it skipped), kept as written.
        skip_rows = mapping.header_row
        if skip_rows > 1:
            head = find_header_row(first, skip_rows)
            if head is None:
                raise uploads.FileProblem(
                    f"the file has no row {skip_rows}, where the mapping expects the header",
                    row=skip_rows,
                )
            names = head
        names = unique_names(names)
    else:
        names = [normalise_header(n) for n in names]
        _check_names(names)
    ragged = [0]

    def skip(row: Any) -> str:
        ragged[0] += 1
        return "skip"

    read = pacsv.ReadOptions(
        block_size=BATCH_BYTES, column_names=names, skip_rows=skip_rows, encoding="utf8"
    )
    convert = pacsv.ConvertOptions(
        column_types={n: pa.string() for n in names},
        strings_can_be_null=False,
        quoted_strings_can_be_null=False,
    )
    # An empty line is kept as a row of empty fields (not dropped), so every later row keeps
    # its number in the file; row_runs then leaves it out.
    parse = pacsv.ParseOptions(
        newlines_in_values=False, invalid_row_handler=skip, ignore_empty_lines=False
    )
    reader = pacsv.open_csv(stream, read_options=read, convert_options=convert, parse_options=parse)
    if ragged[0]:
        raise RaggedRows

    def batches() -> Iterator[tuple[int, pa.RecordBatch]]:
        row = skip_rows + 1
        for batch in reader:
            if ragged[0]:
                raise RaggedRows
            if progress:
                progress()
            yield from row_runs(batch, first_row=row)
            row += batch.num_rows

    return names, batches()


def row_runs(batch: pa.RecordBatch, *, first_row: int) -> Iterator[tuple[int, pa.RecordBatch]]:
    """The batch without its empty rows (an empty line, a line of separators, fields of spaces
    only), as runs of consecutive rows, each with the file's number of its first row: every
    problem found later names the row the file has. A batch without an empty row (the usual
    case: one look at its first column) is passed on whole."""
    import numpy as np

    if batch.num_rows == 0 or batch.num_columns == 0:
        return
    empty = pc.equal(pc.utf8_trim_whitespace(batch.column(0)), "")
    if not pc.any(empty).as_py():
        yield first_row, batch
        return
    for column in batch.columns[1:]:
        empty = pc.and_(empty, pc.equal(pc.utf8_trim_whitespace(column), ""))
    kept = np.flatnonzero(~empty.to_numpy(zero_copy_only=False))
    if len(kept) == batch.num_rows:
        yield first_row, batch
        return
    for run in np.split(kept, np.flatnonzero(np.diff(kept) > 1) + 1):
        if len(run):
            yield first_row + int(run[0]), batch.slice(int(run[0]), len(run))


def explain_unreadable(
    stream: IO[bytes], *, expected: int, error: BaseException, first_row: int | None
) -> tuple[list[tuple[int | None, str]], int]:
    """Why the fast reader stopped, by row: ``(problems, total)``. Reads the file again from
    its start (only a failing file pays for it)."""
    bad_text = uploads.utf8_problem(stream)
    if bad_text is not None:
        return [(bad_text.row, bad_text.message)], 1
    ragged = uploads.csv_ragged_rows(stream, expected=expected, keep=MAX_PROBLEMS)
    if ragged.total:
        return list(ragged.items), ragged.total
    where = f" past row {first_row:,}" if first_row else ""
    detail = str(error).split("\n", 1)[0][:200] or "a row has the wrong number of fields"
    if "straddling" in detail or "block size" in detail:
        detail = f"a row is longer than {BATCH_BYTES >> 20} MiB (is a double quote left open?)"
    return [(first_row, f"the file cannot be read{where}: {detail}")], 1


_xlsx_cell = cell_text


def _open_xlsx_batches(
    stream: IO[bytes],
    *,
    progress: Callable[[], None] | None = None,
    mapping: tabular.ColumnMapping | None = None,
) -> tuple[list[str], Iterator[tuple[int, pa.RecordBatch]]]:
    """The first worksheet in batches of consecutive rows, each with its first row's number on
    the sheet (empty rows left out), read-only (the worker only: never in a web request).

    The declared sizes are checked before openpyxl reads anything, and the rows are counted
    against ``IMPORT_XLSX_MAX_ROWS``; over either, :class:`uploads.FileProblem`."""
    from openpyxl import load_workbook

    uploads.xlsx_check(stream)
    cap = uploads.xlsx_row_cap()
    try:
        workbook = load_workbook(stream, read_only=True, data_only=True)
        chosen = mapping.sheet if mapping is not None else ""
        if chosen and chosen not in workbook.sheetnames:
            raise uploads.FileProblem(f"the workbook has no sheet named {chosen!r}")
        sheet = workbook[chosen] if chosen else workbook.worksheets[0]
        rows = sheet.iter_rows(values_only=True)
        header_row = mapping.header_row if mapping is not None else 1
        for _title in range(header_row - 1):
            next(rows, None)
        header = next(rows, None) or ()
    except uploads.FileProblem:
        raise
    except Exception as exc:  # noqa: BLE001 - any unreadable workbook is the user's problem
        raise uploads.FileProblem(f"the workbook cannot be read: {_short(exc, 200)}") from exc
    if mapping is not None:
        names = unique_names(_xlsx_cell(h) for h in header)
        if not any(_xlsx_cell(h) for h in header):
            workbook.close()
            raise uploads.FileProblem(
                f"the sheet {sheet.title!r} is empty at row {header_row}, where the mapping "
                "expects the header",
                row=header_row,
            )
    else:
        names = [normalise_header(_xlsx_cell(h)) for h in header]
        _check_names(names)

    def batches() -> Iterator[tuple[int, pa.RecordBatch]]:
        chunk: list[tuple[Any, ...]] = []
        start = count = header_row
        try:
            for row in rows:
                count += 1
                if count > cap:
                    raise uploads.xlsx_too_many_rows(cap)
                if row is None or all(v is None or not _xlsx_cell(v).strip() for v in row):
                    # A batch is consecutive rows: its rows' numbers follow from its first.
                    if chunk:
                        yield start, _xlsx_batch(names, chunk)
                        chunk = []
                    continue
                if not chunk:
                    start = count
                chunk.append(row)
                if len(chunk) >= XLSX_BATCH_ROWS:
                    yield start, _xlsx_batch(names, chunk)
                    chunk = []
                    if progress:
                        progress()
        except uploads.FileProblem:
            raise
        except Exception as exc:  # noqa: BLE001 - as above
            raise uploads.FileProblem(
                f"the workbook cannot be read past row {count:,}: {_short(exc, 200)}", row=count
            ) from exc
        finally:
            workbook.close()
        if chunk:
            yield start, _xlsx_batch(names, chunk)

    return names, batches()


def _xlsx_batch(names: list[str], rows: list[tuple[Any, ...]]) -> pa.RecordBatch:
    columns = [[_xlsx_cell(r[i] if i < len(r) else None) for r in rows] for i in range(len(names))]
    return pa.RecordBatch.from_arrays([pa.array(c, pa.string()) for c in columns], names=names)


def open_batches(
    stream: IO[bytes],
    *,
    file_format: str,
    progress: Callable[[], None] | None = None,
    mapping: tabular.ColumnMapping | None = None,
) -> tuple[list[str], Iterator[tuple[int, pa.RecordBatch]]]:
    """The header's names and the rows in batches of text, each batch consecutive rows with
    the file's number of its first row (empty rows left out). Without a mapping the canonical
    layout (header on row 1, names normalised); with one, the file's own header at the
    mapping's row (and sheet), its names as written."""
    if file_format == "xlsx":
        return _open_xlsx_batches(stream, progress=progress, mapping=mapping)
    return _open_csv_batches(stream, progress=progress, mapping=mapping)


HEAD_SHEETS = 20


csv_head_rows = header_csv_head_rows


def workbook_head(stream: IO[bytes]) -> dict[str, Any]:
    """An Excel workbook's sheets and the first rows of each (worker only: the declared sizes
    are checked first, and openpyxl reads read-only)."""
    from comanage.core.tabular import workbook

    uploads.xlsx_check(stream)
    sheets = workbook.sheet_names(stream)
    return {
        "sheets": sheets,
        "rows": {name: workbook.sheet_head(stream, sheet=name) for name in sheets[:HEAD_SHEETS]},
    }


def find_header_row(first: bytes, number: int) -> list[str] | None:
    """Row ``number`` (1-based) of a CSV's first bytes, as header names."""
    rows = csv_rows(first, rows=number)
    return rows[number - 1] if len(rows) >= number else None


def preview(stream: IO[bytes], *, file_format: str, kind: str, rows: int = 10) -> dict[str, Any]:
    """Detected columns and the first rows, shown before the user confirms the import.

    Cheap enough for the web request, and never raises for a bad file: a CSV is read from its
    first :data:`uploads.PREVIEW_BYTES` with Python's csv module (a problem there is named by
    row); an Excel workbook is not opened at all (the worker checks it when the import runs)."""
    if file_format == "xlsx":
        return {
            "deferred": True,
            "columns": [],
            "missing": [],
            "optional_missing": [],
            "ignored": [],
            "rows": [],
            "problems": [],
            "error": "",
        }
    head = uploads.csv_head(stream, rows=rows)
    names = [normalise_header(n) for n in head.names]
    required = USAGE_REQUIRED if kind == "usage" else PRICE_COLUMNS
    known = USAGE_COLUMNS if kind == "usage" else PRICE_COLUMNS
    problems = [{"row": row, "message": message} for row, message in head.problems]
    try:
        _check_names(names)
    except uploads.FileProblem as problem:
        problems.insert(0, {"row": problem.row, "message": problem.message})
    return {
        "deferred": False,
        "columns": names,
        "missing": [c for c in required if c not in names] if names else [],
        "optional_missing": [c for c in known if c not in names and c not in required],
        "ignored": [c for c in names if c not in known],
        "rows": head.rows,
        "problems": problems,
        "partial": not head.whole_file,
        "error": "The file cannot be imported as it is: see the problems below."
        if problems
        else "",
    }


# --------------------------------------------------------------------------------------------
# Validation


_short = short


def _clean(column: pa.Array) -> pa.Array:
    return pc.utf8_trim_whitespace(column)


# Integer digits each amount column holds (numeric(16, 4), severity numeric(10, 4)): a larger
# value is a row problem here, not a database error at COPY time.
_INTEGER_DIGITS = {"quantity": 12, "unit_cost": 12, "severity_weight": 6}


def _decimal_checks(
    problems: Problems, values: pa.Array, rows: Any, column: str, *, label: str
) -> pa.Array:
    digits = _INTEGER_DIGITS.get(column, 12)
    ok = pc.match_substring_regex(values, _NUMBER)
    too_large = pc.match_substring_regex(values, rf"^[0-9]{{{digits + 1},}}(\.[0-9]+)?$")
    if digits < 12:
        ok = pc.and_(ok, pc.invert(too_large))
    bad = pc.invert(ok)
    if pc.any(bad).as_py():
        negative = pc.match_substring_regex(values, _NEGATIVE)
        precise = pc.and_(pc.match_substring_regex(values, _TOO_PRECISE), pc.invert(too_large))
        empty = pc.equal(values, "")
        problems.add_mask(pc.and_(bad, empty), rows, column, lambda v: f"{label} is missing")
        limit = "9" * digits
        problems.add_mask(
            too_large,
            rows,
            column,
            lambda v: f"{label} {_short(v)} is too large (at most {int(limit):,}.9999)",
            values=values,
        )
        problems.add_mask(
            pc.and_(bad, negative),
            rows,
            column,
            lambda v: f"negative {label} {_short(v)} is refused",
            values=values,
        )
        problems.add_mask(
            pc.and_(bad, precise),
            rows,
            column,
            lambda v: f"{label} {_short(v)} has more than 4 decimals",
            values=values,
        )
        other = pc.and_(
            pc.and_(pc.and_(bad, pc.invert(empty)), pc.invert(too_large)),
            pc.and_(pc.invert(negative), pc.invert(precise)),
        )
        problems.add_mask(
            other,
            rows,
            column,
            lambda v: (
                f"{label} '{_short(v)}' is not a plain decimal number "
                "(digits, optional point; no currency sign or thousands "
                "separator)"
            ),
            values=values,
        )
    return ok


def _date_checks(
    problems: Problems,
    values: pa.Array,
    rows: Any,
    column: str,
    *,
    start: dt.date | None,
    end: dt.date | None,
    period: str,
    required: bool,
) -> pa.Array:
    empty = pc.equal(values, "")
    shaped = pc.match_substring_regex(values, r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$")
    candidates = pc.if_else(shaped, values, None)
    try:
        # Arrow's cast refuses impossible dates (2025-02-30) but fails the whole column: the
        # usual file, every date real, takes this one fast pass.
        parsed = pc.cast(candidates, pa.date32())
    except pa.ArrowInvalid:
        # strptime rolls 2025-02-30 over to 2025-03-02: a real date formats back to its text.
        stamps = pc.strptime(candidates, format="%Y-%m-%d", unit="s", error_is_null=True)
        same = pc.fill_null(pc.equal(pc.strftime(stamps, format="%Y-%m-%d"), values), False)
        parsed = pc.cast(pc.if_else(same, stamps, pa.scalar(None, stamps.type)), pa.date32())
    not_date = pc.and_(pc.invert(empty), pc.is_null(parsed))
    # A file read through a mapping may write its dates in several ways (the mapping step
    # lists them); only the documented layout wants YYYY-MM-DD.
    layout = "" if problems.labels else " (YYYY-MM-DD)"
    problems.add_mask(
        not_date, rows, column, lambda v: f"'{_short(v)}' is not a date{layout}", values=values
    )
    if required:
        problems.add_mask(empty, rows, column, lambda v: f"{problems.header(column)} is missing")
    if start is not None and end is not None:
        outside = pc.or_(
            pc.less(parsed, pa.scalar(start, pa.date32())),
            pc.greater(parsed, pa.scalar(end, pa.date32())),
        )
        outside = pc.fill_null(outside, False)
        problems.add_mask(
            outside,
            rows,
            column,
            lambda v: (
                f"date {_short(v)} is outside the {period} "
                f"({start.isoformat()} to {end.isoformat()})"
            ),
            values=values,
        )
    return parsed


def _bool_checks(
    problems: Problems, values: pa.Array, rows: Any, column: str, *, required: bool
) -> None:
    lowered = pc.utf8_lower(values)
    empty = pc.equal(values, "")
    known = pc.is_in(lowered, value_set=pa.array(_BOOL_VALUES))
    bad = pc.and_(pc.invert(known), pc.invert(empty))
    problems.add_mask(
        bad, rows, column, lambda v: f"'{_short(v)}' is not true/false", values=values
    )
    if required:
        problems.add_mask(empty, rows, column, lambda v: f"{problems.header(column)} is missing")


def _text_checks(
    problems: Problems, values: pa.Array, rows: Any, column: str, *, max_length: int
) -> None:
    problems.add_mask(
        pc.equal(values, ""), rows, column, lambda v: f"{problems.header(column)} is missing"
    )
    problems.add_mask(
        pc.greater(pc.utf8_length(values), max_length),
        rows,
        column,
        lambda v: f"{problems.header(column)} is longer than {max_length} characters",
    )


@dataclass(frozen=True, kw_only=True)
class UsageRules:
    period_start: dt.date
    period_end: dt.date
    period_label: str
    known_npis: frozenset[str]
    catalogue: frozenset[str] | None  # the year's price file items; None = no price file yet

    @cached_property
    def npi_values(self) -> pa.Array:
        """The known NPIs as an Arrow value set (built once per file, not per batch)."""
        return pa.array(sorted(self.known_npis), pa.string())

    @cached_property
    def catalogue_values(self) -> pa.Array:
        return pa.array(sorted(self.catalogue or ()), pa.string())


def validate_usage_batch(
    batch: pa.RecordBatch, *, first_row: int, rules: UsageRules, problems: Problems
) -> pa.Table:
    """Check one batch; returns it as a clean table of the canonical columns (text, nulls
    for empty optional fields, booleans normalised to true/false). Every column but the case
    id is dictionary-encoded (:func:`as_dictionary`; :func:`plain` decodes one)."""
    import numpy as np

    n = batch.num_rows
    rows = np.arange(first_row, first_row + n)
    raw = {name: batch.column(name) for name in batch.schema.names if name in USAGE_COLUMNS}
    for name in USAGE_OPTIONAL:
        if name not in raw:
            raw[name] = pa.array([""] * n, pa.string())

    def checked(name: str, check: _Check, convert: _Convert | None = None) -> pa.Array:
        # Every value of a column but the case id repeats (a year has 365 dates, a file a few
        # thousand items and prices): each distinct value is checked and converted once. Only
        # a column with a problem is checked row by row, for the rows and the messages.
        fast = _by_distinct(raw[name], check, convert)
        if fast is not None:
            return fast
        values = _clean(plain(raw[name]))
        check(problems, values, rows)
        # Dictionary-encoded as the fast path's columns are (the batches' tables must agree).
        encoded = pc.dictionary_encode(convert(values) if convert else values)
        return as_dictionary(encoded.indices, encoded.dictionary)

    out = {"case_id": _clean(raw["case_id"])}
    _text_checks(problems, out["case_id"], rows, "case_id", max_length=64)
    out["case_type"] = checked(
        "case_type", lambda p, v, r: _text_checks(p, v, r, "case_type", max_length=32)
    )
    out["item_code"] = checked("item_code", lambda p, v, r: _item_checks(p, v, r, rules))
    out["payer"] = checked(
        "payer",
        lambda p, v, r: p.add_mask(
            pc.greater(pc.utf8_length(v), 64),
            r,
            "payer",
            lambda _v: "payer is longer than 64 characters",
        ),
    )
    out["service_date"] = checked(
        "service_date",
        lambda p, v, r: _date_checks(
            p,
            v,
            r,
            "service_date",
            start=rules.period_start,
            end=rules.period_end,
            period=rules.period_label,
            required=True,
        ),
    )
    out["notice_date"] = checked(
        "notice_date",
        lambda p, v, r: _date_checks(
            p, v, r, "notice_date", start=None, end=None, period="", required=False
        ),
        _blank_to_null,
    )
    out["physician_npi"] = checked("physician_npi", lambda p, v, r: _npi_checks(p, v, r, rules))
    for name, label in (
        ("quantity", "quantity"),
        ("unit_cost", "unit cost"),
        ("severity_weight", "severity weight"),
    ):
        out[name] = checked(name, partial(_decimal_checks, column=name, label=label))
    for name, blank in (("federal_program", "false"), ("reviewed", None), ("opted_out", "false")):
        out[name] = checked(
            name,
            partial(_bool_checks, column=name, required=name == "federal_program"),
            partial(_to_bool, blank=blank),
        )
    return pa.table([out[c] for c in USAGE_COLUMNS], names=list(USAGE_COLUMNS))


_Check = Callable[[Problems, pa.Array, Any], Any]
_Convert = Callable[[pa.Array], pa.Array]


def _by_distinct(values: pa.Array, check: _Check, convert: _Convert | None) -> pa.Array | None:
    """The column checked and converted once per distinct value, or None if any distinct
    value has a problem (the caller then checks it row by row)."""
    import numpy as np

    if isinstance(values, pa.DictionaryArray):  # the mapping's parsed column: encoded once
        encoded = values
    else:
        encoded = pc.dictionary_encode(values)
        if isinstance(encoded, pa.ChunkedArray):
            encoded = encoded.combine_chunks()
    distinct = _clean(encoded.dictionary)
    scratch = Problems()
    check(scratch, distinct, np.zeros(len(distinct), dtype=np.int64))
    if scratch.total:
        return None
    converted = convert(distinct) if convert else distinct
    return as_dictionary(encoded.indices, converted)


def as_dictionary(indices: pa.Array, values: pa.Array) -> pa.DictionaryArray:
    """Rows as positions into their distinct values (what a validated batch holds for every
    repeated column: the binary COPY encodes each distinct value once). A null value becomes a
    null position, as Arrow wants to join batches' dictionaries. Two positions may hold equal
    text (``' A'`` and ``'A'`` trimmed): :func:`case_rows.codes` numbers them as one."""
    if values.null_count:
        valid = pc.take(pc.is_valid(values), indices)
        indices = pc.if_else(valid, indices, pa.scalar(None, indices.type))
    return pa.DictionaryArray.from_arrays(indices, values)


def plain(values: pa.Array | pa.ChunkedArray) -> pa.Array | pa.ChunkedArray:
    """A column as its values (a dictionary column decoded; others as they are)."""
    if pa.types.is_dictionary(values.type):
        return pc.cast(values, values.type.value_type)
    return values


def _item_checks(problems: Problems, item: pa.Array, rows: Any, rules: UsageRules) -> None:
    _text_checks(problems, item, rows, "item_code", max_length=50)
    if rules.catalogue is None:
        return
    not_priced = pc.invert(pc.is_in(item, value_set=rules.catalogue_values))
    problems.add_mask(
        pc.and_(not_priced, pc.not_equal(item, "")),
        rows,
        "item_code",
        lambda v: f"unknown item {_short(v)}: not in the year's price file",
        values=item,
    )


def _npi_checks(problems: Problems, npi: pa.Array, rows: Any, rules: UsageRules) -> None:
    unknown = pc.invert(pc.is_in(npi, value_set=rules.npi_values))
    problems.add_mask(
        pc.and_(unknown, pc.not_equal(npi, "")),
        rows,
        "physician_npi",
        lambda v: f"unknown physician NPI {_short(v)}: register the physician first",
        values=npi,
    )
    problems.add_mask(
        pc.equal(npi, ""), rows, "physician_npi", lambda v: "physician_npi is missing"
    )


def _to_bool(values: pa.Array, *, blank: str | None) -> pa.Array:
    lowered = pc.utf8_lower(values)
    as_text = pc.if_else(pc.is_in(lowered, value_set=pa.array(_TRUE_VALUES)), "true", "false")
    return pc.if_else(pc.equal(values, ""), pa.scalar(blank, pa.string()), as_text)


def _blank_to_null(values: pa.Array) -> pa.Array:
    return pc.if_else(pc.equal(values, ""), pa.scalar(None, pa.string()), values)


def duplicate_checks(
    problems: Problems,
    case_ids: list[pa.Array],
    items: list[pa.Array],
    rows_from: list[int],
    *,
    case_codes: tuple[Any, int] | None = None,
) -> None:
    """Rows with the same case_id and item_code as an earlier row are duplicates.

    Each row's (case, item) as one number, sorted, says whether there is any; only then are
    the row numbers worked out (the usual file has none). ``case_codes``, when given, is
    :func:`case_rows.codes` of the same case ids (the caller's, reused)."""
    if not case_ids:
        return
    import numpy as np

    from .case_rows import codes

    case, _cases = case_codes or codes(pa.chunked_array(case_ids, pa.string()))
    item, item_count = codes(pa.chunked_array(items))
    if _cases * item_count < 1 << 62:
        numbered = np.sort(case * item_count + item)
        if not (numbered[1:] == numbered[:-1]).any():
            return
    keys = [
        pc.binary_join_element_wise(plain(c), plain(i), "\x1f")
        for c, i in zip(case_ids, items, strict=True)
    ]
    combined = pa.chunked_array(keys).to_pandas()
    duplicated = combined.duplicated(keep="first").to_numpy()
    if not duplicated.any():
        return
    row_numbers = np.concatenate(
        [np.arange(start, start + len(k)) for start, k in zip(rows_from, keys, strict=True)]
    )
    dup_positions = duplicated.nonzero()[0]
    problems.total += len(dup_positions)
    shown = dup_positions[:MAX_PROBLEMS]
    wanted = set(combined.iloc[shown])
    first_row: dict[str, int] = {}
    for position in np.flatnonzero(combined.isin(wanted).to_numpy()):
        first_row.setdefault(combined.iloc[position], int(row_numbers[position]))
    for position in shown:
        key = combined.iloc[position]
        case_id, item = key.split("\x1f", 1)
        problems.items.append(
            {
                "row": int(row_numbers[position]),
                "column": "case_id",
                "message": f"duplicate row: case {case_id} item {item} is already on row "
                f"{first_row[key]}",
            }
        )


def validate_price_batch(batch: pa.RecordBatch, *, first_row: int, problems: Problems) -> pa.Table:
    import numpy as np

    rows = np.arange(first_row, first_row + batch.num_rows)
    item = _clean(batch.column("item_code"))
    cost = _clean(batch.column("unit_cost"))
    _text_checks(problems, item, rows, "item_code", max_length=50)
    _decimal_checks(problems, cost, rows, "unit_cost", label="unit cost")
    return pa.table([item, cost], names=list(PRICE_COLUMNS))


# --------------------------------------------------------------------------------------------
# Loading


def usage_partition(data_import_id: int) -> str:
    """The PostgreSQL table holding one import's rows: first its staging table, then, once the
    file has passed, its partition of the usage table (migration ``savings.0003``)."""
    from .models import UsageRow

    return f"{UsageRow._meta.db_table}_i{int(data_import_id)}"


def usage_partition_drop(cursor: Any, data_import_id: int) -> None:
    """Drop the import's table if there is one (PostgreSQL), in the caller's transaction."""
    name = usage_partition(data_import_id)
    cursor.execute("SELECT to_regclass(%s) IS NOT NULL", [name])
    if cursor.fetchone()[0]:
        cursor.execute(f"DROP TABLE {name}")


_ID_BITS = 32
_COPY_CHUNK = 1 << 20
_AMOUNT_TYPE = pa.decimal128(16, 4)  # numeric(16, 4); severity's numeric(10, 4) is checked by
# the server as the CSV COPY had it checked


def usage_row_ids_from(data_import_id: int) -> int:
    """The first row id of an import on PostgreSQL: the import's id in the high bits, the row's
    place in the file in the low 32. The ids stay unique across the table (as the primary key
    ``(id, data_import_id)`` needs only within a partition) and in file order, without a call to
    the sequence per row (a fifth of the COPY's time): the sequence still numbers the rows
    written through the ORM (the default partition), and its values stay below 2**32."""
    return (int(data_import_id) << _ID_BITS) + 1


def usage_copy_columns(table: pa.Table, *, first_id: int) -> list[pgcopy.Column]:
    """A validated batch (canonical text) as the usage table's typed columns for a binary
    COPY: ids, dates as dates, true/false as booleans, amounts as exact decimals (the text
    passed ``_NUMBER``, so the decimal cast neither rounds nor fails).

    Every column but the ids and case ids repeats (365 dates, a few thousand items and
    prices): it goes as a dictionary, each distinct value cast and encoded once (a column
    that arrives dictionary-encoded from the checks is not encoded again)."""
    import numpy as np

    ids = np.arange(first_id, first_id + table.num_rows, dtype=np.int64)
    columns = [pgcopy.Column("id", pa.array(ids, pa.int64()))]
    for name in USAGE_COLUMNS:
        values = table.column(name)
        if isinstance(values, pa.ChunkedArray):
            values = values.combine_chunks()
        if name == "case_id":
            columns.append(pgcopy.Column(name, values))
            continue
        if not pa.types.is_dictionary(values.type):
            values = pc.dictionary_encode(values)
        distinct = values.dictionary
        if name in ("service_date", "notice_date"):
            distinct = pc.cast(distinct, pa.date32())
        elif name in ("federal_program", "reviewed", "opted_out"):
            distinct = pc.equal(distinct, "true")
        elif name in ("quantity", "unit_cost", "severity_weight"):
            distinct = pc.cast(distinct, _AMOUNT_TYPE)
        columns.append(
            pgcopy.Column(name, pa.DictionaryArray.from_arrays(values.indices, distinct))
        )
    return columns


class _CopyBody:
    """A binary COPY's header, rows and trailer read as one file (no joined copy of the rows)."""

    def __init__(self, body: pa.Buffer):
        self._parts = [memoryview(pgcopy.HEADER), memoryview(body), memoryview(pgcopy.TRAILER)]

    def read(self, size: int = -1) -> bytes:
        while self._parts and not len(self._parts[0]):
            self._parts.pop(0)
        if not self._parts:
            return b""
        part = self._parts[0]
        size = len(part) if size < 0 else size
        self._parts[0] = part[size:]
        return bytes(part[:size])


class UsageLoader:
    """Writes validated batches: COPY into the import's staging table on PostgreSQL, rows on
    SQLite.

    On PostgreSQL the usage table is partitioned by import. The loader creates a staging table
    shaped like it, with the import's ids as defaults and a check that every row carries them,
    COPYs each batch into it and finally attaches it as the import's partition
    (:meth:`start_publish`): the rows are written once, and the attach only checks the
    constraint and builds the primary key index. The database work runs on a helper thread, in
    order, on the caller's own connection and so inside its transaction: each batch's COPY
    while the caller reads and checks the next batch, and the attach while the caller looks for
    duplicate rows across the file (psycopg2 releases the GIL while the server works). If the
    caller then finds a problem, it raises and its transaction rolls everything back, the
    staging table included, so the file still applies whole or not at all. :meth:`close`
    (always call it, also on failure) waits for the helper, so nothing is still writing when
    the transaction ends.
    """

    def __init__(self, *, organization_id: int, data_import_id: int) -> None:
        from .models import UsageRow

        self.organization_id = organization_id
        self.data_import_id = data_import_id
        self.postgres = connection.vendor == "postgresql"
        self.rows = 0
        self._pending: list[Future[None]] = []
        self._helper: ThreadPoolExecutor | None = None
        self._table = UsageRow._meta.db_table
        self._staging = usage_partition(data_import_id)
        self._first_id = usage_row_ids_from(data_import_id)
        if self.postgres:
            with connection.cursor() as cursor:
                # An import that is lost in a crash right after its commit can be re-run from
                # the kept file; not waiting for the WAL flush is safe (no corruption, only the
                # last commits may be lost) and saves a flush of every page the import wrote.
                cursor.execute("SET LOCAL synchronous_commit = off")
                # An import id is never reused and an applied import is never loaded again,
                # so a table already there is an empty partition left by a database whose rows
                # were removed without dropping tables (a test database's flush).
                usage_partition_drop(cursor, data_import_id)
                cursor.execute(
                    f"CREATE TABLE {self._staging} (LIKE {self._table} INCLUDING DEFAULTS)"
                )
                cursor.execute(
                    f"ALTER TABLE {self._staging} ALTER organization_id SET DEFAULT %s, "
                    "ALTER data_import_id SET DEFAULT %s, "
                    f"ADD CONSTRAINT {self._staging}_one_import CHECK (data_import_id = %s)",
                    [organization_id, data_import_id, data_import_id],
                )

    def _submit(self, work: Callable[[Any], None]) -> None:
        if self._helper is None:
            self._helper = ThreadPoolExecutor(max_workers=1, thread_name_prefix="usage-load")
        connection.ensure_connection()
        raw = connection.connection
        self._pending.append(self._helper.submit(work, raw))

    def _wait(self, keep: int = 0) -> None:
        """All but the last ``keep`` submitted have finished (oldest first); the first error,
        if any, is raised here."""
        while len(self._pending) > keep:
            self._pending.pop(0).result()

    def close(self) -> None:
        """Wait for database work still running (its error no longer matters: the caller is
        failing or has already seen it) and stop the helper thread."""
        wait_for(self._pending)
        self._pending = []
        if self._helper is not None:
            self._helper.shutdown(wait=True)
            self._helper = None

    def add(self, table: pa.Table) -> None:
        first_id = self._first_id + self.rows
        self.rows += table.num_rows
        if self.postgres:
            names, body = pgcopy.copy_rows(usage_copy_columns(table, first_id=first_id))
            # One batch copying and one queued behind it while this process reads the next:
            # the database is never idle waiting for a batch, and memory stays at three.
            self._wait(keep=1)
            sql = f"COPY {self._staging} ({', '.join(names)}) FROM STDIN WITH (FORMAT binary)"

            def copy(raw: Any) -> None:
                with raw.cursor() as cursor:
                    cursor.copy_expert(sql, _CopyBody(body), size=_COPY_CHUNK)

            self._submit(copy)
            return
        from .models import UsageRow

        def date(v: str | None) -> dt.date | None:
            return dt.date.fromisoformat(v) if v else None

        def flag(v: str | None) -> bool | None:
            return None if v is None else v == "true"

        objects = [
            UsageRow(
                organization_id=self.organization_id,
                data_import_id=self.data_import_id,
                case_id=r["case_id"],
                service_date=dt.date.fromisoformat(r["service_date"]),  # required: never empty
                case_type=r["case_type"],
                physician_npi=r["physician_npi"],
                payer=r["payer"],
                federal_program=bool(flag(r["federal_program"])),
                item_code=r["item_code"],
                quantity=Decimal(r["quantity"]),
                unit_cost=Decimal(r["unit_cost"]),
                severity_weight=Decimal(r["severity_weight"]),
                notice_date=date(r["notice_date"]),
                reviewed=flag(r["reviewed"]),
                opted_out=bool(flag(r["opted_out"])),
            )
            for r in table.to_pylist()
        ]
        UsageRow.objects.bulk_create(objects, batch_size=2000)

    def start_publish(self) -> None:
        """Queue the attach of the staging table as the import's partition (after the last
        COPY). The check constraint already proves every row belongs to the import, so the
        attach does not scan the rows; it builds the partition's primary key index."""
        if not self.postgres:
            return
        table, staging, data_import_id = self._table, self._staging, self.data_import_id

        def attach(raw: Any) -> None:
            with raw.cursor() as cursor:
                cursor.execute(
                    f"ALTER TABLE {table} ATTACH PARTITION {staging} FOR VALUES IN (%s)",
                    [data_import_id],
                )
                # The partition's own bound says the same from now on.
                cursor.execute(f"ALTER TABLE {staging} DROP CONSTRAINT {staging}_one_import")

        self._submit(attach)

    def finish(self) -> None:
        """The rows are in the usage table (raises the database's error if not)."""
        if not self.postgres:
            return
        if not self._pending:
            self.start_publish()
        self._wait()
