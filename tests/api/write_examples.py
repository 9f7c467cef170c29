"""The example table of the API's write operations (one per ``operationId`` of the schema):
a valid body and a body the service or form refuses, each built when the walk reaches it on a
world of its own (``Walk``). Used by tests/api/test_write_operations.py (the walk) and by the
fuzz (tests/api/test_fuzz.py, scripts/fuzz_api.py) as the explicit cases that use valid ids.

A new write endpoint adds its example here; test_every_write_operation_has_an_example fails
until it does.
"""

from __future__ import annotations

import datetime as dt
import functools
import itertools
import json
import zoneinfo
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import time_machine
from django.conf import settings
from django.core.files.uploadedfile import SimpleUploadedFile
from django_scopes import scope, scopes_disabled

from adjudication import services as adjudication_services
from adjudication import signing
from agreements import fees
from agreements import models as am
from agreements import services as agreement_services
from comanage.core.models import ApiToken, Membership, Role
from comanage.core.people import services as people_services
from indicators import aggregate_import
from indicators import services as indicator_services
from indicators.models import IndicatorDefinition
from indicators.selectors import periods_for_year
from savings import services as savings_services
from savings.models import Item
from tests import factories as f
from tests.adjudication.conftest import co_management_payload
from tests.api.openapi import api_schema
from tests.indicators.conftest import EXAMPLE_D, example_c_results, ortho_build
from tests.savings.helpers import usage_csv

WRITE_METHODS = {"post", "put", "patch", "delete"}
#: Write operations only a signed-in session performs (API tokens are not managed with a
#: token); the fuzz, which sends tokens, cannot get them through (their examples say session).
SESSION_ONLY_WRITES = {"POST /api/v1/tokens/", "DELETE /api/v1/tokens/{id}/"}
OK = {200, 201, 202, 204}
ORG = "/api/v1/organizations/riverside"
#: The walk happens on this day (local noon): programme year 2025 has ended, 2026 has not.
TODAY = dt.date(2026, 6, 15)
PDF = b"%PDF-1.4\n1 0 obj <<>> endobj\ntrailer <<>>\n%%EOF\n"


@dataclass
class Example:
    url: str
    valid: Any = None  # a body, or a callable giving one (uploads are read once)
    invalid: Any = None
    field: str | None = None  # the field the refusal must name
    no_invalid: str = ""  # why there is no refused body (the operation takes none)
    who: str = "administrator"
    multipart: bool = False
    #: Sent from a signed-in session, not with a token (API tokens are managed only from one:
    #: comanage.core.api_views.SessionOnly); the fuzz, which has only tokens, leaves it out.
    session: bool = False


def write_operations() -> list[tuple[str, str, str]]:
    """(operationId, METHOD, path) of every write operation of the generated schema."""
    return list(_write_operations())


@functools.cache
def _write_operations() -> tuple[tuple[str, str, str], ...]:
    # The same for the whole process: the walk's tests and the fuzz's explicit cases ask for it.
    schema = api_schema()
    return tuple(
        (operation["operationId"], method.upper(), path)
        for path, operations in schema["paths"].items()
        for method, operation in operations.items()
        if method in WRITE_METHODS
    )


