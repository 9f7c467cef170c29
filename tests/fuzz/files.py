"""Hypothesis strategies for malformed import files (CSV and XLSX).

A file is built in three steps: a header (the right columns, some missing, extra or doubled),
rows of cells (plausible values mixed with hostile ones: formulas, negative and non-numeric
amounts, impossible dates, 1 MB cells, control characters), and a rendering (CSV in UTF-8,
UTF-8 with BOM, UTF-16, latin-1 or cp1252, another delimiter, CRLF; or XLSX) that may then be
damaged (truncated, emptied, header only, replaced by binary garbage).
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass

from hypothesis import strategies as st

FORMULAS = (
    "=cmd|' /C calc'!A0",
    "=1+1",
    "+SUM(A1:A9)",
    "-2+3",
    "@SUM(1)",
    '=HYPERLINK("http://x")',
    "\t=1",
    "\r=1",
)
HOSTILE = (
    "",
    " ",
    "-5",
    "-0.01",
    "abc",
    "1,234.50",
    "$12",
    "1e5",
    "NaN",
    "inf",
    "１２",
    "12.123456",
    "0x1F",
    "2025-02-30",
    "2025-13-01",
    "0000-00-00",
    "9999-12-31",
    "1899-12-31",
    "31/12/2025",
    "2025/01/01",
    "yes please",
    "TRUE",
    "null",
    "None",
    "\x00",
    "é",
    "ü\u200b",
    "\u202e",
    "😀",
    "'quoted'",
    '"',
    "a\nb",
    *FORMULAS,
)
HUGE = "x" * (1 << 20)  # a 1 MB cell


@dataclass(frozen=True)
class Columns:
    """What an importer expects: every column, the required ones, plausible values."""

    names: tuple[str, ...]
    required: tuple[str, ...]
    plausible: dict[str, tuple[str, ...]]


@dataclass
class FuzzFile:
    name: str
    data: bytes
    note: str

    def __repr__(self) -> str:  # hypothesis prints this on failure
        return f"FuzzFile({self.name!r}, {len(self.data)} bytes, {self.note}, {self.data[:300]!r})"


def _cell(columns: Columns, column: str) -> st.SearchStrategy[str]:
    plausible = columns.plausible.get(column, ("x",))
    return st.one_of(
        st.sampled_from(plausible),
        st.sampled_from(plausible),
        st.sampled_from(plausible),
        st.sampled_from(HOSTILE),
        st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=12),
    )


@st.composite
def headers(draw: st.DrawFn, columns: Columns) -> list[str]:
    names = list(columns.names)
    if draw(st.booleans()):
        drop = draw(st.sets(st.sampled_from(names), max_size=3))
        names = [n for n in names if n not in drop]
    if draw(st.integers(0, 4)) == 0:
        names.append(
            draw(
                st.sampled_from(
                    ("extra", "notes", "", "case_id", " Case ID ", "=cmd|' /C calc'!A0")
                )
            )
        )
    if draw(st.integers(0, 5)) == 0:
        names = draw(st.permutations(names))
    return names


@st.composite
def tables(draw: st.DrawFn, columns: Columns) -> tuple[list[str], list[list[str]]]:
    header = draw(headers(columns))
    count = draw(st.integers(0, 6))
    rows = []
    for _ in range(count):
        row = [draw(_cell(columns, name)) for name in header]
        if row and draw(st.integers(0, 6)) == 0:  # ragged: a cell too few or too many
            row = row[:-1] if draw(st.booleans()) else [*row, "surplus"]
        rows.append(row)
    # A 1 MB cell in one file of ten: rare but real, and it keeps the run fast.
    if rows and rows[0] and draw(st.integers(0, 9)) == 0:
        rows[draw(st.integers(0, len(rows) - 1))][0] = HUGE
    return header, rows


def _csv_text(header: list[str], rows: list[list[str]], delimiter: str, newline: str) -> str:
    out = io.StringIO()
    writer = csv.writer(out, delimiter=delimiter, lineterminator=newline)
    writer.writerow(header)
    writer.writerows(rows)
    return out.getvalue()


def _xlsx_bytes(header: list[str], rows: list[list[str]]) -> bytes:
    from openpyxl import Workbook

    workbook = Workbook(write_only=True)
    sheet = workbook.create_sheet("data")
    sheet.append(header)
    for row in rows:
        # openpyxl refuses control characters; a real spreadsheet cannot hold them either.
        sheet.append([_xlsx_safe(v) for v in row])
    out = io.BytesIO()
    workbook.save(out)
    return out.getvalue()


def _xlsx_safe(value: str) -> str | float:
    from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE

    value = ILLEGAL_CHARACTERS_RE.sub("?", value)[:32767]
    try:
        number = float(value)
    except ValueError:
        return value
    return number if value.strip() and number == number and abs(number) < 1e15 else value


@st.composite
def files(draw: st.DrawFn, columns: Columns) -> FuzzFile:
    header, rows = draw(tables(columns))
    damage = draw(
        st.sampled_from(
            ("none",) * 6 + ("empty", "header only", "truncated", "garbage", "nul bytes")
        )
    )
    if damage == "garbage":
        data = draw(st.binary(min_size=1, max_size=400))
        return FuzzFile(draw(st.sampled_from(("data.csv", "data.xlsx"))), data, "garbage")
    if damage == "header only":
        rows = []
    if draw(st.integers(0, 4)) == 0:
        data = _xlsx_bytes(header, rows)
        if damage == "truncated":
            data = data[: len(data) // 2]
        elif damage == "empty":
            data = b""
        return FuzzFile("data.xlsx", data, f"xlsx {damage}")
    delimiter = draw(st.sampled_from((",",) * 5 + (";", "\t")))
    newline = draw(st.sampled_from(("\n", "\n", "\r\n", "\r")))
    encoding = draw(st.sampled_from(("utf-8",) * 4 + ("utf-8-sig", "utf-16", "latin-1", "cp1252")))
    text = _csv_text(header, rows, delimiter, newline)
    data = text.encode(encoding, errors="replace")
    if damage == "truncated":
        data = data[: draw(st.integers(0, max(0, len(data) - 1)))]
    elif damage == "empty":
        data = b""
    elif damage == "nul bytes":
        data = data.replace(b",", b"\x00,", 3)
    return FuzzFile(
        draw(st.sampled_from(("data.csv", "data.txt"))),
        data,
        f"csv {encoding} {delimiter!r} {newline!r} {damage}",
    )
