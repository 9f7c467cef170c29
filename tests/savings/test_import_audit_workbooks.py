"""Issue 17 audit, usage files as a hospital's systems write them: a workbook whose first
sheet is empty (or notes) and whose data is on the second, under title rows, with Excel
dates (date cells and serial numbers), dollar amounts, parentheses, Y/N and NPIs with
dashes; nothing chosen by hand (the API's path). Bad input names the file's column."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from io import BytesIO

import pytest
from openpyxl import Workbook

from savings import services
from savings.models import UsageRow
from tests.savings.helpers import example_a_agreement, upload, year

pytestmark = pytest.mark.django_db
D = Decimal
HEADER = [
    "Case #",
    "Date of Service",
    "Case Type",
    "Surgeon NPI",
    "Federal?",
    "Item #",
    "Qty",
    "Cost Each",
    "Case Weight",
]


@pytest.fixture
def agreement(world):
    return example_a_agreement(world)


def _book(first_sheet: list[list[object]] | None, rows: list[list[object]]) -> bytes:
    book = Workbook()
    book.active.title = "Notes"
    for row in first_sheet or []:
        book.active.append(row)
    data = book.create_sheet("Usage")
    data.append(["Cath lab supply usage"])
    data.append(["Exported 1/31/2025"])
    data.append(HEADER)
    for row in rows:
        data.append(row)
    buffer = BytesIO()
    book.save(buffer)
    return buffer.getvalue()


ROWS = [
    ["c1", dt.datetime(2025, 1, 5), "CATH", "100-000-0004", "Y", "A1", 2, "$1,250.00", 1],
    ["c2", 45663, "CATH", "100 000 0004", "N", "A1", 1, "$955.67", 1],
    ["c3", dt.datetime(2025, 1, 7), "CATH", " 1000000004 ", "Yes", "A2", "1", "1250", "1"],
]


@pytest.mark.parametrize("first_sheet", [None, [["These are notes"], ["about the export"]]])
def test_the_data_on_the_second_sheet_is_found_and_read_with_nothing_chosen(
    world, agreement, first_sheet
):
    with world.scope():
        data_import = services.data_import_receive(
            agreement=agreement,
            kind="usage",
            period="programme",
            upload=upload("usage.xlsx", _book(first_sheet, ROWS)),
            user=world.users["administrator"],
            programme_year=year(agreement, 1),
        )
        services.data_import_head_read(data_import=data_import)
        step = services.data_import_mapping_step(data_import=data_import)
        assert step["sheet"] == "Usage" and step["header_row"] == 3
        columns = {c["header"]: c["field"] for c in step["columns"]}
        assert columns["Date of Service"] == "service_date"
        assert columns["Surgeon NPI"] == "physician_npi"
        services.data_import_map(
            data_import=data_import,
            user=world.users["administrator"],
            columns=columns,
        )
        services.data_import_apply(data_import=data_import)
        rows = UsageRow.objects.filter(data_import=data_import).order_by("case_id")
        assert [r.service_date for r in rows] == [
            dt.date(2025, 1, 5),
            dt.date(2025, 1, 6),
            dt.date(2025, 1, 7),
        ]
        assert [r.unit_cost for r in rows] == [D("1250"), D("955.67"), D("1250")]
        assert {r.physician_npi for r in rows} == {"1000000004"}
        assert [r.federal_program for r in rows] == [True, False, True]


US_CSV = (
    "\ufeffOR supply usage\r\nRun 2/1/2025 by MMIS\r\n"
    "Case #,DOS,Case Type,Surgeon NPI,Federal?,Item #,Qty,Cost Each,Case Weight,Room\r\n"
    'c1,1/5/25,CATH,100-000-0004,Yes,A1,2,"$1,250.00",1,OR 3\r\n'
    "c2,1/13/25,CATH, 100 000 0004 ,N,A2,1, $955.67 ,1,OR 4\r\n"
    "c3,1/13/25,CATH,1000000004,1,A2,{qty},$955.67,1.0,OR 4\r\n"
    "c4,1/14/2025,CATH,1000000004,FALSE,A2,1,955.67,1,OR 4\r\n"
)


def _csv_import(world, agreement, content: str):
    return services.data_import_receive(
        agreement=agreement,
        kind="usage",
        period="programme",
        upload=upload("us.csv", content.encode()),
        user=world.users["administrator"],
        programme_year=year(agreement, 1),
    )


def test_a_us_formatted_csv_under_title_rows_is_read_exactly(world, agreement):
    with world.scope():
        data_import = _csv_import(world, agreement, US_CSV.format(qty="3"))
        step = services.data_import_mapping_step(data_import=data_import)
        assert step["header_row"] == 3 and step["issues"] == []
        columns = {c["header"]: c["field"] for c in step["columns"]}
        assert columns["Room"] == ""
        services.data_import_map(
            data_import=data_import, user=world.users["administrator"], columns=columns
        )
        services.data_import_apply(data_import=data_import)
        rows = UsageRow.objects.filter(data_import=data_import).order_by("case_id")
        assert [(r.service_date, r.quantity, r.unit_cost, r.federal_program) for r in rows] == [
            (dt.date(2025, 1, 5), D("2"), D("1250"), True),
            (dt.date(2025, 1, 13), D("1"), D("955.67"), False),
            (dt.date(2025, 1, 13), D("3"), D("955.67"), True),
            (dt.date(2025, 1, 14), D("1"), D("955.67"), False),
        ]
        assert {r.physician_npi for r in rows} == {"1000000004"}


def test_a_trailing_minus_quantity_is_refused_naming_the_files_column(world, agreement):
    with world.scope():
        data_import = _csv_import(world, agreement, US_CSV.format(qty="3-"))
        step = services.data_import_mapping_step(data_import=data_import)
        columns = {c["header"]: c["field"] for c in step["columns"]}
        services.data_import_map(
            data_import=data_import, user=world.users["administrator"], columns=columns
        )
        with pytest.raises(services.ImportRefused) as refused:
            services.data_import_apply(data_import=data_import)
        problem = refused.value.problems.items[0]
        assert (problem["row"], problem["column"]) == (6, "Qty")
        assert "negative quantity -3 is refused" in problem["message"]
        assert not UsageRow.objects.filter(data_import=data_import).exists()


def test_a_roster_uploaded_as_usage_names_the_missing_fields_before_anything_runs(world, agreement):
    from pathlib import Path

    from django.core.exceptions import ValidationError

    roster = (
        Path(__file__).resolve().parent.parent / "data" / "exports" / "medical_staff_roster.csv"
    )
    with world.scope():
        data_import = _csv_import(world, agreement, roster.read_text())
        step = services.data_import_mapping_step(data_import=data_import)
        columns = {c["header"]: c["field"] for c in step.get("columns", [])}
        with pytest.raises(ValidationError) as refused:
            services.data_import_map(
                data_import=data_import, user=world.users["administrator"], columns=columns
            )
        text = " ".join(refused.value.messages)
        assert "has no column" in text or "header cannot be found" in text
        data_import.refresh_from_db()
        assert data_import.job_id is None and data_import.mapping_used == {}
