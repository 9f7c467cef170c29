"""Counsel's approval and the CEO's authorisation ask for the second factor again at the moment
of signing (issue 9), on the web and through the API."""

import pytest

from adjudication.models import AdjudicationReport, ReportStatus
from tests.adjudication.conftest import advance
from tests.security.helpers import pass_two_factor, totp_code


@pytest.fixture
def two_factor_on(settings):  # type: ignore[no-untyped-def]
    settings.COMANAGE_REQUIRE_2FA = True


def _status(world, report) -> str:  # type: ignore[no-untyped-def]
    with world.scope():
        return AdjudicationReport.objects.get(pk=report.pk).status


def _signed_in(world, role):  # type: ignore[no-untyped-def]
    client = world.client(role)
    device = pass_two_factor(client, world.users[role])
    return client, device


@pytest.mark.usefixtures("two_factor_on")
def test_counsel_approving_on_the_web_is_asked_for_a_fresh_code(world, recorded):
    report = advance(world, recorded.report, "review", "submit")
    client, device = _signed_in(world, "counsel")
    url = f"/o/{world.org.slug}/adjudication/reports/{report.pk}/approve/"
    client.get(f"/o/{world.org.slug}/adjudication/reports/{report.pk}/")  # opened first

    asked = client.post(url, {"comment": "Reviewed.", "confirm": "yes"})
    assert asked.status_code == 200
    assert b'name="otp_token"' in asked.content
    assert _status(world, report) == ReportStatus.SUBMITTED

    signed = client.post(
        url, {"comment": "Reviewed.", "confirm": "yes", "otp_token": totp_code(device)}
    )
    assert signed.status_code == 302
    assert _status(world, report) == ReportStatus.APPROVED


@pytest.mark.usefixtures("two_factor_on")
def test_a_wrong_code_does_not_sign(world, recorded):
    report = advance(world, recorded.report, "review", "submit")
    client, _device = _signed_in(world, "counsel")
    client.get(f"/o/{world.org.slug}/adjudication/reports/{report.pk}/")
    wrong = client.post(
        f"/o/{world.org.slug}/adjudication/reports/{report.pk}/approve/",
        {"comment": "Reviewed.", "confirm": "yes", "otp_token": "000000"},
    )
    assert wrong.status_code == 403
    assert b"not valid" in wrong.content
    assert _status(world, report) == ReportStatus.SUBMITTED


@pytest.mark.usefixtures("two_factor_on")
def test_a_code_from_sign_in_is_not_a_signature(world, recorded):
    # pass_two_factor marks the session verified just now: still, signing asks again.
    report = advance(world, recorded.report, "review", "submit", "approve")
    client, _device = _signed_in(world, "ceo")
    response = client.post(
        f"/o/{world.org.slug}/adjudication/reports/{report.pk}/authorise/", {"confirm": "yes"}
    )
    assert response.status_code == 200
    assert b'name="otp_token"' in response.content
    assert _status(world, report) == ReportStatus.APPROVED


@pytest.mark.usefixtures("two_factor_on")
def test_signing_through_the_api_needs_the_current_code(world, recorded):
    report = advance(world, recorded.report, "review", "submit", "approve")
    client, device = _signed_in(world, "ceo")
    api = f"/api/v1/organizations/{world.org.slug}/adjudication/reports/{report.pk}/authorise/"

    refused = client.post(api, {}, content_type="application/json")
    assert refused.status_code == 403
    assert "otp_token" in refused.json()["errors"][0]["message"]
    assert _status(world, report) == ReportStatus.APPROVED

    signed = client.post(api, {"otp_token": totp_code(device)}, content_type="application/json")
    assert signed.status_code == 200, signed.content
    assert _status(world, report) == ReportStatus.AUTHORISED


def test_without_two_factor_signing_needs_no_code(world, rendered):
    report = advance(world, rendered.report, "review", "submit")  # opened as its PDF below
    client = world.client("counsel")
    client.get(f"/o/{world.org.slug}/adjudication/reports/{report.pk}/report.pdf")
    response = client.post(
        f"/o/{world.org.slug}/adjudication/reports/{report.pk}/approve/",
        {"comment": "ok", "confirm": "yes"},
    )
    assert response.status_code == 302
    assert _status(world, report) == ReportStatus.APPROVED
