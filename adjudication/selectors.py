"""Read-side queries of the adjudication app."""

from __future__ import annotations

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
