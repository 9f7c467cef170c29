"""Reading and checking a case file (one row per encounter) before anything is stored.

Pure functions over bytes and DataFrames, no ORM: ``casefile_read`` decodes and parses (CSV
with the pyarrow engine, or XLSX), ``casefile_validate`` checks the whole file and converts
the typed columns once (numbers, dates, yes/no), ``casefile_evaluate`` runs every indicator's
populations over it. Every problem carries the spreadsheet row (the header is row 1), the
column and the reason; the file is refused whole if there is any (spec section 3: bad data is
an error the user sees, not a silent drop).
"""

from __future__ import annotations

import datetime as dt
import io
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from comanage.core.tabular.mapping import (
    ColumnMapping,
    Field,
    FieldSet,
    MappedBatches,
    unique_names,
)
from comanage.core.tabular.problems import MAX_PROBLEMS, Problems, TableRefused
from comanage.core.tabular.words import FALSE_WORDS, TRUE_WORDS

from .criteria import (
    CriteriaDataError,
    CriteriaInvalid,
    MeasureDataError,
    MeasureDefinition,
    PopulationResult,
    criteria_fields,
    populations_evaluate_many,
)

CASE_ID = "case_id"
_KINDS = {
    "string": "string",
    "text": "string",
    "number": "number",
    "integer": "number",
    "decimal": "number",
    "boolean": "boolean",
    "bool": "boolean",
    "date": "date",
}


class CaseFileRefused(TableRefused):
    def __init__(self, problems: Problems):
        super().__init__(problems, f"{problems.total} problem(s) in the case file")


@dataclass(frozen=True)
class FileSpec:
    """What the agreement's indicators need from a case file."""

    columns: dict[str, str]  # name -> kind, case_id first
    date_fields: tuple[str, ...]

    @property
    def header(self) -> list[str]:
        return list(self.columns)


def casefile_spec(
    definitions: Mapping[str, MeasureDefinition],
    declared: Mapping[str, Mapping[str, str]],
    date_fields: Mapping[str, str],
) -> FileSpec:
    """Every column the indicators read, with its kind (``declared`` per indicator key)."""
    columns: dict[str, str] = {CASE_ID: "string"}
    for key, definition in definitions.items():
        types = {
            name: _KINDS.get(str(kind).lower(), "string")
            for name, kind in declared.get(key, {}).items()
        }
        used: set[str] = set()
        for _name, tree in definition.criteria_items():
            used |= criteria_fields(tree)
        for attr in ("observation_field", "numerator_value_field", "denominator_value_field"):
            if getattr(definition, attr):
                used.add(getattr(definition, attr))
        if date_fields.get(key):
            used.add(date_fields[key])
            types.setdefault(date_fields[key], "date")
        for name in sorted(used):
            columns.setdefault(name, types.get(name, "string"))
    dates = tuple(sorted({d for d in date_fields.values() if d}))
    return FileSpec(columns=columns, date_fields=dates)


# A case field's kind as a mapping reads it (numbers may carry thousands separators).
_FIELD_KINDS = {"string": "text", "number": "amount", "date": "date", "boolean": "boolean"}
_CASE_ID_ALIASES = ("case", "case #", "case no", "case number", "encounter", "encounter id",
                    "visit", "visit id", "account", "account number")  # fmt: skip


def casefile_fields(spec: FileSpec) -> FieldSet:
    """The fields a mapping reads a case file into: every column the indicators need."""
    return FieldSet(
        tuple(
            Field(
                name,
                name.replace("_", " ").capitalize() if name != CASE_ID else "Case id",
                _FIELD_KINDS.get(kind, "text"),
                True,
                _CASE_ID_ALIASES if name == CASE_ID else (),
            )
            for name, kind in spec.columns.items()
        )
    )


