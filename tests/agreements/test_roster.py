"""The physician roster import (issue 17, item 4): an NPPES-shaped file and the product's own
columns, through the services, the pages and the job; whole or not at all; row/column/reason."""

from __future__ import annotations

import datetime as dt
import io
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import transaction
from openpyxl import Workbook

from agreements import roster, services
from agreements.models import Participation, Physician, RosterImport
from comanage.core.master_imports import (
    CanonicalTable,
    ImportRefused,
    MasterImportStatus,
    Table,
    layout_apply,
)
from comanage.core.models import BusinessEvent, Job
from tests import factories as f

DATA = Path(__file__).resolve().parents[1] / "data"
NPPES_FILE = DATA / "roster_nppes_riverside.csv"
HEADER = "npi,first_name,last_name,practice,specialty,email,join_date,leave_date\n"

pytestmark = pytest.mark.django_db


@pytest.fixture
def setup(world):
    with world.scope():
        practice = f.PracticeFactory(organization=world.org, name="Riverside Orthopaedic Partners")
        agreement = f.AgreementFactory(
            organization=world.org,
            practice=practice,
            term_start=dt.date(2025, 1, 1),
            term_end=dt.date(2027, 12, 31),
        )
    return practice, agreement


def _upload(name: str, content: bytes) -> SimpleUploadedFile:
    return SimpleUploadedFile(name, content, content_type="text/csv")


def _receive(world, content: bytes, *, agreement=None, name="roster.csv", layout=""):
    with world.scope():
        return services.roster_import_receive(
            organization=world.org,
            upload=_upload(name, content),
            user=world.users["administrator"],
            agreement=agreement,
            layout=layout,
        )


def _apply(world, roster_import):
    with world.scope():
        return services.roster_import_apply(
            roster_import=roster_import, user=world.users["administrator"]
        )


def _refused(world, roster_import) -> list[dict]:
    with pytest.raises(ImportRefused) as refused:
        _apply(world, roster_import)
    return refused.value.problems.as_list()


def test_the_nppes_extract_is_recognised_and_creates_physicians_and_participations(
    world, setup, django_capture_on_commit_callbacks
):
    practice, agreement = setup
    roster_import = _receive(world, NPPES_FILE.read_bytes(), agreement=agreement)
    assert roster_import.layout == "nppes"
    with world.scope():
        preview = services.roster_import_preview(roster_import=roster_import)
    assert preview["problem_count"] == 0
    assert preview["row_count"] == 5
    assert preview["layout"] == "NPPES registry extract"
    assert {
        "field": "last_name",
        "column": "Provider Last Name (Legal Name)",
        "label": "last name",
    } in (preview["mapping"])
    assert "Provider Credential Text" in preview["ignored"]
    with world.scope(), django_capture_on_commit_callbacks(execute=True):
        job = services.roster_import_start(
            roster_import=roster_import, user=world.users["administrator"]
        )
    with world.scope():
        job.refresh_from_db()
        roster_import.refresh_from_db()
        assert job.status == "succeeded", job.message
        assert roster_import.status == MasterImportStatus.APPLIED
        assert roster_import.summary == {
            "physicians_created": 5,
            "physicians_updated": 0,
            "physicians_unchanged": 0,
            "participations_added": 4,
            "participations_updated": 0,
        }
        obrien = Physician.objects.get(npi="1740232883")
        # the registry's capitals become ordinary names
        assert (obrien.first_name, obrien.last_name) == ("Kathleen", "O'Brien")
        assert obrien.practice == practice
        assert Physician.objects.get(npi="1326562802").practice is None
        lindqvist = Participation.objects.get(agreement=agreement, physician__npi="1952284101")
        assert (lindqvist.join_date, lindqvist.leave_date) == (
            dt.date(2025, 1, 1),
            dt.date(2026, 6, 30),
        )
        # no join date in the file: a physician, not a participant
        assert not Participation.objects.filter(physician__npi="1326562802").exists()
        # audited: each physician's history names who imported, and the import is an event
        record = obrien.history.get()
        assert record.history_user == world.users["administrator"]
        assert BusinessEvent.objects.filter(name="roster.imported").count() == 1


def test_importing_the_same_roster_again_changes_nothing(world, setup):
    _practice, agreement = setup
    _apply(world, _receive(world, NPPES_FILE.read_bytes(), agreement=agreement))
    second = _apply(world, _receive(world, NPPES_FILE.read_bytes(), agreement=agreement))
    assert second["physicians_unchanged"] == 5
    assert second["physicians_created"] == second["physicians_updated"] == 0
    assert second["participations_added"] == second["participations_updated"] == 0
    with world.scope():
        assert Physician.objects.get(npi="1487864542").history.count() == 1


