"""The CEO authorises payment of a report approved by counsel."""

import re

import pytest
from playwright.sync_api import expect

from .conftest import BROWSER_B, axe_violations, pass_step_up, shot, sign_in

pytestmark = [pytest.mark.browser, BROWSER_B]


def test_the_ceo_authorises_a_payment(page, e2e):
    sign_in(page, e2e, "ceo@riverside.example")
    expect(page).to_have_url(re.compile(r"/adjudication/ceo/"))
    expect(page.locator("main h1").first).to_be_visible()
    assert axe_violations(page) == []
    shot(page, "journey-ceo-queue")
    button = page.get_by_role("button", name="Authorise payment").first
    # The demo has a report approved by counsel.
    expect(button).to_be_visible()
    # The button names the amount; the box says what is signed.
    expect(button).to_contain_text("$")
    page.get_by_label(
        re.compile("I confirm: Authorise payment of the adjudication report")
    ).first.check()
    button.click()
    pass_step_up(page, "ceo@riverside.example")
    expect(page.get_by_role("status")).to_contain_text("payment authorised")
    shot(page, "journey-ceo-authorised")
    assert page.console_errors == []
