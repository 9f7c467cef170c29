"""The CEO authorises payment of a report approved by counsel."""

import pytest

from .conftest import axe_violations, login, pass_step_up, shot

pytestmark = [pytest.mark.browser, pytest.mark.xdist_group("browser")]


def test_the_ceo_authorises_a_payment(page, e2e):
    login(page, e2e, "ceo@riverside.example")
    assert "/adjudication/ceo/" in page.url, page.url
    assert page.locator("main h1").first.is_visible()
    assert axe_violations(page) == []
    shot(page, "journey-ceo-queue")
    button = page.get_by_role("button", name="Authorise payment").first
    assert button.is_visible(), "the demo should have a report approved by counsel"
    button.click()
    page.wait_for_load_state("networkidle")
    pass_step_up(page, "ceo@riverside.example")
    assert page.locator(".messages li").first.is_visible()
    shot(page, "journey-ceo-authorised")
    assert page.console_errors == []
