"""People, SSO and installation pages; the People API; what a removal or a deactivated
organization does to the next request (``comanage.core.people``, ``comanage.core.installation``)."""

from __future__ import annotations

import re
from io import StringIO
from unittest import mock

import pytest
from django.core import mail
from django.core.management import CommandError, call_command
from django.test import Client
from django_scopes import scopes_disabled

from comanage.core.models import BusinessEvent, Invitation, Membership, Organization, Role
from comanage.core.people import services
from tests import factories as f
from tests.api.conftest import token_client

ORG = "/o/riverside"


def _routes(world) -> list[tuple[str, str, dict]]:  # type: ignore[no-untyped-def]
    invitation, _raw = services.invitation_create(
        organization=world.org,
        email="pending@riverside.example",
        role="auditor",
        actor=world.users["administrator"],
    )
    counsel = world.memberships["counsel"].pk
    return [
        ("GET", f"{ORG}/people/", {}),
        ("GET", f"{ORG}/people/invite/", {}),
        ("POST", f"{ORG}/people/invite/", {"email": "x@riverside.example", "role": "auditor"}),
        ("GET", f"{ORG}/people/{counsel}/", {}),
        ("POST", f"{ORG}/people/{counsel}/", {"action": "role", "role": "executive"}),
        ("POST", f"{ORG}/people/{counsel}/", {"action": "deactivate"}),
        ("POST", f"{ORG}/people/{counsel}/", {"action": "remove"}),
        ("POST", f"{ORG}/people/invitations/{invitation.pk}/", {"action": "revoke"}),
        ("GET", f"{ORG}/people/sso/", {}),
        (
            "POST",
            f"{ORG}/people/sso/",
            {
                "issuer": "https://idp.example",
                "client_id": "c",
                "client_secret": "s",
                "enabled": "on",
            },
        ),
        ("POST", f"{ORG}/people/sso/test/", {}),
    ]


def _state() -> tuple:
    with scopes_disabled():
        return (
            list(Membership.objects.order_by("pk").values_list("pk", "role", "is_active")),
            list(Invitation.objects.order_by("pk").values_list("pk", "revoked_at")),
            BusinessEvent.objects.count(),
        )


@pytest.mark.parametrize("who", ["counsel", "executive", "physician", "ceo", "auditor"])
def test_other_roles_get_403_on_every_people_route_and_change_nothing(world, who) -> None:  # type: ignore[no-untyped-def]
    routes = _routes(world)
    client = world.client(who)
    before = _state()
    for method, url, data in routes:
        response = client.generic(method, url) if method == "GET" else client.post(url, data)
        assert response.status_code == 403, (method, url, response.status_code)
    assert _state() == before


def test_another_organizations_administrator_gets_404_everywhere(world) -> None:
    routes = _routes(world)
    client = world.client("outsider")
    before = _state()
    for method, url, data in routes:
        response = client.generic(method, url) if method == "GET" else client.post(url, data)
        assert response.status_code == 404, (method, url, response.status_code)
    assert _state() == before


def test_the_administrator_can_use_every_people_page(world) -> None:
    client = world.client("administrator")
    page = client.get(f"{ORG}/people/")
    assert page.status_code == 200
    html = page.content.decode()
    assert "counsel@riverside.example" in html and "Legal counsel" in html
    assert client.get(f"{ORG}/people/invite/").status_code == 200
    response = client.post(
        f"{ORG}/people/invite/", {"email": "new@riverside.example", "role": "executive"}
    )
    assert response.status_code == 302
    assert mail.outbox[-1].to == ["new@riverside.example"]
    member = world.memberships["counsel"]
    assert client.get(f"{ORG}/people/{member.pk}/").status_code == 200
    response = client.post(f"{ORG}/people/{member.pk}/", {"action": "role", "role": "ceo"})
    assert response.status_code == 302
    member.refresh_from_db()
    assert member.role == Role.CEO


def test_bad_input_on_the_pages_is_a_400_naming_the_problem(world) -> None:
    client = world.client("administrator")
    response = client.post(
        f"{ORG}/people/invite/", {"email": "counsel@riverside.example", "role": "executive"}
    )
    assert response.status_code == 400
    assert "already a member" in response.content.decode()
    admin = world.memberships["administrator"]
    response = client.post(f"{ORG}/people/{admin.pk}/", {"action": "remove"})
    assert response.status_code == 400
    assert "last administrator" in response.content.decode()
    assert Membership.objects.model._base_manager.filter(pk=admin.pk).exists()


