"""Case-file imports that used to crash or load whole files in the web process: bad text,
huge headers and ragged rows are refusals naming the row; oversize uploads get 413 naming the
limit (page and API); workbooks are opened only by the worker, within caps; a case file never
applied can be discarded from the page and the API."""

from __future__ import annotations

import io
import os
from unittest import mock

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django_scopes import scopes_disabled

from comanage.core.models import BusinessEvent, Job
from indicators import casefile
from indicators.models import CaseImport, IndicatorResult
from tests.indicators.conftest import EXAMPLE_D

pytestmark = pytest.mark.django_db
API = "/api/v1/organizations/riverside/indicator-imports/"
HEADER = EXAMPLE_D.read_bytes().split(b"\n", 1)[0].rstrip(b"\r")


@pytest.fixture
def base(ortho, media):  # type: ignore[no-untyped-def]
    return f"/o/riverside/agreements/{ortho.agreement.pk}/indicators/"


def _upload(client, base, ortho, name, content):  # type: ignore[no-untyped-def]
    return client.post(
        base + "import/",
        {
            "period": ortho.annual.key,
            "indicators": ["vte_prophylaxis"],
            "year": ortho.year.pk,
            "file": SimpleUploadedFile(name, content),
        },
    )


def _refused(content: bytes, name: str = "cases.csv") -> casefile.Problems:
    with pytest.raises(casefile.CaseFileRefused) as refused:
        casefile.casefile_read(content, filename=name)
    return refused.value.problems


def _cases(n: int) -> bytes:
    rows = [f"E{i:05d},60,TKA,elective,2025-03-01,false,false,true," for i in range(n)]
    return HEADER + b"\n" + "\n".join(rows).encode() + b"\n"


# --------------------------------------------------------------------------------------------
# Reading (the worker)


def test_a_latin1_case_file_is_refused_naming_the_row_and_the_byte():
    content = EXAMPLE_D.read_bytes().replace(b"elective", "électif".encode("latin-1"), 1)
    problems = _refused(content)
    assert problems.items[0].row == 2
    assert "not UTF-8 (byte 0xe9 at offset" in problems.items[0].message


def test_a_70_kib_header_is_refused_naming_row_1():
    header = HEADER + b"," + b",".join(b"x%05d" % i for i in range(12_000))
    assert len(header) > 70 * 1024
    problems = _refused(header + b"\n" + _cases(1).split(b"\n", 1)[1])
    assert (problems.items[0].row, problems.items[0].message[:33]) == (
        1,
        "the header line is longer than 64",
    )


def test_a_ragged_row_at_row_1200_is_refused_naming_it():
    lines = _cases(1300).split(b"\n")
    lines[1199] = lines[1199].replace(b",60,", b",60,extra,")
    problems = _refused(b"\n".join(lines))
    assert problems.total == 1
    assert problems.items[0].row == 1200
    assert problems.items[0].message.startswith("10 fields, expected 9")


@pytest.mark.parametrize("newline", [b"\r", b"\r\n"])
def test_a_bom_and_old_mac_or_windows_line_ends_are_read(newline):
    frame = casefile.casefile_read(
        b"\xef\xbb\xbf" + _cases(3).replace(b"\n", newline), filename="cases.csv"
    )
    assert list(frame["case_id"]) == ["E00000", "E00001", "E00002"]
    assert "medical_reason_no_prophylaxis" in frame.columns


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "the file is empty"),
        (b"\x00\x01binary\x00\n", "binary data"),
        (b"PK\x03\x04\x00\x00", "this is an Excel workbook"),
    ],
)
def test_garbage_is_refused_with_a_reason(content, message):
    assert message in _refused(content).items[0].message


def _workbook(rows: int) -> bytes:
    from openpyxl import Workbook

    book = Workbook()
    sheet = book.active
    sheet.append(HEADER.decode().split(","))
    for i in range(rows):
        sheet.append([f"E{i}", 60, "TKA", "elective", "2025-03-01", False, False, True, None])
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