def test_a_known_npi_updates_the_physician_and_the_participation(world, setup):
    practice, agreement = setup
    with world.scope():
        known = f.PhysicianFactory(
            organization=world.org, npi="1487864542", first_name="Chidi", last_name="Okafor-Old"
        )
        f.ParticipationFactory(
            organization=world.org,
            agreement=agreement,
            physician=known,
            join_date=dt.date(2025, 2, 1),
        )
    summary = _apply(world, _receive(world, NPPES_FILE.read_bytes(), agreement=agreement))
    assert summary["physicians_updated"] == 1
    assert summary["participations_updated"] == 1
    with world.scope():
        known.refresh_from_db()
        assert known.last_name == "Okafor"
        assert known.practice == practice
        assert known.specialty == "Cardiology"  # an empty or missing cell keeps the value
        assert Participation.objects.get(physician=known).join_date == dt.date(2025, 1, 1)


def test_an_npi_of_another_physician_is_refused_and_nothing_is_stored(world, setup):
    _practice, agreement = setup
    with world.scope():
        f.PhysicianFactory(
            organization=world.org, npi="1326562802", first_name="Ann", last_name="Zimmer"
        )
    problems = _refused(world, _receive(world, NPPES_FILE.read_bytes(), agreement=agreement))
    assert problems == [
        {
            "row": 5,
            "column": "NPI",
            "message": "the NPI 1326562802 already belongs to Dr Ann Zimmer in this "
            "organization; this row names Thanh Nguyen",
        }
    ]
    with world.scope():
        assert not Physician.objects.filter(npi="1487864542").exists()
        assert not Participation.objects.filter(agreement=agreement).exists()


def test_every_bad_value_is_named_by_row_column_and_reason(world, setup):
    _practice, agreement = setup
    content = (
        HEADER
        + "1487-864-542,Chidi,Okafor,,,,2025-01-01,\n"  # dashes are fine
        + "1487864543,Wrong,Check,,,,,\n"
        + "148786454,Short,Npi,,,,,\n"
        + "1487 864 542,Again,Twice,,,,,\n"
        + "1952284101,,Lindqvist,,,not-an-email,13/45/2025,\n"
        + "1063366482,Anjali,Patel,,,,2025-06-01,2025-03-01\n"
    ).encode()
    problems = _refused(world, _receive(world, content, agreement=agreement))
    assert problems == [
        {
            "row": 3,
            "column": "npi",
            "message": "the NPI 1487864543 fails the check digit (NPI Luhn rule with the "
            "80840 prefix)",
        },
        {"row": 4, "column": "npi", "message": "an NPI is 10 digits; “148786454” is not"},
        {
            "row": 5,
            "column": "npi",
            "message": "the NPI 1487864542 is also on row 2; give it once",
        },
        {"row": 6, "column": "first_name", "message": "the first name is empty"},
        {
            "row": 6,
            "column": "join_date",
            "message": "“13/45/2025” is not a date (YYYY-MM-DD or M/D/YYYY)",
        },
        {"row": 6, "column": "email", "message": "“not-an-email” is not an e-mail address"},
        {"row": 7, "column": "leave_date", "message": "the leave date is before the join date"},
    ]
    with world.scope():
        assert not Physician.objects.filter(npi="1487864542").exists()


def test_dates_outside_the_term_an_unknown_practice_and_no_agreement_are_refused(world, setup):
    _practice, agreement = setup
    content = (
        HEADER
        + "1487864542,Chidi,Okafor,Nowhere Clinic,,,,\n"
        + "1952284101,Margaret,Lindqvist,,,,2024-06-01,\n"
        + "1063366482,Anjali,Patel,,,,,2025-09-01\n"
    ).encode()
    problems = _refused(world, _receive(world, content, agreement=agreement))
    assert [(p["row"], p["column"]) for p in problems] == [
        (2, "practice"),
        (3, "join_date"),
        (4, "leave_date"),
    ]
    assert "no practice named “Nowhere Clinic”" in problems[0]["message"]
    assert problems[1]["message"] == "The join date must fall within the agreement's term."
    assert "does not take part" in problems[2]["message"]
    # the same dates without an agreement chosen on upload
    problems = _refused(world, _receive(world, content.replace(b"Nowhere Clinic", b"")))
    assert problems[0] == {
        "row": 3,
        "column": "join_date",
        "message": "the row gives participation dates but no agreement was chosen on upload",
    }
    with world.scope():
        assert not Physician.objects.filter(npi="1487864542").exists()