def test_the_menu_shows_people_to_administrators_only(world) -> None:
    assert "People</a>" in world.client("administrator").get(f"{ORG}/audit/").content.decode()
    assert "People</a>" not in world.client("auditor").get(f"{ORG}/audit/").content.decode()


def test_the_auditor_sees_member_events_on_the_audit_page(world) -> None:
    services.membership_role_change(
        membership=world.memberships["counsel"],
        role="executive",
        actor=world.users["administrator"],
    )
    html = world.client("auditor").get(f"{ORG}/audit/").content.decode()
    assert "member.role_changed" in html and "counsel@riverside.example" in html


# --------------------------------------------------------------------------- the next request


def test_a_removed_members_next_request_is_refused_by_session_and_token(world) -> None:
    counsel = world.users["counsel"]
    browser = world.client("counsel")
    api = token_client(counsel)
    assert browser.get(f"{ORG}/audit/").status_code == 200
    assert api.get("/api/v1/organizations/").status_code == 200
    response = world.client("administrator").post(
        f"{ORG}/people/{world.memberships['counsel'].pk}/", {"action": "remove"}
    )
    assert response.status_code == 302
    response = browser.get(f"{ORG}/audit/")
    assert response.status_code == 302 and "/account/login/" in response["Location"]
    assert api.get("/api/v1/organizations/riverside/jobs/").status_code == 401
    assert api.get("/api/v1/organizations/").status_code == 401


def test_a_deactivated_members_next_request_is_refused(world) -> None:
    browser = world.client("executive")
    assert browser.get(f"{ORG}/audit/").status_code == 200
    services.membership_deactivate(
        membership=world.memberships["executive"], actor=world.users["administrator"]
    )
    response = browser.get(f"{ORG}/audit/")
    assert response.status_code == 302  # signed out
    browser.force_login(world.users["executive"])  # even with a fresh session: not a member
    assert browser.get(f"{ORG}/audit/").status_code == 404


def test_a_deactivated_organization_refuses_sign_in_tokens_and_sessions(world) -> None:
    from comanage.core.installation.services import (
        organization_deactivate,
        organization_reactivate,
    )

    executive = world.users["executive"]
    browser = world.client("executive")
    api = token_client(executive)
    assert browser.get(f"{ORG}/audit/").status_code == 200  # the membership cache is warm
    organization_deactivate(organization=world.org, actor=None)
    assert browser.get(f"{ORG}/audit/").status_code in (302, 404)
    assert api.get("/api/v1/organizations/riverside/jobs/").status_code == 401
    login = Client().post(
        "/account/login/", {"username": executive.email, "password": "correct horse battery"}
    )
    assert login.status_code == 200 and "deactivated" in login.content.decode()
    # A member of another, active organization keeps it and only loses this one.
    outsider = world.client("outsider")
    Membership.objects.model._base_manager.create(
        organization=world.org, user=world.outsider, role=Role.AUDITOR
    )
    assert outsider.get("/o/lakeview/audit/").status_code == 200
    assert outsider.get(f"{ORG}/audit/").status_code == 404
    organization_reactivate(organization=world.org, actor=None)
    assert outsider.get(f"{ORG}/audit/").status_code == 200
    ok = Client()
    assert (
        ok.post(
            "/account/login/", {"username": executive.email, "password": "correct horse battery"}
        ).status_code
        == 302
    )


# --------------------------------------------------------------------------- invitation link


def _link_token() -> str:
    return re.search(r"/account/invitations/([^/\s]+)/", mail.outbox[-1].body).group(1)


def test_the_invitation_link_sets_a_password_and_signs_in(world) -> None:
    services.invitation_create(
        organization=world.org,
        email="nia@riverside.example",
        role="executive",
        actor=world.users["administrator"],
    )
    url = f"/account/invitations/{_link_token()}/"
    client = Client()
    assert client.get(url).status_code == 200
    response = client.post(
        url,
        {
            "first_name": "Nia",
            "last_name": "New",
            "password": "a long enough passphrase 9",
            "password_again": "a long enough passphrase 9",
        },
    )
    assert response.status_code == 302 and response["Location"] == f"{ORG}/"
    assert client.get(f"{ORG}/audit/").status_code == 200
    again = Client().get(url)
    assert again.status_code == 400 and "already used" in again.content.decode()


