"""Savings uploads through the API: a token client runs a programme year's files end to end
(upload -> preview -> confirm -> job -> applied), the refusals as JSON and CSV, Idempotency-Key,
and bad input named by field with nothing stored."""

from __future__ import annotations

import csv
import io

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from rest_framework.test import APIClient

from comanage.core.models import ApiToken, IdempotencyRecord, Job
from savings.models import DataImport, PriceItem, UsageRow
from tests.api.openapi import api_schema
from tests.savings.helpers import example_a_agreement, usage_csv, year

pytestmark = pytest.mark.django_db
IMPORTS = "/api/v1/organizations/riverside/savings-imports/"
ADAMS = "1000000004"
PRICES = b"item_code,unit_cost\nA1,1250.00\nA2,950.00\n"


@pytest.fixture
def agreement(world):  # type: ignore[no-untyped-def]
    return example_a_agreement(world)


@pytest.fixture
def admin(world) -> APIClient:  # type: ignore[no-untyped-def]
    """The administrator's token, made from a 2FA-verified session (as administrators must)."""
    _token, raw = ApiToken.issue(
        user=world.users["administrator"], name="script", two_factor_verified=True
    )
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    return client


def _file(content: bytes = PRICES, name: str = "prices.csv") -> SimpleUploadedFile:
    return SimpleUploadedFile(name, content, content_type="text/csv")


def _upload(client: APIClient, body: dict, **headers: str):  # type: ignore[no-untyped-def]
    return client.post(IMPORTS, body, format="multipart", **headers)


def _stored(world) -> int:  # type: ignore[no-untyped-def]
    with world.scope():
        return DataImport.objects.count()


def test_a_whole_year_upload_preview_confirm_job_applied(
    world, agreement, admin, django_capture_on_commit_callbacks
):
    first = year(agreement, 1)
    # 1. The year's price file: 201 at once with the preview the web page shows.
    response = _upload(admin, {"programme_year": first.pk, "kind": "prices", "file": _file()})
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["status"] == "uploaded" and body["agreement"] == agreement.pk
    assert body["programme_year"] == first.pk and body["kind"] == "prices"
    assert body["preview"]["columns"] == ["item_code", "unit_cost"]
    assert body["preview"]["rows"][:2] == [["A1", "1250.00"], ["A2", "950.00"]]
    assert body["preview"]["missing"] == [] and body["preview"]["error"] == ""
    # 2. Confirm: 202 with the job; the worker (eager) applies it.
    with django_capture_on_commit_callbacks(execute=True):
        confirmed = admin.post(f"{IMPORTS}{body['id']}/confirm/")
    assert confirmed.status_code == 202, confirmed.json()
    job_id = confirmed.json()["job"]
    assert confirmed.json()["job_url"].endswith(f"/jobs/{job_id}/")
    job = admin.get(confirmed.json()["job_url"]).json()
    assert job["status"] == "succeeded", job
    record = admin.get(f"{IMPORTS}{body['id']}/").json()
    assert record["status"] == "applied" and record["is_current"] and record["row_count"] == 2
    # 3. The year's usage, with the agreement named too.
    usage = usage_csv([{"case_id": "c1", "physician_npi": ADAMS, "item_code": "A1"}]).encode()
    uploaded = _upload(
        admin,
        {
            "agreement": agreement.pk,
            "programme_year": first.pk,
            "kind": "usage",
            "file": _file(usage, "usage.csv"),
        },
    ).json()
    with django_capture_on_commit_callbacks(execute=True):
        admin.post(f"{IMPORTS}{uploaded['id']}/confirm/")
    assert admin.get(f"{IMPORTS}{uploaded['id']}/").json()["status"] == "applied"
    with world.scope():
        assert PriceItem.objects.filter(data_import_id=body["id"]).count() == 2
        assert UsageRow.objects.filter(data_import_id=uploaded["id"]).count() == 1


def test_a_base_year_usage_file_is_named_by_agreement_and_base_year(world, agreement, admin):
    usage = usage_csv(
        [{"case_id": "c1", "physician_npi": ADAMS, "item_code": "A1", "service_date": "2024-03-04"}]
    ).encode()
    response = _upload(
        admin,
        {
            "agreement": agreement.pk,
            "base_year": 2024,
            "kind": "usage",
            "file": _file(usage, "base.csv"),
        },
    )
    assert response.status_code == 201, response.json()
    assert response.json()["base_year"] == 2024 and response.json()["period"] == "base"


