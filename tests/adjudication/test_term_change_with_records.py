"""A draft agreement whose programme years already hold recorded data (a calculation run and
its report, imported results) keeps its term and years: changing the term would delete years
those records protect. The service refuses with a ValidationError naming the field and what
holds the years, the web form and the API answer 400 (the API answered 500: the fuzzer found
it), and nothing changes."""

from __future__ import annotations

import datetime as dt

import pytest
from django.core.exceptions import ValidationError

from agreements import services as agreement_services
from agreements.models import ProgrammeYear
from tests.api.conftest import token_client

pytestmark = pytest.mark.django_db


def _years(agreement):  # type: ignore[no-untyped-def]
    return list(ProgrammeYear.objects.filter(agreement=agreement).values_list("pk", "start", "end"))


def test_the_service_refuses_to_replace_years_that_hold_a_calculation(world, recorded):
    agreement = recorded.run.programme_year.agreement
    with world.scope():
        before = _years(agreement)
        with pytest.raises(ValidationError) as exc:
            agreement_services.agreement_update(
                agreement=agreement, data={"term_end": dt.date(2027, 12, 31)}, user=None
            )
        message = exc.value.message_dict["term_end"][0]
        assert "already hold recorded data" in message
        assert "calculation runs" in message or "adjudication reports" in message
        with pytest.raises(ValidationError) as exc:
            agreement_services.programme_years_set(
                agreement=agreement, ranges=[(agreement.term_start, agreement.term_end)]
            )
        assert "already hold recorded data" in exc.value.message_dict["programme_years"][0]
        agreement.refresh_from_db()
        assert agreement.term_end != dt.date(2027, 12, 31)
        assert _years(agreement) == before


def test_the_api_answers_400_naming_the_field_and_changes_nothing(world, recorded):
    agreement = recorded.run.programme_year.agreement
    with world.scope():
        before = _years(agreement)
    client = token_client(world.users["administrator"])
    response = client.patch(
        f"/api/v1/organizations/{world.org.slug}/agreements/{agreement.pk}/",
        {"term_start": "2024-07-01", "term_end": "2026-06-30"},
        format="json",
    )
    assert response.status_code == 400, response.content[:500]
    errors = response.json()["errors"]
    assert [e["field"] for e in errors] == ["term_start"]
    assert "already hold recorded data" in errors[0]["message"]
    with world.scope():
        agreement.refresh_from_db()
        assert agreement.term_start == dt.date(2025, 1, 1)
        assert _years(agreement) == before