def _read_mapped(
    data: bytes, *, filename: str, mapping: ColumnMapping, fields: FieldSet
) -> pd.DataFrame:
    """The file read through its mapping: the file's own header at the mapping's row (and
    sheet), its columns renamed to the fields and their formats made canonical text (ISO
    dates, plain numbers, true/false). The frame's ``attrs`` carry the first data row and the
    file's headers, so problems name the row and the column the user knows."""
    import pyarrow as pa

    from comanage.core import uploads
    from comanage.core.tabular.header import csv_rows
    from comanage.core.tabular.workbook import cell_text

    header_row = mapping.header_row
    if filename.lower().endswith((".xlsx", ".xlsm")):
        from openpyxl import load_workbook

        try:
            uploads.xlsx_check(io.BytesIO(data))
            book = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
        except uploads.FileProblem as problem:
            raise _refused(problem.row, problem.message) from problem
        except Exception as exc:  # noqa: BLE001 - any unreadable workbook is the user's problem
            raise _refused(None, f"not a readable Excel workbook: {str(exc)[:200]}") from exc
        try:
            if mapping.sheet and mapping.sheet not in book.sheetnames:
                raise _refused(None, f"the workbook has no sheet named {mapping.sheet!r}")
            sheet = book[mapping.sheet] if mapping.sheet else book.worksheets[0]
            cap = uploads.xlsx_row_cap()
            rows = []
            for number, row in enumerate(sheet.iter_rows(values_only=True), start=1):
                if number > cap:
                    too_many = uploads.xlsx_too_many_rows(cap)
                    raise _refused(too_many.row, too_many.message)
                rows.append([cell_text(v) for v in (row or ())])
        finally:
            book.close()
        if len(rows) < header_row:
            raise _refused(header_row, f"the sheet has no row {header_row} for the header")
        names = unique_names(rows[header_row - 1])
        body = rows[header_row:]  # empty rows kept until the mapping has read the dates
        table = pa.table(
            {n: pa.array([r[i] if i < len(r) else "" for r in body], pa.string())
             for i, n in enumerate(names)}
        )  # fmt: skip
    else:
        from pyarrow import csv as pacsv

        if data.startswith(b"\xef\xbb\xbf"):
            data = data[3:]
        head = csv_rows(data[: uploads.HEADER_MAX_BYTES * 4], rows=header_row)
        if len(head) < header_row:
            raise _refused(header_row, f"the file has no row {header_row} for the header")
        names = unique_names(head[header_row - 1])
        try:
            table = pacsv.read_csv(
                io.BytesIO(data),
                read_options=pacsv.ReadOptions(column_names=names, skip_rows=header_row),
                # An empty line stays a row (of empty fields) so that later rows keep their
                # numbers; _numbered leaves it out.
                parse_options=pacsv.ParseOptions(ignore_empty_lines=False),
                convert_options=pacsv.ConvertOptions(
                    column_types={n: pa.string() for n in names},
                    strings_can_be_null=False,
                    quoted_strings_can_be_null=False,
                ),
            )
        except pa.ArrowInvalid as exc:
            detail = str(exc).split("\n", 1)[0][:200]
            raise _refused(None, f"the file cannot be read as CSV: {detail}") from exc
    mapped = MappedBatches(fields=fields, mapping=mapping, first_row=header_row + 1)
    missing = [c for c in mapping.columns if c not in names]
    if missing:
        problems = Problems()
        for column in missing:
            problems.add(header_row, column, "the file has no such column")
        raise CaseFileRefused(problems)
    batch = pa.RecordBatch.from_arrays(
        [table.column(n).combine_chunks() for n in names], names=names
    )
    try:
        canonical = mapped.convert(batch, first_row=header_row + 1)
    except TableRefused as refused:
        raise CaseFileRefused(refused.problems) from refused
    frame = pd.DataFrame(
        {n: canonical.column(n).to_pandas().astype("string") for n in canonical.schema.names}
    )
    frame = _numbered(frame, first_row=header_row + 1)
    frame.attrs["labels"] = mapped.labels
    return frame


