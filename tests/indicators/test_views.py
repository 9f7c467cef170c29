"""Pages and API: role matrix, outsiders get 404, the import flow through the job (progress,
idempotency, refusal report), drill-down, FHIR, physicians' own-data rule."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django_scopes import scopes_disabled

from comanage.core.models import Job
from indicators.models import CaseImport, IndicatorResult
from tests import factories as f
from tests.indicators.conftest import EXAMPLE_D, example_c_results

D = Decimal
pytestmark = pytest.mark.django_db
ROLES = ["administrator", "executive", "counsel", "ceo", "auditor", "physician"]
READERS = {"administrator", "executive", "counsel", "ceo", "auditor"}


@pytest.fixture
def setup(world, ortho, media, django_capture_on_commit_callbacks):  # type: ignore[no-untyped-def]
    """Example C results plus an imported VTE file; Dr Adams takes part in the agreement."""
    example_c_results(ortho, with_vte=False)
    f.ParticipationFactory(agreement=ortho.agreement, physician=world.physician)
    client = world.client("administrator")
    base = f"/o/riverside/agreements/{ortho.agreement.pk}/indicators/"
    response = client.post(
        base + "import/",
        {
            "period": ortho.annual.key,
            "indicators": ["vte_prophylaxis"],
            "year": ortho.year.pk,
            "file": SimpleUploadedFile("cases.csv", EXAMPLE_D.read_bytes()),
        },
    )
    assert response.status_code == 302, response.content
    with scopes_disabled():
        case_import = CaseImport.objects.get()
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(base + f"imports/{case_import.pk}/run/")
    assert response.status_code == 302
    with scopes_disabled():
        case_import.refresh_from_db()
        vte = IndicatorResult.objects.get(definition__key="vte_prophylaxis", is_current=True)
    return {"o": ortho, "base": base, "import": case_import, "vte": vte}


def _urls(s):  # type: ignore[no-untyped-def]
    o, base, vte = s["o"], s["base"], s["vte"]
    d = o.definitions["ssi_joint"]
    return {
        "home": "/o/riverside/indicators/",
        "library": "/o/riverside/indicators/library/",
        "agreement": base,
        "definition_edit": base + f"{d.pk}/edit/",
        "definition_history": base + f"{d.pk}/history/",
        "result_new": base + f"{d.pk}/results/new/",
        "result": base + f"results/{vte.pk}/",
        "fhir": base + f"results/{vte.pk}/fhir/",
        "cases": base + f"results/{vte.pk}/cases/",
        "cases_csv": base + f"results/{vte.pk}/cases.csv",
        "import": base + "import/",
        "import_template": base + "import/template.csv",
        "import_detail": base + f"imports/{s['import'].pk}/",
        "benchmark_new": base + f"{d.pk}/benchmarks/new/",
    }


EDIT_PAGES = {"definition_edit", "result_new", "benchmark_new"}
IMPORT_PAGES = {"import", "import_template"}
CASE_PAGES = {"cases", "cases_csv", "import_detail"}
URL_NAMES = [
    "home",
    "library",
    "agreement",
    "definition_edit",
    "definition_history",
    "result_new",
    "result",
    "fhir",
    "cases",
    "cases_csv",
    "import",
    "import_template",
    "import_detail",
    "benchmark_new",
]


def _expected(role: str, name: str) -> int:
    if name in EDIT_PAGES | IMPORT_PAGES:
        return 200 if role == "administrator" else 403
    if name in CASE_PAGES or name == "definition_history":
        return 403 if role == "physician" else 200
    return 200


@pytest.mark.parametrize("name", URL_NAMES)
def test_role_matrix_get(world, setup, name):
    """Every role of the organization, the outsider and an anonymous visitor on one page (one
    set-up for the page's whole row of the matrix; every wrong cell is reported)."""
    url = _urls(setup)[name]
    wrong = []
    for role in ROLES:
        # The definition history names staff: history.view, not a physician's (403).
        status = world.client(role).get(url).status_code
        if status != _expected(role, name):
            wrong.append(f"{role}: {status}, expected {_expected(role, name)}")
    status = world.client("outsider").get(url).status_code
    if status != 404:
        wrong.append(f"outsider: {status}, expected 404")
    response = world.client("anonymous").get(url)
    if response.status_code != 302 or "/login" not in response.get("Location", ""):
        wrong.append(f"anonymous: {response.status_code}, expected a redirect to sign in")
    assert wrong == [], f"{url}: " + "; ".join(wrong)


def test_role_matrix_post_result(world, setup):
    """Only the administrator records a result; the other roles' attempts come first, so the
    administrator's does not change what they find."""
    d = setup["o"].definitions["ssi_joint"]
    url = setup["base"] + f"{d.pk}/results/new/?year={setup['o'].year.pk}"
    wrong = []
    for role in sorted(ROLES, key=lambda r: r == "administrator"):
        response = world.client(role).post(
            url,
            {
                "period": setup["o"].quarter(1).key,
                "numerator": "1",
                "denominator": "100",
                "source_note": "Q1 dashboard",
            },
        )
        expected = 302 if role == "administrator" else 403
        if response.status_code != expected:
            wrong.append(f"{role}: {response.status_code}, expected {expected}")
    assert wrong == [], "; ".join(wrong)


def test_physician_outside_the_agreement_gets_404_from_the_agreement_page(world, setup):
    with scopes_disabled():
        other = f.AgreementFactory(organization=world.org)
    response = world.client("physician").get(f"/o/riverside/agreements/{other.pk}/indicators/")
    assert response.status_code == 403 or response.status_code == 404


def test_agreement_page_shows_breakdown_chart_and_table(world, setup):
    page = world.client("executive").get(setup["base"]).content.decode()
    assert "$300,000.00" in page and "redistribute" in page
    assert "<svg" in page and "Results as a table" in page
    assert "92.31" in page


def test_import_job_succeeded_and_drilldown_filters(world, setup):
    case_import = setup["import"]
    assert case_import.status == "applied" and case_import.job.status == "succeeded"
    client = world.client("executive")
    page = client.get(_urls(setup)["cases"] + "?show=excluded").content.decode()
    assert "E03" in page and "excluded: denominator exclusion" in page
    assert "E07" in page and "E05" not in page
    page = client.get(_urls(setup)["cases"] + "?q=E08").content.decode()
    assert "E08" in page and "in numerator" in page
    csv_text = client.get(_urls(setup)["cases_csv"]).content.decode()
    assert csv_text.count("\n") == 18 and "reason" in csv_text.splitlines()[0]


def test_same_file_again_is_not_applied_twice(world, setup):
    client = world.client("administrator")
    o = setup["o"]
    client.post(
        setup["base"] + "import/",
        {
            "period": o.annual.key,
            "indicators": ["vte_prophylaxis"],
            "year": o.year.pk,
            "file": SimpleUploadedFile("again.csv", EXAMPLE_D.read_bytes()),
        },
    )
    with scopes_disabled():
        second = CaseImport.objects.exclude(pk=setup["import"].pk).get()
    response = client.post(setup["base"] + f"imports/{second.pk}/run/", follow=True)
    assert "already imported" in response.content.decode()
    with scopes_disabled():
        assert IndicatorResult.objects.filter(definition__key="vte_prophylaxis").count() == 1
        assert Job.objects.count() == 1


def test_refused_import_reports_rows_and_stores_nothing(
    world, setup, django_capture_on_commit_callbacks
):
    client = world.client("administrator")
    o = setup["o"]
    bad = EXAMPLE_D.read_bytes().replace(b"E05,50,", b"E05,fifty,").replace(b"\nE02,", b"\nE01,")
    client.post(
        setup["base"] + "import/",
        {
            "period": o.annual.key,
            "indicators": ["vte_prophylaxis"],
            "year": o.year.pk,
            "file": SimpleUploadedFile("bad.csv", bad),
        },
    )
    with scopes_disabled():
        second = CaseImport.objects.exclude(pk=setup["import"].pk).get()
        before = IndicatorResult.objects.count()
    with django_capture_on_commit_callbacks(execute=True):
        client.post(setup["base"] + f"imports/{second.pk}/run/")
    with scopes_disabled():
        second.refresh_from_db()
        job = second.job
        assert IndicatorResult.objects.count() == before
    assert second.status == "refused" and job.status == "failed" and job.error_count == 2
    assert {(e["row"], e["column"]) for e in job.errors} == {(3, "case_id"), (6, "age")}
    page = client.get(setup["base"] + f"imports/{second.pk}/").content.decode()
    assert "nothing was changed" in page.lower() and "fifty" in page


def test_fhir_download(world, setup):
    response = world.client("physician").get(_urls(setup)["fhir"])
    report = json.loads(response.content)
    assert report["resourceType"] == "MeasureReport"
    assert report["group"][0]["measureScore"]["value"] == 92.31


def test_criteria_editor_rows_and_json(world, setup):
    o = setup["o"]
    d = o.definitions["experience_top_box"]
    client = world.client("administrator")
    url = setup["base"] + f"{d.pk}/edit/"
    page = client.get(url).content.decode()
    assert 'name="pop-numerator-field"' in page
    row = client.get(setup["base"] + "criteria-row/?population=numerator&fields=a,b")
    assert row.status_code == 200 and 'name="pop-numerator-op"' in row.content.decode()
    form = {
        name: getattr(d, name)
        for name in (
            "key",
            "name",
            "description",
            "kind",
            "unit",
            "direction",
            "weight",
            "threshold",
            "threshold_payout",
            "target",
            "target_payout",
            "stretch",
            "stretch_payout",
            "numerator_definition",
            "denominator_definition",
            "date_field",
            "aggregate",
            "multiplier",
        )
    }
    form = {k: "" if v is None else str(v) for k, v in form.items()}
    form["fields_json"] = json.dumps(d.fields)
    form.update(
        {
            "pop-initial_population-field": ["survey_returned"],
            "pop-initial_population-op": ["is_true"],
            "pop-initial_population-value": [""],
            "pop-numerator-combine": "any",
            "pop-numerator-field": ["overall_rating", "overall_rating"],
            "pop-numerator-op": [">=", "="],
            "pop-numerator-value": ["9", "10"],
            "save_rows": "1",
        }
    )
    assert client.post(url, form).status_code == 302
    with scopes_disabled():
        d.refresh_from_db()
    assert d.populations["numerator"] == {
        "any": [
            {"field": "overall_rating", "op": ">=", "value": 9},
            {"field": "overall_rating", "op": "=", "value": 10},
        ]
    }
    form["populations_json"] = json.dumps({"numerator": {"field": "nope", "op": "is_true"}})
    form["save_json"] = "1"
    del form["save_rows"]
    response = client.post(url, form)
    assert response.status_code == 200 and "unknown field" in response.content.decode()


def test_frozen_agreement_refuses_edits_with_a_message(world, setup):
    o = setup["o"]
    with scopes_disabled():
        o.agreement.status = "executed"
        o.agreement.save()
    d = o.definitions["ssi_joint"]
    response = world.client("administrator").post(setup["base"] + f"{d.pk}/edit/", {"name": "x"})
    assert response.status_code == 200 and "frozen" in response.content.decode()


# --- API -----------------------------------------------------------------------------------

API = "/api/v1/organizations/riverside/"


@pytest.mark.parametrize("role", ROLES)
def test_api_role_matrix(world, setup, role):
    client = world.client(role)
    o = setup["o"]
    results = client.get(API + "indicator-results/")
    assert results.status_code == 200
    count = (
        len(results.json()["results"]) if isinstance(results.json(), dict) else len(results.json())
    )
    assert count >= 5  # physician: takes part in the agreement, sees its results
    assert client.get(API + f"indicator-results/{setup['vte'].pk}/fhir/").status_code == 200
    assert client.get(API + f"indicator-incentive/{o.year.pk}/").status_code == 200
    post = client.post(
        API + "indicator-results/",
        {
            "definition": o.definitions["ssi_joint"].pk,
            "programme_year": o.year.pk,
            "period": "Q1",
            "numerator": "1",
            "denominator": "100",
            "source_note": "api",
        },
        content_type="application/json",
    )
    assert post.status_code == (201 if role == "administrator" else 403)
    imports = client.get(API + "indicator-imports/")
    assert imports.status_code == (200 if role == "administrator" else 403)


def test_api_physician_not_participating_sees_nothing(world, setup):
    with scopes_disabled():
        from agreements.models import Participation

        Participation.objects.all().delete()
    client = world.client("physician")
    data = client.get(API + "indicator-results/").json()
    rows = data["results"] if isinstance(data, dict) else data
    assert rows == []
    assert client.get(API + f"indicator-results/{setup['vte'].pk}/").status_code == 404


def test_api_outsider_gets_404(world, setup):
    client = world.client("outsider")
    for url in (
        "indicator-results/",
        f"indicator-results/{setup['vte'].pk}/",
        f"indicator-incentive/{setup['o'].year.pk}/",
        "indicator-definitions/",
    ):
        assert client.get(API + url).status_code == 404
    # and their own organization's API does not show A's rows
    data = client.get("/api/v1/organizations/lakeview/indicator-results/").json()
    rows = data["results"] if isinstance(data, dict) else data
    assert rows == []


def test_api_incentive_is_example_c(world, setup):
    data = world.client("ceo").get(API + f"indicator-incentive/{setup['o'].year.pk}/").json()
    assert data["result"]["earned_total"] == "300000.00"
    assert data["inputs"]["results"]["vte_prophylaxis"]["source"] == "case_file"
    assert len(data["inputs_sha256"]) == 64


def test_api_import_is_idempotent(world, setup, django_capture_on_commit_callbacks):
    client = world.client("administrator")
    o = setup["o"]
    payload = {
        "agreement": o.agreement.pk,
        "programme_year": o.year.pk,
        "period": "annual",
        "indicators": ["vte_prophylaxis"],
    }
    response = client.post(
        API + "indicator-imports/",
        {**payload, "file": SimpleUploadedFile("cases.csv", EXAMPLE_D.read_bytes())},
    )
    assert response.status_code == 409
    changed = EXAMPLE_D.read_bytes().replace(
        b"E09,58,TKA,elective,2025-10-19,false,false,false",
        b"E09,58,TKA,elective,2025-10-19,false,false,true",
    )
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            API + "indicator-imports/",
            {**payload, "file": SimpleUploadedFile("cases-v2.csv", changed)},
        )
    assert response.status_code == 202
    with scopes_disabled():
        current = IndicatorResult.objects.get(definition__key="vte_prophylaxis", is_current=True)
    # E09 now met the numerator: 13 / 13
    assert current.version == 2 and current.display_value == D("100.00")


def test_an_applied_import_is_not_offered_for_import_again(world, setup):
    """Applied without a job (as the demo and a data load record it): the page says Applied,
    names the indicators it fed by name, and offers no preview or import button."""
    case_import = setup["import"]
    with scopes_disabled():
        CaseImport.objects.filter(pk=case_import.pk).update(job=None)
    page = world.client("administrator").get(_urls(setup)["import_detail"]).content.decode()
    assert "Applied" in page and "its results are below" in page
    assert "Confirm and import" not in page and "Check the preview" not in page
    assert "VTE prophylaxis" in page and "indicators: vte_prophylaxis" not in page
