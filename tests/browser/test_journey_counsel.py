"""Counsel returns a report with comments; the administrator resubmits it; counsel approves it
(with the second factor at signing when it is asked for)."""

import pytest

from .conftest import axe_violations, login, pass_step_up, shot

pytestmark = [pytest.mark.browser, pytest.mark.xdist_group("browser")]


def _submitted_section(page):  # type: ignore[no-untyped-def]
    return page.locator("main section.card").filter(has_text="Orthopedic").first


def test_counsel_returns_then_approves_a_report(page, browser, e2e):
    login(page, e2e, "counsel@riverside.example")
    assert "/adjudication/counsel/" in page.url, page.url
    assert page.get_by_role("heading", name="Reports awaiting legal review").is_visible()
    assert axe_violations(page) == []
    shot(page, "journey-counsel-queue")
    section = _submitted_section(page)
    report_url = section.get_by_role("link", name="Open the report").get_attribute("href")
    section.locator("textarea[name=comment][required]").fill(
        "Please attach the committee minutes for Q3 before approval.")
    section.get_by_role("button", name="Return to the administrator").click()
    page.wait_for_load_state("networkidle")
    pass_step_up(page, "counsel@riverside.example")
    assert page.locator(".messages li").first.is_visible()

    # The administrator sees it in the work queue, reviews and resubmits it.
    admin_context = browser.new_context(viewport={"width": 1360, "height": 900})
    admin = admin_context.new_page()
    login(admin, e2e, "administrator@riverside.example")
    assert "Address counsel's comments" in admin.locator("main").inner_text()
    admin.goto(e2e.base_url + report_url)
    admin.get_by_role("button", name="Start review").click()
    admin.wait_for_load_state("networkidle")
    admin.get_by_role("button", name="Submit to counsel").click()
    admin.wait_for_load_state("networkidle")
    admin_context.close()

    page.goto(e2e.base_url + "/o/riverside/adjudication/counsel/")
    section = _submitted_section(page)
    approve = section.get_by_role("button", name="Approve")
    if approve.is_disabled():
        pytest.fail("approval is blocked: " + section.locator(".messages").inner_text())
    approve.click()
    page.wait_for_load_state("networkidle")
    pass_step_up(page, "counsel@riverside.example")
    page.goto(e2e.base_url + report_url)
    assert "Approved by counsel" in page.locator("main").inner_text()
    shot(page, "journey-counsel-approved")
    assert page.console_errors == []