def _numbered(frame: pd.DataFrame, *, first_row: int) -> pd.DataFrame:
    """The frame without its empty rows (an empty line, a line of separators, an empty row of
    a sheet); ``attrs["row_numbers"]`` keeps each remaining row's number in the file, so a
    problem names the row the file has. One look at the first column when none is empty."""
    numbers = np.arange(first_row, first_row + len(frame))
    columns = list(frame.columns)
    empty = _empty_cells(frame[columns[0]]) if columns else np.zeros(len(frame), dtype=bool)
    if empty.any():
        for name in columns[1:]:
            empty &= _empty_cells(frame[name])
        if empty.any():
            frame = frame[~empty].reset_index(drop=True)
            numbers = numbers[~empty]
    frame.attrs["row_numbers"] = numbers
    frame.attrs["first_row"] = first_row
    return frame


def _empty_cells(series: pd.Series) -> np.ndarray:
    blank = np.array(series.isna().to_numpy(dtype=bool), dtype=bool)  # a writable copy
    if pd.api.types.is_string_dtype(series.dtype) or series.dtype == object:
        text = series.astype("string").str.strip() == ""
        blank |= text.fillna(True).to_numpy(dtype=bool)
    return blank


def _refused(row: int | None, message: str) -> CaseFileRefused:
    problems = Problems()
    problems.add(row, "", message)
    return CaseFileRefused(problems)


def casefile_read(
    data: bytes,
    *,
    filename: str,
    mapping: ColumnMapping | None = None,
    fields: FieldSet | None = None,
) -> pd.DataFrame:
    """The file as a frame of text columns (nothing inferred yet: validation decides types).

    Runs in the worker only. An Excel workbook's declared sizes and rows are checked against
    the caps before it is read; a CSV that is not UTF-8, has a bad header or a row with the
    wrong number of fields is refused naming the row. With a mapping (and the fields it reads
    into), the file's own layout is read (:func:`_read_mapped`)."""
    from comanage.core import uploads

    if mapping is not None and fields is not None:
        if not data or data.isspace():
            raise _refused(None, "the file is empty")
        if not filename.lower().endswith((".xlsx", ".xlsm")):
            bad_text = uploads.utf8_problem(io.BytesIO(data))
            if bad_text is not None:
                raise _refused(bad_text.row, bad_text.message)
        return _read_mapped(data, filename=filename, mapping=mapping, fields=fields)

    if filename.lower().endswith((".xlsx", ".xlsm")):
        return _numbered(_read_xlsx(data), first_row=2)
    if not data or data.isspace():  # (not ``data.strip()``: that copies the whole file)
        raise _refused(None, "the file is empty")
    try:
        names = uploads.csv_header(
            data[: uploads.HEADER_MAX_BYTES + 4], at_end=len(data) <= uploads.HEADER_MAX_BYTES + 4
        )
    except uploads.FileProblem as problem:
        raise _refused(problem.row, problem.message) from problem
    bad_text = uploads.utf8_problem(io.BytesIO(data))
    if bad_text is not None:
        raise _refused(bad_text.row, bad_text.message)
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    ragged = [0]
    try:
        frame = _read_csv_arrow(data, names=names, ragged=ragged)
    except Exception as exc:  # noqa: BLE001 - pyarrow reports unreadable text as ArrowInvalid
        if not ragged[0]:
            detail = str(exc).split("\n", 1)[0][:200]
            raise _refused(None, f"the file cannot be read as CSV: {detail}") from exc
        frame = None
    if ragged[0]:
        found = uploads.csv_ragged_rows(io.BytesIO(data), expected=len(names), keep=MAX_PROBLEMS)
        problems = Problems()
        for row, message in found.items:
            problems.add(row, "", message)
        problems.total = max(found.total, ragged[0], problems.total)
        raise CaseFileRefused(problems)
    assert frame is not None
    frame.columns = [str(c).strip() for c in frame.columns]
    return _numbered(frame, first_row=2)


