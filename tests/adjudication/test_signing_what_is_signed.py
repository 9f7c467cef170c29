"""Signing says what it signs (issue 20): counsel approves only a report opened in that session
(the API: opened by the same person), the buttons and the second-factor prompt name the report
and its amount and ask for confirmation, and a wrong code does not lock out the next right one
(or the page says exactly how long to wait)."""

import datetime as dt

import pytest
from django.utils import timezone
from django_otp.plugins.otp_totp.models import TOTPDevice

from adjudication.models import AdjudicationReport, ReportStatus
from adjudication.signing import OPENED_EVENT
from comanage.core.models import BusinessEvent
from comanage.core.security.otp import refusal_message
from tests.adjudication.conftest import advance
from tests.security.helpers import pass_two_factor, totp_code

TOTAL = "$"  # every amount on these pages is formatted with a dollar sign


@pytest.fixture
def two_factor_on(settings):  # type: ignore[no-untyped-def]
    settings.COMANAGE_REQUIRE_2FA = True


def _status(world, report) -> str:  # type: ignore[no-untyped-def]
    with world.scope():
        return AdjudicationReport.objects.get(pk=report.pk).status


def _urls(world, report):  # type: ignore[no-untyped-def]
    base = f"/o/{world.org.slug}/adjudication/reports/{report.pk}/"
    return base, base + "report.pdf", base + "approve/", base + "authorise/"


def _total(world, report) -> str:  # type: ignore[no-untyped-def]
    from comanage.core.money import format_money, to_decimal

    with world.scope():
        report = AdjudicationReport.objects.select_related("run").get(pk=report.pk)
        return format_money(to_decimal(report.run.results["total_to_pay"]))


def test_counsel_cannot_approve_a_report_not_opened_in_this_session(world, recorded):
    report = advance(world, recorded.report, "review", "submit")
    page, _pdf, approve, _auth = _urls(world, report)
    client = world.client("counsel")

    refused = client.post(approve, {"confirm": "yes"})
    assert refused.status_code == 409
    assert b"Open the report" in refused.content
    assert _status(world, report) == ReportStatus.SUBMITTED

    # Opening it in another session does not count for this one.
    world.client("counsel").get(page)
    assert client.post(approve, {"confirm": "yes"}).status_code == 409
    assert _status(world, report) == ReportStatus.SUBMITTED

    assert client.get(page).status_code == 200
    done = client.post(approve, {"confirm": "yes"})
    assert done.status_code == 302
    assert _status(world, report) == ReportStatus.APPROVED


def test_opening_the_pdf_counts_as_opening_the_report(world, rendered):
    report = advance(world, rendered.report, "review", "submit")
    _page, pdf, approve, _auth = _urls(world, report)
    client = world.client("counsel")
    assert client.get(pdf).status_code == 200
    assert client.post(approve, {"confirm": "yes"}).status_code == 302
    assert _status(world, report) == ReportStatus.APPROVED


def test_signing_without_ticking_the_confirmation_is_refused_naming_what_and_how_much(
    world, recorded
):
    report = advance(world, recorded.report, "review", "submit")
    page, _pdf, approve, _auth = _urls(world, report)
    client = world.client("counsel")
    client.get(page)
    refused = client.post(approve, {"comment": "ok"})
    assert refused.status_code == 400
    text = refused.content.decode()
    assert "Tick the confirmation" in text
    assert _total(world, report) in text and "Orthopedic co-management" in text
    assert _status(world, report) == ReportStatus.SUBMITTED


def test_the_approve_button_shows_the_amount_and_what_is_signed(world, recorded):
    report = advance(world, recorded.report, "review", "submit")
    page, *_ = _urls(world, report)
    client = world.client("counsel")
    total = _total(world, report)

    queue = client.get(f"/o/{world.org.slug}/adjudication/counsel/").content.decode()
    assert "Open the report (its PDF or summary) before approving it" in queue
    assert 'name="confirm"' not in queue  # nothing to confirm before it has been opened

    detail = client.get(page).content.decode()
    assert f"Approve · {total}" in detail
    assert f"confirm: Approve the adjudication report v{report.version}" in detail
    assert 'name="confirm" value="yes" required' in detail

    queue = client.get(f"/o/{world.org.slug}/adjudication/counsel/").content.decode()
    assert 'name="confirm" value="yes" required' in queue
    assert "before approving it" not in queue


def test_the_authorise_button_shows_the_amount(world, recorded):
    report = advance(world, recorded.report, "review", "submit", "approve")
    queue = world.client("ceo").get(f"/o/{world.org.slug}/adjudication/ceo/").content.decode()
    assert f"Authorise payment of {_total(world, report)}" in queue
    assert "I confirm: Authorise payment of the adjudication report" in queue
    _page, _pdf, _approve, authorise = _urls(world, report)
    refused = world.client("ceo").post(authorise, {})
    assert refused.status_code == 400
    assert _status(world, report) == ReportStatus.APPROVED


