"""Hardening: no-store on signed-in and API responses; the API schema and docs behind sign-in
in production; Swagger UI does not keep the token in localStorage."""

from __future__ import annotations

import subprocess
import sys

import pytest
from django_scopes import scopes_disabled

from comanage.core.models import ApiToken
from tests.security.test_hardening import ROOT, _production_env

pytestmark = pytest.mark.django_db


def _no_store(response) -> bool:  # type: ignore[no-untyped-def]
    return "no-store" in response.get("Cache-Control", "")


def _token(world) -> str:  # type: ignore[no-untyped-def]
    with scopes_disabled():
        _t, raw = ApiToken.issue(user=world.users["administrator"], name="no-store")
    return raw


def test_signed_in_pages_csv_and_pdf_are_not_stored(world):  # type: ignore[no-untyped-def]
    client = world.client("executive")
    for url in ("/o/riverside/agreements/", "/o/riverside/dashboard/agreements.csv"):
        response = client.get(url)
        assert response.status_code == 200, url
        assert _no_store(response), url
        assert "private" in response["Cache-Control"]
    assert (
        world.client("executive")
        .get("/o/riverside/dashboard/agreements.csv")["Content-Type"]
        .startswith("text/csv")
    )


def test_every_api_response_is_not_stored(world, client):  # type: ignore[no-untyped-def]
    ok = client.get("/api/v1/organizations/", HTTP_AUTHORIZATION=f"Bearer {_token(world)}")
    assert ok.status_code == 200 and _no_store(ok)
    refused = client.get("/api/v1/organizations/")
    assert refused.status_code == 401 and _no_store(refused)
    outsider = client.get(
        "/api/v1/organizations/lakeview/agreements/", HTTP_AUTHORIZATION=f"Bearer {_token(world)}"
    )
    assert outsider.status_code == 404 and _no_store(outsider)


def test_static_files_keep_their_caching_for_signed_in_users(world):  # type: ignore[no-untyped-def]
    response = world.client("administrator").get("/static/css/app.css")
    assert response.status_code == 200
    assert not _no_store(response)
    response.close()


def test_anonymous_public_pages_are_left_alone(client, db):  # type: ignore[no-untyped-def]
    response = client.get("/api/docs/assets/swagger-ui.css")
    assert response.status_code == 200 and "public" in response["Cache-Control"]
    response.close()


def test_schema_and_docs_need_sign_in_when_not_public(world, client, settings):  # type: ignore[no-untyped-def]
    settings.COMANAGE_API_DOCS_PUBLIC = False
    accept = {"HTTP_ACCEPT": "application/vnd.oai.openapi+json"}
    assert client.get("/api/schema/", **accept).status_code == 401
    page = client.get("/api/docs/")
    assert page.status_code == 302 and "/login" in page["Location"]
    assert client.get("/api/docs/?script=").status_code == 302
    # A session or a personal token reads them.
    signed_in = world.client("physician")
    assert signed_in.get("/api/schema/", **accept).status_code == 200
    assert signed_in.get("/api/docs/").status_code == 200
    token = client.get("/api/schema/", HTTP_AUTHORIZATION=f"Bearer {_token(world)}", **accept)
    assert token.status_code == 200


def test_schema_and_docs_are_open_when_public(client, settings, db):  # type: ignore[no-untyped-def]
    settings.COMANAGE_API_DOCS_PUBLIC = True
    assert (
        client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json").status_code
        == 200
    )
    assert client.get("/api/docs/").status_code == 200


def test_swagger_ui_does_not_persist_the_token(world):  # type: ignore[no-untyped-def]
    script = world.client("administrator").get("/api/docs/?script=").content.decode()
    assert '"persistAuthorization": false' in script
    assert '"persistAuthorization": true' not in script


def _setting(module: str, env: dict[str, str], name: str) -> str:
    code = (
        f"import django; django.setup(); from django.conf import settings; print(settings.{name})"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env={**env, "DJANGO_SETTINGS_MODULE": module},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.split()[-1]


def test_production_keeps_the_docs_behind_sign_in_and_local_opens_them():  # type: ignore[no-untyped-def]
    env = {k: v for k, v in _production_env().items() if k != "COMANAGE_API_DOCS_PUBLIC"}
    assert _setting("comanage.settings.production", env, "COMANAGE_API_DOCS_PUBLIC") == "False"
    assert _setting("comanage.settings.local", env, "COMANAGE_API_DOCS_PUBLIC") == "True"