def _read_xlsx(data: bytes) -> pd.DataFrame:
    from comanage.core import uploads

    try:
        uploads.xlsx_check(io.BytesIO(data))
    except uploads.FileProblem as problem:
        raise _refused(problem.row, problem.message) from problem
    cap = uploads.xlsx_row_cap()
    try:
        # Read-only openpyxl underneath; one row past the cap says the sheet is over it.
        frame = pd.read_excel(io.BytesIO(data), dtype=str, engine="openpyxl", nrows=cap)
    except Exception as exc:  # noqa: BLE001 - any unreadable workbook is the user's problem
        raise _refused(None, f"not a readable Excel workbook: {str(exc)[:200]}") from exc
    if len(frame) >= cap:
        too_many = uploads.xlsx_too_many_rows(cap)
        raise _refused(too_many.row, too_many.message)
    frame.columns = [str(c).strip() for c in frame.columns]
    return frame.astype("string")


def casefile_head(stream, *, spec: FileSpec, rows: int = 10) -> dict[str, object]:
    """The preview the web page shows before the import runs, from the start of a CSV only
    (never the whole file, never an Excel workbook: the worker reads those)."""
    from comanage.core import uploads

    head = uploads.csv_head(stream, rows=rows)
    columns = [str(c).strip() for c in head.names]
    return {
        "columns": columns,
        "required": [
            {"name": n, "kind": k, "present": n in columns} for n, k in spec.columns.items()
        ],
        "extra": [c for c in columns if c not in spec.columns],
        "rows": head.rows,
        "row_count": None,
        "partial": not head.whole_file,
        "problems": [{"row": row, "message": message} for row, message in head.problems],
    }


def _read_csv_arrow(data: bytes, *, names: list[str], ragged: list[int]) -> pd.DataFrame:
    """pyarrow's multithreaded reader: numbers, dates and true/false are typed natively in C++
    (the case id always stays text, so leading zeros survive); a column whose values do not
    all parse stays text, and validation then finds the rows that are wrong. A row with the
    wrong number of fields is counted in ``ragged`` (the caller locates it)."""
    import pyarrow as pa
    from pyarrow import csv as pacsv

    def skip(_row) -> str:
        ragged[0] += 1
        return "skip"

    column_types = {name: pa.string() for name in names if name == CASE_ID}
    table = pacsv.read_csv(
        io.BytesIO(data),
        parse_options=pacsv.ParseOptions(invalid_row_handler=skip, ignore_empty_lines=False),
        # Arrow's default ISO-8601 parser is strict: 2025-02-30 leaves the column as text (and
        # validation reports the row), where a "%Y-%m-%d" strptime parser would roll it over to
        # 2025-03-02.
        convert_options=pacsv.ConvertOptions(column_types=column_types, strings_can_be_null=True),
    )
    return table.to_pandas(types_mapper=pd.ArrowDtype)


def _arrow_kind(series: pd.Series) -> str | None:
    """The kind pyarrow already gave the column, if any."""
    import pyarrow as pa

    dtype = series.dtype
    if not isinstance(dtype, pd.ArrowDtype):
        return None
    arrow = dtype.pyarrow_dtype
    if pa.types.is_integer(arrow) or pa.types.is_floating(arrow):
        return "number"
    if pa.types.is_date(arrow) or pa.types.is_timestamp(arrow):
        return "date"
    if pa.types.is_boolean(arrow):
        return "boolean"
    if pa.types.is_null(arrow):
        return "null"
    return None


def _typed_fast(series: pd.Series, kind: str) -> object | None:
    """The column converted without looking at text, when pyarrow already typed it."""
    native = _arrow_kind(series)
    if native == "null":
        if kind == "number":
            return np.full(len(series), np.nan)
        if kind == "date":
            return np.full(len(series), np.datetime64("NaT"), dtype="datetime64[us]")
        if kind == "boolean":
            return pd.array([None] * len(series), dtype="boolean")
        return None
    if native != kind:
        return None
    import pyarrow as pa

    chunked = pa.chunked_array(pa.array(series.array))  # the Arrow data (__arrow_array__), no copy
    if kind == "number":
        return chunked.cast(pa.float64()).to_numpy().astype("float64", copy=False)
    if kind == "date":
        return np.asarray(chunked.cast(pa.timestamp("us")).to_numpy(), dtype="datetime64[us]")
    values = np.asarray(chunked.fill_null(False).to_numpy(), dtype=bool)
    mask = np.asarray(chunked.is_null().to_numpy(), dtype=bool)
    return pd.arrays.BooleanArray(values, mask)


