"""An administrator takes a new co-management agreement from nothing to active through the
guided setup, at 1440 and 390 px: every step a form, Cancel goes back to the checklist without
saving, the checklist's "Continue" resumes where they were, and the last step activates.

Every page visited is checked as the page-quality walk checks it (no template syntax or codes
in the text, nothing wider than the window, chart text at least 11 px) and by axe-core; a
screenshot of a step with a problem goes to ``test-artifacts/screenshots/setup/``."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from playwright.sync_api import expect

from .conftest import ALL_SHOTS, ARTIFACTS, BROWSER_B, axe_violations, page_problems, sign_in

pytestmark = [pytest.mark.browser, BROWSER_B]


def _check(page, label: str, problems: list[str]) -> None:  # type: ignore[no-untyped-def]
    found = page_problems(page, label)
    found += [f"{label}: axe {v['id']} {v['nodes']}" for v in axe_violations(page)]
    if found or ALL_SHOTS:
        folder = ARTIFACTS / "setup"
        folder.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(folder / f"{label}.png"), full_page=True)
    problems.extend(found)


def _submit(page, name: str) -> None:  # type: ignore[no-untyped-def]
    page.locator("main form").get_by_role("button", name=name).click()


@pytest.mark.parametrize("width", [1440, 390])
def test_an_administrator_takes_an_agreement_from_nothing_to_active(page, e2e, width):
    page.set_viewport_size({"width": width, "height": 900})
    sign_in(page, e2e, "administrator@riverside.example")
    problems: list[str] = []
    year = dt.datetime.now(tz=dt.UTC).date().year + 1
    name = f"Spine Co-Management {width}"

    page.goto(e2e.base_url + "/o/riverside/agreements/new/")
    page.select_option("#id_kind", "co_management")
    page.fill("#id_name", name)
    page.select_option("#id_practice", index=1)
    page.select_option("#id_service_line", "orthopedics")
    page.fill("#id_term_start", f"{year}-01-01")
    page.fill("#id_term_end", f"{year + 1}-12-31")
    page.locator("main form button[type=submit]").click()

    # FMV opinion: a form on the step; the step stays open to add another.
    page.wait_for_url(re.compile(r"/setup/fmv/$"))
    expect(page.get_by_text("Add the FMV opinion.")).to_be_visible()
    _check(page, f"{width}-1-fmv", problems)
    page.fill("#id_valuator", "Valuation Partners LLC")
    page.fill("#id_issue_date", f"{year - 1}-11-01")
    page.fill("#id_effective_start", f"{year}-01-01")
    page.fill("#id_effective_end", f"{year + 1}-12-31")
    page.fill("#id_total_max_annual", "800000.00")
    page.select_option("#id_fixed_mode", "hourly")
    page.fill("#id_fixed_hours", "1600")
    page.fill("#id_hourly_rate", "250.00")
    page.fill("#id_max_incentive", "400000.00")
    for field, value in (("p25", "180"), ("p50", "220"), ("p75", "260"), ("p90", "310")):
        page.fill(f"#id_rate_{field}", value)
    _submit(page, "Add an FMV opinion")
    expect(page.get_by_text("This step is complete.")).to_be_visible()
    expect(page.locator(".setup-items")).to_contain_text("Valuation Partners LLC")
    page.get_by_role("link", name="Continue to the next step").click()

    # Fees and policies: Cancel saves nothing and goes back to the checklist.
    page.wait_for_url(re.compile(r"/setup/policies/$"))
    page.fill("#id_annual_fixed_fee", "999.00")
    page.locator("main form").get_by_role("link", name="Cancel").click()
    page.wait_for_url(re.compile(r"/setup/$"))
    checklist = page.get_by_role("region", name="Checklist")
    expect(checklist).to_contain_text("Enter the annual fixed fee.")
    _check(page, f"{width}-2-checklist", problems)
    # "Continue" resumes at the step left.
    page.get_by_role("link", name="Continue: Fees and policies").click()
    page.wait_for_url(re.compile(r"/setup/policies/$"))
    expect(page.locator("#id_annual_fixed_fee")).to_have_value("")
    _check(page, f"{width}-3-policies", problems)
    page.fill("#id_annual_fixed_fee", "400000.00")
    page.fill("#id_incentive_pool", "400000.00")
    _submit(page, "Save and continue")

    page.wait_for_url(re.compile(r"/setup/duties/$"))
    page.fill("#id_name", "Quality review")
    page.fill("#id_required_monthly_hours", "100")
    page.fill("#id_max_monthly_hours", "160")
    _submit(page, "Add a duty")
    expect(page.locator(".setup-items")).to_contain_text("Quality review")
    _check(page, f"{width}-4-duties", problems)
    page.get_by_role("link", name="Continue to the next step").click()

    page.wait_for_url(re.compile(r"/setup/indicators/$"))
    for index, weight in ((1, "60"), (2, "40")):
        page.select_option("#id_template", index=index)
        page.fill("#id_weight", weight)
        _submit(page, "Add indicator")
        expect(page.locator(".setup-items li")).to_have_count(index)
    expect(page.get_by_text("This step is complete.")).to_be_visible()
    _check(page, f"{width}-5-indicators", problems)
    page.get_by_role("link", name="Continue to the next step").click()

    page.wait_for_url(re.compile(r"/setup/physicians/$"))
    page.select_option("#id_physician", index=1)
    page.fill("#id_join_date", f"{year}-01-01")
    _submit(page, "Add a physician")
    expect(page.locator(".setup-items li")).to_have_count(1)
    _check(page, f"{width}-6-physicians", problems)
    page.get_by_role("link", name="Continue to the next step").click()

    page.wait_for_url(re.compile(r"/setup/committee/$"))
    page.fill("#id_start", f"{year - 1}-10-01")
    _submit(page, "Save and continue")
    page.wait_for_url(re.compile(r"/setup/documents/$"))
    _check(page, f"{width}-7-documents", problems)
    page.get_by_role("link", name="Continue to the next step").click()

    page.wait_for_url(re.compile(r"/setup/execute/$"))
    expect(page.get_by_text("Not finished yet")).to_have_count(0)
    today = dt.datetime.now(tz=dt.UTC).date() - dt.timedelta(days=1)
    page.fill("#id_executed_on", today.isoformat())
    page.fill("#id_signatories", "Hospital CEO\nDr Practice Lead")
    _submit(page, "Record the signing")
    page.get_by_role("button", name="Activate the agreement").click()
    expect(page.locator("h1 .badge")).to_have_text("Active")
    _check(page, f"{width}-8-active", problems)
    page.get_by_role("link", name="Open the agreement").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text(name)
    assert problems == []
