"""The physician portal reads hours strictly: not a number, not finite, negative, more than a
month holds or more than cents is a 400 naming the hours, and nothing is stored."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError

from agreements import services
from agreements.models import TimeSheet
from tests.agreements.test_access import objs  # noqa: F401 - fixture


@pytest.mark.parametrize(
    "hours",
    [
        "NaN",
        "Infinity",
        "-Infinity",
        "sNaN",
        "1e308",
        "1e400",
        "-1",
        "745",
        "0.001",
        "abc",
        "1\x00",
    ],
)
def test_portal_refuses_bad_hours_naming_them(world, objs, hours):  # noqa: F811
    client = world.client("physician")
    duty = objs.duty.pk
    response = client.post(
        f"/o/riverside/portal/?agreement={objs.own.pk}&month=2025-04",
        {
            "agreement": objs.own.pk,
            "month": "2025-04",
            f"hours_{duty}": hours,
            f"desc_{duty}": "x",
            "action": "save",
        },
    )
    assert response.status_code == 400
    assert "hours" in response.context["errors"]
    with world.scope():
        assert not TimeSheet.objects.filter(month=dt.date(2025, 4, 1)).exists()


def test_the_service_refuses_non_finite_hours_and_nul_descriptions(world, objs):  # noqa: F811
    with world.scope():
        for hours, description, field in (
            (Decimal("NaN"), "x", "hours"),
            (Decimal("Infinity"), "x", "hours"),
            (Decimal("1"), "a\x00b", "description"),
        ):
            with pytest.raises(ValidationError) as caught:
                services.timesheet_save(
                    agreement=objs.own,
                    physician=world.physician,
                    month=dt.date(2025, 4, 1),
                    entries=[services.EntryInput(objs.duty, hours, description)],
                    user=world.users["physician"],
                    acting_physician=world.physician,
                )
            assert field in caught.value.message_dict
        assert not TimeSheet.objects.filter(month=dt.date(2025, 4, 1)).exists()


def test_the_token_page_answers_400_to_a_revoke_that_is_not_an_id(world):  # type: ignore[no-untyped-def]
    client = world.client("administrator")
    for value in ("abc", "1e400", "-1", "1\x00", ""):
        response = client.post("/account/tokens/", {"revoke": value})
        assert response.status_code == 400, value
        assert "Revoke" in response.content.decode()
