"""A case file's empty rows (an empty line, a line of separators, an empty sheet row) are
passed over, and a problem after them names the row the file has, read canonically or through
a mapping."""

from __future__ import annotations

import datetime as dt
import io

import pytest

from comanage.core.tabular.mapping import ColumnMapping
from indicators import casefile

SPEC = casefile.FileSpec(
    columns={"case_id": "text", "discharge_date": "date", "age": "number"},
    date_fields=("discharge_date",),
)
YEAR = {"period_start": dt.date(2025, 1, 1), "period_end": dt.date(2025, 12, 31)}


def _problems(frame):  # type: ignore[no-untyped-def]
    with pytest.raises(casefile.CaseFileRefused) as refused:
        casefile.casefile_validate(frame, spec=SPEC, **YEAR)
    return [(p.row, p.column, p.message) for p in refused.value.problems.items]


@pytest.mark.parametrize("gap", [b"", b",,", b" , ,"], ids=["empty", "separators", "spaces"])
def test_a_canonical_csv_names_the_files_row_after_an_empty_line(gap):
    data = b"case_id,discharge_date,age\nk1,2025-01-05,60\n" + gap + b"\nk2,2024-12-31,61\n\n"
    frame = casefile.casefile_read(data, filename="cases.csv")
    assert list(frame["case_id"]) == ["k1", "k2"]
    assert _problems(frame) == [
        (4, "discharge_date", "2024-12-31 is outside the period 2025-01-01 to 2025-12-31")
    ]


def test_a_mapped_csv_names_the_files_row_after_an_empty_line():
    data = b"Registry extract\n\nEncounter,Discharged,Age\nk1,1/5/2025,60\n\n,,\nk2,12/31/2024,61\n"
    mapping = ColumnMapping(
        columns={"Encounter": "case_id", "Discharged": "discharge_date", "Age": "age"},
        header_row=3,
    )
    frame = casefile.casefile_read(
        data, filename="cases.csv", mapping=mapping, fields=casefile.casefile_fields(SPEC)
    )
    assert list(frame["case_id"]) == ["k1", "k2"]
    assert _problems(frame) == [
        (7, "Discharged", "2024-12-31 is outside the period 2025-01-01 to 2025-12-31")
    ]


def test_a_workbook_names_the_sheets_row_after_an_empty_row():
    from openpyxl import Workbook

    book = Workbook()
    for row in (
        ["case_id", "discharge_date", "age"],
        ["k1", dt.datetime(2025, 1, 5), 60],
        [None, None, None],
        ["k2", dt.datetime(2024, 12, 31), 61],
    ):
        book.active.append(row)
    buffer = io.BytesIO()
    book.save(buffer)
    frame = casefile.casefile_read(buffer.getvalue(), filename="cases.xlsx")
    assert _problems(frame) == [
        (4, "discharge_date", "2024-12-31 is outside the period 2025-01-01 to 2025-12-31")
    ]
