"""One error shape everywhere: {"errors": [{"field", "code", "message"}]}."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from comanage.core.api_auth import TokenRateThrottle

from .conftest import token_client

ADMIN_ONLY = "/api/v1/organizations/riverside/test/admin-only/"
JOBS = "/api/v1/organizations/riverside/jobs/"


def assert_error_shape(response, status: int, code: str | None = None) -> dict:  # type: ignore[no-untyped-def]
    assert response.status_code == status, response.content
    assert response["Content-Type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"errors"}
    assert body["errors"], "at least one error"
    for error in body["errors"]:
        assert set(error) == {"field", "code", "message"}
        assert isinstance(error["message"], str) and error["message"]
    if code is not None:
        assert body["errors"][0]["code"] == code
    return body


def test_401_without_credentials(world, api):
    response = api("anonymous").get(JOBS)
    assert_error_shape(response, 401, "not_authenticated")
    assert response["WWW-Authenticate"] == "Bearer"


@pytest.mark.urls("tests.api.urls")
def test_403_within_the_tenant_for_a_role_without_the_permission(world, api):
    assert api("administrator").get(ADMIN_ONLY).status_code == 200
    for role in ("executive", "counsel", "ceo", "auditor", "physician"):
        assert_error_shape(api(role).get(ADMIN_ONLY), 403, "permission_denied")


@pytest.mark.urls("tests.api.urls")
def test_an_action_without_a_declared_permission_is_refused(world, api):
    body = assert_error_shape(
        api("administrator").get("/api/v1/organizations/riverside/test/undeclared/"),
        403,
        "permission_denied",
    )
    assert "No permission is declared" in body["errors"][0]["message"]


@pytest.mark.urls("tests.api.urls")
def test_404_for_the_outsider_never_403(world, api):
    assert_error_shape(api("outsider").get(ADMIN_ONLY), 404, "not_found")
    assert_error_shape(api("outsider").get(JOBS), 404, "not_found")
    assert api("administrator").get("/api/v1/organizations/no-such-org/jobs/").status_code == 404


def test_an_unknown_organization_is_a_404_in_the_error_shape(world, api):
    unknown = assert_error_shape(
        api("administrator").get("/api/v1/organizations/no-such-org/jobs/"), 404, "not_found"
    )
    # Indistinguishable from an organization that exists but is not yours.
    theirs = assert_error_shape(api("outsider").get(JOBS), 404, "not_found")
    assert unknown == theirs


def test_404_for_an_unknown_object(world, api):
    assert_error_shape(api("administrator").get(f"{JOBS}999999/"), 404, "not_found")


def test_405_for_an_unsupported_method(world, api):
    body = assert_error_shape(api("administrator").delete(JOBS), 405, "method_not_allowed")
    assert "DELETE" in body["errors"][0]["message"]


@pytest.mark.urls("tests.api.urls")
def test_validation_errors_name_each_field(world, api):
    response = api("administrator").post(ADMIN_ONLY, {"amount": "12.345"}, format="json")
    body = assert_error_shape(response, 400)
    by_field = {e["field"]: e["code"] for e in body["errors"]}
    assert by_field == {"kind": "required", "amount": "max_decimal_places"}


@pytest.mark.urls("tests.api.urls")
def test_malformed_json_is_a_400_in_the_shape(world, api):
    response = api("administrator").post(ADMIN_ONLY, "{not json", content_type="application/json")
    assert_error_shape(response, 400, "parse_error")


def test_429_with_retry_after_per_token(world, monkeypatch):
    monkeypatch.setattr(TokenRateThrottle, "THROTTLE_RATES", {"token": "3/minute"})
    first = token_client(world.users["administrator"])
    second = token_client(world.users["administrator"])
    for _ in range(3):
        assert first.get(JOBS).status_code == 200
    response = first.get(JOBS)
    assert_error_shape(response, 429, "throttled")
    assert 0 < int(response["Retry-After"]) <= 60
    # The limit is per token: the same user's other token still has its own allowance.
    assert second.get(JOBS).status_code == 200


def test_session_requests_are_throttled_per_user(world, monkeypatch):
    monkeypatch.setattr(TokenRateThrottle, "THROTTLE_RATES", {"token": "2/minute"})
    client = APIClient()
    client.force_login(world.users["auditor"])
    assert client.get(JOBS).status_code == 200
    assert client.get(JOBS).status_code == 200
    assert client.get(JOBS).status_code == 429


def test_an_address_no_route_knows_is_a_404_in_the_error_shape(world, api):
    assert_error_shape(api("administrator").get("/api/v1/no-such-thing/"), 404, "not_found")
    page = world.client("administrator").get("/no-such-page/")  # people still get a page
    assert page.status_code == 404 and page["Content-Type"].startswith("text/html")


def test_an_error_on_our_side_is_a_500_in_the_error_shape_and_says_nothing_of_it(
    world, monkeypatch
):
    from comanage.core import api_views

    def broken(self):  # type: ignore[no-untyped-def]
        raise RuntimeError("connection string postgres://secret@db")

    monkeypatch.setattr(api_views.OrganizationListView, "get_queryset", broken)
    client = token_client(world.users["executive"])
    client.raise_request_exception = False
    body = assert_error_shape(client.get("/api/v1/organizations/"), 500, "server_error")
    assert "secret" not in str(body) and "RuntimeError" not in str(body)


def test_a_request_django_refuses_before_any_view_is_a_400_in_the_error_shape(world, api):
    """Too many query parameters, or a host this server does not serve: Django refuses them
    before the API's handler runs, with a page for people unless told otherwise."""
    client = api("administrator")
    too_many = "&".join(f"f{i}=1" for i in range(1200))
    assert_error_shape(client.get(f"{JOBS}?{too_many}"), 400, "bad_request")
    assert_error_shape(client.get(JOBS, HTTP_HOST="evil.example"), 400, "bad_request")
    page = world.client("administrator").get("/o/riverside/dashboard/", HTTP_HOST="evil.example")
    assert page.status_code == 400 and page["Content-Type"].startswith("text/html")


def test_people_get_the_error_page_with_the_same_words():
    from django.test import RequestFactory

    from comanage.core.views import SERVER_ERROR_MESSAGE, server_error

    page = server_error(RequestFactory().get("/o/riverside/dashboard/"))
    assert page.status_code == 500 and page["Content-Type"].startswith("text/html")
    assert SERVER_ERROR_MESSAGE in page.content.decode()
