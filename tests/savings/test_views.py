"""Pages and API: the role matrix, outsiders get 404, physicians see only their own rows."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest
from django.urls import reverse

from savings import services
from savings.models import DataImport, SavingsCalculation, SavingsOpportunity
from tests.conftest import ROLES
from tests.savings.helpers import example_a_agreement, import_example_a, year

pytestmark = pytest.mark.django_db
READERS = {"administrator", "executive", "counsel", "ceo", "auditor"}


@pytest.fixture
def setup(world):
    agreement = example_a_agreement(world)
    import_example_a(world, agreement)
    with world.scope():
        calculation = services.savings_calculation_run(programme_year=year(agreement, 1), user=None)
        opportunity = SavingsOpportunity.objects.get(agreement=agreement, key="A")
        data_import = DataImport.objects.filter(agreement=agreement).first()
        from agreements.models import ComplianceFlag

        flag = ComplianceFlag.objects.filter(physician__isnull=False).first()
    # The world's physician (Adams, NPI 100...) is a different record from example A's Adams;
    # make the physician member take part by pointing it at example A's Adams.
    from django_scopes import scopes_disabled

    from agreements.models import Physician

    with scopes_disabled():
        adams = Physician.objects.get(organization=world.org, npi="1000000004")
        membership = world.memberships["physician"]
        membership.physician = adams
        membership.save()
    a = f"/o/riverside/agreements/{agreement.pk}/savings/"
    return {
        "agreement": agreement,
        "calculation": calculation,
        "flag": flag,
        "adams": adams,
        "urls": {
            "home": ("/o/riverside/savings/", READERS | {"physician"}),
            "agreement": (a + "?year=1", READERS | {"physician"}),
            "calculation": (f"{a}calculations/{calculation.pk}/", READERS | {"physician"}),
            "opp_csv": (
                f"{a}calculations/{calculation.pk}/opportunities.csv",
                READERS | {"physician"},
            ),
            "phys_csv": (
                f"{a}calculations/{calculation.pk}/physicians.csv",
                READERS | {"physician"},
            ),
            "calc_history": (f"{a}calculations/{calculation.pk}/history/", READERS),
            "opportunities": (f"{a}opportunities/", READERS | {"physician"}),
            "opp_edit": (f"{a}opportunities/{opportunity.pk}/edit/", {"administrator"}),
            "opp_history": (f"{a}opportunities/{opportunity.pk}/history/", READERS),
            "imports": (f"{a}imports/", {"administrator"}),
            "import": (f"{a}imports/{data_import.pk}/", {"administrator"}),
            "import_file": (f"{a}imports/{data_import.pk}/file/", {"administrator"}),
            "import_history": (f"{a}imports/{data_import.pk}/history/", {"administrator"}),
            "template": ("/o/riverside/savings/templates/usage.csv", {"administrator"}),
            "analysis": (f"{a}analysis/", READERS),
            "flags": (f"{a}flags/", READERS),
            "terminate": (f"{a}flags/{flag.pk}/terminate/", {"administrator"}),
            "api_opps": (
                "/api/v1/organizations/riverside/savings-opportunities/",
                READERS | {"physician"},
            ),
            "api_calcs": (
                "/api/v1/organizations/riverside/savings-calculations/",
                READERS | {"physician"},
            ),
            "api_calc": (
                f"/api/v1/organizations/riverside/savings-calculations/{calculation.pk}/",
                READERS | {"physician"},
            ),
            "api_imports": ("/api/v1/organizations/riverside/savings-imports/", {"administrator"}),
        },
    }


@pytest.mark.parametrize("role", ROLES)
def test_role_matrix_on_every_page(world, setup, role):
    client = world.client(role)
    for name, (url, allowed) in setup["urls"].items():
        status = client.get(url).status_code
        if role in allowed:
            assert status == 200, (name, role, status)
        else:
            assert status == 403, (name, role, status)  # within the organization: 403


def test_outsiders_get_404_with_a_ids_everywhere(world, setup):
    client = world.client("outsider")
    for name, (url, _allowed) in setup["urls"].items():
        # The outsider is an administrator of B: A's ids under B's slug do not exist either.
        assert client.get(url).status_code == 404, name
        if name in ("home", "template", "api_opps", "api_calcs", "api_imports"):
            continue  # B's own lists: they exist, and must not contain A's rows
        other = url.replace("/riverside/", "/lakeview/")
        assert client.get(other).status_code == 404, ("lakeview", name)
    for name in ("api_opps", "api_calcs", "api_imports"):
        url = setup["urls"][name][0].replace("/riverside/", "/lakeview/")
        assert client.get(url).json()["results"] == [], name


def test_anonymous_is_sent_to_log_in(world, setup):
    url = setup["urls"]["agreement"][0]
    response = world.client("anonymous").get(url)
    assert response.status_code == 302
    location = urlsplit(response["Location"])
    assert location.path == reverse("login")
    assert parse_qs(location.query) == {"next": [url]}


def test_a_physician_sees_only_their_own_distribution(world, setup):
    client = world.client("physician")
    page = client.get(setup["urls"]["agreement"][0]).content.decode()
    assert "Your distribution" in page and "18,629.34" in page
    assert "Baker" not in page and "Clark" not in page
    csv_text = client.get(setup["urls"]["phys_csv"][0]).content.decode()
    assert "Adams" in csv_text and "Baker" not in csv_text
    api = client.get(setup["urls"]["api_calc"][0]).json()
    assert [p["last_name"] for p in api["result"]["physicians"]] == ["Adams"]
    assert api["gross_savings"] == "147776.01"


def test_a_physician_outside_the_agreement_does_not_see_it(world, setup):
    from django_scopes import scopes_disabled

    with scopes_disabled():
        membership = world.memberships["physician"]
        membership.physician = world.other_physician
        membership.save()
    client = world.client("physician")
    assert client.get(setup["urls"]["agreement"][0]).status_code == 404
    assert client.get(setup["urls"]["api_calcs"][0]).json()["results"] == []


def test_the_savings_page_shows_charts_tables_and_every_intermediate(world, setup):
    page = world.client("executive").get(setup["urls"]["agreement"][0]).content.decode()
    for text in (
        "From gross savings to the amount paid",
        "Savings by opportunity and year",
        "Distribution cap used",
        "Table view",
        "91,856.01",
        "-$4,080.00",
        "55,888.01",
        "Terminated for cause",
    ):
        assert text in page, text


def test_calculate_queues_a_job_and_stores_one_calculation(world, setup):
    client = world.client("administrator")
    agreement = setup["agreement"]
    response = client.post(
        f"/o/riverside/agreements/{agreement.pk}/savings/calculate/", {"year": 1, "kind": "year"}
    )
    assert response.status_code == 302
    with world.scope():
        assert SavingsCalculation.objects.filter(kind="year").count() == 1
    forbidden = world.client("executive").post(
        f"/o/riverside/agreements/{agreement.pk}/savings/calculate/", {"year": 1}
    )
    assert forbidden.status_code == 403


def test_api_run_is_idempotent_and_refused_to_readers(
    world, setup, django_capture_on_commit_callbacks
):
    url = "/api/v1/organizations/riverside/savings-calculations/run/"
    client = world.client("administrator")
    with world.scope():
        body = {
            "programme_year": year(setup["agreement"], 1).pk,
            "kind": "scenario",
            "overrides": {"terms": {"physician_share_pct": "40"}},
        }
    with django_capture_on_commit_callbacks(execute=True):
        first = client.post(url, body, content_type="application/json", HTTP_IDEMPOTENCY_KEY="k1")
    again = client.post(url, body, content_type="application/json", HTTP_IDEMPOTENCY_KEY="k1")
    assert first.status_code == 202 and again.status_code == 202
    assert again.headers.get("Idempotent-Replayed") == "true"
    with world.scope():
        scenario = SavingsCalculation.objects.get(kind="scenario")
    assert scenario.physician_pool.to_eng_string() == "44710.40"
    assert (
        world.client("executive").post(url, body, content_type="application/json").status_code
        == 403
    )


def test_terminating_from_a_flag_through_the_page(world, setup):
    client = world.client("administrator")
    flag = setup["flag"]
    url = setup["urls"]["terminate"][0]
    response = client.post(url, {"termination_date": "2025-10-01", "reason": "Committee vote"})
    assert response.status_code == 302
    with world.scope():
        flag.refresh_from_db()
    assert flag.resolved_at is not None and "Committee vote" in flag.resolution_note
