"""API test helpers: clients authenticated with a personal token of any role of the world."""

from __future__ import annotations

import pytest
from django.core.cache import cache
from rest_framework.test import APIClient

from comanage.core.api_auth import local_throttle_clear
from comanage.core.models import ApiToken


def token_client(user) -> APIClient:  # type: ignore[no-untyped-def]
    _token, raw = ApiToken.issue(user=user, name="tests")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    client.raw_token = raw  # type: ignore[attr-defined]
    return client


def first_object_url(client: APIClient, path: str, org_slug: str) -> str | None:
    """The schema's ``path`` with ``{org_slug}`` filled and ``{id}`` the first object its list
    shows; None when the list shows nothing or the path has another placeholder."""
    url = path.replace("{org_slug}", org_slug)
    if "{id}" in url:
        listing = client.get(url.split("{id}")[0])
        if listing.status_code != 200:
            return None
        body = listing.json()
        rows = body.get("results", body) if isinstance(body, dict) else body
        if not rows:
            return None
        url = url.replace("{id}", str(rows[0]["id"]))
    return None if "{" in url else url


@pytest.fixture
def api(world):  # type: ignore[no-untyped-def]
    """``api("administrator")``, ``api("outsider")``, ``api("anonymous")``: token clients."""

    def make(who: str) -> APIClient:
        if who == "anonymous":
            return APIClient()
        user = world.outsider if who == "outsider" else world.users[who]
        return token_client(user)

    return make


@pytest.fixture(autouse=True)
def _fresh_throttle_cache():  # type: ignore[no-untyped-def]
    cache.clear()
    local_throttle_clear()
    yield
    cache.clear()
    local_throttle_clear()
