"""TOTP two-factor authentication for administrators, counsel and CEOs; step-up at signing."""

from __future__ import annotations

import base64
import datetime as dt
import re

import pytest
import time_machine
from django.urls import reverse
from django_otp.plugins.otp_totp.models import TOTPDevice

from tests.security import stepup_urls
from tests.security.helpers import enrol_device, pass_two_factor, totp_code

PASSWORD = "correct horse battery"  # tests/factories.UserFactory


@pytest.fixture(autouse=True)
def _two_factor_on(settings):  # type: ignore[no-untyped-def]
    settings.COMANAGE_REQUIRE_2FA = True


def reset_throttle(device):  # type: ignore[no-untyped-def]
    device.refresh_from_db()
    device.throttle_reset()


def password_login(client, user):  # type: ignore[no-untyped-def]
    response = client.post(reverse("login"), {"username": user.email, "password": PASSWORD})
    assert response.status_code == 302, response.content[:300]
    return response


@pytest.mark.parametrize("role", ["administrator", "counsel", "ceo"])
def test_signing_roles_are_sent_to_enrolment_from_every_organization_page(world, client, role):
    password_login(client, world.users[role])
    for url in (
        "/o/riverside/",
        "/o/riverside/audit/",
        "/",
        reverse("api_tokens"),
        reverse("password_change"),
    ):
        response = client.get(url)
        assert response.status_code == 302, url
        assert response["Location"].startswith(reverse("security_otp_setup")), url


@pytest.mark.parametrize("role", ["executive", "physician", "auditor"])
def test_other_roles_need_no_second_factor(world, client, role):
    password_login(client, world.users[role])
    response = client.get("/o/riverside/")
    assert not response.get("Location", "").startswith("/account/security/")


def test_session_api_calls_are_refused_until_verified(world, client):
    password_login(client, world.users["administrator"])
    response = client.get("/api/v1/organizations/")
    assert response.status_code == 403
    # In the API's one error shape, as every other API error (it was ``{"detail": ...}``).
    [error] = response.json()["errors"]
    assert error["code"] == "two_factor_required"
    assert "Two-factor" in error["message"]


def test_the_requirement_follows_the_setting(world, client, settings):
    settings.COMANAGE_REQUIRE_2FA = False
    password_login(client, world.users["counsel"])
    assert not client.get("/o/riverside/").get("Location", "").startswith("/account/security/")


def test_enrolment_shows_a_qr_code_and_a_first_code_turns_2fa_on(world, client):
    user = world.users["counsel"]
    password_login(client, user)
    page = client.get(reverse("security_otp_setup") + "?next=/o/riverside/audit/")
    assert page.status_code == 200
    match = re.search(rb'<img src="data:image/svg\+xml;base64,([A-Za-z0-9+/=]+)"', page.content)
    assert match, "the QR code is an inline SVG data URI (the CSP allows img-src data:)"
    assert b"<svg" in base64.b64decode(match.group(1))
    device = TOTPDevice.objects.get(user=user)
    assert not device.confirmed
    # The manual key shown matches the device's secret.
    key = base64.b32encode(device.bin_key).decode()
    assert key[:4].encode() in page.content

    wrong = client.post(reverse("security_otp_setup"), {"code": "000000", "next": "/o/riverside/"})
    assert wrong.status_code == 200
    device.refresh_from_db()
    assert not device.confirmed
    assert device.throttling_failure_count == 1  # wrong codes are throttled
    reset_throttle(device)

    done = client.post(
        reverse("security_otp_setup"), {"code": totp_code(device), "next": "/o/riverside/audit/"}
    )
    assert done.status_code == 302
    assert done["Location"] == "/o/riverside/audit/"
    device.refresh_from_db()
    assert device.confirmed
    assert client.get("/o/riverside/audit/").status_code == 200


def test_after_the_password_a_code_is_asked_for_and_checked(world, client):
    user = world.users["ceo"]
    device = enrol_device(user)
    password_login(client, user)
    response = client.get("/o/riverside/")
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("security_otp_verify"))

    wrong = client.post(reverse("security_otp_verify"), {"code": "123456", "next": "/o/riverside/"})
    assert wrong.status_code == 403
    assert client.get("/o/riverside/").status_code == 302

    reset_throttle(device)  # don't wait out the delay the wrong code started
    ok = client.post(
        reverse("security_otp_verify"), {"code": totp_code(device), "next": "/o/riverside/"}
    )
    assert ok.status_code == 302
    assert ok["Location"] == "/o/riverside/"
    assert not client.get("/o/riverside/").get("Location", "").startswith("/account/security/")


def test_a_code_cannot_be_used_twice(world, client):
    from django.test import Client

    user = world.users["administrator"]
    device = enrol_device(user)
    code = totp_code(device)
    password_login(client, user)
    assert client.post(reverse("security_otp_verify"), {"code": code}).status_code == 302
    other = Client()
    password_login(other, user)
    assert other.post(reverse("security_otp_verify"), {"code": code}).status_code == 403


