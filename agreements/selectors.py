"""Reads of agreement data that other apps (indicators, savings, adjudication) build on.

Every function runs inside the caller's tenant scope; none of them crosses organizations.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.db.models import Q, QuerySet, Sum
from django.utils import timezone

from comanage.core.money import ZERO, round_percentage
from comanage.core.versioning import data_version, page_cached

from . import fees
from .fees import InstalmentLine
from .models import (
    Agreement,
    AgreementKind,
    AgreementStatus,
    AgreementTerms,
    CommitteeMeeting,
    ComplianceFlag,
    FMVOpinion,
    Milestone,
    MilestoneStatus,
    Participation,
    Physician,
    ProgrammeYear,
    TimeEntry,
    TimeSheet,
    TimeSheetStatus,
)


def terms_pick(
    terms: Iterable[AgreementTerms], *, on: dt.date, else_first: bool = False
) -> AgreementTerms | None:
    """The one rule for "which terms version is in force on ``on``": the version with the
    latest ``effective_from`` not after ``on`` (``effective_from`` is unique per agreement).

    Before the first version takes effect there is none, unless ``else_first`` asks for the
    first version (pages showing an agreement that has not started yet). Works on a prefetched
    list as well as on a queryset, so list pages need no query per agreement.
    """
    versions = list(terms)
    in_force = [t for t in versions if t.effective_from <= on]
    if in_force:
        return max(in_force, key=lambda t: t.effective_from)
    if else_first and versions:
        return min(versions, key=lambda t: t.version)
    return None


def terms_in_force(
    *, agreement: Agreement | int, on: dt.date, else_first: bool = False
) -> AgreementTerms | None:
    """The terms version in force on ``on`` (see :func:`terms_pick`)."""
    agreement_id = agreement if isinstance(agreement, int) else agreement.pk
    return terms_pick(
        AgreementTerms.objects.filter(agreement_id=agreement_id), on=on, else_first=else_first
    )


def terms_current(*, agreement: Agreement, today: dt.date | None = None) -> AgreementTerms | None:
    """The version in force today, else the first one (an agreement not yet started)."""
    return terms_in_force(agreement=agreement, on=today or timezone.localdate(), else_first=True)


def terms_for_year(*, programme_year: ProgrammeYear) -> AgreementTerms:
    """The terms version in force on the programme year's first day (spec 2: set in advance)."""
    terms = terms_in_force(agreement=programme_year.agreement_id, on=programme_year.start)
    if terms is None:
        raise AgreementTerms.DoesNotExist(
            f"No terms of {programme_year.agreement} are in force on {programme_year.start}."
        )
    return terms


def terms_latest(*, agreement: Agreement) -> AgreementTerms | None:
    return AgreementTerms.objects.filter(agreement=agreement).order_by("-version").first()


def fmv_opinion_covering(
    *, agreement: Agreement, start: dt.date, end: dt.date
) -> FMVOpinion | None:
    """The most recently issued FMV opinion covering the whole range [start, end]."""
    return (
        FMVOpinion.objects.filter(
            agreement=agreement, effective_start__lte=start, effective_end__gte=end
        )
        .order_by("-issue_date", "-pk")
        .first()
    )


def participation_active_q(start: dt.date, end: dt.date) -> Q:
    """Participations overlapping [start, end] (joined by the end, not gone before the start)."""
    return (
        Q(join_date__lte=end)
        & (Q(leave_date__isnull=True) | Q(leave_date__gte=start))
        & (Q(termination_date__isnull=True) | Q(termination_date__gte=start))
    )


def participants_for_year(*, programme_year: ProgrammeYear) -> list[Participation]:
    """Every participation overlapping the year, leavers and terminated physicians included
    (the savings calculation needs them to exclude cases and to pro-rate or forfeit shares)."""
    return list(
        Participation.objects.select_related("physician")
        .filter(agreement_id=programme_year.agreement_id)
        .filter(participation_active_q(programme_year.start, programme_year.end))
        .order_by("physician__last_name", "physician__first_name", "physician_id")
    )


def participation_covers_month(participation: Participation, month: dt.date) -> bool:
    month_end = fees.month_end(month)
    end = participation.end_date
    return participation.join_date <= month_end and (end is None or end >= month)


def required_monthly_hours(*, agreement: Agreement) -> Decimal:
    total = agreement.duties.aggregate(total=Sum("required_monthly_hours"))["total"]
    return total if total is not None else ZERO


