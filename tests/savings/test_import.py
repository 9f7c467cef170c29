"""Imports: every refusal rule, all-or-nothing, duplicates, versions, XLSX, the job path."""

from __future__ import annotations

import io
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError

from savings import selectors, services
from savings.models import DataImport, ImportStatus, UsageRow
from tests.savings.helpers import example_a_agreement, import_text, upload, usage_csv, year

pytestmark = pytest.mark.django_db
ADAMS = "1000000004"


@pytest.fixture
def agreement(world):
    return example_a_agreement(world)


def _refusal(world, agreement, content, *, kind="usage", period="programme", name="u.csv"):
    with world.scope(), pytest.raises(services.ImportRefused) as refused:
        import_text(
            world,
            agreement,
            kind=kind,
            period=period,
            name=name,
            content=content,
            programme_year=year(agreement, 1) if period == "programme" else None,
            base_year=2024 if period == "base" else None,
        )
    return refused.value.problems


@pytest.mark.parametrize(
    ("row", "column", "message"),
    [
        ({"quantity": "-1"}, "quantity", "negative quantity -1 is refused"),
        ({"unit_cost": "-5.00"}, "unit_cost", "negative unit cost -5.00 is refused"),
        ({"unit_cost": "10.12345"}, "unit_cost", "unit cost 10.12345 has more than 4 decimals"),
        ({"unit_cost": "$10"}, "unit_cost", "not a plain decimal number"),
        ({"physician_npi": "1999999999"}, "physician_npi", "unknown physician NPI 1999999999"),
        ({"service_date": "2024-12-31"}, "service_date", "outside the year 1"),
        ({"service_date": "03/01/2025"}, "service_date", "is not a date (YYYY-MM-DD)"),
        ({"federal_program": "maybe"}, "federal_program", "is not true/false"),
        ({"case_id": ""}, "case_id", "case_id is missing"),
        ({"severity_weight": ""}, "severity_weight", "severity weight is missing"),
        (
            {"severity_weight": "1000000"},
            "severity_weight",
            "severity weight 1000000 is too large (at most 999,999.9999)",
        ),
        (
            {"quantity": "1234567890123.5"},
            "quantity",
            "quantity 1234567890123.5 is too large (at most 999,999,999,999.9999)",
        ),
    ],
)
def test_a_bad_value_is_refused_with_row_column_and_reason(world, agreement, row, column, message):
    content = usage_csv(
        [
            {"case_id": "c1", "physician_npi": ADAMS, "item_code": "A1"},
            {"case_id": "c2", "physician_npi": ADAMS, "item_code": "A1", **row},
        ]
    )
    problems = _refusal(world, agreement, content)
    assert problems.total == 1
    assert problems.items[0]["row"] == 3
    assert problems.items[0]["column"] == column
    assert message in problems.items[0]["message"]
    with world.scope():
        assert not UsageRow.objects.exists()


def test_duplicate_rows_are_refused_naming_the_first(world, agreement):
    content = usage_csv(
        [
            {"case_id": "c1", "physician_npi": ADAMS, "item_code": "A1"},
            {"case_id": "c2", "physician_npi": ADAMS, "item_code": "A1"},
            {"case_id": "c1", "physician_npi": ADAMS, "item_code": "A1"},
        ]
    )
    problems = _refusal(world, agreement, content)
    assert problems.items == [
        {
            "row": 4,
            "column": "case_id",
            "message": "duplicate row: case c1 item A1 is already on row 2",
        }
    ]


def test_an_item_not_in_the_years_price_file_is_unknown(world, agreement):
    with world.scope():
        import_text(
            world,
            agreement,
            kind="prices",
            period="programme",
            name="p.csv",
            content="item_code,unit_cost\nA1,1250\n",
            programme_year=year(agreement, 1),
        )
    problems = _refusal(
        world, agreement, usage_csv([{"case_id": "c1", "physician_npi": ADAMS, "item_code": "ZZ9"}])
    )
    assert "unknown item ZZ9: not in the year's price file" in problems.items[0]["message"]