def _as_text(series: pd.Series) -> pd.Series:
    if isinstance(series.dtype, pd.ArrowDtype) and _arrow_kind(series) is not None:
        return series.astype("string")
    return series if pd.api.types.is_string_dtype(series.dtype) else series.astype("string")


def _blank(series: pd.Series) -> np.ndarray:
    return (series.isna() | (series.str.strip() == "")).fillna(True).to_numpy(dtype=bool)


def _duplicated(ids: pd.Series) -> np.ndarray:
    """Rows repeating an earlier id. Hashing the ids once with Arrow answers the usual case
    (all distinct) in a third of the time of ``Series.duplicated``; only a file that does
    repeat an id pays for locating the rows."""
    import pyarrow as pa
    import pyarrow.compute as pc

    arrow = pa.array(ids, type=pa.string(), from_pandas=True)
    if isinstance(arrow, pa.ChunkedArray):
        arrow = arrow.combine_chunks()
    encoded = pc.dictionary_encode(arrow)
    if len(encoded.dictionary) + encoded.null_count == len(ids):
        return np.zeros(len(ids), dtype=bool)
    return ids.duplicated(keep="first").fillna(False).to_numpy(dtype=bool)


def _convert(series: pd.Series, kind: str) -> tuple[object, np.ndarray, np.ndarray]:
    """(converted column, blank mask, bad mask)."""
    fast = _typed_fast(series, kind)
    if fast is not None:
        bad = np.zeros(len(series), dtype=bool)
        if kind == "number":
            # Case fields that are numbers are ages, durations and counts: never negative.
            assert isinstance(fast, np.ndarray)  # numbers come back as a float64 array
            bad = np.asarray(fast < 0, dtype=bool)
        return fast, np.zeros(0, dtype=bool), bad
    series = _as_text(series)
    blank = _blank(series)
    text = series.str.strip()
    if kind == "number":
        numbers = pd.to_numeric(text.str.replace(",", "", regex=False), errors="coerce")
        values = numbers.to_numpy(dtype="float64", na_value=np.nan)
        return values, blank, (np.isnan(values) | (values < 0)) & ~blank
    if kind == "date":
        parsed = pd.to_datetime(text, format="ISO8601", errors="coerce")
        values = parsed.to_numpy(dtype="datetime64[us]")
        return values, blank, np.isnat(values) & ~blank
    if kind == "boolean":
        words = text.str.lower()
        is_true = words.isin(TRUE_WORDS).fillna(False).to_numpy(dtype=bool)
        is_false = words.isin(FALSE_WORDS).fillna(False).to_numpy(dtype=bool)
        bad = ~(is_true | is_false | blank)
        values = pd.array(np.where(blank, None, is_true), dtype="boolean")
        return values, blank, bad
    return series.where(~blank, None), blank, np.zeros(len(series), dtype=bool)


_KIND_WORDS = {
    "number": "a number (zero or more)",
    "date": "an ISO date (YYYY-MM-DD)",
    "boolean": "true or false",
}


def _quoted(value: object, limit: int = 60) -> str:
    """A cell quoted for a problem message, cut short: a 1 MB cell must not make a 1 MB message."""
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "…"


