"""Adjudication test helpers: example C (co-management) and example A (shared savings) built
from the pure engines, recorded through ``calculation_record`` (no other app's data needed)."""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Iterator
from decimal import Decimal

import pytest
from django_scopes import scopes_disabled

from adjudication import services
from adjudication.calculation import ParticipantShare, payload_assemble
from agreements import fees
from agreements.models import AgreementKind
from indicators.scoring import IncentiveTerms, IndicatorResult, IndicatorTerms, incentive_compute
from tests import factories as f

YEAR = (dt.date(2025, 1, 1), dt.date(2025, 12, 31))

INDICATORS = [
    IndicatorTerms.standard(
        key="ssi",
        name="SSI after joint replacement %",
        direction="lower_is_better",
        weight=25,
        threshold="1.8",
        target="1.4",
        stretch="1.0",
    ),
    IndicatorTerms.standard(
        key="los",
        name="Median length of stay, days",
        direction="lower_is_better",
        weight=20,
        threshold="2.2",
        target="2.0",
        stretch="1.8",
    ),
    IndicatorTerms.standard(
        key="pex",
        name="Patient experience top-box %",
        direction="higher_is_better",
        weight=20,
        threshold=75,
        target=80,
        stretch=85,
    ),
    IndicatorTerms.standard(
        key="vte",
        name="VTE prophylaxis %",
        direction="higher_is_better",
        weight=20,
        threshold=90,
        target=95,
        stretch=98,
        minimum_denominator=10,
    ),
    IndicatorTerms.standard(
        key="readm",
        name="30-day readmission %",
        direction="lower_is_better",
        weight=15,
        threshold=8,
        target=6,
        stretch=4,
        minimum_denominator=25,
    ),
]
RESULTS = {
    "ssi": ("1.2", 400),
    "los": ("1.9", 400),
    "pex": ("86.0", 300),
    "vte": ("92.3077", 13),
    "readm": ("5.0", 18),
}


def incentive_example_c(scores: dict | None = None):  # type: ignore[no-untyped-def]
    scores = {**RESULTS, **(scores or {})}
    return incentive_compute(
        terms=IncentiveTerms(pool=Decimal("400000.00")),
        indicators=INDICATORS,
        results=[
            IndicatorResult(key=k, score=Decimal(v), denominator=n) for k, (v, n) in scores.items()
        ],
    )


def definitions_input():  # type: ignore[no-untyped-def]
    return {
        "definitions": [
            {
                "key": i.key,
                "name": i.name,
                "weight": str(i.weight),
                "tiers": [[t.name, str(t.cut_point), str(t.payout_pct)] for t in i.tiers],
            }
            for i in INDICATORS
        ]
    }


@pytest.fixture
def co_management(world):  # type: ignore[no-untyped-def]
    """Example C: agreement, year, FMV opinion, two participating physicians."""
    org = world.org
    agreement = f.AgreementFactory(
        organization=org, name="Orthopedic co-management", kind=AgreementKind.CO_MANAGEMENT
    )
    f.TermsFactory(agreement=agreement)
    year = f.ProgrammeYearFactory(agreement=agreement)
    f.FMVOpinionFactory(agreement=agreement)
    from agreements import models as am

    duty = f.DutyFactory(agreement=agreement, required_monthly_hours=Decimal("67"))
    for physician in (world.physician, world.other_physician):
        f.ParticipationFactory(agreement=agreement, physician=physician)
        with scopes_disabled():
            for month in fees.months_between(*YEAR):
                sheet = am.TimeSheet.objects.create(
                    organization=org,
                    agreement=agreement,
                    physician=physician,
                    month=month,
                    status=am.TimeSheetStatus.APPROVED,
                )
                am.TimeEntry.objects.create(
                    organization=org,
                    timesheet=sheet,
                    duty=duty,
                    hours=Decimal("67.5"),
                    description="Duties",
                )
    return agreement, year


