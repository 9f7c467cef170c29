"""The program administrator sets up an agreement through the guided flow and imports a usage
file, watching the progress bar until the real worker has finished."""

import datetime as dt
from pathlib import Path

import pytest

from .conftest import axe_violations, login, shot

pytestmark = [pytest.mark.browser, pytest.mark.xdist_group("browser")]

EXAMPLE_A = Path("/work/shared/examples/example_a/usage_2025.csv")


def _usage_2026(tmp_path: Path) -> Path:
    """Example A's 2025 usage moved a year on: a programme-year-2 file the demo lacks."""
    out = tmp_path / "usage_2026_full.csv"
    lines = EXAMPLE_A.read_text().splitlines()
    moved = [lines[0]] + [line.replace("2025-", "2026-").replace("2024-12-", "2025-12-")
                          for line in lines[1:]]
    out.write_text("\n".join(moved) + "\n")
    return out


def test_an_administrator_sets_up_an_agreement_and_imports_data(page, e2e, tmp_path):
    login(page, e2e, "administrator@riverside.example")
    assert page.url.endswith("/o/riverside/workspace/"), page.url
    assert page.get_by_role("heading", name="Work queue").is_visible()
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
    page.wait_for_load_state("networkidle")
    assert "/setup/" in page.url, page.url
    assert page.locator("ol.steps, .steps").first.is_visible()
    shot(page, "journey-administrator-setup")

    page.goto(e2e.base_url + "/o/riverside/workspace/")
    setup = page.locator("section[aria-labelledby=setup-h]")
    assert "Oncology Service Line Co-Management" in setup.inner_text()
    setup.get_by_role("link", name="for Oncology Service Line Co-Management").click()
    assert "/setup/" in page.url

    # Import: the cath lab programme's year-2 usage file, through preview and the worker.
    page.goto(e2e.base_url + "/o/riverside/savings/")
    page.get_by_role("link", name="Cardiac Cath Lab Shared Savings Programme").first.click()
    agreement_url = page.url.split("/savings/")[0]
    page.goto(agreement_url + "/savings/imports/")
    page.select_option("#id_kind", "usage")
    page.select_option("#id_period", "programme")
    page.select_option("#id_programme_year", index=2)
    page.set_input_files("#id_file", str(_usage_2026(tmp_path)))
    page.get_by_role("button", name="Upload and preview").click()
    page.wait_for_load_state("networkidle")
    page.get_by_role("button", name="Confirm and import").click()
    progress = page.locator(".job-progress [role=progressbar]").first
    assert progress.is_visible()
    shot(page, "journey-administrator-import-running")
    page.wait_for_function(
        "() => { const b = document.querySelector('.job-progress .badge');"
        " return b && /Succeeded|Failed/.test(b.textContent); }", timeout=120_000)
    assert page.locator(".job-progress .badge").first.inner_text() == "Succeeded"
    assert progress.get_attribute("aria-valuenow") == "100"
    shot(page, "journey-administrator-import-done")
    assert page.console_errors == []
