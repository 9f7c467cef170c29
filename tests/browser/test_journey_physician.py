"""A physician logs hours for a month and opens their statement; only their own data show."""

import pytest

from .conftest import axe_violations, login, shot

pytestmark = [pytest.mark.browser, pytest.mark.xdist_group("browser")]


def test_a_physician_logs_hours_and_opens_a_statement(page, e2e):
    login(page, e2e, "physician@riverside.example")
    assert page.url.endswith("/o/riverside/me/"), page.url
    assert page.get_by_role("heading", name="Welcome, Dr Adams").is_visible()
    assert page.get_by_text("Your time logs, last 12 months").is_visible()
    assert "Baker" not in page.locator("main").inner_text()
    assert axe_violations(page) == []
    shot(page, "journey-physician-home")

    # The month tile of a month not yet logged opens the time-log entry page for that month.
    page.locator("ol.months li.missing a, ol.months li.draft a").first.click()
    page.wait_for_load_state("networkidle")
    assert "/portal/" in page.url
    hours = page.locator("input[type=number][name^=hours_]")
    if hours.count() and hours.first.is_enabled():
        for i in range(hours.count()):
            hours.nth(i).fill("10")
        descriptions = page.locator("input[type=text][name^=desc_]")
        for i in range(descriptions.count()):
            descriptions.nth(i).fill("Pathway review and committee preparation")
        page.get_by_role("button", name="Save and submit").click()
        page.wait_for_load_state("networkidle")
        assert page.locator(".messages li.success, .messages li").first.is_visible()
    shot(page, "journey-physician-portal")
    assert axe_violations(page) == []

    page.goto(e2e.base_url + "/o/riverside/me/")
    statements = page.locator("section[aria-labelledby=st-h]")
    assert statements.get_by_role("heading", name="Your statements").is_visible()
    link = statements.get_by_role("link", name="PDF").first
    assert link.is_visible(), "the demo should have a statement for Dr Adams"
    response = page.request.get(e2e.base_url + link.get_attribute("href"))
    assert response.status == 200
    assert response.headers["content-type"].startswith("application/pdf")
    assert page.console_errors == []