def test_a_workbook_over_the_row_cap_is_refused(settings):
    settings.IMPORT_XLSX_MAX_ROWS = 4
    problems = _refused(_workbook(5), name="cases.xlsx")
    assert "more than 4 rows" in problems.items[0].message
    settings.IMPORT_XLSX_MAX_ROWS = 6
    assert len(casefile.casefile_read(_workbook(5), filename="cases.xlsx")) == 5


def test_a_workbook_expanding_past_the_caps_is_refused_before_openpyxl(settings):
    settings.IMPORT_XLSX_MAX_SHEET_BYTES = 2_000
    read = mock.Mock(side_effect=AssertionError("pandas opened an oversize workbook"))
    with mock.patch("pandas.read_excel", read):
        problems = _refused(_workbook(50), name="cases.xlsx")
    assert "expands to" in problems.items[0].message and not read.called


# --------------------------------------------------------------------------------------------
# Pages and API


def test_the_preview_names_a_ragged_row_and_a_latin1_row_not_a_500(world, ortho, base):
    client = world.client("administrator")
    lines = _cases(1300).split(b"\n")
    lines[1199] = lines[1199].replace(b",60,", b",60,extra,")
    lines[2] = lines[2].replace(b"elective", "électif".encode("latin-1"))
    response = _upload(client, base, ortho, "bad.csv", b"\n".join(lines))
    assert response.status_code == 302
    page = client.get(response["Location"])
    assert page.status_code == 200
    text = page.content.decode()
    assert "Row 3: the file is not UTF-8 (byte 0xe9" in text
    assert "Row 1,200: 10 fields, expected 9" in text
    assert "Run the import" not in text and "Discard this case file" in text


def test_the_web_request_never_opens_an_excel_workbook(world, ortho, base):
    client = world.client("administrator")
    boom = mock.Mock(side_effect=AssertionError("a workbook parsed in the web request"))
    with mock.patch("pandas.read_excel", boom), mock.patch("openpyxl.load_workbook", boom):
        response = _upload(client, base, ortho, "cases.xlsx", _workbook(3))
        assert response.status_code == 302
        page = client.get(response["Location"])
    assert page.status_code == 200 and not boom.called
    assert "opened only by the background worker" in page.content.decode()


def test_an_oversize_case_file_is_refused_with_413_on_the_page_and_the_api(
    world, ortho, base, settings
):
    settings.IMPORT_MAX_BYTES = {"usage": 500, "prices": 500, "cases": 500}
    client = world.client("administrator")
    assert "The limit for case files is 500" in client.get(base + "import/").content.decode()
    page = _upload(client, base, ortho, "big.csv", _cases(40))
    assert page.status_code == 413
    assert "the limit for case files is 500" in page.content.decode()
    api = client.post(
        API,
        {
            "agreement": ortho.agreement.pk,
            "programme_year": ortho.year.pk,
            "period": "annual",
            "file": SimpleUploadedFile("big.csv", _cases(40)),
        },
    )
    assert api.status_code == 413
    assert api.json()["errors"][0]["field"] == "file"
    assert "the limit for case files is 500" in api.json()["errors"][0]["message"]
    with scopes_disabled():
        assert not CaseImport.objects.exists() and not Job.objects.exists()


def test_an_api_upload_the_service_refuses_leaves_no_job_holding_the_file(world, ortho):
    client = world.client("administrator")
    payload = {"agreement": ortho.agreement.pk, "programme_year": ortho.year.pk, "period": "annual"}
    refused = client.post(API, {**payload, "file": SimpleUploadedFile("cases.pdf", _cases(3))})
    assert refused.status_code == 400
    with scopes_disabled():
        assert not Job.objects.exists()


# --------------------------------------------------------------------------------------------
# Discard


def _events():
    with scopes_disabled():
        return list(BusinessEvent.objects.filter(name="indicator.import_discarded"))


