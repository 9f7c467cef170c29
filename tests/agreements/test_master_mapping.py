"""Rosters and the item master through the saved-mapping step (issue 17, item 4): the built-in
layouts propose, the user confirms or edits, the choices are saved under a source's name and
chosen again for a file with the same header; every import records the mapping (and version)
that read it; bad input names the column and the reason and stores nothing."""

from __future__ import annotations

import datetime as dt
import io
from pathlib import Path

import pytest
from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import SimpleUploadedFile
from openpyxl import Workbook

from agreements import services
from agreements.models import Participation, Physician, RosterImport
from comanage.core.master_imports import (
    ImportRefused,
    master_import_map,
    master_mapping_step,
)
from comanage.core.models import BusinessEvent, ImportMapping
from savings import services as savings_services
from savings.models import Item
from tests import factories as f

EXPORTS = Path(__file__).resolve().parents[1] / "data" / "exports"
NPPES_EXTRACT = EXPORTS / "nppes_roster_extract.csv"
MEDICAL_STAFF = EXPORTS / "medical_staff_roster.csv"
ITEM_MASTER = EXPORTS / "item_master_materials.xlsx"
CANONICAL = b"""npi,first_name,last_name,practice,join_date,leave_date
1487864542,Chidi,Okafor,Riverside Orthopaedic Partners,2025-01-01,
1952284101,Margaret,Lindqvist,Riverside Orthopaedic Partners,2025-01-01,2026-06-30
1063366482,Anjali,Patel,Riverside Orthopaedic Partners,2025-03-01,
1326562802,Thanh,Nguyen,,,
1740232883,Kathleen,O'Brien,Riverside Orthopaedic Partners,2025-07-15,
"""
STAFF_COLUMNS = {
    "Provider NPI": "npi",
    "Last": "last_name",
    "First": "first_name",
    "Group": "practice",
    "Dept": "",
    "Appointed": "join_date",
    "Resigned": "leave_date",
}

NPIS = ["1487864542", "1952284101", "1063366482", "1326562802", "1740232883"]

pytestmark = pytest.mark.django_db


@pytest.fixture
def agreement(world):
    with world.scope():
        practice = f.PracticeFactory(organization=world.org, name="Riverside Orthopaedic Partners")
        return f.AgreementFactory(
            organization=world.org,
            practice=practice,
            term_start=dt.date(2025, 1, 1),
            term_end=dt.date(2027, 12, 31),
        )


def _receive(world, content: bytes, *, name="roster.csv", agreement=None) -> RosterImport:
    with world.scope():
        return services.roster_import_receive(
            organization=world.org,
            upload=SimpleUploadedFile(name, content),
            user=world.users["administrator"],
            agreement=agreement,
        )


def _apply(world, roster_import) -> dict:
    with world.scope():
        return services.roster_import_apply(
            roster_import=roster_import, user=world.users["administrator"]
        )


def _stored(world) -> list[tuple]:
    with world.scope():
        physicians = [
            (p.npi, p.first_name, p.last_name, p.practice.name if p.practice else "")
            for p in Physician.objects.filter(npi__in=NPIS)
            .select_related("practice")
            .order_by("npi")
        ]
        dates = [
            (p.physician.npi, p.join_date, p.leave_date)
            for p in Participation.objects.filter(physician__npi__in=NPIS)
            .select_related("physician")
            .order_by("physician__npi")
        ]
    return physicians + dates


def _clear(world) -> None:
    with world.scope():
        Participation.objects.filter(physician__npi__in=NPIS).delete()
        Physician.objects.filter(npi__in=NPIS).delete()