def co_management_payload(world, year, *, scores=None, hours=Decimal("135")):  # type: ignore[no-untyped-def]
    months = fees.months_between(*YEAR)
    schedule = fees.fee_schedule(
        annual_fee=Decimal("400000.00"),
        months=months,
        required_hours=Decimal("133.33"),
        approved_hours=dict.fromkeys(months, hours),
        policy="hold",
    )
    context = {
        "agreement": {
            "id": year.agreement_id,
            "name": year.agreement.name,
            "kind": "co_management",
            "practice": year.agreement.practice.name,
            "service_line": "Orthopedics",
            "term_start": "2025-01-01",
            "term_end": "2026-12-31",
        },
        "programme_year": {
            "id": year.pk,
            "number": 1,
            "start": "2025-01-01",
            "end": "2025-12-31",
            "label": year.label,
        },
        "terms": {
            "version": 1,
            "effective_from": "2025-01-01",
            "annual_fixed_fee": "400000.00",
            "incentive_pool": "400000.00",
            "hours_shortfall_policy": "hold",
        },
    }
    shares = [
        ParticipantShare(
            physician_id=p.pk,
            last_name=p.last_name,
            first_name=p.first_name,
            participation_days=365,
            year_days=365,
        )
        for p in (world.physician, world.other_physician)
    ]
    fmv = services._fmv_dict(year)
    return payload_assemble(
        kind="co_management",
        rules_version="2026.1",
        context=context,
        incentive=incentive_example_c(scores),
        incentive_inputs={**definitions_input(), "scores": scores or {}},
        fixed_fee_schedule=schedule,
        fixed_fee_inputs={"hours": str(hours)},
        participants=shares,
        fmv=fmv,
    )


@pytest.fixture
def recorded(world, co_management):  # type: ignore[no-untyped-def]
    """Example C recorded as run version 1 with its draft report, whose PDF is not rendered.

    Rendering a PDF costs WeasyPrint most of a second, and most tests only read the stored
    figures, pages or transitions; a test that reads the draft's PDF, its hash or anything the
    render sets asks for ``rendered`` instead (or renders explicitly after a transition).
    """
    _agreement, year = co_management
    with world.scope():
        return services.calculation_record(
            programme_year=year,
            payload=co_management_payload(world, year),
            user=world.users["administrator"],
        )


@pytest.fixture
def rendered(world, recorded):  # type: ignore[no-untyped-def]
    """``recorded`` with the draft report's PDF rendered, as the render task leaves it."""
    with world.scope():
        services.report_render(report=recorded.report)
    return recorded


@contextlib.contextmanager
def render_task_noted() -> Iterator[list[int]]:
    """Within the block, the render task notes the report it was asked to render instead of
    rendering it; yields the ids noted, in order.

    For tests that run the transitions' on-commit callbacks (for the e-mails and webhooks they
    check) but read no PDF. Each transition still queues the render task, which still runs in
    the report's organization and loads the report; only WeasyPrint (most of a second a PDF) is
    skipped, and the report is left as before the worker gets to it. A render there could not
    fail such a test anyway: the on-commit sender catches and logs whatever the task raises.
    """
    asked: list[int] = []

    def note(*, report):  # type: ignore[no-untyped-def]
        asked.append(report.pk)
        return report

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(services, "report_render", note)
        yield asked


@pytest.fixture
def render_task_skipped():  # type: ignore[no-untyped-def]
    """``render_task_noted`` for the whole test; the ids of the reports the task was asked for."""
    with render_task_noted() as asked:
        yield asked


def advance(world, report, *actions):  # type: ignore[no-untyped-def]
    who = {
        "review": "administrator",
        "submit": "administrator",
        "approve": "counsel",
        "return": "counsel",
        "authorise": "ceo",
    }
    with world.scope():
        for action in actions:
            report = services.report_transition(
                report=report,
                action=action,
                user=world.users[who[action]],
                comment="Figures need a second look." if action == "return" else "",
            )
    return report


@pytest.fixture
def no_scope():  # type: ignore[no-untyped-def]
    with scopes_disabled():
        yield
