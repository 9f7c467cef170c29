"""What a hospital's accounts-payable system reads: an approved report's payment lines, with
payee, NPI or practice tax id, amount, programme year and the report's id and hashes.

Read-only. From counsel's approval on the figures are frozen, so the lines are known: stored
lines once the CEO authorises (with what was paid), planned lines (``payment_lines_plan``,
the same rule, not stored) between approval and authorisation.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from comanage.core.serialise import money_text

from .models import FROZEN_STATUSES, AdjudicationReport, PaymentLine, ReportStatus
from .services import payment_lines_plan

COLUMNS = [
    "report_id",
    "report_version",
    "report_status",
    "calculation_hash",
    "pdf_sha256",
    "agreement_id",
    "agreement",
    "programme_year_id",
    "programme_year",
    "programme_year_start",
    "programme_year_end",
    "line_id",
    "line_key",
    "kind",
    "payee",
    "npi",
    "practice_tax_id",
    "description",
    "amount",
    "line_status",
    "paid_amount",
    "paid_on",
    "reference",
]


class ExportNotReady(Exception):
    """The report is not approved yet: its figures may still change (409)."""


def payment_lines_export(*, report: AdjudicationReport) -> dict[str, Any]:
    """The report's payment lines as plain data (money as strings with two decimals)."""
    if report.status not in FROZEN_STATUSES:
        raise ExportNotReady(
            f"Payment lines are exported from counsel's approval on; this report is "
            f"{report.get_status_display().lower()}."
        )
    stored = list(
        PaymentLine.objects.filter(report=report)
        .select_related("physician")
        .order_by("position", "pk")
    )
    lines = stored or payment_lines_plan(report=report)
    agreement, year = report.agreement, report.programme_year
    practice = agreement.practice
    summary = {
        "report_id": report.pk,
        "report_version": report.version,
        "report_status": report.status,
        "calculation_hash": report.calculation_hash,
        "pdf_sha256": report.pdf_sha256 or None,
        "agreement_id": agreement.pk,
        "agreement": agreement.name,
        "programme_year_id": year.pk,
        "programme_year": year.label,
        "programme_year_start": year.start.isoformat(),
        "programme_year_end": year.end.isoformat(),
    }
    rows = []
    for line in lines:
        if not stored:
            status = "planned"
        elif line.paid_on:
            status = "paid"
        else:
            status = "authorised"
        physician = line.physician if line.physician_id else None
        rows.append(
            {
                "line_id": line.pk,
                "line_key": line.line_key,
                "kind": line.kind,
                "payee": line.payee,
                "npi": physician.npi if physician else None,
                "practice_tax_id": practice.tax_id or None,
                "description": line.description,
                "amount": money_text(line.amount),
                "line_status": status,
                "paid_amount": money_text(line.paid_amount),
                "paid_on": line.paid_on.isoformat() if line.paid_on else None,
                "reference": line.reference or None,
            }
        )
    total = sum((line.amount for line in lines), Decimal("0"))
    paid = sum((line.paid_amount or Decimal("0") for line in lines), Decimal("0"))
    return {
        "report": summary,
        "lines": rows,
        "total": money_text(total),
        "paid": money_text(paid),
        "authorised": report.status in (ReportStatus.AUTHORISED, ReportStatus.PAID),
    }


def payment_lines_rows(export: dict[str, Any]) -> list[list[Any]]:
    """One CSV row per line, each carrying the report's columns (``COLUMNS`` order)."""
    return [[{**export["report"], **line}.get(c) for c in COLUMNS] for line in export["lines"]]