def approved_hours_by_month(
    *, agreement: Agreement, start: dt.date, end: dt.date
) -> dict[dt.date, Decimal]:
    rows = (
        TimeEntry.objects.filter(
            timesheet__agreement=agreement,
            timesheet__status=TimeSheetStatus.APPROVED,
            timesheet__month__gte=start.replace(day=1),
            timesheet__month__lte=end,
        )
        .values("timesheet__month")
        .annotate(total=Sum("hours"))
    )
    return {r["timesheet__month"]: r["total"] for r in rows}


def fixed_fee_schedule(*, programme_year: ProgrammeYear) -> list[InstalmentLine]:
    """The year's monthly fixed-fee instalments with the hours behind each and what is payable
    under the terms' ``hours_shortfall_policy`` (spec 2, example C)."""
    agreement = programme_year.agreement
    terms = terms_for_year(programme_year=programme_year)
    months = fees.fee_months(programme_year.start, programme_year.end)  # spec 4 "fee months"
    return fees.fee_schedule(
        annual_fee=terms.annual_fixed_fee or ZERO,
        months=months,
        required_hours=required_monthly_hours(agreement=agreement),
        approved_hours=approved_hours_by_month(
            agreement=agreement, start=programme_year.start, end=programme_year.end
        ),
        policy=terms.hours_shortfall_policy,
    )


def months_missing_logs(
    *, programme_year: ProgrammeYear, until: dt.date | None = None
) -> list[tuple[dt.date, Physician]]:
    """(month, physician) pairs of the year, up to ``until``, with no approved time sheet."""
    approved = set(
        TimeSheet.objects.filter(
            agreement_id=programme_year.agreement_id,
            status=TimeSheetStatus.APPROVED,
            month__gte=programme_year.start.replace(day=1),
            month__lte=programme_year.end,
        ).values_list("month", "physician_id")
    )
    missing = []
    participations = participants_for_year(programme_year=programme_year)
    for month in fees.months_between(programme_year.start, programme_year.end):
        if until is not None and month > until:
            break
        for participation in participations:
            if participation_covers_month(participation, month) and (
                (month, participation.physician_id) not in approved
            ):
                missing.append((month, participation.physician))
    return missing


def approval_blockers(*, programme_year: ProgrammeYear) -> list[str]:
    """Why a report for this year cannot be approved yet (spec 2 and 5); empty when none."""
    agreement = programme_year.agreement
    blockers: list[str] = []
    fmv = fmv_opinion_covering(
        agreement=agreement, start=programme_year.start, end=programme_year.end
    )
    if fmv is None:
        blockers.append(
            f"No FMV opinion covers {programme_year.start:%b %-d, %Y} – "
            f"{programme_year.end:%b %-d, %Y}."
        )
    try:
        terms = terms_for_year(programme_year=programme_year)
    except AgreementTerms.DoesNotExist as exc:
        blockers.append(str(exc))
        terms = None
    if fmv is not None and terms is not None and agreement.kind == AgreementKind.CO_MANAGEMENT:
        total = (terms.annual_fixed_fee or ZERO) + (terms.incentive_pool or ZERO)
        if total > fmv.total_max_annual:
            blockers.append(
                f"Fixed fee plus incentive pool ({total:,.2f}) exceeds the FMV "
                f"maximum ({fmv.total_max_annual:,.2f})."
            )
    open_blocking = ComplianceFlag.objects.filter(
        agreement=agreement, blocking=True, resolved_at__isnull=True
    ).filter(Q(programme_year__isnull=True) | Q(programme_year=programme_year))
    for flag in open_blocking:
        blockers.append(f"Blocking compliance flag open: {flag.message}")
    if agreement.kind == AgreementKind.CO_MANAGEMENT:
        missing = months_missing_logs(programme_year=programme_year)
        if missing:
            months = sorted({m for m, _ in missing})
            shown = ", ".join(f"{m:%b %Y}" for m in months[:6])
            more = f" and {len(months) - 6} more" if len(months) > 6 else ""
            blockers.append(f"Time logs not approved for {shown}{more}.")
    return blockers


@dataclass(frozen=True)
class AttendanceRow:
    physician: Physician
    meetings_held: int
    attended: int

    @property
    def rate_pct(self) -> Decimal | None:
        if not self.meetings_held:
            return None
        return round_percentage(Decimal(self.attended) * 100 / self.meetings_held)


