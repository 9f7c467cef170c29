"""The what-if reads its overrides strictly (API and web): unknown keys, non-finite, huge or
negative numbers and wrong types are a 400 naming the field, never a 500 or a silent default."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from adjudication.models import CalculationRun
from comanage.core.models import ApiToken

pytestmark = pytest.mark.django_db


def _client(world) -> APIClient:  # type: ignore[no-untyped-def]
    _token, raw = ApiToken.issue(user=world.users["administrator"], name="t")
    client = APIClient(raise_request_exception=False)
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    return client


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"pool": "1e30"}, "overrides.pool"),
        ({"pool": "1e400"}, "overrides.pool"),
        ({"pool": 1e308}, "overrides.pool"),
        ({"pool": "NaN"}, "overrides.pool"),
        ({"pool": "-1"}, "overrides.pool"),
        ({"weights": "x"}, "overrides.weights"),
        ({"results": "x"}, "overrides.results"),
        ({"tier_mode": "cubic"}, "overrides.tier_mode"),
        ({"bogus": 1}, "overrides"),
    ],
)
def test_the_api_what_if_refuses_bad_overrides_naming_them(world, co_management, overrides, field):  # type: ignore[no-untyped-def]
    _agreement, year = co_management
    response = _client(world).post(
        f"/api/v1/organizations/{world.org.slug}/adjudication/runs/scenario/",
        {"programme_year": year.pk, "overrides": overrides},
        format="json",
    )
    assert response.status_code == 400, response.content
    assert [e["field"] for e in response.json()["errors"]] == [field]
    with world.scope():
        assert not CalculationRun.objects.exists()


def test_the_web_what_if_answers_400_on_a_bad_number(world, recorded):  # type: ignore[no-untyped-def]
    year = recorded.run.programme_year
    client = world.client("administrator")
    url = f"/o/{world.org.slug}/adjudication/years/{year.pk}/what-if/"
    for value in ("1e308", "NaN", "1e400", "101"):
        response = client.post(url, {"weight__ssi": value})
        assert response.status_code == 400, value
        assert "weight__ssi" in response.context["form"].errors
