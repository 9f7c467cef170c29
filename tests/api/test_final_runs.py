"""A final calculation (savings "year" or the adjudication run) of a programme year that has not
ended is refused, from the API (400 naming ``programme_year``) and from the web form; before the
year's last day is over only projections (and what-if scenarios) run."""

from __future__ import annotations

import datetime as dt
import zoneinfo

import pytest
import time_machine
from django.conf import settings
from django.core.exceptions import ValidationError
from django.urls import reverse
from django_scopes import scopes_disabled

from adjudication import services as adjudication_services
from agreements.models import AgreementKind
from comanage.core.models import Job
from savings import services as savings_services
from tests import factories as f

pytestmark = pytest.mark.django_db

BASE = "/api/v1/organizations/riverside"
MESSAGE = (
    "The 2025 programme year ends on Dec 31, 2025; a final calculation is possible from "
    "Jan 1, 2026. Run a projection instead."
)


def at(year: int, month: int, day: int, hour: int = 12):  # type: ignore[no-untyped-def]
    """Local noon (the installation's time zone) on that day, the clock standing still."""
    moment = dt.datetime(year, month, day, hour, tzinfo=zoneinfo.ZoneInfo(settings.TIME_ZONE))
    return time_machine.travel(moment, tick=False)


@pytest.fixture
def year(world):  # type: ignore[no-untyped-def]
    agreement = f.AgreementFactory(organization=world.org, kind=AgreementKind.SHARED_SAVINGS)
    f.TermsFactory(agreement=agreement)
    return f.ProgrammeYearFactory(agreement=agreement)  # 2025-01-01 .. 2025-12-31


def _jobs() -> int:
    with scopes_disabled():
        return Job.objects.count()


@pytest.mark.parametrize("day", [(2025, 6, 30), (2025, 12, 31)])
def test_the_api_refuses_a_final_adjudication_run_before_the_year_has_ended(world, api, year, day):
    with at(*day):
        response = api("administrator").post(
            f"{BASE}/adjudication/runs/start/", {"programme_year": year.pk}, format="json"
        )
    assert response.status_code == 400, response.content[:500]
    assert [(e["field"], e["message"]) for e in response.json()["errors"]] == [
        ("programme_year", MESSAGE)
    ]
    assert _jobs() == 0


def test_the_api_starts_the_adjudication_run_once_the_year_has_ended(world, api, year):
    with at(2026, 1, 1, hour=0):
        response = api("administrator").post(
            f"{BASE}/adjudication/runs/start/", {"programme_year": year.pk}, format="json"
        )
    assert response.status_code == 202, response.content[:500]


def test_a_late_evening_in_the_installations_time_zone_is_still_the_last_day(world, api, year):
    # 23:30 in New York on 31 Dec is already 1 Jan in UTC: the local date decides.
    with at(2025, 12, 31, hour=23):
        response = api("administrator").post(
            f"{BASE}/adjudication/runs/start/", {"programme_year": year.pk}, format="json"
        )
    assert response.status_code == 400


def test_the_api_refuses_a_final_savings_calculation_but_runs_a_projection(world, api, year):
    client = api("administrator")
    with at(2025, 11, 15):
        final = client.post(
            f"{BASE}/savings-calculations/run/",
            {"programme_year": year.pk, "kind": "year"},
            format="json",
        )
        assert final.status_code == 400, final.content[:500]
        assert [(e["field"], e["message"]) for e in final.json()["errors"]] == [
            ("programme_year", MESSAGE)
        ]
        assert _jobs() == 0
        projection = client.post(
            f"{BASE}/savings-calculations/run/",
            {"programme_year": year.pk, "kind": "projection"},
            format="json",
        )
        assert projection.status_code == 202, projection.content[:500]
    with at(2026, 1, 2):
        later = client.post(
            f"{BASE}/savings-calculations/run/",
            {"programme_year": year.pk, "kind": "year"},
            format="json",
        )
    assert later.status_code == 202, later.content[:500]


def test_the_web_forms_refuse_a_final_run_before_the_year_has_ended(world, year):
    client = world.client("administrator")
    with at(2025, 12, 1):
        run = client.post(
            reverse("adjudication_run_start", args=["riverside", year.pk]), follow=True
        )
        assert MESSAGE in run.content.decode()
        calculate = client.post(
            reverse("savings_calculate", args=["riverside", year.agreement_id]),
            {"year": "1", "kind": "year"},
            follow=True,
        )
        assert MESSAGE in calculate.content.decode()
    assert _jobs() == 0


def test_the_services_refuse_it_whoever_calls_them(world, year):
    with at(2025, 12, 31), world.scope():
        with pytest.raises(ValidationError) as refused:
            adjudication_services.adjudication_run(programme_year=year, user=None)
        assert refused.value.message_dict == {"programme_year": [MESSAGE]}
        with pytest.raises(ValidationError):
            savings_services.savings_calculation_run(programme_year=year, user=None, kind="year")