class Walk:
    """The world the examples act on: built with the services and factories, one row per
    need, so each example's ids are valid and its state is the one the operation expects."""

    def __init__(self, world: Any) -> None:
        self.world = world
        self.org = world.org
        with scopes_disabled():
            self.practice = f.PracticeFactory(organization=self.org, name="Walk Practice")
            # A draft co-management agreement (example C's indicators) and its 2025 year.
            self.ortho = ortho_build(self.org)
            self.draft = self.ortho.agreement
            self.year = self.ortho.year
            self.fmv = f.FMVOpinionFactory(agreement=self.draft)
            self.duty = f.DutyFactory(agreement=self.draft, required_monthly_hours=Decimal("40"))
            for physician in (world.physician, world.other_physician):
                f.ParticipationFactory(agreement=self.draft, physician=physician)
            example_c_results(self.ortho)
            # An executed one, for time sheets.
            self.executed = f.AgreementFactory(
                organization=self.org, status="executed", executed_on=dt.date(2024, 12, 1)
            )
            f.TermsFactory(agreement=self.executed)
            self.executed_duty = f.DutyFactory(agreement=self.executed)
            f.ParticipationFactory(agreement=self.executed, physician=world.physician)
        self._report: Any = None
        self._counter = itertools.count(1)

    def next(self) -> int:
        return next(self._counter)

    def scope(self) -> Any:
        return scope(organization=self.org)

    # ------------------------------------------------------------------ helpers

    def physician(self) -> Any:
        with scopes_disabled():
            return f.PhysicianFactory(organization=self.org, npi=f._valid_npi(7000 + self.next()))

    def detail(self, resource: str, pk: int) -> str:
        return f"{ORG}/{resource}/{pk}/"

    def shared_savings(self) -> am.Agreement:
        with self.scope():
            return agreement_services.agreement_create(
                organization=self.org,
                user=None,
                data={
                    "kind": "shared_savings",
                    "name": "Walk shared savings",
                    "practice": self.practice,
                    "service_line": "cardiovascular",
                    "term_start": dt.date(2025, 1, 1),
                },
            )

    def co_management_report(self, *, render: bool = False) -> Any:
        """Example C on an agreement of its own (as tests/adjudication's ``co_management``:
        FMV opinion, both physicians taking part, every 2025 month's hours approved), its run
        recorded with a draft report."""
        with scopes_disabled():
            agreement = f.AgreementFactory(
                organization=self.org, name=f"Orthopedic co-management {self.next()}"
            )
            f.TermsFactory(agreement=agreement)
            year = f.ProgrammeYearFactory(agreement=agreement)
            f.FMVOpinionFactory(agreement=agreement)
            duty = f.DutyFactory(agreement=agreement, required_monthly_hours=Decimal("67"))
            for physician in (self.world.physician, self.world.other_physician):
                f.ParticipationFactory(agreement=agreement, physician=physician)
                for month in fees.months_between(year.start, year.end):
                    sheet = am.TimeSheet.objects.create(
                        organization=self.org,
                        agreement=agreement,
                        physician=physician,
                        month=month,
                        status=am.TimeSheetStatus.APPROVED,
                    )
                    am.TimeEntry.objects.create(
                        organization=self.org,
                        timesheet=sheet,
                        duty=duty,
                        hours=Decimal("67.5"),
                        description="Duties",
                    )
        with self.scope():
            outcome = adjudication_services.calculation_record(
                programme_year=year,
                payload=co_management_payload(self.world, year),
                user=self.world.users["administrator"],
            )
            if render:
                adjudication_services.report_render(report=outcome.report)
        return outcome.report

    def report(self) -> Any:
        """The report the operations walk through in table order (review ... payment)."""
        if self._report is None:
            self._report = self.co_management_report(render=True)
        return self._report

    def sheet(self, status: str) -> Any:
        with scopes_disabled():
            month = dt.date(2026, {"draft": 3, "submitted": 4, "returnable": 5}[status], 1)
            sheet = am.TimeSheet.objects.create(
                organization=self.org,
                agreement=self.executed,
                physician=self.world.physician,
                month=month,
                status="submitted" if status != "draft" else "draft",
            )
            am.TimeEntry.objects.create(
                organization=self.org,
                timesheet=sheet,
                duty=self.executed_duty,
                hours=Decimal("10"),
                description="Committee work",
            )
        return sheet

    def member(self, *, active: bool = True) -> Membership:
        """A member of its own (an auditor): never the caller nor an administrator, so the
        walk's clients keep their access whatever is done to it."""
        with scopes_disabled():
            user = f.UserFactory(email=f"member{self.next()}@riverside.example")
            return f.MembershipFactory(
                organization=self.org, user=user, role=Role.AUDITOR, is_active=active
            )

    def invitation(self) -> Any:
        """A pending invitation (an auditor's)."""
        invitation, _raw = people_services.invitation_create(
            organization=self.org,
            email=f"invited{self.next()}@riverside.example",
            role=Role.AUDITOR,
            actor=self.world.users["administrator"],
            base_url="http://testserver",
        )
        return invitation

    # ------------------------------------------------------------------ agreements

    def agreements_body(self, **extra: Any) -> dict[str, Any]:
        return {
            "kind": "co_management",
            "name": "Walk agreement",
            "practice": self.practice.pk,
            "service_line": "orthopedics",
            "term_start": "2026-01-01",
            **extra,
        }

    def a_draft_agreement(self) -> am.Agreement:
        with self.scope():
            return agreement_services.agreement_create(
                organization=self.org,
                user=None,
                data={
                    "kind": "co_management",
                    "name": f"Draft {self.next()}",
                    "practice": self.practice,
                    "service_line": "orthopedics",
                    "term_start": dt.date(2026, 1, 1),
                },
            )