def test_a_price_file_missing_an_item_used_in_the_year_is_refused(world, agreement):
    with world.scope():
        import_text(
            world,
            agreement,
            kind="usage",
            period="programme",
            name="u.csv",
            content=usage_csv(
                [
                    {"case_id": "c1", "physician_npi": ADAMS, "item_code": "A1"},
                    {"case_id": "c1", "physician_npi": ADAMS, "item_code": "B2"},
                ]
            ),
            programme_year=year(agreement, 1),
        )
    problems = _refusal(
        world, agreement, "item_code,unit_cost\nA1,1250\n", kind="prices", name="p.csv"
    )
    assert [p["message"] for p in problems.items] == [
        "the price file has no price for item B2, used in the year's usage (import #1)".replace(
            "#1", f"#{problems.items[0]['message'].split('#')[1].rstrip(')')}"
        )
    ]


def test_a_missing_required_column_is_refused(world, agreement):
    problems = _refusal(world, agreement, "case_id,service_date\nc1,2025-01-01\n")
    assert {p["column"] for p in problems.items} >= {"unit_cost", "physician_npi"}


def test_problems_keep_the_first_hundred_and_the_total(world, agreement):
    rows = [
        {"case_id": f"c{i}", "physician_npi": ADAMS, "item_code": "A1", "quantity": "-1"}
        for i in range(250)
    ]
    problems = _refusal(world, agreement, usage_csv(rows))
    assert problems.total == 250
    assert len(problems.items) == 100
    assert [p["row"] for p in problems.items[:3]] == [2, 3, 4]


def test_a_bad_row_at_the_end_leaves_the_previous_import_untouched(world, agreement):
    good = usage_csv(
        [{"case_id": f"c{i}", "physician_npi": ADAMS, "item_code": "A1"} for i in range(50)]
    )
    with world.scope():
        first = import_text(
            world,
            agreement,
            kind="usage",
            period="programme",
            name="v1.csv",
            content=good,
            programme_year=year(agreement, 1),
        )
    rows = [{"case_id": f"d{i}", "physician_npi": ADAMS, "item_code": "A1"} for i in range(80)]
    rows.append(
        {"case_id": "bad", "physician_npi": ADAMS, "item_code": "A1", "unit_cost": "1.123456"}
    )
    problems = _refusal(world, agreement, usage_csv(rows), name="v2.csv")
    assert problems.items[0]["row"] == 82
    with world.scope():
        current = selectors.import_current(
            agreement=agreement, kind="usage", programme_year=year(agreement, 1)
        )
        assert current.pk == first.pk and current.version == 1
        assert set(UsageRow.objects.values_list("data_import_id", flat=True)) == {first.pk}
        assert UsageRow.objects.count() == 50
        assert DataImport.objects.get(original_name="v2.csv").status == ImportStatus.FAILED


def test_a_new_import_is_a_new_version_and_the_old_one_is_kept(world, agreement):
    with world.scope():
        first = import_text(
            world,
            agreement,
            kind="usage",
            period="programme",
            name="v1.csv",
            content=usage_csv([{"case_id": "c1", "physician_npi": ADAMS, "item_code": "A1"}]),
            programme_year=year(agreement, 1),
        )
        second = import_text(
            world,
            agreement,
            kind="usage",
            period="programme",
            name="v2.csv",
            content=usage_csv([{"case_id": "c1", "physician_npi": ADAMS, "item_code": "A2"}]),
            programme_year=year(agreement, 1),
        )
        first.refresh_from_db()
        assert (first.is_current, second.is_current, second.version) == (False, True, 2)
        assert UsageRow.objects.filter(data_import=first).count() == 1
        assert first.file.name and first.sha256 != second.sha256
        assert first.file.name.startswith(f"org-{world.org.pk}/")


