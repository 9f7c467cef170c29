"""Two-factor codes checked as production runs them: PostgreSQL, no transaction around the
request (production leaves ``ATOMIC_REQUESTS`` off), no test transaction around the test.

django-otp locks the devices (``select_for_update``) while it checks a code so that two requests
cannot both use it; PostgreSQL refuses such a lock outside a transaction, which SQLite and a test
wrapped in a transaction never show. Every sign-in's code step once answered 500 there.
"""

from __future__ import annotations

import pytest
from django.db import connection
from django.test import Client
from django.urls import reverse

from comanage.core.security import device_code_valid
from tests.security.helpers import enrol_device, totp_code

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

PASSWORD = "correct horse battery"  # tests/factories.UserFactory


@pytest.fixture(autouse=True)
def _as_in_production(settings):  # type: ignore[no-untyped-def]
    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL: set DATABASE_URL=postgres://... (CI does)")
    settings.COMANAGE_REQUIRE_2FA = True
    # Production (settings/production.py over base.py) does not wrap requests in a transaction.
    assert connection.settings_dict["ATOMIC_REQUESTS"] is False
    assert connection.get_autocommit()


def test_signing_in_with_a_code_after_enrolment_works(world):  # type: ignore[no-untyped-def]
    user = world.users["administrator"]
    device = enrol_device(user)
    client = Client(raise_request_exception=False)
    signed_in = client.post(reverse("login"), {"username": user.email, "password": PASSWORD})
    assert signed_in.status_code == 302

    response = client.post(
        reverse("security_otp_verify"), {"code": totp_code(device), "next": "/o/riverside/"}
    )
    assert response.status_code == 302, response.content[:500]
    assert response["Location"] == "/o/riverside/"
    assert not client.get("/o/riverside/").get("Location", "").startswith("/account/security/")
    # A wrong code is refused (and counted), not a crash.
    again = Client(raise_request_exception=False)
    again.post(reverse("login"), {"username": user.email, "password": PASSWORD})
    assert again.post(reverse("security_otp_verify"), {"code": "000000"}).status_code == 403
    device.refresh_from_db()
    assert device.throttling_failure_count == 1


def test_an_api_signature_checks_the_code_outside_a_transaction(world):  # type: ignore[no-untyped-def]
    user = world.users["counsel"]
    device = enrol_device(user)
    assert device_code_valid(user, totp_code(device)) is True
    assert device_code_valid(user, totp_code(device)) is False  # used once only
