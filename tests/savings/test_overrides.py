"""Savings what-if overrides are read strictly, before a job is queued or a figure stored: a
negative price, a NUL character, a non-boolean or an unknown item is a 400 naming its field."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from rest_framework.test import APIClient

from comanage.core.models import ApiToken, Job
from savings import services
from savings.models import CalculationKind, SavingsCalculation
from tests.savings.helpers import year
from tests.savings.test_services import two_years  # noqa: F401 - the fixture

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"prices": {"A1": "-5"}}, "overrides.prices.A1"),
        ({"prices": {"A1": "NaN"}}, "overrides.prices.A1"),
        ({"prices": {"A1\x00": "1"}}, "overrides.prices"),
        ({"prices": {"NO-SUCH": "1"}}, "overrides.prices"),
        ({"quantity_pct": {"A1": "-10"}}, "overrides.quantity_pct.A1"),
        ({"already_distributed": "-1"}, "overrides.already_distributed"),
        ({"key_indicators_met": "maybe"}, "overrides.key_indicators_met"),
        ({"terms": {"reprice_baseline": "maybe"}}, "overrides.terms.reprice_baseline"),
        ({"terms": {"admin_fee_monthly": "1e400"}}, "overrides.terms.admin_fee_monthly"),
    ],
)
def test_a_bad_override_is_refused_before_a_job_is_queued(world, two_years, overrides, field):  # noqa: F811
    with world.scope():
        jobs = Job.objects.count()
        with pytest.raises(ValidationError) as caught:
            services.savings_calculation_start(
                programme_year=year(two_years, 1),
                user=world.users["administrator"],
                kind=CalculationKind.SCENARIO,
                overrides=overrides,
            )
        assert Job.objects.count() == jobs
        assert SavingsCalculation.objects.count() == 0
    assert field in caught.value.message_dict


def test_a_negative_price_is_never_computed_nor_stored(world, two_years):  # noqa: F811
    with world.scope():
        with pytest.raises(ValidationError, match="below the minimum"):
            services.savings_calculation_run(
                programme_year=year(two_years, 1),
                user=world.users["administrator"],
                kind=CalculationKind.SCENARIO,
                overrides={"prices": {"A1": "-5"}},
            )
        assert not SavingsCalculation.objects.exists()


def test_key_indicators_met_takes_only_true_or_false(world, two_years):  # noqa: F811
    with world.scope():
        met = services.savings_for_year(
            programme_year=year(two_years, 1), overrides={"key_indicators_met": "false"}
        )
    assert met.inputs["overrides"] == {"key_indicators_met": False}


def test_a_stored_scenario_keeps_the_overrides_as_read(world, two_years):  # noqa: F811
    with world.scope():
        calculation = services.savings_calculation_run(
            programme_year=year(two_years, 1),
            user=world.users["administrator"],
            kind=CalculationKind.SCENARIO,
            overrides={"prices": {"A1": 110.5}},
        )
    assert calculation.overrides == {"prices": {"A1": "110.5"}}
    assert calculation.gross_savings > Decimal(0)


def test_the_api_answers_400_naming_the_override(world, two_years):  # noqa: F811
    _token, raw = ApiToken.issue(user=world.users["administrator"], name="t")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    url = f"/api/v1/organizations/{world.org.slug}/savings-calculations/run/"
    response = client.post(
        url,
        {
            "programme_year": year(two_years, 1).pk,
            "kind": "scenario",
            "overrides": {"prices": {"A1": "-5"}},
        },
        format="json",
    )
    assert response.status_code == 400, response.content
    assert response.json()["errors"][0]["field"] == "overrides.prices.A1"
    response = client.post(
        url,
        {
            "programme_year": year(two_years, 1).pk,
            "kind": "year",
            "overrides": {"key_indicators_met": True},
        },
        format="json",
    )
    assert response.status_code == 400
    assert response.json()["errors"][0]["field"] == "overrides"
    with world.scope():
        assert not Job.objects.exists()