@pytest.mark.usefixtures("two_factor_on")
def test_the_two_factor_prompt_says_what_is_signed_and_for_how_much(world, recorded):
    report = advance(world, recorded.report, "review", "submit", "approve")
    client = world.client("ceo")
    pass_two_factor(client, world.users["ceo"])
    _page, _pdf, _approve, authorise = _urls(world, report)
    prompt = client.post(authorise, {"confirm": "yes"})
    assert prompt.status_code == 200 and b'name="otp_token"' in prompt.content
    text = prompt.content.decode()
    assert "You are signing: <strong>Authorise payment of the adjudication report" in text
    assert _total(world, report) in text


@pytest.mark.usefixtures("two_factor_on")
def test_after_a_wrong_code_the_next_right_code_is_accepted(world, recorded):
    report = advance(world, recorded.report, "review", "submit")
    page, _pdf, approve, _auth = _urls(world, report)
    client = world.client("counsel")
    device = pass_two_factor(client, world.users["counsel"])
    client.get(page)
    wrong = client.post(approve, {"confirm": "yes", "otp_token": "000000"})
    assert wrong.status_code == 403 and b"not valid" in wrong.content
    right = client.post(approve, {"confirm": "yes", "otp_token": totp_code(device)})
    assert right.status_code == 302, right.content[:500]
    assert _status(world, report) == ReportStatus.APPROVED


@pytest.mark.usefixtures("two_factor_on")
def test_after_several_wrong_codes_the_page_says_exactly_how_long_to_wait(world, recorded):
    report = advance(world, recorded.report, "review", "submit")
    page, _pdf, approve, _auth = _urls(world, report)
    client = world.client("counsel")
    device = pass_two_factor(client, world.users["counsel"])
    client.get(page)
    # Three wrong codes in a row: django-otp locks the device for 4 s (1 s × 2²).
    TOTPDevice.objects.filter(pk=device.pk).update(
        throttling_failure_count=3, throttling_failure_timestamp=timezone.now()
    )
    refused = client.post(approve, {"confirm": "yes", "otp_token": totp_code(device)})
    assert refused.status_code == 403
    text = refused.content.decode()
    assert "wait 4 seconds" in text or "wait 3 seconds" in text
    assert _status(world, report) == ReportStatus.SUBMITTED
    # Once the wait is over, the right code signs.
    TOTPDevice.objects.filter(pk=device.pk).update(
        throttling_failure_timestamp=timezone.now() - dt.timedelta(seconds=10)
    )
    signed = client.post(approve, {"confirm": "yes", "otp_token": totp_code(device)})
    assert signed.status_code == 302
    assert _status(world, report) == ReportStatus.APPROVED


@pytest.mark.usefixtures("two_factor_on")
def test_a_code_used_a_moment_ago_is_explained(world):
    device = TOTPDevice.objects.create(user=world.users["ceo"], name="phone", confirmed=True)
    code = totp_code(device)
    assert device.verify_token(code)
    message = refusal_message(world.users["ceo"], code)
    assert "already been used" in message and "second" in message
    assert "not valid" in refusal_message(world.users["ceo"], "123456") or (
        "already been used" in refusal_message(world.users["ceo"], "123456") and code == "123456"
    )


def test_the_api_approves_only_what_the_same_person_has_opened(world, rendered):
    report = advance(world, rendered.report, "review", "submit")  # opened as its PDF below
    api = f"/api/v1/organizations/{world.org.slug}/adjudication/reports/{report.pk}/"
    counsel = world.client("counsel")

    refused = counsel.post(api + "approve/", {}, content_type="application/json")
    assert refused.status_code == 409
    assert "Open the report" in refused.json()["errors"][0]["message"]
    assert _status(world, report) == ReportStatus.SUBMITTED

    # The executive opening it does not open it for counsel (and is not audited as opening).
    assert world.client("executive").get(api).status_code == 200
    assert counsel.post(api + "approve/", {}, content_type="application/json").status_code == 409

    assert counsel.get(api + "pdf/").status_code == 200
    done = counsel.post(api + "approve/", {}, content_type="application/json")
    assert done.status_code == 200, done.content
    assert _status(world, report) == ReportStatus.APPROVED
    with world.scope():
        opened = BusinessEvent.objects.filter(name=OPENED_EVENT, object_id=str(report.pk))
        assert [e.actor for e in opened] == [world.users["counsel"]]


def test_opening_on_the_web_counts_for_the_api_and_is_audited_once(world, recorded):
    report = advance(world, recorded.report, "review", "submit")
    page, *_ = _urls(world, report)
    counsel = world.client("counsel")
    counsel.get(page)
    counsel.get(page)
    api = f"/api/v1/organizations/{world.org.slug}/adjudication/reports/{report.pk}/approve/"
    assert counsel.post(api, {}, content_type="application/json").status_code == 200
    with world.scope():
        assert BusinessEvent.objects.filter(name=OPENED_EVENT).count() == 1


def test_an_outsider_cannot_open_or_approve(world, rendered):
    # Rendered: the PDF's 404 must come from the organization, not from a missing PDF.
    report = advance(world, rendered.report, "review", "submit")
    page, pdf, approve, _auth = _urls(world, report)
    outsider = world.client("outsider")
    assert outsider.get(page).status_code == 404
    assert outsider.get(pdf).status_code == 404
    assert outsider.post(approve, {"confirm": "yes"}).status_code == 404
    assert _status(world, report) == ReportStatus.SUBMITTED