def examples_for(w: Walk) -> dict[str, Callable[[], Example]]:
    """operationId → a function building its example when the walk reaches it (in order)."""
    world = w.world

    def agreement_put() -> Example:
        agreement = w.a_draft_agreement()
        body = w.agreements_body(name="Renamed", term_end="2027-12-31")
        return Example(
            w.detail("agreements", agreement.pk),
            body,
            {**body, "term_end": "2025-06-30"},
            "term_end",
        )

    def agreement_patch() -> Example:
        agreement = w.a_draft_agreement()
        return Example(
            w.detail("agreements", agreement.pk),
            {"name": "Patched"},
            {"term_end": "2025-06-30"},
            "term_end",
        )

    def transition() -> Example:
        agreement = w.a_draft_agreement()
        return Example(
            w.detail("agreements", agreement.pk) + "transition/",
            {"to_status": "in_negotiation"},
            {"to_status": "active"},
            "status",
        )

    def terms_create() -> Example:
        agreement = w.a_draft_agreement()
        body = {
            "agreement": agreement.pk,
            "effective_from": "2027-01-01",
            "reason": "Pool raised for year 2",
            "annual_fixed_fee": "400000.00",
            "incentive_pool": "450000.00",
        }
        return Example(f"{ORG}/agreement-terms/", body, {**body, "reason": ""}, "reason")

    def terms_put() -> Example:
        agreement = w.a_draft_agreement()
        with w.scope():
            terms = agreement.terms.get()
        body = {
            "agreement": agreement.pk,
            "effective_from": "2026-01-01",
            "reason": "Initial terms",
            "annual_fixed_fee": "300000.00",
            "incentive_pool": "300000.00",
        }
        return Example(
            w.detail("agreement-terms", terms.pk),
            body,
            {**body, "physician_share_pct": "80"},
            "physician_share_pct",
        )

    def terms_patch() -> Example:
        agreement = w.a_draft_agreement()
        with w.scope():
            terms = agreement.terms.get()
        return Example(
            w.detail("agreement-terms", terms.pk),
            {"incentive_pool": "350000.00"},
            {"physician_share_pct": "80"},
            "physician_share_pct",
        )

    def practice_create() -> Example:
        return Example(
            f"{ORG}/practices/", {"name": "Harbor Orthopedics"}, {"name": "Walk Practice"}, "name"
        )

    def practice_write() -> Example:
        with scopes_disabled():
            practice = f.PracticeFactory(organization=w.org, name=f"Practice {w.next()}")
        return Example(
            w.detail("practices", practice.pk),
            {"name": f"Renamed {practice.pk}"},
            {"name": "Walk Practice"},
            "name",
        )

    def physician_create() -> Example:
        body = {"npi": f._valid_npi(7999), "first_name": "Dana", "last_name": "Diaz"}
        return Example(f"{ORG}/physicians/", body, {**body, "npi": "1234567890"}, "npi")

    def physician_write() -> Example:
        physician = w.physician()
        body = {"npi": physician.npi, "first_name": "Eve", "last_name": "Evans"}
        return Example(
            w.detail("physicians", physician.pk), body, {**body, "npi": "1234567890"}, "npi"
        )

    def participation_create() -> Example:
        physician = w.physician()
        body = {"agreement": w.draft.pk, "physician": physician.pk, "join_date": "2025-02-01"}
        return Example(
            f"{ORG}/participations/", body, {**body, "join_date": "2024-06-01"}, "join_date"
        )

    def participation_put() -> Example:
        physician = w.physician()
        with scopes_disabled():
            participation = f.ParticipationFactory(agreement=w.draft, physician=physician)
        body = {
            "agreement": w.draft.pk,
            "physician": physician.pk,
            "join_date": "2025-01-01",
            "termination_date": "2025-09-30",
            "termination_reason": "Left the group",
            "for_cause": False,
        }
        return Example(
            w.detail("participations", participation.pk),
            body,
            {**body, "termination_reason": ""},
            "termination_reason",
        )

    def participation_patch() -> Example:
        physician = w.physician()
        with scopes_disabled():
            participation = f.ParticipationFactory(agreement=w.draft, physician=physician)
        return Example(
            w.detail("participations", participation.pk),
            {"ownership_pct": "25.00"},
            {"for_cause": True},
            "termination_date",
        )

    fmv_body = {
        "agreement": w.draft.pk,
        "valuator": "Valuation Partners LLC",
        "issue_date": "2024-11-01",
        "effective_start": "2025-01-01",
        "effective_end": "2026-12-31",
        "total_max_annual": "800000.00",
        "fixed_mode": "annual",
        "fixed_annual": "300000.00",
        "max_incentive": "400000.00",
    }

    def fmv_create() -> Example:
        return Example(
            f"{ORG}/fmv-opinions/",
            fmv_body,
            {**fmv_body, "effective_end": "2024-12-31"},
            "effective_end",
        )

    def fmv_put() -> Example:
        return Example(
            w.detail("fmv-opinions", w.fmv.pk),
            fmv_body,
            {**fmv_body, "max_incentive": "700000.00"},
            "max_incentive",
        )

    def fmv_patch() -> Example:
        return Example(
            w.detail("fmv-opinions", w.fmv.pk),
            {"valuator": "Other Valuator"},
            {"fixed_annual": None},
            "fixed_annual",
        )

    duty_body = {
        "agreement": w.draft.pk,
        "name": "Protocol review",
        "required_monthly_hours": "10",
        "max_monthly_hours": "20",
    }

    def duty_create() -> Example:
        return Example(
            f"{ORG}/duties/",
            duty_body,
            {**duty_body, "name": "Other", "max_monthly_hours": "5"},
            "max_monthly_hours",
        )

    def duty_put() -> Example:
        return Example(
            w.detail("duties", w.duty.pk),
            {**duty_body, "name": "Renamed duty"},
            {**duty_body, "max_monthly_hours": "0"},
            "max_monthly_hours",
        )

    def duty_patch() -> Example:
        return Example(
            w.detail("duties", w.duty.pk),
            {"description": "Monthly"},
            {"max_monthly_hours": "1"},
            "max_monthly_hours",
        )

    meeting_body = {
        "agreement": w.draft.pk,
        "held_on": "2026-02-03",
        "minutes": "Q4 review",
        "physicians_present": [world.physician.pk],
    }

    def meeting_create() -> Example:
        return Example(
            f"{ORG}/committee-meetings/",
            meeting_body,
            {**meeting_body, "held_on": "2026-12-01"},
            "held_on",
        )

    def a_meeting() -> int:
        with w.scope():
            return agreement_services.committee_meeting_save(
                agreement=w.draft, data={"held_on": dt.date(2026, 1, 5), "minutes": "x"}
            ).pk

    def meeting_put() -> Example:
        return Example(
            w.detail("committee-meetings", a_meeting()),
            meeting_body,
            {**meeting_body, "physicians_present": [w.physician().pk]},
            "physicians_present",
        )

    def meeting_patch() -> Example:
        return Example(
            w.detail("committee-meetings", a_meeting()),
            {"minutes": "Amended"},
            {"held_on": "2027-01-01"},
            "held_on",
        )

    def flag_resolve() -> Example:
        with w.scope():
            flag, _ = agreement_services.flag_raise(
                organization=w.org,
                kind="walk",
                key=f"walk-{w.next()}",
                message="Walk flag",
                agreement=w.draft,
            )
        return Example(
            w.detail("compliance-flags", flag.pk) + "resolve/",
            {"resolution_note": "Checked with the practice."},
            {"resolution_note": "  "},
            "resolution_note",
        )

    def document_create() -> Example:
        def body(content: bytes) -> Callable[[], dict[str, Any]]:
            return lambda: {
                "agreement": w.draft.pk,
                "kind": "signed_agreement",
                "title": "Signed",
                "file": SimpleUploadedFile("signed.pdf", content),
            }

        return Example(f"{ORG}/documents/", body(PDF), body(b"not a pdf"), "file", multipart=True)

    def timesheet_create() -> Example:
        body = {
            "agreement": w.executed.pk,
            "physician": world.physician.pk,
            "month": "2026-02-01",
            "entries": [
                {"duty": w.executed_duty.pk, "hours": "12", "description": "Protocol review"}
            ],
        }
        return Example(
            f"{ORG}/timesheets/",
            body,
            {**body, "entries": [{**body["entries"][0], "hours": "500"}]},
            "hours",
        )

    def timesheet_submit() -> Example:
        sheet = w.sheet("draft")
        return Example(
            w.detail("timesheets", sheet.pk) + "submit/",
            {},
            no_invalid="submit takes no input (the body is ignored)",
        )

    def timesheet_approve() -> Example:
        sheet = w.sheet("submitted")
        return Example(
            w.detail("timesheets", sheet.pk) + "approve/",
            {"note": "Fine"},
            {"note": ["not", "text"]},
            "note",
        )

    def timesheet_return() -> Example:
        sheet = w.sheet("returnable")
        return Example(
            w.detail("timesheets", sheet.pk) + "return/",
            {"note": "Describe the March work."},
            {"note": ""},
            "review_note",
        )

    def milestone_create() -> Example:
        body = {
            "agreement": w.draft.pk,
            "name": "Kick-off",
            "owner": "Administrator",
            "due_date": "2026-07-01",
            "position": 0,
            "status": "not_started",
        }
        return Example(f"{ORG}/milestones/", body, {**body, "status": "finished"}, "status")

    def a_milestone() -> int:
        with w.scope():
            return agreement_services.milestone_save(
                agreement=w.draft,
                data={
                    "name": "Data analysis",
                    "owner": "Administrator",
                    "due_date": dt.date(2026, 8, 1),
                },
            ).pk

    def milestone_put() -> Example:
        body = {
            "agreement": w.draft.pk,
            "name": "Data analysis",
            "owner": "Administrator",
            "due_date": "2026-08-01",
            "position": 1,
            "status": "done",
        }
        return Example(
            w.detail("milestones", a_milestone()), body, {**body, "due_date": "someday"}, "due_date"
        )

    def milestone_patch() -> Example:
        return Example(
            w.detail("milestones", a_milestone()), {"status": "in_progress"}, {"name": ""}, "name"
        )

    # ------------------------------------------------------------------ indicators

    def definition_body() -> dict[str, Any]:
        from indicators.api import DefinitionSerializer

        with w.scope():
            data = dict(DefinitionSerializer(w.ortho.definitions["median_los"]).data)
        for name in ("id", "agreement", "created_at", "template"):
            data.pop(name, None)
        return json.loads(json.dumps(data, default=str))

    def definition_create() -> Example:
        body = {**definition_body(), "key": "walk_los", "name": "Walk LOS"}
        return Example(f"{ORG}/indicator-definitions/", body, {**body, "key": "median_los"}, "key")

    def definition_put() -> Example:
        body = {**definition_body(), "name": "Median length of stay (days)"}
        return Example(
            w.detail("indicator-definitions", w.ortho.definitions["median_los"].pk),
            body,
            {**body, "key": "ssi_joint"},
            "key",
        )

    def definition_patch() -> Example:
        return Example(
            w.detail("indicator-definitions", w.ortho.definitions["median_los"].pk),
            {"description": "Days"},
            {"weight": "150"},
            "weight",
        )

    def definition_destroy() -> Example:
        with w.scope():
            spare = IndicatorDefinition.objects.get(pk=w.ortho.definitions["median_los"].pk)
            spare.pk = spare.id = None
            spare._state.adding = True
            spare.key, spare.position = "spare", 0
            spare = indicator_services.definition_save(definition=spare)
        return Example(
            w.detail("indicator-definitions", spare.pk), None, no_invalid="DELETE has no body"
        )

    def result_create() -> Example:
        body = {
            "definition": w.ortho.definitions["ssi_joint"].pk,
            "programme_year": w.year.pk,
            "period": "Q1",
            "numerator": "1",
            "denominator": "100",
            "source_note": "NHSN",
        }
        return Example(f"{ORG}/indicator-results/", body, {**body, "numerator": "101"}, "numerator")

    def import_create() -> Example:
        def body(period: str) -> Callable[[], dict[str, Any]]:
            return lambda: {
                "agreement": w.draft.pk,
                "programme_year": w.year.pk,
                "period": period,
                "indicators": ["vte_prophylaxis"],
                "file": SimpleUploadedFile("cases.csv", EXAMPLE_D.read_bytes()),
            }

        return Example(
            f"{ORG}/indicator-imports/", body("annual"), body("Q9"), "period", multipart=True
        )

    def import_discard() -> Example:
        with w.scope():
            case_import = indicator_services.case_import_create(
                agreement=w.draft,
                programme_year=w.year,
                period=periods_for_year(programme_year=w.year)[0],
                data=EXAMPLE_D.read_bytes(),
                filename=f"pending-{w.next()}.csv",
                user=world.users["administrator"],
                indicator_keys=["vte_prophylaxis"],
            )
        return Example(
            w.detail("indicator-imports", case_import.pk) + "discard/",
            None,
            no_invalid="discard takes no body; an applied import is refused with "
            "409 (its state, not a field)",
        )

    def action_plan_create() -> Example:
        definition = w.ortho.definitions["experience_top_box"]
        with w.scope():
            indicator_services.result_record(
                definition=definition,
                programme_year=w.year,
                period=periods_for_year(programme_year=w.year)[2],
                numerator=Decimal(300),
                denominator=Decimal(500),
                source_note="HCAHPS Q2",
            )
        body = {
            "definition": definition.pk,
            "programme_year": w.year.pk,
            "title": "Raise top-box scores",
            "owner": "Nursing",
            "due_date": "2026-09-30",
        }
        return Example(
            f"{ORG}/indicator-action-plans/", body, {**body, "due_date": "next month"}, "due_date"
        )

    # ------------------------------------------------------------------ savings

    def opportunity_create() -> Example:
        agreement = w.shared_savings()
        body = {
            "agreement": agreement.pk,
            "key": "stents",
            "name": "Drug-eluting stents",
            "case_types": ["PCI"],
            "item_codes": ["DES-1"],
            "savings_target": "25000.00",
            "base_year": 2024,
            "status": "proposed",
        }
        return Example(
            f"{ORG}/savings-opportunities/",
            body,
            {**body, "key": "other", "savings_target": "-1.00"},
            "savings_target",
        )

    def savings_run() -> Example:
        agreement = w.shared_savings()
        with w.scope():
            years = list(agreement.programme_years.order_by("number"))
        return Example(
            f"{ORG}/savings-calculations/run/",
            {"programme_year": years[0].pk, "kind": "year"},
            {"programme_year": years[1].pk, "kind": "year"},
            "programme_year",
        )

    def savings_import_discard() -> Example:
        agreement = w.shared_savings()
        with w.scope():
            year = agreement.programme_years.order_by("number").first()
            data_import = savings_services.data_import_receive(
                agreement=agreement,
                kind="usage",
                period="programme",
                programme_year=year,
                user=world.users["administrator"],
                upload=SimpleUploadedFile(
                    "pending.csv",
                    usage_csv(
                        [{"case_id": "c1", "physician_npi": world.physician.npi, "item_code": "A1"}]
                    ).encode(),
                    content_type="text/csv",
                ),
            )
        return Example(
            w.detail("savings-imports", data_import.pk) + "discard/",
            None,
            no_invalid="discard takes no body; an applied import is refused with "
            "409 (its state, not a field)",
        )

    def savings_import_create() -> Example:
        agreement = w.shared_savings()
        with w.scope():
            year = agreement.programme_years.order_by("number").first()

        def body(kind: str) -> Callable[[], dict[str, Any]]:
            return lambda: {
                "programme_year": year.pk,
                "kind": kind,
                "file": SimpleUploadedFile(
                    "usage.csv",
                    usage_csv(
                        [{"case_id": "c1", "physician_npi": world.physician.npi, "item_code": "A1"}]
                    ).encode(),
                    content_type="text/csv",
                ),
            }

        return Example(
            f"{ORG}/savings-imports/", body("usage"), body("nonsense"), "kind", multipart=True
        )

    def savings_import_confirm() -> Example:
        agreement = w.shared_savings()
        with w.scope():
            year = agreement.programme_years.order_by("number").first()
            data_import = savings_services.data_import_receive(
                agreement=agreement,
                kind="usage",
                period="programme",
                programme_year=year,
                user=world.users["administrator"],
                upload=SimpleUploadedFile(
                    "confirm.csv",
                    usage_csv(
                        [{"case_id": "c1", "physician_npi": world.physician.npi, "item_code": "A1"}]
                    ).encode(),
                    content_type="text/csv",
                ),
            )
        return Example(
            w.detail("savings-imports", data_import.pk) + "confirm/",
            None,
            no_invalid="confirm takes no body; a second confirm is refused with 409 "
            "(its state, not a field)",
        )

    # ------------------------------------------------------------------ rosters, item master

    def roster_file(name: str = "roster.csv") -> SimpleUploadedFile:
        npi = f._valid_npi(8000 + w.next())
        return SimpleUploadedFile(
            name, f"npi,first_name,last_name\n{npi},Walk,Roster\n".encode(), content_type="text/csv"
        )

    def item_file(name: str = "items.csv") -> SimpleUploadedFile:
        return SimpleUploadedFile(
            name,
            f"item_code,description\nWALK-{w.next()},Walk item\n".encode(),
            content_type="text/csv",
        )

    def roster_import() -> Any:
        with w.scope():
            return agreement_services.roster_import_receive(
                organization=world.org, upload=roster_file(), user=world.users["administrator"]
            )

    def item_import() -> Any:
        with w.scope():
            return savings_services.item_import_receive(
                organization=world.org, upload=item_file(), user=world.users["administrator"]
            )

    def roster_import_create() -> Example:
        return Example(
            f"{ORG}/roster-imports/",
            lambda: {"file": roster_file()},
            lambda: {"file": roster_file(), "layout": "nonsense"},
            "layout",
            multipart=True,
        )

    def roster_import_confirm() -> Example:
        return Example(
            w.detail("roster-imports", roster_import().pk) + "confirm/",
            None,
            {"date_format": "nonsense"},
            "date_format",
        )

    def roster_import_discard() -> Example:
        return Example(
            w.detail("roster-imports", roster_import().pk) + "discard/",
            None,
            no_invalid="discard takes no body; an applied import is refused with 409 "
            "(its state, not a field)",
        )

    def item_import_create() -> Example:
        return Example(
            f"{ORG}/item-imports/",
            lambda: {"file": item_file()},
            lambda: {"file": item_file("items.pdf")},
            "file",
            multipart=True,
        )

    def item_import_confirm() -> Example:
        return Example(
            w.detail("item-imports", item_import().pk) + "confirm/",
            None,
            {"date_format": "nonsense"},
            "date_format",
        )

    def item_import_discard() -> Example:
        return Example(
            w.detail("item-imports", item_import().pk) + "discard/",
            None,
            no_invalid="discard takes no body; an applied import is refused with 409 "
            "(its state, not a field)",
        )

    def results_file(name: str = "results.csv") -> SimpleUploadedFile:
        return SimpleUploadedFile(
            name,
            b"indicator,programme_year,period,numerator,denominator\nssi_joint,2025,Q2,1,120\n",
            content_type="text/csv",
        )

    def result_import() -> Any:
        with w.scope():
            return aggregate_import.result_import_receive(
                organization=world.org,
                agreement=w.draft,
                upload=results_file(),
                user=world.users["administrator"],
            )

    def result_import_create() -> Example:
        return Example(
            f"{ORG}/indicator-result-imports/",
            lambda: {"file": results_file(), "agreement": w.draft.pk},
            lambda: {"file": results_file("results.pdf"), "agreement": w.draft.pk},
            "file",
            multipart=True,
        )

    def result_import_confirm() -> Example:
        return Example(
            w.detail("indicator-result-imports", result_import().pk) + "confirm/",
            None,
            {"date_format": "nonsense"},
            "date_format",
        )

    def result_import_discard() -> Example:
        return Example(
            w.detail("indicator-result-imports", result_import().pk) + "discard/",
            None,
            no_invalid="discard takes no body; an applied import is refused with 409 "
            "(its state, not a field)",
        )

    def items_assign() -> Example:
        agreement = w.shared_savings()
        with w.scope():
            opportunity = savings_services.opportunity_create(
                agreement=agreement,
                user=None,
                data={
                    "key": f"W{w.next()}",
                    "name": "Walk opportunity",
                    "case_types": ["CATH"],
                    "item_codes": ["A1"],
                    "savings_target": "1000.00",
                    "base_year": 2024,
                },
            )
            savings_services.item_import_apply(item_import=item_import(), user=None)
            code = Item.objects.order_by("-pk").values_list("code", flat=True)[0]
        return Example(
            f"{ORG}/items/assign/",
            {"opportunity": opportunity.pk, "item_codes": [code]},
            {"opportunity": opportunity.pk, "item_codes": ["NO-SUCH-ITEM"]},
            "item_codes",
        )

    # ------------------------------------------------------------------ adjudication

    def run_start() -> Example:
        with scopes_disabled():
            later = f.ProgrammeYearFactory(
                agreement=w.draft, number=2, start=dt.date(2026, 1, 1), end=dt.date(2026, 12, 31)
            )
        return Example(
            f"{ORG}/adjudication/runs/start/",
            {"programme_year": w.year.pk},
            {"programme_year": later.pk},
            "programme_year",
        )

    def run_scenario() -> Example:
        body = {"programme_year": w.year.pk, "overrides": {}}
        return Example(
            f"{ORG}/adjudication/runs/scenario/", body, {**body, "overrides": "none"}, "overrides"
        )

    def report_step(action: str, who: str) -> Callable[[], Example]:
        def build() -> Example:
            report = w.report()
            if action == "approve":  # the API approves only what its caller has opened
                with w.scope():
                    report.refresh_from_db()
                    signing.report_open_record(report=report, user=world.users[who])
            return Example(
                w.detail("adjudication/reports", report.pk) + f"{action}/",
                {"comment": ""},
                {"comment": {"not": "text"}},
                "comment",
                who=who,
            )

        return build

    def payment_record() -> Example:
        report = w.report()
        with scopes_disabled():
            line = report.payment_lines.order_by("position").first()
        body = {"paid_amount": str(line.amount), "paid_on": "2026-06-01", "reference": "ACH 1"}
        return Example(
            w.detail("adjudication/payment-lines", line.pk) + "record/",
            body,
            {**body, "paid_amount": str(line.amount + 1)},
            "paid_amount",
        )

    def report_verify() -> Example:
        report = w.report()
        with scopes_disabled():
            report.refresh_from_db()
            content = bytes(report.pdf)
        return Example(
            w.detail("adjudication/reports", report.pk) + "verify/",
            lambda: {"pdf": SimpleUploadedFile("report.pdf", content)},
            lambda: {"pdf": SimpleUploadedFile("empty.pdf", b"")},
            "pdf",
            multipart=True,
        )

    def report_return() -> Example:
        # A second agreement's report, submitted, for counsel to return.
        report = w.co_management_report()
        with w.scope():
            for action, who in (("review", "administrator"), ("submit", "administrator")):
                report = adjudication_services.report_transition(
                    report=report, action=action, user=world.users[who]
                )
        return Example(
            w.detail("adjudication/reports", report.pk) + "return/",
            {"comment": "The hours need a second look."},
            {"comment": " "},
            "comment",
            who="counsel",
        )

    # ------------------------------------------------------------------ people

    def invitation_create() -> Example:
        body = {"email": "new.person@riverside.example", "role": "auditor"}
        return Example(f"{ORG}/invitations/", body, {**body, "role": "nonsense"}, "role")

    def invitation_step(action: str) -> Callable[[], Example]:
        def build() -> Example:
            return Example(
                w.detail("invitations", w.invitation().pk) + f"{action}/",
                {},
                no_invalid=f"{action} takes no input; an accepted invitation is "
                "refused by its state, not by a body",
            )

        return build

    def webhook_endpoint() -> Any:
        from comanage.core.webhooks import services as webhook_services

        with w.scope():
            endpoint, _secret = webhook_services.endpoint_create(
                organization=w.org,
                url="https://127.0.0.1:9/hook",
                events=["report.approved"],
                user=None,
                description="Walk",
            )
        return endpoint

    def webhook_create() -> Example:
        return Example(
            f"{ORG}/webhooks/",
            {
                "url": "https://127.0.0.1:9/hook",
                "events": ["report.approved"],
                "description": "Accounts payable",
                "enabled": True,
            },
            {"url": "ftp://127.0.0.1:9/hook", "events": ["report.approved"]},
            "url",
        )

    def webhook_patch() -> Example:
        return Example(
            w.detail("webhooks", webhook_endpoint().pk),
            {"description": "Accounts payable", "enabled": False},
            {"events": ["no.such_event"]},
            "events",
        )

    def webhook_destroy() -> Example:
        return Example(
            w.detail("webhooks", webhook_endpoint().pk), None, no_invalid="DELETE takes no body"
        )

    def webhook_rotate() -> Example:
        return Example(
            w.detail("webhooks", webhook_endpoint().pk) + "rotate-secret/",
            {},
            no_invalid="rotate-secret takes no input",
        )

    def webhook_redeliver() -> Example:
        from comanage.core.webhooks.models import DeliveryStatus, WebhookDelivery

        endpoint = webhook_endpoint()
        with w.scope():
            delivery = WebhookDelivery.objects.create(
                organization=w.org,
                endpoint=endpoint,
                event_id=f"msg_walk{w.next()}",
                event_type="report.approved",
                payload="{}",
                status=DeliveryStatus.FAILED,
            )
        return Example(
            w.detail("webhook-deliveries", delivery.pk) + "redeliver/",
            {},
            no_invalid="redeliver takes no input; a delivery being sent is refused "
            "by its state, not by a body",
        )

    def member_role() -> Example:
        return Example(
            w.detail("members", w.member().pk) + "role/",
            {"role": "executive"},
            {"role": "nonsense"},
            "role",
        )

    def member_deactivate() -> Example:
        return Example(
            w.detail("members", w.member().pk) + "deactivate/",
            {},
            no_invalid="deactivate takes no input; the last administrator is "
            "refused by their state, not by a body",
        )

    def member_reactivate() -> Example:
        return Example(
            w.detail("members", w.member(active=False).pk) + "reactivate/",
            {},
            no_invalid="reactivate takes no input",
        )

    def member_destroy() -> Example:
        return Example(w.detail("members", w.member().pk), None, no_invalid="DELETE has no body")

    # ------------------------------------------------------------------ tokens

    def token_create() -> Example:
        return Example(
            "/api/v1/tokens/",
            {"name": "nightly export", "expires_in_days": 90},
            {"name": "nightly", "expires_in_days": 5000},
            "expires_in_days",
            session=True,
        )

    def token_destroy() -> Example:
        token, _raw = ApiToken.issue(user=world.users["administrator"], name="old")
        return Example(
            f"/api/v1/tokens/{token.pk}/", None, no_invalid="DELETE has no body", session=True
        )

    p = "organizations_"
    return {
        # Order matters only where an operation acts on what an earlier one left.
        f"{p}agreements_create": lambda: Example(
            f"{ORG}/agreements/",
            w.agreements_body(),
            w.agreements_body(term_end="2025-12-31"),
            "term_end",
        ),
        f"{p}agreements_update": agreement_put,
        f"{p}agreements_partial_update": agreement_patch,
        f"{p}agreements_transition_create": transition,
        f"{p}agreement_terms_create": terms_create,
        f"{p}agreement_terms_update": terms_put,
        f"{p}agreement_terms_partial_update": terms_patch,
        f"{p}practices_create": practice_create,
        f"{p}practices_update": practice_write,
        f"{p}practices_partial_update": practice_write,
        f"{p}physicians_create": physician_create,
        f"{p}physicians_update": physician_write,
        f"{p}physicians_partial_update": physician_write,
        f"{p}participations_create": participation_create,
        f"{p}participations_update": participation_put,
        f"{p}participations_partial_update": participation_patch,
        f"{p}fmv_opinions_create": fmv_create,
        f"{p}fmv_opinions_update": fmv_put,
        f"{p}fmv_opinions_partial_update": fmv_patch,
        f"{p}duties_create": duty_create,
        f"{p}duties_update": duty_put,
        f"{p}duties_partial_update": duty_patch,
        f"{p}committee_meetings_create": meeting_create,
        f"{p}committee_meetings_update": meeting_put,
        f"{p}committee_meetings_partial_update": meeting_patch,
        f"{p}compliance_flags_resolve_create": flag_resolve,
        f"{p}documents_create": document_create,
        f"{p}timesheets_create": timesheet_create,
        f"{p}timesheets_submit_create": timesheet_submit,
        f"{p}timesheets_approve_create": timesheet_approve,
        f"{p}timesheets_return_create": timesheet_return,
        f"{p}milestones_create": milestone_create,
        f"{p}milestones_update": milestone_put,
        f"{p}milestones_partial_update": milestone_patch,
        f"{p}adjudication_runs_start_create": run_start,
        f"{p}adjudication_runs_scenario_create": run_scenario,
        f"{p}adjudication_reports_review_create": report_step("review", "administrator"),
        f"{p}adjudication_reports_submit_create": report_step("submit", "administrator"),
        f"{p}adjudication_reports_approve_create": report_step("approve", "counsel"),
        f"{p}adjudication_reports_authorise_create": report_step("authorise", "ceo"),
        f"{p}adjudication_payment_lines_record_create": payment_record,
        f"{p}adjudication_reports_verify_create": report_verify,
        f"{p}adjudication_reports_return_create": report_return,
        f"{p}indicator_definitions_create": definition_create,
        f"{p}indicator_definitions_update": definition_put,
        f"{p}indicator_definitions_partial_update": definition_patch,
        f"{p}indicator_definitions_destroy": definition_destroy,
        f"{p}indicator_results_create": result_create,
        f"{p}indicator_action_plans_create": action_plan_create,
        f"{p}indicator_imports_create": import_create,
        f"{p}indicator_imports_discard_create": import_discard,
        f"{p}savings_opportunities_create": opportunity_create,
        f"{p}savings_calculations_run_create": savings_run,
        f"{p}savings_imports_create": savings_import_create,
        f"{p}savings_imports_confirm_create": savings_import_confirm,
        f"{p}savings_imports_discard_create": savings_import_discard,
        f"{p}roster_imports_create": roster_import_create,
        f"{p}roster_imports_confirm_create": roster_import_confirm,
        f"{p}roster_imports_discard_create": roster_import_discard,
        f"{p}indicator_result_imports_create": result_import_create,
        f"{p}indicator_result_imports_confirm_create": result_import_confirm,
        f"{p}indicator_result_imports_discard_create": result_import_discard,
        f"{p}item_imports_create": item_import_create,
        f"{p}item_imports_confirm_create": item_import_confirm,
        f"{p}item_imports_discard_create": item_import_discard,
        f"{p}items_assign_create": items_assign,
        f"{p}invitations_create": invitation_create,
        f"{p}invitations_resend_create": invitation_step("resend"),
        f"{p}invitations_revoke_create": invitation_step("revoke"),
        f"{p}members_role_create": member_role,
        f"{p}members_deactivate_create": member_deactivate,
        f"{p}members_reactivate_create": member_reactivate,
        f"{p}members_destroy": member_destroy,
        f"{p}webhooks_create": webhook_create,
        f"{p}webhooks_partial_update": webhook_patch,
        f"{p}webhooks_rotate_secret_create": webhook_rotate,
        f"{p}webhook_deliveries_redeliver_create": webhook_redeliver,
        f"{p}webhooks_destroy": webhook_destroy,
        "tokens_create": token_create,
        "tokens_destroy": token_destroy,
    }


