"""The production stage's scenario (``make prod-stage``; see scripts/ci/production_stage.py).

Against gunicorn (2 workers), a Celery worker, PostgreSQL and Redis with
``comanage.settings.production`` and the demo loaded, in this order:

1. ``/healthz`` is 200 through the proxy; a request without the proxy's header is redirected
   to HTTPS; the session cookie is ``Secure``.
2. The administrator signs in with the password, enrols an authenticator (the key shown on
   the page), signs out, and signs in again with the password and a code.
3. The administrator creates a personal API token in the web UI; a cost (price) file for the
   cath-lab programme's 2026 year is uploaded and confirmed (``upload_cost_file``); the
   administrator watches the job to its end on the page, and the token client reads the import
   through the API until it is applied (same SHA-256, row count, current version).
4. Counsel signs in (enrolling), approves the submitted report, giving a fresh code at the
   step-up page.
5. The CEO signs in (enrolling) and authorises payment of that same report, with a fresh code.

Every wait is for what a person waits for (a URL, an element, a job's status, the
authenticator's next code); a 5xx anywhere fails the step naming the request.
"""

from __future__ import annotations

import hashlib
import json
import re
import urllib.error
import urllib.request
from typing import Any

import pytest
from playwright.sync_api import expect

from .conftest import DEMO_PASSWORD, PROXY_HEADERS, Actor, ApiClient, Authenticator

ORG = "riverside"
API = f"/api/v1/organizations/{ORG}"
SAVINGS_AGREEMENT = "Cardiac Cath Lab Shared Savings Programme"
REPORT_AGREEMENT = "Orthopedic"
# A price file for programme year 2026: the unit costs the cath lab negotiated mid-year.
COST_FILE = (
    b"item_code,unit_cost\nA1,1249.00\nA2,955.00\nB1,598.50\nB2,421.00\nC1,297.25\nC2,268.00\n"
)
JOB_TIMEOUT_MS = 120_000

# What one step hands to the next (the steps run in file order, one process).
state: dict[str, Any] = {}


def land(actor: Actor, action: Any, url: str | re.Pattern[str]) -> None:
    """Do ``action`` (a click that submits a form or follows a link) and wait for the page it
    leads to; the final document's status must not be a server error."""
    page = actor.page
    with page.expect_response(
        lambda r: (
            r.request.is_navigation_request()
            and r.frame == page.main_frame
            and not 300 <= r.status < 400
        )
    ) as info:
        action()
    response = info.value
    assert response.status < 500, (
        f"{response.request.method} {response.url} answered {response.status}: "
        f"{page.locator('main').inner_text()[:300] if page.locator('main').count() else ''}"
    )
    expect(page).to_have_url(url)
    assert actor.server_errors == [], actor.server_errors


def sign_in_with_password(actor: Actor) -> None:
    page = actor.page
    page.goto("/account/login/")
    page.locator("#id_username").fill(actor.email)
    page.locator("#id_password").fill(DEMO_PASSWORD)
    land(
        actor,
        page.get_by_role("button", name="Sign in", exact=True).click,
        re.compile(r"/security/2fa/(setup|verify)/"),
    )


def enrol(actor: Actor, home: str) -> None:
    """On the enrolment page: read the manual-entry key, confirm with the app's first code."""
    page = actor.page
    expect(page.get_by_role("heading", name="Set up two-factor authentication")).to_be_visible()
    expect(page.get_by_role("img", name="QR code for your authenticator app")).to_be_visible()
    actor.authenticator = Authenticator(page.locator("main code").first.inner_text())
    page.get_by_label("Code from your authenticator app").fill(actor.authenticator.code())
    land(
        actor,
        page.get_by_role("button", name="Turn on two-factor authentication").click,
        re.compile(re.escape(home)),
    )
    expect(page.locator(".messages li").first).to_contain_text("Two-factor authentication is on")


def verify(actor: Actor, home: str) -> None:
    """On the verification page after the password: the app's current code."""
    page = actor.page
    expect(page.get_by_role("heading", name="Two-factor verification")).to_be_visible()
    assert actor.authenticator is not None, "enrolled in an earlier step"
    page.get_by_label("Code from your authenticator app").fill(actor.authenticator.code())
    land(actor, page.get_by_role("button", name="Verify").click, re.compile(re.escape(home)))


def sign_in(actor: Actor, home: str) -> None:
    """Password, then enrolment (first time) or verification."""
    sign_in_with_password(actor)
    if "/2fa/setup/" in actor.page.url:
        enrol(actor, home)
    else:
        verify(actor, home)


