"""The mapping step: hospital-shaped exports (tests/data/exports) read through a mapping give
the same figures as the canonical example files; saved mappings are chosen again, versioned,
audited and recorded; bad input is refused naming the column and the reason, nothing stored."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest
from django.core.exceptions import ValidationError

from comanage.core.models import BusinessEvent, ImportMapping
from savings import services
from savings.models import DataImport, ImportStatus, PriceItem, UsageRow
from tests.savings.helpers import EXAMPLE_A, example_a_agreement, upload, year

pytestmark = pytest.mark.django_db
D = Decimal
EXPORTS = Path(__file__).resolve().parent.parent / "data" / "exports"
HEADER = (
    "case_id,service_date,case_type,physician_npi,payer,federal_program,item_code,"
    "quantity,unit_cost,severity_weight"
)


@pytest.fixture
def agreement(world):
    return example_a_agreement(world)


def _receive(world, agreement, path_or_name, content=None, *, kind="usage", period="programme"):
    data = content if content is not None else Path(path_or_name).read_bytes()
    name = Path(path_or_name).name
    data_import = services.data_import_receive(
        agreement=agreement,
        kind=kind,
        period=period,
        upload=upload(name, data),
        user=world.users["administrator"],
        programme_year=year(agreement, 1) if period == "programme" else None,
        base_year=2024 if period == "base" else None,
    )
    if data_import.file_format == "xlsx":
        services.data_import_head_read(data_import=data_import)
    return data_import


def _proposed(world, data_import, *, sheet=""):
    step = services.data_import_mapping_step(data_import=data_import, sheet=sheet)
    return step, {c["header"]: c["field"] for c in step["columns"]}


def _apply_mapped(world, data_import, *, sheet="", save_as="", date_format="auto"):
    step, columns = _proposed(world, data_import, sheet=sheet)
    services.data_import_map(
        data_import=data_import,
        user=world.users["administrator"],
        columns=columns,
        sheet=step["sheet"],
        save_as=save_as,
        date_format=date_format,
    )
    return services.data_import_apply(data_import=data_import)


def _figures(agreement):
    result = services.savings_for_year(programme_year=year(agreement, 1)).result
    return (
        [o.capped_savings for o in result.opportunities],
        result.gross_savings,
        result.net_savings,
        {p.last_name: p.amount for p in result.physicians},
    )


EXAMPLE_A_FIGURES = (
    [D("91856.01"), D("60000.00"), D("-4080.00")],
    D("147776.01"),
    D("111776.01"),
    {"Adams": D("18629.34"), "Baker": D("18629.34"), "Clark": D("18629.33"), "Diaz": D("0.00")},
)


def test_the_hospital_exports_give_example_a_to_the_cent_through_the_mapping(world, agreement):
    with world.scope():
        base = _receive(world, agreement, EXPORTS / "cath_lab_2024.xlsx", period="base")
        step, columns = _proposed(world, base, sheet="Usage 2024")
        assert step["sheets"] == ["About", "Usage 2024"]
        assert step["header_row"] == 2
        assert columns["Date of Service"] == "service_date"
        assert columns["Cost Each"] == "unit_cost"
        _apply_mapped(world, base, sheet="Usage 2024", save_as="Cath lab workbook")
        prices = _receive(world, agreement, EXPORTS / "contract_prices_2025.csv", kind="prices")
        _apply_mapped(world, prices, save_as="Contract prices")
        usage = _receive(world, agreement, EXPORTS / "or_supply_usage_2025.csv")
        step, columns = _proposed(world, usage)
        assert step["header_row"] == 4  # two title rows and a blank line above it
        assert columns["Surgeon NPI"] == "physician_npi"
        assert columns["Ext Cost"] == ""  # the extended cost is not the unit cost
        assert step["issues"] == []
        _apply_mapped(world, usage, save_as="OR supply export")
        assert _figures(agreement) == EXAMPLE_A_FIGURES
        usage.refresh_from_db()
        assert usage.status == ImportStatus.APPLIED
        assert usage.row_count == 1403
        assert usage.mapping is not None and usage.mapping.name == "OR supply export"
        assert usage.mapping_used["columns"]["DOS"] == "service_date"
        assert PriceItem.objects.get(data_import=prices, item_code="A1").unit_cost == D("1250")
        row = UsageRow.objects.filter(data_import=usage).order_by("pk").first()
        assert row.physician_npi == "1000000004" and row.unit_cost == D("1250")
        inputs = services.savings_for_year(programme_year=year(agreement, 1)).inputs
        assert inputs["usage"]["mapping"]["name"] == "OR supply export"
        assert inputs["usage"]["mapping"]["version"] == 1
        assert inputs["price_file"]["mapping"]["name"] == "Contract prices"


def test_the_canonical_files_give_the_same_figures_and_record_no_mapping(world, agreement):
    with world.scope():
        for path, kind, period in (
            (EXAMPLE_A / "usage_2024.csv", "usage", "base"),
            (EXAMPLE_A / "prices_2025.csv", "prices", "programme"),
            (EXAMPLE_A / "usage_2025.csv", "usage", "programme"),
        ):
            data_import = _receive(world, agreement, path, kind=kind, period=period)
            _apply_mapped(world, data_import)  # the identity mapping the form proposes
            data_import.refresh_from_db()
            assert data_import.mapping_used == {} and data_import.mapping is None
        assert _figures(agreement) == EXAMPLE_A_FIGURES
        assert (
            "mapping"
            not in services.savings_for_year(programme_year=year(agreement, 1)).inputs["usage"]
        )


def test_a_saved_mapping_is_chosen_again_for_the_same_header_and_versioned(world, agreement):
    with world.scope():
        prices = _receive(world, agreement, EXPORTS / "contract_prices_2025.csv", kind="prices")
        _apply_mapped(world, prices, save_as="Contract prices")
        saved = ImportMapping.objects.get(name="Contract prices")
        assert saved.version == 1
        content = (
            (EXPORTS / "contract_prices_2025.csv").read_bytes().replace(b"$600.00", b"$601.00")
        )
        again = _receive(world, agreement, "prices_feb.csv", content, kind="prices")
        step, _columns = _proposed(world, again)
        assert step["saved"] == {"id": saved.pk, "name": "Contract prices", "version": 1}
        # Confirmed with no choices (as the API does): the saved mapping reads it.
        services.data_import_map(data_import=again, user=world.users["administrator"])
        assert again.mapping_id == saved.pk and again.mapping_used["version"] == 1
        # An edit saved under the same name is version 2, audited, with history.
        services.data_import_map(
            data_import=again,
            user=world.users["administrator"],
            columns={"Item No": "item_code", "Contract Price": "unit_cost", "Description": ""},
            date_format="mdy",
            save_as="Contract prices",
        )
        saved.refresh_from_db()
        assert saved.version == 2 and saved.date_format == "mdy"
        assert saved.history.count() == 2
        assert BusinessEvent.objects.filter(name="import_mapping.saved").count() == 2
        services.data_import_apply(data_import=again)
        assert PriceItem.objects.get(data_import=again, item_code="B1").unit_cost == D("601")


def _refused_map(world, data_import, **kwargs):
    with pytest.raises(ValidationError) as refused:
        services.data_import_map(
            data_import=data_import, user=world.users["administrator"], **kwargs
        )
    return " ".join(refused.value.messages)


def test_two_columns_to_one_field_are_refused_naming_them(world, agreement):
    with world.scope():
        prices = _receive(world, agreement, EXPORTS / "contract_prices_2025.csv", kind="prices")
        message = _refused_map(
            world,
            prices,
            columns={
                "Item No": "item_code",
                "Description": "item_code",
                "Contract Price": "unit_cost",
            },
        )
        assert "two columns (Item No, Description) are mapped to one field, Item code" in message
        prices.refresh_from_db()
        assert prices.mapping_used == {} and not PriceItem.objects.exists()


def test_a_required_field_without_a_column_is_named_before_anything_runs(world, agreement):
    with world.scope():
        prices = _receive(world, agreement, EXPORTS / "contract_prices_2025.csv", kind="prices")
        message = _refused_map(world, prices, columns={"Item No": "item_code"})
        assert "the required field Unit cost has no column" in message
        assert prices.job_id is None


def test_a_header_that_cannot_be_found_is_refused(world, agreement):
    content = b"Monthly report\nsomething,else,entirely\n1,2,3\n"
    with world.scope():
        data_import = _receive(world, agreement, "odd.csv", content)
        message = _refused_map(world, data_import, columns={})
        assert "the header cannot be found" in message
        assert "case id, service date" in message


def test_an_empty_sheet_is_refused_naming_it(world, agreement):
    with world.scope():
        data_import = _receive(world, agreement, EXPORTS / "cath_lab_2024.xlsx", period="base")
        step, _ = _proposed(world, data_import, sheet="About")
        assert "the header cannot be found" in step["problems"][0]["message"]
        from io import BytesIO

        from openpyxl import Workbook

        book = Workbook()
        book.active.title = "Empty"
        buffer = BytesIO()
        book.save(buffer)
        empty = _receive(world, agreement, "empty.xlsx", buffer.getvalue(), period="base")
        message = _refused_map(world, empty, columns={})
        assert "the sheet 'Empty' is empty" in message


def _us_usage(dates: list[str], quantity: str = "1") -> bytes:
    lines = ["Case,DOS,Type,NPI,Federal,Item,Qty,Unit Cost,Weight"]
    for n, day in enumerate(dates):
        lines.append(f"c{n},{day},CATH,1000000004,Y,A1,{quantity},$10.00,1")
    return ("\n".join(lines) + "\n").encode()


US_COLUMNS = {
    "Case": "case_id",
    "DOS": "service_date",
    "Type": "case_type",
    "NPI": "physician_npi",
    "Federal": "federal_program",
    "Item": "item_code",
    "Qty": "quantity",
    "Unit Cost": "unit_cost",
    "Weight": "severity_weight",
}


def _apply_refused(world, data_import, **kwargs):
    services.data_import_map(
        data_import=data_import, user=world.users["administrator"], columns=US_COLUMNS, **kwargs
    )
    with pytest.raises(services.ImportRefused) as refused:
        services.data_import_apply(data_import=data_import)
    assert not UsageRow.objects.filter(data_import=data_import).exists()
    return refused.value.problems


def test_an_ambiguous_date_is_refused_naming_the_original_column_and_text(world, agreement):
    with world.scope():
        data_import = _receive(world, agreement, "amb.csv", _us_usage(["03/04/2025", "05/06/2025"]))
        problems = _apply_refused(world, data_import)
        assert problems.total == 1
        problem = problems.items[0]
        assert problem["row"] == 2 and problem["column"] == "DOS"
        assert "'03/04/2025'" in problem["message"]
        assert "fit both month/day/year and day/month/year" in problem["message"]


def test_a_date_format_chosen_in_the_mapping_reads_the_same_dates(world, agreement):
    with world.scope():
        data_import = _receive(world, agreement, "amb.csv", _us_usage(["03/04/2025", "05/06/2025"]))
        services.data_import_map(
            data_import=data_import,
            user=world.users["administrator"],
            columns=US_COLUMNS,
            date_format="mdy",
        )
        services.data_import_apply(data_import=data_import)
        dates = sorted(
            UsageRow.objects.filter(data_import=data_import).values_list("service_date", flat=True)
        )
        assert [d.isoformat() for d in dates] == ["2025-03-04", "2025-05-06"]


def test_a_negative_quantity_is_refused_naming_the_file_column(world, agreement):
    with world.scope():
        data_import = _receive(
            world, agreement, "neg.csv", _us_usage(["1/13/2025"], quantity="(2)")
        )
        problems = _apply_refused(world, data_import)
        assert problems.items[0]["row"] == 2
        assert problems.items[0]["column"] == "Qty"
        assert "negative quantity -2 is refused" in problems.items[0]["message"]


def test_a_date_that_is_not_a_date_names_the_column_and_the_original_text(world, agreement):
    with world.scope():
        data_import = _receive(world, agreement, "bad.csv", _us_usage(["1/13/2025", "2/30/2025"]))
        problems = _apply_refused(world, data_import)
        assert problems.items[0]["row"] == 3
        assert problems.items[0]["column"] == "DOS"
        assert problems.items[0]["message"] == "'2/30/2025' is not a date"  # no ISO hint


def test_another_organizations_mapping_is_unknown(world, agreement):
    from django_scopes import scopes_disabled

    with scopes_disabled():
        theirs = ImportMapping.objects.create(
            organization=world.other_org,
            kind="prices",
            name="Theirs",
            header=["Item No", "Description", "Contract Price"],
            header_digest="x",
            columns={"Item No": "item_code", "Contract Price": "unit_cost"},
        )
    with world.scope():
        prices = _receive(world, agreement, EXPORTS / "contract_prices_2025.csv", kind="prices")
        message = _refused_map(world, prices, mapping_id=theirs.pk)
        assert "No saved mapping with this id" in message


def test_the_web_mapping_form_shows_samples_and_refuses_two_columns_to_one_field(world, agreement):
    client = world.client("administrator")
    base = f"/o/{world.org.slug}/agreements/{agreement.pk}/savings/imports/"
    with world.scope():
        prices = _receive(world, agreement, EXPORTS / "contract_prices_2025.csv", kind="prices")
    page = client.get(f"{base}{prices.pk}/")
    text = page.content.decode()
    assert page.status_code == 200
    assert "Match the file" in text and "$1,250.00" in text and "Contract Price" in text
    post = {
        "mapping_form": "1",
        "column_1": "Item No",
        "field_1": "item_code",
        "column_2": "Description",
        "field_2": "item_code",
        "column_3": "Contract Price",
        "field_3": "unit_cost",
    }
    refused = client.post(f"{base}{prices.pk}/confirm/", post)
    assert refused.status_code == 400
    assert "mapped to one field, Item code" in refused.content.decode()
    with world.scope():
        prices.refresh_from_db()
        assert prices.status == ImportStatus.UPLOADED and prices.job_id is None
    post["field_2"] = ""
    post["save_as"] = "Contract prices"
    done = client.post(f"{base}{prices.pk}/confirm/", post)
    assert done.status_code == 302
    with world.scope():
        prices.refresh_from_db()
        assert prices.job_id is not None
        assert prices.mapping_used["name"] == "Contract prices"
    outsider = world.client("outsider")
    assert outsider.post(f"{base}{prices.pk}/confirm/", post).status_code == 404


def test_the_web_page_of_an_export_with_title_rows_shows_the_proposed_mapping(world, agreement):
    client = world.client("administrator")
    base = f"/o/{world.org.slug}/agreements/{agreement.pk}/savings/imports/"
    with world.scope():
        usage = _receive(world, agreement, EXPORTS / "or_supply_usage_2025.csv")
    text = client.get(f"{base}{usage.pk}/").content.decode()
    assert "The header is on row 4." in text
    assert 'value="Surgeon NPI"' in text and "100-000-0004" in text
    assert '<option value="physician_npi" selected>' in text
    assert "Cannot import" not in text


def _api(world):
    from rest_framework.test import APIClient

    from comanage.core.models import ApiToken

    _token, raw = ApiToken.issue(
        user=world.users["administrator"], name="script", two_factor_verified=True
    )
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    return client


def test_the_api_upload_and_confirm_take_a_saved_mapping_id(
    world, agreement, django_capture_on_commit_callbacks
):
    imports = f"/api/v1/organizations/{world.org.slug}/savings-imports/"
    content = (EXPORTS / "contract_prices_2025.csv").read_bytes()
    with world.scope():
        saved = ImportMapping.objects.create(
            organization=world.org,
            kind="prices",
            name="Contract prices",
            header=["Item No", "Description", "Contract Price"],
            header_digest="-",
            columns={"Item No": "item_code", "Contract Price": "unit_cost"},
        )
    api = _api(world)
    body = {
        "programme_year": year(agreement, 1).pk,
        "kind": "prices",
        "mapping": saved.pk,
        "file": upload("prices.csv", content),
    }
    response = api.post(imports, body, format="multipart")
    assert response.status_code == 201, response.json()
    assert response.json()["mapping"] == saved.pk
    assert response.json()["mapping_used"]["columns"]["Contract Price"] == "unit_cost"
    with django_capture_on_commit_callbacks(execute=True):
        confirmed = api.post(f"{imports}{response.json()['id']}/confirm/")
    assert confirmed.status_code == 202, confirmed.json()
    with world.scope():
        applied = DataImport.objects.get(pk=response.json()["id"])
        assert applied.status == ImportStatus.APPLIED
        assert PriceItem.objects.get(data_import=applied, item_code="A2").unit_cost == D("955.67")
    # An unknown (or another organization's) mapping id: 400 naming the field, nothing stored.
    with world.scope():
        count = DataImport.objects.count()
    body["mapping"] = saved.pk + 1000
    body["file"] = upload("prices2.csv", content + b"X9,$1.00\n")
    refused = api.post(imports, body, format="multipart")
    assert refused.status_code == 400
    assert "No saved mapping with this id" in str(refused.json())
    with world.scope():
        assert DataImport.objects.count() == count


def test_a_short_us_header_is_proposed_field_by_field(world, agreement):
    with world.scope():
        data_import = _receive(world, agreement, "us.csv", _us_usage(["1/13/2025"]))
        step, columns = _proposed(world, data_import)
    assert columns == US_COLUMNS  # "Type" is the case type, "Weight" the severity weight
    assert step["issues"] == []


def test_a_rows_message_names_the_files_own_header_not_the_fields_code(world, agreement):
    with world.scope():
        data_import = _receive(world, agreement, "gap.csv", _us_usage([""]))
        problems = _apply_refused(world, data_import)
    assert [(p["row"], p["column"], p["message"]) for p in problems.items] == [
        (2, "DOS", "DOS is missing")
    ]


def test_dates_with_the_month_by_name_are_read_through_the_mapping(world, agreement):
    with world.scope():
        data_import = _receive(
            world, agreement, "oracle.csv", _us_usage(["13-JAN-25", "05-Feb-2025", '"Mar 7, 2025"'])
        )
        services.data_import_map(
            data_import=data_import, user=world.users["administrator"], columns=US_COLUMNS
        )
        services.data_import_apply(data_import=data_import)
        dates = UsageRow.objects.filter(data_import=data_import).values_list(
            "service_date", flat=True
        )
        assert sorted(d.isoformat() for d in dates) == ["2025-01-13", "2025-02-05", "2025-03-07"]


def test_a_case_whose_rows_disagree_is_named_by_the_files_headers(world, agreement):
    content = (
        b"Case,DOS,Type,NPI,Federal,Item,Qty,Unit Cost,Weight\n"
        b"c1,1/13/2025,CATH,1000000004,Y,A1,1,$10.00,1\n"
        b"c1,1/13/2025,PCI,1000000004,Y,B2,1,$10.00,1\n"
    )
    with world.scope():
        data_import = _receive(world, agreement, "disagree.csv", content)
        problems = _apply_refused(world, data_import)
    assert [(p["row"], p["column"]) for p in problems.items] == [(2, "Type")]
    message = problems.items[0]["message"]
    assert message.startswith("the rows of case c1 disagree on Type (rows 2, 3)")
