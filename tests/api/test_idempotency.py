"""POSTs with money effects honour Idempotency-Key: a retry returns the first response and does
nothing twice; the same key with a different request is refused."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from comanage.core.models import ApiToken, IdempotencyRecord

TOKENS = "/api/v1/tokens/"


@pytest.fixture
def api(world):  # type: ignore[no-untyped-def]
    """Signed-in sessions: tokens are created from a session, never with a token."""

    def make(who: str) -> APIClient:
        client = APIClient()
        client.force_login(world.users[who])
        return client

    return make


def test_a_retry_returns_the_first_response_and_creates_nothing_twice(world, api):
    client = api("administrator")
    before = ApiToken.objects.count()
    first = client.post(TOKENS, {"name": "nightly"}, format="json", HTTP_IDEMPOTENCY_KEY="k-1")
    retry = client.post(TOKENS, {"name": "nightly"}, format="json", HTTP_IDEMPOTENCY_KEY="k-1")
    assert first.status_code == retry.status_code == 201
    assert retry.json() == first.json()
    assert retry["Idempotent-Replayed"] == "true"
    assert ApiToken.objects.count() == before + 1


def test_the_same_key_with_a_different_body_is_refused(world, api):
    client = api("administrator")
    client.post(TOKENS, {"name": "a"}, format="json", HTTP_IDEMPOTENCY_KEY="k-2")
    before = ApiToken.objects.count()
    response = client.post(TOKENS, {"name": "b"}, format="json", HTTP_IDEMPOTENCY_KEY="k-2")
    assert response.status_code == 422
    assert response.json()["errors"][0]["code"] == "idempotency_key_reused"
    assert ApiToken.objects.count() == before


def test_keys_are_per_user(world, api):
    one, two = api("administrator"), api("counsel")
    assert (
        one.post(TOKENS, {"name": "x"}, format="json", HTTP_IDEMPOTENCY_KEY="shared").status_code
        == 201
    )
    response = two.post(TOKENS, {"name": "x"}, format="json", HTTP_IDEMPOTENCY_KEY="shared")
    assert response.status_code == 201
    assert "Idempotent-Replayed" not in response


def test_a_failed_request_is_not_remembered(world, api):
    client = api("administrator")
    bad = client.post(TOKENS, {"name": ""}, format="json", HTTP_IDEMPOTENCY_KEY="k-3")
    assert bad.status_code == 400
    assert not IdempotencyRecord.objects.filter(key="k-3").exists()


def test_a_retry_while_the_first_is_still_running_is_a_409(world, api):
    client = api("administrator")
    user = world.users["administrator"]
    first = client.post(TOKENS, {"name": "x"}, format="json", HTTP_IDEMPOTENCY_KEY="k-4")
    record = IdempotencyRecord.objects.get(user=user, key="k-4")
    IdempotencyRecord.objects.filter(pk=record.pk).update(status_code=None)  # "in flight"
    response = client.post(TOKENS, {"name": "x"}, format="json", HTTP_IDEMPOTENCY_KEY="k-4")
    assert first.status_code == 201
    assert response.status_code == 409
    assert response.json()["errors"][0]["code"] == "conflict"


def test_an_overlong_key_is_a_validation_error(world, api):
    response = api("administrator").post(
        TOKENS, {"name": "x"}, format="json", HTTP_IDEMPOTENCY_KEY="k" * 201
    )
    assert response.status_code == 400
    assert response.json()["errors"][0]["field"] == "Idempotency-Key"