def step_up_and_sign(actor: Actor, back: str) -> None:
    """The signing action asked for a fresh code: give it and sign."""
    page = actor.page
    expect(page.get_by_role("heading", name="Confirm with your authenticator")).to_be_visible()
    assert actor.authenticator is not None
    page.get_by_label("Code from your authenticator app").fill(actor.authenticator.code())
    land(
        actor,
        page.get_by_role("button", name="Confirm and sign").click,
        re.compile(re.escape(back)),
    )


def test_the_server_is_healthy_and_speaks_only_https(stage_url, actors):
    request = urllib.request.Request(stage_url + "/healthz", headers=PROXY_HEADERS)  # noqa: S310
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 - loopback
        assert response.status == 200

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args: Any, **kwargs: Any) -> None:
            return None

    plain = urllib.request.build_opener(NoRedirect)
    with pytest.raises(urllib.error.HTTPError) as redirect:
        plain.open(stage_url + "/account/login/", timeout=10)
    assert redirect.value.code == 301
    assert redirect.value.headers["Location"].startswith("https://")

    page = actors["administrator"].page
    response = page.goto("/account/login/")
    assert response is not None and response.status == 200
    assert "max-age=" in response.headers.get("strict-transport-security", "")
    expect(page.get_by_role("heading", name="Sign in to Comanage")).to_be_visible()
    cookies = {c["name"]: c for c in actors["administrator"].context.cookies()}
    assert cookies["csrftoken"]["secure"] is True, cookies


def test_an_administrator_enrols_2fa_signs_out_and_signs_in_again_with_a_code(actors):
    admin = actors["administrator"]
    home = f"/o/{ORG}/workspace/"
    sign_in_with_password(admin)
    assert "/2fa/setup/" in admin.page.url, "a fresh database: no authenticator yet"
    enrol(admin, home)
    session = {c["name"]: c for c in admin.context.cookies()}["sessionid"]
    assert session["secure"] is True and session["httpOnly"] is True, session
    admin.shot("enrolled")

    land(
        admin,
        admin.page.get_by_role("button", name="Sign out").click,
        re.compile(r"/account/login/"),
    )
    sign_in_with_password(admin)
    assert "/2fa/verify/" in admin.page.url, admin.page.url
    verify(admin, home)
    expect(admin.page.get_by_role("heading", name="Work queue")).to_be_visible()
    admin.shot("signed-in-again")


def upload_cost_file(
    *,
    admin: Actor,
    api: ApiClient,
    agreement_id: int,
    programme_year: str,
    name: str,
    content: bytes,
) -> int:
    """Upload a cost (price) file for the programme year starting on January 1 of
    ``programme_year`` and confirm it, as an integrator's script does: with the token client,
    ``POST savings-imports/`` (multipart) then ``confirm``; return the import's id.

    The administrator's page is left on the import's page, where the caller watches the job."""
    years = api.get(f"{API}/programme-years/?agreement={agreement_id}")["results"]
    year_id = next(
        y["id"]
        for y in years
        if y["agreement"] == agreement_id and str(y["start"]).startswith(f"{programme_year}-01-01")
    )
    boundary = "comanage-stage-" + hashlib.sha256(content).hexdigest()[:16]
    fields = [("programme_year", str(year_id)), ("kind", "prices")]
    body = b"".join(
        f'--{boundary}\r\nContent-Disposition: form-data; name="{key}"\r\n\r\n{value}\r\n'.encode()
        for key, value in fields
    )
    body += (
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{name}"'
        f"\r\nContent-Type: text/csv\r\n\r\n"
    ).encode() + content
    body += f"\r\n--{boundary}--\r\n".encode()

    def post(path: str, data: bytes | None, content_type: str | None) -> tuple[int, Any]:
        # One key per request: a key names one operation, so the confirm needs its own.
        request = urllib.request.Request(  # noqa: S310 - the stage's loopback server
            api.base_url + path,
            data=data,
            method="POST",
            headers={
                **PROXY_HEADERS,
                "Authorization": f"Bearer {api.token}",
                "Accept": "application/json",
                "Idempotency-Key": f"stage-{name}-{hashlib.sha256(path.encode()).hexdigest()[:12]}",
                **({"Content-Type": content_type} if content_type else {}),
            },
        )
        try:
            with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
                return response.status, json.loads(response.read() or b"null")
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read().decode(errors="replace")[:500]

    status, uploaded = post(
        f"{API}/savings-imports/", body, f"multipart/form-data; boundary={boundary}"
    )
    assert status == 201, (status, uploaded)
    assert uploaded["preview"]["columns"] == ["item_code", "unit_cost"], uploaded["preview"]
    status, confirmed = post(f"{API}/savings-imports/{uploaded['id']}/confirm/", None, None)
    assert status == 202, (status, confirmed)
    admin.page.goto(f"/o/{ORG}/agreements/{agreement_id}/savings/imports/{uploaded['id']}/")
    return int(uploaded["id"])


