"""The mapping step shown after an upload: where the header is, what each column holds, the
proposed (or saved) mapping and what is still wrong with it. Pure: the caller reads the
file's first rows and passes the organization's saved mappings."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from . import formats
from .header import HEAD_ROWS, find_header, header_key, header_signature
from .mapping import ColumnMapping, FieldSet, check, propose, unique_names
from .problems import short

SAMPLE_ROWS = 5


def header_digest(header: Sequence[str]) -> str:
    return hashlib.sha256(header_signature(header).encode()).hexdigest()


@dataclass(frozen=True)
class SavedMapping:
    id: int
    name: str
    version: int
    header_digest: str
    mapping: ColumnMapping
    header: tuple[str, ...] = ()  # the header it was saved from (as that file wrote it)


def _keys(cells: Sequence[str]) -> set[str]:
    return {k for k in (header_key(c) for c in cells) if k}


def _saved_header_at(
    rows: Sequence[Sequence[str]], saved: Sequence[SavedMapping], sheet: str
) -> tuple[SavedMapping, int] | None:
    """The saved mapping whose header the file has, and the row it is on. The same header on
    the saved row first (the usual next month's file); else, on any of the first rows, the
    same columns however written (case, spacing), in any order, with unmapped columns added
    (``ITEM NO , contract  price`` is still the saved ``Item No, Contract Price``); else the
    columns the mapping reads, all present."""
    candidates = [c for c in saved if not sheet or (c.mapping.sheet or "") in ("", sheet)]
    for candidate in candidates:
        number = candidate.mapping.header_row
        if len(rows) >= number and header_digest(rows[number - 1]) == candidate.header_digest:
            return candidate, number
    head = [(n, _keys(row)) for n, row in enumerate(rows[:HEAD_ROWS], start=1)]
    for wanted in (lambda c: _keys(c.header), lambda c: _keys(list(c.mapping.columns))):
        for candidate in candidates:
            keys = wanted(candidate)
            if not keys:
                continue
            order = sorted(head, key=lambda h: h[0] != candidate.mapping.header_row)
            for number, present in order:
                if keys <= present:
                    return candidate, number
    return None


def sheet_to_read(
    heads: Mapping[str, Sequence[Sequence[str]]],
    *,
    fields: FieldSet,
    saved: Sequence[SavedMapping] = (),
) -> str:
    """The sheet a workbook's data is on when the user has chosen none: the first whose header
    a saved mapping knows, else the first whose header can be found (an empty or notes sheet
    in front is passed over), else the first sheet."""
    names = list(heads)
    for name in names:
        if _saved_header_at(heads[name], saved, name) is not None:
            return name
    for name in names:
        if not _empty(heads[name]) and find_header(heads[name], fields.keys) is not None:
            return name
    return names[0] if names else ""


def _separator_hint(rows: Sequence[Sequence[str]]) -> str:
    """Why a CSV's header may not be found: its fields are separated by semicolons or tabs
    (read as one column each row), which the importer does not read."""
    cells = [str(r[0]) for r in rows[:HEAD_ROWS] if len(r) == 1]
    for separator, name in ((";", "semicolons"), ("\t", "tabs")):
        if sum(separator in c for c in cells) >= 2:
            return f"; its columns are separated by {name}: save it as CSV with commas"
    return ""


def _empty(rows: Sequence[Sequence[str]]) -> bool:
    return not any(str(c).strip() for r in rows for c in r)


def mapping_step(
    rows: Sequence[Sequence[str]],
    *,
    fields: FieldSet,
    saved: Sequence[SavedMapping] = (),
    sheets: Sequence[str] = (),
    sheet: str = "",
    header_row: int | None = None,
) -> dict[str, Any]:
    """Everything the mapping form shows, as plain data."""
    step: dict[str, Any] = {
        "sheets": list(sheets),
        "sheet": sheet,
        "fields": [
            {"name": f.name, "label": f.label, "required": f.required, "kind": f.kind}
            for f in fields
        ],
        "date_formats": list(formats.DATE_FORMATS.items()),
        "date_format": "auto",
        "header_row": None,
        "header": [],
        "columns": [],
        "saved": None,
        "canonical": False,
        "problems": [],
        "issues": [],
        "hints": [],
    }
    if _empty(rows):
        where = f"the sheet {sheet!r}" if sheet else "the file"
        step["problems"].append(
            {"row": None, "column": "", "message": f"{where} is empty: there is nothing to map"}
        )
        return step
    chosen = None
    if header_row is None:
        found = _saved_header_at(rows, saved, sheet)
        if found is not None:
            chosen, header_row = found
    if header_row is None:
        header_row = find_header(rows, fields.keys)
    if header_row is None or header_row > len(rows):
        examples = ", ".join(f.label.lower() for f in fields if f.required)
        step["problems"].append(
            {
                "row": None,
                "column": "",
                "message": f"the header cannot be found: none of the first {HEAD_ROWS} rows "
                f"names the columns this import needs ({examples}){_separator_hint(rows)}",
            }
        )
        return step
    header = unique_names(rows[header_row - 1])
    data = [r for r in rows[header_row : header_row + SAMPLE_ROWS * 4] if any(r)][:SAMPLE_ROWS]
    samples = {h: [r[i] if i < len(r) else "" for r in data] for i, h in enumerate(header)}
    proposal = (
        chosen.mapping.on_header(header, header_row=header_row, sheet=sheet).columns
        if chosen
        else propose(fields, header, samples)
    )
    step.update(
        header_row=header_row,
        header=header,
        columns=[
            {
                "header": h,
                "samples": [short(v) for v in samples[h][:3]],
                "field": proposal.get(h, ""),
            }
            for h in header
        ],
        saved=(
            {"id": chosen.id, "name": chosen.name, "version": chosen.version} if chosen else None
        ),
        date_format=chosen.mapping.date_format if chosen else "auto",
        canonical=chosen is None and header_row == 1 and fields.is_canonical(header),
        issues=check(fields, header, proposal),
        samples=samples,
    )
    if step["date_format"] == "auto":
        step["hints"] = date_hints(fields, proposal, samples)
    return step


def date_hints(
    fields: FieldSet, columns: dict[str, str], samples: dict[str, list[str]]
) -> list[dict[str, Any]]:
    """Date columns whose first rows read both as month/day and as day/month: the rows further
    down may settle it, else the import is refused, so the form says so before it runs."""
    import pyarrow as pa

    hints = []
    for column, name in columns.items():
        f = fields.get(name)
        if f is None or f.kind != "date":
            continue
        try:
            formats.detect_date_format(pa.array(samples.get(column, []), pa.string()))
        except formats.AmbiguousDates as ambiguous:
            hints.append(
                {
                    "row": None,
                    "column": column,
                    "message": f"{column}: the first rows' dates, such as {ambiguous.example}, "
                    "fit both month/day/year and day/month/year. Choose the date format below "
                    "unless a later row settles it (a day over 12); otherwise the file is "
                    "refused.",
                }
            )
    return hints


def needs_formats(fields: FieldSet, columns: dict[str, str], samples: dict[str, list[str]]) -> bool:
    """Whether any sample value is not already canonical text (a US date, a dollar amount,
    a Y/N): then the file must be read through the mapping's formats."""
    import pyarrow as pa

    for column, name in columns.items():
        f = fields.get(name)
        values = [v for v in samples.get(column, []) if v.strip()]
        if f is None or not values or f.kind == "text":
            continue
        array = pa.array(values, pa.string())
        fmt = formats.ColumnFormat(f.kind, "iso" if f.kind == "date" else "auto")
        parsed, _ = formats.parse_column(array, fmt)
        if f.kind == "date":
            if parsed.to_pylist() != values or any("/" in v for v in values):
                return True
            continue
        if parsed.to_pylist() != values:
            return True
    return False
