"""Imports that used to crash or exhaust the web process: every bad file is a refusal naming
the row and the reason, oversize uploads are refused with 413 naming the limit, Excel
workbooks are opened only by the worker (with caps on their expanded size and rows), and an
import never applied can be discarded from the page and the API."""

from __future__ import annotations

import io
import os
import zipfile
from unittest import mock

import pytest
from django_scopes import scopes_disabled

from comanage.core.models import BusinessEvent, Job
from savings import services
from savings.models import DataImport, ImportStatus, UsageRow
from tests.savings.helpers import (
    USAGE_HEADER,
    example_a_agreement,
    import_text,
    upload,
    usage_csv,
    year,
)

pytestmark = pytest.mark.django_db
ADAMS = "1000000004"
API = "/api/v1/organizations/riverside/savings-imports/"


@pytest.fixture
def agreement(world, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    return example_a_agreement(world)


def _base(agreement) -> str:
    return f"/o/riverside/agreements/{agreement.pk}/savings/imports/"


def _post(client, agreement, name, content, *, kind="usage"):
    return client.post(
        _base(agreement),
        {
            "kind": kind,
            "period": "programme",
            "programme_year": year(agreement, 1).pk,
            "file": upload(name, content),
        },
    )


def _refusal(world, agreement, content, *, name="u.csv"):
    with world.scope(), pytest.raises(services.ImportRefused) as refused:
        import_text(
            world,
            agreement,
            kind="usage",
            period="programme",
            name=name,
            content=content,
            programme_year=year(agreement, 1),
        )
    with world.scope():
        assert not UsageRow.objects.exists()
    return refused.value.problems


def _rows(n: int, **extra) -> list[dict[str, str]]:
    return [
        {"case_id": f"c{i}", "physician_npi": ADAMS, "item_code": "A1", **extra} for i in range(n)
    ]


# --------------------------------------------------------------------------------------------
# Text that is not UTF-8, a huge header, a ragged row: named by row, on the page and the job


LATIN1 = usage_csv(_rows(2)).replace("medicare", "médicare").encode("latin-1")


def test_a_latin1_csv_is_refused_naming_the_row_and_the_byte(world, agreement):
    problems = _refusal(world, agreement, LATIN1)
    assert problems.total == 1
    problem = problems.items[0]
    assert problem["row"] == 2
    assert "not UTF-8 (byte 0xe9 at offset" in problem["message"]
    assert "save it as CSV UTF-8" in problem["message"]


def test_a_latin1_header_makes_the_preview_page_name_row_1_not_a_500(world, agreement):
    client = world.client("administrator")
    content = USAGE_HEADER.replace("payer", "payé").encode("latin-1") + b"\n"
    response = _post(client, agreement, "latin.csv", content)
    assert response.status_code == 302
    page = client.get(response["Location"])
    assert page.status_code == 200
    text = page.content.decode()
    assert "Row 1: the file is not UTF-8 (byte 0xe9 at offset" in text
    assert "Confirm and import" not in text


def test_a_latin1_data_row_is_named_on_the_preview_page(world, agreement):
    client = world.client("administrator")
    page = client.get(_post(client, agreement, "latin.csv", LATIN1)["Location"])
    assert page.status_code == 200
    assert "Row 2: the file is not UTF-8 (byte 0xe9" in page.content.decode()


def test_a_70_kib_header_is_refused_naming_row_1(world, agreement):
    header = USAGE_HEADER + "," + ",".join(f"extra_column_{i:05d}" for i in range(4500))
    assert len(header) > 70 * 1024
    content = header + "\n" + usage_csv(_rows(1)).split("\n", 1)[1]
    client = world.client("administrator")
    page = client.get(_post(client, agreement, "wide.csv", content)["Location"])
    assert page.status_code == 200
    assert "Row 1: the header line is longer than 64 KiB" in page.content.decode()
    problems = _refusal(world, agreement, content)
    assert problems.items[0]["row"] == 1
    assert "longer than 64 KiB" in problems.items[0]["message"]


def _ragged_at_1200() -> str:
    rows = _rows(1300)
    lines = usage_csv(rows).splitlines()
    # Row 1,200 (the header is row 1): an amount exported by Excel without quotes.
    lines[1199] = lines[1199].replace(",100,", ",$1,250,")
    return "\n".join(lines) + "\n"


def test_a_ragged_row_at_row_1200_is_named_on_the_preview_page(world, agreement):
    client = world.client("administrator")
    page = client.get(_post(client, agreement, "ragged.csv", _ragged_at_1200())["Location"])
    assert page.status_code == 200
    text = page.content.decode()
    assert "Row 1,200: 14 fields, expected 13" in text
    assert "Confirm and import" not in text


def test_a_ragged_row_at_row_1200_refuses_the_import_naming_it(world, agreement):
    problems = _refusal(world, agreement, _ragged_at_1200())
    assert [(p["row"], p["message"][:27]) for p in problems.items] == [
        (1200, "14 fields, expected 13 (the")
    ]
    assert problems.total == 1


def test_a_ragged_import_confirmed_through_the_job_fails_and_can_be_discarded(
    world, agreement, django_capture_on_commit_callbacks
):
    client = world.client("administrator")
    detail = _post(client, agreement, "ragged.csv", _ragged_at_1200())["Location"]
    with world.scope():
        data_import = DataImport.objects.get()
    with django_capture_on_commit_callbacks(execute=True):
        client.post(f"{_base(agreement)}{data_import.pk}/confirm/")
    with world.scope():
        data_import.refresh_from_db()
        job = data_import.job
    assert data_import.status == ImportStatus.FAILED
    assert job.errors[0]["row"] == 1200
    page = client.get(detail)
    assert page.status_code == 200 and "Discard this import" in page.content.decode()


# --------------------------------------------------------------------------------------------
# Siblings: every odd file is refused with a reason, or read correctly


@pytest.mark.parametrize(
    ("name", "content", "row", "message"),
    [
        ("u.csv", b"", None, "empty"),
        ("u.pdf", b"%PDF-1.7", None, "Upload a CSV (.csv, .txt) or an Excel workbook (.xlsx)"),
    ],
)
def test_an_empty_or_wrongly_named_file_is_refused_at_upload(
    world, agreement, name, content, row, message
):
    client = world.client("administrator")
    response = _post(client, agreement, name, content)
    assert response.status_code == 400
    assert message in response.content.decode()
    with world.scope():
        assert not DataImport.objects.exists()


@pytest.mark.parametrize(
    ("content", "row", "message"),
    [
        (b"\x00\x01\x02garbage\xff\xfe\n\x00", 1, "binary data"),
        (
            (USAGE_HEADER + "\n").encode() + b"\xff\xfe\x00garbage\n",
            2,
            f"not UTF-8 (byte 0xff at offset {len(USAGE_HEADER) + 1})",
        ),
        (b"PK\x03\x04" + b"\x00" * 40, 1, "this is an Excel workbook"),
        ("\ufeffcase_id".encode("utf-16"), 1, "UTF-16"),
        (b"   \n\n", 1, "no header line"),
        ((USAGE_HEADER + "\n").encode(), None, "no data rows"),
    ],
)
def test_garbage_is_refused_with_a_reason_not_a_crash(world, agreement, content, row, message):
    problems = _refusal(world, agreement, content)
    assert problems.items[0]["row"] == row
    assert message in problems.items[0]["message"]
    client = world.client("administrator")
    assert client.get(_post(client, agreement, "g.csv", content)["Location"]).status_code == 200


@pytest.mark.parametrize("newline", ["\r", "\r\n"])
def test_a_bom_and_old_mac_or_windows_line_ends_are_read(world, agreement, newline):
    content = "\ufeff" + usage_csv(_rows(3)).replace("\n", newline)
    with world.scope():
        import_text(
            world,
            agreement,
            kind="usage",
            period="programme",
            name="mac.csv",
            content=content,
            programme_year=year(agreement, 1),
        )
        assert UsageRow.objects.count() == 3


# --------------------------------------------------------------------------------------------
# Size limits


def test_an_oversize_upload_is_refused_with_413_naming_the_limit(world, agreement, settings):
    settings.IMPORT_MAX_BYTES = {"usage": 1000, "prices": 1000, "cases": 1000}
    client = world.client("administrator")
    page = client.get(_base(agreement))
    assert "The limit for case-level usage files is 1000" in page.content.decode()
    response = _post(client, agreement, "big.csv", usage_csv(_rows(30)))
    assert response.status_code == 413
    text = response.content.decode()
    assert "the limit for case-level usage files is 1000" in text
    with world.scope():
        assert not DataImport.objects.exists()


# --------------------------------------------------------------------------------------------
# Excel: never opened by the web request; caps checked by the worker before openpyxl


SST = "application/vnd.openxmlformats-officedocument.spreadsheetml.sharedStrings+xml"


def _with_shared_strings(content: bytes, count: int) -> bytes:
    """The workbook with a shared-strings part of ``count`` distinct 30,000-character strings
    (as Excel writes them; openpyxl itself writes inline strings): it compresses to a few
    kilobytes and expands to ``count`` × 30 KB, which openpyxl loads whole into memory."""
    strings = "".join(f"<si><t>{i:06d}{'x' * 30_000}</t></si>" for i in range(count))
    part = (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?><sst xmlns="http://'
        f'schemas.openxmlformats.org/spreadsheetml/2006/main" count="{count}" '
        f'uniqueCount="{count}">{strings}</sst>'
    )
    out = io.BytesIO()
    with (
        zipfile.ZipFile(io.BytesIO(content)) as source,
        zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as target,
    ):
        for entry in source.infolist():
            data = source.read(entry)
            if entry.filename == "[Content_Types].xml":
                data = data.replace(
                    b"</Types>",
                    f'<Override PartName="/xl/sharedStrings.xml" '
                    f'ContentType="{SST}"/></Types>'.encode(),
                )
            target.writestr(entry.filename, data)
        target.writestr("xl/sharedStrings.xml", part)
    return out.getvalue()


def _workbook(rows: int = 2, *, shared_strings: int = 0) -> bytes:
    import datetime as dt

    from openpyxl import Workbook

    book = Workbook()
    sheet = book.active
    sheet.append(USAGE_HEADER.split(","))
    for i in range(rows):
        sheet.append(
            [
                f"c{i}",
                dt.date(2025, 3, 1),
                "CATH",
                ADAMS,
                "medicare",
                True,
                "A1",
                1,
                100,
                2.0,
                dt.date(2025, 2, 20),
                True,
                False,
            ]
        )
    buffer = io.BytesIO()
    book.save(buffer)
    if shared_strings:
        return _with_shared_strings(buffer.getvalue(), shared_strings)
    return buffer.getvalue()


def _confirm(world, agreement, client, django_capture_on_commit_callbacks, content):
    response = _post(client, agreement, "u.xlsx", content)
    assert response.status_code == 302
    with world.scope():
        data_import = DataImport.objects.latest("pk")
    with django_capture_on_commit_callbacks(execute=True):
        client.post(f"{_base(agreement)}{data_import.pk}/confirm/")
    with world.scope():
        data_import.refresh_from_db()
        return data_import, data_import.job


def test_the_web_request_never_opens_an_excel_workbook(world, agreement):
    client = world.client("administrator")
    boom = mock.Mock(side_effect=AssertionError("openpyxl called in the web request"))
    with (
        mock.patch("openpyxl.load_workbook", boom),
        mock.patch("savings.importing._open_xlsx_batches", boom),
    ):
        response = _post(client, agreement, "u.xlsx", _workbook())
        assert response.status_code == 302
        page = client.get(response["Location"])
    assert page.status_code == 200
    assert "opened only by the background worker" in page.content.decode()
    assert not boom.called


def test_a_workbook_whose_shared_strings_expand_past_the_cap_is_refused_by_the_worker(
    world, agreement, settings, django_capture_on_commit_callbacks
):
    settings.IMPORT_XLSX_MAX_OTHER_BYTES = 1 << 20
    content = _workbook(shared_strings=60)  # 1.8 MB of shared strings
    assert len(content) < 200_000
    with zipfile.ZipFile(io.BytesIO(content)) as archive:
        assert archive.getinfo("xl/sharedStrings.xml").file_size > 1 << 20
    client = world.client("administrator")
    load = mock.Mock(side_effect=AssertionError("openpyxl opened an oversize workbook"))
    with mock.patch("openpyxl.load_workbook", load):
        data_import, job = _confirm(
            world, agreement, client, django_capture_on_commit_callbacks, content
        )
    assert not load.called
    assert data_import.status == ImportStatus.FAILED and job.status == "failed"
    assert "shared strings and other parts expand to" in job.errors[0]["message"]
    with world.scope():
        assert not UsageRow.objects.exists()


def test_a_worksheet_expanding_past_the_cap_is_refused_by_the_worker(
    world, agreement, settings, django_capture_on_commit_callbacks
):
    settings.IMPORT_XLSX_MAX_SHEET_BYTES = 20_000
    client = world.client("administrator")
    data_import, job = _confirm(
        world, agreement, client, django_capture_on_commit_callbacks, _workbook(rows=100)
    )
    assert data_import.status == ImportStatus.FAILED
    assert "the worksheet sheet1.xml expands to" in job.errors[0]["message"]
    with world.scope():
        assert not UsageRow.objects.exists()


def test_a_workbook_with_more_rows_than_the_cap_is_refused_by_the_worker(
    world, agreement, settings, django_capture_on_commit_callbacks
):
    settings.IMPORT_XLSX_MAX_ROWS = 4  # the header and three rows
    client = world.client("administrator")
    data_import, job = _confirm(
        world, agreement, client, django_capture_on_commit_callbacks, _workbook(rows=5)
    )
    assert data_import.status == ImportStatus.FAILED
    assert job.errors[0]["row"] == 5
    assert "more than 4 rows" in job.errors[0]["message"]
    with world.scope():
        assert not UsageRow.objects.exists()
    # Within the cap, the same workbook is applied.
    settings.IMPORT_XLSX_MAX_ROWS = 6
    data_import, job = _confirm(
        world, agreement, client, django_capture_on_commit_callbacks, _workbook(rows=5)
    )
    assert job.status == "succeeded", job.errors
    with world.scope():
        assert UsageRow.objects.count() == 5


# --------------------------------------------------------------------------------------------
# Discard


def _pending(world, agreement, content=None):
    with world.scope():
        return services.data_import_receive(
            agreement=agreement,
            kind="usage",
            period="programme",
            programme_year=year(agreement, 1),
            user=world.users["administrator"],
            upload=upload("pending.csv", content or usage_csv(_rows(2))),
        )


def _events(name):
    with scopes_disabled():
        return list(BusinessEvent.objects.filter(name=name))


def test_a_pending_import_is_discarded_from_the_page(
    world, agreement, django_capture_on_commit_callbacks
):
    data_import = _pending(world, agreement)
    stored = data_import.file.path
    client = world.client("administrator")
    assert (
        "Discard this import" in client.get(f"{_base(agreement)}{data_import.pk}/").content.decode()
    )
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(f"{_base(agreement)}{data_import.pk}/discard/")
    assert response.status_code == 302
    with world.scope():
        data_import.refresh_from_db()
    assert data_import.status == ImportStatus.CANCELLED and not data_import.file
    assert not os.path.exists(stored)
    assert [e.actor_id for e in _events("savings.import_discarded")] == [
        world.users["administrator"].pk
    ]
    page = client.get(f"{_base(agreement)}{data_import.pk}/")
    assert page.status_code == 200 and "was discarded" in page.content.decode()
    assert client.get(f"{_base(agreement)}{data_import.pk}/file/").status_code == 404
    # Confirming it afterwards does nothing.
    client.post(f"{_base(agreement)}{data_import.pk}/confirm/")
    with world.scope():
        assert DataImport.objects.get(pk=data_import.pk).status == ImportStatus.CANCELLED


def test_a_failed_import_is_discarded_through_the_api(world, agreement):
    with pytest.raises(services.ImportRefused), world.scope():
        import_text(
            world,
            agreement,
            kind="usage",
            period="programme",
            name="bad.csv",
            content=usage_csv(_rows(2, quantity="-1")),
            programme_year=year(agreement, 1),
        )
    with world.scope():
        failed = DataImport.objects.get()
    assert failed.status == ImportStatus.FAILED
    response = world.client("administrator").post(f"{API}{failed.pk}/discard/")
    assert response.status_code == 200, response.content
    assert response.json()["status"] == "cancelled"
    assert len(_events("savings.import_discarded")) == 1


def test_a_queued_import_whose_worker_never_came_is_discarded_and_its_job_failed(world, agreement):
    data_import = _pending(world, agreement)
    with world.scope():
        job = services.data_import_start(data_import=data_import, user=None)  # never delivered
    assert world.client("administrator").post(f"{API}{data_import.pk}/discard/").status_code == 200
    with scopes_disabled():
        job.refresh_from_db()
    assert job.status == "failed" and "discarded" in job.message
    # The same file can be uploaded and imported again.
    again = _pending(world, agreement)
    with world.scope():
        services.data_import_start(data_import=again, user=None)


def test_an_applied_import_cannot_be_discarded(world, agreement):
    with world.scope():
        applied = import_text(
            world,
            agreement,
            kind="usage",
            period="programme",
            name="ok.csv",
            content=usage_csv(_rows(2)),
            programme_year=year(agreement, 1),
        )
    client = world.client("administrator")
    response = client.post(f"{API}{applied.pk}/discard/")
    assert response.status_code == 409
    assert "applied: it cannot be discarded" in response.json()["errors"][0]["message"]
    page = client.post(f"{_base(agreement)}{applied.pk}/discard/", follow=True)
    assert "applied: it cannot be discarded" in page.content.decode()
    assert "Discard this import" not in page.content.decode()
    with world.scope():
        applied.refresh_from_db()
        assert applied.status == ImportStatus.APPLIED and applied.file
        assert UsageRow.objects.count() == 2
    assert not _events("savings.import_discarded")


@pytest.mark.parametrize("who", ["outsider", "executive"])
def test_others_cannot_discard(world, agreement, who):
    data_import = _pending(world, agreement)
    client = world.client(who)
    page = client.post(f"{_base(agreement)}{data_import.pk}/discard/")
    api = client.post(f"{API}{data_import.pk}/discard/")
    expected = 404 if who == "outsider" else 403
    assert (page.status_code, api.status_code) == (expected, expected)
    with world.scope():
        assert DataImport.objects.get(pk=data_import.pk).status == ImportStatus.UPLOADED
    with scopes_disabled():
        assert not Job.objects.exists()
    # The same request from the organization's administrator does discard it.
    assert world.client("administrator").post(f"{API}{data_import.pk}/discard/").status_code == 200
