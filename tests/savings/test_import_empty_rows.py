"""Empty rows in a hospital's export (an empty line, a line of separators, an empty row of a
sheet) are passed over, and every problem after them still names the row the file has: the
readers no longer drop a line and count the rows after it one short."""

from __future__ import annotations

import datetime as dt
import io
from decimal import Decimal

import pytest

from savings import services
from savings.models import ImportStatus, PriceItem, UsageRow
from tests.savings.test_import_mapping import US_COLUMNS, _receive, agreement  # noqa: F401

pytestmark = pytest.mark.django_db
HEADER = "Case,DOS,Type,NPI,Federal,Item,Qty,Unit Cost,Weight"


def _row(case: str, day: str, quantity: str = "1") -> str:
    return f"{case},{day},CATH,1000000004,Y,A1,{quantity},$10.00,1"


def _mapped(world, data_import, columns=US_COLUMNS):  # type: ignore[no-untyped-def]
    services.data_import_map(
        data_import=data_import, user=world.users["administrator"], columns=columns
    )


def _problems(world, data_import):  # type: ignore[no-untyped-def]
    with pytest.raises(services.ImportRefused) as refused:
        services.data_import_apply(data_import=data_import)
    assert not UsageRow.objects.filter(data_import=data_import).exists()
    return [(p["row"], p["column"], p["message"]) for p in refused.value.problems.items]


@pytest.mark.parametrize(
    "gap", ["", ",,,,,,,,", " , ,,,,,,,", "\r"], ids=["empty", "separators", "spaces", "cr"]
)
def test_a_problem_after_an_empty_line_names_the_files_row(world, agreement, gap):  # noqa: F811
    lines = [HEADER, _row("c1", "1/13/2025"), gap, _row("c2", "1/14/2025", "-1")]
    with world.scope():
        data_import = _receive(world, agreement, "gap.csv", "\n".join(lines).encode() + b"\n")
        _mapped(world, data_import)
        assert _problems(world, data_import) == [(4, "Qty", "negative quantity -1 is refused")]


def test_empty_lines_in_the_middle_and_at_the_end_are_passed_over(world, agreement):  # noqa: F811
    lines = [HEADER, _row("c1", "1/13/2025"), "", ",,,,,,,,", _row("c2", "1/14/2025"), ",,,,,,,,"]
    with world.scope():
        data_import = _receive(
            world, agreement, "gaps.csv", ("\r\n".join(lines) + "\r\n\r\n").encode()
        )
        _mapped(world, data_import)
        services.data_import_apply(data_import=data_import)
        data_import.refresh_from_db()
        assert data_import.status == ImportStatus.APPLIED
        assert data_import.row_count == 2
        assert sorted(UsageRow.objects.values_list("case_id", flat=True)) == ["c1", "c2"]


def test_a_file_of_only_empty_rows_has_no_data_rows(world, agreement):  # noqa: F811
    with world.scope():
        data_import = _receive(world, agreement, "none.csv", f"{HEADER}\n,,,,,,,,\n\n".encode())
        _mapped(world, data_import)
        assert _problems(world, data_import) == [(None, "", "the file has no data rows")]


def _workbook(rows: list[list[object]]) -> bytes:
    from openpyxl import Workbook

    book = Workbook()
    for row in rows:
        book.active.append(row)
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


def test_a_problem_after_an_empty_sheet_row_names_the_sheets_row(world, agreement):  # noqa: F811
    good = ["c1", dt.datetime(2025, 1, 5), "CATH", 1000000004, "Y", "A1", 1, 12.5, 1]
    bad = ["c2", dt.datetime(2025, 1, 6), "CATH", 1000000004, "Y", "A1", -1, 12.5, 1]
    content = _workbook([HEADER.split(","), good, [None, None], ["", " "], bad])
    with world.scope():
        data_import = _receive(world, agreement, "gap.xlsx", content)
        _mapped(world, data_import)
        assert _problems(world, data_import) == [(5, "Qty", "negative quantity -1 is refused")]


def test_a_repeated_price_after_an_empty_line_names_both_rows_as_the_file_has_them(
    world,
    agreement,  # noqa: F811
):
    content = b"Item No,Contract Price\nA1,$10.00\n\nB1,$5.00\n,\nA1,$11.00\n"
    with world.scope():
        prices = _receive(world, agreement, "prices.csv", content, kind="prices")
        _mapped(world, prices, {"Item No": "item_code", "Contract Price": "unit_cost"})
        with pytest.raises(services.ImportRefused) as refused:
            services.data_import_apply(data_import=prices)
        assert [(p["row"], p["message"]) for p in refused.value.problems.items] == [
            (6, "duplicate row: item A1 is already on row 2")
        ]
        assert not PriceItem.objects.filter(data_import=prices).exists()


def test_empty_lines_in_a_price_file_are_passed_over(world, agreement):  # noqa: F811
    content = b'Item No,Contract Price\n\nA1,$10.00\n,\nB1,"$1,005.00"\n\n'
    with world.scope():
        prices = _receive(world, agreement, "prices.csv", content, kind="prices")
        _mapped(world, prices, {"Item No": "item_code", "Contract Price": "unit_cost"})
        services.data_import_apply(data_import=prices)
        assert dict(
            PriceItem.objects.filter(data_import=prices).values_list("item_code", "unit_cost")
        ) == {"A1": Decimal("10"), "B1": Decimal("1005")}


def test_a_row_with_too_many_fields_after_an_empty_line_names_the_files_row(world, agreement):  # noqa: F811
    lines = [HEADER, _row("c1", "1/13/2025"), "", _row("c2", "1/14/2025") + ",extra"]
    with world.scope():
        data_import = _receive(world, agreement, "ragged.csv", "\n".join(lines).encode() + b"\n")
        _mapped(world, data_import)
        problems = _problems(world, data_import)
    assert [(row, message[:24]) for row, _column, message in problems] == [
        (4, "10 fields, expected 9 (t")
    ]
