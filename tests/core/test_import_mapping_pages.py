"""The organization's page of saved column mappings: the list, a mapping's columns, formats
and versions in words, its edit form and delete (or deactivate), by role and organization."""

from __future__ import annotations

import pytest

from comanage.core.import_mappings import import_mapping_save
from comanage.core.models import BusinessEvent, ImportMapping
from comanage.core.tabular.mapping import ColumnMapping
from savings import services
from tests.savings.helpers import example_a_agreement, upload, year

pytestmark = pytest.mark.django_db
HEADER = ["Item No", "Description", "Contract Price"]
COLUMNS = {"Item No": "item_code", "Contract Price": "unit_cost"}
READ_ONLY = ["executive", "counsel", "ceo", "auditor"]


@pytest.fixture
def mapping(world):
    with world.scope():
        return import_mapping_save(
            organization=world.org,
            kind="prices",
            name="Contract prices",
            header=HEADER,
            mapping=ColumnMapping(columns=dict(COLUMNS), date_format="auto"),
            user=world.users["administrator"],
        )


def _urls(world, mapping):
    base = f"/o/{world.org.slug}/import-mappings/"
    return {
        "list": base,
        "detail": f"{base}{mapping.pk}/",
        "edit": f"{base}{mapping.pk}/edit/",
        "delete": f"{base}{mapping.pk}/delete/",
    }


def _post(**changes):
    data = {
        "name": "Contract prices",
        "date_format": "auto",
        "column_0": "item_code",
        "column_1": "",
        "column_2": "unit_cost",
    }
    data.update(changes)
    return data


def test_the_list_and_detail_show_the_mapping_in_words(world, mapping):
    client = world.client("administrator")
    urls = _urls(world, mapping)
    listing = client.get(urls["list"]).content.decode()
    assert "Contract prices" in listing and "Price file" in listing
    page = client.get(urls["detail"])
    text = page.content.decode()
    assert page.status_code == 200
    assert "Item code" in text and "Unit cost" in text and "Not used" in text
    assert "item_code" not in text and "unit_cost" not in text  # labels, never the keys
    assert "Detect from the dates" in text
    assert "Edit" in text


@pytest.mark.parametrize("role", READ_ONLY)
def test_readers_see_the_mapping_but_cannot_change_it(world, mapping, role):
    client = world.client(role)
    urls = _urls(world, mapping)
    assert client.get(urls["list"]).status_code == 200
    detail = client.get(urls["detail"])
    assert detail.status_code == 200
    assert f'href="{urls["edit"]}"' not in detail.content.decode()
    assert client.get(urls["edit"]).status_code == 403
    assert client.post(urls["edit"], _post(name="Renamed")).status_code == 403
    assert client.post(urls["delete"]).status_code == 403
    with world.scope():
        mapping.refresh_from_db()
        assert mapping.name == "Contract prices" and mapping.version == 1


def test_a_physician_cannot_open_the_pages(world, mapping):
    client = world.client("physician")
    for url in _urls(world, mapping).values():
        assert client.get(url).status_code == 403
    assert client.post(_urls(world, mapping)["edit"], _post(name="X")).status_code == 403


def test_another_organizations_administrator_gets_404(world, mapping):
    client = world.client("outsider")
    urls = _urls(world, mapping)
    other = {k: v.replace("/o/riverside/", "/o/lakeview/") for k, v in urls.items()}
    for key in ("detail", "edit", "delete"):
        assert client.get(other[key]).status_code == 404
    assert client.post(other["edit"], _post(name="Stolen")).status_code == 404
    assert client.post(other["delete"]).status_code == 404
    assert "Contract prices" not in client.get(other["list"]).content.decode()
    with world.scope():
        assert ImportMapping.objects.filter(pk=mapping.pk, name="Contract prices").exists()


