"""Issue 17 audit, rosters as a medical staff office keeps them: a workbook with an empty
first sheet, title rows and the header on row 3 written in its own capitals, NPIs with spaces,
Excel dates and M/D/YY, nothing chosen by hand; and bad inputs (a huge cell, a file of another
kind), each named by the file's own column with nothing stored. (A roster date column that fits
two formats is refused naming it: test_roster.py.)"""

from __future__ import annotations

import datetime as dt
import io
from pathlib import Path

import pytest
from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import SimpleUploadedFile
from openpyxl import Workbook

from agreements import services
from agreements.models import Participation, Physician
from comanage.core.master_imports import ImportRefused, master_import_map, master_mapping_step
from tests import factories as f

pytestmark = pytest.mark.django_db
EXPORTS = Path(__file__).resolve().parents[1] / "data" / "exports"


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


def _receive(world, content: bytes, *, name="roster.csv", agreement=None):
    with world.scope():
        return services.roster_import_receive(
            organization=world.org,
            upload=SimpleUploadedFile(name, content),
            user=world.users["administrator"],
            agreement=agreement,
        )


def _book(rows: list[list[object]]) -> bytes:
    book = Workbook()
    book.active.title = "Cover"
    sheet = book.create_sheet("Staff")
    sheet.append(["Medical Staff Office"])
    sheet.append(["Active appointments"])
    sheet.append(["PROVIDER NPI", "last", "First", "Group", "Appointed", "Resigned"])
    for row in rows:
        sheet.append(row)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def test_a_roster_workbook_on_its_second_sheet_is_found_and_read(world, agreement):
    data = _book(
        [
            [
                "148 786 4542",
                "Okafor",
                "Chidi",
                "Riverside Orthopaedic Partners",
                dt.datetime(2025, 1, 1),
                None,
            ],
            [
                "195-228-4101",
                " Lindqvist ",
                "Margaret",
                "Riverside Orthopaedic Partners",
                "3/13/25",
                "6/30/26",
            ],
        ]
    )
    roster_import = _receive(world, data, name="staff.xlsx", agreement=agreement)
    with world.scope():
        step = master_mapping_step(instance=roster_import)
        assert step["sheet"] == "Staff" and step["header_row"] == 3
        columns = {c["header"]: c["field"] for c in step["columns"]}
        assert columns["PROVIDER NPI"] == "npi" and columns["last"] == "last_name"
        columns.update(Group="practice", Appointed="join_date", Resigned="leave_date")
        master_import_map(
            instance=roster_import, user=world.users["administrator"], columns=columns
        )
        services.roster_import_apply(roster_import=roster_import, user=world.users["administrator"])
        stored = {
            p.physician.npi: (p.physician.last_name, p.join_date, p.leave_date)
            for p in Participation.objects.select_related("physician")
        }
    assert stored == {
        "1487864542": ("Okafor", dt.date(2025, 1, 1), None),
        "1952284101": ("Lindqvist", dt.date(2025, 3, 13), dt.date(2026, 6, 30)),
    }


STAFF = {
    "Provider NPI": "npi",
    "Last": "last_name",
    "First": "first_name",
    "Group": "practice",
    "Dept": "",
    "Appointed": "join_date",
    "Resigned": "leave_date",
}


def _refused(world, roster_import, **kwargs):
    with world.scope():
        master_import_map(instance=roster_import, user=world.users["administrator"], **kwargs)
    with pytest.raises(ImportRefused) as refused, world.scope():
        services.roster_import_apply(roster_import=roster_import, user=world.users["administrator"])
    with world.scope():
        assert not Physician.objects.filter(npi__in=["1487864542", "1952284101"]).exists()
    return refused.value.problems.as_list()


def test_a_huge_cell_is_named_briefly(world, agreement):
    text = (EXPORTS / "medical_staff_roster.csv").read_bytes()
    text = text.replace(b"Okafor", b"O" * 200_000, 1)
    problems = _refused(world, _receive(world, text, agreement=agreement), columns=STAFF)
    assert problems[0]["column"] == "Last", problems
    assert problems[0]["row"] == 3
    assert len(problems[0]["message"]) < 300


def test_a_usage_file_uploaded_as_a_roster_names_what_is_missing(world, agreement):
    roster_import = _receive(
        world, (EXPORTS / "or_supply_usage_2025.csv").read_bytes(), agreement=agreement
    )
    with world.scope():
        step = master_mapping_step(instance=roster_import)
        columns = {c["header"]: c["field"] for c in step.get("columns", [])}
        with pytest.raises(ValidationError) as refused:
            master_import_map(
                instance=roster_import, user=world.users["administrator"], columns=columns
            )
    text = " ".join(refused.value.messages)
    assert "has no column" in text or "header cannot be found" in text
