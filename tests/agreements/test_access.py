"""Who may open what: the role matrix of every agreements page and endpoint, tenant isolation
(an outsider gets 404 with A's ids), and physicians seeing only their own rows (404 otherwise)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from agreements import services
from agreements.models import AgreementKind, TimeSheetStatus
from tests import factories as f

ROLES = ["administrator", "executive", "counsel", "ceo", "auditor", "physician"]
READERS = {"administrator", "executive", "counsel", "ceo", "auditor"}
ADMIN = {"administrator"}
PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"


@dataclass
class Objects:
    own: object  # agreement Ann Adams (the physician user) takes part in
    other: object  # agreement she does not take part in
    year: object
    other_year: object
    terms: object
    participation: object
    other_participation: object
    fmv: object
    duty: object
    other_duty: object
    own_sheet: object
    other_sheet: object
    meeting: object
    other_meeting: object
    flag: object
    document: object
    milestone: object
    other_milestone: object
    practice: object


@pytest.fixture
def objs(world) -> Objects:  # type: ignore[no-untyped-def]
    admin = world.users["administrator"]
    with world.scope():
        practice = f.PracticeFactory(organization=world.org)

        def agreement(name, physician):  # type: ignore[no-untyped-def]
            a = services.agreement_create(
                organization=world.org,
                user=admin,
                data={
                    "kind": AgreementKind.CO_MANAGEMENT,
                    "name": name,
                    "practice": practice,
                    "service_line": "orthopedics",
                    "term_start": dt.date(2025, 1, 1),
                    "term_end": dt.date(2026, 12, 31),
                },
            )
            services.terms_update(
                terms=a.terms.get(), user=admin, data={"annual_fixed_fee": Decimal("120000.00")}
            )
            duty = services.duty_save(
                agreement=a,
                data={
                    "name": "Quality",
                    "required_monthly_hours": Decimal("10"),
                    "max_monthly_hours": Decimal("20"),
                },
            )
            p = services.participation_save(
                agreement=a, data={"physician": physician, "join_date": dt.date(2025, 1, 1)}
            )
            services.agreement_transition(agreement=a, to_status="in_negotiation", user=admin)
            services.agreement_transition(
                agreement=a,
                to_status="executed",
                user=admin,
                executed_on=dt.date(2024, 12, 1),
                signatories="X",
            )
            sheet = services.timesheet_save(
                agreement=a,
                physician=physician,
                month=dt.date(2025, 3, 1),
                user=None,
                entries=[services.EntryInput(duty, Decimal("12"), "Reviews")],
            )
            meeting = services.committee_meeting_save(
                agreement=a,
                data={"held_on": dt.date(2025, 2, 1), "physicians_present": [physician]},
            )
            milestone = services.milestone_save(
                agreement=a,
                data={"name": "Kick-off", "due_date": dt.date(2024, 9, 1), "owner": "Admin"},
            )
            return a, duty, p, sheet, meeting, milestone

        own, duty, part, own_sheet, meeting, milestone = agreement("Own", world.physician)
        other, o_duty, o_part, o_sheet, o_meeting, o_milestone = agreement(
            "Other", world.other_physician
        )
        fmv = f.FMVOpinionFactory(agreement=own)
        flag, _ = services.flag_raise(
            organization=world.org, kind="x", key="x:1", message="Check", agreement=own
        )
        document = services.document_upload(
            agreement=own,
            kind="signed_agreement",
            title="Signed",
            upload=SimpleUploadedFile("signed.pdf", PDF, content_type="application/pdf"),
            user=admin,
        )
        return Objects(
            own,
            other,
            own.programme_years.first(),
            other.programme_years.first(),
            own.terms.get(),
            part,
            o_part,
            fmv,
            duty,
            o_duty,
            own_sheet,
            o_sheet,
            meeting,
            o_meeting,
            flag,
            document,
            milestone,
            o_milestone,
            practice,
        )


# (url, allowed roles, what a physician gets: 200, 403 or 404)
def page_matrix(o: Objects) -> list[tuple[str, set[str], int]]:
    b = "/o/riverside"
    return [
        (f"{b}/agreements/", READERS, 200),
        (f"{b}/agreements/?export=csv", READERS, 200),
        (f"{b}/agreements/new/", ADMIN, 403),
        (f"{b}/agreements/{o.own.pk}/", READERS, 200),
        (f"{b}/agreements/{o.other.pk}/", READERS, 404),
        (f"{b}/agreements/{o.own.pk}/setup/parties/", ADMIN, 403),
        (f"{b}/agreements/{o.own.pk}/setup/policies/", ADMIN, 403),
        (f"{b}/agreements/{o.own.pk}/setup/fmv/", ADMIN, 403),
        (f"{b}/agreements/{o.own.pk}/setup/execute/", ADMIN, 403),
        (f"{b}/agreements/{o.own.pk}/amendments/new/", ADMIN, 403),
        (f"{b}/agreements/{o.own.pk}/participants/new/", ADMIN, 403),
        (f"{b}/agreements/{o.own.pk}/fmv/new/", ADMIN, 403),
        (f"{b}/agreements/{o.own.pk}/duties/new/", ADMIN, 403),
        (f"{b}/agreements/{o.own.pk}/committee/", READERS, 200),
        (f"{b}/agreements/{o.other.pk}/committee/", READERS, 404),
        (f"{b}/agreements/{o.own.pk}/committee/new/", ADMIN, 403),
        (f"{b}/agreements/{o.own.pk}/documents/new/", ADMIN, 403),
        (f"{b}/agreements/{o.own.pk}/timeline/", READERS, 200),
        (f"{b}/agreements/{o.other.pk}/timeline/", READERS, 404),
        (f"{b}/agreements/{o.own.pk}/timeline/new/", ADMIN, 403),
        (f"{b}/agreement-terms/{o.terms.pk}/", READERS, 200),
        (f"{b}/programme-years/{o.year.pk}/fees/", READERS, 200),
        (f"{b}/programme-years/{o.other_year.pk}/fees/", READERS, 404),
        (f"{b}/participations/{o.participation.pk}/edit/", ADMIN, 403),
        (f"{b}/fmv-opinions/{o.fmv.pk}/edit/", ADMIN, 403),
        (f"{b}/duties/{o.duty.pk}/edit/", ADMIN, 403),
        (f"{b}/committee/{o.meeting.pk}/edit/", ADMIN, 403),
        (f"{b}/milestones/{o.milestone.pk}/edit/", ADMIN, 403),
        (f"{b}/documents/{o.document.pk}/download/", READERS, 403),
        # physician.view is own-rows-only for a physician; no practice is theirs: empty list.
        (f"{b}/practices/", READERS, 200),
        (f"{b}/practices/new/", ADMIN, 403),
        (f"{b}/practices/{o.practice.pk}/edit/", ADMIN, 403),
        (f"{b}/physicians/", READERS, 200),
        (f"{b}/physicians/?export=csv", READERS, 200),
        (f"{b}/physicians/new/", ADMIN, 403),
        (f"{b}/physicians/{o.participation.physician_id}/", READERS, 200),
        (f"{b}/physicians/{o.other_participation.physician_id}/", READERS, 404),
        (f"{b}/physicians/{o.participation.physician_id}/edit/", ADMIN, 403),
        (f"{b}/timesheets/", READERS, 200),
        (f"{b}/timesheets/?export=csv", READERS, 200),
        (f"{b}/timesheets/{o.own_sheet.pk}/", READERS, 200),
        (f"{b}/timesheets/{o.other_sheet.pk}/", READERS, 404),
        (f"{b}/compliance/", READERS, 403),
        (f"{b}/compliance/?export=csv", READERS, 403),
        (f"{b}/compliance/{o.flag.pk}/", READERS, 403),
        (f"{b}/history/agreement/{o.own.pk}/", READERS, 403),
        (f"{b}/history/timesheet/{o.own_sheet.pk}/", READERS, 403),
        # history.view is not a physician's: refused before any record is looked up.
        (f"{b}/history/timesheet/{o.other_sheet.pk}/", READERS, 403),
        (f"{b}/history/flag/{o.flag.pk}/", READERS, 403),
        (f"{b}/history/fmv/{o.fmv.pk}/", READERS, 403),
        (f"{b}/portal/", READERS, 200),
    ]


def api_matrix(o: Objects) -> list[tuple[str, set[str], int]]:
    b = "/api/v1/organizations/riverside"
    return [
        (f"{b}/agreements/", READERS, 200),
        (f"{b}/agreements/{o.own.pk}/", READERS, 200),
        (f"{b}/agreements/{o.other.pk}/", READERS, 404),
        (f"{b}/agreements/{o.own.pk}/blockers/", READERS, 200),
        (f"{b}/programme-years/", READERS, 200),
        (f"{b}/programme-years/{o.year.pk}/", READERS, 200),
        (f"{b}/programme-years/{o.other_year.pk}/", READERS, 404),
        (f"{b}/programme-years/{o.year.pk}/fixed-fee/", READERS, 200),
        (f"{b}/programme-years/{o.other_year.pk}/fixed-fee/", READERS, 404),
        (f"{b}/programme-years/{o.year.pk}/approval-blockers/", READERS, 403),
        (f"{b}/agreement-terms/", READERS, 200),
        (f"{b}/agreement-terms/{o.terms.pk}/", READERS, 200),
        (f"{b}/practices/", READERS, 200),
        (f"{b}/practices/{o.practice.pk}/", READERS, 404),
        (f"{b}/physicians/", READERS, 200),
        (f"{b}/physicians/{o.participation.physician_id}/", READERS, 200),
        (f"{b}/physicians/{o.other_participation.physician_id}/", READERS, 404),
        (f"{b}/participations/", READERS, 200),
        (f"{b}/participations/{o.participation.pk}/", READERS, 200),
        (f"{b}/participations/{o.other_participation.pk}/", READERS, 404),
        (f"{b}/fmv-opinions/", READERS, 403),
        (f"{b}/fmv-opinions/{o.fmv.pk}/", READERS, 403),
        (f"{b}/duties/", READERS, 200),
        (f"{b}/duties/{o.duty.pk}/", READERS, 200),
        (f"{b}/duties/{o.other_duty.pk}/", READERS, 404),
        (f"{b}/timesheets/", READERS, 200),
        (f"{b}/timesheets/{o.own_sheet.pk}/", READERS, 200),
        (f"{b}/timesheets/{o.other_sheet.pk}/", READERS, 404),
        (f"{b}/committee-meetings/", READERS, 200),
        (f"{b}/committee-meetings/{o.meeting.pk}/", READERS, 200),
        (f"{b}/committee-meetings/{o.other_meeting.pk}/", READERS, 404),
        (f"{b}/compliance-flags/", READERS, 403),
        (f"{b}/compliance-flags/{o.flag.pk}/", READERS, 403),
        (f"{b}/documents/", READERS, 403),
        (f"{b}/documents/{o.document.pk}/", READERS, 403),
        (f"{b}/documents/{o.document.pk}/download/", READERS, 403),
        (f"{b}/milestones/", READERS, 200),
        (f"{b}/milestones/{o.milestone.pk}/", READERS, 200),
        (f"{b}/milestones/{o.other_milestone.pk}/", READERS, 404),
    ]


@pytest.mark.parametrize("role", ROLES)
def test_page_role_matrix(world, objs, role):
    client = world.client(role)
    failures = []
    for url, allowed, physician_status in page_matrix(objs):
        expected = physician_status if role == "physician" else (200 if role in allowed else 403)
        got = client.get(url).status_code
        if got != expected:
            failures.append((url, expected, got))
    assert failures == []


@pytest.mark.parametrize("role", ROLES)
def test_api_role_matrix(world, objs, role):
    client = world.client(role)
    failures = []
    for url, allowed, physician_status in api_matrix(objs):
        expected = physician_status if role == "physician" else (200 if role in allowed else 403)
        got = client.get(url).status_code
        if got != expected:
            failures.append((url, expected, got))
    assert failures == []


def test_outsider_gets_404_everywhere_with_a_ids(world, objs):
    client = world.client("outsider")
    urls = [u for u, _, _ in page_matrix(objs)] + [u for u, _, _ in api_matrix(objs)]
    failures = [(u, c) for u in urls if (c := client.get(u).status_code) != 404]
    assert failures == []
    # Writes too.
    b = "/api/v1/organizations/riverside"
    for url in (
        f"{b}/timesheets/{objs.own_sheet.pk}/approve/",
        f"{b}/compliance-flags/{objs.flag.pk}/resolve/",
        f"{b}/agreements/{objs.own.pk}/transition/",
        f"/o/riverside/agreements/{objs.own.pk}/transition/",
        "/o/riverside/compliance/scan/",
    ):
        assert client.post(url, {}).status_code == 404, url
    # And their own organization's API does not reveal A's rows.
    assert (
        client.get(f"/api/v1/organizations/lakeview/agreements/{objs.own.pk}/").status_code == 404
    )


def test_anonymous_is_sent_to_login_or_refused(world, objs):
    client = world.client("anonymous")
    assert client.get("/o/riverside/agreements/").status_code == 302
    assert client.get("/api/v1/organizations/riverside/agreements/").status_code == 401


@pytest.mark.parametrize("role", ROLES)
def test_post_actions_are_administrator_only(world, objs, role):
    client = world.client(role)
    b = "/api/v1/organizations/riverside"
    with world.scope():
        services.timesheet_submit(timesheet=objs.own_sheet, user=None)
    approve = client.post(
        f"{b}/timesheets/{objs.own_sheet.pk}/approve/", {}, content_type="application/json"
    )
    resolve = client.post(
        f"{b}/compliance-flags/{objs.flag.pk}/resolve/",
        {"resolution_note": "ok"},
        content_type="application/json",
    )
    scan = client.post("/o/riverside/compliance/scan/")
    if role == "administrator":
        assert (approve.status_code, resolve.status_code, scan.status_code) == (200, 200, 302)
        assert approve.json()["status"] == TimeSheetStatus.APPROVED
    else:
        assert (approve.status_code, resolve.status_code, scan.status_code) == (403, 403, 403)
