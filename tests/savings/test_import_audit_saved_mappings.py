"""Issue 17 audit: a saved mapping is chosen again for the same header however the next file
writes it (other case or spacing, columns in another order, an extra unmapped column, one more
title row above it), reads that file, and a wrong saved mapping chosen by id is refused
naming the columns the file lacks, nothing stored."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest
from django.core.exceptions import ValidationError

from comanage.core.models import ImportMapping
from savings import services
from savings.models import PriceItem
from tests.savings.helpers import example_a_agreement, upload, year

pytestmark = pytest.mark.django_db
D = Decimal
EXPORTS = Path(__file__).resolve().parent.parent / "data" / "exports"
PRICES = (EXPORTS / "contract_prices_2025.csv").read_bytes()


@pytest.fixture
def agreement(world):
    return example_a_agreement(world)


def _receive(world, agreement, content: bytes, name="prices.csv"):
    return services.data_import_receive(
        agreement=agreement,
        kind="prices",
        period="programme",
        upload=upload(name, content),
        user=world.users["administrator"],
        programme_year=year(agreement, 1),
    )


def _saved(world, agreement) -> ImportMapping:
    first = _receive(world, agreement, PRICES)
    services.data_import_map(
        data_import=first,
        user=world.users["administrator"],
        columns={"Item No": "item_code", "Contract Price": "unit_cost", "Description": ""},
        save_as="Contract prices",
    )
    return ImportMapping.objects.get(name="Contract prices")


VARIANTS = {
    "case and spacing": PRICES.replace(
        b"Item No,Description,Contract Price", b"ITEM NO , description,contract  price"
    ),
    "column order": b"Contract Price,Item No,Description\n"
    + b"\n".join(
        b",".join([line.rsplit(b",", 1)[1], *line.rsplit(b",", 1)[0].split(b",", 1)])
        for line in PRICES.replace(b'"$1,250.00"', b"$1250.00").splitlines()[1:]
    )
    + b"\n",
    "extra column": b"\n".join(
        line + (b",Vendor" if n == 0 else b",Acme") for n, line in enumerate(PRICES.splitlines())
    )
    + b"\n",
    "title row": b"Contract prices as of 1/1/2025\r\n" + PRICES.replace(b"\n", b"\r\n"),
    "bom and crlf": b"\xef\xbb\xbf" + PRICES.replace(b"\n", b"\r\n"),
}


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_a_saved_mapping_is_chosen_again_and_reads_the_same_header_written_otherwise(
    world, agreement, variant
):
    with world.scope():
        saved = _saved(world, agreement)
        again = _receive(world, agreement, VARIANTS[variant], name=f"{variant}.csv")
        step = services.data_import_mapping_step(data_import=again)
        assert step["problems"] == []
        assert step["saved"] == {"id": saved.pk, "name": "Contract prices", "version": 1}
        assert step["issues"] == []
        proposed = {c["field"] for c in step["columns"] if c["field"]}
        assert proposed == {"item_code", "unit_cost"}
        # Confirmed with no choices (the API's confirm): the saved mapping reads the file.
        services.data_import_map(data_import=again, user=world.users["administrator"])
        assert again.mapping_id == saved.pk
        assert again.mapping_used["name"] == "Contract prices"
        services.data_import_apply(data_import=again)
        prices = dict(
            PriceItem.objects.filter(data_import=again).values_list("item_code", "unit_cost")
        )
        assert prices["A1"] == D("1250") and prices["A2"] == D("955.67")


@pytest.mark.parametrize("variant", ["case and spacing", "title row"])
def test_a_saved_mapping_chosen_by_id_reads_the_header_written_otherwise(world, agreement, variant):
    with world.scope():
        saved = _saved(world, agreement)
        again = _receive(world, agreement, VARIANTS[variant], name=f"{variant}.csv")
        services.data_import_map(
            data_import=again, user=world.users["administrator"], mapping_id=saved.pk
        )
        assert again.mapping_id == saved.pk
        services.data_import_apply(data_import=again)
        assert PriceItem.objects.filter(data_import=again).count() == 6


def test_a_wrong_saved_mapping_chosen_by_id_is_refused_naming_the_missing_columns(world, agreement):
    with world.scope():
        wrong = ImportMapping.objects.create(
            organization=world.org,
            kind="prices",
            name="Other vendor",
            header=["SKU", "Net Price"],
            header_digest="-",
            columns={"SKU": "item_code", "Net Price": "unit_cost"},
        )
        prices = _receive(world, agreement, PRICES)
        with pytest.raises(ValidationError) as refused:
            services.data_import_map(
                data_import=prices, user=world.users["administrator"], mapping_id=wrong.pk
            )
        message = " ".join(refused.value.messages)
        assert "SKU" in message and "Net Price" in message
        assert "the file has no such column" in message
        prices.refresh_from_db()
        assert prices.mapping_id is None and prices.mapping_used == {}
        assert not PriceItem.objects.filter(data_import=prices).exists()


def test_the_api_and_the_page_choose_the_saved_mapping_for_a_header_written_otherwise(
    world, agreement, django_capture_on_commit_callbacks
):
    from rest_framework.test import APIClient

    from comanage.core.models import ApiToken
    from savings.models import DataImport, ImportStatus

    with world.scope():
        saved = _saved(world, agreement)
    _token, raw = ApiToken.issue(
        user=world.users["administrator"], name="script", two_factor_verified=True
    )
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    imports = f"/api/v1/organizations/{world.org.slug}/savings-imports/"
    body = {
        "programme_year": year(agreement, 1).pk,
        "kind": "prices",
        "file": upload("march.csv", VARIANTS["case and spacing"]),
    }
    response = api.post(imports, body, format="multipart")
    assert response.status_code == 201, response.json()
    pk = response.json()["id"]
    page = world.client("administrator").get(
        f"/o/{world.org.slug}/agreements/{agreement.pk}/savings/imports/{pk}/"
    )
    text = page.content.decode()
    assert page.status_code == 200 and "Contract prices" in text
    assert '<option value="unit_cost" selected>' in text
    with django_capture_on_commit_callbacks(execute=True):
        confirmed = api.post(f"{imports}{pk}/confirm/")
    assert confirmed.status_code == 202, confirmed.json()
    with world.scope():
        applied = DataImport.objects.get(pk=pk)
        assert applied.status == ImportStatus.APPLIED
        assert applied.mapping_id == saved.pk
        assert applied.mapping_used["columns"]["contract  price"] == "unit_cost"
        assert PriceItem.objects.get(data_import=applied, item_code="A1").unit_cost == D("1250")