def test_the_nppes_extract_under_a_title_row_is_read_and_its_saved_mapping_chosen_again(
    world, agreement
):
    canonical = _receive(world, CANONICAL, agreement=agreement)
    _apply(world, canonical)
    expected = _stored(world)
    _clear(world)

    first = _receive(world, NPPES_EXTRACT.read_bytes(), agreement=agreement)
    admin = world.users["administrator"]
    with world.scope():
        step = master_mapping_step(instance=first)
        assert step["header_row"] == 4  # two title lines and a blank line above it
        proposed = {c["header"]: c["field"] for c in step["columns"] if c["field"]}
        assert proposed["NPI"] == "npi"
        assert proposed["Provider Last Name (Legal Name)"] == "last_name"
        assert proposed["Join Date"] == "join_date"
        master_import_map(
            instance=first, user=admin, columns=proposed, save_as="NPPES download tool"
        )
        first.refresh_from_db()
        assert first.mapping.name == "NPPES download tool"
        assert first.mapping_used["version"] == 1 and first.mapping_used["header_row"] == 4
    _apply(world, first)
    assert _stored(world) == expected
    _clear(world)

    # next month's extract: the saved mapping is chosen by its header, with nothing asked
    again = _receive(world, NPPES_EXTRACT.read_bytes(), agreement=agreement)
    with world.scope():
        step = master_mapping_step(instance=again)
        assert step["saved"]["name"] == "NPPES download tool"
        preview = services.roster_import_preview(roster_import=again)
        assert preview["layout"] == "NPPES download tool, version 1"
        assert preview["problem_count"] == 0
        master_import_map(instance=again, user=admin)
        again.refresh_from_db()
        assert again.mapping_used["name"] == "NPPES download tool"
    _apply(world, again)
    assert _stored(world) == expected
    with world.scope():
        assert BusinessEvent.objects.filter(name="import_mapping.saved").count() == 1


def test_a_medical_staff_export_is_read_through_the_columns_matched(world, agreement):
    canonical = _receive(world, CANONICAL, agreement=agreement)
    _apply(world, canonical)
    expected = _stored(world)
    _clear(world)

    staff = _receive(world, MEDICAL_STAFF.read_bytes(), agreement=agreement)
    with world.scope():
        step = master_mapping_step(instance=staff)
        assert step["header_row"] == 2
        # the NPI column is recognised by its contents (dashed NPIs)
        assert {c["header"]: c["field"] for c in step["columns"]}["Provider NPI"] == "npi"
        master_import_map(
            instance=staff,
            user=world.users["administrator"],
            columns=STAFF_COLUMNS,
            save_as="Medical staff office",
        )
    _apply(world, staff)
    # M/D/YY dates, NPIs with dashes, ordinary capitals: the canonical file's values
    assert _stored(world) == expected


def test_two_columns_to_one_field_are_refused_naming_both(world, agreement):
    staff = _receive(world, MEDICAL_STAFF.read_bytes())
    with world.scope():
        with pytest.raises(ValidationError) as refused:
            master_import_map(
                instance=staff,
                user=None,
                columns={**STAFF_COLUMNS, "Dept": "practice"},
                save_as="x",
            )
        assert not ImportMapping.objects.exists()
    text = " ".join(refused.value.messages)
    assert "Group, Dept" in text and "one field" in text


def test_a_required_field_without_a_column_is_named(world, agreement):
    staff = _receive(world, MEDICAL_STAFF.read_bytes())
    with world.scope(), pytest.raises(ValidationError) as refused:
        master_import_map(
            instance=staff, user=None, columns={**STAFF_COLUMNS, "Last": ""}, save_as="x"
        )
    assert "the required field Last name has no column" in " ".join(refused.value.messages)
    with world.scope():
        assert not ImportMapping.objects.exists()


def test_a_file_whose_header_cannot_be_found_is_refused_and_nothing_stored(world):
    roster_import = _receive(world, b"Roster of 2026\nplease see attached\nthank you\n")
    with world.scope():
        preview = services.roster_import_preview(roster_import=roster_import)
    assert preview["error"].startswith("the header cannot be found")
    with pytest.raises(ImportRefused) as refused:
        _apply(world, roster_import)
    assert "the header cannot be found" in refused.value.problems.as_list()[0]["message"]
    with world.scope():
        assert not Physician.objects.filter(npi__in=NPIS).exists()


