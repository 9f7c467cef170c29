"""Every role signs in and lands on a working home page without serious accessibility issues."""

import re

import pytest
from playwright.sync_api import expect

from .conftest import BROWSER_A, axe_violations, login, shot, submit_credentials

pytestmark = [pytest.mark.browser, BROWSER_A]

ROLE_LOGINS = [
    ("administrator", "administrator@riverside.example"),
    ("executive", "executive@riverside.example"),
    ("counsel", "counsel@riverside.example"),
    ("ceo", "ceo@riverside.example"),
    ("physician", "physician@riverside.example"),
    ("auditor", "auditor@riverside.example"),
]


def test_the_live_server_and_its_worker_are_healthy(e2e):
    assert e2e.health["status"] == "ok", e2e.health
    assert e2e.health["checks"]["worker"]["ok"] is True


def test_the_login_page_is_accessible(page, e2e):
    page.goto(e2e.base_url + "/account/login/")
    expect(page.get_by_role("heading", name="Sign in to Comanage")).to_be_visible()
    assert axe_violations(page) == []


def test_a_wrong_password_is_refused_with_a_message(page, e2e):
    submit_credentials(page, e2e, "executive@riverside.example", "not-the-password")
    expect(page.locator(".errorlist")).to_be_visible()
    expect(page).to_have_url(re.compile(r"/account/login/"))


@pytest.mark.parametrize(("role", "email"), ROLE_LOGINS)
def test_each_role_lands_on_its_home_page(page, e2e, role, email):
    login(page, e2e, email)
    expect(page).to_have_url(re.compile(r"/o/riverside/"))
    expect(page.locator("main#content h1").first).to_be_visible()
    expect(page.locator("nav[aria-label=Main]")).to_be_visible()
    shot(page, f"home-{role}")
    violations = axe_violations(page)
    assert violations == [], violations
    assert page.console_errors == []


def test_an_outsider_cannot_reach_another_hospital(page, e2e):
    login(page, e2e, "executive@lakeview.example")
    response = page.goto(e2e.base_url + "/o/riverside/")
    assert response.status == 404
    expect(page.get_by_text("We couldn't find that page")).to_be_visible()
