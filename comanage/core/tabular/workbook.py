"""An Excel workbook's sheets and the first rows of one (read-only openpyxl: cheap enough for
the web request once :func:`comanage.core.uploads.xlsx_check` has passed)."""

from __future__ import annotations

import datetime as dt
from typing import IO, Any


def cell_text(value: Any) -> str:
    """A cell as text: a date as ISO, a number as the shortest text that round-trips (what the
    user typed: 955.67), parsed exactly afterwards."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dt.datetime):
        return value.date().isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, float):
        text = repr(value)
        return text[:-2] if text.endswith(".0") else text
    return str(value).strip()


HEAD_SHEETS = 20  # sheets whose first rows the mapping step looks at


class EmptyWorkbook(ValueError):
    pass


def sheet_names(stream: IO[bytes]) -> list[str]:
    from openpyxl import load_workbook

    stream.seek(0)
    workbook = load_workbook(stream, read_only=True, data_only=True)
    try:
        return list(workbook.sheetnames)
    finally:
        workbook.close()
        stream.seek(0)


def sheet_head(stream: IO[bytes], *, sheet: str | None, rows: int = 40) -> list[list[str]]:
    """The first ``rows`` rows of the sheet (the first sheet when ``sheet`` is empty)."""
    from openpyxl import load_workbook

    stream.seek(0)
    workbook = load_workbook(stream, read_only=True, data_only=True)
    try:
        ws = workbook[sheet] if sheet else workbook.worksheets[0]
        out = []
        for row in ws.iter_rows(values_only=True, max_row=rows):
            out.append([cell_text(v) for v in (row or ())])
        return out
    finally:
        workbook.close()
        stream.seek(0)
