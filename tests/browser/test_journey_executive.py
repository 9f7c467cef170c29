"""A hospital executive reads the dashboard: figures, charts with table views, one agreement
in depth, a CSV export; no serious accessibility issue."""

import re

import pytest
from playwright.sync_api import expect

from .conftest import BROWSER_B, axe_violations, shot, sign_in

pytestmark = [pytest.mark.browser, BROWSER_B]


def test_an_executive_reads_the_dashboard(page, e2e):
    sign_in(page, e2e, "executive@riverside.example")
    expect(page).to_have_url(re.compile(r"/o/riverside/dashboard/$"))
    expect(page.get_by_role("heading", name="Executive dashboard")).to_be_visible()
    kpis = page.locator("section.kpis")
    expect(kpis).to_contain_text("$147,776.01")  # example A gross savings
    expect(kpis).to_contain_text("$300,000.00")  # example C incentive earned
    table = page.locator("table.glance")
    orthopedic = table.get_by_role("link", name="Orthopedic Service Line Co-Management")
    cath_lab = table.get_by_role("link", name="Cardiac Cath Lab Shared Savings Programme")
    expect(orthopedic).to_be_visible()
    expect(cath_lab).to_be_visible()
    expect(page.locator(".chart svg[role=img]").nth(2)).to_be_visible()  # at least 3 charts
    page.locator("details.table-view summary").first.click()
    expect(page.locator("details.table-view[open] table").first).to_be_visible()
    assert axe_violations(page) == []
    shot(page, "journey-executive-dashboard")

    with page.expect_download() as download:
        page.get_by_role("link", name="Export CSV of the agreements table").click()
    assert download.value.suggested_filename.endswith(".csv")

    page.locator("#q").fill("cath lab")
    page.get_by_role("button", name="Search").click()
    page.wait_for_url(re.compile(r"[?&]q=cath"))
    expect(orthopedic).to_have_count(0)
    expect(cath_lab).to_be_visible()

    page.goto(e2e.base_url + "/o/riverside/dashboard/")
    page.get_by_role("link", name="Orthopedic Service Line Co-Management").first.click()
    expect(page.get_by_role("heading", name="Indicators against their cut-points")).to_be_visible()
    expect(page.locator("main")).to_contain_text("Surgical site infection")
    expect(page.locator(".chart svg[role=img]").nth(5)).to_be_visible()  # at least 6 charts
    expect(page.get_by_role("heading", name="Fixed fee against logged hours").first).to_be_visible()
    assert axe_violations(page) == []
    shot(page, "journey-executive-agreement")
    # Chromium logs the CSV download's navigation as a failed resource load; nothing else.
    assert page.console_errors == []
