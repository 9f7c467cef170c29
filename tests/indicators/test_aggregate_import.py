"""Aggregate indicator results from a file (issue 17): the canonical CSV and a quality
dashboard's workbook (a notes sheet, a title row, indicators by name, Excel dates, one of them
a serial day number) read through a saved mapping give the same stored results; every row goes
through the aggregate-result service; bad input names the row, the column and the reason, and
nothing is stored."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest
from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import SimpleUploadedFile
from rest_framework.test import APIClient

from comanage.core.master_imports import (
    ImportRefused,
    master_import_map,
    master_mapping_step,
)
from comanage.core.models import ApiToken, BusinessEvent
from indicators import aggregate_import
from indicators.models import IndicatorResult, ResultImport

pytestmark = pytest.mark.django_db
D = Decimal
EXPORTS = Path(__file__).resolve().parents[1] / "data" / "exports"
CANONICAL = EXPORTS / "indicator_results_2025.csv"
DASHBOARD = EXPORTS / "quality_dashboard_results_2025.xlsx"
DASHBOARD_COLUMNS = {
    "Measure Name": "indicator",
    "Reporting Period Start": "period_start",
    "Reporting Period End": "period_end",
    "Met": "numerator",
    "Eligible": "denominator",
    "Rate": "value",
    "N": "case_count",
    "Comments": "source_note",
}


def _receive(world, ortho, data: bytes, name: str) -> ResultImport:
    with world.scope():
        return aggregate_import.result_import_receive(
            organization=world.org,
            agreement=ortho.agreement,
            upload=SimpleUploadedFile(name, data),
            user=world.users["administrator"],
        )


def _apply(world, result_import) -> dict:
    with world.scope():
        return aggregate_import.result_import_apply(
            result_import=result_import, user=world.users["administrator"]
        )


def _stored(world) -> list[tuple]:
    with world.scope():
        return sorted(
            (
                r.definition.key,
                r.period_label,
                r.numerator,
                r.denominator,
                r.value,
                r.case_count,
                r.source_note,
            )
            for r in IndicatorResult.objects.filter(is_current=True).select_related("definition")
        )


def test_the_canonical_file_records_example_c(world, ortho, media):
    summary = _apply(world, _receive(world, ortho, CANONICAL.read_bytes(), "results.csv"))
    assert summary == {"results_recorded": 6, "results_unchanged": 0}
    stored = {(key, label): rest for key, label, *rest in _stored(world)}
    assert stored[("ssi_joint", "2025")][:2] == [D(6), D(500)]
    assert stored[("ssi_joint", "2025 Q1")][:2] == [D(2), D(130)]
    assert stored[("median_los", "2025")][2:4] == [D("1.9"), 480]
    assert stored[("vte_prophylaxis", "2025")][-1] == "chart review"
    # the same file again changes nothing (no new versions)
    again = _apply(world, _receive(world, ortho, CANONICAL.read_bytes(), "results.csv"))
    assert again == {"results_recorded": 0, "results_unchanged": 6}


def test_the_dashboard_workbook_through_a_saved_mapping_gives_the_same_results(world, ortho, media):
    _apply(world, _receive(world, ortho, CANONICAL.read_bytes(), "results.csv"))
    expected = _stored(world)
    with world.scope():
        IndicatorResult.objects.all().delete()

    first = _receive(world, ortho, DASHBOARD.read_bytes(), "dashboard.xlsx")
    admin = world.users["administrator"]
    with world.scope():
        step = master_mapping_step(instance=first, sheet="Results")
        assert step["sheets"] == ["Read me", "Results"]
        assert step["header_row"] == 2  # under the title row
        proposed = {c["header"]: c["field"] for c in step["columns"] if c["field"]}
        assert proposed == DASHBOARD_COLUMNS
        samples = {c["header"]: c["samples"] for c in step["columns"]}
        assert samples["Measure Name"][0].startswith("Surgical site infection")
        master_import_map(
            instance=first,
            user=admin,
            columns=proposed,
            sheet="Results",
            save_as="Quality dashboard",
        )
    assert _apply(world, first)["results_recorded"] == 6
    assert _stored(world) == expected
    with world.scope():
        IndicatorResult.objects.all().delete()

    # next quarter's export: the saved mapping is chosen by the header, nothing asked
    second = _receive(world, ortho, DASHBOARD.read_bytes(), "dashboard-q2.xlsx")
    with world.scope():
        step = master_mapping_step(instance=second, sheet="Results")
        assert step["saved"]["name"] == "Quality dashboard"
        preview = aggregate_import.result_import_preview(result_import=second)
        assert preview["layout"] == "Quality dashboard, version 1"
        assert preview["problem_count"] == 0 and preview["row_count"] == 6
    assert _apply(world, second)["results_recorded"] == 6
    assert _stored(world) == expected


def test_every_row_is_checked_by_the_result_service_and_nothing_is_stored(world, ortho, media):
    data = (
        CANONICAL.read_bytes()
        .replace(b"vte_prophylaxis,2025,annual,12,13", b"vte_prophylaxis,2025,annual,14,13")
        .replace(b"readmission_30d,2025,annual", b"Readmission within a week,2025,annual")
    )
    result_import = _receive(world, ortho, data, "results.csv")
    with pytest.raises(ImportRefused) as refused:
        _apply(world, result_import)
    problems = refused.value.problems.as_list()
    assert problems == [
        {
            "row": 5,
            "column": "indicator",
            "message": "“Readmission within a week” is not an indicator of 2025",
        }
    ]
    result_import = _receive(
        world, ortho, data.replace(b"Readmission within a week", b"readmission_30d"), "r.csv"
    )
    with pytest.raises(ImportRefused) as refused:
        _apply(world, result_import)
    (problem,) = refused.value.problems.as_list()
    assert (problem["row"], problem["column"]) == (6, "numerator")
    assert problem["message"].startswith("VTE prophylaxis by post-operative day 1: ")
    assert _stored(world) == []


def test_a_period_the_agreement_does_not_have_names_the_column(world, ortho, media):
    data = b"measure,year,quarter,met,eligible\nssi_joint,2024,annual,1,2\nssi_joint,2025,Q5,1,2\n"
    with pytest.raises(ImportRefused) as refused:
        _apply(world, _receive(world, ortho, data, "r.csv"))
    assert refused.value.problems.as_list() == [
        {
            "row": 2,
            "column": "year",
            "message": "“2024” is not a programme year of this agreement (2025)",
        },
        {"row": 3, "column": "quarter", "message": "“Q5” is not a period: annual, or Q1 to Q4"},
    ]


def test_bad_mappings_are_refused_naming_the_column(world, ortho, media):
    result_import = _receive(world, ortho, DASHBOARD.read_bytes(), "dashboard.xlsx")
    with world.scope():
        with pytest.raises(ValidationError) as two:
            master_import_map(
                instance=result_import,
                user=None,
                columns={**DASHBOARD_COLUMNS, "Rate": "numerator"},
                sheet="Results",
            )
        assert "two columns (Met, Rate) are mapped to one field, Numerator" in str(two.value)
        with pytest.raises(ValidationError) as missing:
            master_import_map(
                instance=result_import,
                user=None,
                columns={**DASHBOARD_COLUMNS, "Measure Name": ""},
                sheet="Results",
            )
        assert "the required field Indicator has no column" in str(missing.value)
        with pytest.raises(ValidationError) as empty:
            master_import_map(
                instance=result_import, user=None, columns=DASHBOARD_COLUMNS, sheet="Read me"
            )
        assert "Measure Name: the file has no such column" in str(empty.value) or (
            "header cannot be found" in str(empty.value)
        )
        result_import.refresh_from_db()
        assert result_import.mapping_used == {}


def test_a_file_without_a_header_is_refused(world, ortho, media):
    result_import = _receive(world, ortho, b"Quality results\nnothing to see\n", "r.csv")
    with world.scope():
        preview = aggregate_import.result_import_preview(result_import=result_import)
    assert preview["error"].startswith("the header cannot be found")
    with pytest.raises(ImportRefused):
        _apply(world, result_import)
    assert _stored(world) == []


@pytest.fixture
def api(world) -> APIClient:  # type: ignore[no-untyped-def]
    _token, raw = ApiToken.issue(
        user=world.users["administrator"], name="script", two_factor_verified=True
    )
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    return client


def test_the_api_uploads_maps_and_confirms(
    world, ortho, media, api, django_capture_on_commit_callbacks
):
    url = "/api/v1/organizations/riverside/indicator-result-imports/"
    upload = {
        "file": SimpleUploadedFile("d.xlsx", DASHBOARD.read_bytes()),
        "agreement": ortho.agreement.pk,
    }
    response = api.post(url, upload, format="multipart", HTTP_IDEMPOTENCY_KEY="results-1")
    assert response.status_code == 201, response.json()
    body = response.json()
    # the first sheet holds only notes: the preview reads the results sheet behind it
    assert body["preview"]["error"] == ""
    bad = api.post(
        f"{url}{body['id']}/confirm/",
        {"columns": {**DASHBOARD_COLUMNS, "N": "numerator"}, "sheet": "Results"},
        format="json",
    )
    assert bad.status_code == 400
    assert "mapped to one field" in str(bad.json())
    with django_capture_on_commit_callbacks(execute=True):
        confirmed = api.post(
            f"{url}{body['id']}/confirm/",
            {"columns": DASHBOARD_COLUMNS, "sheet": "Results", "save_as": "Quality dashboard"},
            format="json",
            HTTP_IDEMPOTENCY_KEY="results-confirm-1",
        )
    assert confirmed.status_code == 202, confirmed.json()
    assert api.get(confirmed.json()["job_url"]).json()["status"] == "succeeded"
    detail = api.get(f"{url}{body['id']}/").json()
    assert detail["status"] == "applied"
    assert detail["mapping_used"]["name"] == "Quality dashboard"
    assert detail["summary"] == {"results_recorded": 6, "results_unchanged": 0}
    with world.scope():
        assert BusinessEvent.objects.filter(name="indicator.results_imported").exists()
    assert len(_stored(world)) == 6


def test_the_pages_upload_and_show_the_mapping_step(world, ortho, media):
    client = world.client("administrator")
    page = client.get("/o/riverside/indicators/results-imports/")
    assert page.status_code == 200
    posted = client.post(
        "/o/riverside/indicators/results-imports/",
        {
            "agreement": ortho.agreement.pk,
            "file": SimpleUploadedFile("r.csv", CANONICAL.read_bytes()),
        },
    )
    assert posted.status_code == 302
    detail = client.get(posted["Location"]).content.decode()
    assert "Match the file" in detail and "ssi_joint" in detail
    assert "Confirm and import" in detail
