"""A hospital is brought onto the installation without the shell: installation staff create it
and invite its administrator; the administrator accepts, enrols 2FA, adds a physician record,
invites counsel and the physician; both accept; the administrator removes counsel, whose next
request is refused."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from .conftest import BROWSER_B, ROOT, login, pass_second_factor, shot

pytestmark = [pytest.mark.browser, BROWSER_B]

STAFF = "ops@installation.example"
PASSWORD = "installation staff passphrase 2026"  # noqa: S105 - test credential
NEW_PASSWORD = "harbor member passphrase 2026"  # noqa: S105 - test credential
NPI = "1234567893"


def _link_for(e2e, email: str) -> str:  # type: ignore[no-untyped-def]
    """The invitation link from the last e-mail to ``email`` (the console mail backend writes
    it to the server's log)."""
    text = e2e.log.read_text()
    start = text.rfind(f"To: {email}")
    assert start >= 0, f"no e-mail to {email} in the server log"
    match = re.search(r"(/account/invitations/inv_[A-Za-z0-9_-]+/)", text[start:])
    assert match, "no invitation link in the e-mail"
    return e2e.base_url + match.group(1)


def _accept(browser, e2e, email: str, first: str):  # type: ignore[no-untyped-def]
    context = browser.new_context(viewport={"width": 1360, "height": 900})
    page = context.new_page()
    page.set_default_timeout(20_000)
    page.goto(_link_for(e2e, email))
    page.fill("#id_first_name", first)
    page.fill("#id_last_name", "Harbor")
    page.fill("#id_password", NEW_PASSWORD)
    page.fill("#id_password_again", NEW_PASSWORD)
    page.get_by_role("button", name="Accept and join").click()
    page.wait_for_url(re.compile(r"/(o/harbor/|account/security/2fa/)"))
    pass_second_factor(page, email)
    return context, page


def test_installation_staff_bring_a_hospital_and_its_people_on(page, browser, e2e):
    subprocess.run(  # noqa: S603 - our own manage.py
        [sys.executable, str(ROOT / "manage.py"), "createsuperuser", "--noinput", "--email", STAFF],
        cwd=ROOT,
        env={**e2e.env, "DJANGO_SUPERUSER_PASSWORD": PASSWORD},
        check=True,
        capture_output=True,
    )
    login(page, e2e, STAFF, PASSWORD)
    page.goto(e2e.base_url + "/installation/organizations/")
    page.fill("#id_name", "Harbor General Hospital")
    page.fill("#id_slug", "harbor")
    page.select_option("#id_time_zone", "America/Chicago")
    page.fill("#id_admin_email", "chief@harbor.example")
    page.get_by_role("button", name="Create and invite its administrator").click()
    page.wait_for_url("**/installation/organizations/harbor/")
    assert "invitation sent to chief@harbor.example" in page.locator(".messages").inner_text()
    shot(page, "journey-people-organization-created")

    # The administrator accepts, enrols a second factor, adds a physician record, invites.
    admin_context, admin = _accept(browser, e2e, "chief@harbor.example", "Chief")
    admin.goto(e2e.base_url + "/o/harbor/physicians/new/")
    admin.fill("#id_npi", NPI)
    admin.fill("#id_first_name", "Pia")
    admin.fill("#id_last_name", "Physician")
    admin.locator("main form button[type=submit]").click()
    admin.wait_for_url(re.compile(r"/o/harbor/physicians/\d+/$"))
    for email, role, npi in (
        ("counsel@harbor.example", "counsel", ""),
        ("pia@harbor.example", "physician", NPI),
    ):
        admin.goto(e2e.base_url + "/o/harbor/people/invite/")
        admin.fill("#id_email", email)
        admin.select_option("#id_role", role)
        admin.fill("#id_npi", npi)
        admin.get_by_role("button", name="Send invitation").click()
        admin.wait_for_url("**/o/harbor/people/")
    shot(admin, "journey-people-invited")

    # The physician accepts and sees their own pages, not the People page.
    doctor_context, doctor = _accept(browser, e2e, "pia@harbor.example", "Pia")
    assert "/o/harbor/" in doctor.url
    response = doctor.goto(e2e.base_url + "/o/harbor/people/")
    assert response is not None and response.status == 403
    doctor_context.close()

    # Counsel accepts (with a second factor); the administrator removes counsel.
    counsel_context, counsel = _accept(browser, e2e, "counsel@harbor.example", "Cal")
    assert "/o/harbor/" in counsel.url
    admin.goto(e2e.base_url + "/o/harbor/people/")
    admin.get_by_role("link", name="Cal Harbor").click()
    admin.wait_for_url(re.compile(r"/o/harbor/people/\d+/$"))
    admin.get_by_role("button", name="Remove from Harbor General Hospital").click()
    admin.wait_for_url("**/o/harbor/people/")
    assert "counsel@harbor.example is removed" in admin.locator(".messages").inner_text()
    counsel.goto(e2e.base_url + "/o/harbor/")
    counsel.wait_for_url("**/account/login/**")
    counsel_context.close()

    # The auditor's trail has every step, with who and whom.
    admin.goto(e2e.base_url + "/o/harbor/audit/")
    # Events read in words on the page; each keeps its name in the cell's title.
    names = admin.locator("main td span[title]").evaluate_all("els => els.map(e => e.title)")
    for name in ("organization.created", "member.invited", "member.joined", "member.removed"):
        assert name in names
    admin_context.close()