def test_a_refused_file_reports_its_problems_as_json_and_csv(
    world, agreement, admin, django_capture_on_commit_callbacks
):
    bad = b"item_code,unit_cost\nA1,1250.00\nA2,-5\n"
    body = _upload(
        admin, {"programme_year": year(agreement, 1).pk, "kind": "prices", "file": _file(bad)}
    ).json()
    with django_capture_on_commit_callbacks(execute=True):
        job_url = admin.post(f"{IMPORTS}{body['id']}/confirm/").json()["job_url"]
    assert admin.get(job_url).json()["status"] == "failed"
    problems = admin.get(f"{IMPORTS}{body['id']}/problems/").json()
    assert problems["status"] == "failed" and problems["error_count"] == 1
    assert problems["problems"][0]["row"] == "3"
    assert problems["problems"][0]["column"] == "unit_cost"
    response = admin.get(f"{IMPORTS}{body['id']}/problems.csv/")
    assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(response.content.decode())))
    assert rows[0] == ["row", "column", "reason"]
    assert rows[1][:2] == ["3", "unit_cost"]
    # The refused import can be discarded, as on the web page.
    assert admin.post(f"{IMPORTS}{body['id']}/discard/").json()["status"] == "cancelled"


def test_confirming_twice_is_a_conflict(world, agreement, admin):
    body = _upload(
        admin, {"programme_year": year(agreement, 1).pk, "kind": "prices", "file": _file()}
    ).json()
    assert admin.post(f"{IMPORTS}{body['id']}/confirm/").status_code == 202
    again = admin.post(f"{IMPORTS}{body['id']}/confirm/")
    assert again.status_code == 409
    assert again.json()["errors"][0]["code"] == "conflict"


def test_the_same_idempotency_key_and_file_returns_the_first_import(world, agreement, admin):
    body = {"programme_year": year(agreement, 1).pk, "kind": "prices"}
    first = _upload(admin, {**body, "file": _file()}, HTTP_IDEMPOTENCY_KEY="k-1")
    again = _upload(admin, {**body, "file": _file()}, HTTP_IDEMPOTENCY_KEY="k-1")
    assert first.status_code == again.status_code == 201
    assert again.json()["id"] == first.json()["id"]
    assert again["Idempotent-Replayed"] == "true"
    assert _stored(world) == 1


def test_the_same_key_with_another_file_is_409_and_stores_nothing(world, agreement, admin):
    body = {"programme_year": year(agreement, 1).pk, "kind": "prices"}
    _upload(admin, {**body, "file": _file()}, HTTP_IDEMPOTENCY_KEY="k-2")
    other = _upload(
        admin, {**body, "file": _file(PRICES + b"B1,10.00\n")}, HTTP_IDEMPOTENCY_KEY="k-2"
    )
    assert other.status_code == 409
    assert other.json()["errors"][0]["code"] == "idempotency_key_reused"
    assert _stored(world) == 1