def test_an_invited_administrator_is_sent_to_two_factor_enrolment(world, settings) -> None:
    settings.COMANAGE_REQUIRE_2FA = True
    services.invitation_create(
        organization=world.org,
        email="ada@riverside.example",
        role="administrator",
        actor=world.users["administrator"],
    )
    client = Client()
    client.post(
        f"/account/invitations/{_link_token()}/",
        {
            "first_name": "Ada",
            "last_name": "Admin",
            "password": "a long enough passphrase 9",
            "password_again": "a long enough passphrase 9",
        },
    )
    response = client.get(f"{ORG}/people/")
    assert response.status_code == 302 and "/account/security/2fa/setup/" in response["Location"]


def test_an_unknown_link_is_a_clear_400(db) -> None:
    response = Client().get("/account/invitations/inv_nonsense/")
    assert response.status_code == 400 and "not valid" in response.content.decode()


# --------------------------------------------------------------------------- SSO page


def test_the_sso_page_never_shows_the_secret_and_tests_the_provider(world) -> None:
    client = world.client("administrator")
    response = client.post(
        f"{ORG}/people/sso/",
        {
            "issuer": "https://idp.riverside.example",
            "client_id": "comanage",
            "client_secret": "top-secret-value",
            "enabled": "on",
            "email_domains": "riverside.example",
        },
    )
    assert response.status_code == 302
    page = client.get(f"{ORG}/people/sso/").content.decode()
    assert "top-secret-value" not in page and "https://idp.riverside.example" in page
    document = {
        "issuer": "https://idp.riverside.example",
        "authorization_endpoint": "https://idp.riverside.example/auth",
        "token_endpoint": "https://idp.riverside.example/token",
        "userinfo_endpoint": "https://idp.riverside.example/userinfo",
        "jwks_uri": "https://idp.riverside.example/jwks",
    }
    answer = mock.Mock(json=mock.Mock(return_value=document), raise_for_status=mock.Mock())
    with mock.patch("comanage.core.security.oidc.requests.get", return_value=answer):
        started = client.post(f"{ORG}/people/sso/test/")
    # The test sign-in goes to the provider (tests/core/test_sso_test_sign_in.py follows it).
    assert started.status_code == 302
    assert started["Location"].startswith("https://idp.riverside.example/auth?")
    assert "top-secret-value" not in started["Location"]
    import requests

    from comanage.core.models import OIDCProvider

    client.post(
        f"{ORG}/people/sso/",
        {
            "issuer": "https://other.example",
            "client_id": "comanage",
            "enabled": "on",
            "email_domains": "riverside.example",
        },
    )
    assert OIDCProvider.objects.get(organization=world.org).client_secret == "top-secret-value"
    with mock.patch(
        "comanage.core.security.oidc.requests.get", side_effect=requests.ConnectionError("down")
    ):
        client.post(f"{ORG}/people/sso/test/")
    page = client.get(f"{ORG}/people/sso/").content.decode()
    assert "Test failed" in page and "Cannot read" in page


# --------------------------------------------------------------------------- API


def test_the_api_lists_invites_changes_roles_and_deactivates(world) -> None:
    api = token_client(world.users["administrator"])
    base = "/api/v1/organizations/riverside"
    listed = api.get(f"{base}/members/")
    assert listed.status_code == 200
    emails = {row["email"] for row in listed.json()["results"]}
    assert "counsel@riverside.example" in emails
    created = api.post(
        f"{base}/invitations/", {"email": "api@riverside.example", "role": "auditor"}, format="json"
    )
    assert created.status_code == 201 and created.json()["status"] == "pending"
    counsel = world.memberships["counsel"].pk
    changed = api.post(f"{base}/members/{counsel}/role/", {"role": "executive"}, format="json")
    assert changed.status_code == 200 and changed.json()["role"] == "executive"
    gone = api.post(f"{base}/members/{counsel}/deactivate/", {}, format="json")
    assert gone.status_code == 200 and gone.json()["is_active"] is False


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"email": "counsel@riverside.example", "role": "auditor"}, "email"),
        ({"email": "z@riverside.example", "role": "wizard"}, "role"),
        ({"email": "z@riverside.example", "role": "physician", "npi": "1"}, "npi"),
        ({"role": "auditor"}, "email"),
    ],
)
def test_api_bad_invitations_are_400_naming_the_field(world, body, field) -> None:  # type: ignore[no-untyped-def]
    api = token_client(world.users["administrator"])
    before = _state()
    response = api.post("/api/v1/organizations/riverside/invitations/", body, format="json")
    assert response.status_code == 400
    assert [e["field"] for e in response.json()["errors"]] == [field]
    assert _state() == before


