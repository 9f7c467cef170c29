"""The SSO page's "test sign-in" runs a real authorization-code round trip against a small OIDC
provider started here, reports each step in plain words, signs nobody in, and never shows or
logs the client secret (issue 18)."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest
import requests
from django.urls import reverse

from comanage.core.models import BusinessEvent, OIDCProvider, User
from tests.core.fake_oidc import FakeOIDCProvider

ORG = "/o/riverside"
SECRET = "s3cr3t-value-never-shown"


@pytest.fixture
def idp() -> Iterator[FakeOIDCProvider]:
    with FakeOIDCProvider(client_secret=SECRET) as provider:
        yield provider


@pytest.fixture
def configured(world, idp):  # type: ignore[no-untyped-def]
    client = world.client("administrator")
    saved = client.post(
        f"{ORG}/people/sso/",
        {
            "issuer": idp.issuer,
            "client_id": idp.client_id,
            "client_secret": SECRET,
            "enabled": "on",
            "email_domains": "riverside.example",
        },
    )
    assert saved.status_code == 302, saved.content[:500]
    return client


def _test_sign_in(client, idp) -> str:  # type: ignore[no-untyped-def]
    start = client.post(f"{ORG}/people/sso/test/")
    assert start.status_code == 302
    location = start["Location"]
    if not location.startswith(idp.issuer):
        return client.get(f"{ORG}/people/sso/").content.decode()
    # The browser at the provider: it answers at once with a code for our callback.
    at_provider = requests.get(location, allow_redirects=False, timeout=5)
    assert at_provider.status_code == 302
    back = urlsplit(at_provider.headers["Location"])
    assert back.path == reverse("oidc_authentication_callback")
    done = client.get(f"{back.path}?{back.query}")
    assert done.status_code == 302 and done["Location"] == f"{ORG}/people/sso/"
    return client.get(f"{ORG}/people/sso/").content.decode()


def test_a_working_provider_passes_every_step_and_nobody_is_signed_in(
    world, idp, configured, caplog
):
    caplog.set_level(logging.DEBUG)
    user_before = configured.session["_auth_user_id"]
    page = _test_sign_in(configured, idp)
    assert "Test succeeded" in page
    for step in (
        "Discovery",
        "Redirect",
        "Token exchange",
        "ID token signature",
        "ID token issuer",
        "ID token audience",
        "E-mail",
    ):
        assert f"<strong>{step}</strong>" in page
    assert "Did not work" not in page
    assert "alice@riverside.example is within the organization" in page
    # The round trip really happened: the secret went to the token endpoint, with PKCE.
    assert idp.token_requests[-1]["client_secret"] == SECRET
    assert idp.token_requests[-1]["code_verifier"]
    # Nobody was signed in or created.
    assert configured.session["_auth_user_id"] == user_before
    assert not User.objects.filter(email="alice@riverside.example").exists()
    # Audited without the secret; never logged nor shown.
    with world.scope():
        event = BusinessEvent.objects.filter(organization=world.org, name="sso.tested").get()
    assert event.data["ok"] is True and SECRET not in str(event.data) + event.summary
    assert SECRET not in page
    assert SECRET not in caplog.text


@pytest.mark.parametrize(
    ("misbehaviour", "step", "words"),
    [
        ({"claims": {"aud": "another-client"}}, "ID token audience", "not this client"),
        ({"claims": {"iss": "https://evil.example"}}, "ID token issuer", "Issued by https://evil"),
        ({"sign_with_other_key": True}, "ID token signature", "does not verify"),
        ({"email": "alice@elsewhere.example"}, "E-mail", "not within the organization"),
        ({"token_error": "invalid_client"}, "Token exchange", "refused the client id or"),
    ],
)
def test_each_failure_is_said_in_plain_words(  # type: ignore[no-untyped-def]
    world, idp, configured, caplog, misbehaviour, step, words
):
    caplog.set_level(logging.DEBUG)
    for name, value in misbehaviour.items():
        setattr(idp, name, value)
    page = _test_sign_in(configured, idp)
    assert "Test failed" in page
    assert f"failed at “{step}”" in page
    assert words in page
    assert SECRET not in page and SECRET not in caplog.text


def test_a_wrong_stored_secret_is_reported_at_the_token_exchange(world, idp, configured):
    OIDCProvider.objects.filter(organization=world.org).update(client_secret="wrong")
    page = _test_sign_in(configured, idp)
    assert "failed at “Token exchange”" in page and "client secret" in page
    assert "wrong" not in page.split("Test sign-in", 1)[1].split("</div>", 1)[0].replace(
        "wrong codes", ""
    )


def test_an_unreachable_provider_fails_at_discovery(world, configured, idp):
    OIDCProvider.objects.filter(organization=world.org).update(issuer="http://127.0.0.1:9/")
    page = _test_sign_in(configured, idp)
    assert "Test failed" in page and "failed at “Discovery”" in page


def test_the_page_never_renders_the_secret(world, idp, configured):
    page = configured.get(f"{ORG}/people/sso/").content.decode()
    assert SECRET not in page
    assert 'name="client_secret"' in page and "A client secret is stored" in page


def test_only_administrators_of_the_organization_may_test(world, idp, configured):
    assert world.client("counsel").post(f"{ORG}/people/sso/test/").status_code == 403
    assert world.client("outsider").post(f"{ORG}/people/sso/test/").status_code == 404
    assert idp.token_requests == []