def test_a_retry_with_a_fresh_multipart_boundary_is_the_same_request(world, agreement, admin):
    """A client draws a new boundary for every try: the key matches on fields and files."""
    year_id = year(agreement, 1).pk

    def raw(boundary: str) -> bytes:
        parts = [
            f'--{boundary}\r\nContent-Disposition: form-data; name="programme_year"'
            f"\r\n\r\n{year_id}\r\n",
            f'--{boundary}\r\nContent-Disposition: form-data; name="kind"\r\n\r\nprices\r\n',
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; '
            f'filename="p.csv"\r\nContent-Type: text/csv\r\n\r\n',
        ]
        return "".join(parts).encode() + PRICES + f"\r\n--{boundary}--\r\n".encode()

    answers = [
        admin.generic(
            "POST",
            IMPORTS,
            raw(b),
            HTTP_IDEMPOTENCY_KEY="k-3",
            content_type=f"multipart/form-data; boundary={b}",
        )
        for b in ("first-boundary", "second-boundary")
    ]
    assert [a.status_code for a in answers] == [201, 201]
    assert answers[0].json()["id"] == answers[1].json()["id"]
    assert _stored(world) == 1


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"kind": "prices"}, "file"),
        ({"programme_year": "YEAR", "file": "FILE"}, "kind"),
        ({"programme_year": "YEAR", "kind": "bills", "file": "FILE"}, "kind"),
        ({"kind": "prices", "file": "FILE"}, "programme_year"),
        ({"base_year": 2024, "kind": "usage", "file": "FILE"}, "agreement"),
        ({"programme_year": 999999, "kind": "prices", "file": "FILE"}, "programme_year"),
        ({"agreement": 999999, "base_year": 2024, "kind": "usage", "file": "FILE"}, "agreement"),
        ({"programme_year": "YEAR", "kind": "prices", "file": "EMPTY"}, "file"),
        ({"programme_year": "YEAR", "kind": "prices", "file": "PDF"}, "file"),
        ({"programme_year": "YEAR", "kind": "prices", "file": "not a file"}, "file"),
    ],
)
def test_bad_input_is_a_4xx_naming_the_field_and_stores_nothing(
    world, agreement, admin, body, field
):
    files = {"FILE": _file(), "EMPTY": _file(b""), "PDF": _file(b"%PDF-1.4", "bill.pdf")}
    body = {
        k: (year(agreement, 1).pk if v == "YEAR" else files.get(v, v) if isinstance(v, str) else v)
        for k, v in body.items()
    }
    response = _upload(admin, body)
    assert response.status_code == 400, response.json()
    assert field in [e["field"] for e in response.json()["errors"]]
    assert _stored(world) == 0


def test_a_zero_byte_body_is_a_400_naming_the_fields(world, agreement, admin):
    response = admin.generic("POST", IMPORTS, b"", content_type="multipart/form-data; boundary=x")
    assert response.status_code == 400
    assert {"kind", "file"} <= {e["field"] for e in response.json()["errors"]}
    assert _stored(world) == 0


def test_an_oversize_file_is_413_naming_the_file(world, agreement, admin, settings):
    settings.IMPORT_MAX_BYTES = {**settings.IMPORT_MAX_BYTES, "prices": 10}
    response = _upload(
        admin, {"programme_year": year(agreement, 1).pk, "kind": "prices", "file": _file()}
    )
    assert response.status_code == 413
    assert response.json()["errors"][0]["field"] == "file"
    assert _stored(world) == 0


def test_the_same_file_already_applied_is_409_naming_the_first(
    world, agreement, admin, django_capture_on_commit_callbacks
):
    body = {"programme_year": year(agreement, 1).pk, "kind": "prices"}
    first = _upload(admin, {**body, "file": _file()}).json()
    with django_capture_on_commit_callbacks(execute=True):
        admin.post(f"{IMPORTS}{first['id']}/confirm/")
    again = _upload(admin, {**body, "file": _file()})
    assert again.status_code == 409
    assert again.json()["data_import"] == first["id"]
    assert again.json()["errors"][0]["field"] == "file"


def test_others_cannot_upload(world, agreement, api):
    body = {"programme_year": year(agreement, 1).pk, "kind": "prices", "file": _file()}
    assert api("executive").post(IMPORTS, body, format="multipart").status_code == 403
    # Another organization's programme year is unknown to its administrator.
    outsider = api("outsider").post(
        "/api/v1/organizations/lakeview/savings-imports/",
        {**body, "file": _file()},
        format="multipart",
    )
    assert outsider.status_code == 400
    assert outsider.json()["errors"][0]["field"] == "programme_year"
    assert _stored(world) == 0
    with world.scope():
        assert not Job.objects.exists() and not IdempotencyRecord.objects.exists()


def test_the_schema_documents_the_multipart_upload_and_actions(admin, world):
    schema = api_schema()
    paths = schema["paths"]
    post = paths["/api/v1/organizations/{org_slug}/savings-imports/"]["post"]
    assert "multipart/form-data" in post["requestBody"]["content"]
    assert {"201", "409", "413"} <= set(post["responses"])
    assert "/api/v1/organizations/{org_slug}/savings-imports/{id}/confirm/" in paths
    assert "/api/v1/organizations/{org_slug}/savings-imports/{id}/problems/" in paths
