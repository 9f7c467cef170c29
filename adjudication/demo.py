"""Demo adjudications (runs last in ``manage.py seed_demo``, inside ``scopes_disabled()``).

Orthopedic co-management: 2024 taken all the way to paid, 2025 waiting for counsel. Cardiac
cath lab shared savings: 2025 (example A) approved by counsel, waiting for the CEO. Whatever
the other apps' demo data do not provide is skipped quietly.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from django_scopes import scope

from agreements.models import Agreement, ProgrammeYear
from comanage.core.audit import acting_as
from comanage.core.models import Role

from . import services
from .models import PaymentLine

ORTHO = "Orthopedic Service Line Co-Management"
CATH = "Cardiac Cath Lab Shared Savings Programme"


def _year(agreement_name: str, calendar_year: int, organization: Any) -> ProgrammeYear | None:
    agreement = Agreement.objects.filter(organization=organization, name=agreement_name).first()
    if agreement is None:
        return None
    return ProgrammeYear.objects.filter(agreement=agreement, start__year=calendar_year).first()


def _take(report, users, steps, stdout):
    who = {
        "review": Role.ADMINISTRATOR,
        "submit": Role.ADMINISTRATOR,
        "approve": Role.COUNSEL,
        "authorise": Role.CEO,
    }
    for step in steps:
        user = users[who[step]]
        with acting_as(user):
            report = services.report_transition(
                report=report,
                action=step,
                user=user,
                comment="Reviewed against the source data." if step == "approve" else "",
            )
    return report


def _adjudicate(organization, users, name, calendar_year, steps, stdout, pay=False):
    year = _year(name, calendar_year, organization)
    if year is None:
        stdout.write(f"  adjudication: {name} {calendar_year} not in the demo data, skipped")
        return None
    admin = users[Role.ADMINISTRATOR]
    try:
        with acting_as(admin):
            outcome = services.adjudication_run(programme_year=year, user=admin)
    except services.AdjudicationError as exc:
        stdout.write(f"  adjudication: {name} {calendar_year} skipped: {exc}")
        return None
    report = outcome.report or outcome.run.report
    try:
        report = _take(report, users, steps, stdout)
    except services.AdjudicationError as exc:
        stdout.write(f"  adjudication: {name} {calendar_year} stopped: {exc}")
    services.report_render(report=report)
    if pay and report.status == "payment_authorised":
        paid_on = dt.date(calendar_year + 1, 2, 14)
        with acting_as(admin):
            for line in PaymentLine.objects.filter(report=report, paid_on__isnull=True):
                services.payment_record(
                    line=line,
                    paid_amount=line.amount,
                    paid_on=paid_on,
                    reference=f"AP-{calendar_year + 1}-{line.position + 1:03d}",
                    user=admin,
                )
    report.refresh_from_db()
    total = report.run.read.totals.total_to_pay
    stdout.write(
        f"  adjudication: {name} {calendar_year}: report v{report.version} "
        f"{report.get_status_display().lower()}, total {total}"
    )
    return report


def seed(*, organization, users, password, stdout) -> None:
    with scope(organization=organization):
        _adjudicate(
            organization,
            users,
            ORTHO,
            2024,
            ["review", "submit", "approve", "authorise"],
            stdout,
            pay=True,
        )
        _adjudicate(organization, users, ORTHO, 2025, ["review", "submit"], stdout)
        _adjudicate(organization, users, CATH, 2025, ["review", "submit", "approve"], stdout)
