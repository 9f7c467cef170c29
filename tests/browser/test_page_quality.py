"""Every role's main pages, as a demanding reader sees them, at 1440 and 390 px wide.

On each page: no template syntax and no snake_case code in the visible text, nothing wider
than the window (wide tables and charts scroll in their own box), every chart label at least
11 px as drawn, and no serious or critical axe-core violation. Each page is loaded once and
checked at both widths; a screenshot of a page and width with a problem goes to
``test-artifacts/screenshots/page-quality/``.
"""

from __future__ import annotations

import pytest

from .conftest import BROWSER_A, check_page, preload_axe, sign_in

pytestmark = [pytest.mark.browser, BROWSER_A]

ORG = "/o/riverside/"
# role -> its main pages (relative to the organization); "agreements" adds every agreement
# page linked from the first page.
PAGES = {
    "administrator": [
        "workspace/",
        "agreements/",
        "agreements/1/",
        "agreement-terms/1/",
        "agreements/2/savings/",
        "history/agreement/1/",
        "adjudication/",
        "adjudication/runs/1/",
        "compliance/",
        "savings/",
    ],
    "executive": ["dashboard/", "agreements"],
    "counsel": ["adjudication/counsel/", "dashboard/"],
    "ceo": ["adjudication/ceo/"],
    "physician": ["me/", "portal/"],
    "auditor": ["audit/"],
}


@pytest.mark.parametrize("role", list(PAGES))
def test_every_main_page_reads_well_at_both_widths(page, e2e, role):
    sign_in(page, e2e, f"{role}@riverside.example")
    preload_axe(page)  # every page checked is checked by axe
    paths = []
    for entry in PAGES[role]:
        if entry == "agreements":
            links = page.eval_on_selector_all(
                "main a[href*='/dashboard/agreements/']",
                "els => els.map(e => new URL(e.href).pathname)",
            )
            paths.extend(sorted(set(links)))
        else:
            paths.append(ORG + entry)
            if entry == PAGES[role][0]:
                page.goto(e2e.base_url + ORG + entry)
    problems: list[str] = []
    for path in paths:
        problems += check_page(page, e2e.base_url, path, role)
    assert problems == []


def test_the_menu_collapses_behind_a_button_on_a_phone(page, e2e):
    sign_in(page, e2e, "executive@riverside.example")
    page.set_viewport_size({"width": 390, "height": 800})
    page.goto(e2e.base_url + ORG + "dashboard/")
    button = page.get_by_role("button", name="Menu")
    menu = page.get_by_role("navigation", name="Main")
    assert button.is_visible() and not menu.is_visible()
    button.click()
    assert menu.is_visible() and button.get_attribute("aria-expanded") == "true"
    page.set_viewport_size({"width": 1440, "height": 900})
    page.reload()
    assert menu.is_visible() and not button.is_visible()
