"""Every role's main pages, as a demanding reader sees them, at 1440 and 390 px wide.

On each page: no template syntax and no snake_case code in the visible text, nothing wider
than the window (wide tables and charts scroll in their own box), every chart label at least
11 px as drawn, and no serious or critical axe-core violation. A screenshot of each page and
width goes to ``test-artifacts/screenshots/page-quality/``.
"""

from __future__ import annotations

import re

import pytest

from .conftest import ARTIFACTS, axe_violations, login

pytestmark = [pytest.mark.browser, pytest.mark.xdist_group("browser")]

WIDTHS = (1440, 390)
ORG = "/o/riverside/"
# role -> its main pages (relative to the organization); "agreements" adds every agreement
# page linked from the first page.
PAGES = {
    "administrator": ["workspace/", "agreements/", "adjudication/", "compliance/", "savings/"],
    "executive": ["dashboard/", "agreements"],
    "counsel": ["adjudication/counsel/", "dashboard/"],
    "ceo": ["adjudication/ceo/"],
    "physician": ["me/", "portal/"],
}
SNAKE = re.compile(r"\b[a-z]+(?:_[a-z0-9]+)+\b")
MEASURE = """() => {
  const text = document.body.innerText;
  const sizes = [...document.querySelectorAll('svg text')].flatMap(el => {
    const box = el.getBoundingClientRect();
    const ctm = el.getScreenCTM();
    if (!ctm || box.width === 0 || !el.textContent.trim()) return [];
    const px = parseFloat(getComputedStyle(el).fontSize) * Math.hypot(ctm.a, ctm.b);
    return [[Math.round(px * 100) / 100, el.textContent.trim().slice(0, 40)]];
  });
  return {text, scrollWidth: document.documentElement.scrollWidth, width: innerWidth, sizes};
}"""


def _problems(page, label: str) -> list[str]:  # type: ignore[no-untyped-def]
    found = page.evaluate(MEASURE)
    problems = []
    for mark in ("{#", "#}", "{{", "}}", "{%", "%}"):
        if mark in found["text"]:
            problems.append(f"{label}: template syntax {mark!r} in the text")
    codes = sorted(set(SNAKE.findall(found["text"])))
    if codes:
        problems.append(f"{label}: codes in the text {codes[:8]}")
    if found["scrollWidth"] > found["width"]:
        problems.append(f"{label}: scrolls sideways ({found['scrollWidth']} > {found['width']})")
    small = [(size, text) for size, text in found["sizes"] if size < 11 - 0.05]
    if small:
        problems.append(f"{label}: chart text under 11 px {small[:4]}")
    return problems


@pytest.mark.parametrize("role", list(PAGES))
def test_every_main_page_reads_well_at_both_widths(page, e2e, role):
    login(page, e2e, f"{role}@riverside.example")
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
    folder = ARTIFACTS / "page-quality"
    folder.mkdir(parents=True, exist_ok=True)
    problems: list[str] = []
    for width in WIDTHS:
        page.set_viewport_size({"width": width, "height": 900})
        for path in paths:
            page.goto(e2e.base_url + path)
            page.wait_for_load_state("networkidle")
            label = f"{role} {path} @{width}"
            problems += _problems(page, label)
            problems += [
                f"{label}: axe {v['id']} ({v['impact']}) {v['nodes']}" for v in axe_violations(page)
            ]
            name = re.sub(r"[^a-z0-9]+", "-", f"{role}-{path}-{width}").strip("-")
            page.screenshot(path=str(folder / f"{name}.png"), full_page=True)
    assert problems == []


def test_the_menu_collapses_behind_a_button_on_a_phone(page, e2e):
    login(page, e2e, "executive@riverside.example")
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