def test_api_last_administrator_is_a_400(world) -> None:
    api = token_client(world.users["administrator"])
    admin = world.memberships["administrator"].pk
    response = api.delete(f"/api/v1/organizations/riverside/members/{admin}/")
    assert response.status_code == 400
    assert response.json()["errors"][0]["field"] == "membership"


@pytest.mark.parametrize("who", ["counsel", "executive", "physician"])
def test_api_other_roles_get_403(world, who) -> None:  # type: ignore[no-untyped-def]
    api = token_client(world.users[who])
    base = "/api/v1/organizations/riverside"
    counsel = world.memberships["counsel"].pk
    assert api.get(f"{base}/members/").status_code == 403
    assert (
        api.post(
            f"{base}/invitations/", {"email": "a@b.example", "role": "auditor"}, format="json"
        ).status_code
        == 403
    )
    assert (
        api.post(f"{base}/members/{counsel}/role/", {"role": "ceo"}, format="json").status_code
        == 403
    )
    assert api.delete(f"{base}/members/{counsel}/").status_code == 403


def test_api_outsider_gets_404(world) -> None:
    api = token_client(world.outsider)
    base = "/api/v1/organizations/riverside"
    counsel = world.memberships["counsel"].pk
    assert api.get(f"{base}/members/").status_code == 404
    assert api.post(f"{base}/members/{counsel}/deactivate/", {}, format="json").status_code == 404


# --------------------------------------------------------------------------- installation


def test_organization_create_command_creates_and_invites(db) -> None:
    out = StringIO()
    call_command(
        "organization_create",
        "--name",
        "Harbor General Hospital",
        "--slug",
        "harbor",
        "--admin-email",
        "Chief@Harbor.example",
        "--short-name",
        "Harbor",
        "--time-zone",
        "America/Chicago",
        "--email-domains",
        "harbor.example",
        stdout=out,
    )
    organization = Organization.objects.get(slug="harbor")
    assert (organization.short_name, organization.time_zone, organization.email_domains) == (
        "Harbor",
        "America/Chicago",
        "harbor.example",
    )
    assert mail.outbox[-1].to == ["chief@harbor.example"]
    assert "/account/invitations/" in out.getvalue()
    with scopes_disabled():
        invitation = Invitation.objects.get(organization=organization)
        assert invitation.role == Role.ADMINISTRATOR
        assert BusinessEvent.objects.filter(
            organization=organization, name="organization.created"
        ).exists()


def test_organization_create_command_refuses_bad_input_and_changes_nothing(db) -> None:
    f.OrganizationFactory(slug="harbor")
    with pytest.raises(CommandError, match="--slug"):
        call_command(
            "organization_create",
            "--name",
            "Harbor",
            "--slug",
            "harbor",
            "--admin-email",
            "a@harbor.example",
        )
    with pytest.raises(CommandError, match="--time-zone"):
        call_command(
            "organization_create",
            "--name",
            "Bay",
            "--slug",
            "bay",
            "--admin-email",
            "a@bay.example",
            "--time-zone",
            "Mars/Olympus",
        )
    with pytest.raises(CommandError, match="--admin-email"):
        call_command(
            "organization_create",
            "--name",
            "Bay",
            "--slug",
            "bay",
            "--admin-email",
            "not-an-address",
        )
    assert not Organization.objects.filter(slug="bay").exists()
    assert mail.outbox == []


def test_installation_pages_are_for_installation_staff_only(world) -> None:
    world.client("administrator").get("/installation/organizations/")
    assert world.client("administrator").get("/installation/organizations/").status_code == 403
    staff = f.UserFactory(email="ops@installation.example", is_installation_admin=True)
    client = Client()
    client.force_login(staff)
    assert client.get("/installation/organizations/").status_code == 200
    response = client.post(
        "/installation/organizations/",
        {
            "name": "Bay Clinic",
            "slug": "bay",
            "time_zone": "America/Chicago",
            "admin_email": "boss@bay.example",
            "primary_colour": "#123456",
            "accent_colour": "#654321",
        },
    )
    assert response.status_code == 302
    assert Organization.objects.get(slug="bay").primary_colour == "#123456"
    response = client.post("/installation/organizations/riverside/", {"action": "deactivate"})
    assert response.status_code == 302
    assert not Organization.objects.get(slug="riverside").is_active
    with scopes_disabled():
        event = BusinessEvent.objects.get(name="organization.deactivated")
    assert event.actor == staff