def test_the_same_file_twice_is_detected_by_checksum_and_not_applied(world, agreement):
    content = usage_csv([{"case_id": "c1", "physician_npi": ADAMS, "item_code": "A1"}])
    with world.scope():
        import_text(
            world,
            agreement,
            kind="usage",
            period="programme",
            name="a.csv",
            content=content,
            programme_year=year(agreement, 1),
        )
        with pytest.raises(services.DuplicateUpload):
            import_text(
                world,
                agreement,
                kind="usage",
                period="programme",
                name="again.csv",
                content=content,
                programme_year=year(agreement, 1),
            )
        assert DataImport.objects.count() == 1


def test_xlsx_files_are_read_like_csv(world, agreement):
    from openpyxl import Workbook

    book = Workbook()
    sheet = book.active
    sheet.append(
        [
            "case_id",
            "service_date",
            "case_type",
            "physician_npi",
            "payer",
            "federal_program",
            "item_code",
            "quantity",
            "unit_cost",
            "severity_weight",
            "notice_date",
            "reviewed",
            "opted_out",
        ]
    )
    import datetime as dt

    sheet.append(
        [
            "c1",
            dt.date(2025, 3, 1),
            "CATH",
            ADAMS,
            "medicare",
            True,
            "A2",
            1,
            955.67,
            2.1,
            dt.date(2025, 2, 20),
            True,
            False,
        ]
    )
    buffer = io.BytesIO()
    book.save(buffer)
    with world.scope():
        data_import = services.data_import_receive(
            agreement=agreement,
            kind="usage",
            period="programme",
            programme_year=year(agreement, 1),
            user=None,
            upload=upload("u.xlsx", buffer.getvalue()),
        )
        services.data_import_apply(data_import=data_import)
        row = UsageRow.objects.get()
        assert row.unit_cost == Decimal("955.67") and row.federal_program is True


def test_upload_preview_confirm_progress_and_error_report_through_the_pages(
    world, agreement, django_capture_on_commit_callbacks
):
    client = world.client("administrator")
    base = f"/o/riverside/agreements/{agreement.pk}/savings/imports/"
    content = usage_csv(
        [
            {"case_id": "c1", "physician_npi": ADAMS, "item_code": "A1"},
            {"case_id": "c2", "physician_npi": ADAMS, "item_code": "A1", "quantity": "-2"},
        ]
    )
    response = client.post(
        base,
        {
            "kind": "usage",
            "period": "programme",
            "programme_year": year(agreement, 1).pk,
            "file": upload("new.csv", content),
        },
    )
    assert response.status_code == 302
    detail = response["Location"]
    page = client.get(detail)
    assert b"Detected columns" in page.content and b"Confirm and import" in page.content
    with world.scope():
        data_import = DataImport.objects.get()
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(f"{base}{data_import.pk}/confirm/")
    assert response.status_code == 302
    with world.scope():
        data_import.refresh_from_db()
        job = data_import.job
    assert data_import.status == ImportStatus.FAILED and job.status == "failed"
    assert job.error_count == 1 and job.errors[0]["row"] == 3
    report = client.get(f"/o/riverside/jobs/{job.pk}/errors.csv")
    assert report.status_code == 200 and b"negative quantity" in report.content
    assert b"Download the error report" in client.get(detail).content


def test_column_templates_download(world):
    client = world.client("administrator")
    usage = client.get("/o/riverside/savings/templates/usage.csv")
    assert usage.content.decode().splitlines()[0].startswith("case_id,service_date,case_type")
    docs = client.get("/o/riverside/savings/templates/prices-columns.csv")
    assert b"item_code" in docs.content


def test_receiving_refuses_prices_for_a_base_year(world, agreement):
    with world.scope(), pytest.raises(ValidationError):
        import_text(
            world,
            agreement,
            kind="prices",
            period="base",
            name="p.csv",
            content="item_code,unit_cost\nA1,1\n",
            base_year=2024,
        )


def test_a_malformed_csv_is_a_problem_not_a_crash(world, agreement):
    content = usage_csv([{"case_id": "c1", "physician_npi": ADAMS, "item_code": "A1"}])
    problems = _refusal(world, agreement, content + "c2,2025-03-01,too,few\n")
    assert problems.items[-1]["row"] == 3
    assert "4 fields, expected 13" in problems.items[-1]["message"]