class _NoWorld:
    """Stands in for a world to read the table's keys without building any example."""

    def __getattr__(self, name: str) -> Any:
        return self

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self


def example_operation_ids() -> list[str]:
    """The operations the table has examples for, in walk order (nothing is built)."""
    return list(examples_for(_NoWorld()))


def walk_day() -> Any:
    """Local noon of ``TODAY``, the clock standing still: the examples' dates assume it."""
    moment = dt.datetime.combine(TODAY, dt.time(12), zoneinfo.ZoneInfo(settings.TIME_ZONE))
    return time_machine.travel(moment, tick=False)


def explicit_cases(world: Any, tokens: dict[str, str]) -> Any:
    """The table as the fuzz's explicit cases (tests.api.fuzzing.ExplicitCase): per
    operation in walk order, the refused body then the valid one, each built when reached.
    ``tokens`` maps the roles the examples act as (administrator, counsel, ceo) to raw tokens."""
    from tests.api.fuzzing import ExplicitCase

    w = Walk(world)
    examples = examples_for(w)
    operations = {operation_id: (method, path) for operation_id, method, path in write_operations()}
    for operation_id in examples:
        method, path = operations[operation_id]
        example = examples[operation_id]()
        if example.session:
            continue  # a token cannot send it (the walk does, from a session)
        bodies = [example.valid] if example.invalid is None else [example.invalid, example.valid]
        for body in bodies:
            body = body() if callable(body) else body
            files = None
            if example.multipart and body is not None:
                files = {
                    name: (value.name, value.read())
                    for name, value in body.items()
                    if isinstance(value, SimpleUploadedFile)
                }
                body = {name: value for name, value in body.items() if name not in files}
            yield ExplicitCase(
                method=method,
                path=path,
                url=example.url,
                body=body,
                files=files,
                token=tokens[example.who],
            )
