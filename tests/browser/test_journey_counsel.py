"""Counsel returns a report with comments; the administrator resubmits it; counsel approves it
(with the second factor at signing when it is asked for)."""

import re

import pytest
from playwright.sync_api import expect

from .conftest import BROWSER_B, WAIT_MS, axe_violations, login, pass_step_up, shot, sign_in

pytestmark = [pytest.mark.browser, BROWSER_B]


def _submitted_section(page):  # type: ignore[no-untyped-def]
    return page.locator("main section.card").filter(has_text="Orthopedic").first


def test_counsel_returns_then_approves_a_report(page, browser, e2e):
    # A fresh session: approval needs the report opened in this session, and the page crawl may
    # have opened it in an earlier one.
    login(page, e2e, "counsel@riverside.example")
    expect(page).to_have_url(re.compile(r"/adjudication/counsel/"))
    expect(page.get_by_role("heading", name="Reports awaiting legal review")).to_be_visible()
    assert axe_violations(page) == []
    shot(page, "journey-counsel-queue")
    section = _submitted_section(page)
    report_url = section.get_by_role("link", name="Open the report").get_attribute("href")
    section.locator("textarea[name=comment][required]").fill(
        "Please attach the committee minutes for Q3 before approval."
    )
    # Returning is not a signature: no fresh code is asked for.
    section.get_by_role("button", name="Return to the administrator").click()
    expect(page.get_by_role("status")).to_contain_text("the report is now returned")

    # The administrator sees it in the work queue, reviews and resubmits it.
    admin_context = browser.new_context(viewport={"width": 1360, "height": 900})
    admin = admin_context.new_page()
    admin.set_default_timeout(WAIT_MS)
    sign_in(admin, e2e, "administrator@riverside.example")
    expect(admin.locator("main")).to_contain_text("Address counsel's comments")
    admin.goto(e2e.base_url + report_url)
    admin.get_by_role("button", name="Start review").click()
    expect(admin.get_by_role("status")).to_contain_text("the report is now in review")
    admin.get_by_role("button", name="Submit to counsel").click()
    expect(admin.get_by_role("status")).to_contain_text("the report is now submitted to counsel")
    admin_context.close()

    # Counsel approves only a report opened in this session: open it, then come back.
    page.goto(e2e.base_url + "/o/riverside/adjudication/counsel/")
    section = _submitted_section(page)
    expect(section).to_contain_text("before approving it")
    page.goto(e2e.base_url + report_url)
    page.goto(e2e.base_url + "/o/riverside/adjudication/counsel/")
    section = _submitted_section(page)
    section.get_by_label(re.compile("I have read the report and confirm: Approve")).check()
    approve = section.get_by_role("button", name="Approve")
    if approve.is_disabled():
        pytest.fail("approval is blocked: " + section.locator(".messages").inner_text())
    approve.click()
    pass_step_up(page, "counsel@riverside.example")
    expect(page.get_by_role("status")).to_contain_text("the report is now approved by counsel")
    page.goto(e2e.base_url + report_url)
    expect(page.locator("main")).to_contain_text("Approved by counsel")
    shot(page, "journey-counsel-approved")
    assert page.console_errors == []
