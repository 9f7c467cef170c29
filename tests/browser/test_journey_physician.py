"""A physician logs hours for a month and opens their statement; only their own data show."""

import re

import pytest
from playwright.sync_api import expect

from .conftest import BROWSER_B, axe_violations, shot, sign_in

pytestmark = [pytest.mark.browser, BROWSER_B]


def test_a_physician_logs_hours_and_opens_a_statement(page, e2e):
    sign_in(page, e2e, "physician@riverside.example")
    expect(page).to_have_url(re.compile(r"/o/riverside/me/$"))
    expect(page.get_by_role("heading", name="Welcome, Dr Adams")).to_be_visible()
    expect(page.get_by_text("Your time logs, last 12 months")).to_be_visible()
    expect(page.locator("main")).not_to_contain_text("Baker")
    assert axe_violations(page) == []
    shot(page, "journey-physician-home")

    # The month tile of a month not yet logged opens the time-log entry page for that month.
    page.locator("ol.months li.missing a, ol.months li.draft a").first.click()
    page.wait_for_url(re.compile(r"/portal/"))
    hours = page.locator("input[type=number][name^=hours_]")
    if hours.count() and hours.first.is_enabled():
        for i in range(hours.count()):
            hours.nth(i).fill("10")
        descriptions = page.locator("input[type=text][name^=desc_]")
        for i in range(descriptions.count()):
            descriptions.nth(i).fill("Pathway review and committee preparation")
        page.get_by_role("button", name="Save and submit").click()
        expect(page.get_by_role("status")).to_contain_text("submitted for approval")
    shot(page, "journey-physician-portal")
    assert axe_violations(page) == []

    page.goto(e2e.base_url + "/o/riverside/me/")
    statements = page.locator("section[aria-labelledby=st-h]")
    expect(statements.get_by_role("heading", name="Your statements")).to_be_visible()
    link = statements.get_by_role("link", name="PDF").first
    expect(link).to_be_visible()  # the demo has a statement for Dr Adams
    response = page.request.get(e2e.base_url + link.get_attribute("href"))
    assert response.status == 200
    assert response.headers["content-type"].startswith("application/pdf")
    assert page.console_errors == []
