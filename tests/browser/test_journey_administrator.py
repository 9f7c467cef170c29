"""The program administrator sets up an agreement through the guided flow and imports a usage
file, watching the progress bar until the real worker has finished."""

import datetime as dt
import re
from pathlib import Path

import pytest
from playwright.sync_api import expect

from .conftest import BROWSER_B, ROOT, axe_violations, shot, sign_in

pytestmark = [pytest.mark.browser, BROWSER_B]

# shared/ lies beside the repository (CI copies it there); /work/shared on a developer's machine.
EXAMPLE_A = (
    next(
        (p for p in (ROOT.parent / "shared", Path("/work/shared")) if p.is_dir()),
        Path("/work/shared"),
    )
    / "examples/example_a/usage_2025.csv"
)


def _usage_2026(tmp_path: Path) -> Path:
    """Example A's 2025 usage moved a year on: a programme-year-2 file the demo lacks."""
    out = tmp_path / "usage_2026_full.csv"
    lines = EXAMPLE_A.read_text().splitlines()
    moved = [lines[0]] + [
        line.replace("2025-", "2026-").replace("2024-12-", "2025-12-") for line in lines[1:]
    ]
    out.write_text("\n".join(moved) + "\n")
    return out


def test_an_administrator_sets_up_an_agreement_and_imports_data(page, e2e, tmp_path):
    sign_in(page, e2e, "administrator@riverside.example")
    expect(page).to_have_url(re.compile(r"/o/riverside/workspace/$"))
    expect(page.get_by_role("heading", name="Work queue")).to_be_visible()
    assert axe_violations(page) == []
    shot(page, "journey-administrator-workspace")

    page.get_by_role("link", name="New agreement").click()
    page.select_option("#id_kind", "co_management")
    page.fill("#id_name", "Oncology Service Line Co-Management")
    page.select_option("#id_practice", index=1)
    page.select_option("#id_service_line", "oncology")
    today = dt.datetime.now(tz=dt.UTC).date()
    page.fill("#id_term_start", f"{today.year + 1}-01-01")
    page.fill("#id_term_end", f"{today.year + 3}-12-31")
    page.locator("main form button[type=submit]").last.click()
    page.wait_for_url(re.compile(r"/setup/"))
    expect(page.locator("ol.steps, .steps").first).to_be_visible()
    shot(page, "journey-administrator-setup")

    page.goto(e2e.base_url + "/o/riverside/workspace/")
    setup = page.locator("section[aria-labelledby=setup-h]")
    expect(setup).to_contain_text("Oncology Service Line Co-Management")
    setup.get_by_role("link", name="for Oncology Service Line Co-Management").click()
    page.wait_for_url(re.compile(r"/setup/"))

    # Import: the cath lab programme's year-2 usage file, through preview and the worker.
    page.goto(e2e.base_url + "/o/riverside/savings/")
    page.get_by_role("link", name="Cardiac Cath Lab Shared Savings Programme").first.click()
    page.wait_for_url(re.compile(r"/agreements/\d+/savings/"))
    agreement_url = page.url.split("/savings/")[0]
    page.goto(agreement_url + "/savings/imports/")
    page.select_option("#id_kind", "usage")
    page.select_option("#id_period", "programme")
    page.select_option("#id_programme_year", index=2)
    page.set_input_files("#id_file", str(_usage_2026(tmp_path)))
    page.get_by_role("button", name="Upload and preview").click()
    # The preview page; confirming starts the import on the worker.
    expect(page.get_by_role("heading", name="Preview")).to_be_visible()
    page.get_by_role("button", name="Confirm and import").click()
    progress = page.locator(".job-progress [role=progressbar]").first
    expect(progress).to_be_visible()
    shot(page, "journey-administrator-import-running")
    # Watch the job's status as the administrator does, until the worker has finished.
    badge = page.locator(".job-progress .badge").first
    expect(badge).to_have_text(re.compile(r"Succeeded|Failed"), timeout=180_000)
    expect(badge).to_have_text("Succeeded")
    expect(progress).to_have_attribute("aria-valuenow", "100")
    shot(page, "journey-administrator-import-done")
    assert page.console_errors == []
