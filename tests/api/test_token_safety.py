"""API tokens never outlive what made them safe.

* a token cannot create, list or revoke tokens (only a signed-in session can), so a short-lived
  token cannot mint a longer-lived one;
* every token expires: the installation's default, at most its maximum (a longer request is a
  400 naming ``expires_in_days``);
* a role that needs two-factor authentication uses only tokens created by a verified session:
  a token made as an executive stops working when its user is made an administrator;
* a password change or reset ends every token of the user, and the user's other sessions.
"""

from __future__ import annotations

import datetime as dt
import re

import pytest
import time_machine
from django.core import mail
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from django_scopes import scopes_disabled
from rest_framework.test import APIClient

from comanage.core.models import ApiToken, Role
from tests.security.helpers import pass_two_factor

ORGS = "/api/v1/organizations/"
TOKENS = "/api/v1/tokens/"
PASSWORD = "correct horse battery"  # tests/factories.UserFactory
NEW_PASSWORD = "Tangerine-violin-harbour-42"


def _bearer(raw: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    return client


def _session(user, *, verified: bool = False) -> APIClient:  # type: ignore[no-untyped-def]
    client = APIClient(enforce_csrf_checks=False)
    client.force_login(user)
    if verified:
        pass_two_factor(client, user)
    return client


def _create(client: APIClient, **body: object) -> dict:
    response = client.post(TOKENS, {"name": "script", **body}, format="json")
    assert response.status_code == 201, response.content
    return response.json()


# ----------------------------------------------------------------------------- tokens from tokens


def test_a_token_cannot_create_list_or_revoke_tokens(world):
    parent = _create(_session(world.users["auditor"]), expires_in_days=1)
    client = _bearer(parent["token"])
    assert client.get(ORGS).status_code == 200  # the token itself works
    created = client.post(TOKENS, {"name": "forever"}, format="json")
    assert created.status_code == 403, created.content
    assert created.json()["errors"][0]["code"] == "permission_denied"
    assert client.get(TOKENS).status_code == 403
    assert client.get(f"{TOKENS}{parent['id']}/").status_code == 403
    assert client.delete(f"{TOKENS}{parent['id']}/").status_code == 403
    assert ApiToken.objects.filter(user=world.users["auditor"]).count() == 1


def test_a_short_lived_token_leaves_nothing_behind_when_it_expires(world):
    parent = _create(_session(world.users["executive"]), expires_in_days=1)
    child = _bearer(parent["token"]).post(TOKENS, {"name": "child"}, format="json")
    assert child.status_code == 403
    with time_machine.travel(timezone.now() + dt.timedelta(days=1, minutes=1)):
        assert _bearer(parent["token"]).get(ORGS).status_code == 401
        for token in ApiToken.objects.filter(user=world.users["executive"]):
            assert not token.is_usable


# ----------------------------------------------------------------------------- expiry


def test_a_token_without_a_requested_expiry_gets_the_installations_default(world, settings):
    settings.COMANAGE_API_TOKEN_DEFAULT_DAYS = 7
    body = _create(_session(world.users["auditor"]))
    expires = dt.datetime.fromisoformat(body["expires_at"])
    assert timezone.now() + dt.timedelta(days=6) < expires <= timezone.now() + dt.timedelta(days=7)
    with time_machine.travel(timezone.now() + dt.timedelta(days=7, minutes=1)):
        assert _bearer(body["token"]).get(ORGS).status_code == 401


def test_an_expiry_beyond_the_installations_maximum_is_a_400_naming_the_field(world, settings):
    settings.COMANAGE_API_TOKEN_MAX_DAYS = 30
    session = _session(world.users["auditor"])
    response = session.post(TOKENS, {"name": "long", "expires_in_days": 31}, format="json")
    assert response.status_code == 400, response.content
    error = response.json()["errors"][0]
    assert error["field"] == "expires_in_days"
    assert "30" in error["message"]
    assert not ApiToken.objects.filter(user=world.users["auditor"]).exists()
    assert _create(session, expires_in_days=30)["expires_at"] is not None


def test_issuing_in_code_is_bounded_too(world, settings):
    settings.COMANAGE_API_TOKEN_MAX_DAYS = 10
    token, _raw = ApiToken.issue(
        user=world.users["auditor"],
        name="code",
        expires_at=timezone.now() + dt.timedelta(days=1000),
    )
    assert token.expires_at <= timezone.now() + dt.timedelta(days=10)
    default, _raw = ApiToken.issue(user=world.users["auditor"], name="default")
    assert default.expires_at is not None


def test_the_token_page_applies_the_same_bounds(world, settings):
    settings.COMANAGE_API_TOKEN_MAX_DAYS = 30
    client = Client()
    client.force_login(world.users["auditor"])
    client.post(reverse("api_tokens"), {"name": "too long", "expires_in_days": "31"})
    assert not ApiToken.objects.filter(user=world.users["auditor"]).exists()
    client.post(reverse("api_tokens"), {"name": "default"})
    token = ApiToken.objects.get(user=world.users["auditor"])
    assert token.expires_at is not None


# ----------------------------------------------------------------------------- two-factor


@pytest.fixture
def two_factor_on(settings):  # type: ignore[no-untyped-def]
    settings.COMANAGE_REQUIRE_2FA = True


def _promote(world, who: str, role: str) -> None:  # type: ignore[no-untyped-def]
    with scopes_disabled():
        membership = world.memberships[who]
        membership.role = role
        membership.save(update_fields=["role"])


def test_a_token_made_as_an_executive_stops_working_on_promotion_to_administrator(
    world, two_factor_on
):
    executive = world.users["executive"]
    body = _create(_session(executive))  # executives need no second factor
    token = _bearer(body["token"])
    jobs = f"/api/v1/organizations/{world.org.slug}/jobs/"
    assert token.get(jobs).status_code == 200
    _promote(world, "executive", Role.ADMINISTRATOR)
    # The web session is sent to 2FA setup; the token must not carry on regardless.
    web = Client()
    web.force_login(executive)
    assert web.get(f"/o/{world.org.slug}/")["Location"].startswith(reverse("security_otp_setup"))
    assert token.get(jobs).status_code == 401
    write = token.post(
        f"/api/v1/organizations/{world.org.slug}/practices/",
        {"name": "Shadow practice"},
        format="json",
    )
    assert write.status_code == 401, write.content


def test_a_signer_gets_working_tokens_only_from_a_verified_session(world, two_factor_on):
    admin = world.users["administrator"]
    unverified = _session(admin)
    assert unverified.post(TOKENS, {"name": "x"}, format="json").status_code == 403
    body = _create(_session(admin, verified=True))
    assert ApiToken.objects.get(pk=body["id"]).two_factor_verified
    assert (
        _bearer(body["token"]).get(f"/api/v1/organizations/{world.org.slug}/jobs/").status_code
        == 200
    )
    # A token issued without a verified session (older records, code paths) is refused.
    _old, raw = ApiToken.issue(user=admin, name="old")
    assert _bearer(raw).get(ORGS).status_code == 401


def test_the_token_page_records_a_verified_session(world, two_factor_on):
    admin = world.users["administrator"]
    client = Client()
    client.force_login(admin)
    pass_two_factor(client, admin)
    response = client.post(reverse("api_tokens"), {"name": "page"})
    raw = re.search(rb"cm_[A-Za-z0-9_\-]+", response.content).group().decode()
    assert ApiToken.objects.get(user=admin).two_factor_verified
    assert _bearer(raw).get(ORGS).status_code == 200


# ----------------------------------------------------------------------------- passwords


def test_a_password_reset_ends_every_token_and_session(world, client):
    user = world.users["auditor"]
    raw = _create(_session(user))["token"]
    other_session = Client()
    other_session.force_login(user)
    assert other_session.get("/o/riverside/")["Location"] == "/o/riverside/audit/"  # signed in
    assert _bearer(raw).get(ORGS).status_code == 200

    client.post(reverse("password_reset"), {"email": user.email})
    link = re.search(r"/account/password/reset/[^/\s]+/[^/\s]+/", mail.outbox[-1].body).group()
    form = client.get(link, follow=True)
    client.post(
        form.redirect_chain[-1][0] if form.redirect_chain else link,
        {"new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD},
    )
    user.refresh_from_db()
    assert user.check_password(NEW_PASSWORD)

    assert _bearer(raw).get(ORGS).status_code == 401
    assert other_session.get(ORGS).status_code == 401
    assert other_session.get("/o/riverside/")["Location"].startswith("/account/login/")


def test_a_password_change_ends_every_token_and_the_other_sessions(world):
    user = world.users["auditor"]
    raw = _create(_session(user))["token"]
    other_session = Client()
    other_session.force_login(user)
    this_session = Client()
    this_session.force_login(user)
    response = this_session.post(
        reverse("password_change"),
        {"old_password": PASSWORD, "new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD},
    )
    assert response.status_code == 302
    assert _bearer(raw).get(ORGS).status_code == 401
    assert other_session.get("/o/riverside/")["Location"].startswith("/account/login/")
    assert this_session.get(ORGS).status_code == 200  # the one that changed it stays


def test_setting_a_password_anywhere_revokes_the_tokens(world):
    user = world.users["auditor"]
    _token, raw = ApiToken.issue(user=user, name="script")
    user.set_password(NEW_PASSWORD)
    user.save()
    assert _bearer(raw).get(ORGS).status_code == 401
    assert ApiToken.objects.get(user=user).revoked_at is not None