def test_a_password_alone_cannot_add_a_device_to_a_protected_account(world, client):
    user = world.users["counsel"]
    enrol_device(user)
    password_login(client, user)
    response = client.get(reverse("security_otp_setup"))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("security_otp_verify"))
    assert TOTPDevice.objects.filter(user=user).count() == 1


def test_verification_ignores_an_unsafe_next(world, client):
    user = world.users["counsel"]
    device = enrol_device(user)
    password_login(client, user)
    response = client.post(
        reverse("security_otp_verify"), {"code": totp_code(device), "next": "https://evil.example/"}
    )
    assert response["Location"] == reverse("home")


def test_the_test_helper_passes_the_gate(world, client):
    client.force_login(world.users["counsel"])
    pass_two_factor(client, world.users["counsel"])
    assert client.get("/o/riverside/audit/").status_code == 200


# Step-up at signing -------------------------------------------------------------------------


@pytest.fixture
def signer(world, client):  # type: ignore[no-untyped-def]
    stepup_urls.SIGNED.clear()
    user = world.users["counsel"]
    client.force_login(user)
    device = pass_two_factor(client, user)
    return client, device


@pytest.mark.urls("tests.security.stepup_urls")
def test_a_recent_verification_lets_the_signature_through(signer):
    client, _ = signer
    response = client.post("/test-sign/decorated/", {"decision": "approve"})
    assert response.json() == {"signed": True}
    assert stepup_urls.SIGNED == [{"decision": ["approve"]}]


@pytest.mark.urls("tests.security.stepup_urls")
def test_after_five_minutes_signing_asks_for_a_fresh_code_and_carries_the_form(signer):
    client, device = signer
    with time_machine.travel(dt.datetime.now(tz=dt.UTC) + dt.timedelta(minutes=6), tick=False):
        asked = client.post(
            "/test-sign/decorated/", {"decision": "approve", "comment": ["ok", "see p. 3"]}
        )
        assert asked.status_code == 200
        assert b'name="otp_token"' in asked.content
        assert b'name="decision" value="approve"' in asked.content
        assert b'name="comment" value="see p. 3"' in asked.content
        assert stepup_urls.SIGNED == []

        wrong = client.post("/test-sign/decorated/", {"decision": "approve", "otp_token": "000000"})
        assert wrong.status_code == 403
        assert stepup_urls.SIGNED == []

        reset_throttle(device)
        signed = client.post(
            "/test-sign/decorated/",
            {"decision": "approve", "comment": ["ok", "see p. 3"], "otp_token": totp_code(device)},
        )
        assert signed.json() == {"signed": True}
        assert len(stepup_urls.SIGNED) == 1
        assert stepup_urls.SIGNED[0]["decision"] == ["approve"]
        assert stepup_urls.SIGNED[0]["comment"] == ["ok", "see p. 3"]


@pytest.mark.urls("tests.security.stepup_urls")
def test_max_age_zero_asks_for_a_code_with_every_signature(signer):
    client, device = signer
    asked = client.post("/test-sign/helper/", {"decision": "authorise"})
    assert asked.status_code == 200
    assert stepup_urls.SIGNED == []
    # The code used at sign-in has been consumed: the next time step's code signs.
    signed = client.post(
        "/test-sign/helper/",
        {"decision": "authorise", "otp_token": totp_code(device, offset_steps=1)},
    )
    assert signed.json() == {"signed": True}
    again = client.post("/test-sign/helper/", {"decision": "authorise"})
    assert again.status_code == 200
    assert len(stepup_urls.SIGNED) == 1


@pytest.mark.urls("tests.security.stepup_urls")
def test_a_get_is_sent_to_a_fresh_verification_that_comes_back(signer):
    client, device = signer
    with time_machine.travel(dt.datetime.now(tz=dt.UTC) + dt.timedelta(minutes=6), tick=False):
        response = client.get("/test-sign/helper/")
        assert response.status_code == 302
        assert response["Location"].startswith(reverse("security_otp_verify"))
        assert "fresh=1" in response["Location"]
        back = client.post(
            response["Location"], {"code": totp_code(device), "next": "/test-sign/helper/"}
        )
        assert back["Location"] == "/test-sign/helper/"
        assert client.get("/test-sign/helper/").content == b"the sign page"


@pytest.mark.urls("tests.security.stepup_urls")
def test_a_signer_without_a_device_is_sent_to_enrolment(world, client):
    user = world.users["ceo"]
    client.force_login(user)
    response = client.post("/test-sign/helper/", {"decision": "authorise"})
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("security_otp_setup"))


def test_a_member_promoted_to_a_signing_role_is_asked_for_the_second_factor_at_once(world, client):
    """The 2FA check reads the roles from the tenant check's cached entry: a promotion bumps
    the user's membership version, so the very next page asks for the second factor."""
    from django_scopes import scopes_disabled

    from comanage.core.models import Role

    password_login(client, world.users["executive"])
    assert client.get("/o/riverside/dashboard/").status_code == 200  # the entry is cached
    with scopes_disabled():
        membership = world.memberships["executive"]
        membership.role = Role.ADMINISTRATOR
        membership.save()
    response = client.get("/o/riverside/dashboard/")
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("security_otp_setup"))