def test_an_edit_is_a_new_version_with_history_and_an_audit_event(world, mapping):
    client = world.client("administrator")
    urls = _urls(world, mapping)
    done = client.post(
        urls["edit"],
        _post(name="OR contract prices", date_format="mdy", column_0="", column_1="item_code"),
    )
    assert done.status_code == 302 and done["Location"] == urls["detail"]
    with world.scope():
        mapping.refresh_from_db()
        assert mapping.version == 2 and mapping.name == "OR contract prices"
        assert mapping.columns == {"Description": "item_code", "Contract Price": "unit_cost"}
        assert mapping.date_format == "mdy"
        assert mapping.history.count() == 2
        assert mapping.history.latest().history_user == world.users["administrator"]
        event = BusinessEvent.objects.get(name="import_mapping.changed")
        assert event.actor == world.users["administrator"] and "version 2" in event.summary
    text = client.get(urls["detail"]).content.decode()
    assert "Renamed from “Contract prices” to “OR contract prices”" in text
    assert "Column “Item No”: Item code → not used" in text
    assert "Month/day/year, US" in text
    # Saving the same values again changes nothing: no version, no event.
    client.post(urls["edit"], _post(name="OR contract prices", date_format="mdy", column_0="",
                                     column_1="item_code"))  # fmt: skip
    with world.scope():
        mapping.refresh_from_db()
        assert mapping.version == 2
        assert BusinessEvent.objects.filter(name="import_mapping.changed").count() == 1


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        (
            {"column_1": "item_code"},
            "Two columns (Item No, Description) are mapped to one field, Item code",
        ),
        ({"column_2": ""}, "The required field Unit cost has no column"),
        ({"column_0": "physician_npi"}, "Item No: choose one of the fields listed"),
        ({"date_format": "ddmmyyyy"}, "Choose one of the date formats listed"),
        ({"name": "   "}, "Name the source this mapping reads"),
    ],
)  # fmt: skip
def test_a_refused_edit_names_the_problem_and_changes_nothing(world, mapping, changes, message):
    client = world.client("administrator")
    refused = client.post(_urls(world, mapping)["edit"], _post(**{"name": "Renamed", **changes}))
    assert refused.status_code == 400
    assert message in refused.content.decode()
    with world.scope():
        mapping.refresh_from_db()
        assert mapping.version == 1 and mapping.name == "Contract prices"
        assert mapping.columns == COLUMNS and mapping.history.count() == 1
        assert not BusinessEvent.objects.filter(name="import_mapping.changed").exists()


def test_a_name_another_mapping_has_is_refused(world, mapping):
    with world.scope():
        import_mapping_save(
            organization=world.org,
            kind="prices",
            name="Other prices",
            header=HEADER,
            mapping=ColumnMapping(columns=dict(COLUMNS)),
            user=None,
        )
    refused = world.client("administrator").post(
        _urls(world, mapping)["edit"], _post(name="Other prices")
    )
    assert refused.status_code == 400
    assert "already has this name" in refused.content.decode()


def test_an_unused_mapping_is_deleted(world, mapping):
    client = world.client("administrator")
    urls = _urls(world, mapping)
    assert "Delete the mapping" in client.get(urls["delete"]).content.decode()
    done = client.post(urls["delete"])
    assert done.status_code == 302 and done["Location"] == urls["list"]
    with world.scope():
        assert not ImportMapping.objects.filter(pk=mapping.pk).exists()
        assert BusinessEvent.objects.filter(name="import_mapping.deleted").count() == 1


def test_a_mapping_imports_used_is_deactivated_and_no_longer_chosen(world, mapping):
    agreement = example_a_agreement(world)
    with world.scope():
        prices = services.data_import_receive(
            agreement=agreement,
            kind="prices",
            period="programme",
            upload=upload("prices.csv", b"Item No,Description,Contract Price\nA1,x,$5.00\n"),
            user=world.users["administrator"],
            programme_year=year(agreement, 1),
        )
        services.data_import_map(
            data_import=prices, user=world.users["administrator"], mapping_id=mapping.pk
        )
        assert prices.mapping_id == mapping.pk
    client = world.client("administrator")
    urls = _urls(world, mapping)
    assert ">1<" in client.get(urls["list"]).content.decode().replace(" ", "")
    assert "Deactivate the mapping" in client.get(urls["delete"]).content.decode()
    done = client.post(urls["delete"])
    assert done.status_code == 302 and done["Location"] == urls["detail"]
    with world.scope():
        mapping.refresh_from_db()
        assert not mapping.is_active and mapping.version == 1
        assert BusinessEvent.objects.filter(name="import_mapping.deactivated").count() == 1
        again = services.data_import_receive(
            agreement=agreement,
            kind="prices",
            period="programme",
            upload=upload("prices2.csv", b"Item No,Description,Contract Price\nA1,x,$5.00\n"),
            user=world.users["administrator"],
            programme_year=year(agreement, 1),
        )
        step = services.data_import_mapping_step(data_import=again)
        assert not step["saved"]  # not offered again for the same header
    assert "Deactivated" in client.get(urls["detail"]).content.decode()
