"""Roster and item master uploads through the API (issue 17): token, multipart, preview,
confirm, problems as JSON, Idempotency-Key; assigning items; roles and another organization."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from rest_framework.test import APIClient

from agreements.models import Participation, Physician, RosterImport
from comanage.core.models import ApiToken, Job
from savings.models import Item, ItemImport, SavingsOpportunity
from tests import factories as f
from tests.savings.helpers import example_a_agreement

pytestmark = pytest.mark.django_db
DATA = Path(__file__).resolve().parents[1] / "data"
ORG = "/api/v1/organizations/riverside"
ROSTERS = f"{ORG}/roster-imports/"
ITEM_IMPORTS = f"{ORG}/item-imports/"


@pytest.fixture
def admin(world) -> APIClient:  # type: ignore[no-untyped-def]
    _token, raw = ApiToken.issue(
        user=world.users["administrator"], name="script", two_factor_verified=True
    )
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    return client


def _file(path: Path | bytes, name: str = "roster.csv") -> SimpleUploadedFile:
    content = path if isinstance(path, bytes) else path.read_bytes()
    return SimpleUploadedFile(name, content, content_type="text/csv")


def test_a_roster_upload_preview_confirm_job_applied(
    world, admin, django_capture_on_commit_callbacks
):
    with world.scope():
        practice = f.PracticeFactory(organization=world.org, name="Riverside Orthopaedic Partners")
        agreement = f.AgreementFactory(
            organization=world.org, practice=practice, term_end=dt.date(2027, 12, 31)
        )
    response = admin.post(
        ROSTERS,
        {"file": _file(DATA / "roster_nppes_riverside.csv"), "agreement": agreement.pk},
        format="multipart",
        HTTP_IDEMPOTENCY_KEY="roster-upload-1",
    )
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["status"] == "uploaded" and body["layout"] == "nppes"
    assert body["agreement"] == agreement.pk
    assert body["preview"]["row_count"] == 5 and body["preview"]["problems"] == []
    # a retry with the same key and file is the same upload, not a second one
    again = admin.post(
        ROSTERS,
        {"file": _file(DATA / "roster_nppes_riverside.csv"), "agreement": agreement.pk},
        format="multipart",
        HTTP_IDEMPOTENCY_KEY="roster-upload-1",
    )
    assert again.status_code == 201 and again.json()["id"] == body["id"]
    with world.scope():
        assert RosterImport.objects.count() == 1
    with django_capture_on_commit_callbacks(execute=True):
        confirmed = admin.post(f"{ROSTERS}{body['id']}/confirm/")
    assert confirmed.status_code == 202, confirmed.json()
    job = admin.get(confirmed.json()["job_url"]).json()
    assert job["status"] == "succeeded"
    detail = admin.get(f"{ROSTERS}{body['id']}/").json()
    assert detail["status"] == "applied"
    assert detail["summary"]["physicians_created"] == 5
    with world.scope():
        assert Participation.objects.filter(agreement=agreement).count() == 4
    # confirming twice is a conflict, not a second job
    assert admin.post(f"{ROSTERS}{body['id']}/confirm/").status_code == 409


def test_a_refused_roster_gives_its_problems_as_json(
    world, admin, django_capture_on_commit_callbacks
):
    content = b"npi,first_name,last_name\n1487864543,Chidi,Okafor\n"
    body = admin.post(ROSTERS, {"file": _file(content)}, format="multipart").json()
    assert body["preview"]["problems"] == [
        {
            "row": 2,
            "column": "npi",
            "message": "the NPI 1487864543 fails the check digit (NPI Luhn rule with the "
            "80840 prefix)",
        }
    ]
    before = admin.get(f"{ROSTERS}{body['id']}/problems/").json()
    assert before["error_count"] == 1 and before["job"] is None
    with django_capture_on_commit_callbacks(execute=True):
        assert admin.post(f"{ROSTERS}{body['id']}/confirm/").status_code == 202
    problems = admin.get(f"{ROSTERS}{body['id']}/problems/").json()
    assert problems["status"] == "failed"
    assert problems["message"] == "1 problem found; nothing was changed."
    assert problems["problems"][0]["row"] == 2 and problems["problems"][0]["column"] == "npi"
    with world.scope():
        assert not Physician.objects.filter(npi="1487864543").exists()


def test_bad_uploads_are_named_by_field(world, admin):
    wrong = admin.post(ROSTERS, {"file": _file(b"%PDF", "r.pdf")}, format="multipart")
    assert wrong.status_code == 400
    assert wrong.json()["errors"][0]["field"] == "file"
    layout = admin.post(
        ROSTERS, {"file": _file(b"npi\n1\n"), "layout": "nonsense"}, format="multipart"
    )
    assert layout.status_code == 400 and layout.json()["errors"][0]["field"] == "layout"
    other = admin.post(
        ROSTERS, {"file": _file(b"npi\n1\n"), "agreement": 987654}, format="multipart"
    )
    assert other.status_code == 400 and other.json()["errors"][0]["field"] == "agreement"
    with world.scope():
        assert not RosterImport.objects.exists()


def test_an_item_master_upload_and_assignment(world, admin, django_capture_on_commit_callbacks):
    agreement = example_a_agreement(world)
    body = admin.post(
        ITEM_IMPORTS, {"file": _file(DATA / "item_master_riverside.csv")}, format="multipart"
    ).json()
    assert body["preview"]["row_count"] == 10
    with django_capture_on_commit_callbacks(execute=True):
        assert admin.post(f"{ITEM_IMPORTS}{body['id']}/confirm/").status_code == 202
    stryker = admin.get(f"{ORG}/items/", {"manufacturer": "Stryker"}).json()
    codes = [i["code"] for i in stryker["results"]]
    assert codes == ["IMP-52008", "IMP-52009", "SUP-10430"]
    assert [
        i["code"] for i in admin.get(f"{ORG}/items/", {"search": "femoral stem"}).json()["results"]
    ] == ["IMP-47120", "IMP-47121"]
    with world.scope():
        opportunity = SavingsOpportunity.objects.get(agreement=agreement, key="B")
    assigned = admin.post(
        f"{ORG}/items/assign/",
        {"opportunity": opportunity.pk, "item_codes": codes},
        format="json",
        HTTP_IDEMPOTENCY_KEY="assign-1",
    )
    assert assigned.status_code == 200, assigned.json()
    assert assigned.json()["item_codes"] == ["B1", "B2", *codes]
    unknown = admin.post(
        f"{ORG}/items/assign/",
        {"opportunity": opportunity.pk, "item_codes": ["NOPE"]},
        format="json",
    )
    assert unknown.status_code == 400
    assert unknown.json()["errors"][0]["field"] == "item_codes"
    missing = admin.post(
        f"{ORG}/items/assign/", {"opportunity": 987654, "item_codes": ["B1"]}, format="json"
    )
    assert missing.status_code == 400 and missing.json()["errors"][0]["field"] == "opportunity"


@pytest.mark.parametrize("role", ["physician", "counsel", "executive"])
def test_physician_counsel_and_executive_cannot_import(world, api, role):
    client = api(role)
    for url in (ROSTERS, ITEM_IMPORTS):
        response = client.post(url, {"file": _file(b"npi\n1\n")}, format="multipart")
        assert response.status_code == 403
    with world.scope():
        assert not RosterImport.objects.exists() and not ItemImport.objects.exists()


def test_another_organization_gets_404(world, api, admin):
    roster = admin.post(
        ROSTERS, {"file": _file(DATA / "roster_nppes_riverside.csv")}, format="multipart"
    ).json()
    items = admin.post(
        ITEM_IMPORTS, {"file": _file(DATA / "item_master_riverside.csv")}, format="multipart"
    ).json()
    outsider = api("outsider")
    for url in (f"{ROSTERS}{roster['id']}/", f"{ITEM_IMPORTS}{items['id']}/"):
        assert outsider.get(url).status_code == 404
        assert outsider.post(url + "confirm/").status_code == 404
        assert outsider.get(url + "problems/").status_code == 404
    assert (
        outsider.post(ROSTERS, {"file": _file(b"npi\n1\n")}, format="multipart").status_code == 404
    )
    assert outsider.get(f"{ORG}/items/").status_code == 404
    with world.scope():
        assert not Job.objects.exists()
        assert not Item.objects.exists()