def committee_attendance(*, programme_year: ProgrammeYear) -> list[AttendanceRow]:
    """Per physician: meetings held while they participated in the year, and attended."""
    meetings = list(
        CommitteeMeeting.objects.filter(
            agreement_id=programme_year.agreement_id,
            held_on__gte=programme_year.start,
            held_on__lte=programme_year.end,
        ).prefetch_related("physicians_present")
    )
    rows = []
    for participation in participants_for_year(programme_year=programme_year):
        end = participation.end_date
        eligible = [
            m
            for m in meetings
            if m.held_on >= participation.join_date and (end is None or m.held_on <= end)
        ]
        attended = sum(
            1
            for m in eligible
            if any(p.pk == participation.physician_id for p in m.physicians_present.all())
        )
        rows.append(AttendanceRow(participation.physician, len(eligible), attended))
    return rows


def milestones_overdue(
    *, organization_id: int | None = None, today: dt.date
) -> QuerySet[Milestone]:
    return Milestone.objects.filter(due_date__lt=today).exclude(status=MilestoneStatus.DONE)


def agreements_for_physician(*, physician: Physician) -> QuerySet[Agreement]:
    return Agreement.objects.filter(participations__physician=physician).distinct()


def agreement_search(
    *, query: str = "", status: str = "", kind: str = "", physician: Physician | None = None
) -> QuerySet[Agreement]:
    qs = Agreement.objects.select_related("practice")
    if physician is not None:
        qs = qs.filter(participations__physician=physician).distinct()
    if query:
        qs = qs.filter(
            Q(name__icontains=query)
            | Q(practice__name__icontains=query)
            | Q(service_line__icontains=query)
            | Q(service_line_custom__icontains=query)
        )
    if status:
        qs = qs.filter(status=status)
    if kind:
        qs = qs.filter(kind=kind)
    return qs


# --------------------------------------------------------------------------- the detail page
# Cached under the organization's data version: a write to any of its rows is seen at once.
# (The 1 after the page name is the format of the cached value: change it with its shape.)


def agreement_page_version(*, organization_id: int) -> int:
    """The organization's data version, read by a page before any data: what it caches under
    that version (here and in its template's ``{% cache %}`` blocks) is never older than it."""
    return data_version(organization_id)


def _agreement_detail_sections(agreement: Agreement) -> dict[str, Any]:
    # Imported here: the services module reads through this one.
    from . import services

    year_rows = []
    for year in agreement.programme_years.all():
        try:
            terms = terms_for_year(programme_year=year)
        except AgreementTerms.DoesNotExist:
            terms = None
        fmv = fmv_opinion_covering(agreement=agreement, start=year.start, end=year.end)
        year_rows.append({"year": year, "terms": terms, "fmv": fmv})
    return {
        "year_rows": year_rows,
        "terms_versions": list(agreement.terms.all()),
        "duties": list(agreement.duties.all()),
        "fmv_opinions": list(agreement.fmv_opinions.all()),
        "documents": list(agreement.documents.all()),
        "flags": list(
            agreement.compliance_flags.filter(resolved_at__isnull=True).order_by(
                "-blocking", "kind", "-opened_at"
            )
        ),
        "milestones": list(agreement.milestones.all()),
        "meetings": list(agreement.committee_meetings.all()[:4]),
        "activation_blockers": services.activation_blockers(agreement=agreement)
        if agreement.status == AgreementStatus.EXECUTED
        else [],
    }


def agreement_detail_sections(
    *, organization_id: int, agreement: Agreement, version: int
) -> dict[str, Any]:
    """The agreement page's sections (programme years with their terms and FMV opinion, terms
    versions, duties, FMV opinions, documents, open flags, milestones, recent meetings,
    activation blockers): every reader's rows, cached under ``version`` and today's date.
    What a reader may see of them is the caller's choice."""
    return page_cached(
        organization_id,
        "agreement-detail",
        1,
        agreement.pk,
        timezone.localdate().isoformat(),
        compute=lambda: _agreement_detail_sections(agreement),
        version=version,
    )


def agreement_participations(
    *, organization_id: int, agreement: Agreement, physician: Physician | None, version: int
) -> list[Participation]:
    """The agreement's participations, a physician's own only (their id is in the key),
    cached under ``version``."""

    def participations() -> list[Participation]:
        rows = agreement.participations.select_related("physician")
        return list(rows.filter(physician=physician) if physician is not None else rows)

    return page_cached(
        organization_id,
        "agreement-participations",
        1,
        agreement.pk,
        physician.pk if physician is not None else "all",
        compute=participations,
        version=version,
    )