def casefile_validate(
    frame: pd.DataFrame, *, spec: FileSpec, period_start: dt.date, period_end: dt.date
) -> pd.DataFrame:
    """Check the whole file; return it with typed columns, or raise ``CaseFileRefused``.

    Checks, in order: required columns; case ids present and unique; each value readable as its
    column's kind; every case date inside the measurement period.
    """
    problems = Problems(
        labels=frame.attrs.get("labels", {}),
        first_row=frame.attrs.get("first_row", 2),
        row_numbers=frame.attrs.get("row_numbers"),
    )
    missing = [name for name in spec.columns if name not in frame.columns]
    for name in missing:
        problems.add(1, name, f"required column {name!r} is missing")
    if CASE_ID in missing or len(frame) == 0:
        if len(frame) == 0:
            problems.add(None, "", "the file has no case rows")
        raise CaseFileRefused(problems)

    typed = frame.copy(deep=False)
    id_text = _as_text(frame[CASE_ID])
    ids = id_text.str.strip()
    blank_ids = _blank(id_text)
    problems.add_rows(blank_ids, CASE_ID, lambda _pos: "case id is empty")
    duplicated = _duplicated(ids) & ~blank_ids
    if duplicated.any():
        id_values = ids.to_numpy()
        problems.add_rows(
            duplicated,
            CASE_ID,
            lambda pos: f"duplicate case id {_quoted(id_values[pos])} (one row per case)",
        )
    typed[CASE_ID] = ids

    for name, kind in spec.columns.items():
        if name == CASE_ID or name in missing:
            continue
        values, _blank_mask, bad = _convert(frame[name], kind)
        if bad.any():
            raw = frame[name].to_numpy()
            problems.add_rows(
                bad,
                name,
                lambda pos, raw=raw, kind=kind: f"{_quoted(raw[pos])} is not {_KIND_WORDS[kind]}",
            )
        typed[name] = values

    start = np.datetime64(period_start, "us")
    end = np.datetime64(period_end + dt.timedelta(days=1), "us")
    for name in spec.date_fields:
        if name in missing:
            continue
        dates = typed[name].to_numpy(dtype="datetime64[us]")
        outside = ~np.isnat(dates) & ((dates < start) | (dates >= end))
        if outside.any():
            problems.add_rows(
                outside,
                name,
                lambda pos, dates=dates: (
                    f"{str(dates[pos])[:10]} is outside the period "
                    f"{period_start.isoformat()} to {period_end.isoformat()}"
                ),
            )
    if problems:
        raise CaseFileRefused(problems)
    return typed


def casefile_evaluate(
    frame: pd.DataFrame, *, definitions: Mapping[str, MeasureDefinition], spec: FileSpec
) -> dict[str, PopulationResult]:
    """Every indicator's populations for every case, sharing the typed columns."""
    problems = Problems()
    try:
        # casefile_validate has refused empty and repeated ids already.
        return populations_evaluate_many(
            definitions,
            frame,
            case_id_field=CASE_ID,
            field_types=spec.columns,
            case_ids_checked=True,
        )
    except CriteriaInvalid as exc:
        for error in exc.errors:
            problems.add(None, "", f"indicator criteria: {error}")
    except CriteriaDataError as exc:
        problems.add(None, exc.field_name or "", str(exc))
    except MeasureDataError as exc:
        problems.add(None, "", str(exc))
    raise CaseFileRefused(problems)


def casefile_preview(frame: pd.DataFrame, *, spec: FileSpec, rows: int = 10) -> dict[str, object]:
    """The first rows and how the detected columns line up with the ones required."""
    columns = list(frame.columns)
    return {
        "columns": columns,
        "required": [
            {"name": n, "kind": k, "present": n in columns} for n, k in spec.columns.items()
        ],
        "extra": [c for c in columns if c not in spec.columns],
        "rows": frame.head(rows).fillna("").astype(str).to_numpy().tolist(),
        "row_count": len(frame),
    }


def template_csv(spec: FileSpec, sample: Sequence[Sequence[str]] = ()) -> str:
    """A CSV with the required header (and optional sample rows) for download."""
    out = io.StringIO()
    pd.DataFrame(list(sample), columns=spec.header).to_csv(out, index=False)
    return out.getvalue()