def test_an_organization_npi_and_missing_columns_are_refused(world, setup):
    nppes = NPPES_FILE.read_text().splitlines()
    nppes[1] = nppes[1].replace('"1487864542","1"', '"1487864542","2"', 1)
    problems = _refused(world, _receive(world, "\n".join(nppes).encode()))
    assert problems[0]["row"] == 2
    assert problems[0]["column"] == "Entity Type Code"
    assert "organization in the NPI registry" in problems[0]["message"]
    problems = _refused(world, _receive(world, b"npi,nickname\n1487864542,Okafor\n"))
    assert problems == [
        {"row": 1, "column": "first_name", "message": "no column gives the first name"},
        {"row": 1, "column": "last_name", "message": "no column gives the last name"},
    ]


def test_an_excel_roster_with_numeric_npis_imports(world, setup):
    book = Workbook()
    sheet = book.active
    sheet.append(["NPI", "First name", "Last name", "Join date"])
    sheet.append([1487864542, "Chidi", "Okafor", dt.datetime(2025, 1, 1)])
    sheet.append([None, None, None, None])
    sheet.append([1952284101, "Margaret", "Lindqvist", "3/13/2025"])
    buffer = io.BytesIO()
    book.save(buffer)
    _practice, agreement = setup
    summary = _apply(world, _receive(world, buffer.getvalue(), agreement=agreement, name="r.xlsx"))
    assert summary["physicians_created"] == 2
    with world.scope():
        assert Participation.objects.get(physician__npi="1952284101").join_date == dt.date(
            2025, 3, 13
        )


def test_a_roster_date_column_that_fits_two_formats_is_refused_naming_it(world, setup):
    """03/04/2025 and 05/06/2025 read as March and as April alike: with nothing said in the
    mapping the file is refused, naming the column, the row and the text; nothing stored."""
    _practice, agreement = setup
    with world.scope():
        physicians = Physician.objects.count()
    content = (
        b"NPI,First name,Last name,Start\n"
        b"1487864542,Chidi,Okafor,03/04/2025\n"
        b"1952284101,Margaret,Lindqvist,05/06/2025\n"
    )
    problems = _refused(world, _receive(world, content, agreement=agreement))
    assert len(problems) == 1
    assert problems[0]["column"] == "Start"
    assert "03/04/2025" in problems[0]["message"]
    assert "choose the date format in the mapping" in problems[0]["message"]
    with world.scope():
        assert Physician.objects.count() == physicians
        assert not Participation.objects.filter(agreement=agreement).exists()


def test_the_parser_reads_a_canonical_table_whatever_mapped_it():
    """The column mapping will hand the parser a canonical table: nothing else is needed."""
    table = CanonicalTable(
        fields=["npi", "first_name", "last_name"],
        rows=[{"npi": "1487864542", "first_name": "CHIDI", "last_name": "OKAFOR"}],
        row_numbers=[7],
        sources={"npi": "Surgeon NPI", "first_name": "Given", "last_name": "Family"},
        ignored=[],
    )
    rows, problems = roster.parse_roster(table)
    assert not problems
    assert rows[0].row == 7 and rows[0].last_name == "Okafor"
    two = Table(columns=["NPI", "npi", "First name"], rows=[["1", "2", "x"]], row_numbers=[2])
    with pytest.raises(Exception, match="both give the npi"):
        layout_apply(two, roster.CANONICAL)


# --------------------------------------------------------------------------------- pages


def test_the_administrator_uploads_previews_and_confirms_on_the_pages(
    world, setup, django_capture_on_commit_callbacks
):
    _practice, agreement = setup
    client = world.client("administrator")
    page = client.get("/o/riverside/physicians/roster/")
    assert page.status_code == 200
    assert b"NPPES registry extract" in page.content
    response = client.post(
        "/o/riverside/physicians/roster/",
        {"file": _upload("nppes.csv", NPPES_FILE.read_bytes()), "agreement": agreement.pk},
    )
    assert response.status_code == 302
    with world.scope():
        roster_import = RosterImport.objects.get()
    detail = client.get(response["Location"])
    assert detail.status_code == 200
    assert "Provider Last Name (Legal Name)" in detail.content.decode()
    assert b"Confirm and import" in detail.content
    with django_capture_on_commit_callbacks(execute=True):
        confirmed = client.post(f"/o/riverside/physicians/roster/{roster_import.pk}/confirm/")
    assert confirmed.status_code == 302
    done = client.get(confirmed["Location"]).content.decode()
    assert "Physicians created" in done
    with world.scope():
        assert Physician.objects.filter(npi="1740232883").exists()


