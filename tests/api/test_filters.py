"""List filters: every list honours the filters it documents, and a query parameter it does not
know is a 400 naming it (never silently ignored, which handed a script every row)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.utils import timezone
from django_scopes import scopes_disabled

from agreements import models as am
from savings.models import DataImport, SavingsCalculation
from tests import factories as f
from tests.api.openapi import api_schema

pytestmark = pytest.mark.django_db
API = "/api/v1/organizations/riverside/"

LISTS = [
    "agreements",
    "programme-years",
    "agreement-terms",
    "practices",
    "physicians",
    "participations",
    "fmv-opinions",
    "duties",
    "timesheets",
    "committee-meetings",
    "compliance-flags",
    "documents",
    "milestones",
    "indicator-templates",
    "indicator-definitions",
    "indicator-results",
    "indicator-imports",
    "indicator-action-plans",
    "savings-opportunities",
    "savings-imports",
    "savings-calculations",
    "adjudication/runs",
    "adjudication/reports",
    "adjudication/payment-lines",
    "adjudication/statements",
    "jobs",
]


@pytest.mark.parametrize("path", LISTS)
def test_an_unknown_query_parameter_is_a_400_naming_it(world, api, path):
    response = api("administrator").get(f"{API}{path}/", {"programme_yaer": "1", "page": "1"})
    assert response.status_code == 400, response.content
    errors = response.json()["errors"]
    assert [(e["field"], e["code"]) for e in errors] == [("programme_yaer", "unknown_filter")]


@pytest.mark.parametrize("path", LISTS)
def test_the_generic_parameters_are_always_allowed(world, api, path):
    response = api("administrator").get(
        f"{API}{path}/", {"page": "1", "page_size": "5", "format": "json"}
    )
    assert response.status_code == 200, response.content


def test_every_list_documents_its_filters_in_the_schema():
    schema = api_schema()
    base = "/api/v1/organizations/{org_slug}/"

    def params(path: str) -> set[str]:
        operation = schema["paths"][f"{base}{path}/"]["get"]
        return {p["name"] for p in operation.get("parameters", []) if p["in"] == "query"}

    assert {
        "agreement",
        "programme_year",
        "kind",
        "status",
        "uploaded_at__gte",
        "uploaded_at__lte",
    } <= params("savings-imports")
    assert {"agreement", "programme_year", "kind", "created_at__gte"} <= params(
        "savings-calculations"
    )
    assert {"agreement", "effective_from__gte"} <= params("agreement-terms")
    assert {"agreement", "state", "programme_year"} <= params("compliance-flags")
    assert {"agreement", "current", "programme_year"} <= params("indicator-results")
    assert {"agreement", "programme_year", "status"} <= params("adjudication/reports")


def _two_agreements(world):  # type: ignore[no-untyped-def]
    with scopes_disabled():
        out = []
        for name in ("First", "Second"):
            agreement = f.AgreementFactory(
                organization=world.org, name=name, kind=am.AgreementKind.SHARED_SAVINGS
            )
            f.TermsFactory(agreement=agreement)
            year = f.ProgrammeYearFactory(
                agreement=agreement, number=1, start=dt.date(2025, 1, 1), end=dt.date(2025, 12, 31)
            )
            out.append((agreement, year))
        return out


def _ids(response) -> list[int]:  # type: ignore[no-untyped-def]
    assert response.status_code == 200, response.content
    return [row["id"] for row in response.json()["results"]]


@pytest.mark.parametrize("path", ["programme-years", "agreement-terms"])
def test_agreement_children_filter_by_agreement(world, api, path):
    (first, _), (second, _) = _two_agreements(world)
    client = api("administrator")
    everything = _ids(client.get(f"{API}{path}/"))
    narrowed = _ids(client.get(f"{API}{path}/", {"agreement": second.pk}))
    assert len(everything) == 2 and len(narrowed) == 1
    assert client.get(f"{API}{path}/{narrowed[0]}/").json()["agreement"] == second.pk


def test_a_filter_value_of_the_wrong_type_is_a_400_naming_the_filter(world, api):
    response = api("administrator").get(f"{API}programme-years/", {"agreement": "first"})
    assert response.status_code == 400
    assert response.json()["errors"][0]["field"] == "agreement"


def _calculation(world, agreement, year, kind="year"):  # type: ignore[no-untyped-def]
    with world.scope():
        return SavingsCalculation.objects.create(
            organization=world.org,
            agreement=agreement,
            programme_year=year,
            kind=kind,
            inputs_checksum="x",
            result_checksum="y",
            gross_savings=Decimal("1.00"),
            physician_pool=Decimal("1.00"),
            amount_paid=Decimal("1.00"),
        )


def test_savings_calculations_filter_by_programme_year_and_kind(world, api):
    (first, first_year), (second, second_year) = _two_agreements(world)
    _calculation(world, first, first_year)
    wanted = _calculation(world, second, second_year, kind="projection")
    client = api("administrator")
    assert len(_ids(client.get(f"{API}savings-calculations/"))) == 2
    assert _ids(client.get(f"{API}savings-calculations/", {"programme_year": second_year.pk})) == [
        wanted.pk
    ]
    assert _ids(client.get(f"{API}savings-calculations/", {"kind": "projection"})) == [wanted.pk]
    assert _ids(client.get(f"{API}savings-calculations/", {"agreement": second.pk})) == [wanted.pk]


def _import(world, agreement, year, *, kind, uploaded_at):  # type: ignore[no-untyped-def]
    with world.scope():
        data_import = DataImport.objects.create(
            organization=world.org,
            agreement=agreement,
            kind=kind,
            period="programme",
            programme_year=year,
            period_start=year.start,
            period_end=year.end,
            original_name=f"{kind}.csv",
            sha256=kind * 4,
            size=10,
        )
        DataImport.objects.filter(pk=data_import.pk).update(uploaded_at=uploaded_at)
        return data_import


def test_savings_imports_filter_by_agreement_kind_status_and_date(world, api):
    (first, first_year), (second, second_year) = _two_agreements(world)
    now = timezone.now()
    old = _import(world, first, first_year, kind="usage", uploaded_at=now - dt.timedelta(days=9))
    new = _import(world, second, second_year, kind="prices", uploaded_at=now)
    client = api("administrator")
    url = f"{API}savings-imports/"
    assert len(_ids(client.get(url))) == 2
    assert _ids(client.get(url, {"agreement": second.pk})) == [new.pk]
    assert _ids(client.get(url, {"programme_year": first_year.pk})) == [old.pk]
    assert _ids(client.get(url, {"kind": "usage"})) == [old.pk]
    assert _ids(client.get(url, {"status": "uploaded", "agreement": first.pk})) == [old.pk]
    since = (now - dt.timedelta(days=1)).isoformat()
    assert _ids(client.get(url, {"uploaded_at__gte": since})) == [new.pk]
    assert client.get(url, {"kind": "bills"}).json()["errors"][0]["field"] == "kind"


def test_compliance_flags_filter_by_state_and_agreement(world, api):
    (first, first_year), (second, _) = _two_agreements(world)
    with world.scope():
        open_flag = am.ComplianceFlag.objects.create(
            organization=world.org,
            agreement=first,
            programme_year=first_year,
            kind="test",
            message="open one",
        )
        closed = am.ComplianceFlag.objects.create(
            organization=world.org,
            agreement=second,
            kind="test",
            message="closed one",
            resolved_at=timezone.now(),
        )
    client = api("administrator")
    url = f"{API}compliance-flags/"
    assert _ids(client.get(url, {"state": "open"})) == [open_flag.pk]
    assert _ids(client.get(url, {"state": "resolved"})) == [closed.pk]
    assert _ids(client.get(url, {"agreement": second.pk})) == [closed.pk]
    assert client.get(url, {"state": "shut"}).status_code == 400


@pytest.mark.parametrize("value", ["2738-02-17T03:06:04-20:04", "2026-01-01T00:00:00+15:30"])
def test_a_moment_with_an_impossible_time_zone_offset_is_a_400_naming_the_filter(world, api, value):
    """The API fuzz found ``created_at__gte=...-20:04``: PostgreSQL refuses the offset (500)."""
    response = api("administrator").get(f"{API}adjudication/reports/", {"created_at__gte": value})
    assert response.status_code == 400, response.content
    assert [e["field"] for e in response.json()["errors"]] == ["created_at__gte"]


def test_a_moment_with_a_real_offset_filters(world, api):
    response = api("administrator").get(
        f"{API}adjudication/reports/", {"created_at__gte": "2026-01-01T00:00:00-05:00"}
    )
    assert response.status_code == 200, response.content
