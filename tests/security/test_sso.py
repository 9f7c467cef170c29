"""Single sign-on against a real OpenID Connect provider (panva/oidc-provider under node).

The whole authorization-code flow runs over HTTP: Comanage's sign-in page → the provider's
authorization endpoint and login form → the callback → token endpoint, JWKS, signed ID token,
userinfo → a Comanage session. Nothing is mocked.
"""

from __future__ import annotations

import re
from html import unescape
from urllib.parse import urljoin, urlparse

import pytest
import requests
from django_scopes import scopes_disabled

from comanage.core.models import Membership, OIDCProvider, User
from tests import factories as f

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def sso_world(world, oidc_server):  # type: ignore[no-untyped-def]
    world.org.email_domains = "riverside.example, riverside-health.org"
    world.org.save()
    OIDCProvider.objects.create(
        organization=world.org,
        name="Riverside SSO",
        issuer=oidc_server.issuer,
        client_id=oidc_server.client_id,
        client_secret=oidc_server.client_secret,
    )
    return world


def sso_sign_in(
    base_url: str, typed_email: str, provider_login: str | None = None
) -> tuple[requests.Session, requests.Response]:
    """Type the e-mail on Comanage's page, choose SSO, sign in at the provider, come back."""
    browser = requests.Session()
    page = browser.get(f"{base_url}/account/login/", timeout=10)
    assert page.status_code == 200
    assert "Sign in with your hospital" in page.text
    response = browser.post(
        f"{base_url}/account/login/",
        data={
            "csrfmiddlewaretoken": browser.cookies["csrftoken"],
            "username": typed_email,
            "sso": "1",
            "next": "",
        },
        headers={"Referer": f"{base_url}/account/login/"},
        timeout=10,
    )
    assert response.status_code == 200, response.text[:500]
    form = re.search(r'<form[^>]*action="([^"]+)"[^>]*method="post"', response.text)
    if form is None or 'name="login"' not in response.text:
        return browser, response  # Comanage answered without going to the provider
    # At the provider's own sign-in form now.
    assert urlparse(response.url).port != urlparse(base_url).port
    response = browser.post(
        urljoin(response.url, unescape(form.group(1))),
        data={"prompt": "login", "login": provider_login or typed_email, "password": "any"},
        timeout=10,
    )
    return browser, response


def test_a_member_signs_in_through_their_hospitals_provider(sso_world, live_server):
    browser, response = sso_sign_in(live_server.url, "counsel@riverside.example")
    assert response.status_code == 200, response.text[:500]
    assert response.url.startswith(f"{live_server.url}/o/riverside/")
    assert "Counsel Riverside" in response.text  # the signed-in user's name in the top bar
    # The Comanage session is real: another organization page opens without signing in again.
    assert browser.get(f"{live_server.url}/o/riverside/audit/", timeout=10).status_code == 200
    assert browser.get(f"{live_server.url}/o/lakeview/", timeout=10).status_code == 404


def test_routing_is_by_the_email_domain_and_is_case_insensitive(sso_world, live_server):
    user = f.UserFactory(email="exec2@riverside-health.org")
    f.MembershipFactory(organization=sso_world.org, user=user, role="executive")
    _, response = sso_sign_in(
        live_server.url, "Exec2@Riverside-Health.org", provider_login="exec2@riverside-health.org"
    )
    assert response.url.startswith(f"{live_server.url}/o/riverside/")


def test_a_person_without_a_membership_is_refused_and_none_is_created(sso_world, live_server):
    f.UserFactory(email="visitor@riverside.example")  # has an account, no membership
    browser, response = sso_sign_in(live_server.url, "visitor@riverside.example")
    assert response.url == f"{live_server.url}/account/login/"
    assert "has no access to Riverside Medical Center" in unescape(response.text)
    with scopes_disabled():
        assert not Membership.objects.filter(user__email="visitor@riverside.example").exists()
    # Not signed in.
    home = browser.get(f"{live_server.url}/", timeout=10)
    assert home.url.startswith(f"{live_server.url}/account/login/")


def test_an_unknown_person_is_refused_and_no_user_is_created(sso_world, live_server):
    _, response = sso_sign_in(live_server.url, "newcomer@riverside.example")
    assert response.url == f"{live_server.url}/account/login/"
    assert "has no access to Riverside Medical Center" in unescape(response.text)
    assert not User.objects.filter(email="newcomer@riverside.example").exists()


def test_a_membership_of_another_organization_does_not_count(sso_world, live_server):
    user = f.UserFactory(email="roamer@riverside.example")
    f.MembershipFactory(organization=sso_world.other_org, user=user, role="executive")
    _, response = sso_sign_in(live_server.url, "roamer@riverside.example")
    assert response.url == f"{live_server.url}/account/login/"
    assert "has no access to Riverside Medical Center" in unescape(response.text)


def test_a_provider_cannot_sign_in_an_address_outside_its_organizations_domains(
    sso_world, live_server
):
    # The hospital's provider asserts the e-mail of Lakeview's administrator (a real user with a
    # real membership elsewhere): refused, whatever the provider says.
    _, response = sso_sign_in(
        live_server.url, "counsel@riverside.example", provider_login="admin@lakeview.example"
    )
    assert response.url == f"{live_server.url}/account/login/"
    assert "admin@lakeview.example is not an address of Riverside" in unescape(response.text)


def test_a_domain_without_sso_gets_a_clear_message(sso_world, live_server):
    _, response = sso_sign_in(live_server.url, "someone@elsewhere.example")
    assert "No single sign-on is set up" in unescape(response.text)
    assert urlparse(response.url).port == urlparse(live_server.url).port


def test_a_disabled_provider_is_not_offered(sso_world, live_server):
    OIDCProvider.objects.update(enabled=False)
    page = requests.get(f"{live_server.url}/account/login/", timeout=10)
    assert "Sign in with your hospital" not in page.text


def test_sso_does_not_bypass_two_factor_for_counsel(sso_world, live_server, settings):
    settings.COMANAGE_REQUIRE_2FA = True
    _, response = sso_sign_in(live_server.url, "counsel@riverside.example")
    assert response.url.startswith(f"{live_server.url}/account/security/2fa/setup/")
