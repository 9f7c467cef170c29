import json

import pytest
from django.urls import reverse

from comanage.core.exports import csv_text, neutralise
from comanage.core.permissions import PERMISSION_TABLE, membership_can


def test_healthz_reports_database_broker_and_worker(client, db):
    response = client.get("/healthz")
    body = json.loads(response.content)
    assert set(body["checks"]) == {"database", "broker", "worker"}
    assert body["checks"]["database"]["ok"] is True
    assert response.status_code in (200, 503)
    assert (response.status_code == 200) == all(c["ok"] for c in body["checks"].values())


def test_login_page_renders(client, db):
    response = client.get(reverse("login"))
    assert response.status_code == 200
    assert b"Sign in" in response.content


def test_a_user_in_several_organizations_chooses_one(world):
    from tests.factories import MembershipFactory

    MembershipFactory(organization=world.other_org, user=world.users["administrator"])
    response = world.client("administrator").get("/")
    assert response.status_code == 200
    assert b"Riverside Medical Center" in response.content
    assert b"Lakeview Health" in response.content


def test_a_user_in_one_organization_goes_straight_there(world):
    response = world.client("counsel").get("/")
    assert response.status_code == 302
    assert response["Location"] == f"/o/{world.org.slug}/"


def test_security_headers_forbid_inline_script(client, db):
    response = client.get(reverse("login"))
    csp = response["Content-Security-Policy"]
    assert "script-src 'self'" in csp
    assert "unsafe-inline" not in csp.split("script-src")[1].split(";")[0]


def test_exported_csv_neutralises_formulas():
    assert neutralise("=cmd|' /C calc'!A0") == "'=cmd|' /C calc'!A0"
    assert neutralise("-12.50") == "-12.50"
    assert neutralise("@SUM(A1)") == "'@SUM(A1)"
    assert "'=1+1" in csv_text(["a"], [["=1+1"]])


@pytest.mark.parametrize(
    ("role", "permission", "allowed"),
    [
        ("administrator", "agreement.edit", True),
        ("administrator", "report.approve", False),
        ("counsel", "report.approve", True),
        ("counsel", "agreement.edit", False),
        ("counsel", "savings.edit", False),
        ("ceo", "report.authorise", True),
        ("ceo", "report.approve", False),
        ("executive", "agreement.view", True),
        ("executive", "agreement.edit", False),
        ("executive", "report.approve", False),
        ("physician", "fmv.view", False),
        ("physician", "report.view", False),
        ("auditor", "audit.view", True),
        ("auditor", "agreement.edit", False),
    ],
)
def test_role_matrix_in_the_permission_table(world, role, permission, allowed):
    assert membership_can(world.memberships[role], permission) is allowed


def test_a_physician_sees_only_their_own_records(world):
    membership = world.memberships["physician"]
    assert membership_can(membership, "statement.view", world.physician)
    assert not membership_can(membership, "statement.view", world.other_physician)


def test_only_administrators_edit_and_only_counsel_approves():
    for name, (roles, own) in PERMISSION_TABLE.items():
        if name.endswith((".edit", ".run", ".import", ".prepare", ".record")):
            assert roles <= {"administrator"}, name
        if name == "report.approve":
            assert roles == {"counsel"} and not own
        if name == "report.authorise":
            assert roles == {"ceo"} and not own


def test_an_active_session_is_refreshed_at_most_once_a_minute(world):
    import datetime as dt

    import time_machine
    from django.contrib.sessions.models import Session

    client = world.client("executive")
    start = dt.datetime.now(tz=dt.UTC)
    with time_machine.travel(start, tick=False) as clock:
        client.get(f"/o/{world.org.slug}/")
        key = client.session.session_key
        first = Session.objects.get(session_key=key).expire_date
        clock.shift(dt.timedelta(seconds=30))
        client.get(f"/o/{world.org.slug}/")
        assert Session.objects.get(session_key=key).expire_date == first  # not written
        clock.shift(dt.timedelta(seconds=40))
        client.get(f"/o/{world.org.slug}/")
        assert Session.objects.get(session_key=key).expire_date > first  # slid forward