def _workbook(*sheets: tuple[str, list[list]]) -> bytes:
    book = Workbook()
    book.remove(book.active)
    for title, rows in sheets:
        ws = book.create_sheet(title)
        for row in rows:
            ws.append(row)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def test_an_empty_sheet_is_named(world):
    data = _workbook(("Roster", []), ("Other", [["npi", "first_name", "last_name"]]))
    roster_import = _receive(world, data, name="roster.xlsx")
    with world.scope():
        step = master_mapping_step(instance=roster_import, sheet="Roster")
        assert step["sheets"] == ["Roster", "Other"]
        assert step["problems"][0]["message"] == (
            "the sheet 'Roster' is empty: there is nothing to map"
        )
        with pytest.raises(ValidationError) as refused:
            master_import_map(
                instance=roster_import, user=None, columns={"npi": "npi"}, sheet="Roster"
            )
    assert "is empty" in " ".join(refused.value.messages)


def test_the_item_master_workbook_is_read_from_its_second_sheet(world):
    admin = world.users["administrator"]
    with world.scope():
        item_import = savings_services.item_import_receive(
            organization=world.org,
            upload=SimpleUploadedFile("items.xlsx", ITEM_MASTER.read_bytes()),
            user=admin,
        )
        step = master_mapping_step(instance=item_import, sheet="Item Master")
        assert step["sheets"] == ["Notes", "Item Master"] and step["header_row"] == 2
        proposed = {c["header"]: c["field"] for c in step["columns"] if c["field"]}
        assert proposed == {
            "Item #": "code",
            "Item Description": "description",
            "Mfr": "manufacturer",
            "Category": "category",
            "UOM": "unit_of_measure",
        }
        master_import_map(
            instance=item_import,
            user=admin,
            columns=proposed,
            sheet="Item Master",
            save_as="Materials item master",
        )
        summary = savings_services.item_import_apply(item_import=item_import, user=admin)
        assert summary["items_created"] == 3
        stent = Item.objects.get(code="SUP-00931")
        assert (stent.manufacturer, stent.unit_of_measure) == ("Zimmer Biomet", "BX")
        item_import.refresh_from_db()
        assert item_import.mapping_used["sheet"] == "Item Master"
        assert item_import.mapping_used["name"] == "Materials item master"


def test_the_mapping_form_on_the_page_saves_the_choices_and_the_job_records_them(
    world, agreement, django_capture_on_commit_callbacks
):
    client = world.client("administrator")
    staff = _receive(world, MEDICAL_STAFF.read_bytes(), agreement=agreement)
    page = client.get(f"/o/riverside/physicians/roster/{staff.pk}/")
    text = page.content.decode()
    assert page.status_code == 200 and "Match the file" in text and "148-786-4542" in text
    form = {"mapping_form": "1", "date_format": "auto", "save_as": "Medical staff office"}
    for n, (column, field) in enumerate(STAFF_COLUMNS.items(), start=1):
        form[f"column_{n}"] = column
        form[f"field_{n}"] = field
    bad = client.post(
        f"/o/riverside/physicians/roster/{staff.pk}/confirm/", {**form, "field_5": "practice"}
    )
    assert bad.status_code == 400 and "one field" in bad.content.decode()
    with django_capture_on_commit_callbacks(execute=True):
        done = client.post(f"/o/riverside/physicians/roster/{staff.pk}/confirm/", form)
    assert done.status_code == 302
    with world.scope():
        staff.refresh_from_db()
        assert staff.status == "applied", staff.job.message
        assert staff.mapping_used["name"] == "Medical staff office"
        assert Physician.objects.filter(npi__in=NPIS).count() == 5
