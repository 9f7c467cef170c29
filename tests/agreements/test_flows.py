"""Pages and endpoints doing real work: inline refusals that change nothing, the API's error
shape, PDF-only uploads, the portal, amendments through the API and CSV exports."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone

from agreements.models import AgreementDocument, Physician, TimeSheet
from tests.agreements.test_access import PDF, objs  # noqa: F401 - fixture

API = "/api/v1/organizations/riverside"


def test_physician_form_shows_the_npi_rule_inline_and_stores_nothing(world):
    client = world.client("administrator")
    response = client.post(
        "/o/riverside/physicians/new/",
        {"npi": "1000000005", "first_name": "Gil", "last_name": "Grant"},
    )
    assert response.status_code == 400
    assert "check digit is wrong" in response.content.decode()
    with world.scope():
        assert not Physician.objects.filter(last_name="Grant").exists()
    ok = client.post(
        "/o/riverside/physicians/new/",
        {"npi": "1000000004", "first_name": "Gil", "last_name": "Grant"},
    )
    assert ok.status_code == 302


def test_api_amendment_errors_name_the_field_and_change_nothing(world, objs):  # noqa: F811
    client = world.client("administrator")
    bad = client.post(
        f"{API}/agreement-terms/",
        {
            "agreement": objs.own.pk,
            "effective_from": "2099-01-01",
            "reason": "x",
            "physician_share_pct": "60",
        },
        content_type="application/json",
    )
    assert bad.status_code == 400
    assert bad.json()["errors"][0]["field"] == "physician_share_pct"
    past = client.post(
        f"{API}/agreement-terms/",
        {"agreement": objs.own.pk, "effective_from": "2020-01-01", "reason": "x"},
        content_type="application/json",
    )
    assert past.status_code == 400 and past.json()["errors"][0]["field"] == "effective_from"
    frozen = client.patch(
        f"{API}/agreement-terms/{objs.terms.pk}/",
        {"annual_fixed_fee": "1.00"},
        content_type="application/json",
    )
    assert frozen.status_code == 400 and "frozen" in frozen.json()["errors"][0]["message"]
    with world.scope():
        assert objs.own.terms.count() == 1
        assert objs.own.terms.get().annual_fixed_fee == Decimal("120000.00")
    tomorrow = timezone.localdate() + dt.timedelta(days=1)
    good = client.post(
        f"{API}/agreement-terms/",
        {
            "agreement": objs.own.pk,
            "effective_from": tomorrow.isoformat(),
            "reason": "Duty added",
            "annual_fixed_fee": "130000.00",
        },
        content_type="application/json",
    )
    if tomorrow <= objs.own.term_end:
        assert good.status_code == 201 and good.json()["version"] == 2
        assert good.json()["incentive_pool"] == objs.terms.incentive_pool  # copied (None)
    else:  # the fixture's term is over: outside the term is refused by name
        assert good.json()["errors"][0]["field"] == "effective_from"


def test_non_pdf_upload_is_refused_and_download_is_checked(world, objs):  # noqa: F811
    client = world.client("administrator")
    fake = SimpleUploadedFile("letter.pdf", b"MZ\x90\x00 not a pdf", content_type="application/pdf")
    response = client.post(
        f"/o/riverside/agreements/{objs.own.pk}/documents/new/",
        {"kind": "fmv_letter", "title": "FMV letter", "file": fake},
    )
    assert response.status_code == 400 and "Only PDF files" in response.content.decode()
    with world.scope():
        assert AgreementDocument.objects.count() == 1
    download = client.get(f"/o/riverside/documents/{objs.document.pk}/download/")
    assert download.status_code == 200
    assert b"".join(download.streaming_content) == PDF
    assert download["X-Content-SHA256"] == objs.document.sha256
    assert (
        world.client("executive")
        .get(f"/o/riverside/documents/{objs.document.pk}/download/")
        .status_code
        == 200
    )


def test_portal_refuses_hours_above_the_maximum_and_submits(world, objs):  # noqa: F811
    client = world.client("physician")
    url = f"/o/riverside/portal/?agreement={objs.own.pk}&month=2025-04"
    duty = objs.duty.pk
    too_many = client.post(
        url,
        {
            "agreement": objs.own.pk,
            "month": "2025-04",
            f"hours_{duty}": "25",
            f"desc_{duty}": "x",
            "action": "save",
        },
    )
    assert too_many.status_code == 400 and "above the monthly maximum" in too_many.content.decode()
    with world.scope():
        assert not TimeSheet.objects.filter(month=dt.date(2025, 4, 1)).exists()
    ok = client.post(
        url,
        {
            "agreement": objs.own.pk,
            "month": "2025-04",
            f"hours_{duty}": "15",
            f"desc_{duty}": "Reviews",
            "action": "submit",
        },
    )
    assert ok.status_code == 302
    with world.scope():
        assert TimeSheet.objects.get(month=dt.date(2025, 4, 1)).status == "submitted"


def test_physician_cannot_log_for_another_physician_through_the_api(world, objs):  # noqa: F811
    client = world.client("physician")
    response = client.post(
        f"{API}/timesheets/",
        {
            "agreement": objs.other.pk,
            "physician": objs.other_participation.physician_id,
            "month": "2025-04-01",
            "entries": [{"duty": objs.other_duty.pk, "hours": "5", "description": "x"}],
        },
        content_type="application/json",
    )
    assert response.status_code == 403
    own = client.post(
        f"{API}/timesheets/",
        {
            "agreement": objs.own.pk,
            "physician": world.physician.pk,
            "month": "2025-05-01",
            "entries": [{"duty": objs.duty.pk, "hours": "5", "description": "x"}],
        },
        content_type="application/json",
    )
    assert own.status_code == 201
    submit = client.post(
        f"{API}/timesheets/{own.json()['id']}/submit/", content_type="application/json"
    )
    assert submit.status_code == 200 and submit.json()["status"] == "submitted"


def test_csv_export_neutralises_formulas(world, objs):  # noqa: F811
    with world.scope():
        Physician.objects.filter(pk=world.physician.pk).update(specialty="=HYPERLINK(1)")
    body = world.client("administrator").get("/o/riverside/physicians/?export=csv").content.decode()
    assert "'=HYPERLINK(1)" in body