def test_the_preview_lists_the_problems_and_offers_no_confirmation(world, setup):
    roster_import = _receive(world, (HEADER + "1487864543,A,B,,,,,\n").encode())
    page = world.client("administrator").get(f"/o/riverside/physicians/roster/{roster_import.pk}/")
    text = page.content.decode()
    assert "fails the check digit" in text
    assert "Confirm and import" not in text


def test_a_wrong_file_type_is_a_clear_400(world):
    response = world.client("administrator").post(
        "/o/riverside/physicians/roster/", {"file": _upload("roster.pdf", b"%PDF")}
    )
    assert response.status_code == 400
    assert "Upload a CSV" in response.content.decode()


@pytest.mark.parametrize("role", ["physician", "counsel", "executive", "ceo", "auditor"])
def test_only_the_administrator_imports_rosters(world, role):
    roster_import = _receive(world, NPPES_FILE.read_bytes())
    client = world.client(role)
    assert client.get("/o/riverside/physicians/roster/").status_code == 403
    posted = client.post(
        "/o/riverside/physicians/roster/", {"file": _upload("r.csv", NPPES_FILE.read_bytes())}
    )
    assert posted.status_code == 403
    confirm = client.post(f"/o/riverside/physicians/roster/{roster_import.pk}/confirm/")
    assert confirm.status_code == 403
    with world.scope():
        assert RosterImport.objects.count() == 1
        assert not Job.objects.exists()


def test_another_organization_gets_404(world):
    roster_import = _receive(world, NPPES_FILE.read_bytes())
    client = world.client("outsider")
    base = f"/o/riverside/physicians/roster/{roster_import.pk}/"
    assert client.get(base).status_code == 404
    assert client.post(base + "confirm/").status_code == 404
    assert client.post(base + "discard/").status_code == 404
    with world.scope():
        assert RosterImport.objects.get().status == MasterImportStatus.UPLOADED


def test_a_discarded_roster_cannot_be_confirmed(world):
    roster_import = _receive(world, NPPES_FILE.read_bytes())
    client = world.client("administrator")
    client.post(f"/o/riverside/physicians/roster/{roster_import.pk}/discard/")
    response = client.post(
        f"/o/riverside/physicians/roster/{roster_import.pk}/confirm/", follow=True
    )
    assert "discarded: it cannot be started again" in response.content.decode()
    with world.scope():
        assert RosterImport.objects.get().status == MasterImportStatus.CANCELLED
        assert not Job.objects.exists()


def test_an_unreadable_or_empty_file_is_refused_with_the_reason(world, setup):
    broken = _receive(world, b"this is no workbook", name="roster.xlsx")
    with world.scope():
        preview = services.roster_import_preview(roster_import=broken)
    assert preview["error"].startswith("the file is not an Excel workbook")
    assert _refused(world, broken)[0]["message"].startswith("the file is not an Excel workbook")
    header_only = _receive(world, HEADER.encode())
    assert _refused(world, header_only) == [
        {"row": 2, "column": "", "message": "the file has a header but no rows"}
    ]
    ragged = _receive(world, (HEADER + "1487864542,Chidi,Okafor,,,,,,,extra\n").encode())
    assert _refused(world, ragged) == [
        {
            "row": 2,
            "column": "",
            "message": "this row has 10 values but the header names 8 columns",
        }
    ]


def test_a_discard_removes_the_file_only_once_it_is_stored(
    world, django_capture_on_commit_callbacks
):
    """A discard whose transaction fails leaves the upload as it was, file included (it could be
    confirmed later); a discard that is stored removes the file."""
    roster_import = _receive(world, NPPES_FILE.read_bytes())
    storage, name = roster_import.file.storage, roster_import.file.name

    def discard_then_fail() -> None:
        with transaction.atomic():
            services.roster_import_discard(
                roster_import=roster_import, user=world.users["administrator"]
            )
            raise RuntimeError("the request fails after the discard")

    with world.scope():
        with pytest.raises(RuntimeError):
            discard_then_fail()
        kept = RosterImport.objects.get(pk=roster_import.pk)
        assert kept.status == MasterImportStatus.UPLOADED and kept.file.name == name
        assert storage.exists(name)
        with django_capture_on_commit_callbacks(execute=True):
            services.roster_import_discard(roster_import=kept, user=world.users["administrator"])
        assert RosterImport.objects.get(pk=kept.pk).status == MasterImportStatus.CANCELLED
    assert not storage.exists(name)


def test_the_page_of_an_unreadable_upload_says_why(world):
    broken = _receive(world, b"this is no workbook", name="roster.xlsx")
    response = world.client("administrator").get(f"/o/riverside/physicians/roster/{broken.pk}/")
    assert response.status_code == 200
    assert "The file cannot be read: the file is not an Excel workbook" in response.content.decode()
