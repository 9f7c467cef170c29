"""Personal API tokens: created and revoked by the user, stored hashed, expiring."""

from __future__ import annotations

import hashlib
from datetime import timedelta

import time_machine
from django.utils import timezone
from rest_framework.test import APIClient

from comanage.core.models import ApiToken

ORGS = "/api/v1/organizations/"
TOKENS = "/api/v1/tokens/"


def _bearer(raw: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    return client


def test_it_creates_a_token_returns_it_once_and_stores_only_its_hash(world):
    session = APIClient()
    session.force_login(world.users["administrator"])
    response = session.post(TOKENS, {"name": "reporting"}, format="json")
    assert response.status_code == 201, response.content
    raw = response.json()["token"]
    assert raw.startswith("cm_")
    token = ApiToken.objects.get(pk=response.json()["id"])
    assert token.token_hash == hashlib.sha256(raw.encode()).hexdigest()
    assert raw not in {token.name, token.prefix, token.token_hash}
    listed = session.get(TOKENS).json()
    assert listed["count"] == 1
    assert "token" not in listed["results"][0]
    assert "token" not in session.get(f"{TOKENS}{token.pk}/").json()


def test_a_created_token_authenticates_and_records_its_last_use(world):
    session = APIClient()
    session.force_login(world.users["executive"])
    raw = session.post(TOKENS, {"name": "bi"}, format="json").json()["token"]
    response = _bearer(raw).get(ORGS)
    assert response.status_code == 200
    assert response.json() == [
        {"slug": "riverside", "name": "Riverside Medical Center", "role": "executive"}
    ]
    assert ApiToken.objects.get(user=world.users["executive"]).last_used_at is not None


def test_last_use_is_written_at_most_once_a_minute(world):
    session = _session(world.users["executive"])
    raw = session.post(TOKENS, {"name": "bi"}, format="json").json()["token"]
    start = timezone.now()
    with time_machine.travel(start, tick=False):
        assert _bearer(raw).get(ORGS).status_code == 200
    token = ApiToken.objects.get(user=world.users["executive"])
    assert token.last_used_at == start
    with time_machine.travel(start + timedelta(seconds=59), tick=False):
        assert _bearer(raw).get(ORGS).status_code == 200
    token.refresh_from_db()
    assert token.last_used_at == start  # a burst of requests is not a burst of writes
    with time_machine.travel(start + timedelta(minutes=1), tick=False):
        assert _bearer(raw).get(ORGS).status_code == 200
    token.refresh_from_db()
    assert token.last_used_at == start + timedelta(minutes=1)


def _session(user) -> APIClient:  # type: ignore[no-untyped-def]
    client = APIClient()
    client.force_login(user)
    return client


def test_a_revoked_token_stops_working_at_once(world, api):
    client = api("administrator")
    token = ApiToken.objects.get(user=world.users["administrator"])
    assert client.get(ORGS).status_code == 200
    # Tokens are managed from a session, never with a token (tests/api/test_token_safety.py).
    assert _session(world.users["administrator"]).delete(f"{TOKENS}{token.pk}/").status_code == 204
    response = client.get(ORGS)
    assert response.status_code == 401
    assert response.json()["errors"][0]["code"] == "authentication_failed"
    assert response["WWW-Authenticate"] == "Bearer"
    token.refresh_from_db()
    assert token.revoked_at is not None  # the record stays, for the audit


def test_a_token_expires(world):
    session = APIClient()
    session.force_login(world.users["auditor"])
    body = session.post(TOKENS, {"name": "short", "expires_in_days": 1}, format="json").json()
    assert body["expires_at"] is not None
    assert _bearer(body["token"]).get(ORGS).status_code == 200
    with time_machine.travel(timezone.now() + timedelta(days=1, minutes=1)):
        assert _bearer(body["token"]).get(ORGS).status_code == 401


def test_expiry_is_bounded(world, settings):
    too_long = settings.COMANAGE_API_TOKEN_MAX_DAYS + 1
    response = _session(world.users["administrator"]).post(
        TOKENS, {"name": "x", "expires_in_days": too_long}, format="json"
    )
    assert response.status_code == 400
    assert response.json()["errors"][0]["field"] == "expires_in_days"


def test_nobody_sees_or_revokes_another_users_token(world, api):
    mine = api("administrator")
    theirs = ApiToken.objects.get(user=world.users["administrator"])
    other = _session(world.users["counsel"])
    assert other.get(f"{TOKENS}{theirs.pk}/").status_code == 404
    assert other.delete(f"{TOKENS}{theirs.pk}/").status_code == 404
    assert mine.get(ORGS).status_code == 200
    assert all(t["id"] != theirs.pk for t in other.get(TOKENS).json()["results"])


def test_garbage_and_malformed_tokens_are_401_in_the_error_shape(world):
    for header in ("Bearer cm_nope", "Bearer a b", "Token cm_nope"):
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=header)
        response = client.get(ORGS)
        assert response.status_code == 401, header
        assert set(response.json()["errors"][0]) == {"field", "code", "message"}
