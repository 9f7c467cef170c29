"""The cross-app pages: who may open them, tenant isolation, what they show, CSV exports."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.django_db

PAGES = {
    "executive_dashboard": "/o/riverside/dashboard/",
    "executive_dashboard_csv": "/o/riverside/dashboard/agreements.csv",
    "admin_workspace": "/o/riverside/workspace/",
    "admin_workspace_csv": "/o/riverside/workspace/flags.csv",
    "physician_home": "/o/riverside/me/",
    "physician_home_csv": "/o/riverside/me/timelogs.csv",
}
# page -> roles that get 200 (every other member of the organization gets 403)
ALLOWED = {
    "executive_dashboard": {"administrator", "executive", "counsel", "ceo", "auditor"},
    "executive_dashboard_csv": {"administrator", "executive", "counsel", "ceo", "auditor"},
    "admin_workspace": {"administrator"},
    "admin_workspace_csv": {"administrator"},
    "physician_home": {"administrator", "executive", "counsel", "ceo", "auditor", "physician"},
    # statement.view is held by every reader; others have no physician record, so their
    # personal tables are empty (like the practices list and the API's filter_own)
    "physician_home_csv": {"administrator", "executive", "counsel", "ceo", "auditor", "physician"},
}
ROLES = ["administrator", "executive", "counsel", "ceo", "physician", "auditor"]


@pytest.mark.parametrize("page", list(PAGES))
@pytest.mark.parametrize("role", ROLES)
def test_each_role_gets_what_the_permission_table_allows(world, page, role):
    response = world.client(role).get(PAGES[page])
    if role in ALLOWED[page]:
        assert response.status_code == 200, response.content[:500]
    else:
        assert response.status_code == 403


def test_a_non_physicians_personal_tables_are_empty(world):
    body = world.client("executive").get(PAGES["physician_home_csv"]).content.decode()
    assert len(body.strip().splitlines()) == 1  # the header only


@pytest.mark.parametrize("page", list(PAGES))
def test_an_outsider_gets_404_on_every_page(world, page):
    assert world.client("outsider").get(PAGES[page]).status_code == 404


@pytest.mark.parametrize("page", list(PAGES))
def test_anonymous_users_are_sent_to_sign_in(world, page):
    response = world.client("anonymous").get(PAGES[page])
    assert response.status_code == 302
    assert "/account/login/" in response["Location"]


def test_an_agreement_of_another_hospital_is_404_on_the_agreement_dashboard(world):
    from django_scopes import scope

    from tests import factories as f

    with scope(organization=world.other_org):
        other = f.AgreementFactory(organization=world.other_org)
    response = world.client("executive").get(f"/o/riverside/dashboard/agreements/{other.pk}/")
    assert response.status_code == 404
    assert (
        world.client("outsider").get(f"/o/lakeview/dashboard/agreements/{other.pk}/").status_code
        == 200
    )


def test_unknown_csv_tables_are_404(world):
    assert world.client("administrator").get("/o/riverside/workspace/nope.csv").status_code == 404


def test_the_menu_shows_each_role_its_own_home(world):
    admin = world.client("administrator").get("/o/riverside/dashboard/").content.decode()
    assert "Work queue" in admin and "Executive dashboard" in admin
    assert "Counsel queue" not in admin
    executive = world.client("executive").get("/o/riverside/dashboard/").content.decode()
    assert "Work queue" not in executive and "Executive dashboard" in executive
    physician = world.client("physician").get("/o/riverside/me/").content.decode()
    assert "My home" in physician and "Executive dashboard" not in physician


def test_each_role_lands_on_its_workspace(world):
    assert world.client("executive").get("/o/riverside/")["Location"].endswith("/dashboard/")
    assert world.client("administrator").get("/o/riverside/")["Location"].endswith("/workspace/")
    assert world.client("physician").get("/o/riverside/")["Location"].endswith("/me/")