def test_a_cost_file_is_imported_by_the_worker_and_read_by_a_token_client(actors, stage_url):
    admin = actors["administrator"]
    page = admin.page
    page.goto("/account/tokens/")
    page.get_by_label("Name").fill("production stage client")
    land(admin, page.get_by_role("button", name="Create token").click, re.compile(r"/tokens/"))
    token = page.locator("[role=alert] code").inner_text().strip()
    api = ApiClient(stage_url, token)

    page.goto(f"/o/{ORG}/savings/")
    link = page.get_by_role("link", name=SAVINGS_AGREEMENT).first
    agreement_id = int(re.search(r"/agreements/(\d+)/", link.get_attribute("href")).group(1))
    import_id = upload_cost_file(
        admin=admin,
        api=api,
        agreement_id=agreement_id,
        programme_year="2026",
        name="prices_2026_midyear.csv",
        content=COST_FILE,
    )

    # The administrator watches the progress bar until the worker has finished.
    badge = page.locator(".job-progress .badge").first
    expect(badge).to_have_text(re.compile(r"Succeeded|Failed"), timeout=JOB_TIMEOUT_MS)
    admin.shot("import-finished")
    expect(badge).to_have_text("Succeeded")
    expect(page.locator(".job-progress [role=progressbar]").first).to_have_attribute(
        "aria-valuenow", "100"
    )

    # The token client follows the same import through the API.
    record = api.poll(
        f"{API}/savings-imports/{import_id}/", lambda r: r["status"] in ("applied", "failed")
    )
    assert record["status"] == "applied", record
    assert record["sha256"] == hashlib.sha256(COST_FILE).hexdigest()
    assert record["row_count"] == COST_FILE.count(b"\n") - 1
    assert record["is_current"] is True and record["kind"] == "prices"
    listing = api.get(f"{API}/savings-imports/?agreement={agreement_id}")
    assert import_id in [r["id"] for r in listing["results"]]
    assert admin.server_errors == []


def test_counsel_approves_a_report_with_a_fresh_code(actors):
    counsel = actors["counsel"]
    queue = f"/o/{ORG}/adjudication/counsel/"
    sign_in(counsel, queue)
    page = counsel.page
    expect(page.get_by_role("heading", name="Reports awaiting legal review")).to_be_visible()
    section = page.locator("main section.card").filter(has_text=REPORT_AGREEMENT).first
    report_url = section.get_by_role("link", name="Open the report").get_attribute("href")
    # Counsel approves only a report opened in this session (its summary page or its PDF).
    page.goto(report_url)
    page.goto(queue)
    section = page.locator("main section.card").filter(has_text=REPORT_AGREEMENT).first
    approve = section.get_by_role("button", name="Approve")
    expect(approve).to_be_enabled()
    section.get_by_label("Comments (optional)").fill("Approved in the production stage.")
    section.get_by_label(re.compile("I have read the report and confirm")).check()
    # A signature needs a code entered with the very request: the step-up page asks for one.
    land(counsel, approve.click, re.compile(r"/reports/\d+/approve/$"))
    step_up_and_sign(counsel, queue)
    expect(page.locator(".messages li").first).to_contain_text("approved")
    counsel.shot("approved")
    page.goto(report_url)
    expect(page.locator("main")).to_contain_text("Approved by counsel")
    state["report_url"] = report_url


def test_the_ceo_authorises_the_approved_report_with_a_fresh_code(actors):
    assert "report_url" in state, "counsel's approval (the step before) did not complete"
    ceo = actors["ceo"]
    queue = f"/o/{ORG}/adjudication/ceo/"
    sign_in(ceo, queue)
    page = ceo.page
    row = page.locator("main tr").filter(has=page.locator(f"a[href='{state['report_url']}']"))
    expect(row).to_have_count(1)
    row.get_by_label(re.compile("I confirm: Authorise payment")).check()
    land(
        ceo,
        row.get_by_role("button", name="Authorise payment").click,
        re.compile(r"/reports/\d+/authorise/$"),
    )
    step_up_and_sign(ceo, queue)
    expect(page.locator(".messages li").first).to_contain_text("authorised")
    ceo.shot("authorised")
    page.goto(state["report_url"])
    expect(page.locator("main")).to_contain_text("Payment authorised")