def _pending(world, ortho, base) -> CaseImport:  # type: ignore[no-untyped-def]
    _upload(world.client("administrator"), base, ortho, "cases.csv", EXAMPLE_D.read_bytes())
    with scopes_disabled():
        return CaseImport.objects.latest("pk")


def test_a_pending_case_file_is_discarded_from_the_page(
    world, ortho, base, django_capture_on_commit_callbacks
):
    case_import = _pending(world, ortho, base)
    stored = case_import.file.path
    client = world.client("administrator")
    assert (
        "Discard this case file" in client.get(base + f"imports/{case_import.pk}/").content.decode()
    )
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(base + f"imports/{case_import.pk}/discard/")
    assert response.status_code == 302
    with scopes_disabled():
        assert not CaseImport.objects.filter(pk=case_import.pk).exists()
    assert not os.path.exists(stored)
    assert [e.actor_id for e in _events()] == [world.users["administrator"].pk]


def test_a_refused_case_file_is_discarded_through_the_api(
    world, ortho, base, django_capture_on_commit_callbacks
):
    bad = EXAMPLE_D.read_bytes().replace(b"E05,50,", b"E05,fifty,")
    _upload(world.client("administrator"), base, ortho, "bad.csv", bad)
    with scopes_disabled():
        case_import = CaseImport.objects.get()
    client = world.client("administrator")
    with django_capture_on_commit_callbacks(execute=True):
        client.post(base + f"imports/{case_import.pk}/run/")
    with scopes_disabled():
        case_import.refresh_from_db()
    assert case_import.status == "refused"
    # Stuck before: the page offered nothing to do with it. Now it can be discarded.
    assert (
        "Discard this case file" in client.get(base + f"imports/{case_import.pk}/").content.decode()
    )
    response = client.post(f"{API}{case_import.pk}/discard/")
    assert response.status_code == 204
    with scopes_disabled():
        assert not CaseImport.objects.exists()
    assert len(_events()) == 1
    # The same file can be uploaded and run again (its failed job holds nothing).
    _upload(client, base, ortho, "bad.csv", bad)
    with scopes_disabled():
        again = CaseImport.objects.get()
    with django_capture_on_commit_callbacks(execute=True):
        client.post(base + f"imports/{again.pk}/run/")
    with scopes_disabled():
        again.refresh_from_db()
    assert again.status == "refused" and again.job is not None


def test_an_applied_case_file_cannot_be_discarded(
    world, ortho, base, django_capture_on_commit_callbacks
):
    case_import = _pending(world, ortho, base)
    client = world.client("administrator")
    with django_capture_on_commit_callbacks(execute=True):
        client.post(base + f"imports/{case_import.pk}/run/")
    with scopes_disabled():
        case_import.refresh_from_db()
        results = IndicatorResult.objects.count()
    assert case_import.status == "applied"
    response = client.post(f"{API}{case_import.pk}/discard/")
    assert response.status_code == 409
    assert "applied: it cannot be discarded" in response.json()["errors"][0]["message"]
    page = client.post(base + f"imports/{case_import.pk}/discard/", follow=True)
    assert "applied: it cannot be discarded" in page.content.decode()
    with scopes_disabled():
        assert CaseImport.objects.filter(pk=case_import.pk, status="applied").exists()
        assert IndicatorResult.objects.count() == results
    assert not _events()


@pytest.mark.parametrize("who", ["outsider", "executive"])
def test_others_cannot_discard_a_case_file(world, ortho, base, who):
    case_import = _pending(world, ortho, base)
    client = world.client(who)
    page = client.post(base + f"imports/{case_import.pk}/discard/")
    api = client.post(f"{API}{case_import.pk}/discard/")
    expected = 404 if who == "outsider" else 403
    assert (page.status_code, api.status_code) == (expected, expected)
    with scopes_disabled():
        assert CaseImport.objects.filter(pk=case_import.pk).exists()
    # The same request from the organization's administrator does discard it.
    assert world.client("administrator").post(f"{API}{case_import.pk}/discard/").status_code == 204
