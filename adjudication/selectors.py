"""Read-side queries of the adjudication app."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.db.models import QuerySet, Sum

from agreements.models import ProgrammeYear

from .models import (
    FROZEN_STATUSES,
    AdjudicationReport,
    CalculationRun,
    PaymentLine,
    PhysicianStatement,
    ReportStatus,
)


def programme_years_overview() -> list[dict[str, Any]]:
    """Every programme year with its latest run and its current report."""
    years = ProgrammeYear.objects.select_related("agreement").order_by("agreement__name", "number")
    runs: dict[int, CalculationRun] = {}
    for run in CalculationRun.objects.order_by("programme_year_id", "-version"):
        runs.setdefault(run.programme_year_id, run)
    reports: dict[int, AdjudicationReport] = {}
    for report in AdjudicationReport.objects.exclude(status=ReportStatus.SUPERSEDED).order_by(
        "programme_year_id", "-version"
    ):
        reports.setdefault(report.programme_year_id, report)
    return [{"year": y, "run": runs.get(y.pk), "report": reports.get(y.pk)} for y in years]


def runs_for_year(*, programme_year: ProgrammeYear) -> QuerySet[CalculationRun]:
    return CalculationRun.objects.filter(programme_year=programme_year).order_by("-version")


def reports_in_status(*, status: str) -> QuerySet[AdjudicationReport]:
    return (
        AdjudicationReport.objects.filter(status=status)
        .select_related("agreement", "programme_year", "run")
        .order_by("created_at")
    )


def payment_totals(*, report: AdjudicationReport) -> dict[str, Decimal]:
    lines = PaymentLine.objects.filter(report=report)
    total = lines.aggregate(s=Sum("amount"))["s"] or Decimal("0.00")
    paid = lines.filter(paid_on__isnull=False).aggregate(s=Sum("paid_amount"))["s"] or Decimal(
        "0.00"
    )
    return {"total": total, "paid": paid, "outstanding": total - paid}


def statements_visible(*, membership: Any) -> QuerySet[PhysicianStatement]:
    """Statements of frozen reports; a physician sees only their own."""
    qs = PhysicianStatement.objects.filter(report__status__in=FROZEN_STATUSES).select_related(
        "report", "report__agreement", "report__programme_year", "physician"
    )
    if membership.role == "physician":
        qs = qs.filter(physician_id=membership.physician_id)
    return qs.order_by("-report__programme_year__start", "physician__last_name")


@dataclass(frozen=True)
class AwaitingShare:
    """One physician's part of what awaits payment (a forfeit is shown at $0.00, not paid)."""

    physician: str
    amount: Decimal
    agreements: tuple[str, ...]

    @property
    def forfeited(self) -> bool:
        return self.amount <= 0


@dataclass(frozen=True)
class AwaitingPayment:
    total: Decimal  # approved or authorised, less what is already recorded as paid
    to_authorise: Decimal  # of which still awaiting the CEO's authorisation
    reports: int
    shares: list[AwaitingShare]

    @property
    def physicians_to_pay(self) -> int:
        return sum(1 for s in self.shares if not s.forfeited)

    @property
    def physicians_forfeited(self) -> int:
        return sum(1 for s in self.shares if s.forfeited)


def payments_awaiting() -> AwaitingPayment:
    """What approved reports still have to pay, in total and per physician: reports approved
    by counsel (awaiting authorisation) and authorised ones, less payments already recorded."""
    reports = list(
        AdjudicationReport.objects.filter(
            status__in=(ReportStatus.APPROVED, ReportStatus.AUTHORISED)
        ).select_related("agreement", "run")
    )
    total = to_authorise = Decimal("0.00")
    shares: dict[int, list[Any]] = {}  # physician id -> [name, amount, agreements]
    paid_lines = PaymentLine.objects.filter(report__in=reports, paid_on__isnull=False)
    paid_by_report: dict[int, Decimal] = {}
    paid_by_physician: dict[int, Decimal] = {}
    for report_id, physician_id, paid in paid_lines.values_list(
        "report_id", "physician_id", "paid_amount"
    ):
        paid_by_report[report_id] = paid_by_report.get(report_id, Decimal("0.00")) + (paid or 0)
        if physician_id is not None:
            paid_by_physician[physician_id] = paid_by_physician.get(
                physician_id, Decimal("0.00")
            ) + (paid or 0)
    for report in reports:
        due = report.run.read.totals.total_to_pay or Decimal("0")
        outstanding = due - paid_by_report.get(report.pk, Decimal("0.00"))
        total += outstanding
        if report.status == ReportStatus.APPROVED:
            to_authorise += outstanding
        for d in report.run.distributions.select_related("physician"):
            row = shares.setdefault(d.physician_id, [d.physician, Decimal("0.00"), []])
            row[1] += d.amount
            if report.agreement.name not in row[2]:
                row[2].append(report.agreement.name)
    rows = [
        AwaitingShare(
            physician=physician.full_name,
            amount=max(amount - paid_by_physician.get(pk, Decimal("0.00")), Decimal("0.00")),
            agreements=tuple(names),
        )
        for pk, (physician, amount, names) in shares.items()
    ]
    rows.sort(key=lambda s: (s.forfeited, -s.amount, s.physician))
    return AwaitingPayment(
        total=total, to_authorise=to_authorise, reports=len(reports), shares=rows
    )
