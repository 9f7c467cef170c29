"""A hospital executive reads the dashboard: figures, charts with table views, one agreement
in depth, a CSV export; no serious accessibility issue."""

import pytest

from .conftest import axe_violations, login, shot

pytestmark = [pytest.mark.browser, pytest.mark.xdist_group("browser")]


def test_an_executive_reads_the_dashboard(page, e2e):
    login(page, e2e, "executive@riverside.example")
    assert page.url.endswith("/o/riverside/dashboard/"), page.url
    assert page.get_by_role("heading", name="Executive dashboard").is_visible()
    kpis = page.locator("section.kpis")
    assert "$147,776.01" in kpis.inner_text()  # example A gross savings
    assert "$300,000.00" in kpis.inner_text()  # example C incentive earned
    table = page.locator("table.glance")
    assert table.get_by_role("link", name="Orthopedic Service Line Co-Management").is_visible()
    assert table.get_by_role("link", name="Cardiac Cath Lab Shared Savings Programme").is_visible()
    assert page.locator(".chart svg[role=img]").count() >= 3
    page.locator("details.table-view summary").first.click()
    assert page.locator("details.table-view[open] table").first.is_visible()
    assert axe_violations(page) == []
    shot(page, "journey-executive-dashboard")

    with page.expect_download() as download:
        page.get_by_role("link", name="CSV export of the agreements table").click()
    assert download.value.suggested_filename.endswith(".csv")

    page.locator("#q").fill("cath lab")
    page.get_by_role("button", name="Search").click()
    assert table.get_by_role("link", name="Orthopedic Service Line Co-Management").count() == 0

    page.goto(e2e.base_url + "/o/riverside/dashboard/")
    page.get_by_role("link", name="Orthopedic Service Line Co-Management").first.click()
    assert page.get_by_role("heading", name="Indicators against their cut-points").is_visible()
    assert "Surgical site infection" in page.locator("main").inner_text()
    assert page.locator(".chart svg[role=img]").count() >= 6
    assert page.get_by_role("heading", name="Fixed fee against logged hours").first.is_visible()
    assert axe_violations(page) == []
    shot(page, "journey-executive-agreement")
    # Chromium logs the CSV download's navigation as a failed resource load; nothing else.
    assert page.console_errors == []
